"""Outcomes learned per second by one worker, beside raw Vowpal Wabbit on the same examples.

One run (PostgreSQL + Redis, a fresh database):

1. creates a configuration with the simulated offers (``web.simulate.simulation_settings``,
   14 actions, or ``--actions N`` synthetic ones) and inserts ``--examples`` closed
   decisions (uniform logging policy, reward window already closed) plus the outcomes the
   simulator draws for them, with SQLAlchemy Core;
2. raw VW: ``vowpalwabbit.Workspace(<same args>)`` learns the same examples, pre-built as
   text lines, with ``Workspace.learn(list_of_lines)`` (timed alone: no text building);
3. in-process: ``hpe_core.learn.learning.learn_all_closed`` on them (exactly the worker's job
   body), timed end to end and by phase: the learn step (``Learner.learn_batch``), model
   save (``Learner.save`` + the version row), and the rest (DB reads, featurization,
   ``UPDATE`` of the decisions, commit);
4. a real worker: the decisions are reset to unlearned, a learn job is enqueued and
   ``hpe worker --burst`` runs it; the job's duration comes from RQ's log lines, the
   process wall time (incl. Python start-up) from the outside;
5. raw VW again (the machine is shared: before/after brackets the noise).

It also checks that the model learned by HPE predicts exactly what the raw-VW model
predicts (same examples, same order, same arguments).

Usage::

    python bench/learning_rate.py --examples 20000 [--actions 14] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    Deployment,
    dump_json,
    loadavg,
    print_header,
    shared_line,
)
from hpe_core import simulation
from hpe_core.decide.features import ActionCatalog, decision_features  # noqa: E402
from hpe_core.learn import rewards
from web.extensions import app_runtime

_SIM_RNG = "hpe-bench-learning"


def build_rows(config, settings, count: int, seed: int):
    """Closed decisions and their outcomes, plus the (shared, lines, index, reward, p) tuples
    the learner must see for them, in learning order."""
    actions = [a["id"] for a in settings["actions"]]
    offers = [simulation.OFFERS_BY_ID.get(a) for a in actions]
    population = simulation.Population(seed=seed)
    rng = random.Random(f"{_SIM_RNG}-{seed}")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    probability = 1.0 / len(actions)
    decisions, outcomes, examples = [], [], []
    catalog = ActionCatalog(settings["actions"])
    lines = catalog.lines(actions)
    from hpe_core.tenancy.settings_types import Settings

    reward_settings = Settings.of(settings).reward
    for i, touch in enumerate(population.touchpoints(count, seed=seed)):
        index = rng.randrange(len(actions))
        created = start + dt.timedelta(milliseconds=i)
        decision_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        decisions.append(
            {
                "id": decision_id,
                "workspace_id": config.workspace_id,
                "config_id": config.id,
                "user_id": touch.user.user_id,
                "channel": touch.channel,
                "context": touch.context,
                # What decide() stores since migration 0004: the line it predicted with.
                "features": decision_features(touch.channel, touch.context),
                "eligible": actions,
                "probabilities": [probability] * len(actions),
                "action_id": actions[index],
                "probability": probability,
                "variant": "treatment",
                "policy": "model",
                "model_version": 0,
                "model_action_id": actions[0],
                "source": "live",
                "created_at": created,
                "window_closes_at": created + dt.timedelta(seconds=2),
            }
        )
        offer = offers[index] or simulation.OFFERS[index % len(simulation.OFFERS)]
        events = simulation.outcomes(touch.user, offer, touch.channel, rng)
        for n, event in enumerate(events):
            outcomes.append(
                {
                    "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                    "workspace_id": config.workspace_id,
                    "config_id": config.id,
                    "decision_id": decision_id,
                    "user_id": touch.user.user_id,
                    "type": event["type"],
                    "value": event.get("value"),
                    "occurred_at": created + dt.timedelta(milliseconds=100 + n),
                    "received_at": created + dt.timedelta(milliseconds=100 + n),
                    "idempotency_key": f"bench:{decision_id}:{n}",
                    "late": False,
                    "source": "api",
                }
            )
        if events:
            reward = rewards.combine(reward_settings, [(e["type"], e.get("value")) for e in events])
        else:
            reward = reward_settings.default
        shared = shared_line(touch.channel, touch.context)
        examples.append((shared, lines, index, reward, probability))
    return decisions, outcomes, examples


def raw_texts(examples) -> list[list[str]]:
    """The same examples as VW text, one list of lines per decision (label on the chosen)."""
    texts = []
    for shared, lines, index, reward, probability in examples:
        example = [shared, *lines]
        example[index + 1] = f"0:{-float(reward)!r}:{float(probability)!r} " + lines[index]
        texts.append(example)
    return texts


def raw_vw_learn(args: str, texts) -> dict:
    import vowpalwabbit

    vw = vowpalwabbit.Workspace(args)
    t0 = time.perf_counter()
    for example in texts:
        vw.learn(example)
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "rate": len(texts) / elapsed, "vw": vw}


class Phases:
    """Wall time spent in wrapped callables (the learn job's phases)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._undo = []

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def wrap_execute(self, session) -> None:
        """Time ``session.execute`` by statement kind (the bulk UPDATE vs the reads)."""
        original = session.execute

        def timed(statement, *args, **kwargs):
            label = f"session.execute: {type(statement).__name__}"
            t0 = time.perf_counter()
            try:
                return original(statement, *args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0

        session.execute = timed
        self._undo.append((session, "execute", original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


def interleaved(dep, engine, sessions, learning, config_id, vw_args, texts, examples, args):
    """Raw VW and HPE learning the same batches in turns, each timed alone.

    The decisions are reset to unlearned; then, batch after batch of
    ``learning.BATCH_SIZE`` (the order learning reads them in), raw VW learns the batch's
    text with ``Workspace.learn`` on one workspace that keeps learning, and HPE runs
    ``learn_closed`` (one learn run: read, learn, save the model version, mark,
    commit) on one session, as ``learn_all_closed`` (the job) runs each batch; which of
    the two goes first alternates. Wall time, this process's CPU time, and the CPU time of
    the benchmark database's PostgreSQL backends during HPE's run (its reads and UPDATE)
    are taken for each.
    """
    import statistics

    import vowpalwabbit

    from bench.common import CpuMeter, postgres_backends
    from hpe_core import collector

    reset_learning(engine, config_id)
    learning._warm_learners.take(config_id, None, vw_args).close()  # start from nothing
    size = learning.BATCH_SIZE
    batches = [texts[i : i + size] for i in range(0, len(texts), size)][: args.rounds]
    raw = vowpalwabbit.Workspace(vw_args)
    rounds = []
    print(f"\ninterleaved rounds of {size} examples (raw VW learn vs one HPE learn run)")
    with sessions() as session:
        session.connection()  # its backend exists before the meter starts
        for number, batch in enumerate(batches):
            out = {"round": number + 1, "load": loadavg()}
            for name in ("raw", "hpe") if number % 2 == 0 else ("hpe", "raw"):
                meter = CpuMeter({"postgres": postgres_backends(dep.database)}).start()
                cpu0, t0 = time.process_time(), time.perf_counter()
                if name == "raw":
                    for example in batch:
                        raw.learn(example)
                    count = len(batch)
                else:
                    # One learn run as learn_all_closed (the job) runs each of its batches.
                    with collector.paused():
                        report = learning.learn_closed(session, config_id)
                    count = report.learned
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                meter.stop()
                out[name] = {
                    "examples": count,
                    "per_second": count / wall,
                    "per_cpu_second": count / cpu,
                    "postgres_cpu": meter.used["postgres"],
                    "per_cpu_second_with_postgres": count / (cpu + meter.used["postgres"]),
                }
            hpe, vw = out["hpe"], out["raw"]
            out["ratio"] = hpe["per_second"] / vw["per_second"]
            out["cpu_ratio"] = hpe["per_cpu_second"] / vw["per_cpu_second"]
            out["cpu_ratio_with_postgres"] = (
                hpe["per_cpu_second_with_postgres"] / vw["per_cpu_second"]
            )
            rounds.append(out)
            print(
                f"  round {number + 1}: raw VW {vw['per_second']:,.0f}/s "
                f"({vw['per_cpu_second']:,.0f}/CPU-s), HPE {hpe['per_second']:,.0f}/s "
                f"({hpe['per_cpu_second']:,.0f}/CPU-s; with its PostgreSQL backend "
                f"{hpe['per_cpu_second_with_postgres']:,.0f}/CPU-s): {out['ratio']:.2f}x wall, "
                f"{out['cpu_ratio']:.2f}x CPU, {out['cpu_ratio_with_postgres']:.2f}x CPU with "
                f"PostgreSQL; load {out['load']}"
            )
    raw.finish()
    median = {
        key: statistics.median(r[key] for r in rounds)
        for key in ("ratio", "cpu_ratio", "cpu_ratio_with_postgres")
    }
    print(
        f"  median of {len(rounds)} rounds: {median['ratio']:.2f}x wall, "
        f"{median['cpu_ratio']:.2f}x CPU, {median['cpu_ratio_with_postgres']:.2f}x CPU with "
        "PostgreSQL (target >= 1.0x)"
    )
    return {"rounds": rounds, "median": median}


def reset_learning(engine, config_id) -> None:
    from sqlalchemy import delete, update

    from hpe_core.store.models import Activity, Decision, ModelVersion

    with engine.begin() as conn:
        conn.execute(
            update(Decision)
            .where(Decision.config_id == config_id)
            .values(learned_at=None, reward=None, engaged=None)
        )
        conn.execute(delete(ModelVersion).where(ModelVersion.config_id == config_id))
        conn.execute(delete(Activity).where(Activity.type == "model.updated"))


def learned_count(engine, config_id) -> int:
    from sqlalchemy import func, select

    from hpe_core.store.models import Decision

    with engine.connect() as conn:
        return conn.scalar(
            select(func.count()).where(
                Decision.config_id == config_id, Decision.learned_at.is_not(None)
            )
        )


_JOB_DONE = re.compile(
    r"Successfully completed worker\.jobs\.learn\(.*?\) job in (\d+):(\d\d):(\d\d(?:\.\d+)?)s"
)


def job_durations(log_text: str) -> list[float]:
    """Durations of the learn jobs RQ completed, from its 'Successfully completed' lines."""
    return [int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in _JOB_DONE.findall(log_text)]


def alternatives(sessions, config_id, count: int) -> dict:
    """Time what the learn job does now against a leaner way to do the same, on the same
    rows (nothing is committed): evidence for the suggested changes.

    - reading a batch of closed decisions: ORM entities (as learn_closed does) vs a Core
      select of only the columns the learner needs;
    - marking them learned: the ORM bulk UPDATE by primary key (one statement per row,
      executemany) vs one ``UPDATE ... FROM unnest(...)`` statement.
    """
    from sqlalchemy import select, text, update

    from hpe_core.store.models import Decision, utcnow

    now = utcnow()

    def query(*columns):
        return (
            select(*columns)
            .where(Decision.config_id == config_id, Decision.window_closes_at <= now)
            .order_by(Decision.created_at, Decision.id)
            .limit(count)
        )

    out = {}
    with sessions() as session:
        t0 = time.perf_counter()
        rows = session.scalars(query(Decision)).all()
        out["read: ORM entities"] = time.perf_counter() - t0
    with sessions() as session:
        t0 = time.perf_counter()
        session.execute(
            query(
                Decision.id,
                Decision.channel,
                Decision.context,
                Decision.eligible,
                Decision.action_id,
                Decision.probability,
                Decision.given_reward,
            )
        ).all()
        out["read: Core select of 7 columns"] = time.perf_counter() - t0
    marks = [{"id": d.id, "learned_at": now, "reward": 0.0, "engaged": False} for d in rows]
    with sessions() as session:
        t0 = time.perf_counter()
        session.execute(update(Decision), marks)
        out["mark: ORM bulk UPDATE by primary key"] = time.perf_counter() - t0
        session.rollback()
    table = Decision.__table__.name
    with sessions() as session:
        t0 = time.perf_counter()
        session.execute(
            text(
                f'UPDATE "{table}" AS d SET learned_at = :now, reward = v.reward, '
                "engaged = v.engaged FROM unnest(CAST(:ids AS uuid[]), "
                "CAST(:rewards AS float8[]), CAST(:engaged AS boolean[])) "
                "AS v(id, reward, engaged) WHERE d.id = v.id"
            ),
            {
                "now": now,
                "ids": [m["id"] for m in marks],
                "rewards": [m["reward"] for m in marks],
                "engaged": [m["engaged"] for m in marks],
            },
        )
        out["mark: one UPDATE ... FROM unnest()"] = time.perf_counter() - t0
        session.rollback()
    return {"rows": len(rows), "seconds": out}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument(
        "--actions", type=int, default=0, help="synthetic actions (0 = the 14 simulated offers)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-worker", action="store_true", help="skip the hpe worker run")
    parser.add_argument(
        "--alternatives",
        action="store_true",
        help="also time leaner reads/updates of one 5000-row batch (nothing committed)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="batches learned in turns by raw VW and HPE, each timed alone (0: none)",
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    info = print_header("learning rate: one worker vs raw VW (PostgreSQL + Redis)")
    results = {"machine": info, "args": vars(args)}
    with Deployment("learn") as dep:
        dep.apply_env()
        print(f"database {dep.database}, redis db {dep.redis_db}, logs {dep.log_dir}")
        from sqlalchemy import insert

        from hpe_core.decide.policy import learner as learner_module
        from hpe_core.decide.policy import store
        from hpe_core.decide.policy.exploration import vw_arguments
        from hpe_core.learn import learning
        from hpe_core.store.models import Decision, Outcome
        from hpe_core.tenancy import configs
        from hpe_core.tenancy.workspaces import Principal
        from web import create_app
        from web import simulate as sim

        app = create_app()
        engine = app_runtime(app).engine
        sessions = app_runtime(app).sessions
        settings = sim.simulation_settings(holdout=10, wait_seconds=2, algorithm=None)
        if args.actions:
            from bench.decision_latency import make_actions

            settings["actions"] = make_actions(args.actions)
        with sessions() as session:
            config = configs.create(
                session,
                Principal("bench", "bench"),
                app_runtime(app).catalog,
                name="learning bench",
                settings=settings,
            )
            session.commit()
            settings = config.settings  # with defaults filled in
        vw_args = vw_arguments(settings["exploration"])
        print(f"VW arguments: {vw_args}")
        print(f"{len(settings['actions'])} actions, {args.examples} decisions")

        t0 = time.perf_counter()
        decisions, outcomes, examples = build_rows(config, settings, args.examples, args.seed)
        with engine.begin() as conn:
            for start in range(0, len(decisions), 2000):
                conn.execute(insert(Decision.__table__), decisions[start : start + 2000])
            for start in range(0, len(outcomes), 2000):
                conn.execute(insert(Outcome.__table__), outcomes[start : start + 2000])
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        print(
            f"inserted {len(decisions)} decisions and {len(outcomes)} outcomes in "
            f"{time.perf_counter() - t0:.1f}s; "
            f"{sum(1 for e in examples if e[3] > 0)} with a positive reward"
        )
        texts = raw_texts(examples)

        # -- raw VW, before
        raws = []
        print(f"\nraw VW Workspace.learn(list_of_lines), load {loadavg()}")
        raw = raw_vw_learn(vw_args, texts)
        raws.append(raw["rate"])
        print(f"  {len(texts)} examples in {raw['seconds']:.2f}s = {raw['rate']:.0f} examples/s")
        raw_model = raw["vw"]

        # -- the product's learn step alone on the same pre-built tuples (reference)
        learner = learner_module.Learner(vw_args)
        t0 = time.perf_counter()
        learner.learn_batch(examples)
        step_alone = time.perf_counter() - t0
        learner.close()
        print(
            f"  reference: Learner.learn_batch on the same pre-built tuples: "
            f"{len(examples) / step_alone:.0f} examples/s"
        )

        # -- in-process learn_all_closed (the job's body), by phase
        print(f"\nin-process hpe_core.learn.learning.learn_all_closed, load {loadavg()}")
        phases = Phases()
        phases.wrap(learner_module.Learner, "learn_batch", "learn step (Learner.learn_batch)")
        phases.wrap(learner_module.Learner, "save", "model serialize (Learner.save)")
        phases.wrap(store, "save", "model version row (store.save)")
        phases.wrap(learning, "_outcomes_by_decision", "read outcomes (incl. its Select execute)")
        # Featurizing again happens only for rows logged without their feature line; where
        # the replay lives has moved between versions (learning, then learn.adaptation).
        from hpe_core.learn import adaptation

        for owner in (learning, adaptation):
            if hasattr(owner, "decision_features"):
                phases.wrap(owner, "decision_features", "featurize contexts")
                break
        load0 = loadavg()
        with sessions() as session:
            phases.wrap(session, "commit", "commit (+ flush of the activity row)")
            phases.wrap(session, "scalars", "SELECT decisions (execute only)")
            phases.wrap_execute(session)
            t0 = time.perf_counter()
            report = learning.learn_all_closed(session, config.id)
            total = time.perf_counter() - t0
        phases.restore()
        learned = report.learned
        inproc = {
            "learned": learned,
            "skipped": report.skipped,
            "version": report.version,
            "seconds": total,
            "rate": learned / total,
            "phases": phases.seconds,
            "learn_step_rate": learned / phases.seconds["learn step (Learner.learn_batch)"],
            "load": [load0, loadavg()],
        }
        results["in_process"] = inproc
        print(
            f"  learned {learned} (skipped {report.skipped}) in {total:.2f}s = "
            f"{inproc['rate']:.0f} examples/s end to end; model v{report.version}"
        )
        # "session.execute: Select" runs inside "read outcomes": count it once.
        nested = phases.seconds.get("session.execute: Select", 0.0)
        for label, seconds in phases.seconds.items():
            note = "  (inside 'read outcomes')" if label == "session.execute: Select" else ""
            print(f"    {label:48} {seconds:7.2f}s  ({100 * seconds / total:4.1f}%){note}")
        rest = total - sum(phases.seconds.values()) + nested
        inproc["phases"]["rest"] = rest
        print(
            f"    {'rest (ORM loading of decisions, Python loop...)':48} {rest:7.2f}s  "
            f"({100 * rest / total:4.1f}%)"
        )
        print(f"  learn step only: {inproc['learn_step_rate']:.0f} examples/s")

        # -- same model? HPE's newest model vs the raw-VW model on fresh contexts
        with sessions() as session:
            newest = store.latest(session, config.id)
            hpe_model = learner_module.Learner.load(newest.vw_args, newest.model)
        catalog = ActionCatalog(settings["actions"])
        lines = catalog.lines()
        worst = 0.0
        for touch in simulation.Population(seed=99).touchpoints(200, seed=99):
            shared = shared_line(touch.channel, touch.context)
            ours = hpe_model.predict(shared, lines)
            theirs = raw_model.predict([shared, *lines])
            worst = max(worst, max(abs(a - b) for a, b in zip(ours, theirs, strict=True)))
        hpe_model.close()
        raw_model.finish()
        results["max_prediction_difference"] = worst
        print(f"  HPE model vs raw-VW model, max |p difference| over 200 contexts: {worst:.2e}")

        # -- a real worker process
        if not args.no_worker:
            from worker.queues import RQBackend

            reset_learning(engine, config.id)
            backend = RQBackend(dep.redis_url)
            backend.enqueue_learn(config.id)
            print(f"\nhpe worker --burst (1 process), load {loadavg()}")
            load0 = loadavg()
            t0 = time.perf_counter()
            process = dep.start_workers(1, burst=True)
            process.wait(timeout=600)
            wall = time.perf_counter() - t0
            log_text = (dep.log_dir / f"worker-{len(dep.workers) - 1}.log").read_text()
            durations = job_durations(log_text)
            count = learned_count(engine, config.id)
            # The sweeper may queue a second, empty job while the first runs: count all.
            job = sum(durations) if durations else None
            jobs = len(durations)
            results["worker"] = {
                "learned": count,
                "process_wall": wall,
                "job_seconds": job,
                "jobs": jobs,
                "job_durations": durations,
                "rate_job": count / job if job else None,
                "rate_process": count / wall,
                "exit_code": process.returncode,
                "load": [load0, loadavg()],
            }
            print(
                f"  exit {process.returncode}; learned {count}; {jobs} learn job(s); "
                f"process wall {wall:.2f}s ({count / wall:.0f}/s incl. start-up); "
                + (
                    f"job(s) {' + '.join(f'{d:.2f}s' for d in durations)} = {count / job:.0f} "
                    "examples/s"
                    if job
                    else "job time n/a"
                )
            )
            if process.returncode != 0 or count != len(decisions):
                print(log_text[-3000:])

        if args.alternatives:
            print(f"\nalternatives on one batch of {learning.BATCH_SIZE} rows, load {loadavg()}")
            alt = alternatives(sessions, config.id, learning.BATCH_SIZE)
            results["alternatives"] = alt
            for label, seconds in alt["seconds"].items():
                print(f"  {label:40} {seconds:6.3f}s for {alt['rows']} rows")

        if args.rounds:
            results["rounds"] = interleaved(
                dep, engine, sessions, learning, config.id, vw_args, texts, examples, args
            )

        # -- raw VW, after
        print(f"\nraw VW again, load {loadavg()}")
        raw = raw_vw_learn(vw_args, texts)
        raw["vw"].finish()
        raws.append(raw["rate"])
        print(f"  {len(texts)} examples in {raw['seconds']:.2f}s = {raw['rate']:.0f} examples/s")

    best_raw = max(raws)
    results["raw_vw_rates"] = raws
    print("\n== summary (ratio = HPE examples/s ÷ the faster of the two raw-VW runs)")
    rows = [
        ("learn step only (Learner.learn_batch, in-process)", inproc["learn_step_rate"]),
        (
            "end to end in-process (learn_all_closed: DB read, featurize, learn, "
            "save model, UPDATE, commit)",
            inproc["rate"],
        ),
    ]
    if "worker" in results and results["worker"]["rate_job"]:
        rows.append(
            ("hpe worker --burst: the RQ job (from its log)", results["worker"]["rate_job"])
        )
        rows.append(
            ("hpe worker --burst: whole process incl. start-up", results["worker"]["rate_process"])
        )
    print(f"  raw VW Workspace.learn: {raws[0]:.0f} and {raws[1]:.0f} examples/s")
    for label, rate in rows:
        print(f"  {rate:8.0f} examples/s  {rate / best_raw:5.2f}x  {label}")
    results["summary"] = {label: {"rate": rate, "ratio": rate / best_raw} for label, rate in rows}
    print(f"load at end {loadavg()}")
    dump_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
