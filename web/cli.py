"""The ``hpe`` command line: serve, worker, db, workspace, keys, user, survey, plugins,
openapi."""

from __future__ import annotations

import json
import secrets
import sys
import time

import click
from dotenv import load_dotenv
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from hpe_core import __version__
from hpe_core.results import Lift, PolicyEstimate, Summary, read_answer
from hpe_core.store.models import User
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import workspaces
from plugins.cli import app_or_exit, app_session, use_app_factory
from web import create_app
from web.decide_cli import decide
from web.export_cli import export
from web.extensions import app_runtime, app_state

# Plugin commands (plugins.cli.app_session) build the app with it.
use_app_factory(create_app)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpe")
def cli():
    """Hyper-Personalization Engine.

    Configuration comes from HPE_* environment variables (and a .env file in the current
    directory): HPE_DATABASE_URL (default: SQLite in ./instance), HPE_REDIS_URL (default:
    none, jobs run inline), HPE_SECRET_KEY, ...
    """


# --- serve -----------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option("--workers", default=2, show_default=True, type=int, help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option("--timeout", default=60, show_default=True, type=int, help="Request timeout (s).")
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request to stdout (costs ~5% CPU per decision).",
)
@click.option(
    "--server",
    type=click.Choice(["gunicorn", "granian"]),
    default="gunicorn",
    show_default=True,
    help="The WSGI server (docs/decisions_at_scale.md says how they differ).",
)
def serve(host, port, workers, threads, timeout, access_log, server):
    """Run the API with a production WSGI server (gunicorn or Granian)."""
    from gunicorn.app.base import BaseApplication

    from hpe_core.runtime import default_instance_path
    from plugins import operator_metrics

    # Every worker's counters in one folder, emptied now: GET /metrics adds them up.
    operator_metrics.prepare_multiprocess_dir(default_instance_path(), empty=True)
    # Migrate (embedded default) or check the schema once, before forking; this app only
    # checks, so it starts no background threads and its connections are closed before fork.
    app = app_or_exit(INLINE_SWEEPER=False)
    base_url = (app.config.get("PUBLIC_URL") or f"http://{host}:{port}").rstrip("/")
    setup_token = _first_run_token(app)
    app_runtime(app).engine.dispose()

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", timeout)
            if access_log:
                self.cfg.set("accesslog", "-")
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("child_exit", _child_exit)
            # gunicorn >= 25.1 opens a control socket for `gunicornc` in $XDG_RUNTIME_DIR or
            # ~/.gunicorn/. HPE is stopped with SIGTERM and redeployed by restarting the
            # service (docs/operations.md), never through gunicornc: write nothing to $HOME.
            # Older gunicorns (setup.cfg allows >= 22) have no such setting and no socket.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self):
            # Each worker builds its own app after the fork: engines and pools are per process.
            from web import create_app

            return create_app()

    click.echo(f"HPE {__version__} serving on http://{host}:{port}")
    click.echo(f"  Dashboard: {base_url}/dashboard/")
    click.echo(f"  API docs:  {base_url}/api/v1/docs")
    if setup_token:
        click.echo(
            "  First run: nobody can sign in yet. Open this one-time link to create the first "
            f"admin and workspace:\n    {base_url}/dashboard/setup/{setup_token}"
        )
    if server == "granian":
        from web import serving

        if not serving.granian_available():
            raise click.ClickException("Granian is not installed: pip install 'hpe[granian]'.")
        serving.granian_server(
            host=host, port=port, workers=workers, threads=threads, access_log=access_log
        ).serve()
        return
    from web.outages import json_gunicorn_errors

    json_gunicorn_errors()  # gunicorn's own 400/414/431 answers in the JSON error shape
    _Server().run()


def _child_exit(_server, worker) -> None:
    """gunicorn's hook when a worker exits: its live metrics go with it."""
    from plugins import operator_metrics

    operator_metrics.mark_process_dead(worker.pid)


