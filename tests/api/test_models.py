"""The learning loop through the API: sweep → learn → model versions, hot swap, rollback."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.decide import assignment
from hpe_core.decide.features import ActionCatalog, decision_features
from hpe_core.decide.policy.learner import Learner
from hpe_core.learn import learning
from hpe_core.store.models import Decision, ModelVersion
from tests.api.conftest import assert_error
from tests.conftest import BASE
from web.extensions import app_runtime
from worker.queues import sweep

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

ACTIONS = [{"id": "a", "features": {"tone": "bold"}}, {"id": "b", "features": {"tone": "calm"}}]
#: The shortest reward window, so a sweep after ~1 s finds the decisions closed.
QUICK = {"actions": ACTIONS, "reward": {"wait_seconds": 1}, "holdout": {"percent": 10}}
CONTEXT = {"segment": "bargain"}
FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _decide(client, tenant, config_id, user_id, context=CONTEXT) -> dict:
    response = client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": user_id, "channel": "email", "context": context},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _treated_user(config_id) -> str:
    """A user the model serves (treatment): holdout users get the uniform baseline."""
    return next(
        u
        for u in (f"watcher-{n}" for n in range(100))
        if assignment.variant(config_id, u, QUICK["holdout"]["percent"]) == "treatment"
    )


def _click(client, tenant, config_id, decision_id) -> None:
    response = client.post(
        f"{BASE}/{config_id}/outcomes",
        json={"decision_id": decision_id, "type": "click"},
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.get_json()


def _run_learning(app) -> int:
    """What the sweeper thread and the inline worker do, run now: returns jobs enqueued."""
    enqueued = sweep(app_runtime(app).jobs, app_runtime(app).sessions)
    app_runtime(app).jobs.run_pending()
    return enqueued


def _round(client, tenant, config_id, n, clicked_action, prefix) -> list[dict]:
    """n decisions; those that chose ``clicked_action`` get a click."""
    bodies = [_decide(client, tenant, config_id, f"{prefix}{i}") for i in range(n)]
    for body in bodies:
        if body["action_id"] == clicked_action:
            _click(client, tenant, config_id, body["decision_id"])
    return bodies


def _learn_now(app, config_id) -> None:
    """Learn as if every reward window had closed (no waiting)."""
    with app_runtime(app).sessions() as session:
        learning.learn_all_closed(session, uuid.UUID(config_id), now=FAR_FUTURE)


def _versions(client, tenant, config_id) -> list[dict]:
    response = client.get(f"{BASE}/{config_id}/models", headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _decisions(app, config_id) -> dict[str, Decision]:
    session = app_runtime(app).sessions()
    try:
        rows = session.scalars(
            sa.select(Decision).where(Decision.config_id == uuid.UUID(config_id))
        )
        return {str(row.id): row for row in rows}
    finally:
        session.close()


def _model(app, config_id, version) -> ModelVersion:
    session = app_runtime(app).sessions()
    try:
        return session.scalars(
            sa.select(ModelVersion).where(
                ModelVersion.config_id == uuid.UUID(config_id), ModelVersion.version == version
            )
        ).one()
    finally:
        session.close()


def test_sweep_learns_closed_decisions_once_and_saves_a_version(app, client, tenant, create_config):
    """A sweep learns every closed decision with its reward, once; GET /models lists v1."""
    config = create_config(settings=QUICK)
    bodies = _round(client, tenant, config["id"], 8, "a", "u")
    assert _run_learning(app) == 0  # windows still open: nothing to learn yet
    assert _versions(client, tenant, config["id"]) == []
    time.sleep(1.2)
    assert _run_learning(app) == 1
    decisions = _decisions(app, config["id"])
    for body in bodies:
        decision = decisions[body["decision_id"]]
        assert decision.learned_at is not None
        assert decision.reward == (1.0 if body["action_id"] == "a" else 0.0)
        assert decision.engaged is (body["action_id"] == "a")
    [version] = _versions(client, tenant, config["id"])
    assert version["version"] == 1 and version["source"] == "learn"
    assert version["examples"] == 8 and version["total_examples"] == 8
    assert "--cb_explore_adf" in version["vw_args"] and len(version["checksum"]) == 64
    assert set(version) == {
        "version",
        "vw_args",
        "vw_version",
        "checksum",
        "examples",
        "total_examples",
        "source",
        "created_at",
    }
    # A second pass finds nothing new: no job, no version, nothing relearned.
    learned_at = {k: d.learned_at for k, d in decisions.items()}
    assert _run_learning(app) == 0
    assert len(_versions(client, tenant, config["id"])) == 1
    assert {k: d.learned_at for k, d in _decisions(app, config["id"]).items()} == learned_at


@sqlite_only
def test_models_of_another_workspace_are_404(client, make_tenant, create_config):
    """GET /models and rollback of another workspace's configuration → 404."""
    config = create_config(settings=QUICK)
    rival = make_tenant("rival")
    assert_error(client.get(f"{BASE}/{config['id']}/models", headers=rival.headers), 404)
    response = client.post(
        f"{BASE}/{config['id']}/model/rollback", json={"version": 1}, headers=rival.headers
    )
    assert_error(response, 404)


