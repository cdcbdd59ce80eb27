"""Shared benchmark plumbing: machine info, percentiles, and a disposable HPE deployment.

:class:`Deployment` gives a benchmark a fresh PostgreSQL database and an empty Redis
database number, migrates the schema, creates a workspace and key, and starts
``hpe serve`` (gunicorn) and ``hpe worker`` processes on them. Leaving the ``with`` block
stops every process it started (by process group id) and drops the database and the
Redis db, whatever happened.

Nothing here is product code: it drives the ``hpe`` command line like an operator.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_HOST = os.environ.get("BENCH_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6379"))
#: Redis db numbers a benchmark may claim (the first empty one is taken).
REDIS_DBS = range(15, 7, -1)
_CLAIM_KEY = "hpe-bench:claimed-by"
API = "/api/v1/041-hyper-personalization-engine"


# --- machine and noise -------------------------------------------------------------------


def _run(cmd: Sequence[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:  # pragma: no cover - best effort
        return f"({shlex.join(cmd)} failed: {exc})"


def loadavg() -> str:
    """``uptime``'s load averages (1, 5, 15 min) right now."""
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def calibrate() -> float:
    """CPU ms of a fixed pure-Python loop (best of 5): how fast this CPU is right now.

    ``sum(i * i for i in range(10**6))``: compare it between runs (and machines) before
    comparing their absolute numbers; a higher figure means a slower or contended CPU.
    """
    best = math.inf
    for _ in range(5):
        t0 = time.process_time()
        sum(i * i for i in range(10**6))
        best = min(best, time.process_time() - t0)
    return round(best * 1000, 1)


def machine_info() -> dict:
    """What the numbers were measured on: CPU, memory, versions, date, git revision."""
    from importlib.metadata import version

    lscpu = {}
    for line in _run(["lscpu"]).splitlines():
        key, _, value = line.partition(":")
        lscpu[key.strip()] = value.strip()
    mem = _run(["free", "-h"]).splitlines()
    git = _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    if dirty:
        import hashlib

        # The product code only: editing a benchmark must not change the tree's identity.
        diff = subprocess.run(
            ["git", "-C", str(REPO), "diff", "HEAD", "--", ".", ":(exclude)bench"],
            capture_output=True,
        )
        dirty = f"product diff sha256 {hashlib.sha256(diff.stdout).hexdigest()[:12]}"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpu": lscpu.get("Model name", platform.processor()),
        "nproc": _run(["nproc"]),
        "threads_per_core": lscpu.get("Thread(s) per core"),
        "memory": mem[1].split()[1] if len(mem) > 1 else "?",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "vowpalwabbit": version("vowpalwabbit"),
        "gunicorn": version("gunicorn"),
        "sqlalchemy": version("SQLAlchemy"),
        "psycopg": version("psycopg"),
        "postgresql": _pg_version(),
        "git": git + (f" + uncommitted changes ({dirty})" if dirty else ""),
        "python_loop_cpu_ms": calibrate(),
        "uptime": _run(["uptime"]),
    }


def _pg_version() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL + "/postgres", autocommit=True) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - informational
        return f"? ({exc})"


def print_header(title: str, argv: Sequence[str] | None = None) -> dict:
    """Print the machine block every benchmark output starts with; returns it."""
    info = machine_info()
    print(f"== {title}")
    print("command: " + shlex.join(["python", *(argv if argv is not None else sys.argv)]))
    for key, value in info.items():
        print(f"  {key:16} {value}")
    print(f"  {'load at start':16} {loadavg()}")
    sys.stdout.flush()
    return info


# --- featurization, exactly as the product does it -------------------------------------


def shared_line(channel: str, context: dict) -> str:
    """The ``shared`` VW line HPE builds for a decision (context + channel)."""
    from hpe_core.decide import features

    if hasattr(features, "decision_features"):
        return features.decision_features(channel, context)
    return features.context_features(context)  # before the channel became a feature


