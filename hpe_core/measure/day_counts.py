"""The day document's counts and how documents add up: one set of helpers for the
documents computed (:mod:`hpe_core.measure.day_documents`) and the summary that sums
them (:mod:`hpe_core.measure.metrics`).

A document's blocks hold ``C = {decisions, engagements, reward, revenue, revenue_sq,
cost, baseline_decisions, model_agreements}`` per variant (the shape is in
:mod:`hpe_core.measure.day_documents`); :class:`DayDocument` is the one place a document,
stored or computed, is read by key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from hpe_core.store.vocabulary import Variant

COUNTERS = (
    "decisions",
    "engagements",
    "reward",
    "revenue",
    # Σ over decisions of (that decision's revenue)²: with revenue and decisions it gives
    # the variance of revenue per decision, which the ROI interval needs.
    "revenue_sq",
    "cost",
    # Apprentice mode: decisions the baseline served, and those where the model's own top
    # choice was the same action.
    "baseline_decisions",
    "model_agreements",
)
#: The variants as plain strings: they key every block of a document, and dicts with only
#: ``str`` keys are looked up faster than with enum members in them.
VARIANTS = tuple(variant.value for variant in Variant)
#: Segment values kept per day, and reported per summary (by decisions); the rest are
#: summed under "(other)", so a high-cardinality context key cannot blow up the stored
#: document or the answer.
MAX_SEGMENTS = 50


def empty_counts() -> dict:
    """A ``C`` of zeros."""
    return dict.fromkeys(COUNTERS, 0)


def add_counts(total: dict, counts: Mapping) -> None:
    """Add one ``C`` into another, counter by counter (a counter it lacks adds 0)."""
    for name in COUNTERS:
        # `or 0`: a zero adds as the integer 0, so a sum of zeros stays 0 and not 0.0,
        # as stored documents have always held it.
        total[name] += counts.get(name) or 0


def split_of(block: dict, key: str) -> dict:
    """``block[key]`` as ``{"treatment": C, "holdout": C}``, created with zeros."""
    found = block.get(key)
    if found is None:
        found = block[key] = {variant: empty_counts() for variant in VARIANTS}
    return found


def add_split(block: dict, key: str, split: Mapping) -> None:
    """Add ``{"treatment": C, "holdout": C}`` into ``block[key]``."""
    target = block.get(key)
    if target is None:  # split_of, inlined: this runs for every split of every day summed
        target = block[key] = {variant: empty_counts() for variant in VARIANTS}
    for variant in VARIANTS:
        add_counts(target[variant], split[variant])


@dataclasses.dataclass(frozen=True, slots=True)
class DayDocument:
    """A day's document read for adding up: the blocks of the module docstring.

    The one place where a document (stored, or computed live) is read by key: blocks it
    lacks read as empty, and both variants are always there.
    """

    variants: Mapping[str, Mapping]
    channels: Mapping[str, Mapping]
    actions: Mapping[str, Mapping]
    segments: Mapping[str, Mapping[str, Mapping]]
    sources: Mapping[str, Mapping]
    outcomes: Mapping[str, Mapping[str, float]]

    @classmethod
    def of(cls, document: Mapping) -> DayDocument:
        variants = document.get("variants", {})
        return cls(
            variants={variant: variants.get(variant, {}) for variant in VARIANTS},
            channels=document.get("channels", {}),
            actions=document.get("actions", {}),
            segments=document.get("segments", {}),
            sources=document.get("sources", {}),
            outcomes=document.get("outcomes", {}),
        )