def _first_run_token(app) -> str | None:
    """A one-time setup link's token while nobody exists (the Jupyter token-URL pattern)."""
    from hpe_core.tenancy import people

    with app.app_context():
        session = app_runtime(app).sessions()
        try:
            token = people.issue_setup_token(session)
            session.commit()
            return token
        finally:
            session.close()


# --- worker --------------------------------------------------------------------------


@cli.command()
@click.option("--processes", default=1, show_default=True, type=int, help="Worker processes.")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
def worker(processes, burst):
    """Run RQ workers: learn closed reward windows (needs HPE_REDIS_URL).

    Each process also runs RQ's scheduler (interval retries) and a sweeper that enqueues
    configurations with closed windows. Run as many as you like, on any machines: learning
    for one configuration is serialized, different configurations learn in parallel.
    """
    import logging

    from hpe_core.runtime import default_instance_path
    from plugins import operator_metrics
    from worker import main as worker_main
    from worker.boot import build_runtime

    # Counted with the API's processes on this machine (GET /metrics adds the folder up).
    operator_metrics.prepare_multiprocess_dir(default_instance_path(), empty=False)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from hpe_core import log_format
    from hpe_core.runtime import load_settings

    log_format.configure(load_settings().get("LOG_FORMAT"))  # json: one object a line
    try:  # no Flask app: a worker runs on the shared runtime alone
        runtime = build_runtime()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    if runtime.jobs.name != "rq":
        runtime.close()
        raise click.ClickException(
            "HPE_REDIS_URL is not set: without Redis, learning runs inside `hpe serve`."
        )
    if processes > 1:
        runtime.close()  # each worker process builds its own
        worker_main.run_many(processes, burst=burst)
    else:
        worker_main.run(runtime, burst=burst)


# --- simulate ------------------------------------------------------------------------

#: ``hpe simulate --scenario`` (hpe_core.scenarios.SCENARIOS, spelt out: the command line
#: is built without importing the simulator).
SCENARIO_NAMES = ("stable", "shift", "new-offer", "channels")


