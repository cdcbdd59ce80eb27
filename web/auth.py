"""Bearer-key authentication for the API. The workspace always comes from the key."""

from __future__ import annotations

from flask import g, request
from flask_smorest import abort

from hpe_core.workspaces import Principal, authenticate
from web.extensions import db_session


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_secret_key() -> None:
    """``before_request`` hook: authenticate with a secret key (the whole API)."""
    principal = authenticate(db_session(), _bearer_token())
    if principal.kind != "secret":
        abort(403, message="A publishable key may only request decisions and send outcomes.")
    g.principal = principal


def require_any_key() -> None:
    """``before_request`` hook: secret or publishable key (decisions and outcomes)."""
    g.principal = authenticate(db_session(), _bearer_token())


def current_principal() -> Principal:
    return g.principal
