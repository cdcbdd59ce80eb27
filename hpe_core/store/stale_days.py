"""Marks of rolled-up days (and hours) whose inputs changed after they were rolled up.

Whatever changes a past day's data marks it, in the same transaction: an import, an
outcome for an old decision (:mod:`hpe_core.learn.outcomes`), learning (rewards) and
attribution (credit). The next measurement pass recomputes the marked days
(:mod:`hpe_core.measure.rollups`), and reads compute them live until then. Changes to
decisions of yesterday and today mark their UTC hours instead, for the hourly partials of
:mod:`hpe_core.measure.hours`. Here, under the stages, because the writers belong to the
stages below ``measure``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.store.days import day_start
from hpe_core.store.db import dialect_insert
from hpe_core.store.models import Decision, StaleMetricsDay, StaleMetricsHour, utcnow

_CHUNK = 1000


def mark_stale(session: Session, config_id: uuid.UUID, dates: Iterable[dt.date]) -> None:
    """Mark days whose inputs changed after they were rolled up (commit with the caller).

    One upsert; a day already marked gets a fresh ``marked_at``, which tells a refresh
    running concurrently that this mark came after what it computed (it keeps it).
    """
    days = sorted(set(dates))  # a fixed order: concurrent markers lock rows alike
    if not days:
        return
    now = utcnow()
    statement = dialect_insert(session, StaleMetricsDay.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["config_id", "date"], set_={"marked_at": statement.excluded.marked_at}
    )
    session.execute(
        statement, [{"config_id": config_id, "date": day, "marked_at": now} for day in days]
    )


def recent_cutoff(now: dt.datetime) -> dt.datetime:
    """The start of yesterday (UTC): every refresh recomputes yesterday and today, so
    changes to decisions made since then need no mark."""
    return day_start(now.astimezone(dt.UTC).date() - dt.timedelta(days=1))


def hour_of(moment: dt.datetime) -> dt.datetime:
    """The UTC hour ``moment`` falls in (its first instant)."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def mark_stale_hours(session: Session, config_id: uuid.UUID, hours: Iterable[dt.datetime]) -> None:
    """Mark UTC hours whose stored partial no longer matches (commit with the caller); as
    :func:`mark_stale`, a fresh ``marked_at`` for an hour already marked."""
    marked = sorted({hour_of(hour) for hour in hours})
    if not marked:
        return
    now = utcnow()
    statement = dialect_insert(session, StaleMetricsHour.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["config_id", "hour"], set_={"marked_at": statement.excluded.marked_at}
    )
    session.execute(
        statement, [{"config_id": config_id, "hour": hour, "marked_at": now} for hour in marked]
    )


def mark_stale_decisions(
    session: Session, config_id: uuid.UUID, decision_ids: list, *, now: dt.datetime
) -> None:
    """Mark the days of these decisions that are older than yesterday, and the hours of
    the others (learning set their rewards, attribution changed their credit, a reward or
    an activation changed them). One SELECT, plus one upsert per kind of mark needed."""
    cutoff = recent_cutoff(now)
    days: set[dt.date] = set()
    hours: set[dt.datetime] = set()
    for start in range(0, len(decision_ids), _CHUNK):
        created = session.scalars(
            select(Decision.created_at).where(Decision.id.in_(decision_ids[start : start + _CHUNK]))
        )
        for moment in created:
            if moment < cutoff:
                days.add(moment.astimezone(dt.UTC).date())
            else:
                hours.add(hour_of(moment))
    mark_stale(session, config_id, days)
    mark_stale_hours(session, config_id, hours)
