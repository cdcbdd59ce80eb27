"""Recommendation rules about which offers and channels reach whom: retire an action
that does worse than the others, stop a channel for a segment it does not work for
(pure functions; the same two-proportion test as the lift's p-value)."""

from __future__ import annotations

from typing import NamedTuple

from hpe_core.errors import Conflict
from hpe_core.measure.stats import lift
from hpe_core.recommend.proposals import KindSpec, Proposal, RecommendationKind
from hpe_core.results import NO_SEGMENT, OTHER_SEGMENTS, Comparison, Summary
from hpe_core.store.models import Recommendation
from hpe_core.store.vocabulary import Severity, Variant
from hpe_core.tenancy.settings_types import ChannelExclusion, Settings

#: retire_action: significance (before the Bonferroni correction over the actions
#: tested) and the treatment decisions an action needs before it is judged.
RETIRE_ALPHA = 0.01
RETIRE_MIN_DECISIONS = 200
#: Retiring never leaves fewer actions than this: a bandit needs a choice.
MIN_ACTIONS = 2
#: At most this many retirements are proposed at once (the clearest first): each carries
#: the whole remaining action list, and a handful is what a person can review.
MAX_RETIREMENTS = 5

#: channel_segment_underperforms: as retire_action, Bonferroni-corrected over the
#: channel comparisons made (a chance finding must not cut off a channel). A person
#: applies it, never the engine: see CHANNEL_SEGMENT_UNDERPERFORMS below.
SEGMENT_ALPHA = 0.01
SEGMENT_MIN_DECISIONS = 200
#: Reports' buckets for "no segment in the context" and "beyond the largest ones kept":
#: no exclusion rule can name them.
UNNAMED_SEGMENTS = (NO_SEGMENT, OTHER_SEGMENTS)


# --- retire_action ------------------------------------------------------------------------


def retirement_patch(settings: Settings, action_id: str) -> dict:
    """The settings patch that removes one action (the rest as they are stored)."""
    return {
        "actions": [dict(action.document) for action in settings.actions if action.id != action_id]
    }


def _rebase_retirement(row: Recommendation, settings: Settings) -> dict:
    """Retire the action from the current actions, if that still leaves a choice."""
    if row.subject not in settings.actions_by_id:
        raise Conflict(f"Action {row.subject} is no longer among the actions.")
    if len(settings.actions) - 1 < MIN_ACTIONS:
        raise Conflict(f"Retiring {row.subject} would leave fewer than {MIN_ACTIONS} actions.")
    if settings.holdout.baseline_action == row.subject:
        raise Conflict(f"Action {row.subject} is the holdout's fixed baseline.")
    return retirement_patch(settings, row.subject)


#: The engine may retire an action by itself: the bandit keeps choosing among the rest.
RETIRE_ACTION = KindSpec(
    RecommendationKind.RETIRE_ACTION, auto_apply=True, rebase=_rebase_retirement
)


class _ActionTest(NamedTuple):
    """One action against the others (in treatment); sorts by p-value, clearest first."""

    p_value: float
    action_id: str
    engagements: int
    decisions: int
    rest_engagements: int
    rest_decisions: int

    @property
    def rate(self) -> float:
        return self.engagements / self.decisions

    @property
    def rest_rate(self) -> float:
        return self.rest_engagements / self.rest_decisions


def retire_actions(settings: Settings, summary: Summary) -> list[Proposal]:
    if len(settings.actions) <= MIN_ACTIONS:
        return []
    per_action = {
        action_id: block.counts(Variant.TREATMENT) for action_id, block in summary.actions.items()
    }
    tested = _testable_actions(settings, per_action)
    if not tested:
        return []
    threshold = RETIRE_ALPHA / len(tested)  # Bonferroni over the actions tested
    worse = sorted(_worse_than_the_rest(tested, per_action, threshold))
    # The clearest cases first; never retire so many that too few remain.
    kept = worse[: min(len(settings.actions) - MIN_ACTIONS, MAX_RETIREMENTS)]
    return [_retirement(settings, test, threshold, len(tested)) for test in kept]


def _testable_actions(settings: Settings, per_action: dict[str, tuple[int, int]]) -> list[str]:
    """Current actions, not the fixed baseline, with enough decisions on both sides."""
    total_decisions = sum(decisions for _, decisions in per_action.values())
    return [
        action_id
        for action_id, (_, decisions) in per_action.items()
        if action_id in settings.actions_by_id
        and action_id != settings.holdout.baseline_action
        and decisions >= RETIRE_MIN_DECISIONS
        and total_decisions - decisions >= RETIRE_MIN_DECISIONS
    ]


def _worse_than_the_rest(
    tested: list[str], per_action: dict[str, tuple[int, int]], threshold: float
) -> list[_ActionTest]:
    """The tested actions significantly worse than all the other actions together."""
    total_engagements = sum(engagements for engagements, _ in per_action.values())
    total_decisions = sum(decisions for _, decisions in per_action.values())
    worse = []
    for action_id in tested:
        engagements, decisions = per_action[action_id]
        rest_e, rest_d = total_engagements - engagements, total_decisions - decisions
        p_value = lift(engagements, decisions, rest_e, rest_d).p_value
        if (
            p_value is not None
            and p_value < threshold
            and engagements / decisions < rest_e / rest_d
        ):
            worse.append(_ActionTest(p_value, action_id, engagements, decisions, rest_e, rest_d))
    return worse


