"""hpe_core.learn.learning on real databases: closed windows, exactly-once learning, models."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.decide.decisions import DecisionEngine, DecisionRequest
from hpe_core.decide.features import ActionCatalog, context_features, decision_features
from hpe_core.decide.policy import store
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.learner import Learner
from hpe_core.deliver.touchpoints import response
from hpe_core.learn import learning, outcomes
from hpe_core.store.models import Activity, Decision, ModelVersion
from hpe_core.tenancy import configs, workspaces
from hpe_core.tenancy.workspaces import Principal
from web.extensions import app_runtime

T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
WAIT = 3600
ACTIONS = [{"id": "a", "features": {"style": "bold"}}, {"id": "b", "features": {"style": "calm"}}]


@pytest.fixture
def loop(app, session):
    """A workspace, an ACTIVE configuration, and a decision engine on the app's database."""
    workspaces.create_workspace(session, "learners")
    principal = Principal("learners", "test")
    config = configs.create(
        session,
        principal,
        app_runtime(app).catalog,
        name="Learning",
        settings={
            "actions": ACTIONS,
            "reward": {"wait_seconds": WAIT, "default": 0.0},
            "holdout": {"percent": 50},  # half the traffic explores uniformly
        },
    )
    session.commit()
    engine = DecisionEngine(app_runtime(app).sessions, rng=random.Random(7))
    return principal, config.id, engine


def _decide(session, loop, user_id, context, now=T0) -> dict:
    principal, config_id, engine = loop
    request = DecisionRequest(user_id=user_id, channel="email", context=context)
    return response(engine.decide(session, principal, config_id, request, now=now))


def _click(session, loop, decision_id, now=T0) -> None:
    principal, config_id, _engine = loop
    event = outcomes.OutcomeEvent(type="click", decision_id=decision_id)
    outcomes.record(session, principal, config_id, [event], now=now)


def _scores(model: ModelVersion, context: dict) -> list[float]:
    learner = Learner.load(model.vw_args, model.model)
    try:
        return learner.predict(decision_features("email", context), ActionCatalog(ACTIONS).lines())
    finally:
        learner.close()


def test_only_closed_windows_are_learned(session, loop):
    """Before wait_seconds have passed nothing is learned; after, every decision is."""
    _principal, config_id, _engine = loop
    for n in range(5):
        _decide(session, loop, f"u{n}", {"n": n})
    session.commit()
    before = T0 + dt.timedelta(seconds=WAIT - 1)
    assert learning.configs_with_closed_windows(session, before) == []
    report = learning.learn_all_closed(session, config_id, now=before)
    assert report.learned == 0 and report.version is None
    assert store.latest(session, config_id) is None
    after = T0 + dt.timedelta(seconds=WAIT)
    assert learning.configs_with_closed_windows(session, after) == [config_id]
    report = learning.learn_all_closed(session, config_id, now=after)
    assert report.learned == 5 and report.version == 1
    assert learning.configs_with_closed_windows(session, after) == []


def test_each_decision_is_learned_exactly_once_with_its_reward(session, loop):
    """Rewards are joined at window close; a second run learns nothing and saves no version."""
    _principal, config_id, _engine = loop
    clicked, silent = [], []
    for n in range(6):
        decision = _decide(session, loop, f"u{n}", {"segment": "x"})
        (clicked if n % 2 else silent).append(decision["decision_id"])
    session.commit()
    for decision_id in clicked:
        _click(session, loop, decision_id, now=T0 + dt.timedelta(minutes=5))
    session.commit()

    later = T0 + dt.timedelta(seconds=WAIT + 1)
    first = learning.learn_all_closed(session, config_id, now=later)
    assert (first.learned, first.skipped, first.version) == (6, 0, 1)
    rows = {
        row.id: row
        for row in session.scalars(sa.select(Decision).where(Decision.config_id == config_id))
    }
    assert all(rows[d].reward == 1.0 and rows[d].engaged for d in clicked)
    assert all(rows[d].reward == 0.0 and rows[d].engaged is False for d in silent)
    assert all(row.learned_at == later for row in rows.values())

    second = learning.learn_all_closed(session, config_id, now=later + dt.timedelta(days=1))
    assert (second.learned, second.version) == (0, None)
    versions = session.scalars(
        sa.select(ModelVersion).where(ModelVersion.config_id == config_id)
    ).all()
    assert [(v.version, v.examples, v.total_examples) for v in versions] == [(1, 6, 6)]
    updates = session.scalars(
        sa.select(Activity).where(
            Activity.config_id == config_id, Activity.type == learning.MODEL_UPDATED
        )
    ).all()
    assert [a.data["examples"] for a in updates] == [6]


