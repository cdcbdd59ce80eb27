"""POST /{id}/outcomes (DESIGN.md §5): idempotency, ownership, late events, rewards."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.learn import learning
from hpe_core.store.models import Decision, Outcome
from tests.api.conftest import assert_error
from tests.conftest import BASE
from web.extensions import app_runtime

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

TWO_ACTIONS = {"actions": [{"id": "a"}, {"id": "b"}]}
FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _decision_id(client, tenant, config_id, user_id="u1") -> str:
    response = client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": user_id, "channel": "email", "context": {"segment": "new"}},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["decision_id"]


def _post(client, tenant, config_id, body):
    return client.post(f"{BASE}/{config_id}/outcomes", json=body, headers=tenant.headers)


def _accepted(client, tenant, config_id, body) -> dict:
    response = _post(client, tenant, config_id, body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def _as_duplicate(answer: dict) -> dict:
    """The answer a retry of ``answer``'s request gets: the same outcomes, each a duplicate,
    none accepted (issue 14: accepted counts the rows a request stored)."""
    outcomes = [{**outcome, "duplicate": True} for outcome in answer["outcomes"]]
    return {**answer, "accepted": 0, "duplicates": len(outcomes), "outcomes": outcomes}


def _outcomes(app, config_id) -> list[Outcome]:
    session = app_runtime(app).sessions()
    try:
        return list(
            session.scalars(sa.select(Outcome).where(Outcome.config_id == uuid.UUID(config_id)))
        )
    finally:
        session.close()


def _learn(app, config_id) -> dict[str, Decision]:
    """Close every window (a 'now' far in the future), learn, and return the decisions."""
    session = app_runtime(app).sessions()
    try:
        learning.learn_all_closed(session, uuid.UUID(config_id), now=FAR_FUTURE)
        session.expire_all()
        rows = session.scalars(
            sa.select(Decision).where(Decision.config_id == uuid.UUID(config_id))
        )
        return {str(row.id): row for row in rows}
    finally:
        session.close()


def test_single_outcome_is_accepted_and_stored(app, client, tenant, create_config):
    """One outcome → 202 with its idempotency key; the row is tied to the decision and user."""
    config = create_config(settings=TWO_ACTIONS)
    decision_id = _decision_id(client, tenant, config["id"], user_id="u-single")
    occurred = dt.datetime.now(dt.UTC).isoformat()  # after its decision, not in the future
    body = _accepted(
        client,
        tenant,
        config["id"],
        {"decision_id": decision_id, "type": "click", "occurred_at": occurred},
    )
    assert body["accepted"] == 1
    [result] = body["outcomes"]
    assert result["decision_id"] == decision_id and result["type"] == "click"
    assert result["late"] is False and result["idempotency_key"]
    [row] = _outcomes(app, config["id"])
    assert str(row.decision_id) == decision_id
    assert row.user_id == "u-single"  # filled in from the decision
    assert row.type == "click" and row.late is False
    assert row.occurred_at == dt.datetime.fromisoformat(occurred)


def test_batch_of_outcomes_is_accepted(app, client, tenant, create_config):
    """{"outcomes": [...]} → 202 with one result per event, in order."""
    config = create_config(settings=TWO_ACTIONS)
    first = _decision_id(client, tenant, config["id"], "u1")
    second = _decision_id(client, tenant, config["id"], "u2")
    events = [
        {"decision_id": first, "type": "open"},
        {"decision_id": first, "type": "click"},
        {"decision_id": second, "type": "conversion", "value": 12.5},
        {"user_id": "u3", "type": "click", "idempotency_key": "ext-1"},
    ]
    body = _accepted(client, tenant, config["id"], {"outcomes": events})
    assert body["accepted"] == 4
    assert [r["type"] for r in body["outcomes"]] == ["open", "click", "conversion", "click"]
    assert len(_outcomes(app, config["id"])) == 4


@sqlite_only
def test_publishable_key_may_send_outcomes(client, make_tenant, create_config):
    """Outcomes, like decisions, accept a publishable key: a client-reportable type, with
    the decision's outcome_token (tests/api/test_publishable_keys.py has the rules)."""
    config = create_config(settings=TWO_ACTIONS)
    publishable = make_tenant("acme", kind="publishable")
    response = client.post(
        f"{BASE}/{config['id']}/decisions",
        json={"user_id": "u1", "channel": "web"},
        headers=publishable.headers,
    )
    decided = response.get_json()
    body = {"outcome_token": decided["outcome_token"], "type": "click"}
    answer = _accepted(client, publishable, config["id"], body)
    assert answer["outcomes"][0]["decision_id"] == decided["decision_id"]


