"""Decisions as the decision log grows: 0, 1M, 10M (50M) logged decisions in the table.

Issue 19, target 4: does a decision get slower once the log is big? The decision path
writes one row to the decision log, and reads it back in one place: the frequency cap
counts the user's recent decisions on the channel through the
``(config_id, user_id, created_at)`` index. The table's three other indexes (the uuid
primary key, ``(config_id, created_at)`` and the learner's partial index on unlearned
rows) are written on every insert.

One run, PostgreSQL + Redis, a fresh database. The configuration has 20 actions and a
frequency cap on email (at most 5 a day), so every email decision runs the cap lookup.
For each level of ``--levels``, rows are added to the log first (``INSERT ... SELECT
generate_series``, learned decisions of the configuration spread over the last 90 days,
2 million users, every column filled as the product fills it; then ``ANALYZE``: this
machine's PostgreSQL runs without autovacuum), then measured:

- single decisions: ``hpe serve`` (its default settings) and ``--clients`` closed-loop
  keep-alive clients for ``--seconds``, users drawn from the logged ones (their cap
  lookups find rows): decisions/s and latency percentiles;
- a batch: one ``POST /{id}/decisions/batch`` of ``--batch`` requests (COPY into the
  big table): decisions/s;
- the frequency-cap lookup alone (``EXPLAIN (ANALYZE, BUFFERS)`` for a logged user), the
  log's write cost without HPE (2,000 single-row autocommit INSERTs on one connection,
  then a COPY of 2,000 rows) and the table's and indexes' sizes.

Seeding 10M rows takes a long while and measures nothing: with ``--lock PATH`` the run
takes an exclusive ``flock`` on PATH (the one ``flock PATH <command>`` takes, so it
serializes with benchmarks run that way) around each level's measurements only, and
seeds without it.

Usage::

    python bench/decision_log_growth.py --levels 0,1000000,10000000 \
        [--lock /tmp/hpe-bench.lock] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import http.client
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import http_load  # noqa: E402
from bench.common import (  # noqa: E402
    API,
    Deployment,
    children,
    dump_json,
    loadavg,
    postgres_backends,
    print_header,
)
from bench.decision_latency import make_actions, make_bodies  # noqa: E402

TABLE = "041_hyper_personalization_engine_decisions"
USERS = 2_000_000
CHUNK = 500_000

# Learned decisions of one configuration, spread evenly over ``days`` days ending now.
# Row i: user (i * 7919 + salt) mod USERS, channel i mod 3, action (i / 3) mod 20; the
# feature line as decision_features writes it.
_SEED = f"""
INSERT INTO "{TABLE}"
  (id, workspace_id, config_id, user_id, channel, context, eligible, probabilities,
   action_id, probability, variant, policy, model_version, model_action_id, source,
   created_at, window_closes_at, learned_at, reward, engaged, given_reward, features)
SELECT gen_random_uuid(), %(ws)s, %(config)s,
  'user-' || mod(i::bigint * 7919 + %(salt)s, {USERS}),
  (ARRAY['email','web','ads'])[mod(i, 3) + 1],
  jsonb_build_object('segment', 's' || mod(i / 7, 5), 'device', 'mobile', 'hour', mod(i, 24)),
  %(eligible)s::jsonb, %(probabilities)s::jsonb,
  'offer-' || lpad(mod(i / 3, 20)::text, 3, '0'), 0.05,
  CASE WHEN mod(i, 10) = 0 THEN 'holdout' ELSE 'treatment' END,
  CASE WHEN mod(i, 10) = 0 THEN 'baseline' ELSE 'model' END,
  3, 'offer-' || lpad(mod(i / 11, 20)::text, 3, '0'), 'live',
  t.at, t.at + interval '1 day', t.at + interval '1 day', 0.0, false, NULL,
  'shared |c channel=' || (ARRAY['email','web','ads'])[mod(i, 3) + 1]
    || ' segment=s' || mod(i / 7, 5) || ' device=mobile hour:' || mod(i, 24)
FROM generate_series(0, %(count)s - 1) AS i,
LATERAL (SELECT %(start)s::timestamptz
                + make_interval(secs => i::float8 * %(seconds)s / %(count)s) AS at) AS t
"""

_CAP_LOOKUP = f"""
EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
SELECT count(*) FROM "{TABLE}"
WHERE config_id = %(config)s AND user_id = %(user)s AND created_at >= %(since)s
  AND channel = 'email'
