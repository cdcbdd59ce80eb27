"""The circuit breaker: when it trips (pure, at its thresholds), what tripping does (on
both databases, through the measurement pass), and that a restore does not re-trip on
the data that tripped it.

``seed`` writes decisions and click outcomes straight into the log with a controlled
engagement rate per variant: the other measurement tests import it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
from sqlalchemy import insert, select

from hpe_core.decide.decisions import DecisionRequest
from hpe_core.errors import InvalidInput
from hpe_core.measure import measurement
from hpe_core.measure.metrics import summarize
from hpe_core.recommend import circuit_breaker, recommendations
from hpe_core.results import Lift, PerVariant
from hpe_core.store.models import Activity, Config, Decision, Outcome, Recommendation, utcnow
from hpe_core.tenancy import configs
from hpe_core.tenancy.settings import normalize_stored_settings, parse_settings, validate_settings
from hpe_core.tenancy.settings_types import Settings
from hpe_core.tenancy.workspaces import Principal
from tests.conftest import create_tenant
from web.extensions import app_runtime

BAD_MODEL = {
    "actions": [{"id": "a"}, {"id": "b"}],
    "holdout": {"percent": 50},
    "guardrails": {"circuit_breaker": {"min_decisions": 300}},
}


def seed(
    session,
    config: Config,
    *,
    variant: str,
    count: int,
    engaged: int,
    action_id: str = "a",
    channel: str = "email",
    context: dict | None = None,
    created_at: dt.datetime | None = None,
    policy: str | None = None,
    probabilities: list[float] | None = None,
    learned: bool = False,
) -> list[uuid.UUID]:
    """Log ``count`` live decisions of one variant, the first ``engaged`` with a click.

    The rows carry what ``DecisionEngine.decide`` writes; treatment is served by the
    model, holdout by the baseline (unless ``policy`` says otherwise), with uniform
    propensities unless ``probabilities`` (over the actions, in settings order) are given.
    ``learned`` also sets what learning writes (reward 1 for a click, else 0). Commits.
    """
    created_at = created_at or utcnow() - dt.timedelta(minutes=30)
    eligible = [a["id"] for a in config.settings["actions"]]
    probabilities = probabilities or [1 / len(eligible)] * len(eligible)
    decisions, outcomes = [], []
    for n in range(count):
        decision_id = uuid.uuid4()
        user_id = f"{variant}-{uuid.uuid4().hex[:10]}"
        decisions.append(
            {
                "id": decision_id,
                "workspace_id": config.workspace_id,
                "config_id": config.id,
                "user_id": user_id,
                "channel": channel,
                "context": context or {},
                "eligible": eligible,
                "probabilities": probabilities,
                "action_id": action_id,
                "probability": probabilities[eligible.index(action_id)],
                "variant": variant,
                "policy": policy or ("model" if variant == "treatment" else "baseline"),
                "model_version": 0,
                "model_action_id": action_id,
                "source": "live",
                "created_at": created_at,
                "window_closes_at": created_at + dt.timedelta(days=1),
            }
        )
        if learned:
            decisions[-1] |= {
                "learned_at": created_at,
                "reward": 1.0 if n < engaged else 0.0,
                "engaged": n < engaged,
            }
        if n < engaged:
            outcomes.append(
                {
                    "id": uuid.uuid4(),
                    "workspace_id": config.workspace_id,
                    "config_id": config.id,
                    "decision_id": decision_id,
                    "user_id": user_id,
                    "type": "click",
                    "value": None,
                    "occurred_at": created_at,
                    "received_at": created_at,
                    "idempotency_key": f"{decision_id}:click",
                    "late": False,
                    "source": "api",
                }
            )
    session.execute(insert(Decision), decisions)
    if outcomes:
        session.execute(insert(Outcome), outcomes)
    session.commit()
    return [row["id"] for row in decisions]


def make_config(app, session, settings: dict, name: str = "Breaker") -> tuple[Principal, Config]:
    tenant = create_tenant(app)
    principal = Principal(tenant.id, "hpe_sk_test")
    config = configs.create(session, principal, configs.Catalog(), name=name, settings=settings)
    session.commit()
    return principal, config


def run_pass(app, session, config, now=None):
    return measurement.run(session, config.id, app_runtime(app).measurement, now=now)


# --- assess: pure ---------------------------------------------------------------------------


def _summary(t=(1000, 50), h=(1000, 150), ci_high=-0.2, p_value=1e-6):
    return dataclasses.replace(
        summarize([]),
        decisions=PerVariant(t[0], h[0]),
        engagements=PerVariant(t[1], h[1]),
        engagement_rate=PerVariant(t[1] / t[0], h[1] / h[0]),
        lift=Lift(estimate=-0.6, ci_low=-0.7, ci_high=ci_high, p_value=p_value),
    )


def _settings(**breaker):
    return parse_settings({"actions": [{"id": "a"}], "guardrails": {"circuit_breaker": breaker}})


def test_trips_when_treatment_is_significantly_worse():
    evidence = circuit_breaker.assess(_settings(), _summary())
    assert evidence["decisions"] == {"treatment": 1000, "holdout": 1000}
    assert evidence["lift"]["ci_high"] == -0.2 and evidence["alpha"] == 0.01


@pytest.mark.parametrize(
    ("summary", "trips"),
    [
        (_summary(t=(1000, 50), h=(999, 150)), False),  # holdout below min_decisions
        (_summary(t=(999, 50), h=(1000, 150)), False),
        (_summary(ci_high=0.0), False),  # the interval reaches zero
        (_summary(ci_high=-0.001), True),
        (_summary(p_value=0.01), False),  # p must be below alpha
        (_summary(p_value=0.0099), True),
        (_summary(ci_high=None, p_value=None), False),
    ],
)
def test_trip_thresholds(summary, trips):
    assert (circuit_breaker.assess(_settings(), summary) is not None) is trips


def test_settings_change_the_thresholds_and_can_switch_it_off():
    assert circuit_breaker.assess(_settings(alpha=0.001), _summary(p_value=0.005)) is None
    assert circuit_breaker.assess(_settings(min_decisions=2000), _summary()) is None
    assert circuit_breaker.assess(_settings(enabled=False), _summary()) is None
    manual = parse_settings({"actions": [{"id": "a"}], "automation": "manual"})
    assert circuit_breaker.assess(manual, _summary()) is None
    # A configuration stored before the setting existed gets the defaults.
    legacy = {"actions": [{"id": "a"}], "automation": "assisted", "guardrails": {}}
    legacy = Settings.of(normalize_stored_settings(legacy))
    assert circuit_breaker.assess(legacy, _summary()) is not None


def test_breaker_settings_are_validated():
    for bad in ({"alpha": 0}, {"alpha": 0.6}, {"min_decisions": 0}, {"window_days": 0}, {"x": 1}):
        with pytest.raises(InvalidInput) as info:
            _settings(**bad)
        assert set(info.value.errors["settings"]["guardrails"]["circuit_breaker"]) == set(bad)
    defaults = validate_settings({"actions": [{"id": "a"}]})["guardrails"]["circuit_breaker"]
    assert defaults == {"enabled": True, "alpha": 0.01, "min_decisions": 1000, "window_days": 7}


# --- tripping, on both databases ------------------------------------------------------------


def test_a_clearly_worse_treatment_reverts_everyone_to_the_baseline(app, session):
    """5% vs 15% engagement over 400 decisions each: manual, logged, a critical
    recommendation to restore; new decisions are all served by the baseline."""
    principal, config = make_config(app, session, BAD_MODEL)
    seed(session, config, variant="treatment", count=400, engaged=20)
    seed(session, config, variant="holdout", count=400, engaged=60, action_id="b")

    report = run_pass(app, session, config)
    assert report.tripped is True
    session.expire_all()
    config = session.get(Config, config.id)
    assert config.settings["automation"] == "manual"

    logged = session.scalars(
        select(Activity).where(Activity.config_id == config.id).order_by(Activity.created_at)
    ).all()
    [update] = [a for a in logged if a.type == "config.updated"]
    assert update.actor == "engine"
    assert update.data["changes"]["settings.automation"] == ["assisted", "manual"]
    [trip] = [a for a in logged if a.type == "guardrail.circuit_breaker"]
    assert trip.actor == "engine"
    assert trip.data["decisions"] == {"treatment": 400, "holdout": 400}
    assert trip.data["lift"]["ci_high"] < 0 and trip.data["lift"]["p_value"] < 0.01
    assert trip.data["previous"] == "assisted"

    [row] = session.scalars(
        select(Recommendation).where(Recommendation.kind == "circuit_breaker")
    ).all()
    assert (row.status, row.severity, row.patch) == ("open", "critical", {"automation": "assisted"})
    assert recommendations.as_dict(row)["auto_apply"] is False
    assert "circuit_breaker:" in report.open_recommendations

    engine = app_runtime(app).decisions
    for n in range(40):
        engine.decide(session, principal, config.id, DecisionRequest(f"after-{n}", "email"))
    session.commit()
    policies = session.scalars(
        select(Decision.policy).where(
            Decision.config_id == config.id, Decision.user_id.like("after-%")
        )
    ).all()
    assert len(policies) == 40 and set(policies) == {"baseline"}


def test_restoring_does_not_retrip_on_the_old_data(app, session):
    """Applying the breaker's recommendation restores automation; passes that day and the
    days after judge only data from after the restore."""
    principal, config = make_config(app, session, BAD_MODEL)
    seed(session, config, variant="treatment", count=400, engaged=20)
    seed(session, config, variant="holdout", count=400, engaged=60, action_id="b")
    assert run_pass(app, session, config).tripped is True
    row = session.scalar(select(Recommendation).where(Recommendation.kind == "circuit_breaker"))

    applied, config = recommendations.apply(
        session, principal, configs.Catalog(), config.id, row.id
    )
    session.commit()
    assert config.settings["automation"] == "assisted" and applied.status == "applied"

    now = utcnow()
    for later in (now, now + dt.timedelta(days=1), now + dt.timedelta(days=3)):
        report = run_pass(app, session, config, now=later)
        assert report.tripped is False, later
        session.expire_all()
        assert session.get(Config, config.id).settings["automation"] == "assisted"
    trips = session.scalars(
        select(Activity).where(Activity.type == "guardrail.circuit_breaker")
    ).all()
    assert len(trips) == 1


def test_the_window_starts_the_day_after_the_last_automation_change(app, session):
    principal, config = make_config(app, session, BAD_MODEL)
    now = utcnow()
    today = now.date()
    assert circuit_breaker.window(session, config, now=now) == (today - dt.timedelta(days=6), today)
    configs.update(
        session,
        principal,
        configs.Catalog(),
        config.id,
        settings_patch={"holdout": {"percent": 40}},
    )
    session.commit()
    assert circuit_breaker.window(session, config, now=now)[0] == today - dt.timedelta(days=6)
    configs.update(
        session,
        principal,
        configs.Catalog(),
        config.id,
        settings_patch={"automation": "autonomous"},
    )
    session.commit()
    first, last = circuit_breaker.window(session, config, now=now)
    assert first == today + dt.timedelta(days=1) and first > last  # empty today
    later = now + dt.timedelta(days=30)
    assert circuit_breaker.window(session, config, now=later)[0] == later.date() - dt.timedelta(
        days=6
    )


def test_no_trip_when_treatment_is_not_worse(app, session):
    _, config = make_config(app, session, BAD_MODEL)
    seed(session, config, variant="treatment", count=400, engaged=60)
    seed(session, config, variant="holdout", count=400, engaged=60, action_id="b")
    assert run_pass(app, session, config).tripped is False
    session.expire_all()
    assert session.get(Config, config.id).settings["automation"] == "assisted"
    assert (
        session.scalar(select(Recommendation).where(Recommendation.kind == "circuit_breaker"))
        is None
    )


def test_an_open_breaker_recommendation_resolves_when_automation_is_restored_by_hand(app, session):
    principal, config = make_config(app, session, BAD_MODEL)
    seed(session, config, variant="treatment", count=400, engaged=20)
    seed(session, config, variant="holdout", count=400, engaged=60, action_id="b")
    assert run_pass(app, session, config).tripped is True
    configs.update(
        session, principal, configs.Catalog(), config.id, settings_patch={"automation": "assisted"}
    )
    session.commit()
    assert run_pass(app, session, config).tripped is False
    row = session.scalar(select(Recommendation).where(Recommendation.kind == "circuit_breaker"))
    session.refresh(row)
    assert row.status == "resolved"
