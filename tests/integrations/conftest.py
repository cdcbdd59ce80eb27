"""Helpers for the integration tests: endpoints created through the API, the webhook sink
of an app, and running the inline jobs."""

from __future__ import annotations

import pytest

from plugins.event_sinks import sink_of
from tests.api.conftest import MINIMAL_SETTINGS
from tests.conftest import BASE
from web.extensions import app_runtime

ENDPOINTS = f"{BASE}/webhook-endpoints"
#: The operator's setting that lets HPE post to the loopback receivers (tests/receivers.py).
LOOPBACK = ["127.0.0.1/32"]
#: A strong secret key, for apps on Redis or PostgreSQL (which refuse the default).
TEST_KEY = "integrations-test-key-" + "k" * 40


def create_endpoint(client, tenant, url: str, event_types: list[str], **extra) -> dict:
    response = client.post(
        ENDPOINTS,
        json={"url": url, "event_types": event_types, **extra},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create_config(client, tenant, settings: dict | None = None) -> str:
    response = client.post(
        f"{BASE}/",
        json={"name": "Spring", "settings": settings or MINIMAL_SETTINGS},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def decide(client, tenant, config_id: str, user_id: str = "u1", **extra):
    response = client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": user_id, "channel": "web", **extra},
        headers=tenant.headers,
    )
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def run_jobs(app) -> int:
    """Flush the sink's decision batches, then run every queued inline job once."""
    runtime = app_runtime(app)
    sink = sink_of(runtime)
    if sink is not None:
        sink.flush()
    return runtime.jobs.run_pending_deliveries()


@pytest.fixture
def web_settings():
    return {**MINIMAL_SETTINGS, "channels": ["web"]}


@pytest.fixture
def smtp_server():
    """A local SMTP server (aiosmtpd) that keeps what it receives."""
    from tests.connectors.conftest import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_tenant_for():
    """``make_tenant_for(app, workspace_id, kind="secret")``: a tenant on any app."""
    from tests.conftest import create_tenant

    return create_tenant
