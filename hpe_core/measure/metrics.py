"""Performance metrics of a configuration over a date range (``GET /{id}/metrics``).

The days come from :func:`hpe_core.measure.rollups.read` (stored rollups where complete
and clean, live computation for the rest); :func:`summarize` sums their documents (shape
in :mod:`hpe_core.measure.day_documents`) and derives rates, lift, the sample-ratio
check, the power planner and ROI, overall and per channel, action and segment, as the
typed :class:`hpe_core.results.Summary`. docs/measurement.md explains every field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from hpe_core.errors import InvalidInput
from hpe_core.measure import health, rollups
from hpe_core.measure.day_counts import (
    MAX_SEGMENTS,
    VARIANTS,
    DayDocument,
    add_counts,
    add_split,
    empty_counts,
)
from hpe_core.measure.late import Late, late_counts
from hpe_core.measure.rollups import Day
from hpe_core.measure.stats import (
    Roi,
    detectable_lift,
    incremental_roi,
    lift,
    rate,
    required_holdout,
    sample_ratio,
)
from hpe_core.results import (
    OTHER_SEGMENTS,
    Apprentice,
    Comparison,
    Lift,
    OutcomeCount,
    PerVariant,
    Power,
    RoiInterval,
    Slice,
    Summary,
)
from hpe_core.store.models import Config, utcnow
from hpe_core.store.vocabulary import Variant
from hpe_core.tenancy import configs
from hpe_core.tenancy.configs import settings_of
from hpe_core.tenancy.workspaces import Principal

DEFAULT_DAYS = 30
MAX_DAYS = 366
#: Days of recent volume the power planner projects from.
RECENT_DAYS = 7
ALPHA, POWER = 0.05, 0.8
#: The variants as the documents key them (plain strings, as in VARIANTS).
TREATMENT, HOLDOUT = Variant.TREATMENT.value, Variant.HOLDOUT.value


@dataclasses.dataclass(frozen=True, slots=True)
class MetricsReport:
    """The metrics answer: the summary over ``date_from``..``date_to`` and every day of it
    that has decisions."""

    config_id: uuid.UUID
    date_from: dt.date
    date_to: dt.date
    summary: Summary
    daily: tuple[Day, ...]
    #: Seconds the oldest closed-but-unlearned reward window has waited (None: none
    #: waits): the stall signal. Learning normally keeps it under a few seconds.
    learning_lag_seconds: float | None = None
    #: Per variant: live decisions of the range engaged only by outcomes that came after
    #: their reward window (counted in engagements, never learned), and those outcomes.
    late: Late | None = None


def resolve_range(
    date_from: dt.date | None, date_to: dt.date | None, today: dt.date
) -> tuple[dt.date, dt.date]:
    """Fill in a default range (``to``: today; ``from``: 29 days before ``to``) and check it.

    :raises InvalidInput: if ``from`` is after ``to`` or the range is over a year
    """
    span = dt.timedelta(days=DEFAULT_DAYS - 1)
    if date_to is None:
        date_to = max(today, date_from) if date_from else today
    if date_from is None:
        date_from = _shift(date_to, -span)
    if date_from > date_to:
        raise InvalidInput(
            "'from' must not be after 'to'.", {"from": ["Must be on or before 'to'."]}
        )
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise InvalidInput(
            f"A range covers at most {MAX_DAYS} days.",
            {"to": [f"At most {MAX_DAYS} days after 'from'."]},
        )
    return date_from, date_to


def _shift(day: dt.date, delta: dt.timedelta) -> dt.date:
    # Near 0001-01-01 or 9999-12-31 the default range is cut at the calendar's edge.
    try:
        return day + delta
    except OverflowError:
        return dt.date.max if delta > dt.timedelta(0) else dt.date.min


# --- Summing documents ------------------------------------------------------------------


def total_documents(documents: Sequence[DayDocument]) -> dict:
    """Sum day documents into one of the same shape (variants, channels, actions,
    segments, outcomes; sources are left out: the summary is the live experiment)."""
    total = {
        "variants": {variant: empty_counts() for variant in VARIANTS},
        "channels": {},
        "actions": {},
        "segments": {},
        "outcomes": {},
    }
    for document in documents:
        for variant in VARIANTS:
            add_counts(total["variants"][variant], document.variants[variant])
        for block, splits in (("channels", document.channels), ("actions", document.actions)):
            for key, split in splits.items():
                add_split(total[block], key, split)
        for value, by_channel in document.segments.items():
            target = total["segments"].setdefault(value, {})
            for channel, split in by_channel.items():
                add_split(target, channel, split)
        for type_, split in document.outcomes.items():
            target = total["outcomes"].setdefault(type_, dict.fromkeys(VARIANTS, 0))
            for variant in VARIANTS:
                target[variant] += split.get(variant, 0)
    return total


# --- The summary ------------------------------------------------------------------------


def _per_variant(t: Mapping, h: Mapping, name: str) -> PerVariant[int]:
    return PerVariant(treatment=int(t[name]), holdout=int(h[name]))


def _rates(t: Mapping, h: Mapping) -> PerVariant[float | None]:
    return PerVariant(
        treatment=rate(t["engagements"], t["decisions"]),
        holdout=rate(h["engagements"], h["decisions"]),
    )


def _lift(t: Mapping, counterfactual: Mapping) -> Lift:
    return lift(
        int(t["engagements"]),
        int(t["decisions"]),
        int(counterfactual["engagements"]),
        int(counterfactual["decisions"]),
    )


def _roi(t: Mapping, counterfactual: Mapping) -> Roi:
    return incremental_roi(
        treatment_decisions=int(t["decisions"]),
        treatment_revenue=float(t["revenue"]),
        treatment_revenue_sq=float(t["revenue_sq"]),
        holdout_decisions=int(counterfactual["decisions"]),
        holdout_revenue=float(counterfactual["revenue"]),
        holdout_revenue_sq=float(counterfactual["revenue_sq"]),
        cost=float(t["cost"]),
    )


def _compared(t: Mapping, h: Mapping, counterfactual: Mapping) -> dict:
    """The fields of a :class:`Comparison`: treatment vs holdout counts, rates and the
    lift against ``counterfactual``."""
    return {
        "decisions": _per_variant(t, h, "decisions"),
        "engagements": _per_variant(t, h, "engagements"),
        "engagement_rate": _rates(t, h),
        "lift": _lift(t, counterfactual),
    }


def _slice(t: Mapping, h: Mapping, counterfactual: Mapping) -> Slice:
    """One channel's or action's comparison; ``counterfactual`` is the holdout it is
    compared with (the channel's own holdout; for an action, the whole holdout)."""
    roi = _roi(t, counterfactual)
    return Slice(
        **_compared(t, h, counterfactual),
        revenue=float(t["revenue"] + h["revenue"]),
        cost=float(t["cost"] + h["cost"]),
        treatment_cost=roi.cost,
        incremental_revenue=roi.incremental_revenue,
        incremental_revenue_ci_low=roi.incremental_revenue_ci_low,
        incremental_revenue_ci_high=roi.incremental_revenue_ci_high,
        roi=roi.roi,
        roi_ci_low=roi.roi_ci_low,
        roi_ci_high=roi.roi_ci_high,
    )


def _slices(splits: Mapping[str, Mapping], counterfactual: Mapping | None) -> dict[str, Slice]:
    """Each split's slice, by name; ``counterfactual`` None: each against its own holdout."""
    return {
        name: _slice(
            split[TREATMENT],
            split[HOLDOUT],
            split[HOLDOUT] if counterfactual is None else counterfactual,
        )
        for name, split in sorted(splits.items())
    }


def _segments(segments: Mapping) -> dict[str, dict[str, Comparison]]:
    """Per segment value and channel; past :data:`MAX_SEGMENTS` values (by decisions)
    the smallest are summed under ``(other)``."""
    ranked = sorted(
        segments.items(),
        key=lambda item: (
            -sum(split[v]["decisions"] for split in item[1].values() for v in VARIANTS),
            item[0],
        ),
    )
    kept = dict(ranked[:MAX_SEGMENTS])
    for _value, by_channel in ranked[MAX_SEGMENTS:]:
        target = kept.setdefault(OTHER_SEGMENTS, {})
        for channel, split in by_channel.items():
            add_split(target, channel, split)
    return {
        value: {
            channel: Comparison(**_compared(split[TREATMENT], split[HOLDOUT], split[HOLDOUT]))
            for channel, split in sorted(by_channel.items())
        }
        for value, by_channel in kept.items()
    }


def _outcome_types(by_type: Mapping, event_weights: Mapping[str, float]) -> dict:
    """Outcome counts per type and variant, each with its weight in ``reward.events``
    (None: the type is not listed, so it counts here but weighs nothing)."""
    return {
        type_: OutcomeCount(
            treatment=split[TREATMENT], holdout=split[HOLDOUT], weight=event_weights.get(type_)
        )
        for type_, split in sorted(by_type.items())
    }


def _power(
    t: Mapping,
    h: Mapping,
    *,
    holdout_percent: float,
    target_lift: float,
    decisions_per_day: float | None,
    holdout_per_day: float | None,
) -> Power:
    baseline_rate = rate(h["engagements"], h["decisions"])
    n_t, n_h = int(t["decisions"]), int(h["decisions"])
    # Treatment decisions per holdout decision: as observed, else as configured.
    ratio = n_t / n_h if n_t and n_h else (100 - holdout_percent) / holdout_percent
    needed = required_holdout(baseline_rate, target_lift, ratio, alpha=ALPHA, power=POWER)
    required = math.ceil(needed) if needed is not None else None
    days_more = None
    if required is not None:
        if n_h >= required:
            days_more = 0
        elif holdout_per_day:
            days_more = math.ceil((required - n_h) / holdout_per_day)
    return Power(
        target_lift=target_lift,
        baseline_rate=baseline_rate,
        alpha=ALPHA,
        power=POWER,
        decisions_per_day=decisions_per_day,
        holdout_decisions_per_day=holdout_per_day,
        required_holdout_decisions=required,
        holdout_decisions=n_h,
        days_more=days_more,
        detectable_lift=detectable_lift(baseline_rate, n_h, ratio, alpha=ALPHA, power=POWER),
    )


def _roi_interval(roi: Roi) -> RoiInterval:
    return RoiInterval(
        incremental_revenue=roi.incremental_revenue,
        incremental_revenue_ci_low=roi.incremental_revenue_ci_low,
        incremental_revenue_ci_high=roi.incremental_revenue_ci_high,
        cost=roi.cost,
        ci_low=roi.roi_ci_low,
        ci_high=roi.roi_ci_high,
    )


def _apprentice(t: Mapping, h: Mapping) -> Apprentice:
    # How often the model's top choice matched what the baseline served (apprentice mode:
    # everyone gets the baseline in `manual`, and the holdout always does).
    served = t["baseline_decisions"] + h["baseline_decisions"]
    agreed = t["model_agreements"] + h["model_agreements"]
    return Apprentice(
        baseline_decisions=int(served),
        model_agreements=int(agreed),
        agreement_rate=rate(agreed, served),
    )


def summarize(
    documents: Sequence[Mapping],
    *,
    holdout_percent: float = 10.0,
    target_lift: float = 0.5,
    decisions_per_day: float | None = None,
    holdout_per_day: float | None = None,
    event_weights: Mapping[str, float] | None = None,
) -> Summary:
    """Sum day documents into the API's ``summary`` block.

    :param documents: day documents, as stored or computed
    :param holdout_percent: the configured holdout share (the SRM check's expectation)
    :param target_lift: ``goals.target_lift`` (the power planner's goal)
    :param decisions_per_day: recent live decisions per day (power planner; None: unknown)
    :param holdout_per_day: recent holdout decisions per day (power planner)
    :param event_weights: ``reward.events`` (the weight shown beside each outcome type)
    """
    total = total_documents([DayDocument.of(document) for document in documents])
    t, h = total["variants"][TREATMENT], total["variants"][HOLDOUT]
    roi = _roi(t, h)
    return Summary(
        **_compared(t, h, h),
        revenue=float(t["revenue"] + h["revenue"]),
        cost=float(t["cost"] + h["cost"]),
        reward=float(t["reward"] + h["reward"]),
        roi=roi.roi,
        roi_interval=_roi_interval(roi),
        srm=sample_ratio(int(t["decisions"]), int(h["decisions"]), holdout_percent / 100),
        power=_power(
            t,
            h,
            holdout_percent=holdout_percent,
            target_lift=target_lift,
            decisions_per_day=decisions_per_day,
            holdout_per_day=holdout_per_day,
        ),
        channels=_slices(total["channels"], None),
        actions=_slices(total["actions"], h),
        segments=_segments(total["segments"]),
        outcomes=_outcome_types(total["outcomes"], event_weights or {}),
        apprentice=_apprentice(t, h),
    )


# --- Reading --------------------------------------------------------------------------------


def _recent_volume(
    days: Sequence[Day], date_from: dt.date, date_to: dt.date, today: dt.date
) -> tuple[float | None, float | None]:
    """Live and holdout decisions per day over the range's last complete days (at most
    :data:`RECENT_DAYS`, ending yesterday at the latest: today is not over)."""
    last = min(date_to, _shift(today, -dt.timedelta(days=1)))
    if last < date_from:
        return None, None
    first = max(date_from, _shift(last, -dt.timedelta(days=RECENT_DAYS - 1)))
    span = (last - first).days + 1
    live = holdout = 0
    for day in days:
        if first <= day.date <= last:
            variants = day.document.variants
            holdout += variants[HOLDOUT].get("decisions", 0)
            live += sum(variants[variant].get("decisions", 0) for variant in VARIANTS)
    return live / span, holdout / span


def _summary_of_days(
    config: Config, days: Sequence[Day], date_from: dt.date, date_to: dt.date, today: dt.date
) -> Summary:
    settings = settings_of(config)
    decisions_per_day, holdout_per_day = _recent_volume(days, date_from, date_to, today)
    return summarize(
        [day.metrics for day in days],
        holdout_percent=float(settings.holdout.percent),
        target_lift=float(settings.goals.target_lift),
        decisions_per_day=decisions_per_day,
        holdout_per_day=holdout_per_day,
        event_weights=settings.reward.events,
    )


def summary_for(
    session: Session,
    config: Config,
    date_from: dt.date,
    date_to: dt.date,
    *,
    channel_costs: Mapping[str, float],
    today: dt.date | None = None,
) -> Summary:
    """The metrics summary of one configuration over an inclusive date range (for
    services such as recommendations; no access check: the caller has the config)."""
    days = rollups.read(session, config, date_from, date_to, channel_costs=channel_costs)
    return _summary_of_days(
        config, days, date_from, date_to, today or dt.datetime.now(dt.UTC).date()
    )


def read(
    session: Session,
    principal: Principal,
    config_id,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    today: dt.date | None = None,
    channel_costs: Mapping[str, float] | None = None,
) -> MetricsReport:
    """The metrics answer for one configuration over an inclusive date range.

    :param channel_costs: channel -> cost per decision (the connectors' settings)
    :raises NotFound: unknown configuration, or another workspace's
    :raises InvalidInput: a reversed range or one over :data:`MAX_DAYS` days
    """
    config = configs.get(session, principal, config_id)
    today = today or dt.datetime.now(dt.UTC).date()
    date_from, date_to = resolve_range(date_from, date_to, today)
    days = rollups.read(session, config, date_from, date_to, channel_costs=channel_costs or {})
    lag = health.learning_lags(session, [config.id], utcnow()).get(config.id)
    return MetricsReport(
        config_id=config.id,
        date_from=date_from,
        date_to=date_to,
        summary=_summary_of_days(config, days, date_from, date_to, today),
        daily=tuple(days),
        learning_lag_seconds=None if lag is None else round(lag.total_seconds(), 3),
        late=late_counts(session, config.id, settings_of(config).reward, date_from, date_to),
    )
