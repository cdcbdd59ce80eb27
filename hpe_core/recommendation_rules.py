"""The recommendation rules: pure functions from the numbers to proposed settings changes.

:func:`propose` reads a configuration's settings, the metrics summary of the last 30 days
(:func:`hpe_core.metrics.summary_for`) and the off-policy evaluation
(:func:`hpe_core.evaluation.evaluate`) and returns what it would change, each with the
evidence it rests on. No database, no clock: the same numbers give the same proposals,
which is what lets the measurement pass run every few minutes without churning.
:mod:`hpe_core.recommendations` stores and applies them. Every threshold is a constant
here and stated in docs/recommendations.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from hpe_core.stats import lift

# --- Thresholds ---------------------------------------------------------------------------

#: retire_action: significance (before the Bonferroni correction over the actions
#: tested) and the treatment decisions an action needs before it is judged.
RETIRE_ALPHA = 0.01
RETIRE_MIN_DECISIONS = 200
#: Retiring never leaves fewer actions than this: a bandit needs a choice.
MIN_ACTIONS = 2
#: At most this many retirements are proposed at once (the clearest first): each carries
#: the whole remaining action list, and a handful is what a person can review.
MAX_RETIREMENTS = 5

#: change_exploration: the model's effective sample size over the decisions evaluated.
#: Below LOW_ESS_RATIO the logged data barely covers what the model would do (explore
#: more); at or above HEALTHY_ESS_RATIO, with treatment significantly ahead, exploration
#: that was widened may come back towards its default. The gap avoids flip-flopping.
OPE_MIN_DECISIONS = 500
LOW_ESS_RATIO = 0.1
HEALTHY_ESS_RATIO = 0.3
WINNING_ALPHA = 0.01
EPSILON_MAX = 0.2
GAMMA_SCALE_MIN = 1.0
#: Bag and cover sizes cost one model evaluation each per decision: cap the widening.
BAG_SIZE_MAX = 10
COVER_SIZE_MAX = 10
EXPLORATION_DEFAULTS = {"epsilon": 0.05, "gamma_scale": 10.0, "bag_size": 5, "cover_size": 4}

#: holdout_underpowered: fire when powering the lift target would take more than
#: UNDERPOWERED_DAYS more days; propose the holdout share that powers it in TARGET_DAYS.
UNDERPOWERED_DAYS = 28
TARGET_DAYS = 14
MAX_HOLDOUT_PERCENT = 50.0
#: Without a power estimate (no holdout engagement yet), wait this long before calling it.
NO_SIGNAL_DAYS = 7

#: channel_segment_underperforms: as retire_action, Bonferroni-corrected over the
#: channel comparisons made (auto-applied: a chance finding must not cut off a channel).
SEGMENT_ALPHA = 0.01
SEGMENT_MIN_DECISIONS = 200
#: Reports' buckets for "no segment in the context" and "beyond the 50 largest": no
#: exclusion rule can name them.
UNNAMED_SEGMENTS = ("(none)", "(other)")

KINDS = (
    "srm_alarm",
    "model_worse_than_baseline",
    "retire_action",
    "channel_segment_underperforms",
    "change_exploration",
    "holdout_underpowered",
)
#: Kinds the engine may apply by itself in ``autonomous`` mode. The others change who is
#: measured (holdout) or need a person to investigate (SRM, the circuit breaker).
AUTO_APPLY_KINDS = frozenset(
    {
        "retire_action",
        "change_exploration",
        "channel_segment_underperforms",
        "model_worse_than_baseline",
    }
)


@dataclasses.dataclass(frozen=True)
class Proposal:
    """One recommended change (or alarm) for a configuration.

    :param kind: one of :data:`KINDS` (or ``circuit_breaker``)
    :param subject: what it is about within the kind (an action id, ``email:bargain``);
        one stored recommendation per ``(kind, subject)``
    :param severity: ``info``, ``warning`` or ``critical``
    :param title: one plain-language sentence for a marketer
    :param detail: why, and what applying it does
    :param evidence: the numbers it rests on
    :param patch: a JSON merge patch of the settings, or None when a person must act
    :param auto_apply: whether the engine may apply it itself in ``autonomous`` mode
    """

    kind: str
    subject: str
    severity: str
    title: str
    detail: str
    evidence: dict
    patch: dict | None
    auto_apply: bool


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
    proposals += _srm_alarm(summary)
    proposals += _model_worse_than_baseline(settings, evaluation)
    proposals += _retire_actions(settings, summary)
    proposals += _channel_segments(settings, summary)
    proposals += _change_exploration(settings, summary, evaluation)
    proposals += _holdout_underpowered(settings, summary, days_observed)
    return proposals


def auto_apply(kind: str, patch: object) -> bool:
    """Whether a recommendation of ``kind`` with ``patch`` may be applied by the engine."""
    return kind in AUTO_APPLY_KINDS and patch is not None


def _proposal(kind, subject, severity, title, detail, evidence, patch) -> Proposal:
    return Proposal(
        kind, subject, severity, title, detail, evidence, patch, auto_apply(kind, patch)
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _counts(block: Mapping | None, variant: str) -> tuple[int, int]:
    """``(engagements, decisions)`` of one variant from a summary slice."""
    block = block or {}
    engagements = _number((block.get("engagements") or {}).get(variant)) or 0
    decisions = _number((block.get("decisions") or {}).get(variant)) or 0
    return int(engagements), int(decisions)


def _rate(engagements: int, decisions: int) -> float | None:
    return engagements / decisions if decisions else None


# --- srm_alarm ----------------------------------------------------------------------------


def _srm_alarm(summary: Mapping) -> list[Proposal]:
    srm = summary.get("srm") or {}
    if not srm.get("alarm"):
        return []
    expected, observed = srm.get("expected_holdout_share"), srm.get("observed_holdout_share")
    return [
        _proposal(
            "srm_alarm",
            "",
            "critical",
            "The holdout group is not the size it should be, so the lift cannot be trusted.",
            f"The holdout should receive {_percent(expected)} of decisions but received "
            f"{_percent(observed)} (chi-square p = {_pvalue(srm.get('p_value'))}). Assignment "
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


def _percent(share: object) -> str:
    value = _number(share)
    return "an unknown share" if value is None else f"{value:.1%}"


def _pvalue(value: object) -> str:
    number = _number(value)
    return "unknown" if number is None else f"{number:.2g}"


# --- model_worse_than_baseline ------------------------------------------------------------


def _model_worse_than_baseline(settings: Mapping, evaluation: Mapping | None) -> list[Proposal]:
    if settings.get("automation") == "manual":
        return []  # the baseline already serves everyone
    policies = (evaluation or {}).get("policies") or {}
    model, baseline = policies.get("model") or {}, policies.get("baseline") or {}
    n = _number(model.get("n"))
    ci_high, baseline_dr = _number(model.get("ci_high")), _number(baseline.get("dr"))
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
        _proposal(
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


# --- retire_action ------------------------------------------------------------------------


def _retire_actions(settings: Mapping, summary: Mapping) -> list[Proposal]:
    actions = list(settings.get("actions") or [])
    if len(actions) <= MIN_ACTIONS:
        return []
    baseline = (settings.get("holdout") or {}).get("baseline")
    fixed = baseline.get("action_id") if isinstance(baseline, Mapping) else None
    per_action = {
        action_id: _counts(block, "treatment")
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
            _proposal(
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


def _channel_segments(settings: Mapping, summary: Mapping) -> list[Proposal]:
    key = (settings.get("goals") or {}).get("segment_key") or "segment"
    channels = set(settings.get("channels") or [])
    existing = list((settings.get("guardrails") or {}).get("channel_exclusions") or [])
    comparisons = []  # (segment, channel, counts, best channel, best counts)
    for segment, by_channel in (summary.get("segments") or {}).items():
        if segment in UNNAMED_SEGMENTS or not isinstance(by_channel, Mapping):
            continue
        counted = {
            channel: _counts(block, "treatment")
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
            _proposal(
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


# --- change_exploration -------------------------------------------------------------------


def _change_exploration(
    settings: Mapping, summary: Mapping, evaluation: Mapping | None
) -> list[Proposal]:
    if settings.get("automation") == "manual":
        return []  # exploration only shapes what the model serves
    model = ((evaluation or {}).get("policies") or {}).get("model") or {}
    n, ess = _number(model.get("n")), _number(model.get("ess"))
    if n is None or ess is None or n < OPE_MIN_DECISIONS:
        return []
    exploration = dict(settings.get("exploration") or {})
    ratio = ess / n
    lift_block = summary.get("lift") or {}
    ci_low, p_value = _number(lift_block.get("ci_low")), _number(lift_block.get("p_value"))
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
            _proposal(
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
            _proposal(
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


# --- holdout_underpowered -----------------------------------------------------------------


def _holdout_underpowered(
    settings: Mapping, summary: Mapping, days_observed: int | None
) -> list[Proposal]:
    power = summary.get("power") or {}
    if not power:
        return []
    days_more = _number(power.get("days_more"))
    holdout_engagements, holdout_decisions = _counts(summary, "holdout")
    _, treatment_decisions = _counts(summary, "treatment")
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
        _proposal(
            "holdout_underpowered",
            "holdout",
            "info",
            "The holdout group is too small to prove the lift you are aiming for soon.",
            f"Detecting the target lift ({_percent(power.get('target_lift'))}) with 80% power "
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
    required = _number(power.get("required_holdout_decisions"))
    per_day = _number(power.get("decisions_per_day"))
    target = 0.0
    if required is not None and per_day:
        missing = max(required - holdout_decisions, 0.0)
        share = 100 * missing / (per_day * TARGET_DAYS)
        # A vanishing daily volume makes the share overflow: that is "as much as allowed".
        target = float(math.ceil(share)) if share < MAX_HOLDOUT_PERCENT else MAX_HOLDOUT_PERCENT
    if target <= current:
        target = current * 2
    return float(min(MAX_HOLDOUT_PERCENT, target))
