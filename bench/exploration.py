"""Compare VW exploration algorithms on the simulated audience, to choose defaults by measurement.

For each algorithm, an in-process loop makes ``--decisions`` decisions over the same seeded
stream of touchpoints: featurize the context, predict with :class:`hpe_core.decide.policy.Learner`,
sample an offer, draw its outcomes, and learn ``reward = 1 if clicked`` with the logged
propensity, either at once (``--batch 1``) or in batches of N, as the product does when
rewards arrive hours later.

The engagement rate reported is the *expected* click rate of the chosen offers (the true
probability from the simulator's ground truth), which has far less noise than counting
the simulated clicks; the realized click rate is printed too. Random choice is scored the
same way on the same touchpoints.

Usage::

    python bench/exploration.py --decisions 30000 --seed 1 [--batch 500] [--only squarecb]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import sys
import time

import vowpalwabbit

from hpe_core import simulation
from hpe_core.decide.features import ActionCatalog, adf_example, context_features
from hpe_core.decide.policy import Learner, vw_arguments

#: (label, exploration settings block) pairs benchmarked by default.
CONFIGURATIONS = [
    ("squarecb gamma_scale=10", {"algorithm": "squarecb", "gamma_scale": 10.0}),
    ("squarecb gamma_scale=100", {"algorithm": "squarecb", "gamma_scale": 100.0}),
    ("squarecb gamma_scale=1000", {"algorithm": "squarecb", "gamma_scale": 1000.0}),
    ("epsilon 0.05", {"algorithm": "epsilon", "epsilon": 0.05}),
    ("epsilon 0.1", {"algorithm": "epsilon", "epsilon": 0.1}),
    ("epsilon 0.2", {"algorithm": "epsilon", "epsilon": 0.2}),
    ("bag 5 (epsilon 0.05)", {"algorithm": "bag", "bag_size": 5, "epsilon": 0.05}),
    ("cover 4 (epsilon 0.05)", {"algorithm": "cover", "cover_size": 4, "epsilon": 0.05}),
]


def run(exploration: dict, touchpoints: list, catalog: ActionCatalog, *, batch: int, seed: int):
    """Run one learning loop and return its expected and realized click rates."""
    learner = Learner(vw_arguments(exploration))
    offers = [simulation.OFFERS_BY_ID[a] for a in catalog.ids]
    lines = catalog.lines()
    indices = range(len(offers))
    choice_rng = random.Random(f"choice-{seed}")
    outcome_rng = random.Random(f"outcome-{seed}")
    expected, clicks, tail_expected = 0.0, 0, 0.0
    tail_start = len(touchpoints) - len(touchpoints) // 5
    pending = []
    started = time.perf_counter()
    for n, touch in enumerate(touchpoints):
        shared = context_features(touch.context)
        probabilities = learner.predict(shared, lines)
        index = choice_rng.choices(indices, probabilities)[0]
        offer = offers[index]
        p = simulation.engagement_probability(touch.user, offer, touch.channel)
        expected += p
        if n >= tail_start:
            tail_expected += p
        events = simulation.outcomes(touch.user, offer, touch.channel, outcome_rng)
        reward = 1.0 if any(e["type"] == "click" for e in events) else 0.0
        clicks += reward
        pending.append((shared, lines, index, reward, probabilities[index]))
        if len(pending) >= batch:
            learner.learn_batch(pending)
            pending.clear()
    elapsed = time.perf_counter() - started
    learner.close()
    count = len(touchpoints)
    return {
        "expected": expected / count,
        "tail": tail_expected / (count - tail_start),
        "clicks": clicks / count,
        "seconds": elapsed,
    }


def baseline(touchpoints: list) -> tuple[float, float, float]:
    """Return (random, random over the last fifth, best-possible) expected click rates."""
    rates = [
        [simulation.engagement_probability(t.user, o, t.channel) for o in simulation.OFFERS]
        for t in touchpoints
    ]
    tail = rates[len(rates) - len(rates) // 5 :]
    return (
        sum(sum(r) / len(r) for r in rates) / len(rates),
        sum(sum(r) / len(r) for r in tail) / len(tail),
        sum(max(r) for r in rates) / len(rates),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="average over seeds seed..seed+N-1")
    parser.add_argument("--batch", type=int, default=1, help="learn in batches of N (delay)")
    parser.add_argument(
        "--only", default="", help="comma-separated labels (exact, else substrings) to run"
    )
    parser.add_argument("--learning-rate", type=float, default=None, help="override -l")
    parser.add_argument("--power-t", type=float, default=None, help="override --power_t")
    parser.add_argument(
        "--throughput", action="store_true", help="only time Learner vs plain VW and exit"
    )
    args = parser.parse_args(argv)

    print("command: python " + shlex.join(["bench/exploration.py", *(argv or sys.argv[1:])]))
    print(
        f"machine: {platform.platform()}, python {platform.python_version()}, "
        f"cpu_count={os.cpu_count()}, vowpalwabbit {vowpalwabbit.__version__}"
    )
    seeds = range(args.seed, args.seed + args.repeats)
    catalog = ActionCatalog(simulation.settings_actions())
    streams, baselines = [], []
    for seed in seeds:
        population = simulation.Population(size=5000, seed=seed)
        streams.append(list(population.touchpoints(args.decisions)))
        baselines.append(baseline(streams[-1]))
    if args.throughput:
        throughput(streams[0][:5000], catalog)
        return
    random_rate, random_tail, best_rate = (_mean(b[i] for b in baselines) for i in range(3))
    print(
        f"decisions={args.decisions} seeds={list(seeds)} batch={args.batch} "
        f"offers={len(catalog)} random={random_rate:.4f} best-possible={best_rate:.4f} "
        f"(+{best_rate / random_rate - 1:.0%})"
    )
    print()
    print(
        "| algorithm | engagement | lift vs random (min..max over seeds) | last 20%: lift "
        "| realized clicks | seconds |"
    )
    print("|---|---|---|---|---|---|")
    for label, exploration in _select(args.only):
        exploration = dict(exploration)
        if args.learning_rate is not None:
            exploration["learning_rate"] = args.learning_rate
        if args.power_t is not None:
            exploration["power_t"] = args.power_t
        results = [
            run(exploration, stream, catalog, batch=args.batch, seed=seed)
            for seed, stream in zip(seeds, streams, strict=True)
        ]
        lifts = [r["expected"] / b[0] - 1 for r, b in zip(results, baselines, strict=True)]
        tails = [r["tail"] / b[1] - 1 for r, b in zip(results, baselines, strict=True)]
        print(
            f"| {label} | {_mean(r['expected'] for r in results):.4f} "
            f"| {_mean(lifts):+.1%} ({min(lifts):+.0%}..{max(lifts):+.0%}) "
            f"| {_mean(tails):+.1%} | {_mean(r['clicks'] for r in results):.4f} "
            f"| {sum(r['seconds'] for r in results):.1f} |",
            flush=True,
        )
    print(f"| random | {random_rate:.4f} | +0.0% | +0.0% | | |")
    print()
    print("VW arguments:", vw_arguments({}), "(defaults)")


def throughput(touchpoints: list, catalog: ActionCatalog, repeats: int = 3) -> None:
    """Print microseconds per example: our Learner vs plain Workspace.learn/predict."""
    args = vw_arguments({})
    lines = catalog.lines()
    shared = [context_features(t.context) for t in touchpoints]
    rng = random.Random(0)
    examples = [
        (s, lines, rng.randrange(len(lines)), float(rng.random() < 0.05), 1 / 14) for s in shared
    ]
    labelled = [adf_example(s, a, (i, -r, p)) for s, a, i, r, p in examples]

    def best(run) -> float:
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            timings.append(time.perf_counter() - started)
        return min(timings) / len(examples) * 1e6

    plain, ours = vowpalwabbit.Workspace(args), Learner(args)
    rows = [
        (
            "featurize context (context_features)",
            best(lambda: [context_features(t.context) for t in touchpoints]),
        ),
        ("plain Workspace.learn(list of lines)", best(lambda: [plain.learn(x) for x in labelled])),
        ("Learner.learn_batch(all examples)", best(lambda: ours.learn_batch(examples))),
        (
            "plain Workspace.predict(list of lines)",
            best(lambda: [plain.predict([s, *lines]) for s in shared]),
        ),
        ("Learner.predict(shared, lines)", best(lambda: [ours.predict(s, lines) for s in shared])),
    ]
    print(f"throughput: {len(examples)} examples, {len(lines)} actions, best of {repeats}")
    print("| operation | us per example |")
    print("|---|---|")
    for label, micros in rows:
        print(f"| {label} | {micros:.1f} |")
    print()


def _select(only: str) -> list[tuple[str, dict]]:
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    if not wanted:
        return CONFIGURATIONS
    exact = [c for c in CONFIGURATIONS if c[0] in wanted]
    return exact or [c for c in CONFIGURATIONS if any(w in c[0] for w in wanted)]


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


if __name__ == "__main__":
    main()
