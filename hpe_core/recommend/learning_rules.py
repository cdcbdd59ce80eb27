"""Recommendation rules about keeping up with change (pure functions): say when the
learner found that preferences shifted and what it did about it."""

from __future__ import annotations

import math

from hpe_core.recommend.proposals import KindSpec, Proposal, RecommendationKind
from hpe_core.results import DriftNotice
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