def test_learning_moves_the_model_towards_the_rewarded_action(session, loop):
    """Segment x rewards a, segment y rewards b: the learned model ranks them so."""
    _principal, config_id, _engine = loop
    uniform = _decide(session, loop, "probe", {"segment": "x"})
    assert [r["probability"] for r in uniform["ranking"]] == pytest.approx([0.5, 0.5])
    for n in range(240):
        segment = "x" if n % 2 else "y"
        decision = _decide(session, loop, f"u{n}", {"segment": segment})
        if decision["action_id"] == {"x": "a", "y": "b"}[segment]:
            _click(session, loop, decision["decision_id"])
    session.commit()
    report = learning.learn_all_closed(session, config_id, now=T0 + dt.timedelta(days=1))
    assert report.learned == 241
    model = store.latest(session, config_id)
    x, y = _scores(model, {"segment": "x"}), _scores(model, {"segment": "y"})
    assert x[0] > 0.7 > x[1], x
    assert y[1] > 0.7 > y[0], y


def test_save_load_round_trip_predicts_identically(session, loop):
    """A model saved as a version and loaded again predicts exactly as the one that learned."""
    _principal, config_id, _engine = loop
    assert store.latest(session, config_id) is None
    config_args = vw_arguments(configs.get(session, loop[0], config_id).settings["exploration"])
    rng = random.Random(3)
    catalog = ActionCatalog(ACTIONS)
    contexts = [{"segment": s, "hour": h} for s in ("x", "y", "z") for h in (1, 9, 20)]
    learner = Learner(config_args)
    examples = [
        (context_features(c), catalog.lines(), rng.randrange(2), rng.random(), 0.5)
        for c in contexts * 20
    ]
    learner.learn_batch(examples)
    saved = store.save(
        session, config_id, args=config_args, model=learner.save(), examples=60, previous=None
    )
    session.commit()
    session.expire_all()
    loaded = Learner.load(config_args, store.latest(session, config_id).model)
    for context in contexts:
        line = context_features(context)
        assert loaded.predict(line, catalog.lines()) == learner.predict(line, catalog.lines())
    # Both keep learning identically too.
    more = examples[:10]
    learner.learn_batch(more)
    loaded.learn_batch(more)
    line = context_features(contexts[0])
    assert loaded.predict(line, catalog.lines()) == learner.predict(line, catalog.lines())
    assert saved.version == 1
    learner.close()
    loaded.close()


