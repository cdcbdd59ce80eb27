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
Every threshold is a constant next to its rule and stated in docs/recommendations.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hpe_core.recommend.model_rules import change_exploration, model_worse_than_baseline
from hpe_core.recommend.proposals import (
    AUTO_APPLY_KINDS,
    KINDS,
    Proposal,
    auto_apply,
    counts,
    make,
    number,
    percent,
    pvalue,
)
from hpe_core.recommend.targeting_rules import MIN_ACTIONS, channel_segments, retire_actions

__all__ = ["AUTO_APPLY_KINDS", "KINDS", "MIN_ACTIONS", "Proposal", "auto_apply", "propose"]

#: holdout_underpowered: fire when powering the lift target would take more than
#: UNDERPOWERED_DAYS more days; propose the holdout share that powers it in TARGET_DAYS.
UNDERPOWERED_DAYS = 28
TARGET_DAYS = 14
MAX_HOLDOUT_PERCENT = 50.0
#: Without a power estimate (no holdout engagement yet), wait this long before calling it.
NO_SIGNAL_DAYS = 7


def propose(
    settings: Mapping,
    summary: Mapping | None,
    evaluation: Mapping | None,
    *,
    days_observed: int | None = None,
) -> list[Proposal]:
    """Every recommendation the numbers support, most urgent first.

    :param settings: the configuration's current (validated) settings
    :param summary: the metrics summary block (None or partial: rules needing it are skipped)
    :param evaluation: the off-policy evaluation (None when it failed: its rules are skipped)
    :param days_observed: days the configuration has been measured (for the holdout rule
        when no power estimate exists yet)
    """
    summary = summary or {}
    proposals: list[Proposal] = []
    proposals += srm_alarm(summary)
    proposals += model_worse_than_baseline(settings, evaluation)
    proposals += retire_actions(settings, summary)
    proposals += channel_segments(settings, summary)
    proposals += change_exploration(settings, summary, evaluation)
    proposals += holdout_underpowered(settings, summary, days_observed)
    return proposals


# --- srm_alarm ----------------------------------------------------------------------------


def srm_alarm(summary: Mapping) -> list[Proposal]:
    srm = summary.get("srm") or {}
    if not srm.get("alarm"):
        return []
    expected, observed = srm.get("expected_holdout_share"), srm.get("observed_holdout_share")
    return [
        make(
            "srm_alarm",
            "",
            "critical",
            "The holdout group is not the size it should be, so the lift cannot be trusted.",
            f"The holdout should receive {percent(expected)} of decisions but received "
            f"{percent(observed)} (chi-square p = {pvalue(srm.get('p_value'))}). Assignment "
            "is a fixed hash, so a gap this large means something removes or adds decisions "
            "after assignment: users filtered out after they were assigned (e.g. a campaign "
            "tool that drops holdout users), bots or test traffic hitting one group, "
            "decisions logged twice, or holdout.percent changed during the period. Find the "
            "cause before acting on the lift; there is nothing to apply.",
            {
                key: srm.get(key)
                for key in (
                    "expected_holdout_share",
                    "observed_holdout_share",
                    "chi_square",
                    "p_value",
                )
            }
            | {"decisions": dict(summary.get("decisions") or {})},
            None,
        )
    ]


# --- holdout_underpowered -----------------------------------------------------------------


def holdout_underpowered(
    settings: Mapping, summary: Mapping, days_observed: int | None
) -> list[Proposal]:
    power = summary.get("power") or {}
    if not power:
        return []
    days_more = number(power.get("days_more"))
    holdout_engagements, holdout_decisions = counts(summary, "holdout")
    _, treatment_decisions = counts(summary, "treatment")
    if days_more is not None:
        if days_more <= UNDERPOWERED_DAYS:
            return []
    elif not (
        holdout_engagements == 0
        and holdout_decisions + treatment_decisions > 0
        and (days_observed or 0) >= NO_SIGNAL_DAYS
    ):
        return []
    current = float((settings.get("holdout") or {}).get("percent", 10.0))
    target = _powering_percent(power, current, holdout_decisions)
    patch = None if target <= current else {"holdout": {"percent": target}}
    evidence = {
        "days_more": power.get("days_more"),
        "target_lift": power.get("target_lift"),
        "baseline_rate": power.get("baseline_rate"),
        "decisions_per_day": power.get("decisions_per_day"),
        "required_holdout_decisions": power.get("required_holdout_decisions"),
        "detectable_lift": power.get("detectable_lift"),
        "holdout_decisions": holdout_decisions,
        "holdout_engagements": holdout_engagements,
        "holdout_percent": current,
        "proposed_percent": target,
    }
    when = (
        f"about {days_more:.0f} more days"
        if days_more is not None
        else "an unknown time (no holdout engagement yet)"
    )
    if patch is None:
        action = (
            "The holdout is already at its maximum, so run longer, send more traffic, or "
            "accept a larger detectable lift."
        )
    else:
        action = (
            f"Applying raises holdout.percent from {current:g} to {target:g} so the "
            f"comparison is powered within about {TARGET_DAYS} days. Fewer people get the "
            "model meanwhile, so a person decides."
        )
    return [
        make(
            "holdout_underpowered",
            "holdout",
            "info",
            "The holdout group is too small to prove the lift you are aiming for soon.",
            f"Detecting the target lift ({percent(power.get('target_lift'))}) with 80% power "
            f"needs {when} at the current holdout size. {action}",
            evidence,
            patch,
        )
    ]


def _powering_percent(power: Mapping, current: float, holdout_decisions: int) -> float:
    """The holdout percent that collects the required holdout decisions in TARGET_DAYS.

    An approximation: the required count is taken as fixed although a larger holdout
    shrinks treatment a little. Without a power estimate (or when the estimate asks for
    no more than today's share), double the holdout. Capped at MAX_HOLDOUT_PERCENT.
    """
    required = number(power.get("required_holdout_decisions"))
    per_day = number(power.get("decisions_per_day"))
    target = 0.0
    if required is not None and per_day:
        missing = max(required - holdout_decisions, 0.0)
        share = 100 * missing / (per_day * TARGET_DAYS)
        # A vanishing daily volume makes the share overflow: that is "as much as allowed".
        target = float(math.ceil(share)) if share < MAX_HOLDOUT_PERCENT else MAX_HOLDOUT_PERCENT
    if target <= current:
        target = current * 2
    return float(min(MAX_HOLDOUT_PERCENT, target))
