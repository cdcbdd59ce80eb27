"""The admin pages and the survey prompt through the Flask test client: who may see what,
forged requests, things shown once, and the survey's forms without JavaScript.

The browser tests (tests/browser/test_admin.py, test_survey.py) drive the same pages in
chromium; these cover the matrix of paths and roles quickly.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from hpe_core.store.models import Activity, SurveyAnswer, User
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import people, workspaces
from tests.conftest import BASE, make_test_app
from web.extensions import app_runtime

PASSWORD = "correct horse battery"
COST = 2**10
ADMIN_PAGES = [
    "/dashboard/admin/people",
    "/dashboard/admin/keys",
    "/dashboard/admin/webhooks",
    "/dashboard/admin/channels",
    "/dashboard/admin/channels/web",
    "/dashboard/admin/consent",
    "/dashboard/admin/survey",
]
ADMIN_POSTS = [
    ("/dashboard/admin/people", {"email": "x@example.com", "role": "admin"}),
    ("/dashboard/admin/people/role", {"email": "view@example.com", "role": "admin"}),
    ("/dashboard/admin/people/disable", {"email": "admin@example.com", "confirmed": "yes"}),
    ("/dashboard/admin/people/reset-password", {"email": "admin@example.com", "confirmed": "yes"}),
    ("/dashboard/admin/keys", {"name": "stolen", "kind": "secret"}),
    ("/dashboard/admin/keys/revoke", {"prefix": "hpe_sk_", "confirmed": "yes"}),
    ("/dashboard/admin/webhooks", {"grace_hours": "0"}),
    ("/dashboard/admin/channels/web", {"allowed_origins": "https://evil.example"}),
    (
        "/dashboard/admin/consent",
        {"channel": "email", "user_id": "u1", "status": "subscribed", "confirmed": "yes"},
    ),
]


@pytest.fixture
def app(sqlite_url, tmp_path):
    app = make_test_app(sqlite_url, tmp_path, PASSWORD_HASH_COST=COST)
    with app_runtime(app).sessions() as session:
        workspaces.create_workspace(session, "acme")
        for email, role in (
            ("admin@example.com", Role.ADMIN),
            ("edit@example.com", Role.EDITOR),
            ("view@example.com", Role.VIEWER),
        ):
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


def _token(client, path="/dashboard/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _signed_in(app, email="admin@example.com"):
    """A client signed in as ``email``, and its CSRF token."""
    client = app.test_client()
    client.post(
        "/dashboard/login",
        data={"email": email, "password": PASSWORD, "csrf_token": _token(client)},
    )
    return client, _token(client, "/dashboard/")


def _errors(page: str) -> list[str]:
    return re.findall(r'data-testid="field-error" id="([^"]+)-error">([^<]+)<', page)


# --- Role limits ----------------------------------------------------------------------


@pytest.mark.parametrize("email", ["edit@example.com", "view@example.com"])
def test_only_admins_see_the_admin_link_and_pages(app, email):
    """Editors and viewers get no Admin link, and 403 on every admin page and form."""
    client, token = _signed_in(app, email)
    assert 'data-testid="nav-admin"' not in client.get("/dashboard/").get_data(True)
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == 403, path
    for path, data in ADMIN_POSTS:
        assert client.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    with app_runtime(app).sessions() as session:
        assert session.scalar(select(User).where(User.email == "x@example.com")) is None
        assert not session.scalars(select(Activity).where(Activity.type.like("key.%"))).all()


def test_an_admin_sees_the_link_and_every_page(app):
    """Admins get the Admin link and each admin page answers 200."""
    client, _token_ = _signed_in(app)
    assert 'data-testid="nav-admin"' in client.get("/dashboard/").get_data(True)
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == 200, path


def test_signed_out_visitors_are_sent_to_sign_in(app):
    """Not signed in: every admin page redirects to the sign-in page, back here after."""
    client = app.test_client()
    answer = client.get("/dashboard/admin/keys")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/dashboard/login?next=/dashboard/admin/keys")


@pytest.mark.parametrize(("path", "data"), ADMIN_POSTS)
def test_admin_forms_need_the_csrf_token(app, path, data):
    """Without the form's token every admin change is a 400 and nothing changes."""
    client, _token_ = _signed_in(app)
    assert client.post(path, data=data).status_code == 400
    assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 400


