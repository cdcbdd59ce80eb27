"""Faults on PostgreSQL + real Redis: a worker killed mid-learn, Redis down, racing learners,
transient job failures retried by RQ."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading

import pytest
import redis
import sqlalchemy as sa

from tests.conftest import make_test_app
from tests.worker.conftest import (
    Loop,
    assert_learned_exactly_once,
    free_port,
    insert_closed_decisions,
    learning_state,
    running_worker,
    stop_redis,
    wait_for,
    wait_windows_closed,
    worker_env,
    worker_log,
)
from web.extensions import app_runtime

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _open_transactions(engine) -> int:
    """Other sessions on this database inside a transaction (a learn batch in progress)."""
    with engine.connect() as connection:
        return connection.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            )
        )


@pytest.mark.slow
def test_worker_killed_mid_learn_loses_nothing_and_learns_nothing_twice(
    rq_app, pg_url, redis_url, tmp_path
):
    """SIGKILL during a learn batch, then a burst worker: every decision learned exactly once."""
    loop = Loop(rq_app)
    config_id = loop.create_config()
    engine = app_runtime(rq_app).engine
    insert_closed_decisions(rq_app, config_id, 20000)
    env = worker_env(pg_url, redis_url, tmp_path)

    with running_worker(env, tmp_path, name="victim") as victim:

        def first_version_then_next_batch() -> bool:
            assert victim.poll() is None, worker_log(victim)
            state = learning_state(engine, config_id)
            return bool(state.versions) and _open_transactions(engine) > 0

        wait_for(
            first_version_then_next_batch, 120, "the worker to commit a batch and start the next"
        )
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(30)
        assert victim.returncode == -signal.SIGKILL

    killed = learning_state(engine, config_id)
    assert 0 < killed.learned < killed.decisions, killed  # killed mid-learn, not after
    assert killed.newest_total == killed.learned, killed  # the open batch left no trace
    # The dead worker's database session goes away with its connection (and its lock).
    wait_for(lambda: _open_transactions(engine) == 0, 30, "the killed worker's transaction to end")

    with running_worker(env, tmp_path, "--burst", name="rescuer") as rescuer:
        try:
            rescuer.wait(180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"burst worker still running after 180 s:\n{worker_log(rescuer)}")
        assert rescuer.returncode == 0, worker_log(rescuer)

    state = learning_state(engine, config_id)
    assert state.decisions == 20000
    assert_learned_exactly_once(state)
    assert state.versions[: len(killed.versions)] == killed.versions  # kept as committed


@pytest.mark.slow
def test_redis_down_serves_decisions_and_learns_everything_once_back(
    pg_url, tmp_path, private_redis, caplog
):
    """Redis killed: decisions 201, outcomes 202 and stored, sweeps fail; restarted: all learned."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from hpe_core.store.models import Outcome
    from worker.queues import Sweeper, sweep
    from worker.runtime import bind

    port = free_port()
    redis_process = private_redis(port)
    app = make_test_app(pg_url, tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    sweeper = None
    try:
        backend, sessions = app_runtime(app).jobs, app_runtime(app).sessions
        engine = app_runtime(app).engine
        loop = Loop(app)
        config_id = loop.create_config()
        before = loop.decide_many(config_id, 5)  # the model is loaded in this process
        stop_redis(redis_process)

        during = loop.decide_many(config_id, 9)  # 201 and 202 asserted inside
        with engine.connect() as connection:
            outcomes = connection.scalar(
                sa.select(sa.func.count()).where(Outcome.__table__.c.config_id == config_id)
            )
        assert outcomes == 2 + 3  # every third decision got a click, all stored
        wait_windows_closed(engine)
        with pytest.raises(redis.exceptions.ConnectionError):
            sweep(backend, sessions)
        assert learning_state(engine, config_id).learned == 0

        # The sweeper thread logs each failed pass and keeps going.
        caplog.set_level(logging.WARNING, logger="worker.queues")
        sweeper = Sweeper(backend, sessions, interval=0.1).start()
        wait_for(
            lambda: sum("sweep failed" in r.getMessage() for r in caplog.records) >= 3,
            30,
            "three failed sweeps to be logged",
        )
        assert sweeper._thread.is_alive()

        private_redis(port)  # back, empty, on the same port
        wait_for(lambda: len(backend.queue) == 1, 30, "the sweeper to enqueue once Redis is back")
        sweeper.stop()
        assert not sweeper._thread.is_alive()

        bind(app_runtime(app))
        worker = SimpleWorker([backend.queue], connection=backend.redis, serializer=JSONSerializer)
        assert worker.work(burst=True) is True
        state = learning_state(engine, config_id)
        assert state.decisions == len(before) + len(during)
        assert_learned_exactly_once(state)
    finally:
        if sweeper is not None:
            sweeper.stop()
        app_runtime(app).jobs.redis.close()
        app_runtime(app).engine.dispose()


def test_racing_learners_on_one_config_learn_each_decision_once(rq_app):
    """Two threads learn one configuration at once: one learns the batch, the other nothing."""
    from hpe_core.learn import learning

    loop = Loop(rq_app)
    config_id = loop.create_config()
    insert_closed_decisions(rq_app, config_id, 3000)
    sessions = app_runtime(rq_app).sessions
    start = threading.Barrier(2)
    reports, errors = [], []

    def learn() -> None:
        try:
            with sessions() as session:
                start.wait(10)
                reports.append(learning.learn_closed(session, config_id))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions below
            errors.append(exc)

    threads = [threading.Thread(target=learn) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    winner, loser = sorted(reports, key=lambda r: -r.learned)
    assert (winner.learned, winner.version) == (3000, 1)
    assert loser.learned == 0 and loser.version is None
    state = learning_state(app_runtime(rq_app).engine, config_id)
    assert_learned_exactly_once(state)
    assert len(state.versions) == 1


def test_racing_learner_is_kept_out_by_the_advisory_lock(rq_app, pg_url):
    """While one learn transaction holds a configuration, another learn_closed reports busy."""
    from hpe_core.learn import learning

    loop = Loop(rq_app)
    config_id = loop.create_config()
    insert_closed_decisions(rq_app, config_id, 3000)
    sessions = app_runtime(rq_app).sessions
    holder = sessions()
    try:
        # The same lock a learn run takes first, held by an open transaction.
        assert learning._try_lock(holder, config_id)
        with sessions() as session:
            report = learning.learn_closed(session, config_id)
        assert report.busy and report.learned == 0
        holder.rollback()  # the transaction ends, the lock goes with it
        with sessions() as session:
            report = learning.learn_closed(session, config_id)
        assert not report.busy and report.learned == 3000
    finally:
        holder.close()
    assert_learned_exactly_once(learning_state(app_runtime(rq_app).engine, config_id))


@pytest.mark.slow
def test_transient_failure_is_retried_per_retry_policy(rq_app, redis_url, tmp_path):
    """A learn job failing on an unreachable database is rescheduled per retry.py, then learns."""
    import datetime as dt

    from rq import SimpleWorker
    from rq.job import Job, JobStatus
    from rq.serializers import JSONSerializer

    from worker import retry
    from worker.runtime import bind

    loop = Loop(rq_app)
    config_id = loop.create_config()
    insert_closed_decisions(rq_app, config_id, 200)
    backend = app_runtime(rq_app).jobs
    assert backend.enqueue_learn(config_id)
    (job_id,) = backend.queue.job_ids
    # A worker whose database does not answer (nothing listens on port 1).
    cut_off = make_test_app(
        "postgresql+psycopg://postgres@127.0.0.1:1/hpe",
        tmp_path,
        REDIS_URL=redis_url,
        SCHEMA_CHECK=False,
    )

    def work() -> bool:
        worker = SimpleWorker([backend.queue], connection=backend.redis, serializer=JSONSerializer)
        return worker.work(burst=True, with_scheduler=True)

    try:
        bind(app_runtime(cut_off))
        failed_at = dt.datetime.now(dt.UTC)
        assert work() is True
    finally:
        app_runtime(cut_off).jobs.redis.close()
        app_runtime(cut_off).engine.dispose()
    job = Job.fetch(job_id, connection=backend.redis, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.number_of_retries == 1  # the first of retry.LEARN_MAX
    registry = backend.queue.scheduled_job_registry
    due = registry.get_scheduled_time(job_id)
    delay = (due - failed_at).total_seconds()
    assert retry.LEARN_INTERVALS[0] - 1 <= delay <= retry.LEARN_INTERVALS[0] + 30, delay
    assert learning_state(app_runtime(rq_app).engine, config_id).learned == 0

    # The database is back: once due, the scheduler of a burst worker requeues the retry.
    bind(app_runtime(rq_app))
    wait_for(
        lambda: dt.datetime.now(dt.UTC) > due + dt.timedelta(milliseconds=100),
        retry.LEARN_INTERVALS[0] + 35,
        "the retry to be due",
        interval=0.2,
    )
    assert work() is True
    job = Job.fetch(job_id, connection=backend.redis, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value()["learned"] == 200
    assert_learned_exactly_once(learning_state(app_runtime(rq_app).engine, config_id))
