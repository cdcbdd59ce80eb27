"""GET /{id}/metrics over 90 days of history at 100,000 decisions a day (issue 5, target
< 200 ms), and what the daily rollups cost to build.

One run, on a fresh PostgreSQL database created for it and dropped at the end:

1. seeds one configuration (10 actions with costs, 3 channels, 5 segments, 10% holdout)
   with ``--days`` days × ``--per-day`` decisions (``INSERT ... SELECT generate_series``,
   one statement per day, every column filled as the product fills it), outcomes for
   ~5% of decisions (clicks; a fifth of them also a conversion with a value), and
   user-level conversions attributed to ~0.5% of decisions (the attributions table);
   today gets ``--today`` decisions between midnight and now; then ``ANALYZE`` (unless
   ``--no-analyze``: this machine runs PostgreSQL with autovacuum off);
2. backfills the rollups exactly as the measurement pass does: every seeded day is
   marked stale and ``rollups.refresh`` runs (and commits) until no mark is left;
3. times ``GET /{id}/metrics?from=<days ago>&to=<yesterday>`` through the real Flask app
   (in-process test client, API key auth, the full view and schema), ``--requests``
   times after 2 warm-up requests, then the same range through today (today computed
   live), then ``metrics.summary_for`` alone (no HTTP, no JSON), and raw
   ``rollups.compute_days`` over the same 90 days (what every read would cost without
   rollups).

Usage::

    python bench/metrics_read.py [--days 90] [--per-day 100000] [--today 100000]
                                 [--requests 30] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import PG_ADMIN_URL, dump_json, loadavg, percentile, print_header  # noqa: E402
from web.extensions import app_runtime

API = "/api/v1/041-hyper-personalization-engine"
ACTIONS = [{"id": f"offer-{n}", "cost": round(0.01 * (n + 1), 2)} for n in range(10)]
CHANNELS = ["email", "web", "ads"]
CHANNEL_COSTS = {"email": 0.002, "web": 0.0, "ads": 0.05}
SEGMENTS = 5

# One day's decisions (named parameters: ws, config, start, count, seconds). Row i:
# channel i mod 3, action (i / 3) mod 10, segment (i / 7) mod 5; holdout when a hash of
# the user falls in the first 10% (assignment is per user); learned, with a reward; the
# feature line as hpe_core.decide.features.decision_features writes it (the off-policy
# evaluation replays the model on it).
_DECISIONS = """
INSERT INTO "041_hyper_personalization_engine_decisions"
  (id, workspace_id, config_id, user_id, channel, context, eligible, probabilities,
   action_id, probability, variant, policy, model_version, model_action_id, source,
   created_at, window_closes_at, learned_at, reward, engaged, given_reward, features)
SELECT gen_random_uuid(), %(ws)s, %(config)s, u.user_id,
  (ARRAY['email','web','ads'])[mod(i, 3) + 1],
  jsonb_build_object('segment', 's' || mod(i / 7, 5), 'device', 'mobile'),
  '["offer-0","offer-1","offer-2","offer-3","offer-4","offer-5","offer-6","offer-7",
    "offer-8","offer-9"]'::jsonb,
  '[0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1]'::jsonb,
  'offer-' || mod(i / 3, 10), 0.1,
  CASE WHEN u.bucket < 10 THEN 'holdout' ELSE 'treatment' END,
  CASE WHEN u.bucket < 10 THEN 'baseline' ELSE 'model' END,
  7, 'offer-' || mod(i / 11, 10), 'live',
  t.at, t.at + interval '1 day', t.at + interval '1 day',
  0.0, false, NULL,
  'shared |c channel=' || (ARRAY['email','web','ads'])[mod(i, 3) + 1]
    || ' segment=s' || mod(i / 7, 5) || ' device=mobile'
FROM generate_series(0, %(count)s - 1) AS i,
LATERAL (SELECT %(start)s::timestamptz
                + make_interval(secs => i::float8 * %(seconds)s / %(count)s) AS at) AS t,
LATERAL (SELECT 'user-' || mod(i::bigint * 7919 + %(salt)s, 2000000) AS user_id) AS v,
LATERAL (SELECT v.user_id, mod(abs(hashtext(v.user_id)), 100) AS bucket) AS u
"""

# Outcomes of one day's decisions: a click for ~6% of treatment and ~5% of holdout (by a
# hash of the id), and for a fifth of those a conversion worth 20-119.
_OUTCOMES = """
INSERT INTO "041_hyper_personalization_engine_outcomes"
  (id, workspace_id, config_id, decision_id, user_id, type, value, occurred_at,
   received_at, idempotency_key, late, source)