# --- Shown once -----------------------------------------------------------------------


def test_a_new_key_is_shown_once_and_works(app):
    """The created key is on the answer to the form, never on the page again; it calls
    the API until revoked (after a confirmation)."""
    client, token = _signed_in(app)
    page = client.post(
        "/dashboard/admin/keys", data={"name": "ci", "kind": "secret", "csrf_token": token}
    ).get_data(True)
    key = re.search(r'data-testid="new-key">([^<]+)<', page).group(1)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert api.get(f"{BASE}/", headers=headers).status_code == 200
    assert key not in client.get("/dashboard/admin/keys").get_data(True)
    assert key not in str(client.get_cookie("hpe_session").value)
    asked = client.post(
        "/dashboard/admin/keys/revoke", data={"prefix": key[:15], "csrf_token": token}
    )
    assert 'data-testid="confirm-revoke"' in asked.get_data(True)
    assert api.get(f"{BASE}/", headers=headers).status_code == 200  # not yet
    done = client.post(
        "/dashboard/admin/keys/revoke",
        data={"prefix": key[:15], "confirmed": "yes", "csrf_token": token},
    )
    assert done.status_code == 302
    assert api.get(f"{BASE}/", headers=headers).status_code == 401


def test_a_new_persons_password_is_shown_once_and_signs_in(app):
    """The generated password is on the answer only, and signs the new person in."""
    client, token = _signed_in(app)
    page = client.post(
        "/dashboard/admin/people",
        data={"email": "new@example.com", "role": "viewer", "csrf_token": token},
    ).get_data(True)
    password = re.search(r'data-testid="new-password">([^<]+)<', page).group(1)
    assert password not in client.get("/dashboard/admin/people").get_data(True)
    newcomer = app.test_client()
    newcomer.post(
        "/dashboard/login",
        data={"email": "new@example.com", "password": password, "csrf_token": _token(newcomer)},
    )
    assert "viewer" in newcomer.get("/dashboard/").get_data(True)


def test_invalid_input_is_shown_beside_its_field(app):
    """Each admin form answers 422 with the message next to the field it is about."""
    client, token = _signed_in(app)
    # The grace period is asked once there is a secret to keep.
    client.post("/dashboard/admin/webhooks", data={"csrf_token": token})
    cases = [
        ("/dashboard/admin/people", {"email": "nope", "role": "editor"}, "email"),
        ("/dashboard/admin/people", {"email": "view@example.com", "role": "editor"}, "email"),
        ("/dashboard/admin/keys", {"name": "n" * 201, "kind": "secret"}, "name"),
        ("/dashboard/admin/webhooks", {"grace_hours": "soon"}, "grace_hours"),
        ("/dashboard/admin/webhooks", {"grace_hours": "9999"}, "grace_hours"),
        ("/dashboard/admin/channels/web", {"allowed_origins": "ftp://x"}, "allowed_origins"),
    ]
    for path, data, field in cases:
        answer = client.post(path, data={**data, "csrf_token": token})
        assert answer.status_code == 422, path
        assert [name for name, _message in _errors(answer.get_data(True))] == [field], path
    answer = client.get("/dashboard/admin/consent?channel=fax&user_id=")
    assert sorted(name for name, _ in _errors(answer.get_data(True))) == ["channel", "user_id"]


def test_changing_consent_asks_first_then_fires_the_event(app):
    """The first post asks; the confirmed one records it as the person's change."""
    client, token = _signed_in(app)
    data = {"channel": "email", "user_id": "u-9", "status": "unsubscribed", "csrf_token": token}
    asked = client.post("/dashboard/admin/consent", data=data).get_data(True)
    assert 'data-testid="confirm-consent"' in asked
    page = client.get("/dashboard/admin/consent?channel=email&user_id=u-9").get_data(True)
    assert 'data-testid="consent-status">subscribed<' in page
    client.post("/dashboard/admin/consent", data={**data, "confirmed": "yes"})
    page = client.get("/dashboard/admin/consent?channel=email&user_id=u-9").get_data(True)
    assert 'data-testid="consent-status">unsubscribed<' in page
    assert "user:admin@example.com" in page


# --- The survey -----------------------------------------------------------------------


def _first_sign_in(app, email, days_ago):
    with app_runtime(app).sessions() as session:
        session.execute(
            update(User)
            .where(User.email == email)
            .values(first_sign_in_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago))
        )
        session.commit()


