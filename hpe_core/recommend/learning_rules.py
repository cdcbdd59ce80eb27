"""Recommendation rules about keeping up with change (pure functions): say when the
learner found that preferences shifted and what it did about it, and propose the learning
settings that self-tuning found better on the logged decisions."""

from __future__ import annotations

import math

from hpe_core.recommend.proposals import KindSpec, Proposal, RecommendationKind
from hpe_core.results import DriftNotice, TuningResult
from hpe_core.store.vocabulary import Severity

#: The notice stays open this long after the drift was found (the measurement pass only
#: passes a notice this recent), then resolves by itself.
NOTICE_DAYS = 7

# --- preferences_shifted --------------------------------------------------------------------

#: A notice: the engine already reacted (it retrained), nothing is left to apply.
PREFERENCES_SHIFTED = KindSpec(RecommendationKind.PREFERENCES_SHIFTED, auto_apply=False)


def preferences_shifted(drift: DriftNotice | None) -> list[Proposal]:
    """Say that the treatment's reward dropped, since when, and that the model re-learned.

    :param drift: the latest drift of the last :data:`NOTICE_DAYS` days, or None
    """
    if drift is None:
        return []
    span = drift.detected_at - drift.change_at
    days = max(1, math.ceil(span.total_seconds() / 86400))
    day_text = "day" if days == 1 else f"{days} days"
    drop = 1 - drift.recent_reward / drift.reference_reward if drift.reference_reward > 0 else None
    drop_text = "" if drop is None else f" ({drop:.0%} less)"
    return [
        Proposal(
            spec=PREFERENCES_SHIFTED,
            subject="",
            severity=Severity.INFO,
            title=(
                f"Preferences shifted on {drift.change_at.date().isoformat()}; the model "
                f"re-learned from the last {day_text}."
            ),
            detail=(
                f"From {drift.change_at:%Y-%m-%d %H:%M} UTC the offers the model served earned "
                f"{drift.recent_reward:.4g} reward per decision over {drift.recent_decisions} "
                f"decisions, against {drift.reference_reward:.4g} before{drop_text}: what it "
                "had learned no longer held. At "
                f"{drift.detected_at:%Y-%m-%d %H:%M} UTC it was retrained on the "
                f"{drift.retrained_examples} logged decisions since the change (model version "
                f"{drift.version}), so it now learns from what people do today. Nothing to "
                "apply; watch the lift recover in the results."
            ),
            evidence={
                "change_at": drift.change_at.isoformat(),
                "detected_at": drift.detected_at.isoformat(),
                "reference_reward": drift.reference_reward,
                "recent_reward": drift.recent_reward,
                "recent_decisions": drift.recent_decisions,
                "retrained_examples": drift.retrained_examples,
                "model_version": drift.version,
            },
            patch=None,
        )
    ]


# --- tune_learning --------------------------------------------------------------------------

#: The engine may apply it by itself: it changes only how fast the model learns, the
#: estimate says it earns more on this traffic, the model is retrained on the recent log
#: at once, and the circuit breaker still watches the result.
TUNE_LEARNING = KindSpec(RecommendationKind.TUNE_LEARNING, auto_apply=True)


def tune_learning(tuning: TuningResult | None) -> list[Proposal]:
    """Propose the best learning settings of the last evaluation, when its estimated gain
    over the current ones is significant (the whole corrected interval above 0).

    :param tuning: the last evaluation of the current settings (None: none yet)
    """
    if tuning is None or tuning.best is None:
        return []
    best, current = tuning.best, tuning.current
    low, high = best.gain_ci
    relative = best.gain / current.estimate if current.estimate > 0 else None
    relative_text = "" if relative is None else f" ({relative:+.1%})"
    return [
        Proposal(
            spec=TUNE_LEARNING,
            subject="learning",
            severity=Severity.INFO,
            title=(
                f"Learn with learning_rate {best.learning_rate:g} and power_t {best.power_t:g}: "
                f"about {best.gain:+.3g} reward per decision{relative_text} on your traffic."
            ),
            detail=(
                f"Replaying your last {tuning.n} learned decisions with their logged "
                f"propensities, a model learning with learning_rate {best.learning_rate:g} "
                f"and power_t {best.power_t:g} would have earned {best.estimate:.4g} reward "
                f"per decision against {current.estimate:.4g} with the current "
                f"{current.learning_rate:g} and {current.power_t:g} (gain {best.gain:+.4g}, "
                f"95% interval {low:+.4g} to {high:+.4g}, corrected for "
                f"{len(tuning.candidates) - 1} candidates). Applying changes these two "
                "exploration settings; the model is retrained on the recent log with them."
            ),
            evidence={
                "n": tuning.n,
                "evaluated_at": tuning.evaluated_at.isoformat(),
                "current": {**current.settings, "estimate": current.estimate},
                "best": {**best.settings, "estimate": best.estimate},
                "gain": best.gain,
                "gain_ci": [low, high],
                "relative_gain": relative,
                "candidates": [
                    {**row.settings, "estimate": row.estimate, "gain": row.gain}
                    for row in tuning.candidates
                ],
            },
            patch={"exploration": best.settings},
        )
    ]
