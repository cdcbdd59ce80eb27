"""Research loop: how HPE's learning keeps up with change, in-process, beside raw VW.

An in-process replica of HPE's loop on a :mod:`hpe_core.scenarios` scenario: the holdout
by the product's own assignment hash (uniform random baseline), the treatment served by
:class:`hpe_core.decide.policy.Learner` with the product's VW arguments and featurization,
rewards learned in batches of ``--batch`` decisions (the reward window and the sweeper),
and optionally the product's drift detector (:mod:`hpe_core.learn.drift`) retraining from
the log since the change point, and the new-offer trial. Beside it, on the same
touchpoints: raw Vowpal Wabbit with its defaults (``--cb_explore_adf -q ca --quiet``:
epsilon-greedy 0.05, ``-l 0.5``, ``--power_t 0.5``, the same features) learning every
reward at once, the oracle (knows the latent truth in force) and random choice.

Used to choose defaults by measurement; the product's own figures come from
``bench/adaptation_http.py`` (through the REST API). Rates are *expected* click rates
(the ground truth of the chosen offer), far less noisy than counted clicks.

Usage::

    python bench/adaptation.py --scenario shift --decisions 40000 --seeds 1,2,3 \
        --variant default --variant "power_t=0.25" --variant "drift=on"
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hpe_core import scenarios, simulation  # noqa: E402
from hpe_core.decide import assignment  # noqa: E402
from hpe_core.decide.features import ActionCatalog, decision_features, pair_features  # noqa: E402
from hpe_core.decide.policy import Learner, vw_arguments  # noqa: E402
from hpe_core.decide.policy.trials import with_trial  # noqa: E402
from hpe_core.learn.drift import PageHinkley  # noqa: E402

RAW_VW_DEFAULTS = "--cb_explore_adf -q ca --quiet"
CONFIG_ID = uuid.UUID("00000000-0000-0000-0000-000000000017")


def parse_variant(text: str) -> dict:
    """``"learning_rate=0.2,power_t=0,drift=on,trial=0.1"`` -> options."""
    options: dict = {}
    if text in ("", "default"):
        return options
    for part in text.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if value in ("on", "off"):
            options[key] = value == "on"
        else:
            try:
                options[key] = float(value)
            except ValueError:
                options[key] = value
    return options


_EXPLORATION_KEYS = ("learning_rate", "power_t", "gamma_scale", "epsilon", "algorithm")


def run_hpe(scenario: scenarios.Scenario, options: dict, *, batch: int, sample_seed: int) -> dict:
    """HPE's loop on the scenario; per-decision expected rates of treatment and holdout."""
    exploration = {k: options[k] for k in _EXPLORATION_KEYS if k in options}
    args = vw_arguments(exploration)
    learner = Learner(args)
    rng = random.Random(f"hpe-choice-{sample_seed}")
    outcome_rng = random.Random(f"hpe-outcomes-{sample_seed}")
    detector = (
        PageHinkley(
            **{
                k: options[k]
                for k in ("delta", "threshold", "half_life", "min_decisions")
                if k in options
            }
        )
        if options.get("drift")
        else None
    )
    trial = float(options.get("trial", 0.0))
    trial_examples = int(options.get("trial_examples", 300))
    holdout = float(options.get("holdout", 10.0))
    known = {o.id for o in scenario.offers(0)}
    log: list[tuple] = []  # (shared, lines, index, reward, propensity, variant, offer ids)
    pending: list[int] = []
    learned_per_action: dict[str, int] = {}
    stream_positions: list[int] = []  # log index of each treatment decision fed to drift
    expected = {"treatment": [], "holdout": []}
    realized = {"treatment": [], "holdout": []}
    positions = {"treatment": [], "holdout": []}
    chosen_ids = []
    alarms = []
    catalog_cache: dict[tuple, tuple] = {}
    for index, touch in scenario.touchpoints():
        offers = scenario.offers(index)
        key = tuple(o.id for o in offers)
        if key not in catalog_cache:
            catalog = ActionCatalog([{"id": o.id, "features": o.features()} for o in offers])
            catalog_cache[key] = (catalog.lines(), offers)
        lines, offers = catalog_cache[key]
        pair_channels = None
        channel = touch.channel or options.get("channel")
        if channel == "auto":
            # The engine chooses the channel: one entry per (offer, channel).
            catalog = ActionCatalog([{"id": o.id, "features": o.features()} for o in offers])
            pairs = [(o, c) for c in simulation.CHANNELS for o in offers]
            lines = [catalog.pair_line(o.id, c) for o, c in pairs]
            offers = [o for o, _c in pairs]
            pair_channels = [c for _o, c in pairs]
            shared = pair_features(touch.context)
        else:
            shared = decision_features(channel, touch.context)
        variant = assignment.variant(CONFIG_ID, touch.user.user_id, holdout)
        if variant == "treatment":
            pmf = learner.predict(shared, lines)
            if trial:
                pmf = _with_trial(
                    pmf, [o.id for o in offers], learned_per_action, trial, trial_examples, known
                )
        else:
            pmf = [1.0 / len(lines)] * len(lines)
        chosen = _sample(rng, pmf)
        offer = offers[chosen]
        if pair_channels is not None:
            channel = pair_channels[chosen]
        events = scenario.outcomes(touch.user, offer, channel, index, outcome_rng)
        reward = 1.0 if any(e["type"] == "click" for e in events) else 0.0
        expected[variant].append(scenario.probability(touch.user, offer, channel, index))
        positions[variant].append(index)
        realized[variant].append(reward)
        chosen_ids.append((variant, offer.id))
        ids = key if pair_channels is None else tuple(o.id for o in offers)
        log.append((shared, lines, chosen, reward, pmf[chosen], variant, ids))
        pending.append(len(log) - 1)
        if len(pending) >= batch:
            learner = _learn(
                learner,
                log,
                pending,
                detector,
                stream_positions,
                alarms,
                args,
                learned_per_action,
                index,
                float(options.get("clip", 0.0)),
            )
            pending = []
    learner.close()
    return {
        "expected": expected,
        "realized": realized,
        "positions": positions,
        "chosen": chosen_ids,
        "alarms": alarms,
    }