def test_learning_continues_from_a_rolled_back_version(session, loop):
    """After a rollback to v1, the next learn run starts from v1's model, not v2's."""
    _principal, config_id, _engine = loop
    for n in range(4):
        _decide(session, loop, f"u{n}", {"segment": "x"})
    session.commit()
    learning.learn_all_closed(session, config_id, now=T0 + dt.timedelta(days=1))
    later = T0 + dt.timedelta(days=2)
    for n in range(4):
        decision = _decide(session, loop, f"v{n}", {"segment": "x"}, now=later)
        _click(session, loop, decision["decision_id"], now=later)
    session.commit()
    learning.learn_all_closed(session, config_id, now=later + dt.timedelta(days=1))
    restored = store.rollback(
        session, config_id, 1, current_args=store.latest(session, config_id).vw_args
    )
    session.commit()
    v1 = store.latest(session, config_id)
    assert (restored.version, v1.version, v1.source) == (3, 3, "rollback:1")
    later = T0 + dt.timedelta(days=4)
    _decide(session, loop, "w0", {"segment": "x"}, now=later)
    session.commit()
    learning.learn_all_closed(session, config_id, now=later + dt.timedelta(days=1))
    v4 = store.latest(session, config_id)
    # The copy counts what its model holds (v1's 4 examples), and v4 adds one to it.
    assert (restored.total_examples, v4.version, v4.total_examples) == (4, 4, 5)
    # v4 = v1 + one example with reward 0; v2's clicks are not in it.
    expected = Learner.load(v1.vw_args, v1.model)
    decision = session.scalars(sa.select(Decision).where(Decision.user_id == "w0")).one()
    example = (
        decision_features(decision.channel, decision.context),
        ActionCatalog(ACTIONS).lines(),
        decision.eligible.index(decision.action_id),
        0.0,
        decision.probability,
    )
    expected.learn_batch([example])
    line = decision_features("email", {"segment": "x"})
    assert _scores(v4, {"segment": "x"}) == expected.predict(line, ActionCatalog(ACTIONS).lines())
    expected.close()


def test_decisions_for_removed_actions_are_marked_but_not_learned(session, loop):
    """A decision whose action left the settings is marked learned and skipped, not retried."""
    _principal, config_id, _engine = loop
    decision = _decide(session, loop, "u1", {"segment": "x"})
    session.commit()
    config = configs.get(session, loop[0], config_id)
    kept = [a for a in config.settings["actions"] if a["id"] != decision["action_id"]]
    config.settings = {**config.settings, "actions": kept}
    session.commit()
    report = learning.learn_all_closed(session, config_id, now=T0 + dt.timedelta(days=1))
    assert (report.learned, report.skipped) == (0, 1)
    row = session.get(Decision, uuid.UUID(str(decision["decision_id"])))
    assert row.learned_at is not None
    again = learning.learn_all_closed(session, config_id, now=T0 + dt.timedelta(days=2))
    assert (again.learned, again.skipped) == (0, 0)


def test_losing_a_version_race_drops_the_batch_and_reports_busy(session, loop, monkeypatch):
    """If another learner saved the same version number first, this run commits nothing."""
    _principal, config_id, _engine = loop
    for n in range(3):
        _decide(session, loop, f"u{n}", {"segment": "x"})
    session.commit()
    later = T0 + dt.timedelta(days=1)
    learning.learn_all_closed(session, config_id, now=later)
    assert store.latest(session, config_id).version == 1
    for n in range(3):
        _decide(session, loop, f"v{n}", {"segment": "x"}, now=later)
    session.commit()
    # As if this learner had read the versions before the other one committed version 1.
    monkeypatch.setattr(store, "latest", lambda *_args: None)
    report = learning.learn_closed(session, config_id, now=later + dt.timedelta(days=1))
    monkeypatch.undo()
    assert (report.busy, report.learned) == (True, 0)
    unlearned = session.scalar(
        sa.select(sa.func.count()).where(
            Decision.config_id == config_id, Decision.learned_at.is_(None)
        )
    )
    assert unlearned == 3
    assert store.latest(session, config_id).version == 1


def test_learning_replays_the_stored_feature_line_or_rebuilds_it(session, loop):
    """Decisions keep the line the model scored; rows without one are featurized again."""
    _principal, config_id, _engine = loop
    first = _decide(session, loop, "u1", {"segment": "x", "hour": 9})
    _decide(session, loop, "u2", {"segment": "y"})
    session.commit()
    row = session.get(Decision, uuid.UUID(str(first["decision_id"])))
    # The same features (JSONB may reorder an object's keys; VW reads a set of features).
    assert sorted(row.features.split()) == sorted(
        decision_features(row.channel, row.context).split()
    )
    assert row.features == decision_features("email", {"segment": "x", "hour": 9})
    session.execute(
        sa.update(Decision).where(Decision.id == row.id).values(features=None)
    )  # as if logged before the column existed
    session.commit()
    report = learning.learn_all_closed(session, config_id, now=T0 + dt.timedelta(days=1))
    assert (report.learned, report.skipped) == (2, 0)
