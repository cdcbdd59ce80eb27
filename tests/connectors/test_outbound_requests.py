"""Outbound requests (issue 15, finding 5), against real HTTP servers on loopback: the ads
upload followed a 302 to another port and handed it ``Authorization: Bearer …``, and
``hpe ads export`` reported success although nothing was delivered. Now no redirect is
followed, every non-2xx is a failure, https is required outside loopback, and no
private, loopback or link-local address is reached unless the operator allows it."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from hpe_core.deliver import outbound
from hpe_core.errors import PermanentDeliveryError
from hpe_core.store.models import utcnow
from tests.conftest import IN_REPO_PLUGINS, TEST_SECRET_KEY
from tests.connectors.conftest import channel_app, create_config, new_tenant
from web.extensions import app_runtime

LOOPBACK = ["127.0.0.1/32"]
HPE = str(Path(sys.executable).with_name("hpe"))


class Server:
    """A loopback HTTP server that records every request (any method) and answers from
    a queue of ``(status, headers)``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": self.rfile.read(length),
                    }
                )
                status, headers = recorder.answers.pop(0) if recorder.answers else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _any  # noqa: N815 - http.server's names

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    made = [Server(), Server()]
    yield made
    for server in made:
        server.stop()


def _ads_app(sqlite_url, tmp_path, url, allowed=LOOPBACK, **ads):
    return channel_app(
        sqlite_url,
        tmp_path,
        ads={"upload_url": url, "upload_token": "secret-token", **ads},
        _settings={"OUTBOUND_ALLOWED_NETWORKS": allowed},
    )


def _ship(app):
    connector = app_runtime(app).channels["ads"]
    return connector.ship("buyers", "Email,Phone\n", config_id=uuid.uuid4(), now=utcnow())


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_the_token_stays_home(sqlite_url, tmp_path, servers, status):
    """The review's attack: upload → 30x to another port. Nothing reaches the other port
    (no bearer token), and the upload fails for good, naming the redirect."""
    upload, thief = servers
    upload.answers.append((status, {"Location": f"{thief.url}/steal"}))
    app = _ads_app(sqlite_url, tmp_path, f"{upload.url}/audiences")
    try:
        with pytest.raises(PermanentDeliveryError, match=f"answered {status}.*Redirects"):
            _ship(app)
    finally:
        app_runtime(app).engine.dispose()
    assert [r["headers"]["authorization"] for r in upload.requests] == ["Bearer secret-token"]
    assert thief.requests == []


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_a_2xx_is_a_delivered_upload(sqlite_url, tmp_path, servers, status):
    """Any 2xx is delivered (and any other status a failure: 3xx above, 4xx and 5xx in
    tests/connectors/test_ads.py)."""
    upload, _ = servers
    upload.answers.append((status, {}))
    app = _ads_app(sqlite_url, tmp_path, f"{upload.url}/audiences")
    try:
        assert _ship(app) == f"{upload.url}/audiences"
    finally:
        app_runtime(app).engine.dispose()


def test_hpe_ads_export_reports_a_failed_upload(sqlite_url, tmp_path, servers):
    """`hpe ads export` exits with an error when the upload is redirected (it printed
    the upload URL as if delivered)."""
    upload, thief = servers
    app = _ads_app(sqlite_url, tmp_path, f"{upload.url}/audiences")
    try:
        client = app.test_client()
        tenant = new_tenant(app)
        config_id = create_config(client, tenant, [{"id": "spring"}], channels=("ads",))
    finally:
        app_runtime(app).engine.dispose()
    upload.answers.append((302, {"Location": f"{thief.url}/steal"}))
    env = {name: value for name, value in os.environ.items() if not name.startswith("HPE_")}
    env.update(
        {
            "HPE_INSTANCE_PATH": str(tmp_path / "instance"),
            "HPE_DATABASE_URL": sqlite_url,
            "HPE_LOAD_PLUGINS": json.dumps(IN_REPO_PLUGINS),
            "HPE_SECRET_KEY": TEST_SECRET_KEY,
            "HPE_OUTBOUND_ALLOWED_NETWORKS": json.dumps(LOOPBACK),
            "HPE_PLUGINS": json.dumps({"ads": {"upload_url": f"{upload.url}/audiences"}}),
        }
    )
    result = subprocess.run(
        [HPE, "ads", "export", config_id],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result.stdout
    assert "answered 302" in result.stderr
    assert thief.requests == []


def test_loopback_is_refused_unless_the_operator_allows_it(sqlite_url, tmp_path, servers):
    """Without OUTBOUND_ALLOWED_NETWORKS, the upload to 127.0.0.1 is refused before any
    byte is sent."""
    upload, _ = servers
    app = _ads_app(sqlite_url, tmp_path, f"{upload.url}/audiences", allowed=[])
    try:
        with pytest.raises(PermanentDeliveryError, match="OUTBOUND_ALLOWED_NETWORKS"):
            _ship(app)
    finally:
        app_runtime(app).engine.dispose()
    assert upload.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://ads.example.com/upload",  # http outside loopback
        "ftp://127.0.0.1/upload",
        "https://user:pass@ads.example.com/upload",
    ],
)
def test_the_upload_url_must_be_https_outside_loopback(sqlite_url, tmp_path, url):
    """An http:// upload URL to another host (or credentials in it) stops the start."""
    with pytest.raises(RuntimeError, match="upload_url"):
        _ads_app(sqlite_url, tmp_path, url)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # the cloud metadata service
        "100.64.0.1",  # shared (carrier-grade NAT)
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "224.0.0.1",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(address):
    """The guard refuses every non-public address; an allowed network opens it."""
    policy = outbound.OutboundPolicy()
    assert not policy.allows(ipaddress.ip_address(address))
    opened = outbound.OutboundPolicy.of(["0.0.0.0/0", "::/0"])
    assert opened.allows(ipaddress.ip_address(address))


def test_public_addresses_are_allowed():
    policy = outbound.OutboundPolicy()
    for address in ("93.184.215.14", "8.8.8.8", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"):
        assert policy.allows(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_names_and_literals_that_reach_loopback_are_refused(host):
    """The check runs on the resolved addresses: ``localhost`` is refused like 127.0.0.1."""
    with pytest.raises(outbound.OutboundRefused):
        outbound.post(f"http://{host}:9/x", b"", {}, policy=outbound.OutboundPolicy(), timeout=1)


def test_a_bad_allowed_network_stops_the_start(sqlite_url, tmp_path):
    with pytest.raises(RuntimeError, match="OUTBOUND_ALLOWED_NETWORKS"):
        _ads_app(sqlite_url, tmp_path, "https://ads.example.com/u", allowed=["not-a-net"])
