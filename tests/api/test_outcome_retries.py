"""Outcome retries never double-count, and outcomes cannot claim impossible values or
times (issue 14, defects 3, 5 and 6).

Before: a conversion posted twice 50 ms apart stored two rows (revenue doubled); reusing
an idempotency key on another decision answered 202 ``accepted: 1`` and stored nothing;
a batch with a repeated click answered ``accepted: 3`` and stored 2; a value of 1e12 and
``occurred_at`` of 2000 or 2099 were accepted and learned.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.learn import outcome_store, outcomes
from hpe_core.store.models import Outcome, utcnow
from hpe_core.tenancy.workspaces import Principal
from tests.api.conftest import assert_error
from tests.conftest import BASE, make_test_app
from web.extensions import app_runtime

SETTINGS = {
    "actions": [{"id": "a"}, {"id": "b"}],
    "reward": {"events": {"click": 1.0, "conversion": 0.01}, "value_events": ["conversion"]},
}


@pytest.fixture
def config_id(create_config):
    return create_config(settings=SETTINGS)["id"]


def _decide(client, tenant, config_id, user_id="u1") -> str:
    response = client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": user_id, "channel": "email", "context": {}},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["decision_id"]


def _post(client, tenant, config_id, body):
    return client.post(f"{BASE}/{config_id}/outcomes", json=body, headers=tenant.headers)


def _rows(app, config_id) -> list[Outcome]:
    with app_runtime(app).sessions() as session:
        return list(
            session.scalars(
                sa.select(Outcome)
                .where(Outcome.config_id == uuid.UUID(config_id))
                .order_by(Outcome.received_at)
            )
        )


def test_a_value_event_retried_without_a_key_is_stored_once(app, client, tenant, config_id):
    """The same conversion twice, 50 ms apart, no key and no time: one row, revenue 50."""
    decision_id = _decide(client, tenant, config_id)
    body = {"decision_id": decision_id, "type": "conversion", "value": 50}
    first = _post(client, tenant, config_id, body)
    time.sleep(0.05)
    again = _post(client, tenant, config_id, body)
    assert (first.status_code, again.status_code) == (202, 202)
    assert (first.get_json()["accepted"], first.get_json()["duplicates"]) == (1, 0)
    assert (again.get_json()["accepted"], again.get_json()["duplicates"]) == (0, 1)
    [answer] = again.get_json()["outcomes"]
    assert answer["duplicate"] is True
    assert answer["idempotency_key"] == first.get_json()["outcomes"][0]["idempotency_key"]
    assert [row.value for row in _rows(app, config_id)] == [50.0]
    metrics = client.get(f"{BASE}/{config_id}/metrics", headers=tenant.headers).get_json()
    assert metrics["summary"]["revenue"] == 50.0


def test_the_same_key_and_payload_answers_the_first_answer(app, client, tenant, config_id):
    """Stripe's rule: a repeated key with the same payload gets the first answer, stores nothing."""
    decision_id = _decide(client, tenant, config_id)
    body = {
        "decision_id": decision_id,
        "type": "conversion",
        "value": 20.5,
        "idempotency_key": "order-1",
    }
    first = _post(client, tenant, config_id, body).get_json()
    again = _post(client, tenant, config_id, body).get_json()
    assert first["accepted"] == 1 and again["accepted"] == 0 and again["duplicates"] == 1
    stripped = [
        {k: v for k, v in answer.items() if k != "duplicate"} for answer in again["outcomes"]
    ]
    assert stripped == [
        {k: v for k, v in answer.items() if k != "duplicate"} for answer in first["outcomes"]
    ]
    assert len(_rows(app, config_id)) == 1


def test_the_same_key_on_another_outcome_is_409_and_stores_nothing(app, client, tenant, config_id):
    """order-1 reused on another decision, or with another value: 409, nothing stored."""
    first, second = (
        _decide(client, tenant, config_id, "u1"),
        _decide(client, tenant, config_id, "u2"),
    )
    body = {"decision_id": first, "type": "conversion", "value": 10, "idempotency_key": "order-1"}
    assert _post(client, tenant, config_id, body).status_code == 202
    for other in ({"decision_id": second}, {"value": 11}, {"type": "click"}):
        error = assert_error(_post(client, tenant, config_id, {**body, **other}), 409)
        assert error["errors"] == {
            "0": {"idempotency_key": [error["errors"]["0"]["idempotency_key"][0]]}
        }
    assert len(_rows(app, config_id)) == 1


def test_a_batch_with_a_repeated_click_accepts_what_it_stores(app, client, tenant, config_id):
    """Three events, one a repeated click: accepted 2 = rows stored, duplicates 1."""
    decision_id = _decide(client, tenant, config_id)
    click = {"decision_id": decision_id, "type": "click"}
    conversion = {
        "decision_id": decision_id,
        "type": "conversion",
        "value": 5,
        "idempotency_key": "o",
    }
    response = _post(client, tenant, config_id, {"outcomes": [click, click, conversion]})
    body = response.get_json()
    assert response.status_code == 202, body
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    assert [answer["duplicate"] for answer in body["outcomes"]] == [False, True, False]
    assert len(_rows(app, config_id)) == body["accepted"]


