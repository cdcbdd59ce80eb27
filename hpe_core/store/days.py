"""UTC calendar days of the decision log: where a day starts and ends, and the SQL
condition "a decision made on these dates".

Here, under the stages, because three of them count decisions by day: the guardrails
(today's spend and shares), the rollups and the off-policy evaluation.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, literal

from hpe_core.store.models import Decision


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def day_end(day: dt.date) -> dt.datetime | None:
    """The first instant after ``day`` (None after 9999-12-31: there is none)."""
    return day_start(day + dt.timedelta(days=1)) if day < dt.date.max else None


def created_between(date_from: dt.date, date_to: dt.date):
    """SQL condition: a decision created on one of the UTC dates ``date_from``..``date_to``."""
    end = day_end(date_to)
    # The day after 9999-12-31 does not exist: that range is open-ended.
    upper = Decision.created_at < end if end is not None else literal(True)
    return and_(Decision.created_at >= day_start(date_from), upper)
