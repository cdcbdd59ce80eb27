"""Recommendation rules about which offers and channels reach whom: retire an action
that does worse than the others, stop a channel for a segment it does not work for
(pure functions; the same two-proportion test as the lift's p-value)."""

from __future__ import annotations

from collections.abc import Mapping

from hpe_core.measure.stats import lift
from hpe_core.recommend.proposals import Proposal, counts, make

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
#: channel comparisons made (auto-applied: a chance finding must not cut off a channel).
SEGMENT_ALPHA = 0.01
SEGMENT_MIN_DECISIONS = 200
#: Reports' buckets for "no segment in the context" and "beyond the 50 largest": no
#: exclusion rule can name them.
UNNAMED_SEGMENTS = ("(none)", "(other)")


# --- retire_action ------------------------------------------------------------------------


def retire_actions(settings: Mapping, summary: Mapping) -> list[Proposal]:
    actions = list(settings.get("actions") or [])
    if len(actions) <= MIN_ACTIONS:
        return []
    baseline = (settings.get("holdout") or {}).get("baseline")
    fixed = baseline.get("action_id") if isinstance(baseline, Mapping) else None
    per_action = {
        action_id: counts(block, "treatment")
        for action_id, block in (summary.get("actions") or {}).items()
    }
    total_engagements = sum(e for e, _ in per_action.values())
    total_decisions = sum(d for _, d in per_action.values())
    current = {action["id"] for action in actions}
    tested = [
        action_id
        for action_id, (_, decisions) in per_action.items()
        if action_id in current
        and action_id != fixed
        and decisions >= RETIRE_MIN_DECISIONS
        and total_decisions - decisions >= RETIRE_MIN_DECISIONS
    ]
    if not tested:
        return []
    threshold = RETIRE_ALPHA / len(tested)  # Bonferroni over the actions tested
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
            worse.append((p_value, action_id, engagements, decisions, rest_e, rest_d))
    worse.sort()  # the clearest cases first; never retire so many that too few remain
    proposals = []
    kept = worse[: min(len(actions) - MIN_ACTIONS, MAX_RETIREMENTS)]
    for p_value, action_id, engagements, decisions, rest_e, rest_d in kept:
        rate, rest_rate = engagements / decisions, rest_e / rest_d
        proposals.append(
            make(
                "retire_action",
                action_id,
                "warning",
                f"Retire “{action_id}”: it engages people less than your other actions.",
                f"In treatment, {action_id} engaged {rate:.2%} of {decisions} decisions against "
                f"{rest_rate:.2%} for the other actions (two-proportion test p = "
                f"{p_value:.2g}, below {threshold:.2g}: {RETIRE_ALPHA} corrected for "
                f"{len(tested)} actions tested). Applying removes it from the actions; its "
                "history stays in the reports.",
                {
                    "action_id": action_id,
                    "decisions": decisions,
                    "engagements": engagements,
                    "engagement_rate": rate,
                    "rest_decisions": rest_d,
                    "rest_engagements": rest_e,
                    "rest_engagement_rate": rest_rate,
                    "p_value": p_value,
                    "threshold": threshold,
                    "actions_tested": len(tested),
                },
                {"actions": [a for a in actions if a["id"] != action_id]},
            )
        )
    return proposals


# --- channel_segment_underperforms --------------------------------------------------------


def channel_segments(settings: Mapping, summary: Mapping) -> list[Proposal]:
    key = (settings.get("goals") or {}).get("segment_key") or "segment"
    channels = set(settings.get("channels") or [])
    existing = list((settings.get("guardrails") or {}).get("channel_exclusions") or [])
    comparisons = []  # (segment, channel, counts, best channel, best counts)
    for segment, by_channel in (summary.get("segments") or {}).items():
        if segment in UNNAMED_SEGMENTS or not isinstance(by_channel, Mapping):
            continue
        counted = {
            channel: counts(block, "treatment")
            for channel, block in by_channel.items()
            if channel in channels and not _is_excluded(existing, channel, key, segment)
        }
        counted = {c: ed for c, ed in counted.items() if ed[1] >= SEGMENT_MIN_DECISIONS}
        if len(counted) < 2:
            continue
        best = max(sorted(counted), key=lambda c: counted[c][0] / counted[c][1])
        comparisons += [
            (segment, channel, counted[channel], best, counted[best])
            for channel in sorted(counted)
            if channel != best
        ]
    if not comparisons:
        return []
    threshold = SEGMENT_ALPHA / len(comparisons)  # Bonferroni over the comparisons made
    proposals = []
    for segment, channel, (e, d), best, (best_e, best_d) in comparisons:
        p_value = lift(e, d, best_e, best_d).p_value
        if p_value is None or p_value >= threshold or not e / d < best_e / best_d:
            continue
        rule = {"channel": channel, "key": key, "in": [segment]}
        proposals.append(
            make(
                "channel_segment_underperforms",
                f"{channel}:{segment}"[:256],
                "warning",
                f"Stop using {channel} for the “{segment}” segment: {best} works better for them.",
                f"For {key} = {segment}, {channel} engaged {e / d:.2%} of {d} treatment "
                f"decisions against {best_e / best_d:.2%} of {best_d} on {best} "
                f"(two-proportion test p = {p_value:.2g}, below {threshold:.2g}: "
                f"{SEGMENT_ALPHA} corrected for {len(comparisons)} comparisons). Applying adds "
                f"a channel exclusion: decisions on {channel} for this segment answer "
                "'excluded', so your campaign tool can reach them on another channel.",
                {
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
                    "comparisons": len(comparisons),
                    "exclusion": rule,
                },
                {"guardrails": {"channel_exclusions": [*existing, rule]}},
            )
        )
    return proposals


def _is_excluded(exclusions: list, channel: str, key: str, segment: object) -> bool:
    return any(
        rule.get("channel") == channel and rule.get("key") == key and segment in rule.get("in", ())
        for rule in exclusions
    )
