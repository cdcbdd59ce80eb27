"""A bounded soak (issue 14, SC-002): mixed traffic for N minutes through one worker kill,
one Redis restart and one PostgreSQL restart; then exact counts.

    .venv/bin/python -m bench.soak --minutes 10

Everything runs here, on loopback, and is stopped at the end: a private PostgreSQL
cluster (``initdb`` in a temporary folder, as the ``postgres`` user when run as root), a
private ``redis-server``, ``hpe serve`` (gunicorn, 2 workers) and one ``hpe worker``.
Client threads make decisions (each followed by a click with its own idempotency key,
every fifth also a conversion with a value), small imports with an ``Idempotency-Key``
and metrics reads, retrying 503s after their ``Retry-After`` as a client should. At 20%
of the run the worker is SIGKILLed (its scheduler left to die with it) and a new one
started; at 45% Redis is killed for 5 s; at 70% PostgreSQL is stopped with
``-m immediate`` for 5 s. Reported: requests and errors (any non-2xx) inside and outside
the outage windows (a window: from the fault until the first success of every traffic
kind after recovery), the recovery time after each restart, and after draining: decisions
stored vs answered 201 (lost or double), outcomes stored vs distinct keys accepted,
decisions learned exactly once. Nothing here is product code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.common import machine_info

REPO = Path(__file__).resolve().parents[1]
API = "/api/v1/041-hyper-personalization-engine"
SECRET_KEY = "soak-secret-" + "s" * 40


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else (shutil.which(name) or name)


class Cluster:
    def __init__(self, folder: Path):
        self.folder, self.port = folder, _free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        self._run(
            _pg_bin("initdb"),
            "-D",
            str(folder / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        if self.user:
            command = ("runuser", "-u", self.user, "--", *command)
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c max_connections=200"
        )
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.folder / "data"),
            "-o",
            options,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(
                _pg_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"
            )


class Redis:
    def __init__(self):
        self.port = _free_port()
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _call(method: str, url: str, body=None, key: str = "", content_type="application/json"):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        return 0, {}, str(error).encode()


class Soak:
    def __init__(self, base: str, key: str, config_id: str, clients: int):
        self.base, self.key, self.config_id = base, key, config_id
        self.log: list[tuple[float, str, int]] = []  # (time, kind, status) of every call
        self.decided: list[str] = []
        self.outcome_keys: set[str] = set()
        self.imported = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(n,)) for n in range(clients)]

    def _until_done(
        self, kind, method, path, body=None, content_type="application/json", extra=None
    ):
        while True:
            url = self.base + API + path
            if extra:
                request = urllib.request.Request(url, data=body, method=method)
                for name, value in {
                    "Authorization": f"Bearer {self.key}",
                    "Content-Type": content_type,
                    **extra,
                }.items():
                    request.add_header(name, value)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, headers, raw = response.status, response.headers, response.read()
                except urllib.error.HTTPError as error:
                    status, headers, raw = error.code, error.headers, error.read()
                except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                    status, headers, raw = 0, {}, str(error).encode()
            else:
                status, headers, raw = _call(method, url, body, self.key, content_type)
            with self.lock:
                self.log.append((time.monotonic(), kind, status))
            if 200 <= status < 300:
                return json.loads(raw)
            if self.stop.is_set() and kind != "outcome":
                return None
            time.sleep(float(headers.get("Retry-After", "1")) if headers else 1.0)

    def _client(self, n: int) -> None:
        rng = random.Random(n)
        i = 0
        while not self.stop.is_set():
            i += 1
            roll = rng.random()
            if roll < 0.85:
                answer = self._until_done(
                    "decision",
                    "POST",
                    f"/{self.config_id}/decisions",
                    {
                        "user_id": f"c{n}-u{i}",
                        "channel": "email",
                        "context": {"segment": f"s{i % 5}", "device": rng.choice(["m", "d"])},
                    },
                )
                if answer is None:
                    continue
                with self.lock:
                    self.decided.append(answer["decision_id"])
                events = [
                    {
                        "decision_id": answer["decision_id"],
                        "type": "click",
                        "idempotency_key": f"click-{answer['decision_id']}",
                    }
                ]
                if i % 5 == 0:
                    events.append(
                        {
                            "decision_id": answer["decision_id"],
                            "type": "conversion",
                            "value": 10.0 + i % 7,
                            "idempotency_key": f"order-{answer['decision_id']}",
                        }
                    )
                # Outcomes are always retried to the end: a click is never lost.
                done = self._until_done(
                    "outcome", "POST", f"/{self.config_id}/outcomes", {"outcomes": events}
                )
                if done is not None:
                    with self.lock:
                        self.outcome_keys.update(event["idempotency_key"] for event in events)
            elif roll < 0.95:
                self._until_done("metrics", "GET", f"/{self.config_id}/metrics")
            else:
                lines = b"".join(
                    json.dumps(
                        {
                            "user_id": f"imp-{n}-{i}-{k}",
                            "channel": "email",
                            "timestamp": "2026-10-01T09:00:00Z",
                            "context": {"k": k},
                            "action_id": "a",
                            "probability": 0.5,
                            "reward": k % 2,
                        }
                    ).encode()
                    + b"\n"
                    for k in range(20)
                )
                answer = self._until_done(
                    "import",
                    "POST",
                    f"/{self.config_id}/imports",
                    lines,
                    content_type="application/x-ndjson",
                    extra={"Idempotency-Key": f"soak-{n}-{i}"},
                )
                if answer is not None:
                    with self.lock:
                        self.imported += 20 if not answer.get("rejected") else 0


def _hpe(env, *args, log=None):
    return subprocess.Popen(
        [sys.executable, "-c", "from web.cli import cli; cli()", *args],
        env=env,
        cwd=env["HPE_INSTANCE_PATH"],
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    options = parser.parse_args()
    duration = options.minutes * 60
    folder = Path(tempfile.mkdtemp(prefix="hpe-soak-"))
    cluster, redis = Cluster(folder), Redis()
    processes = []
    try:
        cluster.start()
        redis.start()
        instance = folder / "instance"
        instance.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HPE_")}
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "HPE_INSTANCE_PATH": str(instance),
                "HPE_DATABASE_URL": cluster.url,
                "HPE_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
                "HPE_SECRET_KEY": SECRET_KEY,
                "HPE_LOAD_PLUGINS": '["email","web","ads"]',
                "HPE_AUTO_MIGRATE": "true",
            }
        )
        subprocess.run(
            [sys.executable, "-c", "from web.cli import cli; cli()", "db", "upgrade"],
            env=env,
            cwd=instance,
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [sys.executable, "-c", "from web.cli import cli; cli()", "workspace", "create", "soak"],
            env=env,
            cwd=instance,
            check=True,
            capture_output=True,
            text=True,
        )
        key = out.stdout.strip().splitlines()[-1]
        port = _free_port()
        server_log = open(folder / "serve.log", "wb")  # noqa: SIM115
        server = _hpe(env, "serve", "--port", str(port), "--workers", "2", log=server_log)
        processes.append(server)
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            if _call("GET", base + "/api/v1/health")[0] == 200:
                break
            time.sleep(0.5)
        worker_log = open(folder / "worker.log", "wb")  # noqa: SIM115
        worker = _hpe(env, "worker", log=worker_log)
        processes.append(worker)
        status, _headers, raw = _call(
            "POST",
            base + API + "/",
            {
                "name": "soak",
                "settings": {
                    "actions": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
                    "reward": {"wait_seconds": 5},
                },
            },
            key,
        )
        config_id = json.loads(raw)["id"]
        soak = Soak(base, key, config_id, options.clients)
        started = time.monotonic()
        for thread in soak.threads:
            thread.start()
        faults: list[tuple[str, float, float]] = []  # (name, fault at, dependency back at)

        def at(fraction: float) -> None:
            time.sleep(max(0.0, started + duration * fraction - time.monotonic()))

        at(0.20)
        fault = time.monotonic()
        children = subprocess.run(
            ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True
        ).stdout.split()
        os.kill(worker.pid, signal.SIGKILL)  # the worker only: its scheduler is left over
        worker.wait(10)
        worker = _hpe(env, "worker", log=worker_log)
        processes.append(worker)
        faults.append(("worker SIGKILL", fault, time.monotonic()))
        at(0.45)
        fault = time.monotonic()
        redis.kill()
        time.sleep(5)
        redis.start()
        faults.append(("Redis killed 5 s", fault, time.monotonic()))
        at(0.70)
        fault = time.monotonic()
        cluster.stop()
        time.sleep(5)
        cluster.start()
        faults.append(("PostgreSQL -m immediate 5 s", fault, time.monotonic()))
        at(1.0)
        soak.stop.set()
        for thread in soak.threads:
            thread.join(120)
        ended = time.monotonic()
        leftover = [pid for pid in children if Path(f"/proc/{pid}").exists()]
        # Drain: every decision learned (windows of 5 s), then the counts.
        import sqlalchemy as sa

        engine = sa.create_engine(cluster.url)
        table = "041_hyper_personalization_engine_"
        deadline = time.monotonic() + 300
        while True:
            with engine.connect() as connection:
                total, learned = connection.execute(
                    sa.text(
                        f'SELECT count(*), count(learned_at) FROM "{table}decisions" '
                        "WHERE config_id = :c AND source = 'live'"
                    ),
                    {"c": config_id},
                ).one()
            if learned == total or time.monotonic() > deadline:
                break
            time.sleep(1)
        with engine.connect() as connection:
            outcomes = connection.scalar(
                sa.text(
                    f'SELECT count(*) FROM "{table}outcomes" WHERE config_id = :c '
                    "AND source = 'api'"
                ),
                {"c": config_id},
            )
            imported = connection.scalar(
                sa.text(
                    f'SELECT count(*) FROM "{table}decisions" WHERE config_id = :c '
                    "AND source = 'import'"
                ),
                {"c": config_id},
            )
            versions = connection.execute(
                sa.text(
                    f'SELECT version, examples, total_examples FROM "{table}model_versions" '
                    "WHERE config_id = :c ORDER BY version"
                ),
                {"c": config_id},
            ).all()
            all_learned = connection.scalar(
                sa.text(f'SELECT count(learned_at) FROM "{table}decisions" WHERE config_id = :c'),
                {"c": config_id},
            )
        engine.dispose()
        report(
            soak,
            faults,
            started,
            ended,
            total,
            learned,
            outcomes,
            imported,
            versions,
            all_learned,
            leftover,
            options,
        )
        serve_text = (folder / "serve.log").read_text(errors="replace")
        print(
            f"server log: {serve_text.count('Traceback')} tracebacks, "
            f"{serve_text.count('database unavailable')} outage lines"
        )
    finally:
        for process in processes:
            _stop(process)
        redis.kill()
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def report(
    soak,
    faults,
    started,
    ended,
    total,
    learned,
    outcomes,
    imported,
    versions,
    all_learned,
    leftover,
    options,
) -> None:
    kinds = sorted({kind for _t, kind, _s in soak.log})
    windows = []
    for name, fault, back in faults:
        # The window ends at the first success of every kind after the dependency is back.
        ends = []
        for kind in kinds:
            first = next(
                (t for t, k, s in soak.log if k == kind and t >= back and 200 <= s < 300), None
            )
            if first is not None:
                ends.append(first)
        end = max(ends) if ends else back
        windows.append((name, fault, back, end))
    per_kind = ", ".join(f"{k}: {sum(1 for r in soak.log if r[1] == k)}" for k in kinds)
    inside = [row for row in soak.log if any(f <= row[0] <= e for _n, f, _b, e in windows)]
    outside = [row for row in soak.log if row not in inside]
    errors_out = [row for row in outside if not 200 <= row[2] < 300]
    errors_in = [row for row in inside if not 200 <= row[2] < 300]
    print(json.dumps(machine_info()))
    print(
        f"soak: {options.minutes:g} min, {options.clients} clients, "
        f"{len(soak.log)} requests ({per_kind})"
    )
    print(
        f"outside outage windows: {len(outside)} requests, {len(errors_out)} errors "
        f"({100 * len(errors_out) / max(1, len(outside)):.3f}%) "
        f"{sorted({r[2] for r in errors_out})}"
    )
    print(
        f"inside outage windows: {len(inside)} requests, {len(errors_in)} errors "
        f"(statuses {sorted({r[2] for r in errors_in})})"
    )
    for name, fault, back, end in windows:
        print(
            f"  {name}: at +{fault - started:.1f} s, back at +{back - started:.1f} s, "
            f"every kind succeeding again {end - back:.2f} s after it was back "
            f"(window {end - fault:.1f} s)"
        )
    print(
        f"decisions answered 201: {len(soak.decided)}; stored (live): {total}; "
        f"lost: {max(0, len(soak.decided) - total)}; extra: {max(0, total - len(soak.decided))}"
    )
    print(
        f"outcome keys accepted: {len(soak.outcome_keys)}; outcome rows stored: {outcomes}; "
        f"double-counted: {outcomes - len(soak.outcome_keys)}"
    )
    print(f"imported decisions: {imported} (accepted by first answers: {soak.imported})")
    # The last 30 versions are kept: the newest one's running total counts every example.
    examples = versions[-1][2] if versions else 0
    numbered = [row[0] for row in versions] == list(range(versions[0][0], versions[-1][0] + 1))
    once = examples == all_learned and numbered
    print(
        f"learned: {learned}/{total} live, {all_learned} in all; model versions "
        f"{versions[-1][0] if versions else 0}, examples in all {examples} (learned exactly once: "
        f"{once})"
    )
    print(
        f"scheduler children left after the worker kill: {leftover or 'none'}; "
        f"run ended {ended - started:.0f} s after it began"
    )


if __name__ == "__main__":
    main()
