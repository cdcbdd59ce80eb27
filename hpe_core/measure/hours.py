"""Hourly partial rollups of the recent days, so a read through today computes only its
last hours live.

A day is stored whole (:mod:`hpe_core.measure.rollups`) only once it is over: until then
every read of today (and of yesterday, until the first pass after midnight) would group
all of its decisions live, ~0.3-0.5 s at 100,000 decisions a day. So the measurement
pass also stores each *settled* hour of yesterday and today (over for at least
:data:`SETTLE`) as a partial, one row per configuration and UTC hour::

    {"version": 2, "inputs_digest": "...",
     "groups": [[variant, channel, action_id, source, segment,
                 decisions, engaged_by_reward, reward, baseline, agreements], ...],
     "decisions": {decision id: [group index, engaged, [revenue parts], {type: [parts]}], ...}}

``groups`` are the decision-side counts of the hour's decisions by group (as
:func:`hpe_core.measure.day_documents.decided` counts a day); ``decisions`` the outcomes
and credit of each decision of the hour that had any, merged (a
:class:`~hpe_core.measure.day_documents.DecisionRecord`: engaged or not, and one part per
row for its revenue and its outcomes per type), from the rows written before the
partial's cut, its ``computed_at`` less :data:`SETTLE`.

A read of a recent day adds up its usable partials and computes live only the rest, so
the answer is the one computing the whole day live gives:

- the decision-side counts of a settled hour change only when learning sets rewards,
  a Personalizer reward or activation changes a decision (both mark the decision's hour,
  :func:`hpe_core.store.stale_days.mark_stale_decisions`, in the same transaction) or an
  import adds decisions (it marks the day); a marked hour, or every hour of a marked
  day, is computed live until the next pass stores it again;
- outcomes and credit keep arriving for settled hours: the rows written since a
  partial's cut are read (through the outcomes' and attributions' time indexes, each
  finding its decision by primary key) and added to their decisions' records, part by
  part, so a record is made of exactly the rows a whole-day computation reads; credit
  taken away (an attribution rerun) marks the decisions' hours;
- an hour is stored only once it ended :data:`SETTLE` before the pass, and a decision
  or outcome is stamped with its host's clock before it commits: the same bound as
  ``CLOCK_SKEW`` in :mod:`hpe_core.measure.day_documents` (clocks at most an hour apart,
  transactions far shorter), so nothing the pass did not see lands before its cut.

The hours not stored (the open hour and the one before it, marked hours) are grouped by
day, as any live day; each pass recomputes the hours that are missing, marked, computed
with other settings, or older than :data:`RECOMPUTE_AFTER` (which keeps the outcomes to
look up per read to about an hour's), and drops those before yesterday.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import and_, bindparam, delete, or_, select
from sqlalchemy.orm import Session

from hpe_core.learn.outcomes import CLOCK_SKEW
from hpe_core.measure.day_documents import (
    Decided,
    DecisionRecord,
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
    recent_rows,
    unit_costs,
    written_since,
)
from hpe_core.store.days import day_end, day_start
from hpe_core.store.db import dialect_insert
from hpe_core.store.models import (
    Config,
    Decision,
    MetricsHour,
    StaleMetricsDay,
    StaleMetricsHour,
)
from hpe_core.store.stale_days import hour_of
from hpe_core.tenancy.configs import settings_of

#: Bump when the partial's shape or meaning changes: stored hours then recompute.
VERSION = 2
#: An hour is stored once it ended this long before the pass (see the module docstring).
SETTLE = CLOCK_SKEW
#: A stored hour older than this is recomputed by the next pass.
RECOMPUTE_AFTER = dt.timedelta(hours=1)
HOUR = dt.timedelta(hours=1)


def window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``[start, stop)``: the hours a pass at ``now`` stores (from yesterday's midnight to
    the last settled hour)."""
    now = now.astimezone(dt.UTC)
    start = day_start(now.date() - dt.timedelta(days=1))
    return start, max(start, hour_of(now - SETTLE))


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
    with other settings or older than :data:`RECOMPUTE_AFTER`; drop older hours and their
    marks (no commit).

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
    partials = _compute(session, config, due, digest, now - SETTLE)
    _store(
        session,
        config.id,
        {hour: partials.get(hour) or _empty(digest) for hour in due},
        now,
    )
    _clear_marks(session, config.id, {hour: marks[hour] for hour in due if hour in marks})
    return due