SELECT gen_random_uuid(), d.workspace_id, d.config_id, d.id, d.user_id, t.type,
  CASE WHEN t.type = 'conversion' THEN 20 + mod(abs(hashtext(d.id::text || 'v')), 100) END,
  d.created_at + interval '1 hour', d.created_at + interval '1 hour',
  'd:' || d.id || ':' || t.type, false, 'api'
FROM "041_hyper_personalization_engine_decisions" d
CROSS JOIN (VALUES ('click'), ('conversion')) AS t(type)
WHERE d.config_id = %(config)s
  AND d.created_at >= %(start)s AND d.created_at < %(start)s::timestamptz + interval '1 day'
  AND mod(abs(hashtext(d.id::text)), 100) < CASE WHEN d.variant = 'treatment' THEN 6 ELSE 5 END
  AND (t.type = 'click' OR mod(abs(hashtext(d.id::text || 'c')), 5) = 0)
"""

# User-level conversions (no decision_id), credited whole to ~0.5% of a day's decisions.
_USER_LEVEL = """
WITH chosen AS (
  SELECT d.id, d.workspace_id, d.config_id, d.user_id, d.created_at, gen_random_uuid() AS oid
  FROM "041_hyper_personalization_engine_decisions" d
  WHERE d.config_id = %(config)s
    AND d.created_at >= %(start)s AND d.created_at < %(start)s::timestamptz + interval '1 day'
    AND mod(abs(hashtext(d.id::text || 'u')), 200) = 0
), outcomes AS (
  INSERT INTO "041_hyper_personalization_engine_outcomes"
    (id, workspace_id, config_id, decision_id, user_id, type, value, occurred_at,
     received_at, idempotency_key, late, source, attributed_at)
  SELECT oid, workspace_id, config_id, NULL, user_id, 'conversion', 50,
    created_at + interval '2 hours', created_at + interval '2 hours', 'u:' || oid, false,
    'api', created_at + interval '3 hours'
  FROM chosen
)
INSERT INTO "041_hyper_personalization_engine_attributions"
  (id, workspace_id, config_id, outcome_id, decision_id, model, credit, created_at)
SELECT gen_random_uuid(), workspace_id, config_id, oid, id, 'last_touch', 1.0,
  created_at + interval '3 hours'
