"""GET /{id}/metrics computed from the decision log (DESIGN.md §5 metrics contract)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.store.models import Decision
from tests.api.conftest import assert_error
from tests.conftest import BASE
from web.extensions import app_runtime

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

SETTINGS = {
    "actions": [{"id": "a", "cost": 0.5}, {"id": "b", "cost": 0.25}],
    "holdout": {"percent": 50},
    "reward": {"events": {"open": 0.1, "click": 1.0, "conversion": 1.0, "unsubscribe": 0.0}},
}


def _metrics(client, tenant, config_id) -> dict:
    today = dt.datetime.now(dt.UTC).date()
    query = f"from={today - dt.timedelta(days=1)}&to={today + dt.timedelta(days=1)}"
    response = client.get(f"{BASE}/{config_id}/metrics?{query}", headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _total(daily: list[dict], block: str, key: str, counter: str) -> float:
    """A counter summed over days; channels and actions are split by variant: both added."""
    total = 0
    for day in daily:
        found = day["metrics"].get(block, {}).get(key, {})
        if block in ("channels", "actions"):
            total += sum(found.get(v, {}).get(counter, 0) for v in ("treatment", "holdout"))
        else:
            total += found.get(counter, 0)
    return total


def _live_traffic(client, tenant, config_id) -> list[dict]:
    """Decisions for 16 users on two channels; every third engages, one only unsubscribes."""
    sent = []
    for n in range(16):
        channel = "email" if n % 2 else "web"
        response = client.post(
            f"{BASE}/{config_id}/decisions",
            json={"user_id": f"user-{n}", "channel": channel, "context": {}},
            headers=tenant.headers,
        )
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        events = []
        if n % 3 == 0:
            events = [{"decision_id": body["decision_id"], "type": "open"}]
        if n == 3:
            events.append({"decision_id": body["decision_id"], "type": "click"})
            events.append({"decision_id": body["decision_id"], "type": "conversion", "value": 30})
        if n == 5:
            events = [{"decision_id": body["decision_id"], "type": "unsubscribe"}]
        if events:
            response = client.post(
                f"{BASE}/{config_id}/outcomes", json={"outcomes": events}, headers=tenant.headers
            )
            assert response.status_code == 202
        sent.append({**body, "channel": channel, "engaged": n % 3 == 0, "revenue": 30 * (n == 3)})
    return sent


def test_summary_counts_decisions_and_engagements_per_variant(client, tenant, create_config):
    """decisions, engagements, engagement_rate and lift = t/h - 1 match what was sent."""
    config = create_config(settings=SETTINGS)
    sent = _live_traffic(client, tenant, config["id"])
    body = _metrics(client, tenant, config["id"])
    assert body["config_id"] == config["id"]
    summary = body["summary"]
    expected = {
        v: (
            sum(s["variant"] == v for s in sent),
            sum(s["variant"] == v and s["engaged"] for s in sent),
        )
        for v in ("treatment", "holdout")
    }
    assert expected["treatment"][0] and expected["holdout"][0], expected  # both sides present
    for variant, (decisions, engagements) in expected.items():
        assert summary["decisions"][variant] == decisions
        assert summary["engagements"][variant] == engagements
        assert summary["engagement_rate"][variant] == pytest.approx(engagements / decisions)
    t_rate, h_rate = (e / d for d, e in expected.values())
    if h_rate:
        assert summary["lift"]["estimate"] == pytest.approx(t_rate / h_rate - 1)
    else:
        assert summary["lift"]["estimate"] is None
    assert summary["revenue"] == pytest.approx(30.0)
    cost = sum(0.5 if s["action_id"] == "a" else 0.25 for s in sent)
    assert summary["cost"] == pytest.approx(cost)
    # ROI is incremental: revenue per decision above the holdout's, times treatment
    # decisions, less the treatment decisions' cost, over that cost.
    n = {v: sum(s["variant"] == v for s in sent) for v in ("treatment", "holdout")}
    revenue = {v: sum(s["revenue"] for s in sent if s["variant"] == v) for v in n}
    cost_t = sum(
        0.5 if s["action_id"] == "a" else 0.25 for s in sent if s["variant"] == "treatment"
    )
    incremental = (revenue["treatment"] / n["treatment"] - revenue["holdout"] / n["holdout"]) * n[
        "treatment"
    ]
    assert summary["roi_interval"]["incremental_revenue"] == pytest.approx(incremental)
    assert summary["roi_interval"]["cost"] == pytest.approx(cost_t)
    assert summary["roi"] == pytest.approx((incremental - cost_t) / cost_t)


def test_daily_entries_break_down_by_variant_channel_and_action(client, tenant, create_config):
    """Each day has variants, channels and actions blocks whose counts add up."""
    config = create_config(settings=SETTINGS)
    sent = _live_traffic(client, tenant, config["id"])
    daily = _metrics(client, tenant, config["id"])["daily"]
    assert daily and all(set(day) == {"date", "metrics", "rolled_up_at"} for day in daily)
    assert [day["date"] for day in daily] == sorted(day["date"] for day in daily)
    for block, field in (
        ("variants", "variant"),
        ("channels", "channel"),
        ("actions", "action_id"),
    ):
        for key in {s[field] for s in sent}:
            assert _total(daily, block, key, "decisions") == sum(s[field] == key for s in sent)
            engaged = sum(s[field] == key and s["engaged"] for s in sent)
            assert _total(daily, block, key, "engagements") == engaged
    assert _total(daily, "sources", "live", "decisions") == len(sent)
    assert _total(daily, "channels", "email", "revenue") == pytest.approx(30.0)


def test_imported_decisions_count_under_sources_only(client, tenant, create_config):
    """Imported history is in daily sources.import, never in the treatment/holdout summary."""
    config = create_config(settings=SETTINGS)
    sent = _live_traffic(client, tenant, config["id"])
    now = dt.datetime.now(dt.UTC).isoformat()
    lines = [
        {
            "user_id": f"old-{n}",
            "channel": "email",
            "timestamp": now,
            "context": {},
            "action_id": "a",
            "probability": 0.5,
            "outcomes": [{"type": "click"}] if n < 2 else [],
        }
        for n in range(5)
    ]
    # Lines with a reward instead of events: a positive reward counts as engaged.
    lines += [
        {**lines[0], "user_id": f"rewarded-{n}", "reward": reward}
        for n, reward in enumerate((1.0, 0.0, 0.5))
    ]
    for line in lines[5:]:
        del line["outcomes"]
    response = client.post(
        f"{BASE}/{config['id']}/imports",
        data="\n".join(json.dumps(line) for line in lines),
        headers={**tenant.headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202 and response.get_json()["accepted"] == 8
    body = _metrics(client, tenant, config["id"])
    summary = body["summary"]
    assert summary["decisions"]["treatment"] + summary["decisions"]["holdout"] == len(sent)
    assert _total(body["daily"], "sources", "import", "decisions") == 8
    assert _total(body["daily"], "sources", "import", "engagements") == 2 + 2
    assert _total(body["daily"], "sources", "live", "decisions") == len(sent)
    assert _total(body["daily"], "channels", "email", "decisions") == sum(
        s["channel"] == "email" for s in sent
    )


@sqlite_only
def test_metrics_of_another_workspace_or_a_bad_range_are_rejected(
    client, tenant, make_tenant, create_config
):
    """Another workspace's configuration → 404; from after to → 422."""
    config = create_config(settings=SETTINGS)
    response = client.get(f"{BASE}/{config['id']}/metrics", headers=make_tenant("rival").headers)
    assert_error(response, 404)
    response = client.get(
        f"{BASE}/{config['id']}/metrics?from=2026-02-02&to=2026-02-01", headers=tenant.headers
    )
    assert_error(response, 422)
    empty = _metrics(client, tenant, config["id"])
    assert empty["summary"]["decisions"] == {"treatment": 0, "holdout": 0}
    assert empty["daily"] == []


def test_apprentice_agreement_counts_baseline_decisions_the_model_agrees_with(
    app, client, tenant, create_config
):
    """Manual mode: every decision is the baseline's; metrics say how often the model agreed."""
    config = create_config(settings={**SETTINGS, "automation": "manual"})
    sent = _live_traffic(client, tenant, config["id"])
    with app_runtime(app).sessions() as session:
        rows = session.execute(
            sa.select(Decision.policy, Decision.action_id, Decision.model_action_id).where(
                Decision.config_id == uuid.UUID(config["id"])
            )
        ).all()
    assert {row.policy for row in rows} == {"baseline"}
    agreed = sum(row.action_id == row.model_action_id for row in rows)
    apprentice = _metrics(client, tenant, config["id"])["summary"]["apprentice"]
    assert apprentice == {
        "baseline_decisions": len(sent),
        "model_agreements": agreed,
        "agreement_rate": agreed / len(sent),
    }
