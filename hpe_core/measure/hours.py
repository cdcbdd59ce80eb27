"""Hourly partial rollups of the recent days, so a read through today computes only its
last hours live.

A day is stored whole (:mod:`hpe_core.measure.rollups`) only once it is over: until then
every read of today (and of yesterday, until the first pass after midnight) would group
all of its decisions live, ~0.3-0.8 s at 100,000 decisions a day. So the measurement
pass also stores each *settled* hour of yesterday and today (over for at least
:data:`SETTLE`) as a partial, one row per configuration and UTC hour, and their sum, one
row per configuration and day (what a read uses)::

    {"version": 3, "inputs_digest": "...",
     "groups": [[variant, channel, action_id, source, segment,
                 decisions, engaged_by_reward, reward, baseline, agreements,
                 engaged, revenue, revenue_sq], ...],
     "outcomes": [[variant, type, n], ...]}

``groups`` are the hour's decisions by group: their decision-side counts (as
:func:`hpe_core.measure.day_documents.decided` counts a day) and their engagement from the
outcomes and credit written before the partial's *cut* (its ``computed_at`` less
:data:`SETTLE`): decisions engaged, the sum of their revenues and of their revenues
squared; ``outcomes`` the live decisions' outcomes per type. Every float sum is exact
(``[n, k]`` for n / 2**k, :class:`~hpe_core.measure.exact.ExactSum`), so partials add up,
and take away, without a rounding. The day's sum also holds each hour's cut.

A read of a recent day starts from its stored sum and computes live only the rest, so the
answer is the one computing the whole day live gives:

- hours not in the sum (the open hour and the one before it) are computed live;
- the decision-side counts of a settled hour change only when learning sets rewards, a
  Personalizer reward or activation changes a decision (both mark the decision's hour,
  :func:`hpe_core.store.stale_days.mark_stale_decisions`, in the same transaction) or an
  import adds decisions (it marks the day): a marked hour's partial is taken out of the
  sum and the hour computed live; a marked day is computed whole, until the next pass;
- outcomes and credit keep arriving for settled hours: the rows written since an hour's
  cut are read (through the outcomes' and attributions' time indexes, each finding its
  decision by primary key), and for each decision they belong to, its record as the
  partial counted it (its rows before the cut) is replaced by its whole record (all of
  its rows, read by decision id): a decision engages once, and its revenue is squared
  whole. Credit taken away (an attribution rerun) marks the decisions' hours;
- an hour is stored only once it ended :data:`SETTLE` before the pass, and decisions,
  outcomes and credit are stamped with their host's clock before they commit: the same
  bound as ``CLOCK_SKEW`` in :mod:`hpe_core.measure.day_documents` (clocks at most an hour
  apart, transactions far shorter), so nothing the pass did not see lands before a cut.

Each pass recomputes the hours that are missing, marked, computed with other settings
or older than :data:`RECOMPUTE_AFTER` (which keeps the outcomes a read looks up to
about an hour's worth), stores the days' sums again, and drops what is before yesterday.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import and_, bindparam, delete, or_, select
from sqlalchemy.orm import Session

from hpe_core.learn.outcomes import CLOCK_SKEW
from hpe_core.measure.day_documents import (
    Decided,
    DecisionRecord,
    Engagement,
    Engagements,
    GroupKey,
    as_date,
    build_documents,
    decided,
    decided_counts,
    decision_records,
    group_columns,
    inputs_digest,
    outcome_rows,
    outcome_rows_of,
    recent_rows,
    unit_costs,
    written_since,
)
from hpe_core.measure.exact import ExactSum
from hpe_core.store.days import day_end, day_start
from hpe_core.store.db import dialect_insert
from hpe_core.store.models import (
    Config,
    Decision,
    MetricsHour,
    MetricsHoursSum,
    StaleMetricsDay,
    StaleMetricsHour,
)
from hpe_core.store.stale_days import hour_of
from hpe_core.store.vocabulary import DecisionSource
from hpe_core.tenancy.configs import settings_of

#: Bump when the partial's shape or meaning changes: stored hours then recompute.
VERSION = 3
#: An hour is stored once it ended this long before the pass (see the module docstring).
SETTLE = CLOCK_SKEW
#: A stored hour older than this is recomputed by the next pass.
RECOMPUTE_AFTER = dt.timedelta(hours=1)
HOUR = dt.timedelta(hours=1)
_LIVE = DecisionSource.LIVE.value


def window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``[start, stop)``: the hours a pass at ``now`` stores (from yesterday's midnight to
    the last settled hour)."""
    now = now.astimezone(dt.UTC)
    start = day_start(now.date() - dt.timedelta(days=1))
    return start, max(start, hour_of(now - SETTLE))


