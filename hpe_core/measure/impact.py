"""What HPE added: the gain over the holdout in counts and money, and how lift built up.

The metrics report says *how much better* treatment did (lift, a ratio). A marketer also
asks *how much more* it got: the engagements and revenue above what the same decisions
would have earned at the holdout's rate — the spec's "clear attribution of performance
gains to this feature". Both come with their 95% interval.

Incremental engagements are ``treatment decisions x holdout rate x lift``; their interval
is that product at the lift interval's ends (Katz log risk ratio), so it carries the
uncertainty of the ratio with the holdout rate held at its estimate — the same
approximation GrowthBook's "impact" uses. Incremental revenue and its interval come from
the report's ROI block (a delta-method interval on revenue per decision).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

from hpe_core.measure.rollups import Day
from hpe_core.measure.stats import lift as lift_of
from hpe_core.results import Comparison, Lift, Slice, Summary
from hpe_core.store.vocabulary import Variant


@dataclasses.dataclass(frozen=True)
class Gain:
    """An amount above the holdout's rate, with its 95% interval (None: not measurable)."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def measurable(self) -> bool:
        return self.estimate is not None


NO_GAIN = Gain(None, None, None)


@dataclasses.dataclass(frozen=True)
class SliceImpact:
    """One channel's or action's share of the gain."""

    name: str
    comparison: Comparison
    engagements: Gain
    revenue: Gain


@dataclasses.dataclass(frozen=True)
class Impact:
    """The gain over a range, in total and per channel and action."""

    engagements: Gain
    revenue: Gain
    channels: tuple[SliceImpact, ...]
    actions: tuple[SliceImpact, ...]


@dataclasses.dataclass(frozen=True)
class DayPoint:
    """One day of the charts: that day's rates, and the lift of everything up to it."""

    date: dt.date
    decisions: Mapping[Variant, int]
    engagements: Mapping[Variant, int]
    rate: Mapping[Variant, float | None]
    cumulative_lift: Lift


def incremental_engagements(comparison: Comparison) -> Gain:
    """Engagements above what treatment's decisions would have got at the holdout's rate."""
    treated = comparison.decisions.treatment
    holdout_rate = comparison.engagement_rate.holdout
    lift = comparison.lift
    if not treated or holdout_rate is None or lift.estimate is None:
        return NO_GAIN
    base = treated * holdout_rate
    return Gain(
        estimate=base * lift.estimate,
        ci_low=None if lift.ci_low is None else base * lift.ci_low,
        ci_high=None if lift.ci_high is None else base * lift.ci_high,
    )


def incremental_revenue(part: Summary | Slice) -> Gain:
    if isinstance(part, Summary):
        roi = part.roi_interval
        return Gain(
            roi.incremental_revenue, roi.incremental_revenue_ci_low, roi.incremental_revenue_ci_high
        )
    return Gain(
        part.incremental_revenue, part.incremental_revenue_ci_low, part.incremental_revenue_ci_high
    )


def impact(summary: Summary) -> Impact:
    """The gain of a metrics summary, in total and per channel and action (largest first)."""
    return Impact(
        engagements=incremental_engagements(summary),
        revenue=incremental_revenue(summary),
        channels=_slices(summary.channels),
        actions=_slices(summary.actions),
    )


def _slices(slices: Mapping[str, Slice]) -> tuple[SliceImpact, ...]:
    found = [
        SliceImpact(
            name=name,
            comparison=part,
            engagements=incremental_engagements(part),
            revenue=incremental_revenue(part),
        )
        for name, part in slices.items()
    ]
    return tuple(sorted(found, key=lambda s: -(s.comparison.decisions.treatment)))


def day_points(days: Sequence[Day]) -> tuple[DayPoint, ...]:
    """Each day's engagement rate per variant and the cumulative lift up to that day."""
    points = []
    totals = {variant: [0, 0] for variant in Variant}
    for day in sorted(days, key=lambda d: d.date):
        counts = day.document.variants
        decisions = {v: int(counts[v]["decisions"]) for v in Variant}
        engagements = {v: int(counts[v]["engagements"]) for v in Variant}
        for variant in Variant:
            totals[variant][0] += engagements[variant]
            totals[variant][1] += decisions[variant]
        treatment, holdout = totals[Variant.TREATMENT], totals[Variant.HOLDOUT]
        points.append(
            DayPoint(
                date=day.date,
                decisions=decisions,
                engagements=engagements,
                rate={v: engagements[v] / decisions[v] if decisions[v] else None for v in Variant},
                cumulative_lift=lift_of(treatment[0], treatment[1], holdout[0], holdout[1]),
            )
        )
    return tuple(points)