def _with_trial(pmf, ids, learned, share, examples, known):
    """The product's new-action trial (hpe_core.decide.policy.trials): actions not known
    when the model started get ``share`` until ``examples`` of them were learned."""
    positions = [i for i, a in enumerate(ids) if a not in known and learned.get(a, 0) < examples]
    return with_trial(pmf, positions, share)


def _clip(entry, floor):
    shared, lines, index, reward, propensity = entry[:5]
    return (shared, lines, index, reward, max(propensity, floor))


def _learn(
    learner, log, pending, detector, stream_positions, alarms, args, learned, now_index, clip=0.0
):
    batch = [_clip(log[i], clip) for i in pending]
    learner.learn_batch(batch)
    for i in pending:
        ids = log[i][6]
        learned[ids[log[i][2]]] = learned.get(ids[log[i][2]], 0) + 1
    if detector is None:
        return learner
    for i in pending:
        if log[i][5] != "treatment":
            continue
        stream_positions.append(i)
        alarm = detector.update(log[i][3])
        if alarm is None:
            continue
        change_log_index = stream_positions[-(alarm.detected_at - alarm.change_at + 1)]
        alarms.append({"at": now_index, "change_log_index": change_log_index, **alarm.as_dict()})
        stream_positions.clear()
        # Retrain from the log since the change point: a fresh model on the recent window.
        learner.close()
        learner = Learner(args)
        learner.learn_batch([entry[:5] for entry in log[change_log_index : pending[-1] + 1]])
        break  # the rest of the batch is in the window already
    return learner


def _sample(rng, pmf):
    draw, cumulative = rng.random(), 0.0
    for i, p in enumerate(pmf):
        cumulative += p
        if draw < cumulative:
            return i
    return len(pmf) - 1


def run_raw(scenario: scenarios.Scenario, args: str, *, sample_seed: int) -> list[float]:
    """Raw VW on the same touchpoints: predict, sample, learn each reward at once."""
    learner = Learner(args)
    rng = random.Random(f"raw-choice-{sample_seed}")
    outcome_rng = random.Random(f"raw-outcomes-{sample_seed}")
    expected = []
    cache = {}
    for index, touch in scenario.touchpoints():
        offers = scenario.offers(index)
        key = tuple(o.id for o in offers)
        if key not in cache:
            catalog = ActionCatalog([{"id": o.id, "features": o.features()} for o in offers])
            cache[key] = catalog.lines()
        lines = cache[key]
        shared = decision_features(touch.channel, touch.context)
        pmf = learner.predict(shared, lines)
        chosen = _sample(rng, pmf)
        offer = offers[chosen]
        events = scenario.outcomes(touch.user, offer, touch.channel, index, outcome_rng)
        reward = 1.0 if any(e["type"] == "click" for e in events) else 0.0
        expected.append(scenario.probability(touch.user, offer, touch.channel, index))
        learner.learn_batch([(shared, lines, chosen, reward, pmf[chosen])])
    learner.close()
    return expected


def references(scenario: scenarios.Scenario) -> tuple[list[float], list[float], list[str]]:
    """Oracle and random expected rates per decision, and the oracle's offer."""
    oracle, rand, best = [], [], []
    for index, touch in scenario.touchpoints():
        offer, _channel, p = scenario.oracle(touch, index)
        oracle.append(p)
        best.append(offer.id)
        rand.append(scenario.random_rate(touch, index))
    return oracle, rand, best


