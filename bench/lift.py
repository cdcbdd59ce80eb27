"""Lift on the simulated audience over HTTP (PostgreSQL + Redis + RQ workers), beside a raw
Vowpal Wabbit loop that learns every reward at once.

One run:

1. a fresh database and Redis db; ``hpe serve`` (gunicorn) and ``hpe worker --processes 2``;
2. ``hpe simulate``'s own code (``web.simulate.create_config`` and ``run``) sends
   ``--decisions`` touchpoints of the simulated audience through the REST API from
   ``--clients`` keep-alive clients and reports every outcome at once; rewards reach the
   model only when their ``--wait-seconds`` window closes and a worker learns the batch;
3. engagement = a click. Reported two ways: *realized* (the simulated clicks, exactly what
   ``hpe simulate`` prints) and *expected* (the ground-truth click probability of the
   offer each decision chose, read back from the decision log; far less noisy);
4. raw VW loop: ``vowpalwabbit.Workspace(<same VW args>)`` on the same users and the same
   touchpoint stream, featurized with hpe_core.decide.features, predict → sample → draw outcomes
   → learn that reward immediately (no window, no batching, no holdout), for each of
   ``--raw-seeds`` (sampling/outcome randomness);
5. reference rates on the same touchpoints: random choice (what the holdout gets) and the
   oracle (the best offer knowing the latent traits: an upper bound).

Usage::

    python bench/lift.py --decisions 30000 --clients 2 --wait-seconds 2 --workers 2 \
        --server 2:2 --raw-seeds 1,2,3 [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    API,
    Deployment,
    dump_json,
    loadavg,
    print_header,
    shared_line,
)
from hpe_core import simulation
from hpe_core.decide.features import ActionCatalog  # noqa: E402
from hpe_core.decide.policy import vw_arguments  # noqa: E402
from hpe_core.learn import rewards


def raw_vw_loop(settings: dict, decisions: int, seed: int, raw_seed: int) -> dict:
    """Predict, sample, draw outcomes and learn at once, on hpe simulate's touchpoints."""
    import vowpalwabbit

    vw = vowpalwabbit.Workspace(vw_arguments(settings["exploration"]))
    catalog = ActionCatalog(settings["actions"])
    ids = list(catalog.ids)
    lines = catalog.lines(ids)
    offers = [simulation.OFFERS_BY_ID[a] for a in ids]
    reward_settings = settings["reward"]
    choice_rng = random.Random(f"raw-choice-{raw_seed}")
    outcome_rng = random.Random(f"raw-outcomes-{raw_seed}")
    population = simulation.Population(seed=seed)
    clicks, expected = 0, []
    t0 = time.perf_counter()
    for touch in population.touchpoints(decisions, seed=seed):
        example = [shared_line(touch.channel, touch.context), *lines]
        pmf = vw.predict(example)
        index = choice_rng.choices(range(len(ids)), pmf)[0]
        offer = offers[index]
        expected.append(simulation.engagement_probability(touch.user, offer, touch.channel))
        events = simulation.outcomes(touch.user, offer, touch.channel, outcome_rng)
        clicked = any(e["type"] == "click" for e in events)
        clicks += clicked
        reward = (
            rewards.combine(reward_settings, [(e["type"], e.get("value")) for e in events])
            if events
            else reward_settings["default"]
        )
        example[index + 1] = f"0:{-float(reward)!r}:{float(pmf[index])!r} " + lines[index]
        vw.learn(example)
    elapsed = time.perf_counter() - t0
    vw.finish()
    return {
        "raw_seed": raw_seed,
        "realized": clicks / decisions,
        "expected": sum(expected) / decisions,
        "expected_by_fifth": _fifths(expected),
        "seconds": elapsed,
    }


