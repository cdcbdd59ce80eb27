"""A database outage answers 503 with Retry-After in the one JSON shape, logged once; no
server-generated error is HTML or a traceback (issue 14, defect 4).

Before: every request during an outage was a 500 with a traceback in the log, a rollback
failing in the request's teardown turned into gunicorn's HTML page, and gunicorn's own
414 was HTML too.
"""

from __future__ import annotations

import logging
import socket
import uuid

import pytest
import sqlalchemy as sa

from tests.api.conftest import assert_error
from tests.conftest import BASE, create_tenant, make_test_app
from web.extensions import app_runtime, db_session

#: Nothing listens on port 1: every connection attempt is refused at once.
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/hpe"


@pytest.fixture
def cut_off_app(tmp_path):
    app = make_test_app(UNREACHABLE, tmp_path, SCHEMA_CHECK=False)
    yield app
    app_runtime(app).engine.dispose()


def test_an_unreachable_database_answers_503_with_retry_after_logged_once(cut_off_app, caplog):
    """Decisions, outcomes, configurations: 503 JSON with Retry-After; one log line in all."""
    client = cut_off_app.test_client()
    headers = {"Authorization": "Bearer hpe_sk_" + "a" * 43}
    caplog.set_level(logging.INFO)
    outcome = {"decision_id": str(uuid.uuid4()), "type": "click"}
    calls = [
        ("POST", f"{BASE}/{uuid.uuid4()}/decisions", {"user_id": "u", "channel": "email"}),
        ("POST", f"{BASE}/{uuid.uuid4()}/outcomes", outcome),
        ("GET", f"{BASE}/", None),
        ("GET", f"{BASE}/{uuid.uuid4()}/metrics", None),
    ]
    for _ in range(5):
        for method, url, body in calls:
            response = client.open(url, method=method, json=body, headers=headers)
            error = assert_error(response, 503)
            assert response.headers["Retry-After"] == "2"
            assert "database" in error["message"].lower()
    logged = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(logged) == 1, [record.getMessage() for record in logged]
    assert "database unavailable" in logged[0].getMessage()
    assert logged[0].exc_info is None  # no traceback, not even once


def test_health_is_503_down_while_the_database_is_unreachable(cut_off_app):
    """The load balancer's check keeps its documented 503 body."""
    response = cut_off_app.test_client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.get_json()["status"] == "down"


def test_a_dashboard_page_during_an_outage_is_a_page_for_people(cut_off_app):
    """People get an HTML 503 page (with Retry-After), not JSON and not a traceback."""
    client = cut_off_app.test_client()
    response = client.get("/dashboard/login")
    if response.status_code == 200:  # the form needs no database: signing in does
        page = response.get_data(as_text=True)
        csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = client.post(
            "/dashboard/login",
            data={"email": "a@example.com", "password": "x" * 12, "csrf_token": csrf},
        )
    assert response.status_code == 503, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    assert response.headers["Retry-After"] == "2"
    assert "unavailable" in response.get_data(as_text=True).lower()


def test_the_database_going_away_before_teardown_keeps_the_answer_json(pg_app, tmp_path):
    """A request's connection killed after its answer is made: the answer stands (no
    rollback error turned into an HTML 500)."""
    app = pg_app

    @app.route("/test-only/terminated")
    def terminated():
        session = db_session()
        backend = session.scalar(sa.text("SELECT pg_backend_pid()"))  # a transaction is open
        with app_runtime(app).engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        return {"ok": True}

    response = app.test_client().get("/test-only/terminated")
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}


@pytest.fixture
def pg_app(postgres_url, tmp_path):
    from tests.conftest import empty_database

    app = make_test_app(postgres_url, tmp_path)
    yield app
    app_runtime(app).engine.dispose()
    empty_database(postgres_url)


def test_an_error_escaping_flask_is_json_not_gunicorns_html(pg_app):
    """Whatever escapes the request handlers (here a failing teardown) answers the JSON shape."""
    app = pg_app

    def broken_teardown(_exc):
        raise RuntimeError("a teardown that fails")

    app.teardown_appcontext(broken_teardown)
    tenant = create_tenant(app)
    response = app.test_client().get(f"{BASE}/", headers=tenant.headers)
    assert_error(response, 500)


@pytest.mark.slow
def test_gunicorns_own_errors_are_json(tmp_path, sqlite_url):
    """hpe serve: a request line over gunicorn's limit is a 414 in the one JSON shape."""
    import json
    import os

    from tests.conftest import IN_REPO_PLUGINS
    from tests.servers import hpe_serving

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith("HPE_")}
    env.update(
        {
            "HPE_INSTANCE_PATH": str(tmp_path / "instance"),
            "HPE_DATABASE_URL": sqlite_url,
            "HPE_LOAD_PLUGINS": json.dumps(IN_REPO_PLUGINS),
        }
    )
    with hpe_serving(workdir, env, tmp_path / "server.log") as base:
        host, port = base.removeprefix("http://").split(":")
        for request_line, code in (
            (f"GET /api/v1/{'x' * 5000} HTTP/1.1", 414),
            ("GET /api/v1/health HTTP/1.1\r\nX-Big: " + "y" * 9000, 431),
            ("NOT A REQUEST LINE", 400),
        ):
            with socket.create_connection((host, int(port)), timeout=10) as connection:
                connection.sendall(request_line.encode() + b"\r\nHost: x\r\n\r\n")
                raw = b""
                while chunk := connection.recv(65536):
                    raw += chunk
            head, _, body = raw.partition(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin1").split("\r\n")
            assert status_line.split()[1] == str(code), raw[:300]
            headers = dict(line.split(": ", 1) for line in header_lines)
            assert headers["Content-Type"] == "application/json"
            error = json.loads(body)
            assert set(error) == {"code", "status", "message", "errors"}
            assert error["code"] == code