def test_the_survey_shows_after_30_days_and_works_without_javascript(app):
    """No prompt on day 29; on day 30 every page has it; answering posts, says thanks and
    leads back; then it is gone."""
    client, token = _signed_in(app, "view@example.com")
    _first_sign_in(app, "view@example.com", 29)
    assert 'data-testid="survey"' not in client.get("/dashboard/").get_data(True)
    _first_sign_in(app, "view@example.com", 30)
    assert 'data-testid="survey"' in client.get("/dashboard/").get_data(True)
    missing = client.post(
        "/dashboard/survey", data={"comment": "hi", "next": "/dashboard/", "csrf_token": token}
    )
    assert missing.status_code == 422
    assert [name for name, _ in _errors(missing.get_data(True))] == ["survey-score"]
    done = client.post(
        "/dashboard/survey",
        data={
            "score": "4",
            "comment": "good",
            "next": "/dashboard/?sort=lift",
            "csrf_token": token,
        },
    )
    assert done.status_code == 302
    thanks = client.get(done.headers["Location"]).get_data(True)
    assert 'data-testid="survey-thanks"' in thanks and 'href="/dashboard/?sort=lift"' in thanks
    assert 'data-testid="survey"' not in client.get("/dashboard/").get_data(True)
    with app_runtime(app).sessions() as session:
        row = session.scalar(select(SurveyAnswer))
        assert (row.score, row.comment, row.workspace_id) == (4, "good", "acme")


def test_not_now_dismisses_and_leads_back(app):
    """ "Not now" stores a dismissal and returns to the page it was pressed on."""
    client, token = _signed_in(app, "edit@example.com")
    _first_sign_in(app, "edit@example.com", 31)
    answer = client.post(
        "/dashboard/survey/dismiss",
        data={"next": "/dashboard/?sort=name", "csrf_token": token},
    )
    assert answer.headers["Location"] == "/dashboard/?sort=name"
    assert 'data-testid="survey"' not in client.get("/dashboard/").get_data(True)


def test_the_survey_never_redirects_off_the_dashboard(app):
    """A forged ``next`` (another site, another path) lands on the overview instead."""
    client, token = _signed_in(app, "edit@example.com")
    _first_sign_in(app, "edit@example.com", 31)
    for target in ("https://evil.example/", "//evil.example", "/api/v1/docs"):
        answer = client.post(
            "/dashboard/survey/dismiss", data={"next": target, "csrf_token": token}
        )
        assert answer.headers["Location"] == "/dashboard/"


def test_with_htmx_the_survey_is_answered_in_place(app):
    """An htmx post gets the thank-you fragment back (or the form with its error)."""
    client, token = _signed_in(app, "edit@example.com")
    _first_sign_in(app, "edit@example.com", 31)
    headers = {"HX-Request": "true"}
    wrong = client.post(
        "/dashboard/survey", data={"score": "9", "csrf_token": token}, headers=headers
    )
    assert wrong.status_code == 200 and "<html" not in wrong.get_data(True)
    assert [name for name, _ in _errors(wrong.get_data(True))] == ["survey-score"]
    right = client.post(
        "/dashboard/survey", data={"score": "5", "csrf_token": token}, headers=headers
    ).get_data(True)
    assert 'data-testid="survey-thanks"' in right and "<html" not in right


def test_admins_see_satisfaction_on_the_overview(app):
    """The overview shows admins the mean and the share of 4+; others see nothing of it."""
    with app_runtime(app).sessions() as session:
        for email, score in (("edit@example.com", 5), ("view@example.com", 3)):
            user = session.scalar(select(User).where(User.email == email))
            session.add(SurveyAnswer(user_id=user.id, workspace_id="acme", score=score))
        session.commit()
    admin, _token_ = _signed_in(app)
    page = admin.get("/dashboard/").get_data(True)
    summary = re.search(r'data-testid="survey-summary">(.*?)</p>', page, re.S).group(1)
    assert "4.0 / 5" in re.sub(r"<[^>]+>", "", summary)
    assert "50%" in summary and "(1 / 2)" in summary
    viewer, _token_ = _signed_in(app, "view@example.com")
    assert 'data-testid="survey-summary"' not in viewer.get("/dashboard/").get_data(True)
