"""Attribution on the queue seam: the sweep enqueues it before learning, RQ (PostgreSQL +
real Redis) and the inline backend (SQLite) run it, and learning then sees the credit."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from rq import SimpleWorker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer

from hpe_core.store.models import Attribution, Decision, Outcome
from tests.conftest import BASE
from tests.worker.conftest import Loop, wait_windows_closed
from web.extensions import app_runtime
from worker.queues import sweep
from worker.runtime import bind


def _journey(loop: Loop, config_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """alice gets an email, then a web decision, then buys for 80 (no decision_id) right
    after the web decision, inside both reward windows; returns channel -> decision id."""
    decisions = {}
    for channel in ("email", "web"):
        response = loop.client.post(
            f"{BASE}/{config_id}/decisions",
            json={"user_id": "alice", "channel": channel, "context": {}},
            headers=loop.tenant.headers,
        )
        assert response.status_code == 201, response.get_json()
        decisions[channel] = uuid.UUID(response.get_json()["decision_id"])
    with app_runtime(loop.app).sessions() as session:
        web_at = session.get(Decision, decisions["web"]).created_at
    response = loop.client.post(
        f"{BASE}/{config_id}/outcomes",
        json={
            "user_id": "alice",
            "type": "conversion",
            "value": 80,
            "occurred_at": (web_at + dt.timedelta(milliseconds=100)).isoformat(),
        },
        headers=loop.tenant.headers,
    )
    assert response.status_code == 202, response.get_json()
    return decisions


def _assert_credited_and_learned(app, decisions: dict[str, uuid.UUID]) -> None:
    """last_touch (the default): web has all the credit and learned 1.0 × 80; email has
    none and learned the default 0."""
    with app_runtime(app).sessions() as session:
        credit = dict(session.execute(sa.select(Attribution.decision_id, Attribution.credit)).all())
        assert credit == {decisions["web"]: 1.0}
        assert session.scalar(sa.select(Outcome.attributed_at)) is not None
        web, email = (session.get(Decision, decisions[c]) for c in ("web", "email"))
        assert web.learned_at is not None and web.reward == pytest.approx(80.0) and web.engaged
        assert email.learned_at is not None and email.reward == 0.0 and not email.engaged


@pytest.mark.postgres
@pytest.mark.redis
def test_rq_attributes_before_learning(rq_app):
    """One sweep queues the attribute job, then the learn job, on one queue; a burst worker
    runs both in that order and the job returns its report."""
    loop = Loop(rq_app)
    config_id = loop.create_config("Journey", wait_seconds=1)
    decisions = _journey(loop, config_id)
    backend = app_runtime(rq_app).jobs
    assert backend.name == "rq" and len(backend.queue) == 0  # outcomes never touch Redis
    wait_windows_closed(app_runtime(rq_app).engine)

    assert sweep(backend, app_runtime(rq_app).sessions) == 2
    assert [job.func_name for job in backend.queue.jobs] == [
        "worker.jobs.attribute",
        "worker.jobs.learn",
    ]
    bind(app_runtime(rq_app))
    worker = SimpleWorker([backend.queue], connection=backend.redis, serializer=JSONSerializer)
    assert worker.work(burst=True) is True

    _assert_credited_and_learned(rq_app, decisions)
    finished = [
        Job.fetch(job_id, connection=backend.redis, serializer=JSONSerializer)
        for job_id in FinishedJobRegistry(queue=backend.queue).get_job_ids()
    ]
    reports = [job.return_value() for job in finished if job.func_name == "worker.jobs.attribute"]
    assert reports == [
        {
            "config_id": str(config_id),
            "outcomes": 1,
            "credited_decisions": 1,
            "unattributed": 0,
            "skipped": 0,
            "model": "last_touch",
            "busy": False,
        }
    ]
    assert sweep(backend, app_runtime(rq_app).sessions) == 0  # nothing waits any more


def test_inline_backend_attributes_before_learning(sqlite_app):
    """Without Redis the same sweep runs the jobs in-process, attribution first."""
    loop = Loop(sqlite_app)
    config_id = loop.create_config("Journey", wait_seconds=1)
    decisions = _journey(loop, config_id)
    backend = app_runtime(sqlite_app).jobs
    assert backend.name == "inline"
    wait_windows_closed(app_runtime(sqlite_app).engine)
    assert sweep(backend, app_runtime(sqlite_app).sessions) == 2
    backend.run_pending()
    _assert_credited_and_learned(sqlite_app, decisions)
