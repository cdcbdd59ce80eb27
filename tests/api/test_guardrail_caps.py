"""guardrails.max_action_share and guardrails.budget on the decision path (decide.guardrails).

The app here has a channel cost (PLUGINS email.cost_per_decision) so every budget test
also proves the spend counts it. The counts' refresh interval is 0: each decision re-reads
them, as a process would after ``REFRESH_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.decide import assignment
from hpe_core.decide.decisions import DecisionRequest
from hpe_core.deliver.touchpoints import response
from hpe_core.store.models import Activity, Decision
from hpe_core.tenancy.workspaces import Principal
from tests.conftest import BASE, make_test_app
from web.extensions import app_runtime

EMAIL_COST = 0.5


@pytest.fixture
def app(database_url, tmp_path):
    app = make_test_app(
        database_url, tmp_path, PLUGINS={"email": {"cost_per_decision": EMAIL_COST}}
    )
    app_runtime(app).decisions.usage.refresh_interval = 0
    yield app
    app_runtime(app).engine.dispose()


def _engine_decide(app, tenant, config_id, user_id, *, now=None, channel="email", candidates=None):
    """One decision through the engine itself (``now`` lets a test place it in the past),
    as the API would answer it."""
    engine = app_runtime(app).decisions
    session = app_runtime(app).sessions()
    try:
        result = engine.decide(
            session,
            Principal(tenant.id, "test"),
            uuid.UUID(config_id),
            DecisionRequest(user_id, channel, {}, candidates),
            now=now,
        )
        session.commit()
        return response(result)
    finally:
        session.close()


def _post(client, tenant, config_id, user_id, channel="email"):
    body = {"user_id": user_id, "channel": channel, "context": {}}
    response = client.post(f"{BASE}/{config_id}/decisions", json=body, headers=tenant.headers)
    assert response.status_code in (200, 201), response.get_json()
    return response.status_code, response.get_json()


def _users(config_id, percent, variant, n):
    users = (f"user-{i}" for i in range(10_000))
    found = [u for u in users if assignment.variant(uuid.UUID(config_id), u, percent) == variant]
    return found[:n]


def _count(app, model, **where):
    session = app_runtime(app).sessions()
    try:
        query = sa.select(sa.func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return session.scalar(query)
    finally:
        session.close()


# --- max_action_share ------------------------------------------------------------------------


def test_an_over_share_action_is_refused_in_treatment_but_kept_in_the_holdout(
    app, client, tenant, create_config
):
    """100 decisions of "a" today (share 1 > 0.6): treatment gets "b", the holdout's fixed
    baseline still gets "a"."""
    settings = {
        "actions": [{"id": "a"}, {"id": "b"}],
        "holdout": {"percent": 50, "baseline": {"action_id": "a"}},
        "guardrails": {"max_action_share": 0.6},
    }
    config = create_config(settings=settings)
    for i in range(100):  # below 100 decisions shares do not count: all 100 are served
        assert (
            _engine_decide(app, tenant, config["id"], f"seed-{i}", candidates=["a"])["action_id"]
            == "a"
        )
    for user in _users(config["id"], 50, "treatment", 5):
        status, body = _post(client, tenant, config["id"], user)
        assert (status, body["action_id"], body["variant"]) == (201, "b", "treatment")
    for user in _users(config["id"], 50, "holdout", 5):
        status, body = _post(client, tenant, config["id"], user)
        assert (status, body["action_id"], body["variant"]) == (201, "a", "holdout")


def test_all_actions_over_share_is_200_with_the_reason_in_treatment_only(
    app, client, tenant, create_config
):
    settings = {
        "actions": [{"id": "a"}, {"id": "b"}],
        "holdout": {"percent": 50},
        "guardrails": {"max_action_share": 0.5},
    }
    config = create_config(settings=settings)
    for i in range(100):
        _engine_decide(app, tenant, config["id"], f"seed-{i}", candidates=["a" if i % 2 else "b"])
    treated = _users(config["id"], 50, "treatment", 1)[0]
    status, body = _post(client, tenant, config["id"], treated)
    assert (status, body["action_id"], body["reason"]) == (200, None, "max_action_share")
    assert _count(app, Decision, config_id=uuid.UUID(config["id"])) == 100  # nothing logged
    held_out = _users(config["id"], 50, "holdout", 1)[0]
    status, body = _post(client, tenant, config["id"], held_out)
    assert status == 201 and body["action_id"] in {"a", "b"}


# --- budget -----------------------------------------------------------------------------------


def test_a_daily_budget_stops_decisions_counting_channel_costs_and_logs_once(
    app, client, tenant, create_config
):
    """email costs action + 0.5, web the action's cost only; budget 4 a day."""
    settings = {
        "actions": [{"id": "a", "cost": 1.0}, {"id": "b", "cost": 2.0}],
        "holdout": {"percent": 10},
        "guardrails": {"budget": {"amount": 4.0, "period": "day"}},
    }
    config = create_config(settings=settings)
    config_id = uuid.UUID(config["id"])
    _engine_decide(app, tenant, config["id"], "u1", candidates=["a"])  # spend 1.5
    _engine_decide(app, tenant, config["id"], "u2", candidates=["a"])  # spend 3.0
    # email: a would bring 4.5, b 5.5 (without the channel cost a would fit: 3.0 → 4.0)
    status, body = _post(client, tenant, config["id"], "u3", channel="email")
    assert (status, body["reason"]) == (200, "budget_exhausted")
    # web: "a" costs 1.0 and fits exactly (4.0); "b" (5.0) does not
    for user in ("u4", "u5", "u6"):
        status, body = _post(client, tenant, config["id"], user, channel="web")
        if user == "u4":
            assert (status, body["action_id"]) == (201, "a")
        else:
            assert (status, body["reason"]) == (200, "budget_exhausted")
    assert _count(app, Decision, config_id=config_id) == 3
    assert _count(app, Activity, config_id=config_id, type="guardrail.budget_exhausted") == 1
    # A new day is a new budget.
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    result = _engine_decide(app, tenant, config["id"], "u7", now=tomorrow)
    assert result["action_id"] in {"a", "b"}


