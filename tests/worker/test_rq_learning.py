"""Learning on RQ with PostgreSQL and real Redis: the sweep, the job, `hpe worker` processes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess

import pytest
from rq import SimpleWorker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer

from hpe_core.learn import learning
from hpe_core.store.models import utcnow
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
from web.extensions import app_runtime
from worker.queues import sweep
from worker.runtime import bind

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _sweep(app) -> int:
    return sweep(app_runtime(app).jobs, app_runtime(app).sessions)


def _closed(app) -> list:
    with app_runtime(app).sessions() as session:
        return learning.configs_with_closed_windows(session)


def _simple_worker(app) -> SimpleWorker:
    backend = app_runtime(app).jobs
    return SimpleWorker([backend.queue], connection=backend.redis, serializer=JSONSerializer)


def test_rq_learns_closed_decisions_end_to_end(rq_app):
    """Decisions + outcomes → windows close → one queued job per config → a worker learns them."""
    loop = Loop(rq_app)
    first, second = loop.create_config("First"), loop.create_config("Second")
    ids = {first: loop.decide_many(first, 12), second: loop.decide_many(second, 7)}
    backend = app_runtime(rq_app).jobs
    assert backend.name == "rq"
    assert len(backend.queue) == 0  # decisions and outcomes never touch Redis

    engine = app_runtime(rq_app).engine
    wait_windows_closed(engine)
    assert len(_closed(rq_app)) == 2
    assert _sweep(rq_app) == 2
    assert _sweep(rq_app) == 0  # one pending job per configuration is enough
    assert len(backend.queue) == 2
    assert sorted(job.args[0] for job in backend.queue.jobs) == sorted([str(first), str(second)])

    bind(app_runtime(rq_app))
    assert _simple_worker(rq_app).work(burst=True) is True

    for config_id, decision_ids in ids.items():
        state = learning_state(engine, config_id)
        assert state.decisions == len(decision_ids)
        assert_learned_exactly_once(state)
        assert len(state.versions) == 1
    results = [
        Job.fetch(job_id, connection=backend.redis, serializer=JSONSerializer)
        for job_id in FinishedJobRegistry(queue=backend.queue).get_job_ids()
    ]
    assert sorted(job.return_value()["learned"] for job in results) == [7, 12]
    # Learned and not pending any more: the next closed decision gets a new job.
    assert _sweep(rq_app) == 0
    loop.decide_ok(first, "late-comer")
    wait_for(lambda: _sweep(rq_app) == 1, 10, "the new decision's window to close")


def _finished_jobs(backend) -> list[Job]:
    registry = FinishedJobRegistry(queue=backend.queue)
    jobs = Job.fetch_many(
        registry.get_job_ids(), connection=backend.redis, serializer=JSONSerializer
    )
    return [job for job in jobs if job is not None]


def _learned_by_jobs(backend, config_id) -> int:
    """Decisions learned by the finished learn jobs of one configuration, by their reports."""
    jobs = _finished_jobs(backend)
    return sum(j.return_value()["learned"] for j in jobs if j.args[0] == str(config_id))


def _children(pid: int) -> set[int]:
    """The process ids of ``pid``'s children (Linux)."""
    children: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listed:
            children.update(int(child) for child in listed.read().split())
    return children


def _wait_idle_workers(backend, process, count: int) -> None:
    """Wait until ``count`` workers wait for jobs (registered, rq's signal handlers set)."""
    from rq import Worker

    def idle() -> bool:
        assert process.poll() is None, worker_log(process)
        # Only this parent's workers: a worker left over by an earlier test (killed in a
        # fault test, still heartbeating) must not count as one of ours.
        ours = _children(process.pid)
        workers = Worker.all(connection=backend.redis, queue=backend.queue)
        return sum(w.get_state() == "idle" and w.pid in ours for w in workers) == count

    wait_for(idle, 90, f"{count} RQ workers to wait for jobs")


