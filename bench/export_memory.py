"""Exports stream with flat memory (issue 16): the peak memory of ``hpe export`` and of
``GET /{id}/decisions/export`` is the same for 10,000, 100,000 and 1,000,000 decisions.

One run, on a fresh PostgreSQL database created for it and dropped at the end:

1. seeds one configuration with ``--days`` days × ``--per-day`` decisions (the decision
   log and outcomes exactly as ``bench/metrics_read.py`` seeds them: 10 eligible actions
   with their propensities, context, a click for ~6% and a conversion for a fifth of
   those), then ``ANALYZE``;
2. for ranges of 1 day, 10 days and all days (``--per-day`` × 1, 10 and ``--days``
   decisions), runs in a fresh process each: ``hpe export decisions`` (NDJSON, then CSV)
   to a file, and the API's ``GET /{id}/decisions/export`` through the real Flask app
   (in-process test client, the body read chunk by chunk and counted, never kept);
   each process reports its own peak resident memory (``ru_maxrss``), its wall time and
   the rows and bytes written.

Usage::

    python bench/export_memory.py [--days 100] [--per-day 10000] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import PG_ADMIN_URL, REPO, dump_json, print_header  # noqa: E402
from bench.metrics_read import _DECISIONS, _OUTCOMES  # noqa: E402

API = "/api/v1/041-hyper-personalization-engine"
KEY = "bench-export-key-" + "x" * 40

#: Run in a child process: export one range and report peak memory (``ru_maxrss``, KiB).
_CLI_CHILD = """
import resource, sys, time
from web.cli import main
sys.argv = ["hpe", "export", "decisions", *sys.argv[1:]]
started = time.perf_counter()
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
else:
    code = 0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"RESULT {peak} {time.perf_counter() - started:.2f} {code}", file=sys.stderr)
"""

_API_CHILD = """
import json, os, resource, sys, time
from web import create_app
config_id, date_from, date_to, key = sys.argv[1:5]
app = create_app({"INLINE_SWEEPER": False, "LOAD_PLUGINS": ["email", "web", "ads"]})
client = app.test_client()
started = time.perf_counter()
response = client.get(
    f"{API}/{config_id}/decisions/export?from={date_from}&to={date_to}",
    headers={"Authorization": f"Bearer {key}"}, buffered=False,
)
assert response.status_code == 200, response.status_code
size = lines = 0
for chunk in response.response:
    size += len(chunk)
    lines += chunk.count(b"\\n")