def _current(counts: object, digest: str) -> bool:
    # The column is JSON: read what a row holds without trusting it.
    return (
        isinstance(counts, Mapping)
        and counts.get("version") == VERSION
        and counts.get("inputs_digest") == digest
    )


def _empty(digest: str) -> dict:
    return {"version": VERSION, "inputs_digest": digest, "groups": [], "decisions": {}}


def _compute(
    session: Session, config: Config, hours: list[dt.datetime], digest: str, cut: dt.datetime
) -> dict:
    """``{hour: partial}`` of these hours (those with decisions), in one set of queries;
    the decisions' records hold the rows written before ``cut`` (reads add the others)."""
    if not hours:
        return {}
    settings = settings_of(config)
    keys = group_columns(session, settings, hourly=True)
    in_range = [Decision.config_id == config.id, _created_in(hours)]
    rows = decided(session, keys, in_range)
    direct, attributed = outcome_rows(
        session,
        keys,
        in_range,
        config.id,
        written_since(hours[0].date()),
        settings,
        until=cut,
    )
    partials: dict[dt.datetime, dict] = {}
    positions: dict[tuple, int] = {}
    for row in rows:
        hour = as_hour(row.day)
        partial = partials.get(hour)
        if partial is None:
            partial = partials[hour] = _empty(digest)
        group = _group_of(row)
        positions[(hour, *group)] = len(partial["groups"])
        partial["groups"].append(
            [
                *group,
                int(row.decisions),
                int(row.engaged_by_reward or 0),
                float(row.reward or 0.0),
                int(row.baseline or 0),
                int(row.agreements or 0),
            ]
        )
    for decision_id, record in decision_records(direct, attributed, as_hour).items():
        position = positions.get(tuple(record.key))
        if position is None:  # its group was not counted: as build_documents ignores it
            continue
        partials[record.key.day]["decisions"][str(decision_id)] = [
            position,
            int(record.engaged),
            record.revenue_parts,
            record.types,
        ]
    return partials


