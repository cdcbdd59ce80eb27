"""Helpers for the worker tests: apps on PostgreSQL + real Redis, backlogs of closed
decisions, `hpe worker` subprocesses and private redis-server processes.

Every process started here is stopped in a ``finally``; every wait is bounded in time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from hpe_core.store.models import Config, Decision, ModelVersion, utcnow
from tests.conftest import (
    BASE,
    IN_REPO_PLUGINS,
    TEST_SECRET_KEY,
    Tenant,
    _truncate_all,
    make_test_app,
)
from web.extensions import app_runtime

REPO = Path(__file__).resolve().parents[2]

ACTIONS = [
    {"id": "spring-sale", "features": {"discount": 20, "category": "apparel"}},
    {"id": "new-arrivals", "features": {"discount": 0, "category": "apparel"}},
    {"id": "free-shipping", "features": {"discount": 5, "category": "logistics"}},
    {"id": "loyalty-bonus", "features": {"discount": 10, "category": "loyalty"}},
]


def wait_for(predicate: Callable, timeout: float, message: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (returned) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout}s: {message}", pytrace=False)
        time.sleep(interval)


# --- Apps, tenants and the REST loop -----------------------------------------------------


@pytest.fixture
def pg_url(postgres_url):
    """The session's PostgreSQL database, emptied after the test."""
    yield postgres_url
    _truncate_all(postgres_url)


@pytest.fixture
def rq_app(pg_url, redis_url, tmp_path):
    """An app on PostgreSQL with the RQ backend on a Redis database of its own."""
    app = make_test_app(pg_url, tmp_path, REDIS_URL=redis_url)
    yield app
    app_runtime(app).jobs.redis.close()
    app_runtime(app).engine.dispose()


@pytest.fixture(autouse=True)
def _unbind_worker_app():
    """Jobs in this process must not keep using a previous test's (disposed) app."""
    from worker import runtime

    yield
    runtime.bind(None)


def make_tenant_on(app) -> Tenant:
    from hpe_core.tenancy import workspaces

    workspace_id = f"ws-{uuid.uuid4().hex[:8]}"
    session = app_runtime(app).sessions()
    try:
        workspaces.create_workspace(session, workspace_id)
        _row, key = workspaces.create_key(session, workspace_id, kind="secret")
        session.commit()
    finally:
        session.close()
    return Tenant(workspace_id, key)


class Loop:
    """The learning loop driven through the REST API of one app, as one tenant."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.tenant = make_tenant_on(app)

    def create_config(self, name: str = "Spring", wait_seconds: int = 1) -> uuid.UUID:
        response = self.client.post(
            f"{BASE}/",
            json={
                "name": name,
                "settings": {"actions": ACTIONS, "reward": {"wait_seconds": wait_seconds}},
            },
            headers=self.tenant.headers,
        )
        assert response.status_code == 201, response.get_json()
        return uuid.UUID(response.get_json()["id"])

    def decide(self, config_id: uuid.UUID, user_id: str, context: dict | None = None):
        return self.client.post(
            f"{BASE}/{config_id}/decisions",
            json={"user_id": user_id, "channel": "email", "context": context or {}},
            headers=self.tenant.headers,
        )

    def decide_ok(self, config_id: uuid.UUID, user_id: str, context: dict | None = None) -> str:
        response = self.decide(config_id, user_id, context)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["decision_id"]

    def outcome(self, config_id: uuid.UUID, decision_id: str, event_type: str = "click"):
        return self.client.post(
            f"{BASE}/{config_id}/outcomes",
            json={"decision_id": decision_id, "type": event_type},
            headers=self.tenant.headers,
        )

    def decide_many(self, config_id: uuid.UUID, count: int, click_every: int = 3) -> list[str]:
        """``count`` decisions for distinct users, a click on every ``click_every``-th."""
        ids = []
        for n in range(count):
            context = {"segment": f"s{n % 4}", "device": "mobile" if n % 2 else "desktop"}
            decision_id = self.decide_ok(config_id, f"user-{n}", context)
            if n % click_every == 0:
                response = self.outcome(config_id, decision_id)
                assert response.status_code == 202, response.get_json()
            ids.append(decision_id)
        return ids


def insert_closed_decisions(
    app, config_id: uuid.UUID, count: int, seed: int = 0, closes_at: dt.datetime | None = None
) -> None:
    """Log ``count`` decisions whose reward windows have closed, as decide() writes them.

    With ``closes_at`` every window closes at that moment instead (a backlog that
    appears all at once, later).

    Written with PostgreSQL's COPY (the API would take minutes for such a backlog); the
    rows carry the same columns and shapes as :meth:`DecisionEngine.decide`'s INSERT.
    """
    rng = random.Random(seed)
    session = app_runtime(app).sessions()
    try:
        config = session.get(Config, config_id)
        workspace_id, eligible = config.workspace_id, [a["id"] for a in config.settings["actions"]]
    finally:
        session.close()
    columns = [
        "id", "workspace_id", "config_id", "user_id", "channel", "context", "eligible",
        "probabilities", "action_id", "probability", "variant", "policy", "model_version",
        "model_action_id", "source", "created_at", "window_closes_at",
    ]  # fmt: skip
    start = utcnow() - dt.timedelta(hours=2)
    eligible_json = json.dumps(eligible)
    connection = app_runtime(app).engine.raw_connection()
    try:
        cursor = connection.driver_connection.cursor()
        statement = f'COPY "{Decision.__tablename__}" ({", ".join(columns)}) FROM STDIN'
        with cursor.copy(statement) as copy:
            for n in range(count):
                probabilities = [0.7] + [0.3 / (len(eligible) - 1)] * (len(eligible) - 1)
                rng.shuffle(probabilities)
                index = rng.randrange(len(eligible))
                context = {
                    "segment": f"s{rng.randrange(8)}",
                    "device": rng.choice(["mobile", "desktop", "tablet"]),
                    "visits": rng.randrange(50),
                    "basket": round(rng.uniform(0, 300), 2),
                }
                created = start + dt.timedelta(milliseconds=n)
                copy.write_row(
                    (
                        uuid.uuid4(), workspace_id, config_id, f"bulk-{seed}-{n}", "email",
                        json.dumps(context), eligible_json, json.dumps(probabilities),
                        eligible[index], probabilities[index], "treatment", "model", 0,
                        eligible[probabilities.index(max(probabilities))], "live",
                        created, closes_at or created + dt.timedelta(seconds=1),
                    )
                )  # fmt: skip
        connection.commit()
    finally:
        connection.close()


@dataclasses.dataclass
class LearningState:
    decisions: int
    learned: int
    #: ``(version, examples, total_examples)`` oldest first
    versions: list[tuple[int, int, int]]

    @property
    def newest_total(self) -> int:
        return self.versions[-1][2] if self.versions else 0

    @property
    def done(self) -> bool:
        return self.decisions > 0 and self.learned == self.decisions


def learning_state(engine, config_id: uuid.UUID) -> LearningState:
    decisions = Decision.__table__
    versions = ModelVersion.__table__
    with engine.connect() as connection:
        total, learned = connection.execute(
            sa.select(sa.func.count(), sa.func.count(decisions.c.learned_at)).where(
                decisions.c.config_id == config_id
            )
        ).one()
        rows = connection.execute(
            sa.select(versions.c.version, versions.c.examples, versions.c.total_examples)
            .where(versions.c.config_id == config_id)
            .order_by(versions.c.version)
        ).all()
    return LearningState(total, learned, [tuple(row) for row in rows])


def wait_windows_closed(engine, timeout: float = 30) -> None:
    """Wait until every logged decision's reward window has closed."""
    with engine.connect() as connection:
        last = connection.scalar(sa.select(sa.func.max(Decision.__table__.c.window_closes_at)))
    if last is not None:
        if last.tzinfo is None:
            last = last.replace(tzinfo=dt.UTC)
        delay = (last - utcnow()).total_seconds() + 0.05
        assert delay < timeout, f"windows close in {delay}s"
        time.sleep(max(delay, 0))


