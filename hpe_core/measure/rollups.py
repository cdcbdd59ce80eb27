"""Daily rollups: one stored metrics document per configuration and UTC date, kept exact.

:func:`refresh` (the measurement pass) recomputes today and yesterday, every day marked
stale and every stored day computed with other settings, and upserts them into the seed's
metrics table. Whatever changes an already rolled-up day calls :func:`mark_stale`: an
import, an outcome for an old decision, learning (rewards), attribution (credit).

:func:`read` is what ``GET /metrics`` reads: a stored row where it is complete and
clean (rolled up after its day ended, not marked stale, same settings), and the other
days (today, not yet rolled up, stale) computed live in one set of queries. The answer is
the same either way; in steady state almost every day comes from storage. Today and
yesterday are not computed whole: the pass also stores their settled hours
(:mod:`hpe_core.measure.hours`), and a read adds those up and computes only the rest.

The documents themselves are :mod:`hpe_core.measure.day_documents` (``compute_days`` is
re-exported here); :class:`Day` is one day of a read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.orm import Session

from hpe_core.measure import hours
from hpe_core.measure.day_counts import DayDocument
from hpe_core.measure.day_documents import compute_days, compute_runs, inputs_digest
from hpe_core.store.days import day_end
from hpe_core.store.db import dialect_insert
from hpe_core.store.models import Config, MetricsDay, StaleMetricsDay, utcnow
from hpe_core.store.stale_days import mark_stale, mark_stale_decisions

__all__ = [
    "MAX_REFRESH_DAYS",
    "Day",
    "compute_days",
    "mark_stale",
    "mark_stale_decisions",
    "read",
    "refresh",
]

#: Stale or outdated past days one refresh recomputes at most (newest first), so a big
#: import or a settings change is caught up over a few passes, not in one long
#: transaction. Until then reads compute those days live: answers stay exact.
MAX_REFRESH_DAYS = 62
_CHUNK = 1000


# --- Stale marks (written by the stages below, in hpe_core.store.stale_days) -----------


def _stale_marks(session: Session, config_id: uuid.UUID) -> dict[dt.date, dt.datetime]:
    """``{date: marked_at}`` of this configuration's stale marks."""
    return dict(
        session.execute(
            select(StaleMetricsDay.date, StaleMetricsDay.marked_at).where(
                StaleMetricsDay.config_id == config_id
            )
        ).all()
    )


def _clear_marks(session: Session, config_id: uuid.UUID, marks: Mapping) -> None:
    """Delete the marks a refresh consumed, unless marked again since it read them."""
    if not marks:
        return
    table = StaleMetricsDay.__table__
    session.execute(
        delete(table).where(
            table.c.config_id == config_id,
            table.c.date == bindparam("day"),
            table.c.marked_at <= bindparam("seen"),
        ),
        [{"day": day, "seen": seen} for day, seen in sorted(marks.items())],
    )


# --- Refresh --------------------------------------------------------------------------------


def refresh(
    session: Session,
    config: Config,
    *,
    channel_costs: Mapping[str, float],
    now: dt.datetime | None = None,
    max_days: int = MAX_REFRESH_DAYS,
) -> list[dt.date]:
    """Recompute and store today, yesterday and the days that went stale (no commit);
    first the settled hours of yesterday and today (:func:`hpe_core.measure.hours.refresh`),
    which today's and yesterday's documents are then added up from.

    Stale = marked (:func:`mark_stale`) or stored with other settings (reward weights,
    costs, segment key). Idempotent: recomputing a day stores the same document. A day
    left without decisions loses its row.

    :param channel_costs: channel -> cost per decision (the connectors' settings)
    :returns: the dates recomputed, oldest first
    """
    now = now or utcnow()
    # Marks first, computation after: on PostgreSQL (read committed) every change behind
    # a mark read here is committed before the queries below take their snapshots.
    marks = _stale_marks(session, config.id)
    outdated = _outdated(session, config.id, inputs_digest(config, channel_costs))
    dates = _dates_to_refresh(now.astimezone(dt.UTC).date(), set(marks) | outdated, max_days)
    hours.refresh(session, config, channel_costs=channel_costs, now=now, day_marks=marks)
    # The hours of the marked days were all recomputed just now: no day mark to honour.
    documents, whole = hours.read(session, config, dates, channel_costs=channel_costs, day_marks=())
    documents.update(compute_runs(session, config, _runs(whole), channel_costs=channel_costs))
    _store(session, config, documents, now)
    _drop(session, config.id, [date for date in dates if date not in documents])
    _clear_marks(session, config.id, {day: marks[day] for day in dates if day in marks})
    return dates


def _outdated(session: Session, config_id: uuid.UUID, digest: str) -> set[dt.date]:
    """Stored days computed with other settings than the current ones."""
    stored_digest = MetricsDay.metrics["inputs_digest"].as_string()
    return set(
        session.scalars(
            select(MetricsDay.date).where(
                MetricsDay.config_id == config_id,
                or_(stored_digest.is_(None), stored_digest != digest),
            )
        )
    )


