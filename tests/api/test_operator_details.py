"""Operator details stay with operators (issue 15, finding 6): any tenant's
``GET /channels?health=true`` answered ``uploads to http://127.0.0.1:8431/upload`` and
``SMTP 127.0.0.1:8025`` and made HPE log in to the SMTP server on every call; the
cross-origin 403 named the key's workspace. Tenants now see ok / not ok; operators keep
the details (``hpe channels list --health``, the logs)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.api.conftest import assert_error
from tests.conftest import BASE, IN_REPO_PLUGINS, TEST_SECRET_KEY
from tests.connectors.conftest import channel_app, create_config, free_port, new_tenant
from web.extensions import app_runtime

HPE = str(Path(sys.executable).with_name("hpe"))


class CountingSmtp:
    """An SMTP server on loopback that counts the health checks' NOOPs (one per login)."""

    def __init__(self):
        self.port = free_port()
        self.noops = 0
        server = self

        class Handler:
            async def handle_NOOP(self, _server, _session, _envelope, _arg):  # noqa: N802
                server.noops += 1
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()


@pytest.fixture
def smtp():
    server = CountingSmtp()
    yield server
    server.controller.stop()


def _plugins(port: int) -> dict:
    return {
        "email": {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "smtp_username": None,
            "smtp_timeout": 2,
        },
        "ads": {"upload_url": "http://127.0.0.1:8431/upload", "upload_token": "tok"},
    }


@pytest.fixture
def app(sqlite_url, tmp_path, smtp):
    app = channel_app(sqlite_url, tmp_path, **_plugins(smtp.port))
    yield app
    app_runtime(app).engine.dispose()


def _health(client, tenant) -> dict:
    response = client.get(f"{BASE}/channels?health=true", headers=tenant.headers)
    assert response.status_code == 200
    return {c["name"]: c["health"] for c in response.get_json()}


def test_tenants_see_ok_or_not_and_no_host(app, smtp):
    """The answer says whether each channel works, and names no host, port or login."""
    client = app.test_client()
    health = _health(client, new_tenant(app))
    assert {name: item["ok"] for name, item in health.items()} == {
        "ads": True,
        "email": True,
        "web": True,
    }
    text = json.dumps(health)
    for leak in ("127.0.0.1", str(smtp.port), "8431", "SMTP", "upload", "http"):
        assert leak not in text, text


def test_health_calls_do_not_log_in_to_smtp_each_time(app, smtp):
    """Twenty calls from two tenants: one SMTP session (the check is shared a while)."""
    client = app.test_client()
    tenants = [new_tenant(app), new_tenant(app, "other")]
    for _ in range(10):
        for tenant in tenants:
            _health(client, tenant)
    assert smtp.noops == 1


def test_a_failing_channel_is_not_ok_and_its_detail_goes_to_the_log(
    sqlite_url, tmp_path, caplog
):
    """SMTP down: tenants see ok false; the log has host and error for the operator."""
    port = free_port()  # nothing listens there
    app = channel_app(sqlite_url, tmp_path, **_plugins(port))
    try:
        with caplog.at_level(logging.WARNING, logger="web.api.channels"):
            health = _health(app.test_client(), new_tenant(app))
        assert health["email"]["ok"] is False
        assert "127.0.0.1" not in json.dumps(health)
        assert any(f"127.0.0.1:{port}" in r.getMessage() for r in caplog.records)
    finally:
        app_runtime(app).engine.dispose()


def test_operators_keep_the_details_in_the_cli(sqlite_url, tmp_path, smtp):
    """`hpe channels list --health` still shows hosts and what the check said."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("HPE_")}
    env.update(
        {
            "HPE_INSTANCE_PATH": str(tmp_path / "instance"),
            "HPE_DATABASE_URL": sqlite_url,
            "HPE_LOAD_PLUGINS": json.dumps(IN_REPO_PLUGINS),
            "HPE_SECRET_KEY": TEST_SECRET_KEY,
            "HPE_PLUGINS": json.dumps(_plugins(smtp.port)),
        }
    )
    result = subprocess.run(
        [HPE, "channels", "list", "--health"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"SMTP 127.0.0.1:{smtp.port}" in result.stdout
    assert "uploads to http://127.0.0.1:8431/upload" in result.stdout


def test_the_cross_origin_refusal_names_no_workspace(app):
    """A page elsewhere using a copied key learns nothing about whose key it is."""
    client = app.test_client()
    tenant = new_tenant(app, "acme-secret-project")
    public = new_tenant(app, "acme-secret-project", kind="publishable")
    config_id = create_config(client, tenant, [{"id": "hero"}], channels=("web",))
    response = client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": "v1", "channel": "web"},
        headers={**public.headers, "Origin": "https://evil.example"},
    )
    body = assert_error(response, 403)
    assert "acme-secret-project" not in json.dumps(body)
    assert "allowed_origins" in body["message"]