FROM chosen
"""


def _stats(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(samples) * 1000, 1),
        "p95_ms": round(percentile(samples, 95) * 1000, 1),
        "min_ms": round(min(samples) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


def _seed(
    engine, workspace_id: str, config_id: uuid.UUID, days, per_day, today_count, now, analyze
):
    """Insert the decision log, outcomes and attributions; returns timings."""
    import psycopg

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        day_list = [(day, per_day, 86400) for day in days]
        midnight = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
        if today_count:
            day_list.append(
                (now.date(), today_count, max(1, int((now - midnight).total_seconds())))
            )
        for n, (day, count, seconds) in enumerate(day_list, start=1):
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            params = {
                "ws": workspace_id,
                "config": config_id,
                "start": start,
                "count": count,
                "seconds": seconds,
                "salt": day.toordinal() * 104729,
            }
            conn.execute(_DECISIONS, params)
            conn.execute(_OUTCOMES, params)
            conn.execute(_USER_LEVEL, params)
            if n % 10 == 0 or n == len(day_list):
                elapsed = time.perf_counter() - started
                print(f"  seeded {n}/{len(day_list)} days in {elapsed:.0f} s", flush=True)
        seeded = time.perf_counter() - started
        if analyze:
            conn.execute("ANALYZE")
        counts = {
            name: conn.execute(
                f'SELECT count(*) FROM "041_hyper_personalization_engine_{name}"'
            ).fetchone()[0]
            for name in ("decisions", "outcomes", "attributions")
        }
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = size.fetchone()[0]
    return {
        "seconds": round(seeded, 1),
        "analyze_seconds": round(time.perf_counter() - started - seeded, 1),
        "rows": counts,
        "database_size": size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=100_000)
    parser.add_argument("--today", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="leave the tables without planner statistics (autovacuum off, fresh tables)",
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    info = print_header("metrics read over daily rollups", argv)

    import sqlalchemy as sa

    from hpe_core.measure import metrics, rollups
    from hpe_core.store import db
    from hpe_core.store.models import Config, StaleMetricsDay
    from hpe_core.tenancy import configs, workspaces
    from hpe_core.tenancy.workspaces import Principal
    from web import create_app

    name = f"hpe_bench_metrics_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    results: dict = {"machine": info, "args": vars(args), "database": name}
    app = None
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        app = create_app(
            {
                "DATABASE_URL": url,
                "AUTO_MIGRATE": False,
                "REDIS_URL": None,
                "INLINE_SWEEPER": False,
                "LOAD_PLUGINS": ["email", "web", "ads"],
                "PLUGINS": {ch: {"cost_per_decision": c} for ch, c in CHANNEL_COSTS.items()},
                # PostgreSQL deployments need one; this process is the only one.
                "SECRET_KEY": secrets.token_urlsafe(48),
            }
        )
        sessions = app_runtime(app).sessions
        channel_costs = app_runtime(app).measurement.channel_costs
        with sessions() as session:
            workspaces.create_workspace(session, "bench")
            _row, key = workspaces.create_key(session, "bench")
            config = configs.create(
                session,
                Principal("bench", "bench"),
                app_runtime(app).catalog,
                name="Metrics benchmark",
                settings={
                    "actions": ACTIONS,
                    "channels": CHANNELS,
                    "holdout": {"percent": 10},
                    "reward": {"events": {"click": 1.0, "conversion": 1.0}},
                },
            )
            session.commit()
            config_id = config.id
        now = dt.datetime.now(dt.UTC)
        today = now.date()
        days = [today - dt.timedelta(days=n) for n in range(args.days, 0, -1)]
        print(
            f"seeding {args.days} days x {args.per_day} decisions + {args.today} today", flush=True
        )
        results["seed"] = _seed(
            engine, "bench", config_id, days, args.per_day, args.today, now, not args.no_analyze
        )
        print(f"  {results['seed']}", flush=True)

        # Backfill, as the measurement pass would after an import of this history.
        with sessions() as session:
            rollups.mark_stale(session, config_id, days)
            session.commit()
            passes, started = [], time.perf_counter()
            while True:
                config = session.get(Config, config_id)
                t0 = time.perf_counter()
                done = rollups.refresh(session, config, channel_costs=channel_costs)
                session.commit()
                passes.append({"days": len(done), "seconds": round(time.perf_counter() - t0, 2)})
                print(f"  refresh pass: {passes[-1]}", flush=True)
                left = session.scalar(sa.select(sa.func.count()).select_from(StaleMetricsDay))
                if not left:
                    break
            total = time.perf_counter() - started
            recomputed = sum(p["days"] for p in passes)
            results["backfill"] = {
                "passes": passes,
                "seconds": round(total, 2),
                "days_recomputed": recomputed,
                "seconds_per_day": round(total / recomputed, 3),
            }
        print(f"backfill: {results['backfill']}", flush=True)

        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        first = days[0]
        yesterday = today - dt.timedelta(days=1)

        def timed_get(date_to: dt.date) -> tuple[list[float], dict]:
            path = f"{API}/{config_id}/metrics?from={first}&to={date_to}"
            body, samples = None, []
            for n in range(args.requests + 2):
                t0 = time.perf_counter()
                response = client.get(path, headers=headers)
                elapsed = time.perf_counter() - t0
                assert response.status_code == 200, response.get_data(as_text=True)[:500]
                if n >= 2:  # two warm-up requests
                    samples.append(elapsed)
                body = response
            return samples, {
                "bytes": len(body.get_data()),
                "days": len(body.get_json()["daily"]),
                "stored_days": sum(d["rolled_up_at"] is not None for d in body.get_json()["daily"]),
                "decisions": body.get_json()["summary"]["decisions"],
            }

        samples, shape = timed_get(yesterday)
        results["get_history"] = {**_stats(samples), **shape, "to": str(yesterday)}
        print(f"GET {first}..{yesterday}: {results['get_history']}", flush=True)
        samples, shape = timed_get(today)
        results["get_with_today"] = {**_stats(samples), **shape, "to": str(today)}
        print(f"GET {first}..{today} (today live): {results['get_with_today']}", flush=True)

        with sessions() as session:
            config = session.get(Config, config_id)
            samples = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                metrics.summary_for(session, config, first, yesterday, channel_costs=channel_costs)
                samples.append(time.perf_counter() - t0)
            results["summary_for_history"] = _stats(samples)
            print(f"summary_for {first}..{yesterday}: {results['summary_for_history']}", flush=True)
            samples = []
            for _ in range(3):
                t0 = time.perf_counter()
                live = rollups.compute_days(
                    session, config, first, yesterday, channel_costs=channel_costs
                )
                samples.append(time.perf_counter() - t0)
            results["compute_days_history"] = {**_stats(samples), "days": len(live)}
            print(f"raw compute_days {first}..{yesterday}: {results['compute_days_history']}")
            samples = []
            for _ in range(5):
                t0 = time.perf_counter()
                rollups.compute_days(session, config, today, today, channel_costs=channel_costs)
                samples.append(time.perf_counter() - t0)
            results["compute_days_today"] = _stats(samples)
            print(f"raw compute_days today: {results['compute_days_today']}")
        print(f"load at end: {loadavg()}")
        dump_json(args.json, results)
    finally:
        if app is not None:
            app_runtime(app).engine.dispose()
        if "engine" in locals():
            engine.dispose()
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
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