def test_a_monthly_budget_counts_the_earlier_days_of_the_month_only(app, tenant, create_config):
    """1.5 per decision; two earlier March decisions (3.0) and one in February (not counted)."""
    settings = {
        "actions": [{"id": "a", "cost": 1.0}],
        "guardrails": {"budget": {"amount": 4.5, "period": "month"}},
    }
    config = create_config(settings=settings)
    day = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)
    for when in (
        dt.datetime(2026, 2, 27, 9, tzinfo=dt.UTC),
        day.replace(day=5),
        day.replace(day=10),
    ):
        assert _engine_decide(app, tenant, config["id"], "early", now=when)["action_id"] == "a"
    # 3.0 + 1.5 fits 4.5 exactly: February's 1.5 is not in March's spend.
    assert _engine_decide(app, tenant, config["id"], "x", now=day)["action_id"] == "a"
    refused = _engine_decide(app, tenant, config["id"], "y", now=day + dt.timedelta(hours=1))
    assert refused["reason"] == "budget_exhausted"  # 4.5 spent: earlier days counted
    assert (
        _engine_decide(app, tenant, config["id"], "z", now=day.replace(month=4, day=1))["action_id"]
        == "a"
    )


def test_a_total_budget_counts_every_day(app, tenant, create_config):
    settings = {
        "actions": [{"id": "a", "cost": 1.0}],
        "guardrails": {"budget": {"amount": 3.0, "period": "total"}},
    }
    config = create_config(settings=settings)
    years = [dt.datetime(2025, 6, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 15, tzinfo=dt.UTC)]
    for when in years:
        assert _engine_decide(app, tenant, config["id"], "u", now=when)["action_id"] == "a"
    later = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert _engine_decide(app, tenant, config["id"], "v", now=later)["reason"] == (
        "budget_exhausted"
    )