def test_same_idempotency_key_counts_once_with_the_same_response(
    app, client, tenant, create_config
):
    """A retried request (same key) stores nothing new and gets the same body back."""
    config = create_config(settings=TWO_ACTIONS)
    decision_id = _decision_id(client, tenant, config["id"])
    event = {"decision_id": decision_id, "type": "conversion", "value": 30.0}
    first = _accepted(client, tenant, config["id"], {**event, "idempotency_key": "order-77"})
    again = _accepted(client, tenant, config["id"], {**event, "idempotency_key": "order-77"})
    assert again == _as_duplicate(first)
    in_batch = _accepted(
        client, tenant, config["id"], {"outcomes": [{**event, "idempotency_key": "order-77"}]}
    )
    assert in_batch == _as_duplicate(first)
    assert len(_outcomes(app, config["id"])) == 1
    # A different key is a different event (a second purchase).
    _accepted(client, tenant, config["id"], {**event, "idempotency_key": "order-78"})
    assert len(_outcomes(app, config["id"])) == 2


def test_same_decision_and_type_without_key_counts_once(app, client, tenant, create_config):
    """Without a key, one decision's click is stored once however often it is sent."""
    config = create_config(settings=TWO_ACTIONS)
    decision_id = _decision_id(client, tenant, config["id"])
    first = _accepted(client, tenant, config["id"], {"decision_id": decision_id, "type": "click"})
    again = _accepted(client, tenant, config["id"], {"decision_id": decision_id, "type": "click"})
    assert again == _as_duplicate(first)
    batch = {"outcomes": [{"decision_id": decision_id, "type": "click"}] * 2}
    body = _accepted(client, tenant, config["id"], batch)
    assert [r["idempotency_key"] for r in body["outcomes"]] == [
        first["outcomes"][0]["idempotency_key"]
    ] * 2
    _accepted(client, tenant, config["id"], {"decision_id": decision_id, "type": "open"})
    assert sorted(o.type for o in _outcomes(app, config["id"])) == ["click", "open"]


def test_repeated_value_events_each_count_but_retries_do_not(app, client, tenant, create_config):
    """Two purchases on one decision both count; the same purchase resent counts once."""
    config = create_config(settings=TWO_ACTIONS)
    decision_id = _decision_id(client, tenant, config["id"])
    now = dt.datetime.now(dt.UTC)
    first = {
        "decision_id": decision_id,
        "type": "conversion",
        "value": 40.0,
        "occurred_at": now.isoformat(),
    }
    second = {**first, "value": 60.0, "occurred_at": (now + dt.timedelta(seconds=1)).isoformat()}
    answer = _accepted(client, tenant, config["id"], first)
    assert _accepted(client, tenant, config["id"], first) == _as_duplicate(answer)
    _accepted(client, tenant, config["id"], second)
    values = sorted(o.value for o in _outcomes(app, config["id"]) if o.type == "conversion")
    assert values == [40.0, 60.0]


def test_unknown_decision_is_404_and_nothing_is_stored(app, client, tenant, create_config):
    """An unknown decision_id → 404; in a batch, one bad id stores nothing of the batch."""
    config = create_config(settings=TWO_ACTIONS)
    good = _decision_id(client, tenant, config["id"])
    unknown = str(uuid.uuid4())
    error = assert_error(
        _post(client, tenant, config["id"], {"decision_id": unknown, "type": "click"}), 404
    )
    assert "decision_id" in error["errors"]
    batch = {
        "outcomes": [
            {"decision_id": good, "type": "click"},
            {"user_id": "u7", "type": "open", "idempotency_key": "k1"},
            {"decision_id": unknown, "type": "open"},
        ]
    }
    assert_error(_post(client, tenant, config["id"], batch), 404)
    assert _outcomes(app, config["id"]) == []


