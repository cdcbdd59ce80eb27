"""The decide-and-deliver service, called directly (no HTTP) on a real database.

The job backend is the one seam replaced: the service takes an ``enqueue_delivery``
callable, so these tests pass one that records (or fails like Redis down).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from hpe_core import hookimpl
from hpe_core.decide.decisions import DecisionRequest
from hpe_core.deliver import delivery, touchpoints
from hpe_core.deliver.touchpoints import DeliverRequest, TouchpointParts
from hpe_core.errors import Conflict, Forbidden, InvalidInput
from hpe_core.store.models import Decision
from hpe_core.store.models import Delivery as DeliveryRow
from hpe_core.tenancy import configs
from hpe_core.tenancy.workspaces import Principal
from web.extensions import app_runtime

ACTIONS = [
    {"id": "spring-sale", "channels": ["email", "web"]},
    {"id": "web-only", "channels": ["web"]},
]
TO_ADA = DeliverRequest(recipient={"email": "ada@example.org"}, variables={"first_name": "Ada"})


class Recorder:
    """``hpe_on_decision`` events, and whether each decision was committed when it came."""

    def __init__(self, sessions):
        self.sessions = sessions
        self.events: list[dict] = []

    @hookimpl
    def hpe_on_decision(self, workspace_id, config_id, channel, user_id, decision):
        self.events.append(
            {
                "workspace_id": workspace_id,
                "config_id": config_id,
                "channel": channel,
                "user_id": user_id,
                "decision": decision,
                "committed": _committed(self.sessions, Decision, decision["decision_id"]),
            }
        )


class Jobs:
    """An ``enqueue_delivery`` callable: records each id and whether its row was committed
    by then; with ``error``, it raises instead (the queue is unreachable)."""

    def __init__(self, sessions, error: Exception | None = None):
        self.sessions = sessions
        self.error = error
        self.enqueued: list[uuid.UUID] = []
        self.committed: list[bool] = []

    def __call__(self, delivery_id: uuid.UUID) -> None:
        if self.error is not None:
            raise self.error
        self.enqueued.append(delivery_id)
        self.committed.append(_committed(self.sessions, DeliveryRow, delivery_id))


def _committed(sessions, model, row_id) -> bool:
    # A session of its own: it sees only what was committed.
    with sessions() as other:
        return other.get(model, row_id) is not None


def _count(sessions, model) -> int:
    with sessions() as other:
        return other.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def sessions(app):
    return app_runtime(app).sessions


@pytest.fixture
def principal(make_tenant):
    return Principal(workspace_id=make_tenant("acme").id, actor="test")


@pytest.fixture
def config_id(app, session, principal):
    config = configs.create(
        session,
        principal,
        app_runtime(app).catalog,
        name="touchpoints",
        settings={"actions": ACTIONS, "channels": ["email", "web"]},
    )
    session.commit()
    return config.id


@pytest.fixture
def recorder(app, sessions):
    recorder = Recorder(sessions)
    app_runtime(app).pm.register(recorder)
    return recorder


@pytest.fixture
def jobs(sessions):
    return Jobs(sessions)


def _parts(app, jobs, **replace) -> TouchpointParts:
    parts = TouchpointParts(
        engine=app_runtime(app).decisions,
        pm=app_runtime(app).pm,
        channels=app_runtime(app).channels,
        enqueue_delivery=jobs,
    )
    return dataclasses.replace(parts, **replace)


def _request(user_id="u1", channel="email", **extra) -> DecisionRequest:
    return DecisionRequest(user_id=user_id, channel=channel, **extra)


def test_a_decision_without_deliver_is_committed_and_announced(
    app, session, sessions, principal, config_id, jobs, recorder
):
    result = touchpoints.decide_and_deliver(
        session, _parts(app, jobs), principal, config_id, _request()
    )
    assert result["action_id"] == "spring-sale"
    assert "delivery" not in result
    assert _committed(sessions, Decision, result["decision_id"])
    assert _count(sessions, DeliveryRow) == 0
    assert jobs.enqueued == []
    [event] = recorder.events
    assert event == {
        "workspace_id": "acme",
        "config_id": config_id,
        "channel": "email",
        "user_id": "u1",
        "decision": result,
        "committed": True,
    }


def test_deliver_stores_a_pending_delivery_with_the_decision_then_enqueues_it(
    app, session, sessions, principal, config_id, jobs, recorder
):
    result = touchpoints.decide_and_deliver(
        session, _parts(app, jobs), principal, config_id, _request(), TO_ADA
    )
    delivery_id = result["delivery"]["id"]
    assert result["delivery"] == {"id": delivery_id, "status": "pending"}
    with sessions() as other:
        row = other.get(DeliveryRow, delivery_id)
        assert (row.status, row.attempts) == ("pending", 0)
        assert row.decision_id == result["decision_id"]
        assert (row.channel, row.user_id, row.action_id) == ("email", "u1", "spring-sale")
        assert row.recipient == {"email": "ada@example.org"}
        assert row.variables == {"first_name": "Ada"}
    # Enqueued once, after the commit: the job finds its row.
    assert jobs.enqueued == [delivery_id]
    assert jobs.committed == [True]
    assert recorder.events[0]["decision"]["delivery"]["id"] == delivery_id


def test_answer_writes_decision_and_delivery_in_one_uncommitted_transaction(
    app, session, sessions, principal, config_id, jobs
):
    parts = _parts(app, jobs)
    answer = touchpoints.answer(session, parts, principal, config_id, _request(), TO_ADA)
    assert answer.logged and answer.delivery_id is not None
    assert session.get(DeliveryRow, answer.delivery_id) is not None  # in this transaction
    assert _count(sessions, Decision) == 0  # ... and only there
    assert jobs.enqueued == []
    session.rollback()
    assert _count(sessions, Decision) == _count(sessions, DeliveryRow) == 0


def test_enqueue_failure_keeps_the_decision_and_leaves_the_delivery_for_the_sweeper(
    app, session, sessions, principal, config_id, recorder, caplog
):
    down = Jobs(sessions, error=ConnectionError("Error 111 connecting to 127.0.0.1:6379"))
    result = touchpoints.decide_and_deliver(
        session, _parts(app, down), principal, config_id, _request(), TO_ADA
    )
    delivery_id = result["delivery"]["id"]
    assert _committed(sessions, Decision, result["decision_id"])
    assert "will be swept" in caplog.text
    assert len(recorder.events) == 1  # the event sinks still hear of the decision
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with sessions() as other:
        assert other.get(DeliveryRow, delivery_id).status == "pending"
        assert delivery.stranded(other, older_than_seconds=60, now=later) == [delivery_id]


def test_a_publishable_key_cannot_deliver_and_nothing_is_written(
    app, session, sessions, config_id, jobs, recorder
):
    publishable = Principal(workspace_id="acme", actor="pk_test", kind="publishable")
    with pytest.raises(Forbidden, match="publishable key cannot request delivery"):
        touchpoints.decide_and_deliver(
            session, _parts(app, jobs), publishable, config_id, _request(), TO_ADA
        )
    assert _count(sessions, Decision) == _count(sessions, DeliveryRow) == 0
    assert jobs.enqueued == [] and recorder.events == []
    # Without deliver, on a client-side channel (web), the same key gets its decision.
    result = touchpoints.decide_and_deliver(
        session, _parts(app, jobs), publishable, config_id, _request(channel="web")
    )
    assert _committed(sessions, Decision, result["decision_id"])


def test_deliver_on_a_channel_without_a_connector_is_invalid_input(
    app, session, sessions, principal, config_id, jobs
):
    parts = _parts(app, jobs, channels={"web": app_runtime(app).channels["web"]})
    with pytest.raises(InvalidInput) as raised:
        touchpoints.decide_and_deliver(session, parts, principal, config_id, _request(), TO_ADA)
    assert raised.value.errors == {"channel": ["No connector for this channel."]}
    assert _count(sessions, Decision) == 0


def test_enrich_hook_context_is_merged_and_the_callers_keys_win(
    app, session, sessions, principal, config_id, jobs
):
    class Enricher:
        @hookimpl
        def hpe_enrich_context(self, connector, user_id, context):
            return {"segment": f"vip-{connector.name}-{user_id}", "page": "enriched"}

    app_runtime(app).pm.register(Enricher())
    request = _request(channel="web", context={"page": "/home"})
    result = touchpoints.decide_and_deliver(
        session, _parts(app, jobs), principal, config_id, request
    )
    with sessions() as other:
        context = other.get(Decision, result["decision_id"]).context
    assert context["segment"] == "vip-web-u1"
    assert context["page"] == "/home"


def test_nothing_eligible_writes_nothing_and_requests_no_delivery(
    app, session, sessions, principal, config_id, jobs, recorder
):
    request = _request(candidates=["web-only"])  # web-only is not offered on email
    result = touchpoints.decide_and_deliver(
        session, _parts(app, jobs), principal, config_id, request, TO_ADA
    )
    assert result["decision_id"] is None
    assert result["reason"] == "no_eligible_action"
    assert "delivery" not in result
    assert _count(sessions, Decision) == _count(sessions, DeliveryRow) == 0
    assert jobs.enqueued == [] and recorder.events == []


def test_a_paused_configuration_is_a_conflict(app, session, sessions, principal, jobs):
    config = configs.create(
        session,
        principal,
        app_runtime(app).catalog,
        name="paused",
        settings={"actions": ACTIONS, "channels": ["email", "web"]},
        status="PAUSED",
    )
    session.commit()
    with pytest.raises(Conflict):
        touchpoints.decide_and_deliver(
            session, _parts(app, jobs), principal, config.id, _request(), TO_ADA
        )
    assert _count(sessions, Decision) == _count(sessions, DeliveryRow) == 0


# --- many requests, one transaction (what the batch endpoint calls) -----------------------


def test_many_requests_are_answered_in_order_in_one_transaction(
    app, session, sessions, principal, config_id, jobs, recorder
):
    requests = [
        (_request("u1"), TO_ADA),
        (_request("u2", candidates=["web-only"]), TO_ADA),  # nothing eligible
        (_request("u3", channel="web"), None),
    ]
    results = touchpoints.decide_and_deliver_all(
        session, _parts(app, jobs), principal, config_id, requests
    )
    assert [r["reason"] if r["decision_id"] is None else "ok" for r in results] == [
        "ok",
        "no_eligible_action",
        "ok",
    ]
    assert _count(sessions, Decision) == 2
    assert jobs.enqueued == [results[0]["delivery"]["id"]] and jobs.committed == [True]
    assert [e["user_id"] for e in recorder.events] == ["u1", "u3"]
    assert all(e["committed"] for e in recorder.events)


def test_one_refused_delivery_refuses_the_whole_list_before_any_decision(
    app, session, sessions, config_id, jobs
):
    publishable = Principal(workspace_id="acme", actor="pk_test", kind="publishable")
    requests = [(_request("u1"), None), (_request("u2"), TO_ADA)]
    with pytest.raises(Forbidden):
        touchpoints.decide_and_deliver_all(
            session, _parts(app, jobs), publishable, config_id, requests
        )
    assert _count(sessions, Decision) == 0


def test_one_failing_request_rolls_the_whole_list_back(
    app, session, sessions, principal, config_id, jobs, recorder
):
    requests = [(_request("u1"), TO_ADA), (_request("u2", candidates=["unknown"]), None)]
    with pytest.raises(InvalidInput):
        touchpoints.decide_and_deliver_all(
            session, _parts(app, jobs), principal, config_id, requests
        )
    assert _count(sessions, Decision) == _count(sessions, DeliveryRow) == 0
    assert jobs.enqueued == [] and recorder.events == []
