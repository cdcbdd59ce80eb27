"""CSRF protection for the dashboard: a secret per session, checked on every state change.

Every form carries the token in a hidden ``csrf_token`` field; htmx requests send it in
the ``X-CSRF-Token`` header (``base.html`` puts it in ``hx-headers``). A POST without the
right token is refused with 400 before the view runs. SameSite=Lax cookies already stop
most cross-site posts; the token also covers old browsers and same-site attackers.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
_KEY = "csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token() -> str:
    """This session's token (made on first use)."""
    if _KEY not in session:
        session[_KEY] = secrets.token_urlsafe(32)
    return session[_KEY]


def protect() -> None:
    """``before_request`` of the dashboard: refuse a state change without the token."""
    if request.method in _SAFE_METHODS:
        return
    expected = session.get(_KEY)
    sent = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        abort(400, description="The form expired or did not come from this site: reload it.")