# --- A partial: the counts of some hours' decisions, by group ----------------------------


@dataclasses.dataclass
class Partial:
    """Decision-side counts and engagement per group (``(variant, channel, action_id,
    source, segment)``), and the live decisions' outcomes per ``(variant, type)``."""

    counts: dict[tuple, Decided] = dataclasses.field(default_factory=dict)
    engagement: dict[tuple, Engagement] = dataclasses.field(default_factory=dict)
    outcomes: dict[tuple, ExactSum] = dataclasses.field(default_factory=dict)

    def add(self, other: Partial, sign: int = 1) -> None:
        """Add another partial (``sign`` -1: take it away)."""
        for group, found in other.counts.items():
            mine = self.counts.get(group)
            if mine is None:
                mine = self.counts[group] = Decided()
            _merge_decided(mine, found, sign)
        for group, found in other.engagement.items():
            mine = self.engagement.get(group)
            if mine is None:
                mine = self.engagement[group] = Engagement()
            mine.engaged += sign * found.engaged
            _add_exact(mine.revenue, found.revenue, sign)
            _add_exact(mine.revenue_sq, found.revenue_sq, sign)
        for key, found in other.outcomes.items():
            mine = self.outcomes.get(key)
            if mine is None:
                mine = self.outcomes[key] = ExactSum()
            _add_exact(mine, found, sign)

    def dump(self, digest: str) -> dict:
        groups = []
        for group in sorted(self.counts, key=lambda g: tuple(str(part) for part in g)):
            found = self.counts[group]
            engaged = self.engagement.get(group) or Engagement()
            groups.append(
                [
                    *group,
                    found.decisions,
                    found.engaged_by_reward,
                    found.reward.dump(),
                    found.baseline,
                    found.agreements,
                    engaged.engaged,
                    engaged.revenue.dump(),
                    engaged.revenue_sq.dump(),
                ]
            )
        outcomes = [[*key, total.dump()] for key, total in sorted(self.outcomes.items())]
        return {
            "version": VERSION,
            "inputs_digest": digest,
            "groups": groups,
            "outcomes": outcomes,
        }

    @classmethod
    def load(cls, document: Mapping) -> Partial:
        partial = cls()
        for row in document["groups"]:
            group = tuple(row[:5])
            partial.counts[group] = Decided(row[5], row[6], ExactSum.load(row[7]), row[8], row[9])
            partial.engagement[group] = Engagement(
                row[10], ExactSum.load(row[11]), ExactSum.load(row[12])
            )
        for variant, type_, total in document["outcomes"]:
            partial.outcomes[(variant, type_)] = ExactSum.load(total)
        return partial


def _merge_decided(mine: Decided, other: Decided, sign: int) -> None:
    mine.decisions += sign * other.decisions
    mine.engaged_by_reward += sign * other.engaged_by_reward
    _add_exact(mine.reward, other.reward, sign)
    mine.baseline += sign * other.baseline
    mine.agreements += sign * other.agreements


def _add_exact(total: ExactSum, other: ExactSum, sign: int) -> None:
    if sign > 0:
        total.add(other)
    else:
        total.sub(other)


