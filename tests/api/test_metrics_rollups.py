"""GET /{id}/metrics over stored rollups: same answer as live, fresh after late events,
the new summary blocks, channel costs from plugin settings, and bad ranges."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.measure import rollups
from hpe_core.store.models import Config, Decision
from tests.api.conftest import assert_error
from tests.conftest import BASE, create_tenant, make_test_app
from web.extensions import app_runtime

SETTINGS = {
    "actions": [{"id": "a", "cost": 0.5}, {"id": "b", "cost": 0.25}],
    "holdout": {"percent": 50},
    "reward": {"events": {"open": 0.1, "click": 1.0, "conversion": 1.0}},
}
TODAY = dt.datetime.now(dt.UTC).date()
DAY = dt.timedelta(days=1)


def _get(client, tenant, config_id, date_from, date_to) -> dict:
    response = client.get(
        f"{BASE}/{config_id}/metrics?from={date_from}&to={date_to}", headers=tenant.headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _traffic(client, tenant, config_id, users=24) -> list[dict]:
    """Decisions on two channels and three segments; every third user clicks, user 3 buys."""
    sent = []
    for n in range(users):
        response = client.post(
            f"{BASE}/{config_id}/decisions",
            json={
                "user_id": f"user-{n}",
                "channel": "email" if n % 2 else "web",
                "context": {"segment": ["new", "loyal", "vip"][n % 3]},
            },
            headers=tenant.headers,
        )
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        events = [{"decision_id": body["decision_id"], "type": "click"}] if n % 3 == 0 else []
        if n == 3:
            events.append({"decision_id": body["decision_id"], "type": "conversion", "value": 30})
        if events:
            response = client.post(
                f"{BASE}/{config_id}/outcomes", json={"outcomes": events}, headers=tenant.headers
            )
            assert response.status_code == 202
        sent.append(body)
    return sent


def _move_to(session, decision_ids, day: dt.date) -> None:
    """Move decisions to an earlier day, as if they had been made then."""
    moment = dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC)
    session.execute(
        sa.update(Decision)
        .where(Decision.id.in_([uuid.UUID(i) for i in decision_ids]))
        .values(created_at=moment, window_closes_at=moment + dt.timedelta(days=1))
    )
    session.commit()


def _refresh(app, session, config_id, marked=()) -> None:
    config = session.get(Config, uuid.UUID(config_id))
    rollups.mark_stale(session, config.id, marked)
    rollups.refresh(session, config, channel_costs=app_runtime(app).measurement.channel_costs)
    session.commit()


def test_rolled_up_days_answer_exactly_what_live_computation_did(
    app, client, tenant, create_config, session
):
    """Before and after the rollup the response is the same; past days say when rolled up."""
    config = create_config(settings=SETTINGS)
    sent = _traffic(client, tenant, config["id"])
    _move_to(session, [s["decision_id"] for s in sent[:8]], TODAY - 10 * DAY)
    _move_to(session, [s["decision_id"] for s in sent[8:14]], TODAY - 3 * DAY)
    live = _get(client, tenant, config["id"], TODAY - 14 * DAY, TODAY)
    assert all(day["rolled_up_at"] is None for day in live["daily"])

    _refresh(app, session, config["id"], marked=[TODAY - 10 * DAY, TODAY - 3 * DAY])
    stored = _get(client, tenant, config["id"], TODAY - 14 * DAY, TODAY)
    assert stored["summary"] == live["summary"]
    assert [(d["date"], d["metrics"]) for d in stored["daily"]] == [
        (d["date"], d["metrics"]) for d in live["daily"]
    ]
    rolled = {d["date"]: d["rolled_up_at"] for d in stored["daily"]}
    assert rolled[str(TODAY - 10 * DAY)] is not None
    assert rolled[str(TODAY - 3 * DAY)] is not None
    assert rolled[str(TODAY)] is None  # today is always computed live
    assert stored["summary"]["decisions"]["treatment"] + stored["summary"]["decisions"][
        "holdout"
    ] == len(sent)


def test_a_late_outcome_on_a_rolled_up_day_shows_at_once(
    app, client, tenant, create_config, session
):
    """An outcome for a 10-day-old decision marks its day; the next read counts it."""
    config = create_config(settings=SETTINGS)
    sent = _traffic(client, tenant, config["id"])
    silent = [s for n, s in enumerate(sent) if n % 3][:4]
    _move_to(session, [s["decision_id"] for s in silent], TODAY - 10 * DAY)
    _refresh(app, session, config["id"], marked=[TODAY - 10 * DAY])
    before = _get(client, tenant, config["id"], TODAY - 10 * DAY, TODAY - 10 * DAY)
    assert before["daily"][0]["rolled_up_at"] is not None
    engaged_before = sum(before["summary"]["engagements"].values())

    response = client.post(
        f"{BASE}/{config['id']}/outcomes",
        json={"decision_id": silent[0]["decision_id"], "type": "click"},
        headers=tenant.headers,
    )
    assert response.status_code == 202
    after = _get(client, tenant, config["id"], TODAY - 10 * DAY, TODAY - 10 * DAY)
    assert sum(after["summary"]["engagements"].values()) == engaged_before + 1
    assert after["daily"][0]["rolled_up_at"] is None  # computed live until rolled up again
    _refresh(app, session, config["id"])
    again = _get(client, tenant, config["id"], TODAY - 10 * DAY, TODAY - 10 * DAY)
    assert again["daily"][0]["rolled_up_at"] is not None
    assert again["summary"] == after["summary"]


SLICE_KEYS = {
    "decisions",
    "engagements",
    "engagement_rate",
    "lift",
    "revenue",
    "cost",
    "treatment_cost",
    "incremental_revenue",
    "incremental_revenue_ci_low",
    "incremental_revenue_ci_high",
    "roi",
    "roi_ci_low",
    "roi_ci_high",
}


def test_summary_reports_srm_power_roi_and_breakdowns(client, tenant, create_config):
    """The summary carries the SRM check, power plan, ROI interval and per-slice blocks."""
    config = create_config(settings={**SETTINGS, "goals": {"target_lift": 0.25}})
    sent = _traffic(client, tenant, config["id"])
    summary = _get(client, tenant, config["id"], TODAY - DAY, TODAY)["summary"]
    assert summary["lift"]["method"] == "katz-log-rr"
    srm = summary["srm"]
    assert srm["expected_holdout_share"] == 0.5
    holdout = sum(s["variant"] == "holdout" for s in sent)
    assert srm["observed_holdout_share"] == pytest.approx(holdout / len(sent))
    assert isinstance(srm["alarm"], bool)
    assert summary["power"]["target_lift"] == 0.25
    assert summary["power"]["holdout_decisions"] == holdout
    assert set(summary["roi_interval"]) >= {"incremental_revenue", "ci_low", "ci_high", "cost"}
    assert set(summary["channels"]) == {"email", "web"}
    for block in ("channels", "actions"):
        for found in summary[block].values():
            assert set(found) == SLICE_KEYS
    assert sum(
        found["decisions"]["treatment"] + found["decisions"]["holdout"]
        for found in summary["actions"].values()
    ) == len(sent)
    assert set(summary["segments"]) == {"new", "loyal", "vip"}
    new_users = summary["segments"]["new"]  # users 0, 3, 6...: every one clicked
    assert all(
        rate in (1.0, None)
        for channel in new_users.values()
        for rate in channel["engagement_rate"].values()
    )


def test_channel_costs_come_from_the_plugin_settings(tmp_path, sqlite_url):
    """PLUGINS[channel].cost_per_decision is added to each decision's action cost."""
    app = make_test_app(
        sqlite_url,
        tmp_path,
        PLUGINS={"email": {"cost_per_decision": 0.05}, "web": {"cost_per_decision": 0.01}},
    )
    try:
        assert app_runtime(app).measurement.channel_costs["email"] == 0.05
        tenant = create_tenant(app)
        client = app.test_client()
        created = client.post(
            f"{BASE}/", json={"name": "c", "settings": SETTINGS}, headers=tenant.headers
        )
        sent = _traffic(client, tenant, created.get_json()["id"], users=10)
        summary = _get(client, tenant, created.get_json()["id"], TODAY, TODAY)["summary"]
        expected = sum(
            {"a": 0.5, "b": 0.25}[s["action_id"]] + (0.05 if n % 2 else 0.01)
            for n, s in enumerate(sent)
        )
        assert summary["cost"] == pytest.approx(expected)
    finally:
        app_runtime(app).engine.dispose()


