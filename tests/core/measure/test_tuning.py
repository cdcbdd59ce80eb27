"""Self-tuning on logged data with a known best setting: the candidates are replayed on
the learned decisions, the better learning rate is proposed with its gain and interval,
and an autonomous configuration applies it and is retrained at once."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import sqlalchemy as sa

from hpe_core.decide.decisions import DecisionEngine, DecisionRequest
from hpe_core.decide.policy import store
from hpe_core.learn import adaptation, learning, outcomes
from hpe_core.measure import measurement, tuning
from hpe_core.recommend import recommendations
from hpe_core.store.models import Activity
from hpe_core.tenancy import configs, workspaces
from hpe_core.tenancy.workspaces import Principal
from web.extensions import app_runtime

T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
ACTIONS = [{"id": name, "features": {"style": name}} for name in ("a", "b", "c")]
#: Context n wants action BEST[n]: a strong, simple signal a decent learning rate finds.
BEST = {0: "a", 1: "b", 2: "c"}


def _config(app, session, *, learning_rate: float, automation: str = "assisted"):
    workspaces.create_workspace(session, "tuners")
    principal = Principal("tuners", "test")
    config = configs.create(
        session,
        principal,
        app_runtime(app).catalog,
        name="Tuning",
        settings={
            "actions": ACTIONS,
            "reward": {"events": {"click": 1.0}, "wait_seconds": 60},
            "holdout": {"percent": 30},
            "automation": automation,
            "exploration": {"learning_rate": learning_rate},
            "learning": {"tuning": {"min_decisions": 500, "max_decisions": 3000}},
        },
    )
    session.commit()
    engine = DecisionEngine(app_runtime(app).sessions, rng=random.Random(3), config_ttl=0)
    return principal, config.id, engine


def _log(session, principal, config_id, engine, count: int) -> None:
    """``count`` decisions, clicked when they serve the context's best action (and
    sometimes otherwise), learned in batches as the product does."""
    rng = random.Random(11)
    for n in range(count):
        now = T0 + dt.timedelta(seconds=n)
        context = {"n": n % 3}
        request = DecisionRequest(user_id=f"u{n % 700}", channel="email", context=context)
        decision = engine.decide(session, principal, config_id, request, now=now)
        rate = 0.6 if decision.action_id == BEST[n % 3] else 0.1
        if rng.random() < rate:
            event = outcomes.OutcomeEvent(type="click", decision_id=decision.decision_id)
            outcomes.record(session, principal, config_id, [event], now=now)
        session.commit()
        if (n + 1) % 250 == 0:
            learning.learn_all_closed(session, config_id, now=now + dt.timedelta(seconds=61))


def test_a_learning_rate_far_too_small_is_found_and_proposed(app, session):
    """Logged with learning_rate 0.001 (the model barely moves), the replay finds the
    larger rates earn clearly more; the best is proposed with its gain and interval."""
    principal, config_id, engine = _config(app, session, learning_rate=0.001)
    _log(session, principal, config_id, engine, 1500)
    config = configs.get(session, principal, config_id)
    assert tuning.due(session, config, now=T0 + dt.timedelta(hours=1))
    result = tuning.evaluate(session, config, now=T0 + dt.timedelta(hours=1))
    session.commit()
    assert result.n == 1500
    assert result.current.learning_rate == 0.001 and result.current.gain == 0
    assert result.best is not None and result.best.learning_rate >= 0.1
    assert result.best.gain_ci[0] > 0
    assert result.best.estimate > result.current.estimate + 0.1
    # Logged once; the next pass reads it back instead of replaying again.
    assert not tuning.due(session, config, now=T0 + dt.timedelta(hours=2))
    assert tuning.latest(session, config) == result

    report = measurement.run(
        session, config_id, measurement.MeasurementPlugins(), now=T0 + dt.timedelta(hours=2)
    )
    assert "tune_learning:learning" in report.open_recommendations
    (row,) = [
        r
        for r in recommendations.list_for(session, principal, config_id)
        if r.kind == "tune_learning"
    ]
    assert row.patch == {"exploration": result.best.settings}
    assert row.evidence["gain_ci"] == pytest.approx(list(result.best.gain_ci))
    assert recommendations.as_dict(row)["auto_apply"] is True


def test_an_autonomous_configuration_applies_it_and_is_retrained(app, session):
    """In autonomous mode the pass applies the proposal and saves a model trained on the
    recent log with the new settings at once (no empty model in between)."""
    principal, config_id, engine = _config(
        app, session, learning_rate=0.001, automation="autonomous"
    )
    _log(session, principal, config_id, engine, 1500)
    report = measurement.run(
        session, config_id, measurement.MeasurementPlugins(), now=T0 + dt.timedelta(hours=1)
    )
    assert "tune_learning:learning" in report.applied
    config = configs.get(session, principal, config_id)
    settings = configs.settings_of(config)
    assert settings.exploration.learning_rate >= 0.1
    newest = store.latest(session, config_id)
    assert newest.source == adaptation.RETRAIN_SOURCE
    assert f"-l {settings.exploration.learning_rate!r}" in newest.vw_args
    retrained = session.scalars(
        sa.select(Activity).where(
            Activity.config_id == config_id, Activity.type == adaptation.MODEL_RETRAINED
        )
    ).all()
    assert len(retrained) == 1 and retrained[0].data["examples"] == 1500
    # The evaluation was of the old settings: it is no longer read back, and a new one
    # is due at the next pass.
    assert tuning.latest(session, config) is None
    assert tuning.due(session, config, now=T0 + dt.timedelta(hours=1, minutes=5))


def test_too_few_decisions_or_tuning_off_evaluates_nothing(app, session):
    """Below min_decisions nothing is replayed or logged; switched off, never due."""
    principal, config_id, engine = _config(app, session, learning_rate=0.1)
    _log(session, principal, config_id, engine, 250)
    config = configs.get(session, principal, config_id)
    assert tuning.evaluate(session, config, now=T0) is None
    configs.update(
        session,
        principal,
        app_runtime(app).catalog,
        config_id,
        settings_patch={"learning": {"tuning": {"enabled": False}}},
    )
    session.commit()
    assert not tuning.due(session, config, now=T0)


def test_compare_picks_the_best_significant_candidate():
    """Paired gains over the current settings with Bonferroni intervals: a candidate that
    is better on every decision wins; one that is better only on average by noise and one
    that is worse do not."""
    tried = [
        {"learning_rate": 0.1, "power_t": 0.5},
        {"learning_rate": 0.2, "power_t": 0.5},
        {"learning_rate": 0.5, "power_t": 0.5},
        {"learning_rate": 0.05, "power_t": 0.5},
    ]
    rng = random.Random(1)
    base = [rng.random() for _ in range(400)]
    terms = [
        base,
        [b + 0.05 for b in base],  # better everywhere
        [b + rng.gauss(0.01, 0.5) for b in base],  # noise
        [b - 0.05 for b in base],  # worse
    ]
    result = tuning.compare(tried, terms, n=400, evaluated_at=T0)
    assert result.best.learning_rate == 0.2
    assert result.best.gain == pytest.approx(0.05)
    noisy = result.candidates[2]
    assert noisy.gain_ci[0] < 0 < noisy.gain_ci[1]
    assert result.candidates[3].gain_ci[1] < 0
    assert result.z > 1.96  # corrected for three comparisons
    again = type(result).from_dict(result.as_dict())
    assert again == result