def _dates_to_refresh(today: dt.date, stale: set[dt.date], max_days: int) -> list[dt.date]:
    """Today, yesterday and at most ``max_days`` other stale days (the newest), in order."""
    recent = {today, today - dt.timedelta(days=1)} if today > dt.date.min else {today}
    extra = sorted(stale - recent, reverse=True)[: max(0, max_days)]
    return sorted(recent | set(extra))


def _store(session: Session, config: Config, documents: Mapping, now: dt.datetime) -> None:
    """Insert or replace the rows of these days."""
    if not documents:
        return
    statement = dialect_insert(session, MetricsDay.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["config_id", "date"],
        set_={
            "metrics": statement.excluded.metrics,
            "updated_at": statement.excluded.updated_at,
        },
    )
    session.execute(
        statement,
        [
            {
                "id": uuid.uuid4(),
                "workspace_id": config.workspace_id,
                "config_id": config.id,
                "date": date,
                "metrics": document,
                "created_at": now,
                "updated_at": now,
            }
            for date, document in documents.items()
        ],
    )


def _drop(session: Session, config_id: uuid.UUID, dates: list[dt.date]) -> None:
    """Delete the rows of days left without decisions."""
    if dates:
        session.execute(
            delete(MetricsDay).where(MetricsDay.config_id == config_id, MetricsDay.date.in_(dates))
        )


def _runs(dates: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive dates as inclusive ``(first, last)`` ranges."""
    runs: list[list[dt.date]] = []
    for date in sorted(set(dates)):
        if runs and (date - runs[-1][1]).days == 1:
            runs[-1][1] = date
        else:
            runs.append([date, date])
    return [(first, last) for first, last in runs]


# --- Reading --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Day:
    """One day of a read.

    :param metrics: the day's document as stored (or computed live): the API's
        ``daily[].metrics``, shown as it is
    :param rolled_up_at: when the stored row was computed; None: computed live
    """

    date: dt.date
    metrics: Mapping
    rolled_up_at: dt.datetime | None

    @property
    def document(self) -> DayDocument:
        """The document read for adding up."""
        return DayDocument.of(self.metrics)


def read(
    session: Session,
    config: Config,
    date_from: dt.date,
    date_to: dt.date,
    *,
    channel_costs: Mapping[str, float],
) -> list[Day]:
    """Every day of the range that has decisions, oldest first.

    A stored row is used when it is complete and clean: rolled up after its day ended,
    not marked stale since, with the current settings' digest. Every other day is
    computed live (``rolled_up_at`` None): from its stored hours plus the rest live when
    it has some (today, yesterday), else whole, all of those in one set of queries.
    """
    usable = _clean_rows(
        session, config.id, date_from, date_to, inputs_digest(config, channel_costs)
    )
    missing = [day for day in _dates(date_from, date_to) if day not in usable]
    live, whole = hours.read(session, config, missing, channel_costs=channel_costs)
    live.update(compute_runs(session, config, _runs(whole), channel_costs=channel_costs))
    days = [Day(date, row.metrics, row.updated_at) for date, row in usable.items()]
    days += [Day(date, document, None) for date, document in live.items()]
    return sorted(days, key=operator.attrgetter("date"))


def _clean_rows(
    session: Session, config_id: uuid.UUID, date_from: dt.date, date_to: dt.date, digest: str
) -> dict:
    """``{date: row}`` of the stored rows in range that may be used as they are."""
    stored = session.execute(
        select(MetricsDay.date, MetricsDay.metrics, MetricsDay.updated_at).where(
            MetricsDay.config_id == config_id,
            MetricsDay.date >= date_from,
            MetricsDay.date <= date_to,
        )
    ).all()
    stale = set(
        session.scalars(
            select(StaleMetricsDay.date).where(
                StaleMetricsDay.config_id == config_id,
                StaleMetricsDay.date >= date_from,
                StaleMetricsDay.date <= date_to,
            )
        )
    )
    return {
        row.date: row
        for row in stored
        if row.date not in stale and _complete(row) and _digest(row.metrics) == digest
    }


def _complete(row) -> bool:
    """Rolled up after its day ended (a row written during its day misses the rest)."""
    end = day_end(row.date)
    return end is not None and row.updated_at >= end


def _digest(stored: object) -> str | None:
    # The metrics column is the seed's JSON: read what a row holds without trusting it.
    return stored.get("inputs_digest") if isinstance(stored, Mapping) else None


def _dates(date_from: dt.date, date_to: dt.date) -> list[dt.date]:
    days, day = [], date_from
    while day <= date_to:
        days.append(day)
        if day == dt.date.max:
            break
        day += dt.timedelta(days=1)
    return days
