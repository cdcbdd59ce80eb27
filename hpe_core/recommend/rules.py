"""The recommendation rules: pure functions from the numbers to proposed settings changes.

:func:`propose` reads a configuration's settings, the metrics summary of the last 30 days
(:func:`hpe_core.measure.metrics.summary_for`) and the off-policy evaluation
(:func:`hpe_core.measure.evaluation.evaluate`) and returns what it would change, each with the
evidence it rests on. No database, no clock: the same numbers give the same proposals,
which is what lets the measurement pass run every few minutes without churning.
:mod:`hpe_core.recommend.recommendations` stores and applies them.

The experiment's health (SRM, holdout power) is judged here; the model's rules are in
:mod:`hpe_core.recommend.model_rules`, the offers' and channels' in
:mod:`hpe_core.recommend.targeting_rules`.
Every threshold is a constant next to its rule and stated in docs/recommendations.md;
every kind's :class:`~hpe_core.recommend.proposals.KindSpec` sits next to its rule too,
and :data:`SPECS` gathers them.
"""

from __future__ import annotations

import dataclasses
import math

from hpe_core.recommend.learning_rules import (
    PREFERENCES_SHIFTED,
    TUNE_LEARNING,
    preferences_shifted,
    tune_learning,
)
from hpe_core.recommend.model_rules import (
    CHANGE_EXPLORATION,
    MODEL_WORSE_THAN_BASELINE,
    change_exploration,
    model_worse_than_baseline,
)
from hpe_core.recommend.proposals import (
    KindSpec,
    Proposal,
    RecommendationKind,
    percent,
    pvalue,
)
from hpe_core.recommend.targeting_rules import (
    CHANNEL_SEGMENT_UNDERPERFORMS,
    MIN_ACTIONS,
    RETIRE_ACTION,
    channel_segments,
    retire_actions,
)
from hpe_core.results import DriftNotice, Evaluation, Power, Summary, TuningResult
from hpe_core.store.vocabulary import Severity, Variant
from hpe_core.tenancy.settings_types import Settings

__all__ = [
    "AUTO_APPLY_KINDS",
    "MIN_ACTIONS",
    "RULE_KINDS",
    "SPECS",
    "Proposal",
    "auto_apply",
    "propose",
]

#: holdout_underpowered: fire when powering the lift target would take more than
#: UNDERPOWERED_DAYS more days; propose the holdout share that powers it in TARGET_DAYS.
UNDERPOWERED_DAYS = 28
TARGET_DAYS = 14
MAX_HOLDOUT_PERCENT = 50.0
#: Without a power estimate (no holdout engagement yet), wait this long before calling it.
NO_SIGNAL_DAYS = 7

#: An alarm: nothing to apply, a person investigates.
SRM_ALARM = KindSpec(RecommendationKind.SRM_ALARM, auto_apply=False)
#: Changes who is measured (fewer people get the model): a person decides.
HOLDOUT_UNDERPOWERED = KindSpec(RecommendationKind.HOLDOUT_UNDERPOWERED, auto_apply=False)
#: The circuit breaker's (raised by :mod:`hpe_core.recommend.circuit_breaker`, not by
#: :func:`propose`): restoring automation after a trip is a person's call.
CIRCUIT_BREAKER = KindSpec(RecommendationKind.CIRCUIT_BREAKER, auto_apply=False)

_RULE_SPECS = (
    SRM_ALARM,
    MODEL_WORSE_THAN_BASELINE,
    RETIRE_ACTION,
    CHANNEL_SEGMENT_UNDERPERFORMS,
    CHANGE_EXPLORATION,
    HOLDOUT_UNDERPOWERED,
    PREFERENCES_SHIFTED,
    TUNE_LEARNING,
)
#: The kinds :func:`propose` raises (the measurement pass resolves them when they clear).
RULE_KINDS = tuple(spec.kind for spec in _RULE_SPECS)
#: Every kind's spec.
SPECS: dict[RecommendationKind, KindSpec] = {
    spec.kind: spec for spec in (*_RULE_SPECS, CIRCUIT_BREAKER)
}
#: Kinds the engine may apply by itself in ``autonomous`` mode.
AUTO_APPLY_KINDS = frozenset(kind for kind, spec in SPECS.items() if spec.auto_apply)


def auto_apply(kind: str, patch: object) -> bool:
    """Whether a stored recommendation of ``kind`` with ``patch`` may be applied by the
    engine (a kind this version does not know never is)."""
    spec = SPECS.get(kind)
    return spec is not None and spec.auto_apply and patch is not None


def propose(
    settings: Settings,
    summary: Summary | None,
    evaluation: Evaluation | None,
    *,
    days_observed: int | None = None,
    drift: DriftNotice | None = None,
    tuning: TuningResult | None = None,
) -> list[Proposal]:
    """Every recommendation the numbers support, most urgent first.

    :param settings: the configuration's current settings
    :param summary: the metrics summary (None: the rules needing it are skipped)
    :param evaluation: the off-policy evaluation (None when it failed: its rules are skipped)
    :param days_observed: days the configuration has been measured (for the holdout rule
        when no power estimate exists yet)
    :param drift: the learner's latest drift of the last
        :data:`~hpe_core.recommend.learning_rules.NOTICE_DAYS` days, if any
    :param tuning: the last evaluation of candidate learning settings, if it is of the
        current ones
    """
    measured = summary is not None
    return [
        *(srm_alarm(summary) if measured else ()),
        *model_worse_than_baseline(settings, evaluation),
        *(retire_actions(settings, summary) if measured else ()),
        *(channel_segments(settings, summary) if measured else ()),
        *change_exploration(settings, summary.lift if measured else None, evaluation),
        *(holdout_underpowered(settings, summary, days_observed) if measured else ()),
        *preferences_shifted(drift),
        *tune_learning(tuning),
    ]