# --- statistics --------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> dict:
    """count, mean, p50, p90, p99, p99.9 and max of a list of latencies."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": sum(values) / len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "p99.9": percentile(values, 99.9),
        "max": max(values),
    }


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


# --- processes and CPU accounting --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def children(pid: int) -> list[int]:
    """Direct children of a process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def postgres_backends(database: str) -> list[int]:
    """PostgreSQL backend processes connected to ``database`` (by their process title)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                title = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found.append(int(entry))
    return found


class CpuMeter:
    """CPU seconds used by a set of processes between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids_by_role: dict[str, Iterable[int]]):
        self.pids = {role: list(pids) for role, pids in pids_by_role.items()}
        self._start: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}
        self.per_pid: dict[str, dict[int, float]] = {}

    def start(self) -> CpuMeter:
        self._start = {r: {p: cpu_seconds(p) for p in ps} for r, ps in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        for role, pids in self.pids.items():
            self.per_pid[role] = {p: cpu_seconds(p) - self._start[role][p] for p in pids}
            self.used[role] = sum(self.per_pid[role].values())
        return self.used


# --- a disposable deployment -------------------------------------------------------------


class Deployment:
    """A fresh database + Redis db, migrated, with a workspace; servers and workers on demand.

    :param tag: goes into the database name (``hpe_bench_<tag>_<random>``)
    :param need_redis: claim an empty Redis db number (PostgreSQL + Redis mode)
    """

    def __init__(self, tag: str, *, need_redis: bool = True, log_dir: str | None = None):
        self.database = f"hpe_bench_{tag}_{uuid.uuid4().hex[:8]}"
        self.database_url = f"{PG_ADMIN_URL}/{self.database}"
        self.need_redis = need_redis
        self.redis_db: int | None = None
        self.instance = tempfile.mkdtemp(prefix="hpe-bench-instance-")
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="hpe-bench-logs-"))
        self.key: str | None = None
        self.secret_key = uuid.uuid4().hex + uuid.uuid4().hex
        self.url: str | None = None
        self.server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._processes: list[subprocess.Popen] = []
        self._logs: list = []

    # environment ------------------------------------------------------------------------

    @property
    def redis_url(self) -> str | None:
        if self.redis_db is None:
            return None
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["HPE_DATABASE_URL"] = self.database_url
        env["HPE_INSTANCE_PATH"] = self.instance
        env.pop("HPE_REDIS_URL", None)
        if self.redis_url:
            env["HPE_REDIS_URL"] = self.redis_url
        # Only the built-in connectors: a half-installed third-party plugin elsewhere in the
        # environment must not break (or slow) the benchmark.
        env.setdefault("HPE_LOAD_PLUGINS", '["email", "web", "ads"]')
        # PostgreSQL and Redis deployments refuse to start without a secret key; every
        # process of this deployment signs with the same one.
        env.setdefault("HPE_SECRET_KEY", self.secret_key)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def apply_env(self) -> None:
        """Point this process's ``create_app()`` at the deployment (in-process benchmarks)."""
        os.environ.update({k: v for k, v in self.env().items() if k.startswith("HPE_")})
        if not self.redis_url:
            os.environ.pop("HPE_REDIS_URL", None)

    def hpe(self, *args: str, timeout: float = 120) -> str:
        """Run an ``hpe`` command against the deployment; returns its stdout."""
        result = subprocess.run(
            [_hpe_executable(), *args],
            env=self.env(),
            cwd=self.instance,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"hpe {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    # lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Deployment:
        try:
            self._create_database()
            if self.need_redis:
                self._claim_redis()
            self.hpe("db", "upgrade")
            self.key = self.hpe("workspace", "create", "bench").strip().splitlines()[-1]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        for process in reversed(self._processes):
            _stop_group(process)
        self._processes.clear()
        for handle in self._logs:
            handle.close()
        self._logs.clear()
        self._release_redis()
        self._drop_database()
        shutil.rmtree(self.instance, ignore_errors=True)

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def _drop_database(self) -> None:
        import psycopg

        try:
            with psycopg.connect(PG_ADMIN_URL + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001 - report, keep cleaning
            print(f"warning: could not drop {self.database}: {exc}", file=sys.stderr)

    def _claim_redis(self) -> None:
        from redis import Redis

        token = f"{self.database}:{os.getpid()}"
        for number in REDIS_DBS:
            redis = Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
            try:
                if redis.dbsize() == 0 and redis.set(_CLAIM_KEY, token, nx=True):
                    if redis.dbsize() == 1:  # nobody else wrote in between
                        self.redis_db = number
                        return
                    redis.delete(_CLAIM_KEY)
            finally:
                redis.close()
        raise RuntimeError(f"No empty Redis db among {list(REDIS_DBS)}.")

    def _release_redis(self) -> None:
        if self.redis_db is None:
            return
        from redis import Redis

        redis = Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.redis_db)
        try:
            redis.flushdb()
        finally:
            redis.close()
        self.redis_db = None

    # processes --------------------------------------------------------------------------

    def _spawn(self, name: str, args: Sequence[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        process = subprocess.Popen(
            [_hpe_executable(), *args],
            env=self.env(),
            cwd=self.instance,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a unit
        )
        self._processes.append(process)
        return process

    def serve(self, *, workers: int = 2, threads: int = 2, timeout: float = 60) -> str:
        """Start ``hpe serve`` on a free port; returns its base URL once it answers."""
        port = free_port()
        self.server = self._spawn(
            f"serve-w{workers}-t{threads}",
            [
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ],
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"hpe serve exited with {self.server.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/api/v1/openapi.json")
                if connection.getresponse().status == 200:
                    connection.close()
                    # Every gunicorn worker must have booted, not just the first.
                    if len(children(self.server.pid)) >= workers:
                        return self.url
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("hpe serve did not answer in time")

    def stop_server(self) -> None:
        if self.server is not None:
            _stop_group(self.server)
            self._processes.remove(self.server)
            self.server = None
            self.url = None

    def server_workers(self) -> list[int]:
        """The gunicorn worker pids (children of the master)."""
        return children(self.server.pid) if self.server else []

    def start_workers(self, processes: int = 1, *, burst: bool = False) -> subprocess.Popen:
        args = ["worker", "--processes", str(processes)]
        if burst:
            args.append("--burst")
        process = self._spawn(f"worker-{len(self.workers)}", args)
        self.workers.append(process)
        return process

    def client(self):
        from web import simulate as sim

        return sim.Client(self.url, self.key)

    def call(self, method: str, path: str, body: object | None = None):
        return self.client().call(method, path, body)


def _hpe_executable() -> str:
    candidate = Path(sys.executable).with_name("hpe")
    return str(candidate) if candidate.exists() else "hpe"


def _stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    if process.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # stray children of a finished leader
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    # Children (gunicorn workers, spawn children) may outlive the leader briefly.
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def dump_json(path: str | None, data: dict) -> None:
    """Write the machine-readable result next to the printed one (optional)."""
    if path:
        with open(path, "w") as handle:
            json.dump(data, handle, indent=2, default=str)
            handle.write("\n")