def _add_record(partial: Partial, record: DecisionRecord, sign: int = 1) -> None:
    """Add one decision's record to a partial (its key's first field is ignored)."""
    key = record.key
    group = tuple(key[1:])
    engaged = partial.engagement.get(group)
    if engaged is None:
        engaged = partial.engagement[group] = Engagement()
    engaged.add_decision(record.engaged, record.revenue, sign)
    if key.source == _LIVE:
        for type_, parts in record.types.items():
            total = partial.outcomes.get((key.variant, type_))
            if total is None:
                total = partial.outcomes[(key.variant, type_)] = ExactSum()
            for part in parts:
                if sign > 0:
                    total.add_float(part)
                else:
                    total.sub_float(part)


def _current(document: object, digest: str) -> bool:
    # The column is JSON: read what a row holds without trusting it.
    return (
        isinstance(document, Mapping)
        and document.get("version") == VERSION
        and document.get("inputs_digest") == digest
    )


# --- Refresh ----------------------------------------------------------------------------------


def refresh(
    session: Session,
    config: Config,
    *,
    channel_costs: Mapping[str, float],
    now: dt.datetime,
    day_marks: Iterable[dt.date] = (),
) -> list[dt.datetime]:
    """Store the settled hours of yesterday and today that are missing, marked, computed
    with other settings or older than :data:`RECOMPUTE_AFTER`, and each day's sum; drop
    older hours, sums and marks (no commit).

    :param day_marks: the configuration's stale days as the caller read them (their
        hours are all recomputed)
    :returns: the hours recomputed, oldest first
    """
    start, stop = window(now)
    _prune(session, config.id, start)
    if stop <= start:
        return []
    digest = inputs_digest(config, channel_costs)
    # Marks first, computation after (as rollups.refresh does with days).
    marks = _hour_marks(session, config.id, start, stop)
    stored = {
        row.hour: row
        for row in session.execute(
            select(MetricsHour.hour, MetricsHour.computed_at, MetricsHour.counts).where(
                MetricsHour.config_id == config.id,
                MetricsHour.hour >= start,
                MetricsHour.hour < stop,
            )
        )
    }
    marked_days = set(day_marks)
    due = [
        hour
        for hour in _hours(start, stop)
        if hour not in stored
        or not _current(stored[hour].counts, digest)
        or stored[hour].computed_at < now - RECOMPUTE_AFTER
        or hour in marks
        or hour.date() in marked_days
    ]
    computed = _compute(session, config, due, now - SETTLE)
    _store(session, config.id, {hour: computed[hour].dump(digest) for hour in due}, now)
    _clear_marks(session, config.id, {hour: marks[hour] for hour in due if hour in marks})
    # Every stored hour not recomputed now is current (else it was due).
    partials = {
        hour: (Partial.load(row.counts), row.computed_at)
        for hour, row in stored.items()
        if hour not in computed
    }
    partials.update({hour: (partial, now) for hour, partial in computed.items()})
    _store_sums(session, config.id, partials, digest, now)
    return due


def _compute(
    session: Session, config: Config, hours: list[dt.datetime], cut: dt.datetime
) -> dict[dt.datetime, Partial]:
    """``{hour: Partial}`` of these hours (every one, empty or not), in one set of queries;
    engagement from the rows written before ``cut`` (reads add the others)."""
    partials = {hour: Partial() for hour in hours}
    if not hours:
        return partials
    settings = settings_of(config)
    keys = group_columns(session, settings, hourly=True)
    in_range = [Decision.config_id == config.id, _created_in(hours)]
    for row in decided(session, keys, in_range):
        partial = partials[as_hour(row.day)]
        found = partial.counts[_group_of(row)] = Decided()
        found.add_row(row)
    direct, attributed = outcome_rows(
        session,
        keys,
        in_range,
        config.id,
        written_since(hours[0].date()),
        settings,
        until=cut,
    )
    for record in decision_records(direct, attributed, as_hour).values():
        partial = partials[record.key.day]
        if tuple(record.key[1:]) in partial.counts:  # else not counted: as build_documents
            _add_record(partial, record)
    return partials


