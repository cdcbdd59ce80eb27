"""Group commit of single decisions (hpe_core.decide.group_commit), on PostgreSQL: concurrent
decisions share commits, each is committed before its caller returns, one bad row fails
only its own request, and a lost connection is an error (never a silent success)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from hpe_core.decide import group_commit
from hpe_core.decide.decisions import DecisionRequest
from hpe_core.deliver import touchpoints
from hpe_core.store.models import Decision
from web.extensions import app_runtime, app_state

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


def _row(config_id, workspace_id, **extra) -> dict:
    now = dt.datetime.now(dt.UTC)
    return {
        "id": uuid.uuid4(),
        "workspace_id": workspace_id,
        "config_id": config_id,
        "user_id": "u",
        "channel": "web",
        "context": {"k": "v"},
        "eligible": ["a", "b"],
        "probabilities": [0.5, 0.5],
        "action_id": "a",
        "probability": 0.5,
        "variant": "treatment",
        "policy": "model",
        "model_version": 0,
        "model_action_id": "a",
        "source": "live",
        "created_at": now,
        "window_closes_at": now,
        **extra,
    }


def _stored_ids(app) -> set[uuid.UUID]:
    with app_runtime(app).sessions() as other:
        return set(other.scalars(sa.select(Decision.id)))


def test_concurrent_decisions_are_each_committed_before_they_answer(app, principal, config_id):
    """16 threads × 10 decisions through the single-decision service: every answer's row
    is committed when the call returns (seen by another session), all 160 are stored,
    and the writer wrote them in at most 160 statements."""
    writer = group_commit.writer_for(app_runtime(app).engine)
    groups_before, rows_before = writer.groups, writer.rows
    parts = app_state(app).touchpoints
    missing, errors = [], []

    def run(thread: int) -> None:
        try:
            for n in range(10):
                with app_runtime(app).sessions() as session:
                    answer = touchpoints.decide_and_deliver(
                        session,
                        parts,
                        principal,
                        config_id,
                        DecisionRequest(user_id=f"u{thread}-{n}", channel="web"),
                    )
                with app_runtime(app).sessions() as other:
                    if other.get(Decision, answer["decision_id"]) is None:
                        missing.append(answer["decision_id"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and missing == []
    assert len(_stored_ids(app)) == 160
    assert writer.rows - rows_before == 160
    assert 1 <= writer.groups - groups_before <= 160


def test_a_bad_row_fails_only_its_own_request(app, principal, config_id):
    """A group where one request's id already exists: the statement fails, the rows are
    retried one request at a time, and only that request gets the IntegrityError."""
    writer = group_commit.writer_for(app_runtime(app).engine)
    existing = _row(config_id, principal.workspace_id)
    writer.write([existing])
    entries = [
        group_commit._Entry([_row(config_id, principal.workspace_id)]),
        group_commit._Entry([_row(config_id, principal.workspace_id, id=existing["id"])]),
        group_commit._Entry([_row(config_id, principal.workspace_id)]),
    ]
    writer._write_group(entries)
    assert entries[0].error is None and entries[2].error is None
    assert isinstance(entries[1].error, IntegrityError)
    assert _stored_ids(app) == {existing["id"], entries[0].rows[0]["id"], entries[2].rows[0]["id"]}


def test_a_lost_connection_is_an_error_then_a_new_connection_writes(app, principal, config_id):
    """The writer's connection is killed: the next write raises (the API answers 503, the
    decision is not reported as made) and the one after reconnects and commits."""
    engine = app_runtime(app).engine
    writer = group_commit.writer_for(engine)
    writer.write([_row(config_id, principal.workspace_id)])
    pid = writer._connection.driver_connection.info.backend_pid
    with engine.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.commit()
    lost = _row(config_id, principal.workspace_id)
    with pytest.raises(DBAPIError) as raised:
        writer.write([lost])
    assert raised.value.connection_invalidated
    assert lost["id"] not in _stored_ids(app)
    again = _row(config_id, principal.workspace_id)
    writer.write([again])
    assert again["id"] in _stored_ids(app)


def test_an_over_long_value_fails_instead_of_being_cut(app, principal, config_id):
    """A value longer than its column fails the insert (never cut to fit)."""
    writer = group_commit.writer_for(app_runtime(app).engine)
    with pytest.raises(DBAPIError):
        writer.write([_row(config_id, principal.workspace_id, channel="x" * 65)])


def test_disposing_the_engine_closes_its_writer(app):
    engine = app_runtime(app).engine
    writer = group_commit.writer_for(engine)
    engine.dispose()
    assert writer._connection is None
    assert group_commit.writer_for(engine) is not writer


def test_the_api_answers_503_when_the_write_is_lost_then_decides_again(
    app, client, tenant, config_id
):
    """Over HTTP: the writer's connection dies; that decision answers 503 (never a 201 for
    a row that is not stored), the next one 201 on a new connection."""
    from tests.conftest import BASE

    url = f"{BASE}/{config_id}/decisions"
    body = {"user_id": "u1", "channel": "web"}
    assert client.post(url, json=body, headers=tenant.headers).status_code == 201
    engine = app_runtime(app).engine
    writer = group_commit.writer_for(engine)
    pid = writer._connection.driver_connection.info.backend_pid
    with engine.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.commit()
    before = len(_stored_ids(app))
    lost = client.post(url, json=body, headers=tenant.headers)
    assert lost.status_code == 503, lost.get_json()
    assert len(_stored_ids(app)) == before
    again = client.post(url, json=body, headers=tenant.headers)
    assert again.status_code == 201
    assert uuid.UUID(again.get_json()["decision_id"]) in _stored_ids(app)
