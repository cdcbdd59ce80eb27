"""Real protocols on loopback for the connector tests: an SMTP server (aiosmtpd) and an
HTTP server, plus helpers to make decisions that deliver."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from hpe_core.deliver import webhooks
from tests.conftest import BASE, Tenant, create_tenant, make_test_app
from web.extensions import app_runtime

EMAIL_ACTION = {
    "id": "spring-sale",
    "channels": ["email"],
    "features": {"discount": 20},
    "content": {
        "email": {
            "subject": "{{ first_name | default('Hi') }}: {{ features.discount }}% off",
            "html": (
                '<html><body><p>Hi {{ first_name }}</p><a href="https://shop.example/spring?a=1&amp;b=2">'
                'Shop</a> <a href="{{ links.terms }}">Terms</a> <a href="https://elsewhere.example/">'
                'x</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>'
            ),
            "text": "Hi {{ first_name }}, shop at https://shop.example/spring?a=1&b=2",
            "links": {
                "shop": "https://shop.example/spring?a=1&b=2",
                "terms": "https://shop.example/terms",
            },
        }
    },
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """aiosmtpd on 127.0.0.1; ``messages`` are parsed email.message objects."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.messages: list = []
        self.envelopes: list = []
        self._controller = None

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller

        server = self

        class Handler:
            async def handle_DATA(self, _server, _session, envelope):
                server.envelopes.append(envelope)
                server.messages.append(
                    email.message_from_bytes(envelope.content, policy=email.policy.default)
                )
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


class RecordingHttpServer:
    """A local HTTP server recording requests; ``responses`` is a queue of (status, body)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.responses: list[tuple[int, bytes, dict]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": self.rfile.read(length),
                    }
                )
                status, body, headers = (
                    recorder.responses.pop(0) if recorder.responses else (200, b"{}", {})
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_server():
    server = RecordingHttpServer()
    yield server
    server.stop()


def email_plugin_config(port: int) -> dict:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_timeout": 2,
        "from_address": "offers@shop.example",
        "from_name": "Shop",
    }


def channel_app(database_url, tmp_path, _settings: dict | None = None, **plugins):
    """An app with these plugins' settings (``_settings``: other settings)."""
    return make_test_app(
        database_url,
        tmp_path,
        PLUGINS=plugins,
        PUBLIC_URL="http://hpe.test",
        SECRET_KEY="test-secret-key-" + "c" * 32,
        **(_settings or {}),
    )


def new_tenant(app, workspace_id: str = "acme", kind: str = "secret") -> Tenant:
    return create_tenant(app, workspace_id, kind)


def create_config(client, tenant, actions, channels=("email",), **settings) -> str:
    body = {
        "name": "channels",
        "settings": {"actions": actions, "channels": list(channels), **settings},
    }
    response = client.post(f"{BASE}/", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def decide(client, tenant, config_id, user_id="u1", channel="email", **extra):
    return client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": user_id, "channel": channel, **extra},
        headers=tenant.headers,
    )


def webhook_secret(app, workspace_id: str = "acme") -> str:
    session = app_runtime(app).sessions()
    try:
        _row, secret = webhooks.create_secret(session, workspace_id, app.config["SECRET_KEY"])
        session.commit()
    finally:
        session.close()
    return secret


def post_webhook(client, channel, body, secret, workspace_id="acme", timestamp=None, **headers):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = {
        "X-HPE-Workspace": workspace_id,
        "X-HPE-Signature": webhooks.sign(secret, raw, timestamp),
        "Content-Type": "application/json",
    }
    signed.update(headers)
    return client.post(f"{BASE}/webhooks/{channel}", data=raw, headers=signed)