def _fifths(values: list[float]) -> list[float]:
    n = len(values)
    return [
        sum(values[i * n // 5 : (i + 1) * n // 5]) / max(1, (i + 1) * n // 5 - i * n // 5)
        for i in range(5)
    ]


def reference_rates(decisions: int, seed: int) -> dict:
    """Random choice and the oracle on the same touchpoints (expected click rates)."""
    population = simulation.Population(seed=seed)
    rand = best = 0.0
    for touch in population.touchpoints(decisions, seed=seed):
        rates = [
            simulation.engagement_probability(touch.user, o, touch.channel)
            for o in simulation.OFFERS
        ]
        rand += sum(rates) / len(rates)
        best += max(rates)
    return {"random": rand / decisions, "oracle": best / decisions}


def logged_decisions(database_url: str, config_id: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT user_id, channel, action_id, variant, model_version, created_at "
            'FROM "041_hyper_personalization_engine_decisions" WHERE config_id = %s '
            "ORDER BY created_at, id",
            (config_id,),
        ).fetchall()


def _get(url: str, key: str, path: str, timeout: float):
    """One GET with its own timeout and no retry: (status or None on timeout, body, s)."""
    import http.client
    import json
    import urllib.parse

    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    t0 = time.perf_counter()
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        body = json.loads(response.read() or b"null")
        return response.status, body, time.perf_counter() - t0
    except TimeoutError:
        return None, None, time.perf_counter() - t0
    finally:
        conn.close()


def metrics_with_analyze(dep: Deployment, config_id: str, timeout: float):
    """GET /metrics as ``hpe simulate`` does; if it times out (PostgreSQL planning the
    rollup on tables it has no statistics for), ANALYZE the two tables and try again.

    :returns: (the metrics body or None, [{when, result, seconds}])
    """
    import psycopg

    path = f"{API}/{config_id}/metrics"
    steps = []
    status, body, seconds = _get(dep.url, dep.key, path, timeout)
    steps.append(
        {"when": "as is", "result": status or f"timed out (> {timeout:.0f}s)", "seconds": seconds}
    )
    if status is None:
        with psycopg.connect(dep.database_url, autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute('ANALYZE "041_hyper_personalization_engine_decisions"')
            conn.execute('ANALYZE "041_hyper_personalization_engine_outcomes"')
            analyze = time.perf_counter() - t0
        status, body, seconds = _get(dep.url, dep.key, path, timeout)
        steps.append(
            {
                "when": f"after ANALYZE of decisions+outcomes ({analyze:.1f}s)",
                "result": status or "timed out",
                "seconds": seconds,
            }
        )
    return body, steps


_JOB_DONE = re.compile(
    r"Successfully completed worker\.jobs\.learn\(.*?\) job in "
    r"(\d+):(\d\d):(\d\d(?:\.\d+)?)s"
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=30000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--wait-seconds", type=int, default=2)
    parser.add_argument("--holdout", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="hpe worker --processes")
    parser.add_argument("--server", default="2:2", help="gunicorn WORKERS:THREADS")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--raw-seeds", default="1,2,3")
    parser.add_argument(
        "--metrics-timeout",
        type=float,
        default=20.0,
        help="seconds to wait for GET /metrics (one attempt)",
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    workers, _, threads = args.server.partition(":")
    raw_seeds = [int(s) for s in args.raw_seeds.split(",") if s]

    info = print_header("lift: hpe simulate over HTTP vs holdout and vs a raw VW loop")
    results = {"machine": info, "args": vars(args)}
    from web import simulate as sim

    with Deployment("lift") as dep:
        print(f"database {dep.database}, redis db {dep.redis_db}, logs {dep.log_dir}")
        dep.serve(workers=int(workers), threads=int(threads or 1))
        dep.start_workers(args.workers)
        client = dep.client()
        config_id = sim.create_config(
            client, holdout=args.holdout, wait_seconds=args.wait_seconds, algorithm=None
        )
        _status, config = client.call("GET", f"{API}/{config_id}")
        settings = config["settings"]
        print(f"config {config_id}; VW args {vw_arguments(settings['exploration'])}")
        print(
            f"{args.decisions} decisions from {args.clients} clients, wait_seconds "
            f"{args.wait_seconds}, holdout {args.holdout}%, load {loadavg()}"
        )
        load0 = loadavg()
        t0 = time.perf_counter()

        def progress(count, tally):
            print(
                f"  {count:>6} decisions  {time.perf_counter() - t0:6.0f}s  treatment "
                f"{tally.rate('treatment'):.2%}  holdout {tally.rate('holdout'):.2%}  "
                f"load {loadavg()}",
                flush=True,
            )

        tally = sim.run(
            dep.url,
            dep.key,
            config_id,
            decisions=args.decisions,
            clients=args.clients,
            seed=args.seed,
            progress=progress,
            progress_every=max(1000, args.decisions // 10),
        )
        elapsed = time.perf_counter() - t0
        version = sim.wait_for_learning(client, config_id, timeout=5 * args.wait_seconds + 20)
        metrics, metrics_timing = metrics_with_analyze(dep, config_id, args.metrics_timeout)
        rows = logged_decisions(dep.database_url, config_id)
        worker_logs = "".join(p.read_text() for p in dep.log_dir.glob("worker-*.log"))
        jobs = [
            int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in _JOB_DONE.findall(worker_logs)
        ]
        load1 = loadavg()

    users = {u.user_id: u for u in simulation.Population(seed=args.seed).users}
    expected = {"treatment": [], "holdout": []}
    stale = 0
    for user_id, channel, action_id, variant, model_version, _created in rows:
        p = simulation.engagement_probability(
            users[user_id], simulation.OFFERS_BY_ID[action_id], channel
        )
        expected[variant].append(p)
        stale += variant == "treatment" and model_version == 0
    http = {
        "seconds": elapsed,
        "decisions_per_second": args.decisions / elapsed,
        "decisions": dict(tally.decisions),
        "engaged": dict(tally.engaged),
        "nothing": tally.nothing,
        "realized": {v: tally.rate(v) for v in ("treatment", "holdout")},
        "expected": {v: sum(x) / max(1, len(x)) for v, x in expected.items()},
        "treatment_expected_by_fifth": _fifths(expected["treatment"]),
        "model_versions": version,
        "treatment_decisions_on_untrained_model": stale,
        "learn_jobs": len(jobs),
        "learn_job_seconds_mean": sum(jobs) / len(jobs) if jobs else None,
        "learn_job_seconds_max": max(jobs) if jobs else None,
        "metrics_api": metrics_timing,
        "metrics_lift": (
            metrics.get("summary", {}).get("lift") if isinstance(metrics, dict) else None
        ),
        "load": [load0, load1],
    }
    results["http"] = http
    print(
        f"\nHTTP run: {elapsed:.0f}s ({http['decisions_per_second']:.0f} decisions/s), "
        f"newest model v{version}, {len(jobs)} learn jobs (mean "
        f"{http['learn_job_seconds_mean'] or 0:.2f}s, "
        f"max {http['learn_job_seconds_max'] or 0:.2f}s), "
        f"{stale} treatment decisions served by the untrained model v0; load {load0} -> {load1}"
    )
    print(
        f"  treatment: {tally.decisions['treatment']} decisions, {tally.engaged['treatment']} "
        f"clicks = {http['realized']['treatment']:.3%} realized, "
        f"{http['expected']['treatment']:.3%} expected"
    )
    print(
        f"  holdout:   {tally.decisions['holdout']} decisions, {tally.engaged['holdout']} "
        f"clicks = {http['realized']['holdout']:.3%} realized, "
        f"{http['expected']['holdout']:.3%} expected"
    )
    print(
        "  treatment expected rate by fifth of the run: "
        + "  ".join(f"{x:.3%}" for x in http["treatment_expected_by_fifth"])
    )
    print(f"  metrics API lift: {http['metrics_lift']}")
    for step in metrics_timing:
        print(f"  GET /metrics {step['when']}: {step['result']} in {step['seconds']:.2f}s")

    print(f"\nraw VW loop (learn each reward at once), load {loadavg()}")
    raws = []
    for raw_seed in raw_seeds:
        raw = raw_vw_loop(settings, args.decisions, args.seed, raw_seed)
        raws.append(raw)
        print(
            f"  seed {raw_seed}: realized {raw['realized']:.3%}, expected {raw['expected']:.3%}"
            f" (by fifth: "
            + "  ".join(f"{x:.3%}" for x in raw["expected_by_fifth"])
            + f") in {raw['seconds']:.0f}s"
        )
    results["raw_vw"] = raws
    ref = reference_rates(args.decisions, args.seed)
    results["reference"] = ref
    print(
        f"\nsame touchpoints: random choice {ref['random']:.3%} expected, "
        f"oracle {ref['oracle']:.3%} expected (upper bound; knows latent traits)"
    )

    raw_realized = sum(r["realized"] for r in raws) / len(raws)
    raw_expected = sum(r["expected"] for r in raws) / len(raws)
    t_real, h_real = http["realized"]["treatment"], http["realized"]["holdout"]
    t_exp, h_exp = http["expected"]["treatment"], http["expected"]["holdout"]
    summary = {
        "treatment/holdout realized": t_real / h_real if h_real else None,
        "treatment/holdout expected": t_exp / h_exp if h_exp else None,
        "treatment/random expected (same touchpoints)": t_exp / ref["random"],
        "treatment/raw VW realized (mean of seeds)": t_real / raw_realized,
        "treatment/raw VW expected (mean of seeds)": t_exp / raw_expected,
        "raw VW/random expected": raw_expected / ref["random"],
    }
    results["summary"] = summary
    print("\n== summary (targets: treatment/holdout >= 1.5x, treatment/raw VW >= 0.9x)")
    for label, value in summary.items():
        print(f"  {label:46} " + (f"{value:.2f}x" if value is not None else "n/a"))
    print(f"load at end {loadavg()}")
    dump_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
