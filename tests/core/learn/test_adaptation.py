"""Keeping the model current, on real databases: the drift detector retrains from the log
since the change, a settings change retrains from the recent log, new actions get a trial,
and a removed action stops at once."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import sqlalchemy as sa

from hpe_core.decide.decisions import DecisionEngine, DecisionRequest
from hpe_core.decide.features import ActionCatalog, decision_features
from hpe_core.decide.policy import store
from hpe_core.decide.policy.learner import Learner
from hpe_core.decide.policy.trials import LearnerState, with_trial
from hpe_core.learn import adaptation, learning, outcomes
from hpe_core.measure import measurement
from hpe_core.recommend import recommendations
from hpe_core.store.models import Activity, Decision
from hpe_core.store.vocabulary import Variant
from hpe_core.tenancy import configs, workspaces
from hpe_core.tenancy.workspaces import Principal
from web.extensions import app_runtime

T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
WAIT = 60
ACTIONS = [{"id": "a", "features": {"style": "bold"}}, {"id": "b", "features": {"style": "calm"}}]


@pytest.fixture
def loop(app, session):
    """A configuration with a small holdout and a detector that may react after 100."""
    workspaces.create_workspace(session, "keepers")
    principal = Principal("keepers", "test")
    config = configs.create(
        session,
        principal,
        app_runtime(app).catalog,
        name="Keeping up",
        settings={
            "actions": ACTIONS,
            "reward": {"events": {"click": 1.0}, "wait_seconds": WAIT},
            "holdout": {"percent": 1},
            "learning": {
                "drift": {"min_decisions": 100},
                "new_actions": {"trial_decisions": 20, "trial_share": 0.3},
            },
        },
    )
    session.commit()
    # Every decision serves the newest model: with the default (a check a second of wall
    # clock) how many decisions an old model served depended on the machine's speed.
    engine = DecisionEngine(
        app_runtime(app).sessions, rng=random.Random(7), config_ttl=0, model_check_interval=0
    )
    return app, principal, config.id, engine


def _run(session, loop, start: int, count: int, rewarded: str, *, learn_every: int = 100):
    """``count`` decisions from second ``start`` on; a click when ``rewarded`` is chosen;
    learning every ``learn_every`` decisions, once their windows closed."""
    _app, principal, config_id, engine = loop
    served = []
    for n in range(start, start + count):
        now = T0 + dt.timedelta(seconds=n)
        request = DecisionRequest(user_id=f"u{n % 500}", channel="email", context={"n": n % 3})
        decision = engine.decide(session, principal, config_id, request, now=now)
        served.append(decision)
        if decision.action_id == rewarded:
            event = outcomes.OutcomeEvent(type="click", decision_id=decision.decision_id)
            outcomes.record(session, principal, config_id, [event], now=now)
        session.commit()
        if (n + 1 - start) % learn_every == 0:
            learning.learn_all_closed(
                session, config_id, now=now + dt.timedelta(seconds=WAIT + 1), batch_size=100
            )
    return served


def _activities(session, config_id, type_):
    return session.scalars(
        sa.select(Activity)
        .where(Activity.config_id == config_id, Activity.type == type_)
        .order_by(Activity.created_at)
    ).all()


def _top(model, args_context=None) -> list[float]:
    learner = Learner.load(model.vw_args, model.model)
    try:
        return learner.predict(decision_features("email", {"n": 1}), ActionCatalog(ACTIONS).lines())
    finally:
        learner.close()


def test_a_preference_shift_is_detected_and_the_model_relearns_from_the_change(session, loop):
    """Clicks go to a for 1,000 decisions, then to b: the detector alarms soon after the
    change, the model is retrained from the decisions since it (it prefers b at once),
    and the activity says when and on what evidence."""
    _app, _principal, config_id, _engine = loop
    _run(session, loop, 0, 1000, rewarded="a")
    assert _activities(session, config_id, adaptation.MODEL_DRIFT_DETECTED) == []
    before = store.latest(session, config_id)
    assert _top(before)[0] > 0.8
    _run(session, loop, 1000, 400, rewarded="b")

    (alarm,) = _activities(session, config_id, adaptation.MODEL_DRIFT_DETECTED)
    change = dt.datetime.fromisoformat(alarm.data["change_at"])
    assert T0 + dt.timedelta(seconds=1000) <= change <= T0 + dt.timedelta(seconds=1100)
    assert alarm.data["reference_reward"] > 0.8 > 0.2 > alarm.data["recent_reward"]
    assert alarm.data["retrained_from"] == alarm.data["change_at"]
    since_change = session.scalar(
        sa.select(sa.func.count())
        .select_from(Decision)
        .where(
            Decision.config_id == config_id,
            Decision.created_at >= change,
            Decision.learned_at.is_not(None),
            Decision.learned_at < dt.datetime.fromisoformat(alarm.data["detected_at"]),
        )
    )
    assert alarm.data["retrained_examples"] == since_change
    retrained = session.scalar(
        sa.select(store.ModelVersion).where(
            store.ModelVersion.config_id == config_id,
            store.ModelVersion.version == alarm.data["version"],
        )
    )
    assert retrained.source == adaptation.RETRAIN_SOURCE
    assert _top(store.latest(session, config_id))[1] > 0.5
    # The measurement pass says what happened, with the evidence (and nothing to apply).
    detected = dt.datetime.fromisoformat(alarm.data["detected_at"])
    measurement.run(session, config_id, measurement.MeasurementPlugins(), now=detected)
    (notice,) = [
        r
        for r in recommendations.list_for(session, _principal, config_id)
        if r.kind == "preferences_shifted"
    ]
    assert notice.title == (
        f"Preferences shifted on {change.date().isoformat()}; the model re-learned from the "
        "last day."
    )
    assert notice.patch is None and notice.evidence["retrained_examples"] == since_change
    # The detector starts afresh on the retrained model: no second alarm on the new level.
    _run(session, loop, 1400, 300, rewarded="b")
    assert len(_activities(session, config_id, adaptation.MODEL_DRIFT_DETECTED)) == 1


def test_a_stable_reward_never_retrains(session, loop):
    """The same preferences throughout: versions are all plain learn runs."""
    _app, _principal, config_id, _engine = loop
    _run(session, loop, 0, 1500, rewarded="a")
    assert _activities(session, config_id, adaptation.MODEL_DRIFT_DETECTED) == []
    sources = set(
        session.scalars(
            sa.select(store.ModelVersion.source).where(store.ModelVersion.config_id == config_id)
        )
    )
    assert sources == {"learn"}
    assert LearnerState.of(store.latest(session, config_id).state).drift["seen"] > 1000


def test_drift_detection_can_be_switched_off(session, loop):
    """learning.drift.enabled false: the shift is learned slowly, nothing retrains."""
    app, principal, config_id, _engine = loop
    configs.update(
        session,
        principal,
        app_runtime(app).catalog,
        config_id,
        settings_patch={"learning": {"drift": {"enabled": False}}},
    )
    session.commit()
    _run(session, loop, 0, 800, rewarded="a")
    _run(session, loop, 800, 400, rewarded="b")
    assert _activities(session, config_id, adaptation.MODEL_DRIFT_DETECTED) == []


def test_new_exploration_settings_retrain_from_the_recent_log(session, loop):
    """Changing the learning rate cannot reuse the VW model: the next learn run trains a
    model with the new arguments on the logged decisions instead of starting empty."""
    app, principal, config_id, _engine = loop
    _run(session, loop, 0, 300, rewarded="a")
    learned = session.scalar(
        sa.select(sa.func.count())
        .select_from(Decision)
        .where(Decision.config_id == config_id, Decision.learned_at.is_not(None))
    )
    configs.update(
        session,
        principal,
        app_runtime(app).catalog,
        config_id,
        settings_patch={"exploration": {"learning_rate": 0.3}},
    )
    session.commit()
    _run(session, loop, 300, 100, rewarded="a")
    (retrained,) = _activities(session, config_id, adaptation.MODEL_RETRAINED)
    assert retrained.data["reason"] == "settings" and retrained.data["examples"] == learned
    newest = store.latest(session, config_id)
    assert "-l 0.3" in newest.vw_args and newest.source == adaptation.RETRAIN_SOURCE
    assert _top(newest)[0] > 0.8  # it kept what the old model knew


def test_an_added_action_gets_its_trial_then_the_model_judges_it(session, loop):
    """An action added to a live configuration is served with at least trial_share of
    the treatment (propensity logged as served) until the model learned trial_decisions
    of it; then it is known and gets what the model gives it."""
    app, principal, config_id, _engine = loop
    _run(session, loop, 0, 400, rewarded="a")
    configs.update(
        session,
        principal,
        app_runtime(app).catalog,
        config_id,
        settings_patch={"actions": [*ACTIONS, {"id": "c", "features": {"style": "new"}}]},
    )
    session.commit()
    served = _run(session, loop, 400, 30, rewarded="a", learn_every=1000)
    treatment = [d for d in served if d.variant == Variant.TREATMENT]
    for decision in treatment:
        assert dict(zip(decision.eligible, decision.probabilities, strict=True))["c"] >= 0.3
    rows = session.scalars(
        sa.select(Decision).where(Decision.config_id == config_id, Decision.action_id == "c")
    ).all()
    assert all(row.probability >= 0.3 for row in rows if row.variant == Variant.TREATMENT)
    learning.learn_all_closed(session, config_id, now=T0 + dt.timedelta(days=1))
    state = LearnerState.of(store.latest(session, config_id).state)
    assert state.trial == {"c": len(rows)} or "c" in state.known

    # Enough decisions of c learned: its trial ends, the model (which saw no click on c)
    # gives it little.
    _run(session, loop, 430, 200, rewarded="a", learn_every=50)
    state = LearnerState.of(store.latest(session, config_id).state)
    assert "c" in state.known and state.trial == {}
    # The first treatment decision after it (1% of users are in the holdout, served
    # uniformly; which ones depends on the configuration's random id).
    late = next(
        decision
        for n in range(630, 650)
        for decision in _run(session, loop, n, 1, rewarded="a", learn_every=1000)
        if decision.variant == Variant.TREATMENT
    )
    chances = dict(zip(late.eligible, late.probabilities, strict=True))
    assert chances["c"] < chances["a"]  # no longer held up by the trial: a is the best


def test_a_removed_action_is_never_served_again(session, loop):
    """Removing an action from the settings stops it at the next decision."""
    app, principal, config_id, _engine = loop
    _run(session, loop, 0, 200, rewarded="a")
    configs.update(
        session,
        principal,
        app_runtime(app).catalog,
        config_id,
        settings_patch={"actions": ACTIONS[1:]},
    )
    session.commit()
    served = _run(session, loop, 200, 100, rewarded="b")
    assert {d.action_id for d in served} == {"b"}
    state = LearnerState.of(store.latest(session, config_id).state)
    assert "a" not in state.trial


def test_with_trial_mixes_and_stays_a_distribution():
    """The trial share is spread over the actions on trial; the rest keeps the model's
    proportions; nothing changes with none or all on trial."""
    mixed = with_trial([0.7, 0.2, 0.1], [2], 0.3)
    assert mixed == pytest.approx([0.49, 0.14, 0.37])
    assert sum(mixed) == pytest.approx(1.0)
    assert with_trial([0.5, 0.5], [], 0.3) == [0.5, 0.5]
    assert with_trial([0.5, 0.5], [0, 1], 0.3) == [0.5, 0.5]
    state = LearnerState(known=["a", "b"], trial={"c": 3})
    assert state.on_trial(["a", "c", "d"]) == [1, 2]  # d: unknown, added since the last run
