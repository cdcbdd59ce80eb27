"""Browser tests: Debian's chromium, driven by pytest-playwright, against a live app.

``playwright install`` cannot download browsers here, so the tests launch the system's
``/usr/bin/chromium`` (``executable_path``), headless, with the flags a closed network
needs. CI sets HPE_TEST_REQUIRE_BROWSER=1: a missing browser then fails the run instead
of skipping. Every page a test visits can be screenshotted into ``test-artifacts/
screenshots/`` (kept by CI) with :func:`shoot`, and scanned with axe-core (vendored from
npm under ``tests/browser/vendor/``) with :func:`assert_accessible`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import people, workspaces
from tests.conftest import make_test_app
from web.extensions import app_runtime

CHROMIUM = os.environ.get("HPE_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(
    os.environ.get("HPE_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts"
)
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
PASSWORD = "correct horse battery"
#: scrypt's cost in these tests: the production cost takes ~0.3 s a hash.
PASSWORD_COST = 2**10


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists() or os.environ.get("HPE_TEST_REQUIRE_BROWSER"):
        return
    skip = pytest.mark.skip(reason=f"no chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch arguments, pointed at the system chromium."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def browser_context_args(browser_context_args):
    # axe-core is injected with evaluate(), which the page's CSP does not govern.
    return {**browser_context_args, "viewport": {"width": 1366, "height": 900}}


@pytest.fixture
def live_app(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, PASSWORD_HASH_COST=PASSWORD_COST)
    yield app
    app_runtime(app).engine.dispose()


@pytest.fixture
def live_server(live_app):
    """The app served on a free loopback port for the browser; its base URL."""
    from web.simulate import start_embedded_server

    url, stop = start_embedded_server(live_app)
    yield url
    stop()


class Team:
    """Workspaces and people on the live app's database."""

    def __init__(self, app):
        self.app = app

    def person(self, email: str, role: Role = Role.EDITOR, workspace: str = "acme") -> str:
        session = app_runtime(self.app).sessions()
        try:
            if session.get(workspaces.Workspace, workspace) is None:
                workspaces.create_workspace(session, workspace)
            people.create_user(
                session,
                email,
                workspace_id=workspace,
                role=role,
                password=PASSWORD,
                password_cost=PASSWORD_COST,
            )
            session.commit()
        finally:
            session.close()
        return email


@pytest.fixture
def team(live_app):
    return Team(live_app)


def sign_in(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/dashboard/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_test_id("sign-in").click()


def wait_ready(page) -> None:
    """A page is ready when nothing on it is still loading (DESIGN.md §9)."""
    from playwright.sync_api import expect

    page.wait_for_load_state("load")
    # A locator, not wait_for_function: the page's CSP forbids the eval that one needs.
    expect(page.locator('[aria-busy="true"]')).to_have_count(0)


def shoot(page, name: str) -> Path:
    """A full-page screenshot under test-artifacts/screenshots/ (kept by CI)."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_accessible(page) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    page.evaluate(AXE.read_text())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, "axe-core found:\n" + "\n".join(bad)
