"""Keeping up with change, through the product, beside raw Vowpal Wabbit with its defaults.

One run of a :mod:`hpe_core.scenarios` scenario (``stable``, ``shift``, ``new-offer``,
``channels``):

1. a fresh PostgreSQL database and Redis db; ``hpe serve`` (gunicorn) and ``hpe worker``;
2. ``hpe simulate``'s own code (``web.simulate.create_config`` and ``run`` with the
   scenario) sends the scenario's touchpoints through the REST API and reports every
   outcome at once; rewards reach the model when their ``--wait-seconds`` window closes
   and a worker learns the batch (with the drift detector, retraining and new-offer trial
   of the product); ``new-offer`` adds its offer with a ``PATCH`` at the change;
3. raw VW with its defaults on the same touchpoints, in the same run:
   ``vowpalwabbit.Workspace("--cb_explore_adf -q ca --quiet")`` (epsilon-greedy 0.05,
   ``-l 0.5``, ``--power_t 0.5``, ``--cb_type mtr``; ``-q ca`` crosses the same context
   and action features HPE gives it), featurized with ``hpe_core.decide.features``,
   predict → sample → outcome → learn that reward at once (no window, no holdout), for
   each of ``--raw-seeds``; a new offer is added to its actions at the same position;
4. the oracle (the best offer, knowing the truth in force, on the same touchpoints) and
   random choice.

Rates are *expected* click rates: the true click probability of what each decision
served (read from the simulator, far less noisy than the clicks).

Usage::

    python bench/keeping_up.py --scenario shift --decisions 40000 --clients 4 \
        --wait-seconds 2 --workers 2 --server 2:4 --raw-seeds 1,2,3 [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import API, Deployment, dump_json, loadavg, print_header  # noqa: E402
from hpe_core import scenarios  # noqa: E402
from hpe_core.decide.features import ActionCatalog, decision_features  # noqa: E402
from hpe_core.decide.policy.exploration import vw_arguments  # noqa: E402

RAW_VW_DEFAULTS = "--cb_explore_adf -q ca --quiet"

#: The issue's targets, per scenario: (label, phase, function of the report row) -> bool.
TARGETS = {
    "shift": "after the shift (2nd half): treatment >= 1.2x raw VW defaults, >= +50% over the "
    "holdout, >= 60% of the oracle",
    "stable": "treatment >= 1.2x raw VW defaults and >= 75% of the oracle at 30,000 decisions",
    "new-offer": "the new best offer reaches half of its oracle share within 2,000 decisions",
    "channels": "auto beats any single fixed channel by >= +20% engagement",
}


def raw_vw(scenario: scenarios.Scenario, raw_seed: int) -> list[float]:
    """Raw VW's expected click rate per position (learning every reward at once)."""
    import vowpalwabbit

    vw = vowpalwabbit.Workspace(RAW_VW_DEFAULTS)
    choice = random.Random(f"raw-choice-{raw_seed}")
    outcome_rng = random.Random(f"raw-outcomes-{raw_seed}")
    cache: dict = {}
    expected = []
    for index, touch in scenario.touchpoints():
        offers = scenario.offers(index)
        key = tuple(o.id for o in offers)
        if key not in cache:
            catalog = ActionCatalog([{"id": o.id, "features": o.features()} for o in offers])
            cache[key] = catalog.lines()
        lines = cache[key]
        example = [decision_features(touch.channel, touch.context), *lines]
        pmf = vw.predict(example)
        chosen = choice.choices(range(len(lines)), pmf)[0]
        offer = offers[chosen]
        expected.append(scenario.probability(touch.user, offer, touch.channel, index))
        events = scenario.outcomes(touch.user, offer, touch.channel, index, outcome_rng)
        reward = 1.0 if any(e["type"] == "click" for e in events) else 0.0
        example[chosen + 1] = f"0:{-reward!r}:{float(pmf[chosen])!r} " + lines[chosen]
        vw.learn(example)
    vw.finish()
    return expected