@pytest.mark.slow
def test_two_configs_learn_in_parallel_on_two_worker_processes(rq_app, pg_url, redis_url, tmp_path):
    """`hpe worker --processes 2`: two configurations learn at once, each decision exactly once."""

    loop = Loop(rq_app)
    configs = [loop.create_config("First"), loop.create_config("Second")]
    backend = app_runtime(rq_app).jobs
    engine = app_runtime(rq_app).engine
    with running_worker(
        worker_env(pg_url, redis_url, tmp_path), tmp_path, "--processes", "2"
    ) as process:
        _wait_idle_workers(backend, process, 2)
        # Both backlogs appear at once, to idle workers: one sweep enqueues both configurations.
        closes_at = utcnow() + dt.timedelta(seconds=4)
        for seed, config_id in enumerate(configs):
            insert_closed_decisions(rq_app, config_id, 8000, seed=seed, closes_at=closes_at)
        wait_for(
            lambda: (
                all(learning_state(engine, c).done for c in configs) or process.poll() is not None
            ),
            150,
            "both configurations to be learned",
            interval=0.2,
        )
        assert process.poll() is None, worker_log(process)
        # The last job reports a moment after its commit.
        wait_for(
            lambda: all(_learned_by_jobs(backend, c) >= 8000 for c in configs),
            30,
            "the learn jobs to report",
        )
        jobs_run = _finished_jobs(backend)

    for config_id in configs:
        state = learning_state(engine, config_id)
        assert state.decisions == 8000
        assert_learned_exactly_once(state)
        assert _learned_by_jobs(backend, config_id) == 8000
    learning_jobs = [job for job in jobs_run if job.return_value()["learned"] > 0]
    assert {job.args[0] for job in learning_jobs} == {str(c) for c in configs}
    by_config = {c: [j for j in learning_jobs if j.args[0] == str(c)] for c in configs}
    # Parallel: the two configurations' learn jobs ran at the same time on different workers.
    first, second = (min(by_config[c], key=lambda j: j.started_at) for c in configs)
    assert first.worker_name != second.worker_name
    assert first.started_at < second.ended_at and second.started_at < first.ended_at


@pytest.mark.slow
def test_burst_worker_sweeps_learns_and_exits(rq_app, pg_url, redis_url, tmp_path):
    """`hpe worker --burst` with an empty queue finds the closed windows, learns them, exits 0."""
    loop = Loop(rq_app)
    config_id = loop.create_config()
    insert_closed_decisions(rq_app, config_id, 300)
    assert len(app_runtime(rq_app).jobs.queue) == 0
    with running_worker(worker_env(pg_url, redis_url, tmp_path), tmp_path, "--burst") as process:
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"burst worker still running after 120 s:\n{worker_log(process)}")
        assert process.returncode == 0, worker_log(process)
    state = learning_state(app_runtime(rq_app).engine, config_id)
    assert state.decisions == 300
    assert_learned_exactly_once(state)


@pytest.mark.slow
def test_stopping_the_worker_parent_stops_its_worker_processes(rq_app, pg_url, redis_url, tmp_path):
    """SIGTERM to `hpe worker --processes 2` alone: both workers shut down, none is orphaned."""
    from rq import Worker

    backend = app_runtime(rq_app).jobs
    with running_worker(
        worker_env(pg_url, redis_url, tmp_path), tmp_path, "--processes", "2"
    ) as process:
        _wait_idle_workers(backend, process, 2)
        os.kill(process.pid, signal.SIGTERM)  # the parent only, as `kill <pid>` does
        try:
            # Seconds, not rq's pub/sub sleep of 60 s (worker.main._worker_class).
            process.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the parent did not stop:\n{worker_log(process)}")
        assert process.returncode == 0, worker_log(process)
        wait_for(
            lambda: not Worker.all(connection=backend.redis, queue=backend.queue),
            30,
            "the workers to unregister",
        )

        def group_gone() -> bool:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(group_gone, 30, "every process of the worker to exit")


def test_a_failing_learn_job_that_is_not_transient_goes_to_the_failed_registry(rq_app):
    """A bug (here: a malformed config id) is not retried: the job fails at once."""
    from rq.job import JobStatus

    from worker import jobs

    backend = app_runtime(rq_app).jobs
    job = backend.queue.enqueue(jobs.learn, "not-a-uuid")
    bind(app_runtime(rq_app))
    assert _simple_worker(rq_app).work(burst=True) is True
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert job.id in backend.queue.failed_job_registry.get_job_ids()
    assert len(backend.queue.scheduled_job_registry) == 0
