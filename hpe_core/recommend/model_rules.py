"""Recommendation rules about the model, from the off-policy evaluation: step it back
when it does worse than the baseline, and tune its exploration (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping

from hpe_core.recommend.proposals import Proposal, make, number

#: Both rules need the evaluation to have re-scored at least this many decisions.
OPE_MIN_DECISIONS = 500

#: change_exploration: the model's effective sample size over the decisions evaluated.
#: Below LOW_ESS_RATIO the logged data barely covers what the model would do (explore
#: more); at or above HEALTHY_ESS_RATIO, with treatment significantly ahead, exploration
#: that was widened may come back towards its default. The gap avoids flip-flopping.
LOW_ESS_RATIO = 0.1
HEALTHY_ESS_RATIO = 0.3
WINNING_ALPHA = 0.01
EPSILON_MAX = 0.2
GAMMA_SCALE_MIN = 1.0
#: Bag and cover sizes cost one model evaluation each per decision: cap the widening.
BAG_SIZE_MAX = 10
COVER_SIZE_MAX = 10
EXPLORATION_DEFAULTS = {"epsilon": 0.05, "gamma_scale": 10.0, "bag_size": 5, "cover_size": 4}


# --- model_worse_than_baseline ------------------------------------------------------------


def model_worse_than_baseline(settings: Mapping, evaluation: Mapping | None) -> list[Proposal]:
    if settings.get("automation") == "manual":
        return []  # the baseline already serves everyone
    policies = (evaluation or {}).get("policies") or {}
    model, baseline = policies.get("model") or {}, policies.get("baseline") or {}
    n = number(model.get("n"))
    ci_high, baseline_dr = number(model.get("ci_high")), number(baseline.get("dr"))
    if n is None or n < OPE_MIN_DECISIONS or ci_high is None or baseline_dr is None:
        return []
    if not ci_high < baseline_dr:
        return []
    evidence = {
        "n": int(n),
        "model_version": (evaluation or {}).get("model_version"),
        "model_dr": model.get("dr"),
        "model_ci_low": model.get("ci_low"),
        "model_ci_high": ci_high,
        "baseline_dr": baseline_dr,
    }
    return [
        make(
            "model_worse_than_baseline",
            "",
            "warning",
            "The model would earn less than the baseline: let it learn in apprentice mode.",
            f"Re-scoring the last {int(n)} logged decisions, the model earns at most "
            f"{ci_high:.4g} reward per decision (top of its 95% interval) against "
            f"{baseline_dr:.4g} for the baseline (doubly robust estimates). Applying sets "
            "automation to manual: everyone gets the baseline while the model keeps "
            "learning in the background; set automation back to assisted once it catches up.",
            evidence,
            {"automation": "manual"},
        )
    ]


# --- change_exploration -------------------------------------------------------------------


def change_exploration(
    settings: Mapping, summary: Mapping, evaluation: Mapping | None
) -> list[Proposal]:
    if settings.get("automation") == "manual":
        return []  # exploration only shapes what the model serves
    model = ((evaluation or {}).get("policies") or {}).get("model") or {}
    n, ess = number(model.get("n")), number(model.get("ess"))
    if n is None or ess is None or n < OPE_MIN_DECISIONS:
        return []
    exploration = dict(settings.get("exploration") or {})
    ratio = ess / n
    lift_block = summary.get("lift") or {}
    ci_low, p_value = number(lift_block.get("ci_low")), number(lift_block.get("p_value"))
    evidence = {
        "n": int(n),
        "ess": ess,
        "ess_ratio": ratio,
        "algorithm": exploration.get("algorithm"),
        "lift": dict(lift_block),
    }
    if ratio < LOW_ESS_RATIO:
        change = _widen(exploration)
        if change is None:
            return []
        return [
            make(
                "change_exploration",
                "exploration",
                "info",
                "Let the model try more options: there is too little data on its choices.",
                f"Only {ratio:.1%} of the last {int(n)} decisions are informative about what "
                f"the model would do (effective sample size {ess:.0f}, below "
                f"{LOW_ESS_RATIO:.0%}), so its estimates are shaky and it may be stuck on "
                f"early favourites. Applying widens exploration: {_describe(change, exploration)}.",
                evidence,
                {"exploration": change},
            )
        ]
    winning = ci_low is not None and ci_low > 0 and p_value is not None and p_value < WINNING_ALPHA
    if ratio >= HEALTHY_ESS_RATIO and winning:
        change = _narrow(exploration)
        if change is None:
            return []
        return [
            make(
                "change_exploration",
                "exploration",
                "info",
                "The model is winning: spend less on trying options, more on the best ones.",
                f"Treatment beats holdout (lift interval from {ci_low:+.1%}, p = {p_value:.2g}) "
                f"and {ratio:.0%} of the last {int(n)} decisions inform the model's choices "
                f"(effective sample size {ess:.0f}). Applying narrows exploration back "
                f"towards its default: {_describe(change, exploration)}.",
                evidence,
                {"exploration": change},
            )
        ]
    return []


def _widen(exploration: Mapping) -> dict | None:
    algorithm = exploration.get("algorithm", "squarecb")
    if algorithm == "epsilon":
        epsilon = float(exploration.get("epsilon", EXPLORATION_DEFAULTS["epsilon"]))
        if epsilon >= EPSILON_MAX:
            return None
        return {"epsilon": min(EPSILON_MAX, max(2 * epsilon, EXPLORATION_DEFAULTS["epsilon"]))}
    if algorithm == "squarecb":  # a smaller gamma scale spreads probability wider
        gamma = float(exploration.get("gamma_scale", EXPLORATION_DEFAULTS["gamma_scale"]))
        return (
            None if gamma <= GAMMA_SCALE_MIN else {"gamma_scale": max(GAMMA_SCALE_MIN, gamma / 2)}
        )
    name, cap = ("bag_size", BAG_SIZE_MAX) if algorithm == "bag" else ("cover_size", COVER_SIZE_MAX)
    size = int(exploration.get(name, EXPLORATION_DEFAULTS[name]))
    return None if size >= cap else {name: min(cap, size + 2)}


def _narrow(exploration: Mapping) -> dict | None:
    """One step back towards the default; never past it (the user's own narrower setting
    is theirs to keep)."""
    algorithm = exploration.get("algorithm", "squarecb")
    if algorithm == "epsilon":
        default = EXPLORATION_DEFAULTS["epsilon"]
        epsilon = float(exploration.get("epsilon", default))
        return None if epsilon <= default else {"epsilon": max(default, epsilon / 2)}
    if algorithm == "squarecb":
        default = EXPLORATION_DEFAULTS["gamma_scale"]
        gamma = float(exploration.get("gamma_scale", default))
        return None if gamma >= default else {"gamma_scale": min(default, gamma * 2)}
    name = "bag_size" if algorithm == "bag" else "cover_size"
    default = EXPLORATION_DEFAULTS[name]
    size = int(exploration.get(name, default))
    return None if size <= default else {name: max(default, size - 2)}


def _describe(change: Mapping, exploration: Mapping) -> str:
    return ", ".join(f"{name} {exploration.get(name)} → {value}" for name, value in change.items())