#: channels: the engine's choice, then each channel fixed, on the same touchpoints.
CHANNEL_MODES = ("auto", "email", "web", "ads")


def http_run(dep, scenario: scenarios.Scenario, args, channel: str | None) -> dict:
    """One configuration through the REST API on the scenario (``channel``: in
    ``channels``, a fixed channel instead of auto); prints its progress and drifts."""
    from web import simulate as sim

    client = dep.client()
    config_id = sim.create_config(
        client,
        holdout=args.holdout,
        wait_seconds=args.wait_seconds,
        algorithm=None,
        scenario=scenario,
    )
    _status, config = client.call("GET", f"{API}/{config_id}")
    print(
        f"config {config_id} (channel {channel or 'as the scenario sends'}); VW args "
        f"{vw_arguments(config['settings']['exploration'])}",
        flush=True,
    )
    load0, t0 = loadavg(), time.perf_counter()

    def progress(count, tally):
        print(
            f"  {count:>6} decisions  {time.perf_counter() - t0:6.0f}s  treatment "
            f"{tally.true_rate('treatment'):.2%}  holdout {tally.true_rate('holdout'):.2%}"
            f" (expected, cumulative)  load {loadavg()}",
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
        scenario=scenario,
        channel=None if channel == "auto" else channel,
    )
    elapsed = time.perf_counter() - t0
    version = sim.wait_for_learning(client, config_id, timeout=5 * args.wait_seconds + 20)
    _status, activities = client.call(
        "GET", f"{API}/{config_id}/activities?type=model.drift_detected&page_size=100"
    )
    drifts = [a["data"] for a in activities or [] if a["type"] == "model.drift_detected"]
    late = late_outcomes(dep, config_id)
    load1 = loadavg()
    print(
        f"HTTP run: {elapsed:.0f}s ({args.decisions / elapsed:.0f} decisions/s), newest "
        f"model v{version}, load {load0} -> {load1}"
    )
    print(
        f"  outcomes: {late['outcomes']}, of which late (after their reward window closed, "
        f"never learned): {late['late']} ({late['late_clicks']} clicks)"
    )
    for data in drifts:
        print(
            f"  model.drift_detected: change at {data['change_at']}, detected "
            f"{data['detected_at']}, reward {data['reference_reward']:.4f} -> "
            f"{data['recent_reward']:.4f} over {data['recent_decisions']} decisions, "
            f"retrained on {data['retrained_examples']}"
        )
    return {
        "tally": tally,
        "config_id": config_id,
        "seconds": elapsed,
        "model_version": version,
        "drifts": drifts,
        "outcomes": late,
        "load": [load0, load1],
    }


def late_outcomes(dep, config_id: str) -> dict:
    """How many outcomes arrived after their decision's reward window closed (they are
    kept but never learned: on a loaded machine a 2-second window loses some clicks)."""
    import psycopg

    with psycopg.connect(dep.database_url) as conn:
        total, late, late_clicks = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE late), "
            "count(*) FILTER (WHERE late AND type = 'click') "
            'FROM "041_hyper_personalization_engine_outcomes" WHERE config_id = %s',
            (config_id,),
        ).fetchone()
    return {"outcomes": total, "late": late, "late_clicks": late_clicks}


