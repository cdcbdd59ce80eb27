"""The events worth marking on a results chart: what changed, and when.

Configuration changes, status changes (pause, resume), model rollbacks, applied
recommendations and guardrail events, from the activity log. Routine events (every
outcome, every learn batch) are left out: a chart marked daily marks nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hpe_core.store.models import Activity

#: Activity type (or family, ending in ".") -> its short label on a chart.
MARKED = {
    "config.updated": "settings changed",
    "config.status_changed": "status changed",
    "model.rolled_back": "model rolled back",
    "recommendation.applied": "recommendation applied",
    "guardrail.": "guardrail",
}
#: At most this many marks on one chart (newest kept): a busy month stays readable.
MAX_MARKS = 40


@dataclasses.dataclass(frozen=True)
class Annotation:
    date: dt.date
    at: dt.datetime
    type: str
    label: str
    actor: str

    def as_json(self) -> dict:
        return {"date": self.date.isoformat(), "label": self.label, "short": self.label}


def annotations(
    session: Session, config_id: uuid.UUID, date_from: dt.date, date_to: dt.date
) -> list[Annotation]:
    """The marked activities of a configuration between two UTC days, oldest first."""
    start = dt.datetime.combine(date_from, dt.time(), dt.UTC)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), dt.UTC)
    types = [Activity.type.startswith(t) if t.endswith(".") else Activity.type == t for t in MARKED]
    rows = session.scalars(
        select(Activity)
        .where(
            Activity.config_id == config_id,
            Activity.created_at >= start,
            Activity.created_at < end,
            or_(*types),
        )
        .order_by(Activity.created_at.desc())
        .limit(MAX_MARKS)
    )
    return [_annotation(row) for row in reversed(list(rows))]


def _annotation(row: Activity) -> Annotation:
    label = next(
        (
            text
            for prefix, text in MARKED.items()
            if row.type == prefix or row.type.startswith(prefix)
        ),
        row.type,
    )
    if row.type == "config.status_changed":
        label = f"{(row.data or {}).get('to', 'status').lower()}"
    elif row.type == "recommendation.applied":
        label = f"applied: {(row.data or {}).get('kind', 'recommendation').replace('_', ' ')}"
    at = row.created_at.astimezone(dt.UTC)
    return Annotation(date=at.date(), at=at, type=row.type, label=label, actor=row.actor)