"""


def seed(dep: Deployment, config_id: str, rows: int, salt: int) -> float:
    """Add ``rows`` learned decisions; returns the seconds it took (with ANALYZE)."""
    import psycopg

    eligible = json.dumps([f"offer-{i:03d}" for i in range(20)])
    probabilities = json.dumps([0.05] * 20)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    span = 90 * 86400
    t0 = time.perf_counter()
    with psycopg.connect(dep.database_url, autocommit=True) as conn:
        done = 0
        while done < rows:
            count = min(CHUNK, rows - done)
            # Each chunk covers the whole 90 days, interleaved with the others in time.
            conn.execute(
                _SEED,
                {
                    "ws": "bench",
                    "config": config_id,
                    "salt": salt + done,
                    "eligible": eligible,
                    "probabilities": probabilities,
                    "count": count,
                    "start": now - dt.timedelta(seconds=span) + dt.timedelta(seconds=done % 997),
                    "seconds": span,
                },
            )
            done += count
            print(f"    seeded {done:,}/{rows:,} ({time.perf_counter() - t0:.0f}s)", flush=True)
        conn.execute(f'ANALYZE "{TABLE}"')
    return time.perf_counter() - t0


def sizes(dep: Deployment) -> dict:
    import psycopg

    with psycopg.connect(dep.database_url) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c "
            "WHERE c.relname = %s OR c.oid IN (SELECT indexrelid FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname = %s)",
            (TABLE, TABLE),
        ).fetchall()
        count = conn.execute(f'SELECT count(*) FROM "{TABLE}"').fetchone()[0]
    return {"rows": count, "bytes": {name: size for name, size in rows}}


def cap_lookup(dep: Deployment, config_id: str, users: list[str]) -> dict:
    """The frequency cap's count for logged users, as the engine runs it (ms)."""
    import psycopg

    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    times, buffers, plans = [], [], set()
    with psycopg.connect(dep.database_url) as conn:
        for user in users:
            plan = conn.execute(
                _CAP_LOOKUP, {"config": config_id, "user": user, "since": since}
            ).fetchone()[0][0]
            times.append(plan["Execution Time"])
            node = plan["Plan"]
            buffers.append(node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0))
            while node.get("Plans"):
                node = node["Plans"][0]
            plans.add(f"{node['Node Type']} {node.get('Index Name', '')}".strip())
    times.sort()
    return {
        "median_ms": times[len(times) // 2],
        "max_ms": times[-1],
        "buffers_median": sorted(buffers)[len(buffers) // 2],
        "plans": sorted(plans),
    }


def writes(dep: Deployment, config_id: str, rows: int = 2000) -> dict:
    """The log's write cost alone, without HPE: ``rows`` single-row autocommit INSERTs of
    decision rows (the product's row shape, random uuid ids, users spread over the
    history's), then one COPY of as many rows in a transaction. The rows stay (a few
    thousand, against millions)."""
    import uuid

    import psycopg

    now = dt.datetime.now(dt.UTC)
    eligible = json.dumps([f"offer-{i:03d}" for i in range(20)])
    probabilities = json.dumps([0.05] * 20)

    def row(n: int) -> tuple:
        return (
            uuid.uuid4(),
            "bench",
            config_id,
            f"user-{(n * 7919) % USERS}",
            "email",
            json.dumps({"segment": "s1", "device": "mobile", "hour": n % 24}),
            eligible,
            probabilities,
            "offer-001",
            0.05,
            "treatment",
            "model",
            3,
            "offer-001",
            "live",
            now,
            now + dt.timedelta(days=1),
            "shared |c channel=email segment=s1 device=mobile",
        )

    columns = (
        "id, workspace_id, config_id, user_id, channel, context, eligible, probabilities, "
        "action_id, probability, variant, policy, model_version, model_action_id, source, "
        "created_at, window_closes_at, features"
    )
    insert = f'INSERT INTO "{TABLE}" ({columns}) VALUES ({", ".join(["%s"] * 18)})'
    with psycopg.connect(dep.database_url, autocommit=True) as conn:
        times = []
        for n in range(rows):
            t0 = time.perf_counter()
            conn.execute(insert, row(n))
            times.append(time.perf_counter() - t0)
        times.sort()
        t0 = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(f'COPY "{TABLE}" ({columns}) FROM STDIN') as copy:
                for n in range(rows):
                    copy.write_row(row(rows + n))
        copy_seconds = time.perf_counter() - t0
    return {
        "insert_p50_ms": 1e3 * times[len(times) // 2],
        "insert_p99_ms": 1e3 * times[int(len(times) * 0.99)],
        "insert_per_second": rows / sum(times),
        "copy_rows_per_second": rows / copy_seconds,
    }


@contextlib.contextmanager
def measuring(lock_path: str | None):
    """Hold an exclusive flock on ``lock_path`` (if any) while measuring."""
    if not lock_path:
        yield
        return
    with open(lock_path, "a") as handle:
        t0 = time.perf_counter()
        print(f"  waiting for the lock {lock_path}, load {loadavg()}", flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
        print(f"  lock taken after {time.perf_counter() - t0:.0f}s, load {loadavg()}", flush=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def batch(url: str, key: str, config_id: str, bodies: list[dict]) -> dict:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    payload = json.dumps({"requests": bodies})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    t0 = time.perf_counter()
    conn.request("POST", f"{API}/{config_id}/decisions/batch", payload, headers)
    response = conn.getresponse()
    data = response.read()
    wall = time.perf_counter() - t0
    conn.close()
    if response.status != 201:
        raise RuntimeError(f"{response.status}: {data[:300]!r}")
    return {"decisions": len(bodies), "seconds": wall, "per_second": len(bodies) / wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="0,1000000,10000000")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument(
        "--lock", help="flock this file around each level's measurements (not the seeding)"
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]

    # HPE limits each API key to 1,000 requests/s by default (RATE_LIMIT_PER_KEY): above it,
    # the load gets cheap 429s that http_load would count as answers. The limit stays on (its
    # Redis count is part of every decision's cost), set above what this machine can reach.
    os.environ.setdefault("HPE_RATE_LIMIT_PER_KEY", "1000000/second")
    os.environ.setdefault("HPE_RATE_LIMIT_PER_WORKSPACE", "1000000/second")
    info = print_header("decision latency as the decision log grows (PostgreSQL + Redis)")
    results = {"machine": info, "args": vars(args), "levels": []}
    # Users from the seeded history, so the frequency-cap lookup finds their decisions.
    touchpoints = make_bodies(60000, seed=31)
    for n, body in enumerate(touchpoints):
        body["user_id"] = f"user-{(n * 104729) % USERS}"
        body["channel"] = "email" if n % 2 == 0 else body["channel"]
    payloads = [json.dumps(b).encode() for b in touchpoints]
    with Deployment("growth") as dep:
        url = dep.serve()
        settings = {
            "actions": make_actions(20),
            "reward": {"wait_seconds": 86400},
            "guardrails": {"frequency_caps": [{"channel": "email", "max": 5, "per_hours": 24}]},
        }
        status, body = dep.call("POST", f"{API}/", {"name": "growth", "settings": settings})
        assert status == 201, (status, body)
        config_id = body["id"]
        dep.stop_server()
        print(f"\ndatabase {dep.database}, redis db {dep.redis_db}, logs {dep.log_dir}")
        seeded, used = 0, 0
        for level in levels:
            out = {"level": level}
            if level > seeded:
                print(f"\nseeding up to {level:,} logged decisions, load {loadavg()}")
                out["seed_seconds"] = seed(dep, config_id, level - seeded, salt=seeded)
                seeded = level
            with measuring(args.lock):
                out["sizes"] = sizes(dep)
                out["cap_lookup"] = cap_lookup(
                    dep, config_id, [f"user-{(n * 104729) % USERS}" for n in range(0, 2000, 40)]
                )
                url = dep.serve(workers=2, threads=4)  # hpe serve's defaults
                pids = {
                    "server": children(dep.server.pid),
                    "postgres": postgres_backends(dep.database),
                }
                path = f"{API}/{config_id}/decisions"
                headers = {
                    "Authorization": f"Bearer {dep.key}",
                    "Content-Type": "application/json",
                }
                window = payloads[used : used + 20000]
                http_load.run(
                    url, path, window[:2000], headers=headers, clients=args.clients, seconds=3
                )
                out["load_start"] = loadavg()
                out["single"] = http_load.run(
                    url,
                    path,
                    window,
                    headers=headers,
                    clients=args.clients,
                    seconds=args.seconds,
                    meter_pids=pids,
                )
                out["batch"] = batch(url, dep.key, config_id, touchpoints[used : used + args.batch])
                out["writes"] = writes(dep, config_id)
                out["load_end"] = loadavg()
                used += 20000
                dep.stop_server()
            results["levels"].append(out)
            total = sum(out["sizes"]["bytes"].values()) / 2**20
            print(
                f"  {out['sizes']['rows']:>11,} rows ({total:,.0f} MiB with indexes): single "
                f"{http_load.describe(out['single'])}\n"
                f"    batch of {args.batch:,}: {out['batch']['per_second']:,.0f}/s; cap lookup "
                f"median {out['cap_lookup']['median_ms']:.3f} ms (max "
                f"{out['cap_lookup']['max_ms']:.3f}, {out['cap_lookup']['buffers_median']} "
                f"buffers, {', '.join(out['cap_lookup']['plans'])}); load {out['load_end']}\n"
                f"    the log alone: single-row INSERT p50 {out['writes']['insert_p50_ms']:.2f} ms "
                f"p99 {out['writes']['insert_p99_ms']:.2f} ms "
                f"({out['writes']['insert_per_second']:,.0f}/s on one connection), COPY "
                f"{out['writes']['copy_rows_per_second']:,.0f} rows/s"
            )
            sys.stdout.flush()

    print("\n== summary")
    print(
        f"{'rows':>12} {'single/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'batch/s':>8} {'cap ms':>7} {'INSERT ms':>9} {'COPY/s':>7} {'MiB':>7}  load"
    )
    for out in results["levels"]:
        single = out["single"]
        lat = single["latency"]
        print(
            f"{out['sizes']['rows']:>12,} {single['per_second']:>9,.0f} {lat['p50'] * 1e3:>7.2f} "
            f"{lat['p95'] * 1e3:>7.2f} {lat['p99'] * 1e3:>7.2f} "
            f"{out['batch']['per_second']:>8,.0f} {out['cap_lookup']['median_ms']:>7.3f} "
            f"{out['writes']['insert_p50_ms']:>9.2f} "
            f"{out['writes']['copy_rows_per_second']:>7,.0f} "
            f"{sum(out['sizes']['bytes'].values()) / 2**20:>7,.0f}  {out['load_end']}"
        )
    print(f"load at end {loadavg()}")
    dump_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
