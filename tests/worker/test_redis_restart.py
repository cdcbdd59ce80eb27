"""Redis killed and restarted under traffic (issue 14): nothing lost, nothing counted twice.

A real ``hpe serve`` (two gunicorn workers) and an ``hpe worker`` on PostgreSQL and a
private ``redis-server``. A client makes decisions, each followed by a click with its
own idempotency key. Redis is killed (its data gone: no persistence) for 3 s and started
again on the same port. Decisions and outcomes never fail (Redis is not on their path; the
rate limits count in memory meanwhile), and once the traffic stops every decision is
learned exactly once and the metrics count exactly what was stored.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from hpe_core.store.models import Outcome
from hpe_core.tenancy import workspaces
from tests.conftest import BASE, IN_REPO_PLUGINS, make_test_app
from tests.servers import hpe_serving
from tests.worker.conftest import (
    assert_learned_exactly_once,
    free_port,
    learning_state,
    running_worker,
    stop_redis,
    wait_for,
    worker_env,
    worker_log,
)
from tests.worker.test_database_outage import SECRET_KEY, Traffic, _call
from web.extensions import app_runtime

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def test_redis_killed_and_restarted_under_traffic(pg_url, tmp_path, private_redis):
    """Every decision 201, every click 202 through the outage; all learned once; metrics exact."""
    port = free_port()
    redis_process = private_redis(port)
    redis_url = f"redis://127.0.0.1:{port}/0"
    app = make_test_app(pg_url, tmp_path / "setup", REDIS_URL=redis_url)
    try:
        with app_runtime(app).sessions() as session:
            workspaces.create_workspace(session, "acme")
            _row, key = workspaces.create_key(session, "acme")
            session.commit()
    finally:
        app_runtime(app).jobs.redis.close()
        app_runtime(app).engine.dispose()
    env = worker_env(pg_url, redis_url, tmp_path, HPE_SECRET_KEY=SECRET_KEY)
    serve_env = {**env, "HPE_LOAD_PLUGINS": json.dumps(IN_REPO_PLUGINS)}
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    with hpe_serving(workdir, serve_env, tmp_path / "server.log", workers=2) as base:
        status, _headers, raw = _call(
            "POST", f"{base}{BASE}/",
            {"name": "redis-restart",
             "settings": {"actions": [{"id": "a"}, {"id": "b"}], "reward": {"wait_seconds": 1}}},
            key,
        )  # fmt: skip
        assert status == 201, raw
        config_id = json.loads(raw)["id"]
        with running_worker(env, tmp_path, name="worker") as worker:
            traffic = Traffic(base, key, config_id).start()
            time.sleep(3)
            stop_redis(redis_process)  # killed: its queues and pending keys are gone
            time.sleep(3)
            during = len(traffic.decided)
            private_redis(port)  # back, empty, on the same port
            wait_for(lambda: len(traffic.decided) > during + 20, 60, "traffic to go on")
            traffic.stop()
            engine = sa.create_engine(pg_url)
            try:
                decided = len(traffic.decided)

                def learned_all() -> bool:
                    assert worker.poll() is None, worker_log(worker)
                    return learning_state(engine, uuid.UUID(config_id)).learned == decided

                wait_for(learned_all, 120, "the worker to learn every decision")
                state = learning_state(engine, uuid.UUID(config_id))
                with engine.connect() as connection:
                    outcomes = connection.scalar(
                        sa.select(sa.func.count()).where(
                            Outcome.__table__.c.config_id == uuid.UUID(config_id)
                        )
                    )
            finally:
                engine.dispose()
        request = urllib.request.Request(f"{base}{BASE}/{config_id}/metrics")
        request.add_header("Authorization", f"Bearer {key}")
        with urllib.request.urlopen(request, timeout=30) as response:
            metrics = json.loads(response.read())

    assert traffic.bad == [], traffic.bad[:5]
    assert set(traffic.statuses) <= {201, 202}, traffic.statuses  # Redis is off their path
    assert state.decisions == decided
    assert_learned_exactly_once(state)
    assert outcomes == decided
    summary = metrics["summary"]
    assert summary["decisions"]["treatment"] + summary["decisions"]["holdout"] == decided
    assert summary["engagements"]["treatment"] + summary["engagements"]["holdout"] == decided
    assert metrics["learning_lag_seconds"] is None
    assert Path(tmp_path / "server.log").read_text().count("Traceback") == 0