def test_serving_hot_swaps_to_a_new_version_without_restart(app, client, tenant, create_config):
    """Decisions report the new model_version shortly after a learn run, same app object."""
    config = create_config(settings=QUICK)
    engine = app_runtime(app).decisions
    engine.models.check_interval = 0.05  # the default is 1 s; keep the test short
    bodies = _round(client, tenant, config["id"], 6, "b", "u")
    assert {b["model_version"] for b in bodies} == {0}
    time.sleep(1.2)
    _run_learning(app)
    watcher = _treated_user(config["id"])
    deadline, seen = time.monotonic() + 5, 0
    while time.monotonic() < deadline and seen != 1:
        time.sleep(0.06)
        seen = _decide(client, tenant, config["id"], watcher)["model_version"]
    assert seen == 1
    # The served model is v1's: same probabilities as v1 loaded on its own.
    v1 = _model(app, config["id"], 1)
    expected = Learner.load(v1.vw_args, v1.model).predict(
        decision_features("email", CONTEXT), ActionCatalog(ACTIONS).lines(["a", "b"])
    )
    body = _decide(client, tenant, config["id"], watcher)
    served = {r["action_id"]: r["probability"] for r in body["ranking"]}
    assert served == pytest.approx({"a": expected[0], "b": expected[1]})


def test_rollback_pins_an_earlier_version(app, client, tenant, create_config):
    """Rollback to v1 → 200, a new version copying v1 (same checksum), served at once."""
    config = create_config(settings=QUICK)
    _round(client, tenant, config["id"], 10, "a", "first")
    _learn_now(app, config["id"])
    _round(client, tenant, config["id"], 10, "b", "second")
    _learn_now(app, config["id"])
    versions = _versions(client, tenant, config["id"])
    assert [v["version"] for v in versions] == [2, 1]
    v1 = next(v for v in versions if v["version"] == 1)

    response = client.post(
        f"{BASE}/{config['id']}/model/rollback", json={"version": 1}, headers=tenant.headers
    )
    assert response.status_code == 200, response.get_json()
    restored = response.get_json()
    assert restored["version"] == 3
    assert restored["source"] == "rollback:1"
    assert restored["checksum"] == v1["checksum"]
    assert restored["examples"] == 0
    assert [v["version"] for v in _versions(client, tenant, config["id"])] == [3, 2, 1]

    # Served at once (no wait for the check interval), and identical to v1's predictions.
    body = _decide(client, tenant, config["id"], _treated_user(config["id"]))
    assert body["model_version"] == 3
    lines = ActionCatalog(ACTIONS).lines(["a", "b"])
    shared = decision_features("email", CONTEXT)
    model_1, model_2 = _model(app, config["id"], 1), _model(app, config["id"], 2)
    expected = Learner.load(model_1.vw_args, model_1.model).predict(shared, lines)
    other = Learner.load(model_2.vw_args, model_2.model).predict(shared, lines)
    assert expected != pytest.approx(other)  # v2 learned something else
    served = {r["action_id"]: r["probability"] for r in body["ranking"]}
    assert served == pytest.approx({"a": expected[0], "b": expected[1]})


@sqlite_only
def test_rollback_to_an_unknown_version_is_404(client, tenant, create_config):
    """Rolling back to a version that does not exist → 404; a bad body → 422."""
    config = create_config(settings=QUICK)
    url = f"{BASE}/{config['id']}/model/rollback"
    error = assert_error(client.post(url, json={"version": 7}, headers=tenant.headers), 404)
    assert "version" in error["errors"]
    for body in ({}, {"version": 0}, {"version": "one"}, {"version": 1, "extra": True}):
        assert_error(client.post(url, json=body, headers=tenant.headers), 422)
    assert _versions(client, tenant, config["id"]) == []


@sqlite_only
def test_rollback_across_exploration_settings_is_409(app, client, tenant, create_config):
    """A version trained with other exploration settings cannot serve: 409, nothing saved."""
    config = create_config(settings=QUICK)
    _round(client, tenant, config["id"], 3, "a", "u")
    _learn_now(app, config["id"])
    assert [v["version"] for v in _versions(client, tenant, config["id"])] == [1]
    patch = {"settings": {"exploration": {"algorithm": "epsilon"}}}
    assert (
        client.patch(f"{BASE}/{config['id']}", json=patch, headers=tenant.headers).status_code
        == 200
    )
    url = f"{BASE}/{config['id']}/model/rollback"
    error = assert_error(client.post(url, json={"version": 1}, headers=tenant.headers), 409)
    assert "exploration" in error["message"]
    assert [v["version"] for v in _versions(client, tenant, config["id"])] == [1]
