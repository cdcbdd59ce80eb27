"""The web channel over HTTP: the snippet served by HPE, CORS per workspace, publishable
keys; and in a real browser (Debian's headless chromium) when it is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import sqlalchemy as sa

from hpe_core.deliver import channels as channel_service
from hpe_core.store.models import Decision, Outcome
from tests.conftest import BASE
from tests.connectors.conftest import channel_app, create_config, new_tenant
from web.extensions import app_runtime

SHOP = "https://shop.example"
WEB_ACTION = {
    "id": "hero",
    "content": {
        "web": {"title": "Spring sale", "text": "20% off", "href": "https://shop.example/s"}
    },
}


@pytest.fixture
def web_app(sqlite_url, tmp_path):
    app = channel_app(sqlite_url, tmp_path)
    yield app
    app_runtime(app).engine.dispose()


def _allow(app, workspace_id, *origins):
    session = app_runtime(app).sessions()
    try:
        channel_service.put_settings(
            session,
            app_runtime(app).channels,
            workspace_id,
            "web",
            {"allowed_origins": list(origins)},
        )
        session.commit()
    finally:
        session.close()


def _count(app, model):
    session = app_runtime(app).sessions()
    try:
        return session.scalar(sa.select(sa.func.count()).select_from(model))
    finally:
        session.close()


def test_snippet_is_served_by_hpe(web_app):
    """/static/hpe.js is HPE's own file (no CDN): it calls decisions and outcomes."""
    response = web_app.test_client().get("/static/hpe.js")
    assert response.status_code == 200
    assert "javascript" in response.mimetype
    text = response.get_data(as_text=True)
    assert "/decisions" in text and "/outcomes" in text and "impression" in text
    response.close()


def test_cors_preflight_and_allowed_origin(web_app):
    """An allowed origin gets its preflight and its decision, with CORS headers."""
    client = web_app.test_client()
    tenant = new_tenant(web_app)
    public = new_tenant(web_app, kind="publishable")
    config_id = create_config(client, tenant, [WEB_ACTION], channels=("web",))
    _allow(web_app, "acme", SHOP)
    url = f"{BASE}/{config_id}/decisions"
    preflight = client.options(
        url,
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    decided = client.post(
        url, json={"user_id": "v1", "channel": "web"}, headers={**public.headers, "Origin": SHOP}
    )
    assert decided.status_code == 201
    assert decided.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in decided.headers["Vary"]
    outcome = client.post(
        f"{BASE}/{config_id}/outcomes",
        json={"outcome_token": decided.get_json()["outcome_token"], "type": "impression"},
        headers={**public.headers, "Origin": SHOP},
    )
    assert outcome.status_code == 202
    assert outcome.headers["Access-Control-Allow-Origin"] == SHOP


def test_other_origins_are_refused_before_anything_is_logged(web_app):
    """A page elsewhere using the publishable key: no CORS grant, a 403, no decision."""
    client = web_app.test_client()
    tenant = new_tenant(web_app)
    public = new_tenant(web_app, kind="publishable")
    config_id = create_config(client, tenant, [WEB_ACTION], channels=("web",))
    _allow(web_app, "acme", SHOP)
    new_tenant(web_app, "rival")
    _allow(web_app, "rival", "https://rival.example")
    url = f"{BASE}/{config_id}/decisions"
    preflight = client.options(
        url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    for origin in ("https://evil.example", "https://rival.example"):
        refused = client.post(
            url,
            json={"user_id": "v1", "channel": "web"},
            headers={**public.headers, "Origin": origin},
        )
        assert refused.status_code == 403
        assert set(refused.get_json()) == {"code", "status", "message", "errors"}
    assert _count(web_app, Decision) == 0
    # Server-to-server calls (no Origin) are not a browser's: unaffected.
    assert (
        client.post(
            url, json={"user_id": "v1", "channel": "web"}, headers=public.headers
        ).status_code
        == 201
    )


def test_publishable_keys_stay_limited(web_app):
    """A publishable key decides and reports outcomes, nothing else."""
    client = web_app.test_client()
    public = new_tenant(web_app, kind="publishable")
    assert client.get(f"{BASE}/", headers=public.headers).status_code == 403
    assert client.get(f"{BASE}/channels", headers=public.headers).status_code == 403


def _serve_page(html: str):
    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
# CI sets HPE_TEST_REQUIRE_BROWSER=1 (and installs chromium): there, a missing browser fails.
@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("HPE_TEST_REQUIRE_BROWSER"),
    reason="no chromium on this machine (apt install chromium)",
)
def test_snippet_in_a_real_browser(web_app):
    """Headless chromium on another origin: the slot is filled, impression and click come back."""
    from web.simulate import start_embedded_server

    client = web_app.test_client()
    tenant = new_tenant(web_app)
    public = new_tenant(web_app, kind="publishable")
    config_id = create_config(client, tenant, [WEB_ACTION], channels=("web",))
    hpe_url, stop = start_embedded_server(web_app)
    html = f"""<!doctype html><html><body>
<div id="slot" data-hpe-slot="hero"></div>
<script>
document.addEventListener("hpe:decision", function (e) {{
  var link = e.target.querySelector("a");
  link.addEventListener("click", function (ev) {{ ev.preventDefault(); }});
  link.click();
}});
</script>
<script src="{hpe_url}/static/hpe.js" data-hpe-key="{public.key}"
        data-hpe-config="{config_id}" data-hpe-user="visitor-1"></script>
</body></html>"""
    page = _serve_page(html)
    page_origin = f"http://127.0.0.1:{page.server_port}"
    _allow(web_app, "acme", page_origin)
    try:
        dom = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--virtual-time-budget=8000",
                "--dump-dom",
                f"{page_origin}/",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        deadline = time.monotonic() + 10
        while _count(web_app, Outcome) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop()
        page.shutdown()
        page.server_close()
    assert 'data-hpe-action="hero"' in dom, dom[-2000:]
    assert "Spring sale" in dom
    session = app_runtime(web_app).sessions()
    try:
        types = sorted(session.scalars(sa.select(Outcome.type)))
        [decision] = session.scalars(sa.select(Decision))
    finally:
        session.close()
    assert types == ["click", "impression"]
    assert decision.user_id == "visitor-1" and decision.context["slot"] == "hero"
    assert decision.context["device"] == "desktop"
