"""Bearer-key authentication for the API. The workspace always comes from the key."""

from __future__ import annotations

import hashlib
import threading
import time

from flask import current_app, g, request
from flask_smorest import abort

from hpe_core.tenancy.workspaces import Principal, authenticate, revocations
from web.extensions import app_state, db_session
from web.rate_limits import rate_limits

#: How often each process asks the database whether any key was revoked since it last
#: looked: a key revoked through any process (or the CLI) stops working everywhere within
#: this delay, with or without Redis, while the decision path skips the key lookup.
REVOCATION_CHECK_SECONDS = 1.0


class _KeyCache:
    """Verified keys (by digest) -> principal, so the decision hot path skips the lookup."""

    def __init__(self):
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self._revocations: tuple | None = None
        self._checked_at = 0.0

    def forget_revoked(self, session) -> None:
        """At most once per :data:`REVOCATION_CHECK_SECONDS`: if any key was revoked since
        the last look (one indexed aggregate), forget every verified key."""
        now = time.monotonic()
        if now - self._checked_at < REVOCATION_CHECK_SECONDS:
            return
        seen = revocations(session)
        with self._lock:
            if seen != self._revocations:
                self._entries.clear()
                self._revocations = seen
            self._checked_at = now

    def get(self, digest: str, max_age: float) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry[0] > max_age:
            return None
        return entry[1]

    def put(self, digest: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) > 10_000:  # bounded: never grows with guessed keys
                self._entries.clear()
            self._entries[digest] = (time.monotonic(), principal)


def _principal(token: str | None) -> Principal:
    state = app_state()
    if state.key_cache is None:
        state.key_cache = _KeyCache()
    cache = state.key_cache
    digest = hashlib.sha256(token.encode()).hexdigest() if token else ""
    max_age = current_app.config["KEY_CACHE_SECONDS"]
    if token and max_age > 0:
        cache.forget_revoked(db_session())
    principal = cache.get(digest, max_age) if token and max_age > 0 else None
    if principal is None:
        principal = authenticate(db_session(), token)  # raises for bad keys: never cached
        cache.put(digest, principal)
    limits = rate_limits(current_app)
    if limits.enabled:
        limits.check(principal)  # RateLimited: 429 with Retry-After
    return principal


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_secret_key() -> None:
    """``before_request`` hook: authenticate with a secret key (the whole API)."""
    principal = _principal(_bearer_token())
    if principal.kind != "secret":
        abort(403, message="A publishable key may only request decisions and send outcomes.")
    g.principal = principal


def require_any_key() -> None:
    """``before_request`` hook: secret or publishable key (decisions and outcomes)."""
    g.principal = _principal(_bearer_token())


def require_any_key_or_query() -> None:
    """``before_request`` hook: secret or publishable key, from the Authorization header or,
    for tools that cannot set headers (connected content), the ``key`` query parameter."""
    g.principal = _principal(_bearer_token() or request.args.get("key") or None)


def current_principal() -> Principal:
    return g.principal