def channels_report(scenario: scenarios.Scenario, runs: dict, results: dict) -> None:
    """Treatment's expected click rate with auto and with each channel fixed."""
    refs = scenarios.references(scenario)
    rows = {}
    print("\n| channel | phase | HPE treatment | HPE holdout | oracle (any channel) | random |")
    print("|---|---|---|---|---|---|")
    for mode, run in runs.items():
        report = scenarios.report(scenario, run["tally"].served, refs)
        rows[mode] = report["phases"]
        for phase, row in report["phases"].items():
            print(
                f"| {mode} | {phase} | {row['treatment']:.4f} | {row['holdout']:.4f} | "
                f"{row['oracle']:.4f} | {row['random']:.4f} |"
            )
    results["channels"] = rows
    results["http"] = {m: {k: v for k, v in r.items() if k != "tally"} for m, r in runs.items()}
    print()
    for phase in rows["auto"]:
        auto = rows["auto"][phase]["treatment"]
        best = max(CHANNEL_MODES[1:], key=lambda m: rows[m][phase]["treatment"])
        fixed = rows[best][phase]["treatment"]
        print(
            f"  {phase:10} auto {auto:.4f} vs the best fixed channel ({best}) {fixed:.4f}: "
            f"{auto / fixed - 1:+.1%}"
        )
    print("\ntarget: auto beats any single fixed channel by >= +20% engagement")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="shift", choices=scenarios.SCENARIOS)
    parser.add_argument("--decisions", type=int, default=40000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--wait-seconds", type=int, default=2)
    parser.add_argument("--holdout", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="hpe worker --processes")
    parser.add_argument("--server", default="2:4", help="gunicorn WORKERS:THREADS")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--raw-seeds", default="1,2,3")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    scenario = scenarios.Scenario.make(args.scenario, args.decisions, seed=args.seed)
    info = print_header(f"keeping up: scenario {args.scenario} over HTTP vs raw VW defaults")
    results: dict = {"machine": info, "args": vars(args)}

    with Deployment("keepup") as dep:
        print(f"database {dep.database}, redis db {dep.redis_db}, logs {dep.log_dir}")
        workers, _, threads = args.server.partition(":")
        dep.serve(workers=int(workers), threads=int(threads or 1))
        dep.start_workers(args.workers)
        print(f"raw VW: {RAW_VW_DEFAULTS}")
        print(f"change at decision {scenario.change_at}; load {loadavg()}", flush=True)
        if args.scenario == "channels":
            runs = {mode: http_run(dep, scenario, args, mode) for mode in CHANNEL_MODES}
            channels_report(scenario, runs, results)
            dump_json(args.json, results)
            return 0
        run = http_run(dep, scenario, args, None)
    tally = run["tally"]
    results["http"] = {k: v for k, v in run.items() if k != "tally"}

    refs = scenarios.references(scenario)
    report = scenarios.report(scenario, tally.served, refs)
    everywhere = list(range(args.decisions))
    raws = []
    for raw_seed in [int(s) for s in args.raw_seeds.split(",") if s]:
        t1 = time.perf_counter()
        raws.append(raw_vw(scenario, raw_seed))
        print(f"raw VW seed {raw_seed}: {time.perf_counter() - t1:.0f}s", flush=True)
    print()
    print("| phase | HPE treatment | HPE holdout | raw VW defaults | oracle | random |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for phase, (lo, hi) in scenarios.phases(scenario).items():
        row = report["phases"][phase]
        raw = statistics.fmean(scenarios.mean_between(r, everywhere, lo, hi) for r in raws)
        row["raw_vw"] = raw
        print(
            f"| {phase} | {row['treatment']:.4f} | {row['holdout']:.4f} | {raw:.4f} | "
            f"{row['oracle']:.4f} | {row['random']:.4f} |"
        )
        summary[phase] = {
            "treatment/raw VW": row["treatment"] / raw,
            "treatment/holdout - 1": row["treatment"] / row["holdout"] - 1,
            "treatment/oracle": row["treatment"] / row["oracle"],
        }
    print()
    for phase, ratios in summary.items():
        print(
            f"  {phase:16} treatment/raw VW {ratios['treatment/raw VW']:.2f}x, over holdout "
            f"{ratios['treatment/holdout - 1']:+.0%}, {ratios['treatment/oracle']:.0%} of oracle"
        )
    for window in report.get("new_offer", []):
        print(
            f"  new offer, {window['from']}-{window['to']} decisions after it was added: "
            f"{window['share']:.1%} of treatment (oracle {window['oracle_share']:.1%})"
        )
    print(f"\ntarget: {TARGETS.get(args.scenario, '-')}")
    results["report"] = report
    results["summary"] = summary
    print(f"load at end {loadavg()}")
    dump_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
