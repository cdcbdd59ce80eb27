"""A killed worker cannot stall learning (issue 14, defect 1).

RQ forks children (its scheduler) that inherited the worker's PostgreSQL sockets: when
only the worker died, a child's copy of the socket kept the learn transaction's session
"idle in transaction" with the configuration's advisory lock, and every later learn run
skipped the configuration without a word. Now no connection crosses a fork, the children
die with the worker, PostgreSQL ends a learn session idle in its transaction, a busy skip
is logged with its holder, and the stall shows in health and metrics.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.store.models import Decision, utcnow
from tests.conftest import BASE
from tests.worker.conftest import (
    REPO,
    Loop,
    assert_learned_exactly_once,
    insert_closed_decisions,
    learning_state,
    running_worker,
    wait_for,
    worker_env,
    worker_log,
)
from web.extensions import app_runtime

pytestmark = [pytest.mark.postgres]

#: A parent that holds an advisory lock in an open transaction, forks a child that sleeps
#: (a stand-in for RQ's scheduler), prints both pids and waits to be killed.
_FORKING_HOLDER = """
import os, sys, time
import sqlalchemy as sa
from hpe_core.store import db

engine = db.make_engine(sys.argv[1])
connection = engine.connect()
connection.begin()
connection.execute(sa.text("SELECT pg_advisory_xact_lock(424242)"))
child = os.fork()
if child == 0:
    time.sleep(120)
    os._exit(0)
