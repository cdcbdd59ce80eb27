"""Recommendation rules about the model, from the off-policy evaluation: step it back
when it does worse than the baseline, and tune its exploration (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping

from hpe_core.recommend.proposals import KindSpec, Proposal, RecommendationKind
from hpe_core.results import Evaluation, Lift, PolicyEstimate
from hpe_core.store.vocabulary import Policy, Severity
from hpe_core.tenancy.settings_types import (
    AutomationLevel,
    Exploration,
    ExplorationAlgorithm,
    Settings,
)

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

#: The engine may switch itself to manual: it only stops the model serving (it keeps
#: learning), the safe direction.
MODEL_WORSE_THAN_BASELINE = KindSpec(RecommendationKind.MODEL_WORSE_THAN_BASELINE, auto_apply=True)


def model_worse_than_baseline(settings: Settings, evaluation: Evaluation | None) -> list[Proposal]:
    if settings.automation == AutomationLevel.MANUAL:
        return []  # the baseline already serves everyone
    model, baseline = _estimate(evaluation, Policy.MODEL), _estimate(evaluation, Policy.BASELINE)
    if model is None or baseline is None or model.n < OPE_MIN_DECISIONS:
        return []
    ci_high, baseline_dr = model.ci_high, baseline.dr
    if ci_high is None or baseline_dr is None or not ci_high < baseline_dr:
        return []
    evidence = {
        "n": model.n,
        "model_version": evaluation.model_version,
        "model_dr": model.dr,
        "model_ci_low": model.ci_low,
        "model_ci_high": ci_high,
        "baseline_dr": baseline_dr,
    }
    return [
        Proposal(
            spec=MODEL_WORSE_THAN_BASELINE,
            subject="",
            severity=Severity.WARNING,
            title="The model would earn less than the baseline: let it learn in apprentice mode.",
            detail=(
                f"Re-scoring the last {model.n} logged decisions, the model earns at most "
                f"{ci_high:.4g} reward per decision (top of its 95% interval) against "
                f"{baseline_dr:.4g} for the baseline (doubly robust estimates). Applying sets "
                "automation to manual: everyone gets the baseline while the model keeps "
                "learning in the background; set automation back to assisted once it "
                "catches up."
            ),
            evidence=evidence,
            patch={"automation": AutomationLevel.MANUAL.value},
        )
    ]


def _estimate(evaluation: Evaluation | None, policy: Policy) -> PolicyEstimate | None:
    """One policy's estimate, if the evaluation ran and scored it."""
    return None if evaluation is None else evaluation.policies.get(policy)


# --- change_exploration -------------------------------------------------------------------

#: The engine may change exploration by itself: one step at a time, within fixed bounds.
CHANGE_EXPLORATION = KindSpec(RecommendationKind.CHANGE_EXPLORATION, auto_apply=True)


def change_exploration(
    settings: Settings, lift: Lift | None, evaluation: Evaluation | None
) -> list[Proposal]:
    """Widen exploration when the logged data barely cover the model's choices; narrow
    it back towards its default when the model is clearly winning.

    :param lift: the summary's lift (None: no summary, so the model is not "winning")
    """
    model = _judged_model(settings, evaluation)
    if model is None:
        return []
    exploration = settings.exploration
    ratio = model.ess / model.n
    evidence = {
        "n": model.n,
        "ess": model.ess,
        "ess_ratio": ratio,
        "algorithm": exploration.algorithm.value,
        "lift": {} if lift is None else lift.as_dict(),
    }
    if ratio < LOW_ESS_RATIO:
        change = _widen(exploration)
        return [] if change is None else [_widening(model, ratio, exploration, change, evidence)]
    if ratio >= HEALTHY_ESS_RATIO and _winning(lift):
        change = _narrow(exploration)
        return (
            []
            if change is None
            else [_narrowing(model, ratio, exploration, change, lift, evidence)]
        )
    return []


def _judged_model(settings: Settings, evaluation: Evaluation | None) -> PolicyEstimate | None:
    """The model's estimate, when it is enough to judge exploration by."""
    if settings.automation == AutomationLevel.MANUAL:
        return None  # exploration only shapes what the model serves
    model = _estimate(evaluation, Policy.MODEL)
    if model is None or model.ess is None or model.n < OPE_MIN_DECISIONS:
        return None
    return model