def assert_learned_exactly_once(state: LearningState) -> None:
    """Every decision learned, each one once: the versions' examples add up to the count."""
    assert state.learned == state.decisions, state
    numbers = [version for version, _, _ in state.versions]
    assert numbers == list(range(1, len(numbers) + 1)), state  # strictly increasing, no gap
    assert sum(examples for _, examples, _ in state.versions) == state.decisions, state
    running = 0
    for _, examples, total in state.versions:
        running += examples
        assert total == running, state
    assert state.newest_total == state.decisions, state


# --- Subprocesses: hpe worker, redis-server ---------------------------------------------


def worker_env(database_url: str, redis_url: str, tmp_path: Path, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            # The worker runs the code under test, not whatever is installed.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            "HPE_DATABASE_URL": database_url,
            "HPE_REDIS_URL": redis_url,
            "HPE_SECRET_KEY": TEST_SECRET_KEY,
            "HPE_INSTANCE_PATH": str(tmp_path / "instance"),
            "HPE_LOAD_PLUGINS": json.dumps(IN_REPO_PLUGINS),
            "HPE_AUTO_MIGRATE": "false",
            "HPE_SWEEP_INTERVAL": "0.2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _hpe_command() -> list[str]:
    return [sys.executable, "-c", "from web.cli import cli; cli()"]


def start_worker(env: dict, tmp_path: Path, *args: str, name: str = "worker"):
    """Start ``hpe worker ARGS`` in its own process group, logging to a file."""
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed by stop_worker
    process = subprocess.Popen(
        [*_hpe_command(), "worker", *args],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: `--processes N` children stop with it
    )
    process.log_file = log
    process.log_path = tmp_path / f"{name}.log"
    return process


def stop_worker(process, timeout: float = 15) -> None:
    """Stop a worker started by :func:`start_worker` and all its children (by group id)."""
    try:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # children left behind, if any
        except ProcessLookupError:
            pass
        process.wait(timeout)
    finally:
        process.log_file.close()


def worker_log(process) -> str:
    process.log_file.flush()
    return process.log_path.read_text(errors="replace")[-4000:]


@contextmanager
def running_worker(env: dict, tmp_path: Path, *args: str, name: str = "worker"):
    process = start_worker(env, tmp_path, *args, name=name)
    try:
        yield process
    finally:
        stop_worker(process)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(port: int):
    """A private, throwaway redis-server on ``port`` (no persistence); waits until it answers."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server).", pytrace=False)
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    connection = redis.Redis(port=port, socket_connect_timeout=0.5)

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"redis-server on port {port} exited ({process.returncode})")
        try:
            return bool(connection.ping())
        except redis.exceptions.ConnectionError:
            return False

    try:
        wait_for(answers, 15, f"redis-server on port {port} to answer")
    except BaseException:
        stop_redis(process)
        raise
    finally:
        connection.close()
    return process


def stop_redis(process) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(10)


@pytest.fixture
def private_redis():
    """Start/stop private redis-servers; all of them are killed after the test."""
    started = []

    def start(port: int):
        process = start_redis(port)
        started.append(process)
        return process

    yield start
    for process in started:
        stop_redis(process)