def _store(session: Session, config_id: uuid.UUID, documents: Mapping, now) -> None:
    if not documents:
        return
    statement = dialect_insert(session, MetricsHour.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["config_id", "hour"],
        set_={
            "counts": statement.excluded.counts,
            "computed_at": statement.excluded.computed_at,
        },
    )
    session.execute(
        statement,
        [
            {"config_id": config_id, "hour": hour, "counts": document, "computed_at": now}
            for hour, document in sorted(documents.items())
        ],
    )


def _store_sums(
    session: Session, config_id: uuid.UUID, partials: Mapping, digest: str, now
) -> None:
    """Store each day's sum of its stored hours, with the hours' cuts."""
    by_day: dict[dt.date, list] = {}
    for hour, (partial, computed_at) in sorted(partials.items()):
        by_day.setdefault(hour.date(), []).append((hour, partial, computed_at))
    rows = []
    for date, hours in by_day.items():
        total = Partial()
        for _hour, partial, _computed_at in hours:
            total.add(partial)
        document = total.dump(digest)
        document["cuts"] = {
            hour.isoformat(): (computed_at - SETTLE).isoformat()
            for hour, _partial, computed_at in hours
        }
        rows.append({"config_id": config_id, "date": date, "counts": document, "computed_at": now})
    if not rows:
        return
    statement = dialect_insert(session, MetricsHoursSum.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["config_id", "date"],
        set_={
            "counts": statement.excluded.counts,
            "computed_at": statement.excluded.computed_at,
        },
    )
    session.execute(statement, rows)


def _hour_marks(
    session: Session, config_id: uuid.UUID, start: dt.datetime, stop: dt.datetime | None
) -> dict[dt.datetime, dt.datetime]:
    """``{hour: marked_at}`` of this configuration's hour marks in ``[start, stop)``."""
    in_span = [StaleMetricsHour.hour >= start]
    if stop is not None:
        in_span.append(StaleMetricsHour.hour < stop)
    return dict(
        session.execute(
            select(StaleMetricsHour.hour, StaleMetricsHour.marked_at).where(
                StaleMetricsHour.config_id == config_id, *in_span
            )
        ).all()
    )


def _clear_marks(session: Session, config_id: uuid.UUID, marks: Mapping) -> None:
    """Delete the marks this refresh consumed, unless marked again since it read them."""
    if not marks:
        return
    table = StaleMetricsHour.__table__
    session.execute(
        delete(table).where(
            table.c.config_id == config_id,
            table.c.hour == bindparam("at"),
            table.c.marked_at <= bindparam("seen"),
        ),
        [{"at": hour, "seen": seen} for hour, seen in sorted(marks.items())],
    )


def _prune(session: Session, config_id: uuid.UUID, start: dt.datetime) -> None:
    """Drop the hours, sums and marks before ``start``: their days are stored whole."""
    session.execute(
        delete(MetricsHour).where(MetricsHour.config_id == config_id, MetricsHour.hour < start)
    )
    session.execute(
        delete(MetricsHoursSum).where(
            MetricsHoursSum.config_id == config_id, MetricsHoursSum.date < start.date()
        )
    )
    session.execute(
        delete(StaleMetricsHour).where(
            StaleMetricsHour.config_id == config_id, StaleMetricsHour.hour < start
        )
    )


# --- Reading --------------------------------------------------------------------------------


