"""The results page ready in a browser, and ``GET /{id}/metrics`` through today, over 90
days at 100,000 decisions a day including today (issue 12 item 4: the page ready in
<= 1 s p95, the metrics read through today in <= 300 ms p95).

One run, on PostgreSQL:

1. a database: created and seeded as ``bench/metrics_read.py`` seeds one (one
   configuration, ``--days`` days x ``--per-day`` decisions with outcomes and
   attributions, then today's decisions between midnight and now, see ``--today``), or
   an existing one (``--database NAME``: kept by ``--keep`` or by ``metrics_read.py
   --keep``), migrated and topped up with the days it lacks; ``--reseed-today`` first
   deletes today's decisions (with their outcomes and credit) and seeds them again;
2. the measurement pass as ``hpe worker`` runs it (``measurement.run``: the rollups, with
   the backfill of every day not stored yet, today's settled hours, the off-policy
   evaluation kept for the page, the recommendations), timed;
3. ``hpe serve`` (gunicorn, ``--workers`` x ``--threads``) on that database, without the
   inline sweeper (nothing recomputes while the run measures);
4. chromium (Playwright, Debian's ``/usr/bin/chromium``) signs in once, then loads the
   results page ``--loads`` times per variant (after ``--warmup`` loads), each timed from
   the navigation's start to the moment no element has ``aria-busy="true"`` (the page's
   ready signal: tests/browser/conftest.py ``wait_ready``): the default range (the last
   30 days through today), the same with yesterday read from its stored hours (see
   :class:`States`), the 90-day preset, the overview, and the default range with no
   stored evaluation (``--slow-loads`` times: the panel replays the model after the
   page, as before this change);
5. ``GET /{id}/metrics`` over HTTP (one keep-alive connection, an API key) over
   ``--days`` days through today in three states (:class:`States`: as the pass left it;
   yesterday read from its stored sum of 24 hours; yesterday and today computed whole,
   as every read did before), alternating in blocks, plus the same range through
   yesterday.

``--seed-only`` stops after step 2 and keeps the database (seeding needs no bench lock);
time it later with ``--database NAME``.

Usage::

    python bench/dashboard_page.py [--database NAME] [--keep] [--days 90]
        [--per-day 100000] [--today 100000|steady] [--reseed-today] [--loads 30]
        [--requests 30] [--workers 2] [--threads 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    API,
    PG_ADMIN_URL,
    _hpe_executable,
    _stop_group,
    children,
    dump_json,
    free_port,
    loadavg,
    percentile,
    print_header,
)
from bench.metrics_read import ACTIONS, CHANNEL_COSTS, CHANNELS, _seed  # noqa: E402

CHROMIUM = os.environ.get("HPE_TEST_CHROMIUM", "/usr/bin/chromium")
EMAIL, PASSWORD = "bench@example.com", "bench-password-" + secrets.token_hex(4)
PLUGINS = {channel: {"cost_per_decision": cost} for channel, cost in CHANNEL_COSTS.items()}
LOAD_PLUGINS = ["email", "web", "ads"]


def _stats(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(samples) * 1000, 1),
        "p95_ms": round(percentile(samples, 95) * 1000, 1),
        "min_ms": round(min(samples) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


def _url(database: str) -> str:
    return PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://") + f"/{database}"


# --- The database --------------------------------------------------------------------------


def _create_database(admin, name: str) -> None:
    import sqlalchemy as sa

    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))


def _drop_database(admin, name: str) -> None:
    import sqlalchemy as sa

    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _app(url: str, secret_key: str):
    from web import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "AUTO_MIGRATE": False,
            "REDIS_URL": None,
            "INLINE_SWEEPER": False,
            "LOAD_PLUGINS": LOAD_PLUGINS,
            "PLUGINS": PLUGINS,
            "SECRET_KEY": secret_key,
        }
    )


def _configuration(app) -> tuple[str, uuid.UUID]:
    """The benchmark's workspace and configuration (created when the database is new)."""
    import sqlalchemy as sa

    from hpe_core.store.models import Config
    from hpe_core.tenancy import configs, workspaces
    from hpe_core.tenancy.workspaces import Principal
    from web.extensions import app_runtime

    with app_runtime(app).sessions() as session:
        found = session.scalars(sa.select(Config).order_by(Config.created_at)).first()
        if found is not None:
            return found.workspace_id, found.id
        workspaces.create_workspace(session, "bench")
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
        return "bench", config.id


