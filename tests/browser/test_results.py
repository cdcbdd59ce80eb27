"""The overview and results pages in a real browser: the numbers equal the metrics API's,
recommendations apply and dismiss, and viewers see no control they may not use."""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid

import pytest
from playwright.sync_api import expect

from hpe_core.recommend import recommendations
from hpe_core.recommend.proposals import Proposal
from hpe_core.recommend.rules import HOLDOUT_UNDERPOWERED, SRM_ALARM
from hpe_core.store.models import Config
from hpe_core.store.vocabulary import Role, Severity
from hpe_core.tenancy import workspaces
from tests.browser.conftest import assert_accessible, shoot, sign_in, wait_ready
from tests.conftest import BASE
from web.dashboard.formatting import count, signed_percent
from web.extensions import app_runtime

pytestmark = pytest.mark.slow


@pytest.fixture
def campaign(live_app, team):
    """A configuration with a few hundred decisions and clicks, and two open
    recommendations (one with a settings change, one alarm)."""
    team.person("editor@example.com", Role.EDITOR)
    team.person("viewer@example.com", Role.VIEWER)
    with app_runtime(live_app).sessions() as session:
        _row, key = workspaces.create_key(session, "acme")
        session.commit()
    client, headers = live_app.test_client(), {"Authorization": f"Bearer {key}"}
    created = client.post(
        f"{BASE}/",
        headers=headers,
        json={
            "name": "Spring sale",
            "settings": {
                "channels": ["email", "web"],
                "actions": [{"id": "shoes", "cost": 0.1}, {"id": "hats", "cost": 0.1}],
                "holdout": {"percent": 30},
            },
        },
    ).get_json()
    rng = random.Random(3)
    for index in range(300):
        answer = client.post(
            f"{BASE}/{created['id']}/decisions",
            headers=headers,
            json={
                "user_id": f"user-{index}",
                "channel": rng.choice(["email", "web"]),
                "context": {"segment": rng.choice(["new", "loyal"])},
            },
        ).get_json()
        odds = 0.3 if answer["variant"] == "treatment" else 0.1
        if rng.random() < odds:
            events = [{"decision_id": answer["decision_id"], "type": "click"}]
            if rng.random() < 0.5:
                events.append(
                    {"decision_id": answer["decision_id"], "type": "conversion", "value": 40}
                )
            client.post(
                f"{BASE}/{created['id']}/outcomes", headers=headers, json={"outcomes": events}
            )
    config_id = uuid.UUID(created["id"])
    with app_runtime(live_app).sessions() as session:
        config = session.get(Config, config_id)
        now = dt.datetime.now(dt.UTC)
        for spec, subject, patch, title in (
            (HOLDOUT_UNDERPOWERED, "", {"holdout": {"percent": 40}}, "Grow the holdout to 40%."),
            (SRM_ALARM, "", None, "The split between treatment and holdout looks off."),
        ):
            recommendations.upsert(
                session,
                config,
                Proposal(
                    spec=spec,
                    subject=subject,
                    severity=Severity.WARNING,
                    title=title,
                    detail="Made by the test.",
                    evidence={"from": "test"},
                    patch=patch,
                ),
                now=now,
            )
        session.commit()
    return {"id": created["id"], "client": client, "headers": headers}


def test_results_numbers_equal_the_metrics_api(page, live_server, campaign, backend):
    """KPI cards show exactly GET /{id}/metrics over the same (default) range."""
    metrics = (
        campaign["client"]
        .get(f"{BASE}/{campaign['id']}/metrics", headers=campaign["headers"])
        .get_json()
    )
    summary = metrics["summary"]
    sign_in(page, live_server, "viewer@example.com")
    page.goto(f"{live_server}/dashboard/configs/{campaign['id']}")
    wait_ready(page)
    decisions = summary["decisions"]["treatment"] + summary["decisions"]["holdout"]
    expect(page.get_by_test_id("kpi-decisions")).to_have_text(count(decisions))
    expect(page.get_by_test_id("kpi-lift")).to_have_text(
        signed_percent(summary["lift"]["estimate"])
    )
    low, high = summary["lift"]["ci_low"], summary["lift"]["ci_high"]
    expect(page.get_by_test_id("kpi-lift-ci")).to_have_text(
        f"{signed_percent(low)} to {signed_percent(high)}"
    )
    expect(page.get_by_test_id("kpi-roi")).to_have_text(signed_percent(summary["roi"], 0))
    expect(page.get_by_test_id("chart-lift").locator("canvas")).to_have_count(1)
    expect(page.get_by_test_id("chart-daily").locator("canvas")).to_have_count(1)
    expect(page.get_by_test_id("evaluation")).to_be_visible()
    # The charts' time axis spans the days shown, half a day each side (uPlot's own range
    # for a single day spanned years).
    first = dt.date.fromisoformat(metrics["daily"][0]["date"])
    last = dt.date.fromisoformat(metrics["daily"][-1]["date"])
    for chart in ("chart-lift", "chart-daily"):
        low_x, high_x = page.get_by_test_id(chart).evaluate(
            "el => [el.uplot.scales.x.min, el.uplot.scales.x.max]"
        )
        start = dt.datetime.combine(first, dt.time(), dt.UTC).timestamp()
        end = dt.datetime.combine(last, dt.time(), dt.UTC).timestamp()
        assert (low_x, high_x) == (start - 43200, end + 43200), chart
    shoot(page, f"results-{backend}")
    assert_accessible(page)
    # The range lives in the URL: a shared link shows the same range.
    today = dt.datetime.now(dt.UTC).date()
    page.goto(f"{live_server}/dashboard/configs/{campaign['id']}?from={today}&to={today}")
    expect(page.get_by_label("From")).to_have_value(today.isoformat())