def test_another_workspaces_decision_is_404(app, client, make_tenant, create_config):
    """A decision of another workspace (or another configuration) is never found."""
    mine, theirs = make_tenant("acme"), make_tenant("rival")
    my_config = create_config(settings=TWO_ACTIONS, as_tenant=mine)
    my_other_config = create_config(settings=TWO_ACTIONS, as_tenant=mine)
    their_config = create_config(settings=TWO_ACTIONS, as_tenant=theirs)
    decision_id = _decision_id(client, mine, my_config["id"])
    event = {"decision_id": decision_id, "type": "click"}
    assert_error(_post(client, theirs, their_config["id"], event), 404)
    assert_error(_post(client, theirs, my_config["id"], event), 404)  # their key, my config
    assert_error(_post(client, mine, my_other_config["id"], event), 404)
    for config in (my_config, my_other_config, their_config):
        assert _outcomes(app, config["id"]) == []


def test_user_only_outcome_is_stored_for_attribution(app, client, tenant, create_config):
    """An outcome with a user_id and no decision is kept (the measurement issue attributes it)."""
    config = create_config(settings=TWO_ACTIONS)
    body = _accepted(client, tenant, config["id"], {"user_id": "walk-in", "type": "conversion"})
    assert body["outcomes"][0]["decision_id"] is None
    [row] = _outcomes(app, config["id"])
    assert row.decision_id is None and row.user_id == "walk-in" and row.type == "conversion"


@sqlite_only
def test_bad_outcome_bodies_are_422(app, client, tenant, create_config):
    """No type, neither decision nor user, a bad id, mixed single+batch, empty batch → 422."""
    config = create_config(settings=TWO_ACTIONS)
    decision_id = _decision_id(client, tenant, config["id"])
    bodies = [
        {"decision_id": decision_id},
        {"type": "click"},
        {"decision_id": "not-a-uuid", "type": "click"},
        {"decision_id": decision_id, "type": "bad type!"},
        {"decision_id": decision_id, "type": "click", "value": "lots"},
        {"decision_id": decision_id, "type": "click", "occurred_at": "2030-01-01T00:00:00"},
        {"outcomes": []},
        {"outcomes": [{"type": "click"}]},
        {"outcomes": [{"decision_id": decision_id, "type": "click"}], "type": "click"},
        {"outcomes": [{"user_id": "u", "type": "click"}] * 1001},
    ]
    for body in bodies:
        assert_error(_post(client, tenant, config["id"], body), 422)
    assert _outcomes(app, config["id"]) == []


def test_unstorable_outcomes_are_rejected_never_500(app, client, tenant, create_config):
    """NUL or lone surrogates in text, a time before year 1 in UTC, deep JSON → 4xx."""
    config = create_config(settings=TWO_ACTIONS)
    url = f"{BASE}/{config['id']}/outcomes"
    headers = {**tenant.headers, "Content-Type": "application/json"}
    for body in (
        '{"user_id": "nul\\u0000", "type": "click"}',
        '{"user_id": "lone\\ud800", "type": "click"}',
        '{"user_id": "u1", "type": "click", "idempotency_key": "k\\u0000"}',
        '{"user_id": "u1", "type": "click", "occurred_at": "0001-01-01T00:00:00+05:00"}',
        '{"outcomes": [{"user_id": "u\\u0000", "type": "open"}]}',
    ):
        assert_error(client.post(url, data=body, headers=headers), 422)
    assert_error(client.post(url, data="[" * 50_000, headers=headers), 400)
    assert _outcomes(app, config["id"]) == []


