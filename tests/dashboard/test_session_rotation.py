"""The dashboard's sign-in cookie rotates with the secret key (issue 15, finding 1): a
session signed with a key kept in HPE_SECRET_KEY_FALLBACKS still signs in, one signed
with a key dropped from them does not."""

from __future__ import annotations

import re

from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import people, workspaces
from tests.conftest import make_test_app
from web.extensions import app_runtime

PASSWORD = "correct horse battery"
COST = 2**10
OLD = "old-key-" + "o" * 40
NEW = "new-key-" + "n" * 40


def _app(url, tmp_path, **keys):
    return make_test_app(url, tmp_path, PASSWORD_HASH_COST=COST, **keys)


def _signed_in_cookie(app) -> str:
    with app_runtime(app).sessions() as session:
        workspaces.create_workspace(session, "acme")
        people.create_user(
            session,
            "admin@example.com",
            workspace_id="acme",
            role=Role.ADMIN,
            password=PASSWORD,
            password_cost=COST,
        )
        session.commit()
    client = app.test_client()
    page = client.get("/dashboard/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post(
        "/dashboard/login",
        data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client.get_cookie("hpe_session").value


def _overview_status(app, cookie: str) -> int:
    client = app.test_client()
    client.set_cookie("hpe_session", cookie)
    return client.get("/dashboard/").status_code


def test_sessions_survive_a_rotation_while_the_old_key_is_a_fallback(sqlite_url, tmp_path):
    """Signed in under OLD: still signed in under NEW + fallback OLD, not under NEW alone."""
    before = _app(sqlite_url, tmp_path, SECRET_KEY=OLD)
    try:
        cookie = _signed_in_cookie(before)
        assert _overview_status(before, cookie) == 200
    finally:
        app_runtime(before).engine.dispose()
    rotated = _app(sqlite_url, tmp_path, SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD])
    try:
        assert _overview_status(rotated, cookie) == 200
    finally:
        app_runtime(rotated).engine.dispose()
    retired = _app(sqlite_url, tmp_path, SECRET_KEY=NEW)
    try:
        assert _overview_status(retired, cookie) == 302  # back to the sign-in page
    finally:
        app_runtime(retired).engine.dispose()