print(os.getpid(), child, flush=True)
time.sleep(120)
"""


def _lock_holders(engine, key: int = 424242) -> int:
    with engine.connect() as connection:
        return connection.scalar(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objid = :key"
            ),
            {"key": key},
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_forked_child_does_not_keep_its_dead_parents_transaction(pg_url):
    """The parent holding a lock is SIGKILLed while its forked child lives: the lock goes."""
    engine = sa.create_engine(pg_url)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _FORKING_HOLDER, pg_url],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = None
    try:
        parent, child = (int(pid) for pid in holder.stdout.readline().split())
        assert _lock_holders(engine) == 1
        os.kill(parent, signal.SIGKILL)
        holder.wait(10)
        wait_for(lambda: _lock_holders(engine) == 0, 10, "the dead parent's lock to go")
        assert _alive(child)  # released while the child (which has the fork's copy) lives
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
        engine.dispose()


@pytest.mark.redis
def test_an_idle_learn_transaction_is_ended_by_the_server(rq_app):
    """A learn session idle in its transaction past the timeout loses its lock to the next run."""
    from hpe_core.learn import learning

    loop = Loop(rq_app)
    config_id = loop.create_config()
    insert_closed_decisions(rq_app, config_id, 300)
    sessions = app_runtime(rq_app).sessions
    holder = sessions()
    try:
        # A learner that took the lock and then hung (its machine vanished).
        assert learning._try_lock(holder, config_id, idle_timeout=dt.timedelta(seconds=1))
        with sessions() as session:
            assert learning.learn_closed(session, config_id).busy
        time.sleep(1.5)
        with sessions() as session:
            report = learning.learn_closed(session, config_id)
        assert not report.busy and report.learned == 300
    finally:
        try:
            holder.close()
        except sa.exc.DBAPIError as exc:  # the server ended it: that is the point
            assert "idle-in-transaction timeout" in str(exc)
    assert_learned_exactly_once(learning_state(app_runtime(rq_app).engine, config_id))


@pytest.mark.redis
def test_a_busy_skip_is_logged_with_its_holder(rq_app, caplog):
    """A learn run that finds the configuration locked says so, naming the holding backend."""
    from hpe_core.learn import learning

    loop = Loop(rq_app)
    config_id = loop.create_config()
    insert_closed_decisions(rq_app, config_id, 10)
    sessions = app_runtime(rq_app).sessions
    holder = sessions()
    try:
        assert learning._try_lock(holder, config_id)
        backend_pid = holder.scalar(sa.text("SELECT pg_backend_pid()"))
        caplog.set_level(logging.INFO, logger="hpe_core.learn.learning")
        with sessions() as session:
            assert learning.learn_closed(session, config_id).busy
    finally:
        holder.close()
    (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert str(config_id) in record.getMessage()
    assert f"PostgreSQL backend {backend_pid}" in record.getMessage()


def test_learning_lag_shows_in_health_and_metrics(app, client, make_tenant):
    """A window closed 15 minutes ago and not learned: health says lagging, metrics the age."""
    from hpe_core.learn import learning

    tenant = make_tenant()
    created = client.post(
        f"{BASE}/",
        json={"name": "Lag", "settings": {"actions": [{"id": "a"}, {"id": "b"}]}},
        headers=tenant.headers,
    ).get_json()
    config_id = uuid.UUID(created["id"])
    health = client.get("/api/v1/health").get_json()
    assert (health["learning"], health["learning_lag_seconds"]) == ("ok", None)

    closed = utcnow() - dt.timedelta(minutes=15)
    with app_runtime(app).sessions() as session:
        session.add(
            Decision(
                workspace_id=tenant.id, config_id=config_id, user_id="u", channel="email",
                context={}, eligible=["a", "b"], probabilities=[0.5, 0.5], action_id="a",
                probability=0.5, variant="treatment", policy="model",
                created_at=closed - dt.timedelta(days=1), window_closes_at=closed,
            )
        )  # fmt: skip
        session.commit()

    health = client.get("/api/v1/health")
    assert health.status_code == 200
    body = health.get_json()
    assert (body["status"], body["learning"]) == ("degraded", "lagging")
    assert 15 * 60 <= body["learning_lag_seconds"] < 16 * 60
    metrics = client.get(f"{BASE}/{config_id}/metrics", headers=tenant.headers).get_json()
    assert 15 * 60 <= metrics["learning_lag_seconds"] < 16 * 60

    with app_runtime(app).sessions() as session:
        assert learning.learn_all_closed(session, config_id).learned == 1
    body = client.get("/api/v1/health").get_json()
    assert (body["status"], body["learning"], body["learning_lag_seconds"]) == ("ok", "ok", None)
    metrics = client.get(f"{BASE}/{config_id}/metrics", headers=tenant.headers).get_json()
    assert metrics["learning_lag_seconds"] is None


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.slow
@pytest.mark.redis
def test_worker_sigkilled_mid_learn_with_its_scheduler_left_over_does_not_stall_learning(
    rq_app, pg_url, redis_url, tmp_path
):
    """SIGKILL to the worker only (its forked scheduler survives the kill, as after an OOM
    kill): the scheduler goes, the lock goes, and a new worker learns every decision once."""
    loop = Loop(rq_app)
    config_id = loop.create_config()
    engine = app_runtime(rq_app).engine
    insert_closed_decisions(rq_app, config_id, 20000)
    # No sweeper in the victim: its learn job is then the only user of the connection it
    # opened before RQ forked the scheduler, the connection a child inherits.
    env = worker_env(pg_url, redis_url, tmp_path, HPE_SWEEP_INTERVAL="3600")
    backend = app_runtime(rq_app).jobs

    with running_worker(env, tmp_path, name="victim") as victim:
        scheduler = wait_for(lambda: _children(victim.pid), 60, "RQ's scheduler to fork")
        assert backend.enqueue_learn(config_id)

        def learning() -> bool:
            assert victim.poll() is None, worker_log(victim)
            return _lock_held(engine)

        # The first batch: its transaction runs on the connection the worker opened (to
        # check the schema) before RQ forked the scheduler.
        wait_for(learning, 120, "the worker to lock the configuration and learn", 0.01)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(30)
        killed = learning_state(engine, config_id)
        assert killed.learned < killed.decisions, killed
        # The scheduler dies with the worker; its copy of the sockets was closed at the fork.
        wait_for(lambda: not any(_alive(pid) for pid in scheduler), 15, "the scheduler to go")
        wait_for(lambda: not _lock_held(engine), 15, "the dead worker's learn lock to go")

    with running_worker(env, tmp_path, "--burst", name="rescuer") as rescuer:
        try:
            rescuer.wait(180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"burst worker still running after 180 s:\n{worker_log(rescuer)}")
        assert rescuer.returncode == 0, worker_log(rescuer)

    state = learning_state(engine, config_id)
    assert state.decisions == 20000
    assert_learned_exactly_once(state)
    assert state.versions[: len(killed.versions)] == killed.versions


def _lock_held(engine) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid <> pg_backend_pid()"
                )
            )
        )