# The report's ranges are the scenario module's own (one definition for hpe simulate too).
phases = scenarios.phases


def _mean_in(values, positions, lo, hi):
    chosen = [v for v, p in zip(values, positions, strict=True) if lo <= p < hi]
    return statistics.fmean(chosen) if chosen else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="shift", choices=scenarios.SCENARIOS)
    parser.add_argument("--decisions", type=int, default=40000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--no-raw", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    print("command: " + shlex.join(["python", "bench/adaptation.py", *(argv or sys.argv[1:])]))
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variant or ["default"]
    results: dict = {"args": vars(args), "seeds": {}}
    table: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        scenario = scenarios.Scenario.make(args.scenario, args.decisions, seed=seed)
        oracle, rand, best = references(scenario)
        spans = phases(scenario)
        every = list(range(args.decisions))
        rows = {
            "oracle": {k: _mean_in(oracle, every, *v) for k, v in spans.items()},
            "random": {k: _mean_in(rand, every, *v) for k, v in spans.items()},
        }
        if not args.no_raw:
            t0 = time.perf_counter()
            raw = run_raw(scenario, RAW_VW_DEFAULTS, sample_seed=seed)
            rows["raw VW defaults"] = {k: _mean_in(raw, every, *v) for k, v in spans.items()}
            print(f"seed {seed}: raw VW {time.perf_counter() - t0:.0f}s", flush=True)
        for variant in variants:
            t0 = time.perf_counter()
            out = run_hpe(scenario, parse_variant(variant), batch=args.batch, sample_seed=seed)
            for arm in ("treatment", "holdout"):
                rows[f"{variant} [{arm}]"] = {
                    k: _mean_in(out["expected"][arm], out["positions"][arm], *v)
                    for k, v in spans.items()
                }
            if args.scenario == "new-offer":
                shares, oracle_shares = _new_offer_shares(scenario, out, best)
                rows[f"{variant} [new offer share]"] = shares
                rows["oracle [new offer share]"] = oracle_shares
            alarms = [(a["at"], a["change_log_index"]) for a in out["alarms"]]
            print(
                f"seed {seed}: {variant}: {time.perf_counter() - t0:.0f}s alarms {alarms}",
                flush=True,
            )
        results["seeds"][seed] = rows
        for name, values in rows.items():
            for phase, value in values.items():
                table.setdefault(name, {}).setdefault(phase, []).append(value)
    print()
    phase_names = list(next(iter(table.values())))
    print("| policy | " + " | ".join(phase_names) + " |")
    print("|---|" + "---|" * len(phase_names))
    for name, values in table.items():
        if "share" in name:
            shares = "  ".join(
                f"{window}: {statistics.fmean(xs):.3f}" for window, xs in values.items()
            )
            print(f"{name}: {shares}")
            continue
        cells = []
        for phase in phase_names:
            xs = values[phase]
            mean = statistics.fmean(xs)
            cells.append(f"{mean:.4f}" if "share" not in name else f"{mean:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    raw_row = table.get("raw VW defaults")
    oracle_row = table["oracle"]
    for name, values in table.items():
        if not name.endswith("[treatment]"):
            continue
        holdout = table[name.replace("[treatment]", "[holdout]")]
        parts = []
        for phase in phase_names:
            t = statistics.fmean(values[phase])
            text = f"{phase}: {t / statistics.fmean(oracle_row[phase]):.0%} of oracle"
            if raw_row:
                text += f", {t / statistics.fmean(raw_row[phase]):.2f}x raw VW"
            text += f", {t / statistics.fmean(holdout[phase]) - 1:+.0%} vs holdout"
            parts.append(text)
        print(f"{name}: " + "; ".join(parts))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1, default=str)
    return 0


def _new_offer_shares(scenario, out, best) -> tuple[dict, dict]:
    """Share of treatment decisions on the new offer after it is added, in windows of
    500, and the oracle's share in the same decisions."""
    new_id = scenarios.NEW_OFFER.id
    c = scenario.change_at
    shares, oracle_shares = {}, {}
    treatment = [
        (i, offer)
        for i, (variant, offer) in enumerate(out["chosen"])
        if variant == "treatment" and i >= c
    ]
    for lo in range(0, 4000, 500):
        inside = [offer for i, offer in treatment if c + lo <= i < c + lo + 500]
        oracle = best[c + lo : c + lo + 500]
        if inside:
            shares[f"{lo}-{lo + 500}"] = inside.count(new_id) / len(inside)
            oracle_shares[f"{lo}-{lo + 500}"] = oracle.count(new_id) / len(oracle)
    return shares, oracle_shares


if __name__ == "__main__":
    sys.exit(main())