@cli.command()
@click.option("--url", help="A running HPE (e.g. http://127.0.0.1:8000); default: start one.")
@click.option("--key", help="A secret API key for --url (default: a new simulator workspace).")
@click.option("--decisions", default=30000, show_default=True, type=int)
@click.option("--clients", default=2, show_default=True, type=int, help="Concurrent clients.")
@click.option("--holdout", default=10.0, show_default=True, type=float, help="Holdout percent.")
@click.option("--wait-seconds", default=2, show_default=True, type=int, help="Reward window.")
@click.option("--algorithm", type=click.Choice(["squarecb", "epsilon", "bag", "cover"]))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--keep", is_flag=True, help="Keep the throwaway instance (without --url).")
@click.option(
    "--scenario",
    type=click.Choice(SCENARIO_NAMES),
    help="An audience that changes mid-run: shift (preferences move halfway), new-offer (a "
    "better offer is added halfway), channels (people prefer different channels; the "
    "engine chooses it); stable is the default audience. Prints the rates before and "
    "after the change beside the oracle.",
)
def simulate(url, key, decisions, clients, holdout, wait_seconds, algorithm, seed, keep, scenario):
    """Drive HPE with a simulated audience and print treatment vs holdout lift.

    Without --url, a throwaway HPE is started in-process for the run: its own SQLite
    database in a new temporary folder, jobs inline, deleted at the end (--keep keeps
    it). Your database (./instance, HPE_DATABASE_URL) and Redis are never touched.
    """
    import uuid

    from hpe_core import scenarios
    from web import simulate as sim

    world = None if scenario is None else scenarios.Scenario.make(scenario, decisions, seed=seed)

    app = None
    if url is None:
        instance = sim.ThrowawayInstance()
        fate = "kept at the end: --keep" if keep else "deleted at the end; --keep keeps it"
        click.echo(f"Simulating on a throwaway instance in {instance.folder} ({fate}).")
        # On the context's close: runs after an error or Ctrl-C too.
        click.get_current_context().call_on_close(lambda: _close_throwaway(instance, keep))
        url = instance.start(app_or_exit)
        app, key = instance.app, instance.key
        click.echo(f"Started HPE at {url} (workspace {instance.workspace_id}).")
    elif keep:
        raise click.UsageError("--keep keeps the throwaway instance; with --url there is none.")
    elif not key:
        raise click.UsageError("--key is required with --url.")
    client = sim.Client(url, key)
    config_id = sim.create_config(
        client, holdout=holdout, wait_seconds=wait_seconds, algorithm=algorithm, scenario=world
    )
    click.echo(f"Configuration {config_id}: {decisions} decisions from {clients} clients.")
    if world is not None and world.change_at is not None:
        click.echo(f"Scenario {world.name}: the audience changes at decision {world.change_at}.")

    def progress(count, tally):
        lift = tally.lift()
        click.echo(
            f"{count:>7} decisions  treatment {tally.rate('treatment'):.2%}  "
            f"holdout {tally.rate('holdout'):.2%}  lift "
            + (f"{lift:+.0%}" if lift is not None else "n/a")
        )

    started = time.monotonic()
    tally = sim.run(
        url,
        key,
        config_id,
        decisions=decisions,
        clients=clients,
        seed=seed,
        progress=progress,
        progress_every=max(1000, decisions // 10),
        scenario=world,
    )
    elapsed = time.monotonic() - started
    version = sim.wait_for_learning(client, config_id, timeout=5 * wait_seconds + 10)
    try:
        _status, metrics = client.call(
            "GET", f"/api/v1/041-hyper-personalization-engine/{config_id}/metrics"
        )
    except (OSError, ValueError) as exc:  # the run's own tally below is still valid
        click.echo(f"(metrics endpoint unavailable: {exc})", err=True)
        metrics = None
    lift = tally.lift()
    click.echo("")
    click.echo(
        f"Done in {elapsed:.0f} s ({decisions / elapsed:.0f} decisions/s), model v{version}."
    )
    click.echo(
        f"Engagement (clicks): treatment {tally.rate('treatment'):.2%} "
        f"({tally.decisions['treatment']} decisions), holdout {tally.rate('holdout'):.2%} "
        f"({tally.decisions['holdout']} decisions)."
    )
    summary = _summary_of(metrics)
    _echo_lift(lift, tally.true_lift(), None if summary is None else summary.lift)
    if world is not None:
        _echo_scenario(world, tally)
    if app is not None:
        # The embedded server's measurement pass runs every few minutes: run one now so
        # this printout shows recommendations for the run just made.
        from worker import jobs

        with app.app_context():
            session = app_runtime(app).sessions()
            try:
                jobs.run_for_config(
                    "measure", session, uuid.UUID(config_id), app_runtime(app).measurement
                )
            finally:
                session.close()
    _echo_measurement(client, config_id, summary)


@cli.command()
@click.option("--workspace", "workspace_id", default="demo", show_default=True)
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 366))
@click.option("--per-day", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--email", help="Also create this person as the demo workspace's admin.")
@click.option("--seed", default=7, show_default=True, type=int)
def demo(workspace_id, days, per_day, email, seed):
    """Fill a demo workspace with DAYS days of simulated history, to explore the dashboard.

    A real configuration meets a simulated audience through HPE's own services, in
    simulated time: decisions, outcomes, learning day by day, one settings change, then
    the measurement pass. Runs on your database (./instance or HPE_DATABASE_URL).
    """
    from web import demo as demo_data

    app = app_or_exit(INLINE_SWEEPER=False)

    def progress(day, total):
        if day == total or day % max(1, total // 10) == 0:
            click.echo(f"  day {day}/{total}")

    click.echo(f"Simulating {days} days x {per_day} decisions in workspace {workspace_id}...")
    with app.app_context():
        report = demo_data.fill(
            app_runtime(app),
            workspace_id=workspace_id,
            days=days,
            per_day=per_day,
            seed=seed,
            email=email,
            progress=progress,
        )
    click.echo(f"Configuration {report.config_id}: {report.decisions} decisions.")
    click.echo(f"Dashboard: /dashboard/configs/{report.config_id}")
    if report.password:
        click.echo(f"Sign in as {report.email} with this password (shown only once):", err=True)
        click.echo(report.password)
    else:
        click.echo(f"API key for workspace {workspace_id} (shown only once):", err=True)
        click.echo(report.key)


def _close_throwaway(instance, keep: bool) -> None:
    try:
        instance.close(keep=keep)
    except OSError as exc:
        click.echo(f"Could not delete the throwaway instance {instance.folder}: {exc}", err=True)
        return
    if keep:
        line = f"Kept the throwaway instance in {instance.folder}: serve it with "
        line += f"HPE_DATABASE_URL={instance.database_url} hpe serve"
        if instance.key:
            line += f" (workspace {instance.workspace_id}, API key {instance.key})"
        click.echo(line + ".")


def _echo_scenario(world, tally) -> None:
    """The scenario's phases: expected click rates (the true probabilities of what was
    served) beside the oracle and random choice on the same touchpoints."""
    from hpe_core import scenarios

    result = scenarios.report(world, tally.served)
    click.echo(f"Scenario {world.name}, expected click rates (the simulator's truth):")
    for phase, row in result["phases"].items():
        cells = "  ".join(
            f"{name} {row[name]:.2%}" if row[name] is not None else f"{name} n/a"
            for name in ("treatment", "holdout", "oracle", "random")
        )
        share = (
            f"  ({row['treatment'] / row['oracle']:.0%} of the oracle)"
            if row["treatment"] and row["oracle"]
            else ""
        )
        click.echo(f"  {phase:16} {cells}{share}")
    for window in result.get("new_offer", [])[:6]:
        click.echo(
            f"  new offer, decisions {window['from']}-{window['to']} after it was added: "
            f"{window['share']:.1%} of treatment (oracle {window['oracle_share']:.1%})"
        )


def _summary_of(metrics: object) -> Summary | None:
    """The metrics answer's summary, typed; None when the endpoint gave none."""
    if isinstance(metrics, dict) and isinstance(metrics.get("summary"), dict):
        return read_answer(Summary, metrics["summary"])
    return None


def _echo_lift(measured: float | None, truth: float | None, lift: Lift | None) -> None:
    line = "Lift: " + (f"{measured:+.1%}" if measured is not None else "n/a")
    interval = lift is not None and lift.ci_low is not None
    if interval:
        line += f" (95% CI {lift.ci_low:+.1%} to {lift.ci_high:+.1%}, metrics API)"
    click.echo(line)
    if truth is not None:
        covered = ""
        if interval:
            inside = lift.ci_low <= truth <= lift.ci_high
            covered = ", inside the interval" if inside else ", OUTSIDE the interval"
        click.echo(f"True lift of this run (simulator's probabilities): {truth:+.1%}{covered}.")


def _echo_measurement(client, config_id: str, summary: Summary | None) -> None:
    """ROI, off-policy estimates and recommendations, as the API reports them."""
    base = f"/api/v1/041-hyper-personalization-engine/{config_id}"
    if summary is not None and summary.roi is not None:
        roi = summary.roi_interval
        line = f"ROI: {summary.roi:+.0%}"
        if roi.ci_low is not None:
            line += f" (95% CI {roi.ci_low:+.0%} to {roi.ci_high:+.0%})"
        line += f" on treatment cost {roi.cost:.2f}; incremental revenue "
        line += f"{roi.incremental_revenue or 0:.2f}"
        if roi.incremental_revenue_ci_low is not None:
            line += (
                f" (95% CI {roi.incremental_revenue_ci_low:.2f} to "
                f"{roi.incremental_revenue_ci_high:.2f})"
            )
        click.echo(line + ".")
    status, evaluation = client.call("GET", f"{base}/evaluation")
    if status == 200:
        for name, answer in evaluation["policies"].items():
            estimate = read_answer(PolicyEstimate, answer)
            if estimate.dr is not None:
                click.echo(
                    f"Off-policy ({name}): DR {estimate.dr:.4f} "
                    f"[{estimate.ci_low:.4f}, {estimate.ci_high:.4f}], "
                    f"IPS {estimate.ips:.4f}, SNIPS {estimate.snips:.4f}, n {estimate.n}"
                )
    status, answer = client.call("GET", f"{base}/recommendations")
    if status == 200:
        found = answer["recommendations"]
        click.echo(f"Recommendations: {len(found)} open.")
        for item in found:
            click.echo(f"  [{item['severity']}] {item['title']} (id {item['id']})")


# --- db --------------------------------------------------------------------------------


#: The schema commands sign nothing: a throwaway key lets them run where HPE_SECRET_KEY is
#: not set (a deploy step), and never generates the instance folder's key.
_SIGNS_NOTHING = secrets.token_urlsafe(48)


@cli.group()
def db():
    """Database schema migrations (Alembic)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision):
    """Migrate the database to the newest schema (or --revision)."""
    from hpe_core.store import db as hpe_db

    app = app_or_exit(AUTO_MIGRATE=False, SCHEMA_CHECK=False, SECRET_KEY=_SIGNS_NOTHING)
    engine = app_runtime(app).engine
    hpe_db.upgrade(engine, revision)
    click.echo(f"Database at revision {hpe_db.current_revision(engine)}.")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision):
    """Migrate the database down to REVISION ('base' empties it)."""
    from hpe_core.store import db as hpe_db

    app = app_or_exit(AUTO_MIGRATE=False, SCHEMA_CHECK=False, SECRET_KEY=_SIGNS_NOTHING)
    engine = app_runtime(app).engine
    hpe_db.downgrade(engine, revision)
    click.echo(f"Database at revision {hpe_db.current_revision(engine) or 'base'}.")


@db.command("current")
def db_current():
    """Show the database's schema revision and the newest one."""
    from hpe_core.store import db as hpe_db

    app = app_or_exit(AUTO_MIGRATE=False, SCHEMA_CHECK=False, SECRET_KEY=_SIGNS_NOTHING)
    engine = app_runtime(app).engine
    click.echo(f"current: {hpe_db.current_revision(engine) or 'none'}")
    click.echo(f"head:    {hpe_db.head_revision()}")


# --- workspaces and keys ---------------------------------------------------------------


@cli.group()
def workspace():
    """Workspaces (tenants)."""


@workspace.command("create")
@click.argument("workspace_id")
@click.option("--name", help="Display name (default: the id).")
def workspace_create(workspace_id, name):
    """Create a workspace and print its first secret API key (the last line)."""
    with app_session() as (_app, session):
        workspaces.create_workspace(session, workspace_id, name)
        row, key = workspaces.create_key(session, workspace_id, name="initial")
    click.echo(f"Created workspace {workspace_id}. Its API key (shown only once):", err=True)
    click.echo(key)


@workspace.command("list")
def workspace_list():
    """List workspaces."""
    with app_session() as (_app, session):
        for ws in workspaces.list_workspaces(session):
            click.echo(f"{ws.id}\t{ws.name}\t{ws.created_at:%Y-%m-%d %H:%M}")


@cli.group()
def keys():
    """API keys: create, list, revoke."""


@keys.command("create")
@click.argument("workspace_id")
@click.option("--name", default="", help="A label, e.g. 'braze-prod'.")
@click.option(
    "--kind",
    type=click.Choice(["secret", "publishable"]),
    default="secret",
    show_default=True,
    help="publishable keys may only request decisions and send outcomes (for web pages).",
)
def keys_create(workspace_id, name, kind):
    """Create a key for WORKSPACE_ID and print it (the last line)."""
    with app_session() as (_app, session):
        _row, key = workspaces.create_key(session, workspace_id, name=name, kind=kind)
    click.echo(f"New {kind} key for {workspace_id} (shown only once):", err=True)
    click.echo(key)


@keys.command("list")
@click.option("--workspace", "workspace_id", help="Only this workspace's keys.")
def keys_list(workspace_id):
    """List keys: prefix, workspace, kind, name, created, revoked. Never the secrets."""
    with app_session() as (_app, session):
        rows = workspaces.list_keys(session, workspace_id)
        click.echo("prefix\tworkspace\tkind\tname\tcreated\trevoked")
        for row in rows:
            revoked = f"{row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "-"
            click.echo(
                f"{row.prefix}\t{row.workspace_id}\t{row.kind}\t{row.name or '-'}\t"
                f"{row.created_at:%Y-%m-%d %H:%M}\t{revoked}"
            )


@keys.command("revoke")
@click.argument("prefix")
def keys_revoke(prefix):
    """Revoke the key that starts with PREFIX (as shown by `hpe keys list`)."""
    with app_session() as (_app, session):
        row = workspaces.revoke_key(session, prefix)
        click.echo(f"Revoked {row.prefix} ({row.workspace_id}).")


# --- people ---------------------------------------------------------------------------


@cli.group()
def user():
    """People who sign in to the dashboard (API keys stay for machines)."""


@user.command("create")
@click.argument("email")
@click.option("--workspace", "workspace_id", required=True, help="The workspace they join.")
@click.option(
    "--role",
    type=click.Choice([role.value for role in Role]),
    default=Role.EDITOR.value,
    show_default=True,
    help="viewer reads; editor also changes configurations; admin also manages people and keys.",
)
@click.option("--name", default="", help="Display name.")
def user_create(email, workspace_id, role, name):
    """Create a person (or add them to another workspace) and print a generated password
    (the last line; an existing person keeps their password and this prints nothing)."""
    from hpe_core.tenancy import people

    with app_session() as (app, session):
        existing = session.scalar(select(User).where(User.email == people.normalize_email(email)))
        _user, password = people.create_user(
            session,
            email,
            workspace_id=workspace_id,
            role=Role(role),
            name=name,
            password_cost=app.config["PASSWORD_HASH_COST"],
        )
    if existing is not None:
        click.echo(f"Added {email} to {workspace_id} as {role}; their password is unchanged.")
        return
    click.echo(f"Created {email} ({role} in {workspace_id}). Password (shown only once):", err=True)
    click.echo(password)


@user.command("list")
@click.option("--workspace", "workspace_id", help="Only this workspace's people.")
def user_list(workspace_id):
    """List people: email, workspace, role, last sign-in, disabled."""
    from hpe_core.tenancy import people

    with app_session() as (_app, session):
        click.echo("email\tworkspace\trole\tlast sign-in\tdisabled")
        for person, workspace, role in people.list_people(session, workspace_id):
            last = f"{person.last_sign_in_at:%Y-%m-%d %H:%M}" if person.last_sign_in_at else "-"
            disabled = f"{person.disabled_at:%Y-%m-%d %H:%M}" if person.disabled_at else "-"
            click.echo(f"{person.email}\t{workspace}\t{role}\t{last}\t{disabled}")


@user.command("disable")
@click.argument("email")
def user_disable(email):
    """Disable a person: no more sign-ins; their open sessions end at once."""
    from hpe_core.tenancy import people

    with app_session() as (_app, session):
        person = people.disable_user(session, email)
    click.echo(f"Disabled {person.email}.")


@user.command("reset-password")
@click.argument("email")
def user_reset_password(email):
    """Give a person a new generated password (the last line); their sessions end."""
    from hpe_core.tenancy import people

    with app_session() as (app, session):
        password = people.reset_password(
            session, email, password_cost=app.config["PASSWORD_HASH_COST"]
        )
    click.echo(f"New password for {email} (shown only once):", err=True)
    click.echo(password)


@cli.group()
def survey():
    """The satisfaction survey (SC-003) people answer in the dashboard."""


@survey.command("report")
@click.option("--workspace", "workspace_id", help="Only this workspace's answers.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON (the API's shape).")
def survey_report(workspace_id, as_json):
    """Answers, mean score, share of 4 or 5, distribution and months (all workspaces
    unless --workspace)."""
    from hpe_core.tenancy import survey as survey_service

    with app_session() as (_app, session):
        if workspace_id is not None:
            workspaces.get_workspace(session, workspace_id)
        report = survey_service.report(session, workspace_id)
    if as_json:
        click.echo(json.dumps(report.as_dict(), sort_keys=True))
        return
    click.echo(f"Satisfaction survey, {workspace_id or 'all workspaces'}:")
    if not report.answers:
        click.echo(f"no answer yet ({report.dismissals} 'not now').")
        return
    bounds = report.mean_interval
    interval = f" (95% interval {bounds.low:.2f}-{bounds.high:.2f})" if bounds else ""
    verdict = {
        "met": "meets SC-003's target of 4",
        "missed": "below SC-003's target of 4",
    }.get(report.verdict, "around SC-003's target of 4 (the interval spans it)")
    click.echo(f"mean {report.mean:.2f} / 5{interval}: {verdict}")
    click.echo(
        f"{report.satisfied} of {report.answers} answers gave 4 or 5 "
        f"({report.share_satisfied:.0%}), from {report.people} people; "
        f"{report.dismissals} 'not now'"
    )
    click.echo("score\tanswers")
    for score, answers in report.distribution.items():
        click.echo(f"{score}\t{answers}")
    click.echo("month\tanswers\tmean\tgave 4 or 5")
    for row in report.by_month:
        click.echo(f"{row.month}\t{row.answers}\t{row.mean:.2f}\t{row.share_satisfied:.0%}")


# --- plugins and the API document ------------------------------------------------------


@cli.command()
def plugins():
    """List loaded plugins with their versions and hooks, then any channel a plugin
    provides that is not available, and why (e.g. its settings are missing)."""
    from plugins.manager import describe_plugins, unavailable_channels

    runtime = app_runtime(app_or_exit())
    for row in describe_plugins(runtime.pm):
        click.echo(
            f"{row['name']}\t{row['distribution']} {row['version']}\t{', '.join(row['hooks'])}"
        )
    left_out = unavailable_channels(runtime.pm, runtime.settings["PLUGINS"], runtime.channels)
    for name, reason in sorted(left_out.items()):
        click.echo(f"channel {name} not available: {reason}")


@cli.command()
@click.option("--output", "-o", type=click.File("w"), default="-", help="File (default stdout).")
def openapi(output):
    """Print the OpenAPI document."""
    app = app_or_exit()
    json.dump(app_state(app).api.spec.to_dict(), output, indent=2, sort_keys=True)
    output.write("\n")


cli.add_command(export)  # hpe export decisions|metrics (web/export_cli.py)
cli.add_command(decide)  # hpe decide --config ID --input users.ndjson (web/decide_cli.py)


def main() -> None:
    load_dotenv(".env")  # explicit path: never search parent folders for someone else's .env
    add_plugin_commands_from_env()
    try:
        cli(prog_name="hpe")
    except sa_exc.OperationalError as exc:
        # Operators get one line saying what is wrong, not a driver traceback.
        click.echo(f"Error: cannot reach the database: {exc.orig or exc}".rstrip(), err=True)
        sys.exit(1)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as exc:
        click.echo(f"Error: HPE_DATABASE_URL is not a usable database URL: {exc}", err=True)
        sys.exit(1)


def add_plugin_commands_from_env() -> None:
    """Mount the commands plugins register (``hpe_register_commands``) on ``hpe``."""
    from plugins.cli import add_plugin_commands
    from plugins.manager import make_plugin_manager, settings_from_env

    add_plugin_commands(cli, make_plugin_manager(**settings_from_env()))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
