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

    app = create_app({"INLINE_SWEEPER": False})
    url, stop = start_embedded_server(app)
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
            _admin_pages(page, url)
            _survey(page, url, app)
            browser.close()
    finally:
        stop()
    print(f"Screenshots in {IMAGES}")


def _admin_pages(page, url: str) -> None:
    """The admin pages, each with what it shows once (a password, a key, a secret)."""
    page.goto(f"{url}/dashboard/admin/people")
    page.fill("#email", "analyst@example.com")
    page.check("#role-new-viewer")
    page.click("[data-testid=add]")
    page.screenshot(path=IMAGES / "admin-people.png")
    page.goto(f"{url}/dashboard/admin/keys")
    page.fill("#name", "braze-prod")
    page.click("[data-testid=create]")
    page.screenshot(path=IMAGES / "admin-keys.png")
    page.goto(f"{url}/dashboard/admin/webhooks")
    page.click("[data-testid=create]")
    page.screenshot(path=IMAGES / "admin-webhooks.png")
    page.goto(f"{url}/dashboard/admin/channels/web")
    page.fill("#allowed_origins", "https://shop.example\nshop.example")
    page.click("[data-testid=save]")
    page.screenshot(path=IMAGES / "admin-channel.png")
    page.goto(f"{url}/dashboard/admin/consent?channel=email&user_id=user-1042")
    page.screenshot(path=IMAGES / "admin-consent.png")


def _survey(page, url: str, app) -> None:
    """The survey prompt (the demo person's first sign-in moved 30 days back) and the
    report, over the demo person's answer and a few made-up colleagues' from two months."""
    import datetime as dt

    from sqlalchemy import update

    from hpe_core.store.models import SurveyAnswer, User
    from hpe_core.tenancy import people
    from web.extensions import app_runtime

    now = dt.datetime.now(dt.UTC)
    with app_runtime(app).sessions() as session:
        session.execute(
            update(User)
            .where(User.email == EMAIL)
            .values(first_sign_in_at=now - dt.timedelta(days=31))
        )
        for index, (days, score, comment) in enumerate(
            (
                (40, 3, "Setting up the first configuration took a while."),
                (38, 4, ""),
                (35, 5, ""),
                (9, 4, "The lift interval makes the case to finance."),
                (6, 5, ""),
                (3, 2, "I would like more channels."),
            )
        ):
            user, _ = people.create_user(
                session,
                f"colleague{index}@example.com",
                workspace_id="demo",
                actor="demo",
                password_cost=app.config["PASSWORD_HASH_COST"],
            )
            session.add(
                SurveyAnswer(
                    user_id=user.id,
                    workspace_id="demo",
                    score=score,
                    comment=comment,
                    created_at=now - dt.timedelta(days=days),
                )
            )
        session.commit()
    page.goto(f"{url}/dashboard/")
    page.screenshot(path=IMAGES / "survey.png")
    page.check("#survey-score-4")
    page.click("[data-testid=survey-send]")
    page.wait_for_selector("[data-testid=survey-thanks]")
    page.goto(f"{url}/dashboard/admin/survey")
    page.screenshot(path=IMAGES / "survey-report.png", full_page=True)


if __name__ == "__main__":
    main()