def _retirement(settings: Settings, test: _ActionTest, threshold: float, n_tested: int) -> Proposal:
    action_id = test.action_id
    return Proposal(
        spec=RETIRE_ACTION,
        subject=action_id,
        severity=Severity.WARNING,
        title=f"Retire “{action_id}”: it engages people less than your other actions.",
        detail=(
            f"In treatment, {action_id} engaged {test.rate:.2%} of {test.decisions} decisions "
            f"against {test.rest_rate:.2%} for the other actions (two-proportion test p = "
            f"{test.p_value:.2g}, below {threshold:.2g}: {RETIRE_ALPHA} corrected for "
            f"{n_tested} actions tested). Applying removes it from the actions; its "
            "history stays in the reports."
        ),
        evidence={
            "action_id": action_id,
            "decisions": test.decisions,
            "engagements": test.engagements,
            "engagement_rate": test.rate,
            "rest_decisions": test.rest_decisions,
            "rest_engagements": test.rest_engagements,
            "rest_engagement_rate": test.rest_rate,
            "p_value": test.p_value,
            "threshold": threshold,
            "actions_tested": n_tested,
        },
        patch=retirement_patch(settings, action_id),
    )


# --- channel_segment_underperforms --------------------------------------------------------


def _exclusion_document(exclusion: ChannelExclusion) -> dict:
    return {"channel": exclusion.channel, "key": exclusion.key, "in": list(exclusion.values)}


def exclusion_patch(settings: Settings, rule: dict) -> dict:
    """The settings patch that adds one channel exclusion to the current ones."""
    current = [_exclusion_document(e) for e in settings.guardrails.channel_exclusions]
    return {"guardrails": {"channel_exclusions": current + ([] if rule in current else [rule])}}


def _rebase_exclusion(row: Recommendation, settings: Settings) -> dict:
    """Add the stored exclusion to the current ones (not the list stored with the patch)."""
    rule = row.evidence.get("exclusion") if row.evidence else None
    return row.patch if rule is None else exclusion_patch(settings, rule)


#: Not applied by the engine: channels differ in base rates for everyone (an email click
#: is not a web click), so cutting a channel's reach for a segment is a person's call.
CHANNEL_SEGMENT_UNDERPERFORMS = KindSpec(
    RecommendationKind.CHANNEL_SEGMENT_UNDERPERFORMS, auto_apply=False, rebase=_rebase_exclusion
)


class _ChannelTest(NamedTuple):
    """A channel against the segment's best channel (``(engagements, decisions)`` each)."""

    segment: str
    channel: str
    counts: tuple[int, int]
    best: str
    best_counts: tuple[int, int]


def channel_segments(settings: Settings, summary: Summary) -> list[Proposal]:
    comparisons = [
        test
        for segment, by_channel in summary.segments.items()
        if segment not in UNNAMED_SEGMENTS
        for test in _against_the_best(settings, segment, by_channel)
    ]
    if not comparisons:
        return []
    threshold = SEGMENT_ALPHA / len(comparisons)  # Bonferroni over the comparisons made
    proposals = []
    for test in comparisons:
        (e, d), (best_e, best_d) = test.counts, test.best_counts
        p_value = lift(e, d, best_e, best_d).p_value
        if p_value is None or p_value >= threshold or not e / d < best_e / best_d:
            continue
        proposals.append(_exclusion(settings, test, p_value, threshold, len(comparisons)))
    return proposals


def _against_the_best(
    settings: Settings, segment: str, by_channel: dict[str, Comparison]
) -> list[_ChannelTest]:
    """Each channel of one segment against its best channel, among the configured
    channels not yet excluded for it that have enough treatment decisions."""
    key = settings.goals.segment_key
    counted = {
        channel: block.counts(Variant.TREATMENT)
        for channel, block in by_channel.items()
        if channel in settings.channels and not _is_excluded(settings, channel, key, segment)
    }
    counted = {c: ed for c, ed in counted.items() if ed[1] >= SEGMENT_MIN_DECISIONS}
    if len(counted) < 2:
        return []
    best = max(sorted(counted), key=lambda c: counted[c][0] / counted[c][1])
    return [
        _ChannelTest(segment, channel, counted[channel], best, counted[best])
        for channel in sorted(counted)
        if channel != best
    ]


def _exclusion(
    settings: Settings, test: _ChannelTest, p_value: float, threshold: float, n_compared: int
) -> Proposal:
    key = settings.goals.segment_key
    segment, channel, best = test.segment, test.channel, test.best
    (e, d), (best_e, best_d) = test.counts, test.best_counts
    rule = {"channel": channel, "key": key, "in": [segment]}
    return Proposal(
        spec=CHANNEL_SEGMENT_UNDERPERFORMS,
        subject=f"{channel}:{segment}"[:256],
        severity=Severity.WARNING,
        title=f"Stop using {channel} for the “{segment}” segment: {best} works better for them.",
        detail=(
            f"For {key} = {segment}, {channel} engaged {e / d:.2%} of {d} treatment "
            f"decisions against {best_e / best_d:.2%} of {best_d} on {best} "
            f"(two-proportion test p = {p_value:.2g}, below {threshold:.2g}: "
            f"{SEGMENT_ALPHA} corrected for {n_compared} comparisons). Applying adds "
            f"a channel exclusion: decisions on {channel} for this segment answer "
            "'excluded', so your campaign tool can reach them on another channel."
        ),
        evidence={
            "segment_key": key,
            "segment": segment,
            "channel": channel,
            "decisions": d,
            "engagements": e,
            "engagement_rate": e / d,
            "best_channel": best,
            "best_decisions": best_d,
            "best_engagements": best_e,
            "best_engagement_rate": best_e / best_d,
            "p_value": p_value,
            "threshold": threshold,
            "comparisons": n_compared,
            "exclusion": rule,
        },
        patch=exclusion_patch(settings, rule),
    )


def _is_excluded(settings: Settings, channel: str, key: str, segment: object) -> bool:
    return any(
        rule.channel == channel and rule.key == key and segment in rule.values
        for rule in settings.guardrails.channel_exclusions
    )
