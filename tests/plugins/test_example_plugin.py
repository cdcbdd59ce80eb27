"""The example third-party plugin (examples/hpe-sms), pip-installed into a throwaway
directory for this module: found through its entry point, it adds a channel with no core
change and delivers. The project's venv is left exactly as it was found."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from plugins.manager import connectors, make_plugin_manager
from tests.connectors.conftest import create_config, decide, new_tenant
from web.extensions import app_runtime

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hpe-sms"
# The example is a plugin written against 0.1 and kept so: it imports hpe_core.channels
# and hpe_core.delivery, which moved in 0.2 and still work, with a MovedModuleWarning.
pytestmark = pytest.mark.filterwarnings("ignore::hpe_core._moved.MovedModuleWarning")
# A fresh interpreter of this venv (-I: no PYTHONPATH, no user site, no cwd), as `hpe` sees it.
_FIND_IN_VENV = [
    sys.executable,
    "-I",
    "-c",
    "import importlib.metadata as m; m.distribution('hpe-sms')",
]


def _installed() -> bool:
    try:
        importlib.metadata.distribution("hpe-sms")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _venv_listing() -> set[str]:
    """Every entry of the venv's site-packages: where pip writes .pth, dist-info, egg-link."""
    dirs = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return {os.path.join(d, name) for d in dirs for name in os.listdir(d)}


def _found_in_venv() -> bool:
    return subprocess.run(_FIND_IN_VENV, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def venv_before():
    """The venv as this module found it: site-packages' entries, and whether hpe-sms is in."""
    return _venv_listing(), _found_in_venv()


@pytest.fixture(scope="module")
def hpe_sms_site(venv_before, tmp_path_factory):
    """A directory on ``sys.path`` holding hpe-sms (``None`` if the venv already has it).

    Module-scoped, not session-scoped: the rest of the suite must not discover an sms
    channel through ``make_plugin_manager()``.
    """
    if _installed():  # installed by hand: use it, and leave it installed
        yield None
        return
    base = tmp_path_factory.mktemp("hpe-sms")
    # pip builds in the source tree (build/, *.egg-info): build a copy, not the checkout.
    source = shutil.copytree(EXAMPLE, base / "src", ignore=shutil.ignore_patterns("tests"))
    site_dir = base / "site"
    # Not editable: an editable install into --target needs its .pth run, and the finder
    # that .pth adds to sys.meta_path would outlive this module.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(site_dir),
            str(source),
        ],
        check=True,
    )
    sys.path.insert(0, str(site_dir))
    importlib.invalidate_caches()
    try:
        yield site_dir
    finally:
        sys.path.remove(str(site_dir))
        sys.path_importer_cache.pop(str(site_dir), None)
        for name in [m for m in sys.modules if m == "hpe_sms" or m.startswith("hpe_sms.")]:
            del sys.modules[name]
        importlib.invalidate_caches()


@pytest.fixture
def hpe_sms_installed(hpe_sms_site):
    """The ``hpe_sms`` module, importable and registered as distribution hpe-sms."""
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
    app_runtime(app).jobs.run_pending_deliveries()
    [request] = http_server.requests
    import json

    assert json.loads(request["body"]) == {
        "to": "+15550100",
        "text": "Hi Ada, -20%",
        "reference": response.get_json()["decision_id"],
    }
    app_runtime(app).engine.dispose()


def test_example_plugin_passes_its_own_contract_tests(hpe_sms_installed, hpe_sms_site, tmp_path):
    """The example's own tests (written with the test kit) pass."""
    env = dict(os.environ)
    if hpe_sms_site is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(hpe_sms_site), env.get("PYTHONPATH")])
        )
    # A copy of its tests outside this repository: they run as in the plugin's own
    # repository (under its configuration, not this repo's setup.cfg), and import hpe_sms
    # as installed, not from its source folder.
    tests = shutil.copytree(EXAMPLE / "tests", tmp_path / "tests")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
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
    app_runtime(app).engine.dispose()
    with pytest.raises(RuntimeError, match="gateway_url"):
        make_test_app(
            sqlite_url,
            tmp_path,
            LOAD_PLUGINS=["email", "web", "ads", "sms"],
            PLUGINS={"sms": {"gateway_url": "not a url"}},
        )


def test_example_tests_leave_the_venv_as_they_found_it(venv_before, hpe_sms_installed):
    """With hpe-sms importable here, the venv's site-packages and a fresh `hpe` are unchanged."""
    listing, found = venv_before
    assert _venv_listing() ^ listing == set()
    assert _found_in_venv() is found