def _winning(lift: Lift | None) -> bool:
    """Treatment significantly ahead of the holdout."""
    return (
        lift is not None
        and lift.ci_low is not None
        and lift.ci_low > 0
        and lift.p_value is not None
        and lift.p_value < WINNING_ALPHA
    )


def _widening(
    model: PolicyEstimate, ratio: float, exploration: Exploration, change: dict, evidence: dict
) -> Proposal:
    return Proposal(
        spec=CHANGE_EXPLORATION,
        subject="exploration",
        severity=Severity.INFO,
        title="Let the model try more options: there is too little data on its choices.",
        detail=(
            f"Only {ratio:.1%} of the last {model.n} decisions are informative about what "
            f"the model would do (effective sample size {model.ess:.0f}, below "
            f"{LOW_ESS_RATIO:.0%}), so its estimates are shaky and it may be stuck on "
            f"early favourites. Applying widens exploration: {_describe(change, exploration)}."
        ),
        evidence=evidence,
        patch={"exploration": change},
    )


def _narrowing(
    model: PolicyEstimate,
    ratio: float,
    exploration: Exploration,
    change: dict,
    lift: Lift,
    evidence: dict,
) -> Proposal:
    return Proposal(
        spec=CHANGE_EXPLORATION,
        subject="exploration",
        severity=Severity.INFO,
        title="The model is winning: spend less on trying options, more on the best ones.",
        detail=(
            f"Treatment beats holdout (lift interval from {lift.ci_low:+.1%}, "
            f"p = {lift.p_value:.2g}) and {ratio:.0%} of the last {model.n} decisions inform "
            f"the model's choices (effective sample size {model.ess:.0f}). Applying narrows "
            f"exploration back towards its default: {_describe(change, exploration)}."
        ),
        evidence=evidence,
        patch={"exploration": change},
    )


def _widen(exploration: Exploration) -> dict | None:
    algorithm = exploration.algorithm
    if algorithm == ExplorationAlgorithm.EPSILON:
        epsilon = float(exploration.epsilon)
        if epsilon >= EPSILON_MAX:
            return None
        return {
            "epsilon": min(
                EPSILON_MAX, max(2 * exploration.epsilon, EXPLORATION_DEFAULTS["epsilon"])
            )
        }
    if algorithm == ExplorationAlgorithm.SQUARECB:  # a smaller gamma scale spreads wider
        gamma = float(exploration.gamma_scale)
        return (
            None if gamma <= GAMMA_SCALE_MIN else {"gamma_scale": max(GAMMA_SCALE_MIN, gamma / 2)}
        )
    name, cap = _ensemble_size(exploration)
    size = int(getattr(exploration, name))
    return None if size >= cap else {name: min(cap, size + 2)}


def _narrow(exploration: Exploration) -> dict | None:
    """One step back towards the default; never past it (the user's own narrower setting
    is theirs to keep)."""
    algorithm = exploration.algorithm
    if algorithm == ExplorationAlgorithm.EPSILON:
        default = EXPLORATION_DEFAULTS["epsilon"]
        epsilon = float(exploration.epsilon)
        return None if epsilon <= default else {"epsilon": max(default, epsilon / 2)}
    if algorithm == ExplorationAlgorithm.SQUARECB:
        default = EXPLORATION_DEFAULTS["gamma_scale"]
        gamma = float(exploration.gamma_scale)
        return None if gamma >= default else {"gamma_scale": min(default, gamma * 2)}
    name, _cap = _ensemble_size(exploration)
    default = EXPLORATION_DEFAULTS[name]
    size = int(getattr(exploration, name))
    return None if size <= default else {name: max(default, size - 2)}


def _ensemble_size(exploration: Exploration) -> tuple[str, int]:
    """The size setting of ``bag`` or ``cover`` and its cap."""
    if exploration.algorithm == ExplorationAlgorithm.BAG:
        return "bag_size", BAG_SIZE_MAX
    return "cover_size", COVER_SIZE_MAX


def _describe(change: Mapping, exploration: Exploration) -> str:
    return ", ".join(
        f"{name} {getattr(exploration, name)} → {value}" for name, value in change.items()
    )