@pytest.mark.parametrize(
    "plugins",
    [{"web": {"cost_per_decision": "lots"}}, {"email": {"cost_per_decision": -1}}],
)
def test_a_bad_channel_cost_stops_the_app_with_its_name(tmp_path, sqlite_url, plugins):
    """A cost that is not a number >= 0 fails at start, naming the setting."""
    with pytest.raises((ValueError, RuntimeError), match="cost_per_decision"):
        make_test_app(sqlite_url, tmp_path, PLUGINS=plugins)


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-02-02&to=2026-02-01",  # reversed
        "from=2025-01-01&to=2026-01-02",  # 367 days
        "from=2026-13-01",  # not a date
        "to=yesterday",
    ],
)
def test_bad_ranges_get_a_4xx_with_the_error_shape(sqlite_app, query):
    """Reversed, over a year, or malformed: 422 with the one error shape, never a 5xx."""
    tenant = create_tenant(sqlite_app)
    client = sqlite_app.test_client()
    created = client.post(
        f"{BASE}/", json={"name": "c", "settings": SETTINGS}, headers=tenant.headers
    )
    response = client.get(
        f"{BASE}/{created.get_json()['id']}/metrics?{query}", headers=tenant.headers
    )
    assert_error(response, 422)


def test_the_openapi_document_describes_the_new_summary_fields(sqlite_app):
    """The metrics schema documents srm, power, roi_interval, slices and rolled_up_at."""
    spec = sqlite_app.test_client().get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    summary = next(s for name, s in schemas.items() if "srm" in s.get("properties", {}))
    assert {"srm", "power", "roi_interval", "channels", "actions", "segments"} <= set(
        summary["properties"]
    )
    days = [s for s in schemas.values() if "rolled_up_at" in s.get("properties", {})]
    assert days and days[0]["properties"]["rolled_up_at"].get("nullable") is True


@pytest.mark.parametrize(
    "query", ["from=0001-01-01&to=0001-01-03", "from=9999-12-25&to=9999-12-31", "to=0001-01-01"]
)
def test_ranges_at_the_calendars_edges_answer(sqlite_app, query):
    """Days next to 0001-01-01 or 9999-12-31 answer 200 with empty metrics, never a 5xx."""
    tenant = create_tenant(sqlite_app)
    client = sqlite_app.test_client()
    created = client.post(
        f"{BASE}/", json={"name": "c", "settings": SETTINGS}, headers=tenant.headers
    )
    response = client.get(
        f"{BASE}/{created.get_json()['id']}/metrics?{query}", headers=tenant.headers
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["daily"] == [] and body["summary"]["power"]["days_more"] is None
