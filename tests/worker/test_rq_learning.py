"""Learning on RQ with PostgreSQL and real Redis: the sweep, the job, `hpe worker` processes."""

from __future__ import annotations

import threading
import time

import pytest
from rq import SimpleWorker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer

from hpe_core import learning
from tests.worker.conftest import (
    Loop,
    assert_learned_exactly_once,
    insert_closed_decisions,
    learning_state,
    running_worker,
    wait_for,
    wait_windows_closed,
    worker_env,
    worker_log,
)
from worker import jobs
from worker.queues import sweep
from worker.runtime import bind_app

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _sweep(app) -> int:
    return sweep(app.extensions["hpe_jobs"], app.extensions["hpe_sessions"])


def _closed(app) -> list:
    with app.extensions["hpe_sessions"]() as session:
        return learning.configs_with_closed_windows(session)


def _simple_worker(app) -> SimpleWorker:
    backend = app.extensions["hpe_jobs"]
    return SimpleWorker([backend.queue], connection=backend.redis, serializer=JSONSerializer)


def test_rq_learns_closed_decisions_end_to_end(rq_app):
    """Decisions + outcomes → windows close → one queued job per config → a worker learns them."""
    loop = Loop(rq_app)
    first, second = loop.create_config("First"), loop.create_config("Second")
    ids = {first: loop.decide_many(first, 12), second: loop.decide_many(second, 7)}
    backend = rq_app.extensions["hpe_jobs"]
    assert backend.name == "rq"
    assert len(backend.queue) == 0  # decisions and outcomes never touch Redis

    engine = rq_app.extensions["hpe_engine"]
    wait_windows_closed(engine)
    assert len(_closed(rq_app)) == 2
    assert _sweep(rq_app) == 2
    assert _sweep(rq_app) == 0  # one pending job per configuration is enough
    assert len(backend.queue) == 2
    assert sorted(job.args[0] for job in backend.queue.jobs) == sorted([str(first), str(second)])

    bind_app(rq_app)
    assert _simple_worker(rq_app).work(burst=True) is True

    for config_id, decision_ids in ids.items():
        state = learning_state(engine, config_id)
        assert state.decisions == len(decision_ids)
        assert_learned_exactly_once(state)
        assert len(state.versions) == 1
    results = [Job.fetch(job_id, connection=backend.redis, serializer=JSONSerializer)
               for job_id in FinishedJobRegistry(queue=backend.queue).get_job_ids()]
    assert sorted(job.return_value()["learned"] for job in results) == [7, 12]
    # Learned and not pending any more: the next closed decision gets a new job.
    assert _sweep(rq_app) == 0
    loop.decide_ok(first, "late-comer")
    wait_for(lambda: _sweep(rq_app) == 1, 10, "the new decision's window to close")