def test_a_batch_reusing_a_key_for_two_payloads_is_409(app, client, tenant, config_id):
    """One key, two different outcomes in one batch: 409 for the whole batch."""
    decision_id = _decide(client, tenant, config_id)
    one = {"decision_id": decision_id, "type": "conversion", "value": 5, "idempotency_key": "o"}
    response = _post(client, tenant, config_id, {"outcomes": [one, {**one, "value": 6}]})
    assert set(assert_error(response, 409)["errors"]) == {"1"}
    assert _rows(app, config_id) == []


def test_occurred_at_before_its_decision_or_in_the_future_is_422(app, client, tenant, config_id):
    """2000-01-01 and 2099-01-01 are refused; within the clock-skew allowance is fine."""
    decision_id = _decide(client, tenant, config_id)
    now = utcnow()
    for when in ("2000-01-01T00:00:00Z", "2099-01-01T00:00:00Z"):
        body = {"decision_id": decision_id, "type": "click", "occurred_at": when}
        error = assert_error(_post(client, tenant, config_id, body), 422)
        assert "occurred_at" in error["errors"]["0"]
    user_level = {
        "user_id": "u1",
        "type": "conversion",
        "value": 1,
        "occurred_at": "2099-01-01T00:00:00Z",
    }
    assert_error(_post(client, tenant, config_id, user_level), 422)
    assert _rows(app, config_id) == []
    skewed = (now + dt.timedelta(minutes=2)).isoformat()
    body = {"decision_id": decision_id, "type": "click", "occurred_at": skewed}
    assert _post(client, tenant, config_id, body).status_code == 202


def test_values_over_the_cap_are_422(app, client, tenant, config_id):
    """The default cap (1,000,000) refuses 1e12; nothing is stored."""
    decision_id = _decide(client, tenant, config_id)
    body = {"decision_id": decision_id, "type": "conversion", "value": 1e12}
    error = assert_error(_post(client, tenant, config_id, body), 422)
    assert "value" in error["errors"]["0"]
    assert _rows(app, config_id) == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_value_cap_is_configurable(database_url, tmp_path, make_tenant_on):
    """HPE_MAX_OUTCOME_VALUE=100: 100 passes, 100.5 is refused."""
    app = make_test_app(database_url, tmp_path, MAX_OUTCOME_VALUE=100)
    try:
        client, tenant = app.test_client(), make_tenant_on(app)
        config = client.post(
            f"{BASE}/", json={"name": "c", "settings": SETTINGS}, headers=tenant.headers
        ).get_json()
        decision_id = _decide(client, tenant, config["id"])
        ok = {
            "decision_id": decision_id,
            "type": "conversion",
            "value": 100,
            "idempotency_key": "a",
        }
        assert _post(client, tenant, config["id"], ok).status_code == 202
        over = {**ok, "value": 100.5, "idempotency_key": "b"}
        assert_error(_post(client, tenant, config["id"], over), 422)
    finally:
        app_runtime(app).engine.dispose()


def test_non_finite_values_are_refused_by_the_service(app, tenant, config_id, client):
    """Whatever the caller (webhooks, plugins), NaN and infinity never reach the table."""
    decision_id = uuid.UUID(_decide(client, tenant, config_id))
    principal = Principal(workspace_id=tenant.id, actor="test")
    with app_runtime(app).sessions() as session:
        for value in (float("nan"), float("inf")):
            event = outcomes.OutcomeEvent(type="conversion", decision_id=decision_id, value=value)
            with pytest.raises(outcomes.InvalidInput):
                outcomes.record(session, principal, uuid.UUID(config_id), [event])


def test_a_retry_is_recognised_across_the_window_edge_but_not_after_it(
    app, tenant, config_id, client
):
    """Identical keyless conversions: 1 s apart across a bucket edge count once; a second
    one a full window later counts again (a repeat purchase)."""
    decision_id = uuid.UUID(_decide(client, tenant, config_id))
    principal = Principal(workspace_id=tenant.id, actor="test")
    window = outcome_store.RETRY_WINDOW.total_seconds()
    edge = dt.datetime.fromtimestamp((time.time() // window + 1) * window, dt.UTC)
    event = outcomes.OutcomeEvent(type="conversion", decision_id=decision_id, value=7)
    answers = []
    for when in (edge - dt.timedelta(seconds=1), edge, edge + outcome_store.RETRY_WINDOW * 2):
        with app_runtime(app).sessions() as session:
            answers.append(
                outcomes.record(session, principal, uuid.UUID(config_id), [event], now=when)
            )
            session.commit()
    assert [(a.accepted, a.duplicates) for a in answers] == [(1, 0), (0, 1), (1, 0)]
    assert len(_rows(app, config_id)) == 2