def test_late_outcome_is_flagged_and_never_learned(app, client, tenant, create_config):
    """After the window closed: stored with late=true, and the decision's reward ignores it."""
    settings = {**TWO_ACTIONS, "reward": {"wait_seconds": 1}}
    config = create_config(settings=settings)
    late_id = _decision_id(client, tenant, config["id"], "late-user")
    time.sleep(1.2)  # the shortest window there is
    timely_id = _decision_id(client, tenant, config["id"], "timely-user")
    body = _accepted(
        client,
        tenant,
        config["id"],
        {
            "outcomes": [
                {"decision_id": late_id, "type": "click"},
                {"decision_id": timely_id, "type": "click"},
            ]
        },
    )
    assert [r["late"] for r in body["outcomes"]] == [True, False]
    stored = {str(o.decision_id): o.late for o in _outcomes(app, config["id"])}
    assert stored == {late_id: True, timely_id: False}
    decisions = _learn(app, config["id"])
    assert decisions[late_id].reward == 0.0 and decisions[late_id].engaged is False
    assert decisions[timely_id].reward == 1.0 and decisions[timely_id].engaged is True


def test_decision_without_outcome_gets_the_default_reward(app, client, tenant, create_config):
    """When the window closes with no outcome, the decision learns reward.default."""
    config = create_config(settings={**TWO_ACTIONS, "reward": {"default": -0.25}})
    silent = _decision_id(client, tenant, config["id"], "silent")
    clicked = _decision_id(client, tenant, config["id"], "clicker")
    unweighted = _decision_id(client, tenant, config["id"], "unsubscriber")
    _accepted(client, tenant, config["id"], {"decision_id": clicked, "type": "click"})
    _accepted(client, tenant, config["id"], {"decision_id": unweighted, "type": "unsubscribe"})
    decisions = _learn(app, config["id"])
    assert decisions[silent].reward == -0.25 and decisions[silent].engaged is False
    assert decisions[clicked].reward == 1.0 and decisions[clicked].engaged is True
    # An outcome arrived, so the default does not apply; its weight (none: 0) does.
    assert decisions[unweighted].reward == 0.0 and decisions[unweighted].engaged is False
    assert all(d.learned_at is not None for d in decisions.values())


def test_multi_stage_outcomes_combine_into_one_reward(app, client, tenant, create_config):
    """open + click + two purchases: each stage's weight once, plus weight x value per purchase."""
    reward = {
        "events": {"open": 0.1, "click": 1.0, "conversion": 0.01},
        "value_events": ["conversion"],
    }
    config = create_config(settings={**TWO_ACTIONS, "reward": reward})
    decision_id = _decision_id(client, tenant, config["id"])
    events = [
        {"decision_id": decision_id, "type": "open", "idempotency_key": "open-1"},
        {"decision_id": decision_id, "type": "open", "idempotency_key": "open-2"},
        {"decision_id": decision_id, "type": "click"},
        {"decision_id": decision_id, "type": "conversion", "value": 40, "idempotency_key": "o1"},
        {"decision_id": decision_id, "type": "conversion", "value": 60, "idempotency_key": "o2"},
    ]
    _accepted(client, tenant, config["id"], {"outcomes": events})
    decision = _learn(app, config["id"])[decision_id]
    assert decision.reward == pytest.approx(0.1 + 1.0 + 0.4 + 0.6)
    assert decision.engaged is True


# --- types that reward.events does not list -------------------------------------------------