def _today_count(args, now: dt.datetime) -> int:
    if args.today != "steady":
        return int(args.today)
    midnight = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
    return int(args.per_day * (now - midnight).total_seconds() / 86400)


def _prepare_data(engine, app, workspace_id, config_id, args, now) -> dict:
    """Seed what the database lacks: the days since its newest decision (all of them on a
    new database), and today's decisions (again, with ``--reseed-today``). Returns what
    was done; the seeded days are marked stale for the pass to roll up."""
    import sqlalchemy as sa

    from hpe_core.measure import rollups
    from hpe_core.store.models import Decision
    from web.extensions import app_runtime

    today = now.date()
    midnight = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
    done: dict = {}
    with app_runtime(app).sessions() as session:
        if args.reseed_today:
            done["deleted_today"] = _delete_today(session, config_id, midnight)
        newest = session.scalar(
            sa.select(sa.func.max(Decision.created_at)).where(Decision.config_id == config_id)
        )
    first = today - dt.timedelta(days=args.days)
    if newest is not None:
        first = max(first, newest.astimezone(dt.UTC).date() + dt.timedelta(days=1))
    days = [first + dt.timedelta(days=n) for n in range((today - first).days)]
    today_count = _today_count(args, now) if newest is None or newest < midnight else 0
    if days or today_count:
        print(f"seeding {len(days)} days x {args.per_day} + {today_count} today", flush=True)
        done["seed"] = _seed(
            engine, workspace_id, config_id, days, args.per_day, today_count, now, True
        )
        with app_runtime(app).sessions() as session:
            rollups.mark_stale(session, config_id, [*days, today])
            session.commit()
    return done


def _delete_today(session, config_id, midnight: dt.datetime) -> int:
    """Delete today's decisions with their outcomes and the user-level outcomes credited
    to them (the seed's), leaving every other day as it was."""
    import sqlalchemy as sa

    from hpe_core.store.models import Attribution, Decision, Outcome

    today_ids = sa.select(Decision.id).where(
        Decision.config_id == config_id, Decision.created_at >= midnight
    )
    credited = list(
        session.scalars(
            sa.select(Attribution.outcome_id).where(Attribution.decision_id.in_(today_ids))
        )
    )
    session.execute(sa.delete(Attribution).where(Attribution.decision_id.in_(today_ids)))
    for start in range(0, len(credited), 1000):
        chunk = credited[start : start + 1000]
        session.execute(sa.delete(Attribution).where(Attribution.outcome_id.in_(chunk)))
        session.execute(sa.delete(Outcome).where(Outcome.id.in_(chunk)))
    session.execute(sa.delete(Outcome).where(Outcome.decision_id.in_(today_ids)))
    deleted = session.execute(
        sa.delete(Decision).where(Decision.config_id == config_id, Decision.created_at >= midnight)
    ).rowcount
    session.commit()
    return deleted


def _measure_once(app, config_id, now) -> dict:
    """The backfill of marked days (as passes would, 62 days at a time), then one
    measurement pass as the worker runs it; their durations."""
    import sqlalchemy as sa

    from hpe_core.measure import measurement, rollups
    from hpe_core.store.models import Config, StaleMetricsDay
    from web.extensions import app_runtime

    runtime = app_runtime(app)
    costs = runtime.measurement.channel_costs
    started, passes = time.perf_counter(), 0
    with runtime.sessions() as session:
        while session.scalar(sa.select(sa.func.count()).select_from(StaleMetricsDay)):
            rollups.refresh(session, session.get(Config, config_id), channel_costs=costs, now=now)
            session.commit()
            passes += 1
    backfill = time.perf_counter() - started
    with runtime.sessions() as session:
        t0 = time.perf_counter()
        report = measurement.run(session, config_id, runtime.measurement, now=now)
        pass_seconds = time.perf_counter() - t0
    return {
        "backfill_passes": passes,
        "backfill_seconds": round(backfill, 1),
        "pass_seconds": round(pass_seconds, 2),
        "pass_report": {
            "days_refreshed": report.days_refreshed,
            "evaluation_error": report.evaluation_error,
            "open_recommendations": report.open_recommendations,
        },
    }


def _person_and_key(app, workspace_id: str) -> str:
    """A signed-in editor for the browser, and an API key for GET /metrics."""
    import sqlalchemy as sa

    from hpe_core.store.models import User
    from hpe_core.store.vocabulary import Role
    from hpe_core.tenancy import people, workspaces
    from web.extensions import app_runtime

    with app_runtime(app).sessions() as session:
        existing = session.scalar(sa.select(User).where(User.email == EMAIL))
        if existing is None:
            people.create_user(
                session, EMAIL, workspace_id=workspace_id, role=Role.EDITOR, password=PASSWORD
            )
        else:
            people.reset_password(session, EMAIL, PASSWORD)
        _row, key = workspaces.create_key(session, workspace_id)
        session.commit()
    return key


