"""The dashboard's guards, through the Flask test client: cookies, CSRF, headers, roles."""

from __future__ import annotations

import re

import pytest

from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import people, workspaces
from tests.conftest import make_test_app
from web.extensions import app_runtime

PASSWORD = "correct horse battery"
COST = 2**10


@pytest.fixture
def app(sqlite_url, tmp_path):
    app = make_test_app(sqlite_url, tmp_path, PASSWORD_HASH_COST=COST)
    with app_runtime(app).sessions() as session:
        workspaces.create_workspace(session, "acme")
        for email, role in (("admin@example.com", Role.ADMIN), ("view@example.com", Role.VIEWER)):
            people.create_user(
                session,
                email,
                workspace_id="acme",
                role=role,
                password=PASSWORD,
                password_cost=COST,
            )
        session.commit()
    yield app
    app_runtime(app).engine.dispose()


def _csrf(client, path="/dashboard/login", **kwargs) -> str:
    page = client.get(path, **kwargs).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _sign_in(client, email="admin@example.com"):
    token = _csrf(client)
    return client.post(
        "/dashboard/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/dashboard/"},
    )


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(app):
    """The sign-in cookie is HttpOnly and SameSite=Lax; Secure when the request was HTTPS."""
    plain = app.test_client()
    cookie = _sign_in(plain).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    tls = app.test_client()
    token = _csrf(tls, base_url="https://hpe.example")
    answer = tls.post(
        "/dashboard/login",
        base_url="https://hpe.example",
        data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert "Secure" in answer.headers["Set-Cookie"]


def test_a_post_without_the_csrf_token_is_refused(app):
    """Signing in (or any state change) without the form's token is a 400 and does nothing."""
    client = app.test_client()
    answer = client.post(
        "/dashboard/login", data={"email": "admin@example.com", "password": PASSWORD}
    )
    assert answer.status_code == 400 and "did not come from this site" in answer.get_data(True)
    assert client.get("/dashboard/").status_code == 302  # still signed out
    _sign_in(client)
    assert client.post("/dashboard/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/dashboard/").status_code == 200  # the forged sign-out did nothing


def test_pages_carry_a_strict_content_security_policy(app):
    """No inline script is allowed, framing is refused, and pages are never cached."""
    answer = app.test_client().get("/dashboard/login")
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "<script>" not in answer.get_data(as_text=True)


def test_signed_out_visitors_are_sent_to_sign_in_and_back(app):
    """A deep link asks for sign-in, then returns to where the person was going."""
    client = app.test_client()
    answer = client.get("/dashboard/")
    assert answer.status_code == 302 and "/dashboard/login?next=/dashboard/" in answer.location
    assert client.get("/").location.endswith("/dashboard/")


def test_sign_in_never_redirects_off_site(app):
    """A crafted next=//evil.example lands on the overview, not another site."""
    client = app.test_client()
    token = _csrf(client)
    answer = client.post(
        "/dashboard/login",
        data={
            "email": "admin@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
    )
    assert answer.status_code == 302 and answer.location == "/dashboard/"


def test_dashboard_errors_are_pages_and_api_errors_stay_json(app):
    """People get an HTML 404 page; the API keeps its JSON error shape."""
    client = app.test_client()
    _sign_in(client)
    page = client.get("/dashboard/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Page not found" in page.get_data(as_text=True)
    api = client.get("/api/v1/041-hyper-personalization-engine/nope")
    assert api.status_code in (401, 404) and api.is_json


def test_too_many_failures_from_one_address_are_throttled(app):
    """After the per-address allowance, sign-in answers 429 with Retry-After."""
    from web.dashboard.views import account

    client = app.test_client()
    for attempt in range(account.IP_FAILURES + 1):
        token = _csrf(client)
        answer = client.post(
            "/dashboard/login",
            data={"email": f"x{attempt}@example.com", "password": "wrong", "csrf_token": token},
        )
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0


def test_behind_a_trusted_tls_proxy_the_cookie_is_secure(sqlite_url, tmp_path):
    """With PROXY_FIX=1, X-Forwarded-Proto: https marks the sign-in cookie Secure."""
    app = make_test_app(sqlite_url, tmp_path, PASSWORD_HASH_COST=COST, PROXY_FIX=1)
    try:
        with app_runtime(app).sessions() as session:
            workspaces.create_workspace(session, "acme")
            people.create_user(
                session, "a@example.com", workspace_id="acme", password=PASSWORD, password_cost=COST
            )
            session.commit()
        client = app.test_client()
        forwarded = {"X-Forwarded-Proto": "https"}
        page = client.get("/dashboard/login", headers=forwarded).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        answer = client.post(
            "/dashboard/login",
            headers=forwarded,
            data={"email": "a@example.com", "password": PASSWORD, "csrf_token": token},
        )
        assert answer.status_code == 302 and "Secure" in answer.headers["Set-Cookie"]
    finally:
        app_runtime(app).engine.dispose()


def test_vendored_front_end_files_match_their_pins():
    """htmx, uPlot and axe-core on disk are exactly the pinned npm files."""
    from web.dashboard import vendor_assets

    assert vendor_assets.check() == []