def read(
    session: Session,
    config: Config,
    dates: Iterable[dt.date],
    *,
    channel_costs: Mapping[str, float],
    day_marks: Iterable[dt.date] | None = None,
) -> tuple[dict[dt.date, dict], list[dt.date]]:
    """The documents of those of ``dates`` that have a stored sum of hours, from it plus a
    live computation of the rest; and the dates without one, oldest first, for the
    caller to compute as whole days.

    :param day_marks: the stale days to honour (None: read them); the refresh passes
        none, having just recomputed the hours of its marked days
    """
    digest = inputs_digest(config, channel_costs)
    base, cuts, days, rest = _stored(session, config, dates, digest, day_marks)
    if not days:
        return {}, rest
    live = [hour for date in days for hour in _hours(*_day_span(date)) if hour not in cuts]
    settings = settings_of(config)
    counts: dict[GroupKey, Decided] = {}
    engagements = Engagements()
    for date, partial in base.items():
        _add_partial(date, partial, counts, engagements)
    keys = group_columns(session, settings)
    if live:
        in_range = [Decision.config_id == config.id, _created_in(live)]
        counts_live = decided_counts(decided(session, keys, in_range), as_date)
        for key, found in counts_live.items():
            mine = counts.get(key)
            if mine is None:
                counts[key] = found
            else:
                mine.merge(found)
    _add_recent(session, config, settings, live, cuts, engagements)
    documents = build_documents(
        counts,
        engagements,
        unit_costs(settings, channel_costs),
        digest,
    )
    return documents, rest


def stored_hours(
    session: Session, config: Config, dates: Iterable[dt.date], *, channel_costs
) -> list[dt.datetime]:
    """The hours of ``dates`` a read would take from storage now, oldest first."""
    digest = inputs_digest(config, channel_costs)
    return sorted(_stored(session, config, dates, digest, None)[1])


def _stored(session, config, dates, digest: str, day_marks):
    """``(base, cuts, days, rest)``: per day with a current stored sum (``days``), the sum
    less its marked hours (``base``, a :class:`Partial` per date; none for a marked day);
    the cut of every stored hour used (``cuts``); the dates without a sum (``rest``)."""
    dates = sorted(set(dates))
    if not dates:
        return {}, {}, [], []
    wanted = set(dates)
    sums = {
        row.date: row.counts
        for row in session.execute(
            select(MetricsHoursSum.date, MetricsHoursSum.counts).where(
                MetricsHoursSum.config_id == config.id,
                MetricsHoursSum.date >= dates[0],
                MetricsHoursSum.date <= dates[-1],
            )
        )
        if row.date in wanted and _current(row.counts, digest)
    }
    rest = [date for date in dates if date not in sums]
    if not sums:
        return {}, {}, [], rest
    days = sorted(sums)
    first, last = _day_span(days[0])[0], _day_span(days[-1])[1]
    marks = set(_hour_marks(session, config.id, first, last))
    if day_marks is None:
        day_marks = session.scalars(
            select(StaleMetricsDay.date).where(
                StaleMetricsDay.config_id == config.id,
                StaleMetricsDay.date >= days[0],
                StaleMetricsDay.date <= days[-1],
            )
        )
    marked_days = set(day_marks)
    # Per day: the sum less its marked hours (their stored partials), and the hours used.
    base: dict[dt.date, Partial] = {}
    cuts: dict[dt.datetime, dt.datetime] = {}
    for date in days:
        if date in marked_days:
            continue
        found = _usable_sum(session, config.id, sums[date], marks, digest)
        if found is not None:
            base[date], day_cuts = found
            cuts.update(day_cuts)
    return base, cuts, days, rest


def _usable_sum(session, config_id, document: Mapping, marks: set, digest: str):
    """``(Partial, {hour: cut})`` of a day's stored sum without its marked hours (their
    stored partials taken out), or None when a marked hour's partial is not at hand."""
    day_cuts = {
        as_hour(hour): dt.datetime.fromisoformat(cut).astimezone(dt.UTC)
        for hour, cut in document["cuts"].items()
    }
    total = Partial.load(document)
    marked = sorted(hour for hour in day_cuts if hour in marks)
    if marked:
        rows = dict(
            session.execute(
                select(MetricsHour.hour, MetricsHour.counts).where(
                    MetricsHour.config_id == config_id, MetricsHour.hour.in_(marked)
                )
            ).all()
        )
        if any(not _current(rows.get(hour), digest) for hour in marked):
            return None
        for hour in marked:
            total.add(Partial.load(rows[hour]), sign=-1)
            del day_cuts[hour]
    return total, day_cuts