def _activities(client, tenant, config_id, type_) -> list[dict]:
    response = client.get(
        f"{BASE}/{config_id}/activities", query_string={"type": type_}, headers=tenant.headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_an_unweighted_type_is_accepted_and_named(app, client, tenant, create_config):
    """A purchase on a configuration whose reward does not list it: 202, stored, and
    named in `unweighted` (a retry answers the same); weighted types are never named."""
    config = create_config(settings=TWO_ACTIONS)
    decision_id = _decision_id(client, tenant, config["id"])
    events = [
        {"decision_id": decision_id, "type": "click"},
        {"decision_id": decision_id, "type": "purchase", "value": 30.0, "idempotency_key": "o-1"},
        {"user_id": "u9", "type": "signup", "idempotency_key": "s-1"},
    ]
    first = _accepted(client, tenant, config["id"], {"outcomes": events})
    assert first["unweighted"] == ["purchase", "signup"]
    assert _accepted(client, tenant, config["id"], {"outcomes": events}) == _as_duplicate(first)
    assert {row.type for row in _outcomes(app, config["id"])} == {"click", "purchase", "signup"}
    click = {"decision_id": _decision_id(client, tenant, config["id"], "u2"), "type": "click"}
    assert _accepted(client, tenant, config["id"], click)["unweighted"] == []


def test_the_first_unweighted_outcome_of_a_type_is_logged_once(client, tenant, create_config):
    """One activity per configuration and type, the first time only, naming the type."""
    config = create_config(settings=TWO_ACTIONS)
    other = create_config(settings=TWO_ACTIONS)
    for n in range(3):
        body = {"user_id": f"u{n}", "type": "purchase", "value": 5.0, "idempotency_key": f"k{n}"}
        _accepted(client, tenant, config["id"], body)
    _accepted(client, tenant, config["id"], {"user_id": "u1", "type": "signup"})
    _accepted(client, tenant, config["id"], {"user_id": "u1", "type": "click"})
    _accepted(client, tenant, other["id"], {"user_id": "u1", "type": "purchase"})
    logged = _activities(client, tenant, config["id"], "outcome.unweighted_type")
    assert sorted(a["data"]["type"] for a in logged) == ["purchase", "signup"]
    assert all("reward.events" in a["data"]["message"] for a in logged)
    assert all(a["actor"] == tenant.key[:15] for a in logged)
    [in_other] = _activities(client, tenant, other["id"], "outcome.unweighted_type")
    assert in_other["data"]["type"] == "purchase"


def test_unweighted_outcomes_count_in_metrics_under_their_type(client, tenant, create_config):
    """summary.outcomes counts every type per variant, with its weight (null: unlisted);
    the unweighted type does not count as an engagement."""
    config = create_config(settings={**TWO_ACTIONS, "reward": {"events": {"click": 1.0}}})
    ids = [_decision_id(client, tenant, config["id"], f"u{n}") for n in range(6)]
    events = [{"decision_id": ids[0], "type": "click"}] + [
        {"decision_id": i, "type": "purchase", "value": 10.0} for i in ids[1:4]
    ]
    _accepted(client, tenant, config["id"], {"outcomes": events})
    response = client.get(f"{BASE}/{config['id']}/metrics", headers=tenant.headers)
    summary = response.get_json()["summary"]
    assert set(summary["outcomes"]) == {"click", "purchase"}
    purchase, click = summary["outcomes"]["purchase"], summary["outcomes"]["click"]
    assert purchase["weight"] is None and click["weight"] == 1.0
    assert purchase["treatment"] + purchase["holdout"] == 3
    assert click["treatment"] + click["holdout"] == 1
    engaged = summary["engagements"]["treatment"] + summary["engagements"]["holdout"]
    assert engaged == 1
    [day] = response.get_json()["daily"]
    assert day["metrics"]["outcomes"]["purchase"] == {
        "treatment": purchase["treatment"],
        "holdout": purchase["holdout"],
    }


def test_imports_name_their_unweighted_types(client, tenant, create_config):
    """An import whose lines carry an unlisted outcome type says so, and logs it once."""
    config = create_config(settings=TWO_ACTIONS)
    line = (
        '{"user_id": "h1", "channel": "email", "timestamp": "2026-01-05T08:00:00Z", '
        '"action_id": "a", "probability": 0.5, "outcomes": [{"type": "purchase", "value": 3}]}'
    )
    response = client.post(
        f"{BASE}/{config['id']}/imports",
        data=line + "\n",
        headers={**tenant.headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["unweighted"] == ["purchase"]
    [logged] = _activities(client, tenant, config["id"], "outcome.unweighted_type")
    assert logged["data"] == {**logged["data"], "type": "purchase", "source": "import"}
