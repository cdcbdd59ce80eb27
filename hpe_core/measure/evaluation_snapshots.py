"""The off-policy evaluation the last measurement pass computed, kept per configuration.

Replaying the model on thousands of logged decisions takes seconds, too slow for every
load of a results page. The measurement pass evaluates anyway (its recommendation rules
need it), so it keeps its answer here (one row per configuration, replaced by each pass)
and the page shows it with the time it was computed. ``GET /{id}/evaluation`` and the
page's "evaluate again" link still compute afresh (:mod:`hpe_core.measure.evaluation`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid

from sqlalchemy.orm import Session

from hpe_core.measure import evaluation
from hpe_core.results import DateRange, Evaluation, read_answer
from hpe_core.store.db import dialect_insert
from hpe_core.store.models import EvaluationSnapshot


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A stored evaluation: the answer, when it was computed, the most recent decisions
    it read at most (``limit``) and, when it read that many, when the oldest of them was
    made (``sample_from``)."""

    evaluation: Evaluation
    computed_at: dt.datetime
    limit: int
    sample_from: dt.datetime | None

    def covers(self, date_from: dt.date, date_to: dt.date) -> bool:
        """Whether this is also the evaluation of ``date_from``..``date_to`` (through the
        same day): the same range, or, when it read its full ``limit``, any range holding
        all of those decisions (its ``limit`` most recent ones are the same)."""
        evaluation = self.evaluation
        if date_to != evaluation.date_to:
            return False
        if date_from == evaluation.date_from:
            return True
        return self.sample_from is not None and date_from <= self.sample_from.date()


def store(
    session: Session,
    config_id: uuid.UUID,
    evaluated: Evaluation,
    *,
    limit: int,
    now: dt.datetime,
) -> None:
    """Keep ``evaluated`` (read with ``limit``) as this configuration's latest (no commit)."""
    sample_from = None
    if evaluated.n + evaluated.skipped >= limit:
        sample_from = evaluation.sample_start(
            session, config_id, evaluated.date_from, evaluated.date_to, limit
        )
    statement = dialect_insert(session, EvaluationSnapshot.__table__)
    values = {
        "config_id": config_id,
        "date_from": evaluated.date_from,
        "date_to": evaluated.date_to,
        "sample_limit": limit,
        "sample_from": sample_from,
        "evaluation": _plain(dataclasses.asdict(evaluated)),
        "computed_at": now,
    }
    statement = statement.on_conflict_do_update(
        index_elements=["config_id"],
        set_={name: statement.excluded[name] for name in values if name != "config_id"},
    )
    session.execute(statement, [values])


def latest(session: Session, config_id: uuid.UUID) -> Snapshot | None:
    """The configuration's stored evaluation, if a pass kept one."""
    row = session.get(EvaluationSnapshot, config_id)
    if row is None:
        return None
    try:
        evaluation = _read(row.evaluation)
    except (KeyError, TypeError, ValueError):  # stored by another version: ignore it
        return None
    return Snapshot(
        evaluation=evaluation,
        computed_at=row.computed_at,
        limit=row.sample_limit,
        sample_from=row.sample_from,
    )


def _plain(value):
    """JSON-ready: dates as ISO text, ids as text, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _read(document) -> Evaluation:
    evaluation = read_answer(Evaluation, document)
    available = evaluation.available
    if available is not None:
        available = DateRange(
            date_from=dt.date.fromisoformat(available.date_from),
            date_to=dt.date.fromisoformat(available.date_to),
        )
    return dataclasses.replace(
        evaluation,
        config_id=uuid.UUID(str(evaluation.config_id)),
        date_from=dt.date.fromisoformat(evaluation.date_from),
        date_to=dt.date.fromisoformat(evaluation.date_to),
        available=available,
    )