def test_viewers_see_no_actions_and_cannot_force_one(page, live_server, campaign):
    """A viewer reads recommendations without apply/dismiss; a forged POST is 403."""
    sign_in(page, live_server, "viewer@example.com")
    page.goto(f"{live_server}/dashboard/configs/{campaign['id']}")
    wait_ready(page)
    expect(page.get_by_test_id("recommendation")).to_have_count(2)
    expect(page.get_by_test_id("apply")).to_have_count(0)
    expect(page.get_by_test_id("dismiss")).to_have_count(0)
    expect(page.get_by_test_id("rollback")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    rid = _first_recommendation_id(campaign)
    answer = page.request.post(
        f"{live_server}/dashboard/configs/{campaign['id']}/recommendations/{rid}/apply",
        form={"csrf_token": token},
    )
    assert answer.status == 403


def test_an_editor_applies_and_dismisses_recommendations(page, live_server, campaign):
    """Apply changes the settings (and the page says so); dismiss removes the card."""
    sign_in(page, live_server, "editor@example.com")
    page.goto(f"{live_server}/dashboard/configs/{campaign['id']}")
    wait_ready(page)
    growing = page.get_by_test_id("recommendation").filter(has_text="Grow the holdout")
    expect(growing).to_contain_text("holdout.percent: 30.0 → 40")
    growing.get_by_test_id("apply").click()
    expect(page.get_by_role("status")).to_contain_text("Applied: Grow the holdout to 40%.")
    expect(page.get_by_test_id("recommendation")).to_have_count(1)
    config = campaign["client"].get(f"{BASE}/{campaign['id']}", headers=campaign["headers"])
    assert config.get_json()["settings"]["holdout"]["percent"] == 40
    page.get_by_test_id("recommendation").get_by_test_id("dismiss").click()
    expect(page.get_by_test_id("recommendation")).to_have_count(0)
    shoot(page, "results-after-apply-and-dismiss")
    activities = (
        campaign["client"]
        .get(f"{BASE}/{campaign['id']}/activities", headers=campaign["headers"])
        .get_json()
    )
    actors = {a["type"]: a["actor"] for a in activities}
    assert actors["recommendation.applied"] == "user:editor@example.com"
    assert actors["recommendation.dismissed"] == "user:editor@example.com"


def test_overview_lists_the_configuration_with_its_numbers(page, live_server, campaign):
    """One row per configuration with the same decisions and lift as its results page."""
    metrics = (
        campaign["client"]
        .get(f"{BASE}/{campaign['id']}/metrics", headers=campaign["headers"])
        .get_json()["summary"]
    )
    sign_in(page, live_server, "editor@example.com")
    wait_ready(page)
    row = page.get_by_test_id("config-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("row-decisions")).to_have_text(
        count(metrics["decisions"]["treatment"] + metrics["decisions"]["holdout"])
    )
    expect(row.get_by_test_id("row-lift")).to_have_text(signed_percent(metrics["lift"]["estimate"]))
    shoot(page, "overview")
    assert_accessible(page)
    row.get_by_role("link", name="Spring sale").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/configs/{campaign['id']}$"))


def test_an_empty_workspace_says_how_to_begin(page, live_server, team):
    """No configuration yet: the overview explains how to create the first one."""
    team.person("new@example.com", Role.ADMIN, workspace="fresh")
    sign_in(page, live_server, "new@example.com")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No configuration yet")
    shoot(page, "overview-empty")
    assert_accessible(page)


def test_csv_downloads_hold_the_daily_table(page, live_server, campaign):
    """The daily CSV has a header and one row per day with decisions."""
    sign_in(page, live_server, "viewer@example.com")
    answer = page.request.get(f"{live_server}/dashboard/configs/{campaign['id']}/daily.csv")
    lines = answer.text().strip().splitlines()
    assert answer.status == 200 and lines[0].startswith("date,treatment_decisions")
    assert len(lines) == 2 and lines[1].startswith(dt.datetime.now(dt.UTC).date().isoformat())


def _first_recommendation_id(campaign) -> str:
    found = (
        campaign["client"]
        .get(f"{BASE}/{campaign['id']}/recommendations", headers=campaign["headers"])
        .get_json()
    )
    return next(r["id"] for r in found["recommendations"] if r["patch"])
