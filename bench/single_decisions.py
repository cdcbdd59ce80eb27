"""Single decisions over HTTP beside the naive endpoint, in the same run, same server settings.

Issue 19, target 2: HPE's ``POST /{id}/decisions`` (the whole pipeline, the decision
durably logged before the answer) against :mod:`bench.naive_endpoint` (parse the JSON,
one autocommit INSERT, answer): throughput >= 1.5x the naive endpoint's requests/s and
p99 <= 1.0x its p99 (first bar: >= 1.0x and <= 1.5x).

For each server (gunicorn gthread and Granian, both with ``hpe serve``'s settings:
``--workers`` processes of ``--threads`` threads) and each of ``--rounds`` rounds, the
naive endpoint and HPE are started in turn (the order alternates between rounds), warmed
up, then loaded by ``--clients`` closed-loop keep-alive client processes for
``--seconds`` (throughput and its latency percentiles), then by ``--latency-clients``
(latency at lower load). Both write to the same PostgreSQL database. Each round's ratio
compares two measurements taken a few seconds apart; the summary gives the median of
the rounds' ratios and every round's figures, so the noise shows.

Usage::

    python bench/single_decisions.py --servers gunicorn,granian --rounds 3 --seconds 15 \
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import http_load, naive_endpoint  # noqa: E402
from bench.common import (  # noqa: E402
    API,
    REPO,
    Deployment,
    _stop_group,
    children,
    dump_json,
    free_port,
    loadavg,
    postgres_backends,
    print_header,
)
from bench.decision_latency import make_actions, make_bodies  # noqa: E402


def _wait_until_answering(url: str, path: str, payload: bytes, headers, proc, workers: int):
    import http.client
    import urllib.parse

    parsed = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
            conn.request("POST", path, payload, headers)
            status = conn.getresponse().status
            conn.close()
            if status in (200, 201) and len(children(proc.pid)) >= workers:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not answer in time")


def _start(dep: Deployment, which: str, server: str, args) -> tuple[subprocess.Popen, str]:
    """Start the naive endpoint or ``hpe serve`` under ``server``; returns (process, url)."""
    port = free_port()
    env = dep.env()
    env["BENCH_NAIVE_DB"] = dep.database_url
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if which == "naive":
        command = naive_endpoint.serve_command(
            server,
            host="127.0.0.1",
            port=port,
            workers=args.workers,
            threads=args.threads,
            python=sys.executable,
        )
        cwd = str(REPO)
    else:
        command = [
            str(Path(sys.executable).with_name("hpe")),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--server",
            server,
        ]
        cwd = dep.instance
    log = open(dep.log_dir / f"{which}-{server}-{port}.log", "w")  # noqa: SIM115
    dep._logs.append(log)
    proc = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    dep._processes.append(proc)
    return proc, f"http://127.0.0.1:{port}"


def _stop(dep: Deployment, proc: subprocess.Popen) -> None:
    _stop_group(proc)
    dep._processes.remove(proc)


def _measure(dep, which, server, args, payloads, path, headers) -> dict:
    proc, url = _start(dep, which, server, args)
    try:
        _wait_until_answering(url, path, payloads[0], headers, proc, args.workers)
        workers = children(proc.pid)
        pids = {"server": workers, "postgres": postgres_backends(dep.database)}
        # Warm-up: every worker and thread (config snapshot, model, statement caches).
        http_load.run(url, path, payloads, headers=headers, clients=args.clients, seconds=3)
        out = {"load_start": loadavg()}
        out["throughput"] = http_load.run(
            url,
            path,
            payloads,
            headers=headers,
            clients=args.clients,
            seconds=args.seconds,
            meter_pids=pids,
        )
        out["latency"] = http_load.run(
            url,
            path,
            payloads,
            headers=headers,
            clients=args.latency_clients,
            seconds=args.seconds,
            meter_pids=pids,
        )
        out["load_end"] = loadavg()
        return out
    finally:
        _stop(dep, proc)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="gunicorn,granian")
    parser.add_argument("--workers", type=int, default=2, help="hpe serve's default: 2")
    parser.add_argument("--threads", type=int, default=4, help="hpe serve's default: 4")
    parser.add_argument("--clients", type=int, default=4, help="clients in the throughput phase")
    parser.add_argument("--latency-clients", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0, help="per phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--actions", type=int, default=20)
    parser.add_argument("--json", help="write every figure here too")
    args = parser.parse_args(argv)
    servers = args.servers.split(",")

    # HPE limits each API key to 1,000 requests/s by default (RATE_LIMIT_PER_KEY): above it,
    # the load gets cheap 429s that http_load would count as answers. The limit stays on (its
    # Redis count is part of every decision's cost), set above what this machine can reach.
    os.environ.setdefault("HPE_RATE_LIMIT_PER_KEY", "1000000/second")
    os.environ.setdefault("HPE_RATE_LIMIT_PER_WORKSPACE", "1000000/second")
    info = print_header("single decisions vs the naive endpoint (PostgreSQL + Redis)")
    results = {"machine": info, "args": vars(args), "rounds": []}
    bodies = make_bodies(20000, seed=13)
    payloads = [json.dumps(b).encode() for b in bodies]
    with Deployment("single") as dep:
        import psycopg

        with psycopg.connect(dep.database_url, autocommit=True) as conn:
            conn.execute(naive_endpoint.CREATE_TABLE)
        # The configuration, made through the API of a first HPE server.
        proc, dep.url = _start(dep, "hpe", servers[0], args)
        try:
            settings = {"actions": make_actions(args.actions), "reward": {"wait_seconds": 86400}}
            deadline = time.monotonic() + 90
            while True:
                try:
                    status, body = dep.call("POST", f"{API}/", {"name": "b", "settings": settings})
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            assert status == 201, (status, body)
            config_id = body["id"]
        finally:
            _stop(dep, proc)
            dep.url = None
        print(f"\ndatabase {dep.database}, redis db {dep.redis_db}, logs {dep.log_dir}")
        targets = {
            "naive": (f"/naive/{config_id}/decisions", {"Content-Type": "application/json"}),
            "hpe": (
                f"{API}/{config_id}/decisions",
                {"Content-Type": "application/json", "Authorization": f"Bearer {dep.key}"},
            ),
        }
        for number in range(args.rounds):
            order = ("naive", "hpe") if number % 2 == 0 else ("hpe", "naive")
            for server in servers:
                round_ = {"round": number + 1, "server": server}
                for which in order:
                    path, headers = targets[which]
                    out = _measure(dep, which, server, args, payloads, path, headers)
                    round_[which] = out
                    for phase in ("throughput", "latency"):
                        print(
                            f"round {number + 1} {server:8} {which:5} {phase:10} "
                            f"{http_load.describe(out[phase])}  load {out['load_end']}"
                        )
                    sys.stdout.flush()
                results["rounds"].append(round_)
        results["logged"] = _count(dep, config_id)

    print("\n== summary: HPE ÷ naive, each round's pair, then the median of the rounds")
    summary = {}
    for server in servers:
        rounds = [r for r in results["rounds"] if r["server"] == server]
        rows = []
        for r in rounds:
            hpe_t, naive_t = r["hpe"]["throughput"], r["naive"]["throughput"]
            hpe_l, naive_l = r["hpe"]["latency"], r["naive"]["latency"]
            rows.append(
                {
                    "throughput_ratio": hpe_t["per_second"] / naive_t["per_second"],
                    "p99_ratio_throughput_phase": hpe_t["latency"]["p99"]
                    / naive_t["latency"]["p99"],
                    "p99_ratio_latency_phase": hpe_l["latency"]["p99"] / naive_l["latency"]["p99"],
                    "hpe_per_second": hpe_t["per_second"],
                    "naive_per_second": naive_t["per_second"],
                    "hpe_p99_ms": 1e3 * hpe_t["latency"]["p99"],
                    "naive_p99_ms": 1e3 * naive_t["latency"]["p99"],
                    "hpe_latency_p99_ms": 1e3 * hpe_l["latency"]["p99"],
                    "naive_latency_p99_ms": 1e3 * naive_l["latency"]["p99"],
                }
            )
        for i, row in enumerate(rows, start=1):
            print(
                f"  {server:8} round {i}: HPE {row['hpe_per_second']:6.0f}/s vs naive "
                f"{row['naive_per_second']:6.0f}/s = {row['throughput_ratio']:.2f}x; p99 "
                f"{row['hpe_p99_ms']:.2f} vs {row['naive_p99_ms']:.2f} ms = "
                f"{row['p99_ratio_throughput_phase']:.2f}x ({args.clients} clients), "
                f"{row['hpe_latency_p99_ms']:.2f} vs {row['naive_latency_p99_ms']:.2f} ms = "
                f"{row['p99_ratio_latency_phase']:.2f}x ({args.latency_clients} clients)"
            )
        median = {
            key: statistics.median(row[key] for row in rows)
            for key in ("throughput_ratio", "p99_ratio_throughput_phase", "p99_ratio_latency_phase")
        }
        summary[server] = {"rounds": rows, "median": median}
        print(
            f"  {server:8} median: throughput {median['throughput_ratio']:.2f}x (target >= 1.5, "
            f"first bar 1.0), p99 {median['p99_ratio_throughput_phase']:.2f}x at "
            f"{args.clients} clients and {median['p99_ratio_latency_phase']:.2f}x at "
            f"{args.latency_clients} (target <= 1.0, first bar 1.5)"
        )
    for which in ("hpe", "naive"):
        by_server = {
            s: statistics.median(
                r[which]["throughput"]["per_second"] for r in results["rounds"] if r["server"] == s
            )
            for s in servers
        }
        rounded = {k: round(v) for k, v in by_server.items()}
        print(f"  {which}: median requests/s by server {rounded}")
    results["summary"] = summary
    print(f"load at end {loadavg()}")
    dump_json(args.json, results)
    return 0


def _count(dep: Deployment, config_id: str) -> int:
    import psycopg

    with psycopg.connect(dep.database_url) as conn:
        return conn.execute(
            'SELECT count(*) FROM "041_hyper_personalization_engine_decisions" '
            "WHERE config_id = %s",
            (config_id,),
        ).fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