def _add_partial(date: dt.date, partial: Partial, counts: dict, engagements: Engagements):
    for group, found in partial.counts.items():
        key = GroupKey(date, *group)
        mine = counts.get(key)
        if mine is None:
            mine = counts[key] = Decided()
        mine.merge(found)
    for group, found in partial.engagement.items():
        engagements.group(GroupKey(date, *group)).merge(found)
    for (variant, type_), total in partial.outcomes.items():
        engagements.outcome_type((date, variant, type_)).add(total)


def _add_recent(session, config, settings, live: list, cuts: Mapping, engagements) -> None:
    """Add the records of the live hours' decisions, and correct the stored hours for the
    decisions with rows written since their hour's cut (whole record in, record as of
    the cut out)."""
    bounds = [*cuts.values(), *([live[0] - SETTLE] if live else [])]
    if not bounds:
        return
    keys = group_columns(session, settings, hourly=True)
    direct, attributed = recent_rows(session, keys, config.id, min(bounds), settings)
    live_hours = set(live)
    fresh: dict = {}
    touched: set = set()
    for rows, from_attribution in ((direct, False), (attributed, True)):
        for row in rows:
            hour = as_hour(row.day)
            if hour in live_hours:
                record = fresh.get(row.id)
                if record is None:
                    key = GroupKey(hour.date(), *_group_of(row))
                    record = fresh[row.id] = DecisionRecord(key)
                record.add(row, from_attribution=from_attribution)
            elif hour in cuts and row.written_at >= cuts[hour]:
                touched.add(row.id)
    for record in fresh.values():
        engagements.add(record)
    if touched:
        direct, attributed = outcome_rows_of(session, keys, config.id, sorted(touched), settings)
        before = decision_records(
            [row for row in direct if row.written_at < cuts[as_hour(row.day)]],
            [row for row in attributed if row.written_at < cuts[as_hour(row.day)]],
            as_hour,
        )
        for decision_id, record in decision_records(direct, attributed, as_hour).items():
            engagements.add(_dated(record))
            if decision_id in before:
                engagements.add(_dated(before[decision_id]), sign=-1)


def _dated(record: DecisionRecord) -> DecisionRecord:
    """The record keyed by its decision's date rather than its hour."""
    record.key = GroupKey(record.key.day.date(), *record.key[1:])
    return record


def _group_of(row) -> tuple:
    return (row.variant, row.channel, row.action_id, row.source, row.segment)


# --- Hours ------------------------------------------------------------------------------------


def as_hour(value) -> dt.datetime:
    """An hourly ``day`` column's value (a naive UTC timestamp, or text on SQLite) as an
    aware UTC datetime."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _day_span(date: dt.date) -> tuple[dt.datetime, dt.datetime | None]:
    """A UTC day's first instant and the first instant after it (None after 9999-12-31)."""
    return day_start(date), day_end(date)


def _hours(start: dt.datetime, stop: dt.datetime | None) -> list[dt.datetime]:
    """The hours from ``start`` up to ``stop`` (None: to the end of the calendar)."""
    stop = stop or dt.datetime.max.replace(tzinfo=dt.UTC)
    hours, hour = [], start
    while hour < stop:
        hours.append(hour)
        if stop - hour <= HOUR:
            break
        hour += HOUR
    return hours


def _created_in(hours: Iterable[dt.datetime]):
    """SQL condition: a decision created in one of these hours (runs of consecutive hours
    become one range each)."""
    runs: list[list[dt.datetime]] = []
    for hour in sorted(set(hours)):
        if runs and hour == runs[-1][1]:
            runs[-1][1] = hour + HOUR
        else:
            runs.append([hour, hour + HOUR])
    return or_(
        *(and_(Decision.created_at >= first, Decision.created_at < end) for first, end in runs)
    )
