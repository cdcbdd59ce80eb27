"""CORS for the browser: pages on a workspace's allowed origins may call decide and
outcomes with a publishable key; any other origin is refused *before* anything is
logged (a 403), so a copied publishable key is useless on someone else's site.

Preflights carry no key, so they are answered for any origin some workspace allows; the
real request is then checked against the key's own workspace.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time

from flask import Blueprint, current_app, g, request
from flask_smorest import abort
from sqlalchemy import select

from hpe_core.errors import HpeError
from hpe_core.store.models import ChannelSettings
from hpe_core.tenancy.workspaces import authenticate
from plugins.app_runtime import app_runtime

blp = Blueprint("web_cors", __name__)

#: The endpoints a page may call: decisions and outcomes of a configuration.
BROWSER_PATHS = re.compile(
    r"^/api/v1/041-hyper-personalization-engine/[0-9a-fA-F-]{36}/(decisions|outcomes)/?$"
)
CACHE_SECONDS = 10.0


class _Cache:
    def __init__(self):
        self._lock = threading.Lock()
        self._items: dict = {}

    def get(self, key, load):
        now = time.monotonic()
        item = self._items.get(key)
        if item is None or now - item[0] > CACHE_SECONDS:
            value = load()
            with self._lock:
                if len(self._items) > 10_000:
                    self._items.clear()
                self._items[key] = (now, value)
            return value
        return item[1]


def _cache() -> _Cache:
    return current_app.extensions.setdefault("hpe_web_cors_cache", _Cache())


def _with_session(work):
    session = app_runtime().sessions()
    try:
        return work(session)
    finally:
        session.close()


def _origins_of(workspace_id: str) -> frozenset:
    def load(session):
        row = session.get(ChannelSettings, (workspace_id, "web"))
        return frozenset((row.settings or {}).get("allowed_origins", []) if row else [])

    return _cache().get(("ws", workspace_id), lambda: _with_session(load))


def _all_origins() -> frozenset:
    def load(session):
        rows = session.scalars(
            select(ChannelSettings.settings).where(ChannelSettings.channel == "web")
        )
        return frozenset(
            o for settings in rows for o in (settings or {}).get("allowed_origins", [])
        )

    return _cache().get(("all",), lambda: _with_session(load))


def _workspace_of(token: str) -> str | None:
    digest = hashlib.sha256(token.encode()).hexdigest()

    def load():
        try:
            return _with_session(lambda s: authenticate(s, token).workspace_id)
        except HpeError:
            return None  # the API's own auth answers 401

    return _cache().get(("key", digest), load)


def _same_origin(origin: str) -> bool:
    return origin.rstrip("/") == request.host_url.rstrip("/")


@blp.before_app_request
def check_origin():
    origin = request.headers.get("Origin")
    if not origin or not BROWSER_PATHS.match(request.path) or _same_origin(origin):
        return None
    if request.method == "OPTIONS":
        response = current_app.response_class(status=204)
        if origin in _all_origins():
            response.headers.update(
                {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "POST, OPTIONS",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type",
                    "Access-Control-Max-Age": "600",
                }
            )
        response.headers["Vary"] = "Origin"
        return response
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    workspace_id = _workspace_of(token.strip()) if scheme.lower() == "bearer" else None
    if workspace_id is None:
        return None  # no valid key: the API answers 401 (with CORS headers, below)
    if origin not in _origins_of(workspace_id):
        # Whoever sees this may have copied the key from a page: it does not name the
        # key's workspace. The operator's command takes the workspace id they know.
        abort(
            403,
            message=f"Origin {origin} may not call this API with this key: add it to the "
            "web channel's allowed_origins (`hpe channels configure <workspace> web`).",
        )
    g.hpe_cors_origin = origin
    return None


@blp.after_app_request
def add_cors_headers(response):
    origin = request.headers.get("Origin")
    if origin and BROWSER_PATHS.match(request.path):
        response.headers.add("Vary", "Origin")
        if g.get("hpe_cors_origin") == origin or (
            origin in _all_origins() and request.method != "OPTIONS"
        ):
            response.headers["Access-Control-Allow-Origin"] = origin
    return response
