"""Who is signed in: the person of the session cookie, and the role checks on every view.

The cookie is Flask's signed session (HttpOnly, SameSite=Lax, Secure whenever the request
came over HTTPS). It holds the person's id, the workspace they act in and the account's
session epoch; each request re-reads the account (one primary-key lookup), so disabling a
person or resetting a password ends their sessions in every process at once.
"""

from __future__ import annotations

import functools
import uuid

from flask import abort, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import people
from hpe_core.tenancy.people import Person
from web.extensions import db_session

_USER, _WORKSPACE, _EPOCH = "person", "workspace", "epoch"


class DashboardSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session; ``Secure`` follows the request unless configured.

    ``SESSION_COOKIE_SECURE = None`` (the default) marks the cookie Secure whenever the
    request arrived over HTTPS (directly, or through a proxy that says so and that
    ``PROXY_FIX`` trusts), so one setting works for a laptop on http://127.0.0.1 and a
    deployment behind TLS.
    """

    def get_cookie_secure(self, app) -> bool:
        configured = app.config.get("SESSION_COOKIE_SECURE")
        return request.is_secure if configured is None else bool(configured)


def begin(person: Person) -> None:
    """Start a session for ``person`` (a new session: no fixation of an old one)."""
    session.clear()
    session.permanent = True
    session[_USER] = str(person.user_id)
    session[_WORKSPACE] = person.workspace_id
    session[_EPOCH] = person.epoch
    g.person = person


def end() -> None:
    session.clear()
    g.person = None


def current_person() -> Person | None:
    """The signed-in person of this request, or None (read once per request)."""
    if "person" not in g:
        g.person = _resume()
    return g.person


def _resume() -> Person | None:
    try:
        user_id = uuid.UUID(session[_USER])
        workspace_id, epoch = str(session[_WORKSPACE]), int(session[_EPOCH])
    except (KeyError, ValueError, TypeError):
        return None
    person = people.resume(db_session(), user_id, workspace_id, epoch)
    if person is None:
        session.clear()
    return person


def requires(role: Role = Role.VIEWER):
    """View decorator: a signed-in person with at least ``role`` in the workspace.

    Not signed in: a redirect to the sign-in page (back here afterwards). Signed in
    without the role: 403 — the pages never show such a person the control, so only a
    forged request gets here.
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            person = current_person()
            if person is None:
                return redirect(url_for("dashboard.login", next=_local_path()))
            if not person.may(role):
                abort(
                    403,
                    description=f"This needs the {role} role in workspace "
                    f"{person.workspace_id}; yours is {person.role}. An admin can change it.",
                )
            return view(*args, **kwargs)

        wrapper.required_role = role
        return wrapper

    return decorate


def _local_path() -> str:
    path = request.full_path if request.query_string else request.path
    return path if safe_next(path) else url_for("dashboard.overview")


def safe_next(target: str | None) -> bool:
    """True for a path on this site (never ``//evil``, a scheme, or a backslash trick)."""
    return bool(
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and "\n" not in target
        and "\r" not in target
    )