def _store(
    session: Session, config_id: uuid.UUID, partials: Mapping[dt.datetime, dict], now
) -> None:
    if not partials:
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
            {"config_id": config_id, "hour": hour, "counts": partial, "computed_at": now}
            for hour, partial in sorted(partials.items())
        ],
    )


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
    """Drop the hours (and marks) before ``start``: their days are stored whole."""
    session.execute(
        delete(MetricsHour).where(MetricsHour.config_id == config_id, MetricsHour.hour < start)
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
    """The documents of those of ``dates`` that have stored hours, from their usable
    hours plus a live computation of the rest; and the dates without any stored hour,
    oldest first, for the caller to compute as whole days.

    :param day_marks: the stale days to honour (None: read them); the refresh passes
        none, having just recomputed the hours of its marked days
    """
    dates = sorted(set(dates))
    if not dates:
        return {}, []
    start, stop = _day_span(dates[0])[0], _day_span(dates[-1])[1]
    in_span = [MetricsHour.hour >= start] + ([MetricsHour.hour < stop] if stop else [])
    rows = session.execute(
        select(MetricsHour.hour, MetricsHour.computed_at, MetricsHour.counts).where(
            MetricsHour.config_id == config.id, *in_span
        )
    ).all()
    wanted = set(dates)
    stored_days = {row.hour.date() for row in rows} & wanted
    rest = [date for date in dates if date not in stored_days]
    if not stored_days:
        return {}, rest
    days = sorted(stored_days)
    usable = _usable(session, config, rows, days, channel_costs, day_marks)
    all_hours = [hour for date in days for hour in _hours(*_day_span(date))]
    live = [hour for hour in all_hours if hour not in usable]
    settings = settings_of(config)
    keys = group_columns(session, settings)
    counts: dict[GroupKey, Decided] = {}
    if live:
        in_range = [Decision.config_id == config.id, _created_in(live)]
        counts = decided_counts(decided(session, keys, in_range), as_date)
    # A stored hour's records hold the rows written before its cut (computed_at less
    # SETTLE); the rows written since, and every row of the live hours' decisions (from
    # an hour before the hour on: the clocks' bound), are read now and added.
    cuts = {hour: row.computed_at - SETTLE for hour, row in usable.items()}
    since = min([*cuts.values(), *([live[0] - SETTLE] if live else [])])
    keys_by_hour = group_columns(session, settings, hourly=True)
    direct, attributed = recent_rows(session, keys_by_hour, config.id, since, settings)
    live_hours = set(live)
    fresh: dict[str, DecisionRecord] = {}
    for rows, from_attribution in ((direct, False), (attributed, True)):
        for row in rows:
            hour = as_hour(row.day)
            cut = cuts.get(hour)
            if hour not in live_hours and (cut is None or row.written_at < cut):
                continue  # another day's decision, or a row the stored hour holds
            decision_id = str(row.id)
            record = fresh.get(decision_id)
            if record is None:
                key = GroupKey(hour.date(), *_group_of(row))
                record = fresh[decision_id] = DecisionRecord(key)
            record.add(row, from_attribution=from_attribution)
    engagements = Engagements()
    _add_stored(usable, fresh, counts, engagements)
    for record in fresh.values():
        engagements.add(record)
    documents = build_documents(
        counts,
        engagements,
        unit_costs(settings, channel_costs),
        inputs_digest(config, channel_costs),
    )
    return documents, rest


def _usable(session, config, rows, days, channel_costs, day_marks) -> dict:
    """``{hour: row}`` of the stored hours that may be used: current settings, settled
    when computed, not marked (nor their day)."""
    digest = inputs_digest(config, channel_costs)
    marks = _hour_marks(session, config.id, _day_span(days[0])[0], _day_span(days[-1])[1])
    if day_marks is None:
        day_marks = session.scalars(
            select(StaleMetricsDay.date).where(
                StaleMetricsDay.config_id == config.id,
                StaleMetricsDay.date >= days[0],
                StaleMetricsDay.date <= days[-1],
            )
        )
    marked_days = set(day_marks)
    wanted = set(days)
    return {
        row.hour: row
        for row in rows
        if row.hour.date() in wanted
        and row.hour.date() not in marked_days
        and row.hour not in marks
        and row.hour + HOUR + SETTLE <= row.computed_at
        and _current(row.counts, digest)
    }


def _add_stored(usable: Mapping, fresh: dict, counts: dict, engagements: Engagements) -> None:
    """Add the stored hours: their decision-side counts to ``counts``; each stored record
    to ``engagements``, or, for a decision with rows written since (``fresh``), to its
    fresh record (a decision engages once, its revenue is squared whole)."""
    for hour, row in usable.items():
        date = hour.date()
        keys = []
        for group in row.counts["groups"]:
            key = GroupKey(date, *group[:5])
            keys.append(key)
            found = counts.get(key)
            if found is None:
                found = counts[key] = Decided()
            found.add(*group[5:10])
        for decision_id, (position, engaged, revenue, types) in row.counts["decisions"].items():
            record = fresh.get(decision_id)
            if record is None:
                engagements.add_parts(keys[position], engaged, revenue, types)
                continue
            record.engaged = record.engaged or bool(engaged)
            record.revenue_parts.extend(revenue)
            for type_, parts in types.items():
                record.types.setdefault(type_, []).extend(parts)


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