def _today_shape(app, config_id, now) -> dict:
    """Today's decisions, and how many of them a read computes live (not in a stored
    hour): what a read through today costs depends on both."""
    import sqlalchemy as sa

    from hpe_core.store.models import Decision, MetricsHour
    from web.extensions import app_runtime

    midnight = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
    with app_runtime(app).sessions() as session:
        stored = sorted(
            session.scalars(
                sa.select(MetricsHour.hour).where(
                    MetricsHour.config_id == config_id, MetricsHour.hour >= midnight
                )
            )
        )
        first_live = (stored[-1] + dt.timedelta(hours=1)) if stored else midnight
        count = sa.select(sa.func.count()).where(
            Decision.config_id == config_id, Decision.created_at >= midnight
        )
        return {
            "time_of_day_utc": now.strftime("%H:%M"),
            "decisions_today": session.scalar(count),
            "stored_hours_today": len(stored),
            "live_from": first_live.strftime("%H:%M"),
            "decisions_live": session.scalar(count.where(Decision.created_at >= first_live)),
        }


# --- Serving ---------------------------------------------------------------------------------


class Server:
    """``hpe serve`` on the benchmark's database, as its own process group."""

    def __init__(self, database: str, secret_key: str, workers: int, threads: int):
        self.instance = tempfile.mkdtemp(prefix="hpe-bench-page-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            {
                "HPE_DATABASE_URL": _url(database),
                "HPE_INSTANCE_PATH": self.instance,
                "HPE_SECRET_KEY": secret_key,
                "HPE_LOAD_PLUGINS": json.dumps(LOAD_PLUGINS),
                "HPE_PLUGINS": json.dumps(PLUGINS),
                "HPE_INLINE_SWEEPER": "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.pop("HPE_REDIS_URL", None)
        self.log = open(os.path.join(self.instance, "serve.log"), "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                _hpe_executable(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ],
            env=env,
            cwd=self.instance,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hpe serve exited with {self.process.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/api/v1/openapi.json")
                ok = connection.getresponse().status == 200
                connection.close()
                if ok and len(children(self.process.pid)) >= workers:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("hpe serve did not answer in time")

    def stop(self) -> None:
        _stop_group(self.process)
        self.log.close()


# --- Measuring ---------------------------------------------------------------------------------


class States:
    """The database states the run measures in, each one a moment a real deployment goes
    through, set up by the benchmark between blocks (no pass runs meanwhile):

    - ``normal``: as the pass left it (days before today stored whole, today's settled
      hours stored, the evaluation kept);
    - ``yesterday_from_hours``: yesterday not stored whole yet (the minutes after midnight
      before the first pass), so a read starts from its stored sum of 24 settled hours
      (``metrics_hours_sums``, migration 0015) plus the outcomes written since their
      cuts: what reading a full day of decisions from stored hours costs, as a read at
      23:59 does for today;
    - ``whole_days``: the same without stored hours nor their days' sums, so yesterday
      and today are computed whole from the decision log (what every read through today
      did before);
    - ``no_evaluation``: normal, but no evaluation kept (before the first pass, or before
      this change): the page replays the model after it loads;
    - ``as_before``: ``whole_days`` and ``no_evaluation``: the page as it was before this
      change, read at the same moment as ``yesterday_from_hours``.
    """

    def __init__(self, runtime, config_id, now: dt.datetime):
        self.runtime, self.config_id, self.now = runtime, config_id, now
        self.yesterday = now.date() - dt.timedelta(days=1)
        self.kept: dict = {}

    def normal(self) -> None:
        self._restore("day", "snapshot")
        self._store_hours()

    def yesterday_from_hours(self) -> None:
        self._restore("snapshot")
        self._set_aside_yesterday()
        self._store_hours()

    def whole_days(self) -> None:
        self._restore("snapshot")
        self._set_aside_yesterday()
        self._drop_hours()

    def no_evaluation(self) -> None:
        self.normal()
        self._set_aside_evaluation()

    def as_before(self) -> None:
        """``whole_days`` and ``no_evaluation`` together: the page as it was before."""
        self.whole_days()
        self._set_aside_evaluation()

    def _set_aside_evaluation(self) -> None:
        from hpe_core.store.models import EvaluationSnapshot

        where = EvaluationSnapshot.config_id == self.config_id
        self._set_aside("snapshot", EvaluationSnapshot.__table__, where)

    def _set_aside_yesterday(self) -> None:
        from hpe_core.store.models import MetricsDay

        where = (MetricsDay.config_id == self.config_id) & (MetricsDay.date == self.yesterday)
        self._set_aside("day", MetricsDay.__table__, where)

    def _set_aside(self, name: str, table, where) -> None:
        """Delete the row of ``table`` matching ``where``, kept to be restored."""
        import sqlalchemy as sa

        with self.runtime.sessions() as session:
            row = session.execute(sa.select(table).where(where)).first()
            if row is not None:
                self.kept[name] = (table, dict(row._mapping))
                session.execute(sa.delete(table).where(where))
                session.commit()

    def _restore(self, *what: str) -> None:
        import sqlalchemy as sa

        for name in what:
            if name in self.kept:
                table, values = self.kept.pop(name)
                with self.runtime.sessions() as session:
                    session.execute(sa.insert(table).values(**values))
                    session.commit()

    def _drop_hours(self) -> None:
        """Drop the stored hours and the days' sums of them (migration 0015): a read
        starts from a day's sum, so without it the day is computed whole."""
        import sqlalchemy as sa

        from hpe_core.store.models import MetricsHour, MetricsHoursSum

        with self.runtime.sessions() as session:
            for table in (MetricsHour, MetricsHoursSum):
                session.execute(sa.delete(table).where(table.config_id == self.config_id))
            session.commit()

    def _store_hours(self) -> None:
        """The hours the pass stored (recomputed if dropped, as at the pass's time)."""
        from hpe_core.measure import hours
        from hpe_core.store.models import Config

        with self.runtime.sessions() as session:
            config = session.get(Config, self.config_id)
            costs = self.runtime.measurement.channel_costs
            hours.refresh(session, config, channel_costs=costs, now=self.now)
            session.commit()


def _browser_loads(server: Server, config_id, ranges: dict, args, results: dict) -> None:
    """Sign in once, then load each range's page, timed to ready."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        page.goto(f"{server.url}/dashboard/login")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_test_id("sign-in").click()
        page.wait_for_url(lambda address: "/login" not in address)
        for name, (query, before, loads) in ranges.items():
            if before is not None:
                before()
            page_path = query if query.startswith("/") else f"/dashboard/configs/{config_id}{query}"
            url = server.url + page_path
            samples, navigation = [], []
            for n in range(args.warmup + loads):
                t0 = time.perf_counter()
                response = page.goto(url, wait_until="load")
                page.locator('[aria-busy="true"]').first.wait_for(state="detached", timeout=120_000)
                elapsed = time.perf_counter() - t0
                assert response is not None and response.status == 200, response
                if n >= args.warmup:
                    samples.append(elapsed)
                    timing = json.loads(
                        page.evaluate(
                            "JSON.stringify(performance.getEntriesByType('navigation')[0])"
                        )
                    )
                    navigation.append(timing)
            measured = page.get_by_test_id("evaluation-measured").count() > 0
            results["page"][name] = {
                "url": url.replace(server.url, ""),
                **_stats(samples),
                "evaluation": "stored by the pass" if measured else "computed after the page",
                "server_response_median_ms": round(
                    statistics.median(t["responseStart"] - t["requestStart"] for t in navigation), 1
                ),
                "load_event_median_ms": round(
                    statistics.median(t["loadEventEnd"] for t in navigation), 1
                ),
                "html_bytes": navigation[-1].get("transferSize"),
            }
            print(f"page {name}: {results['page'][name]}", flush=True)
        browser.close()


def _metrics_reads(server: Server, key: str, config_id, args, variants: dict, results: dict):
    """GET /metrics per variant, alternating in blocks; each variant's ``before`` runs
    ahead of its block (to put the database in its state)."""
    headers = {"Authorization": f"Bearer {key}"}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    shapes: dict[str, dict] = {}
    blocks = max(1, args.blocks)
    per_block = max(1, args.requests // blocks)
    for _block in range(blocks):
        for name, (query, before) in variants.items():
            if before is not None:
                before()
            # A connection per block: gunicorn closes idle keep-alive connections after a
            # couple of seconds, and setting a state up can take longer than that.
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            for n in range(per_block + 1):  # one warm-up request a block
                t0 = time.perf_counter()
                connection.request("GET", f"{API}/{config_id}/metrics{query}", headers=headers)
                response = connection.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - t0
                assert response.status == 200, body[:300]
                if n:
                    samples[name].append(elapsed)
            connection.close()
            answer = json.loads(body)
            shapes[name] = {
                "days": len(answer["daily"]),
                "stored_days": sum(d["rolled_up_at"] is not None for d in answer["daily"]),
                "decisions": answer["summary"]["decisions"],
                "bytes": len(body),
            }
    for name in variants:
        results["metrics"][name] = {
            "query": variants[name][0],
            **_stats(samples[name]),
            **shapes[name],
        }
        print(f"GET /metrics {name}: {results['metrics'][name]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="reuse this database (seeded by an earlier run)")
    parser.add_argument("--keep", action="store_true", help="do not drop a database created here")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=100_000)
    parser.add_argument(
        "--today",
        default="100000",
        help="decisions today between midnight and now, or 'steady' (--per-day's rate)",
    )
    parser.add_argument("--reseed-today", action="store_true")
    parser.add_argument(
        "--seed-only",
        action="store_true",
        help="seed (or top up) the database and run the backfill, then stop, keeping it "
        "(for a later --database run; seeding needs no bench lock)",
    )
    parser.add_argument("--loads", type=int, default=30)
    parser.add_argument(
        "--slow-loads",
        type=int,
        default=10,
        help="loads of the page without a stored evaluation (each replays the model)",
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    info = print_header("results page and metrics read through today", argv)

    import sqlalchemy as sa

    from hpe_core.store import db
    from web.extensions import app_runtime

    admin = sa.create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    name = args.database or f"hpe_bench_page_{uuid.uuid4().hex[:8]}"
    if not args.database:
        _create_database(admin, name)
    results: dict = {
        "machine": info,
        "args": vars(args),
        "database": name,
        "page": {},
        "metrics": {},
    }
    secret_key = secrets.token_urlsafe(48)
    app = server = engine = states = None
    try:
        engine = db.make_engine(_url(name))
        db.upgrade(engine)
        app = _app(_url(name), secret_key)
        runtime = app_runtime(app)
        workspace_id, config_id = _configuration(app)
        now = dt.datetime.now(dt.UTC)
        results["data"] = _prepare_data(engine, app, workspace_id, config_id, args, now)
        now = dt.datetime.now(dt.UTC)
        results["measurement"] = _measure_once(app, config_id, now)
        print(f"measurement: {results['measurement']}", flush=True)
        if args.seed_only:
            print(f"seeded and kept: --database {name}", flush=True)
            dump_json(args.json, results)
            return 0
        results["today"] = _today_shape(app, config_id, now)
        print(f"today: {results['today']}", flush=True)
        key = _person_and_key(app, workspace_id)
        today = now.date()
        first = today - dt.timedelta(days=args.days - 1)
        states = States(runtime, config_id, now)
        server = Server(name, secret_key, args.workers, args.threads)
        print(f"serving at {server.url}; load {loadavg()}", flush=True)
        results["load_before_metrics"] = loadavg()
        through_today = f"?from={first}&to={today}"
        _metrics_reads(
            server,
            key,
            config_id,
            args,
            {
                "through_today": (through_today, states.normal),
                "through_today_yesterday_from_hours": (through_today, states.yesterday_from_hours),
                "through_today_whole_days": (through_today, states.whole_days),
                "through_yesterday": (f"?from={first}&to={states.yesterday}", states.normal),
            },
            results,
        )
        results["load_before_page"] = loadavg()
        _browser_loads(
            server,
            config_id,
            {
                "default": ("", states.normal, args.loads),
                "default_yesterday_from_hours": ("", states.yesterday_from_hours, args.loads),
                f"{args.days}_days": (f"?from={first}&to={today}", states.normal, args.loads),
                "overview": ("/dashboard/", states.normal, args.loads),
                "default_without_stored_evaluation": ("", states.no_evaluation, args.slow_loads),
                "default_as_before": ("", states.as_before, args.slow_loads),
            },
            args,
            results,
        )
        states.normal()
        results["load_at_end"] = loadavg()
        print(f"load at end: {results['load_at_end']}")
        dump_json(args.json, results)
    finally:
        if server is not None:
            server.stop()
        if states is not None:
            states.normal()  # what was set aside goes back
        if app is not None:
            app_runtime(app).engine.dispose()
        if engine is not None:
            engine.dispose()
        if not args.database and not args.keep and not args.seed_only:
            _drop_database(admin, name)
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
