"""The example third-party plugin (examples/hpe-sms), pip-installed into this venv: found
through its entry point, it adds a channel with no core change and delivers."""

from __future__ import annotations

import importlib
import importlib.metadata
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from plugins.manager import connectors, make_plugin_manager
from tests.connectors.conftest import create_config, decide, new_tenant

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hpe-sms"


def _installed() -> bool:
    try:
        importlib.metadata.distribution("hpe-sms")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="session")
def hpe_sms_installed():
    """pip install -e examples/hpe-sms once (if missing), then make it importable here."""
    if not _installed():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--disable-pip-version-check",
                "-e",
                str(EXAMPLE),
            ],
            check=True,
        )
        # The running interpreter read its .pth files at start: load the new one.
        site.addsitedir(sysconfig.get_paths()["purelib"])
        importlib.invalidate_caches()
    assert _installed()
    return importlib.import_module("hpe_sms")


def test_example_plugin_is_discovered_through_its_entry_point(hpe_sms_installed):
    """With every installed plugin loaded, the sms channel appears, from hpe-sms."""
    pm = make_plugin_manager()
    assert connectors(pm)["sms"] is hpe_sms_installed.SmsConnector
    dists = {
        name: dist.project_name
        for name, dist in (
            (n, d) for p, d in pm.list_plugin_distinfo() for n, q in pm.list_name_plugin() if q is p
        )
    }
    assert dists["sms"] == "hpe-sms"


def test_example_plugin_delivers_a_decision(hpe_sms_installed, sqlite_url, tmp_path, http_server):
    """A decision on the sms channel is sent to the (local) SMS gateway."""
    from tests.conftest import make_test_app

    http_server.responses.append((200, b'{"id": "gw-7"}', {"Content-Type": "application/json"}))
    app = make_test_app(
        sqlite_url,
        tmp_path,
        LOAD_PLUGINS=["email", "web", "ads", "sms"],
        PLUGINS={"sms": {"gateway_url": f"{http_server.url}/send"}},
    )
    client = app.test_client()
    tenant = new_tenant(app)
    action = {"id": "spring", "content": {"sms": {"text": "Hi {{ first_name }}, -20%"}}}
    config_id = create_config(client, tenant, [action], channels=("sms",))
    response = decide(
        client,
        tenant,
        config_id,
        channel="sms",
        deliver={"to": {"phone": "+15550100"}, "variables": {"first_name": "Ada"}},
    )
    assert response.status_code == 201, response.get_json()
    app.extensions["hpe_jobs"].run_pending_deliveries()
    [request] = http_server.requests
    import json

    assert json.loads(request["body"]) == {
        "to": "+15550100",
        "text": "Hi Ada, -20%",
        "reference": response.get_json()["decision_id"],
    }
    app.extensions["hpe_engine"].dispose()


def test_example_plugin_passes_its_own_contract_tests(hpe_sms_installed):
    """The example's own tests (written with the test kit) pass."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_unconfigured_plugin_is_left_out_and_misconfigured_fails_fast(
    hpe_sms_installed, sqlite_url, tmp_path
):
    """Installed but unconfigured: the app starts without the channel; bad settings: it stops."""
    from tests.conftest import BASE, make_test_app

    app = make_test_app(sqlite_url, tmp_path, LOAD_PLUGINS=["email", "web", "ads", "sms"])
    tenant = new_tenant(app)
    channels = app.test_client().get(f"{BASE}/channels", headers=tenant.headers).get_json()
    assert sorted(c["name"] for c in channels) == ["ads", "email", "web"]
    app.extensions["hpe_engine"].dispose()
    with pytest.raises(RuntimeError, match="gateway_url"):
        make_test_app(
            sqlite_url,
            tmp_path,
            LOAD_PLUGINS=["email", "web", "ads", "sms"],
            PLUGINS={"sms": {"gateway_url": "not a url"}},
        )
