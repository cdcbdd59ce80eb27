"""PostgreSQL stopped with ``-m immediate`` and restarted under traffic (issue 14, defect 4).

A private PostgreSQL cluster (``initdb`` in a temporary folder, run as the ``postgres``
user when the tests run as root, as PostgreSQL requires) serves a real ``hpe serve``
(gunicorn, two workers) while a client sends decisions and outcomes. The cluster is
killed (``pg_ctl stop -m immediate``: no shutdown checkpoint, connections cut) and started
again. Every answer is JSON: 201/202, or 503 with Retry-After during the outage (never a
500, never gunicorn's HTML); each gunicorn worker logs the outage once, without a
traceback; the client retries each 503 after Retry-After, and in the end the database
holds exactly the decisions answered 201 and one outcome per decision.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from hpe_core.store import db as hpe_db
from hpe_core.store.models import Decision, Outcome
from hpe_core.tenancy import workspaces
from tests.conftest import BASE, IN_REPO_PLUGINS
from tests.servers import free_port, hpe_serving

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECRET_KEY = "fault-test-secret-" + "k" * 40


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    binary = shutil.which(name)
    if binary is None:
        pytest.fail(f"{name} not found: install postgresql", pytrace=False)
    return binary


class PrivateCluster:
    """A PostgreSQL cluster of its own in ``folder``, on ``port`` of 127.0.0.1."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.data = folder / "data"
        self.user = "postgres" if os.geteuid() == 0 else None
        folder.mkdir(parents=True, exist_ok=True)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *command: str) -> None:
        if self.user:
            command = ("runuser", "-u", self.user, "--", *command)
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.folder / "server.log"), "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")


@pytest.fixture
def cluster():
    # Not under pytest's tmp_path: its folders are private to root, and the cluster runs as
    # the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="hpe-pg-"))
    try:
        made = PrivateCluster(folder, free_port())
        made.start()
        try:
            yield made
        finally:
            made.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _call(method: str, url: str, body: dict | None, key: str):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class Traffic:
    """A client that makes decisions, each followed by a click with its own idempotency
    key, retrying every 503 after its Retry-After until the answer is a success."""

    def __init__(self, base: str, key: str, config_id: str):
        self.base, self.key, self.config_id = base, key, config_id
        self.decided: list[str] = []
        self.statuses: dict[int, int] = {}
        self.bad: list[tuple] = []
        self.retries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)
        assert not self._thread.is_alive()

    def _until_done(self, method: str, path: str, body: dict) -> dict:
        deadline = time.monotonic() + 90
        while True:
            status, headers, raw = _call(method, self.base + BASE + path, body, self.key)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = None
            if answer is None or headers.get("Content-Type") != "application/json":
                self.bad.append((status, raw[:200]))
            if status in (200, 201, 202):
                return answer
            if status != 503 or "Retry-After" not in headers:
                self.bad.append((status, raw[:200]))
            assert time.monotonic() < deadline, "no success in 90 s"
            self.retries += 1
            time.sleep(float(headers.get("Retry-After", "1")))

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            decision = self._until_done(
                "POST", f"/{self.config_id}/decisions",
                {"user_id": f"user-{n}", "channel": "email", "context": {"n": n % 7}},
            )  # fmt: skip
            self.decided.append(decision["decision_id"])
            self._until_done(
                "POST", f"/{self.config_id}/outcomes",
                {"decision_id": decision["decision_id"], "type": "click",
                 "idempotency_key": f"click-{n}"},
            )  # fmt: skip
            n += 1


def test_postgresql_killed_and_restarted_under_traffic(cluster, tmp_path):
    """-m immediate, 3 s down, restarted: JSON 503s with Retry-After, logged once per
    worker, then every decision and its one outcome stored exactly."""
    engine = hpe_db.make_engine(cluster.url, pool_size=1, max_overflow=0)
    hpe_db.upgrade(engine)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
    sessions = hpe_db.make_session_factory(engine)
    with sessions() as session:
        workspaces.create_workspace(session, "acme")
        _row, key = workspaces.create_key(session, "acme")
        session.commit()
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith("HPE_")}
    env.update(
        {
            "HPE_INSTANCE_PATH": str(tmp_path / "instance"),
            "HPE_DATABASE_URL": cluster.url,
            "HPE_LOAD_PLUGINS": json.dumps(IN_REPO_PLUGINS),
            "HPE_SECRET_KEY": SECRET_KEY,
            "HPE_INLINE_SWEEPER": "false",
            "HPE_RATE_LIMIT_PER_KEY": "",
            "HPE_RATE_LIMIT_PER_WORKSPACE": "",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
    )
    log = tmp_path / "server.log"
    with hpe_serving(workdir, env, log, workers=2) as base:
        status, _headers, raw = _call(
            "POST", f"{base}{BASE}/",
            {"name": "outage", "settings": {"actions": [{"id": "a"}, {"id": "b"}]}}, key,
        )  # fmt: skip
        assert status == 201, raw
        config_id = json.loads(raw)["id"]
        traffic = Traffic(base, key, config_id).start()
        time.sleep(3)
        before = len(traffic.decided)
        cluster.stop("immediate")
        time.sleep(3)
        status, headers, raw = _call("GET", f"{base}/api/v1/health", None, key)
        assert status == 503 and json.loads(raw)["status"] == "down"
        cluster.start()
        back = time.monotonic()
        while len(traffic.decided) < before + 20:
            assert time.monotonic() - back < 60, "traffic did not resume"
            time.sleep(0.2)
        traffic.stop()
    server_log = log.read_text(errors="replace")

    assert before > 0
    assert traffic.bad == [], traffic.bad[:5]
    assert set(traffic.statuses) <= {201, 202, 503}, traffic.statuses
    assert traffic.statuses.get(503, 0) >= 1, traffic.statuses
    assert "Traceback" not in server_log, server_log[-3000:]
    assert 1 <= server_log.count("database unavailable") <= 2, server_log[-3000:]
    with engine.connect() as connection:
        decisions = connection.scalar(
            sa.select(sa.func.count()).where(Decision.__table__.c.config_id == uuid.UUID(config_id))
        )
        outcomes = connection.scalar(
            sa.select(sa.func.count()).where(Outcome.__table__.c.config_id == uuid.UUID(config_id))
        )
    engine.dispose()
    assert decisions == len(traffic.decided)  # each 201 stored once, nothing else
    assert outcomes == len(traffic.decided)  # one click each, retries not counted twice
