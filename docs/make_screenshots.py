"""Re-make the screenshots in docs/dashboard.md from a fresh demo workspace.

    .venv/bin/python docs/make_screenshots.py

Runs ``hpe demo`` (30 simulated days) on a throwaway instance, serves it on a free
loopback port, signs in with Debian's chromium (Playwright) and saves each page to
docs/images/. Nothing of yours is touched.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
HPE = str(Path(sys.executable).with_name("hpe"))
EMAIL = "demo@example.com"


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="hpe-docs-"))
    env = {**os.environ, "HPE_INSTANCE_PATH": str(folder), "HPE_PASSWORD_HASH_COST": "16384"}
    env.pop("HPE_DATABASE_URL", None)
    env.pop("HPE_REDIS_URL", None)
    done = subprocess.run(
        [HPE, "demo", "--days", "30", "--per-day", "1000", "--email", EMAIL],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    password = done.stdout.strip().splitlines()[-1]
    config_id = re.search(r"Configuration ([0-9a-f-]{36})", done.stdout).group(1)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import expect, sync_playwright

    from web import create_app
    from web.simulate import start_embedded_server

    url, stop = start_embedded_server(create_app({"INLINE_SWEEPER": False}))
    IMAGES.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"{url}/dashboard/login")
            page.screenshot(path=IMAGES / "login.png")
            page.fill("#email", EMAIL)
            page.fill("#password", password)
            page.click("[data-testid=sign-in]")
            page.wait_for_url(f"{url}/dashboard/")
            page.screenshot(path=IMAGES / "overview.png")
            page.goto(f"{url}/dashboard/configs/{config_id}")
            expect(page.locator('[aria-busy="true"]')).to_have_count(0, timeout=60000)
            page.screenshot(path=IMAGES / "results.png")
            for section, name in (
                ("#per-channel", "breakdowns.png"),
                ("#recommendations", "recommendations.png"),
                ("#ope-title", "evaluation.png"),
            ):
                page.locator(section).scroll_into_view_if_needed()
                page.evaluate("window.scrollBy(0, -20)")
                page.screenshot(path=IMAGES / name)
            page.goto(f"{url}/dashboard/configs/{config_id}/edit")
            page.screenshot(path=IMAGES / "config-form.png")
            page.fill("#t-context", '{"segment": "loyal_premium", "device": "desktop"}')
            page.click("[data-testid=try]")
            page.locator("#try").scroll_into_view_if_needed()
            page.screenshot(path=IMAGES / "try-it.png")
            page.goto(f"{url}/dashboard/configs/{config_id}/activity")
            page.screenshot(path=IMAGES / "activity.png")
            browser.close()
    finally:
        stop()
    print(f"Screenshots in {IMAGES}")


if __name__ == "__main__":
    main()