response.close()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"RESULT {peak} {time.perf_counter() - started:.2f} 0 {lines} {size}", file=sys.stderr)
""".replace("{API}", API)


def _env(url: str, instance: str) -> dict:
    env = {name: value for name, value in os.environ.items() if not name.startswith("HPE_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "HPE_DATABASE_URL": url,
            "HPE_INSTANCE_PATH": instance,
            "HPE_LOAD_PLUGINS": json.dumps(["email", "web", "ads"]),
            "HPE_SECRET_KEY": KEY,
            "HPE_AUTO_MIGRATE": "false",
            # The database was migrated when the run began; a migration added to the tree
            # during a long run must not stop the children (they read, never migrate).
            "HPE_SCHEMA_CHECK": "false",
        }
    )
    return env


def _child(code: str, args: list[str], env: dict) -> tuple[int, float, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, timeout=3600
    )
    line = next((x for x in result.stderr.decode().splitlines() if x.startswith("RESULT ")), None)
    if line is None or result.returncode:
        raise RuntimeError(result.stderr.decode()[-3000:])
    fields = line.split()
    if fields[3] not in ("0", "None"):
        raise RuntimeError(f"exit {fields[3]}: " + result.stderr.decode()[-3000:])
    return int(fields[1]), float(fields[2]), fields[3:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--per-day", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    info = print_header("export memory", argv)

    import psycopg
    import sqlalchemy as sa

    from hpe_core.store import db
    from hpe_core.tenancy import configs, workspaces
    from hpe_core.tenancy.workspaces import Principal
    from web import create_app
    from web.extensions import app_runtime

    name = f"hpe_bench_export_{uuid.uuid4().hex[:8]}"
    psycopg_url = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://")
    admin = sa.create_engine(psycopg_url + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{psycopg_url}/{name}"
    instance = f"/tmp/{name}"
    results: dict = {"machine": info, "args": vars(args), "database": name, "runs": []}
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        app = create_app(
            {
                "DATABASE_URL": url,
                "AUTO_MIGRATE": False,
                "INLINE_SWEEPER": False,
                "LOAD_PLUGINS": ["email", "web", "ads"],
                "SECRET_KEY": KEY,
            }
        )
        with app_runtime(app).sessions() as session:
            workspaces.create_workspace(session, "bench")
            _row, key = workspaces.create_key(session, "bench")
            config = configs.create(
                session,
                Principal("bench", "bench"),
                app_runtime(app).catalog,
                name="Export benchmark",
                settings={
                    "actions": [{"id": f"offer-{n}"} for n in range(10)],
                    "channels": ["email", "web", "ads"],
                },
            )
            session.commit()
            config_id = config.id
        app_runtime(app).engine.dispose()
        today = dt.datetime.now(dt.UTC).date()
        days = [today - dt.timedelta(days=n) for n in range(args.days, 0, -1)]
        started = time.perf_counter()
        plain = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(plain, autocommit=True) as conn:
            for n, day in enumerate(days, start=1):
                params = {
                    "ws": "bench",
                    "config": config_id,
                    "start": dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC),
                    "count": args.per_day,
                    "seconds": 86400,
                    "salt": day.toordinal() * 104729,
                }
                conn.execute(_DECISIONS, params)
                conn.execute(_OUTCOMES, params)
                if n % 20 == 0 or n == len(days):
                    print(
                        f"  seeded {n}/{len(days)} days in {time.perf_counter() - started:.0f} s",
                        flush=True,
                    )
            conn.execute("ANALYZE")
            rows = conn.execute(
                'SELECT count(*) FROM "041_hyper_personalization_engine_decisions"'
            ).fetchone()[0]
            size = conn.execute(
                "SELECT pg_size_pretty(pg_database_size(current_database()))"
            ).fetchone()[0]
        results["seed"] = {
            "decisions": rows,
            "seconds": round(time.perf_counter() - started),
            "database_size": size,
        }
        print(f"seeded: {results['seed']}", flush=True)

        env = _env(url, instance)
        print(f"{'path':<24}{'decisions':>11}{'peak RSS MiB':>14}{'seconds':>9}{'MB written':>12}")
        for span in sorted({1, min(10, args.days), args.days}):
            date_from, date_to = days[-span], days[-1]
            expected = span * args.per_day
            for fmt in ("ndjson", "csv"):
                out = f"{instance}/export.{fmt}"
                os.makedirs(instance, exist_ok=True)
                peak, seconds, _ = _child(
                    _CLI_CHILD,
                    [
                        str(config_id),
                        "--from",
                        str(date_from),
                        "--to",
                        str(date_to),
                        "--format",
                        fmt,
                        "--output",
                        out,
                    ],
                    env,
                )
                with open(out, "rb") as handle:
                    lines = sum(
                        chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")
                    )
                written = os.path.getsize(out)
                os.remove(out)
                lines -= 1 if fmt == "csv" else 0  # the header
                _report(results, f"hpe export ({fmt})", expected, lines, peak, seconds, written)
            peak, seconds, extra = _child(
                _API_CHILD, [str(config_id), str(date_from), str(date_to), key], env
            )
            _report(
                results,
                "GET decisions/export",
                expected,
                int(extra[1]),
                peak,
                seconds,
                int(extra[2]),
            )
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name"
                    ),
                    {"name": name},
                )
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    dump_json(args.json, results)
    return 0


def _report(results, path, expected, lines, peak_kib, seconds, written):
    assert lines == expected, (path, lines, expected)
    row = {
        "path": path,
        "decisions": lines,
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "seconds": seconds,
        "mb_written": round(written / 1e6, 1),
    }
    results["runs"].append(row)
    print(
        f"{path:<24}{lines:>11,}{row['peak_rss_mib']:>14}{seconds:>9.1f}{row['mb_written']:>12}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