# --- srm_alarm ----------------------------------------------------------------------------


def srm_alarm(summary: Summary) -> list[Proposal]:
    srm = summary.srm
    if not srm.alarm:
        return []
    evidence = {
        "expected_holdout_share": srm.expected_holdout_share,
        "observed_holdout_share": srm.observed_holdout_share,
        "chi_square": srm.chi_square,
        "p_value": srm.p_value,
        "decisions": dataclasses.asdict(summary.decisions),
    }
    return [
        Proposal(
            spec=SRM_ALARM,
            subject="",
            severity=Severity.CRITICAL,
            title="The holdout group is not the size it should be, so the lift cannot be trusted.",
            detail=(
                f"The holdout should receive {percent(srm.expected_holdout_share)} of "
                f"decisions but received {percent(srm.observed_holdout_share)} (chi-square "
                f"p = {pvalue(srm.p_value)}). Assignment is a fixed hash, so a gap this large "
                "means something removes or adds decisions after assignment: users filtered "
                "out after they were assigned (e.g. a campaign tool that drops holdout "
                "users), bots or test traffic hitting one group, decisions logged twice, or "
                "holdout.percent changed during the period. Find the cause before acting on "
                "the lift; there is nothing to apply."
            ),
            evidence=evidence,
            patch=None,
        )
    ]


# --- holdout_underpowered -----------------------------------------------------------------


def holdout_underpowered(
    settings: Settings, summary: Summary, days_observed: int | None
) -> list[Proposal]:
    power = summary.power
    holdout_engagements, holdout_decisions = summary.counts(Variant.HOLDOUT)
    if not _underpowered(summary, days_observed):
        return []
    current = float(settings.holdout.percent)
    target = _powering_percent(power, current, holdout_decisions)
    patch = None if target <= current else {"holdout": {"percent": target}}
    evidence = {
        "days_more": power.days_more,
        "target_lift": power.target_lift,
        "baseline_rate": power.baseline_rate,
        "decisions_per_day": power.decisions_per_day,
        "required_holdout_decisions": power.required_holdout_decisions,
        "detectable_lift": power.detectable_lift,
        "holdout_decisions": holdout_decisions,
        "holdout_engagements": holdout_engagements,
        "holdout_percent": current,
        "proposed_percent": target,
    }
    return [
        Proposal(
            spec=HOLDOUT_UNDERPOWERED,
            subject="holdout",
            severity=Severity.INFO,
            title="The holdout group is too small to prove the lift you are aiming for soon.",
            detail=(
                f"Detecting the target lift ({percent(power.target_lift)}) with 80% power "
                f"needs {_when(power)} at the current holdout size. "
                f"{_what_applying_does(patch, current, target)}"
            ),
            evidence=evidence,
            patch=patch,
        )
    ]


def _underpowered(summary: Summary, days_observed: int | None) -> bool:
    """Powering the lift target takes over :data:`UNDERPOWERED_DAYS` more days, or (no
    estimate) a week of decisions brought no holdout engagement at all."""
    days_more = summary.power.days_more
    if days_more is not None:
        return days_more > UNDERPOWERED_DAYS
    holdout_engagements, holdout_decisions = summary.counts(Variant.HOLDOUT)
    _, treatment_decisions = summary.counts(Variant.TREATMENT)
    return (
        holdout_engagements == 0
        and holdout_decisions + treatment_decisions > 0
        and (days_observed or 0) >= NO_SIGNAL_DAYS
    )


def _when(power: Power) -> str:
    if power.days_more is None:
        return "an unknown time (no holdout engagement yet)"
    return f"about {power.days_more:.0f} more days"


def _what_applying_does(patch: dict | None, current: float, target: float) -> str:
    if patch is None:
        return (
            "The holdout is already at its maximum, so run longer, send more traffic, or "
            "accept a larger detectable lift."
        )
    return (
        f"Applying raises holdout.percent from {current:g} to {target:g} so the "
        f"comparison is powered within about {TARGET_DAYS} days. Fewer people get the "
        "model meanwhile, so a person decides."
    )


def _powering_percent(power: Power, current: float, holdout_decisions: int) -> float:
    """The holdout percent that collects the required holdout decisions in TARGET_DAYS.

    An approximation: the required count is taken as fixed although a larger holdout
    shrinks treatment a little. Without a power estimate (or when the estimate asks for
    no more than today's share), double the holdout. Capped at MAX_HOLDOUT_PERCENT.
    """
    required, per_day = power.required_holdout_decisions, power.decisions_per_day
    target = 0.0
    if required is not None and per_day:
        missing = max(required - holdout_decisions, 0.0)
        share = 100 * missing / (per_day * TARGET_DAYS)
        # A vanishing daily volume makes the share overflow: that is "as much as allowed".
        target = float(math.ceil(share)) if share < MAX_HOLDOUT_PERCENT else MAX_HOLDOUT_PERCENT
    if target <= current:
        target = current * 2
    return float(min(MAX_HOLDOUT_PERCENT, target))
