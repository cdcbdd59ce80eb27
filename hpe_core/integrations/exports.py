"""Exports for analytics and BI: every logged decision with its propensities, variant,
model version, outcomes and reward, and the daily metrics, by date range, streamed as
NDJSON or CSV with memory that stays flat whatever the size.

Decisions are read in one query (decisions left-joined to their outcomes, in decision
order) through a server-side cursor on PostgreSQL (``yield_per``: SQLite's cursor is
lazy already), and each decision is written as soon as its last outcome row is read:
one decision and one chunk of rows are in memory at a time. The daily metrics are the
same days ``GET /{id}/metrics`` reads (stored rollups, or computed live), one year at a
time.

Dates are UTC days, both ends included. ``GET /{id}/decisions/export``,
``GET /{id}/metrics/export`` and ``hpe export`` call these functions.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.errors import InvalidInput
from hpe_core.measure import rollups
from hpe_core.measure.day_counts import VARIANTS
from hpe_core.measure.stats import rate
from hpe_core.store.days import day_start
from hpe_core.store.models import Config, Decision, Outcome

FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
#: Rows fetched from the database at a time.
CHUNK = 2000
#: Default range: the last 30 days through today.
DEFAULT_DAYS = 30

#: The columns of a decision, in CSV order (propensities, context and outcomes are JSON
#: text in CSV, objects in NDJSON).
DECISION_FIELDS = (
    "decision_id",
    "created_at",
    "config_id",
    "user_id",
    "channel",
    "action_id",
    "probability",
    "propensities",
    "variant",
    "policy",
    "model_version",
    "model_action_id",
    "source",
    "context",
    "outcomes",
    "outcome_count",
    "value",
    "reward",
    "engaged",
    "learned_at",
)
_JSON_FIELDS = frozenset({"propensities", "context", "outcomes"})

#: The columns of the daily metrics: one row per day, variant and scope (the whole
#: configuration, a channel, an action).
METRIC_FIELDS = (
    "date",
    "variant",
    "scope",
    "key",
    "decisions",
    "engagements",
    "engagement_rate",
    "reward",
    "revenue",
    "cost",
)


@dataclasses.dataclass(frozen=True)
class DateRange:
    """UTC days ``date_from``..``date_to``, both included."""

    date_from: dt.date
    date_to: dt.date

    @classmethod
    def of(cls, date_from: dt.date | None, date_to: dt.date | None, today: dt.date) -> DateRange:
        """The range asked for (``to``: today; ``from``: 29 days before ``to``).

        :raises InvalidInput: ``from`` after ``to``
        """
        date_to = date_to or today
        date_from = date_from or date_to - dt.timedelta(days=DEFAULT_DAYS - 1)
        if date_from > date_to:
            raise InvalidInput("`from` is after `to`.", {"from": ["Must be on or before `to`."]})
        return cls(date_from, date_to)

    @property
    def start(self) -> dt.datetime:
        return day_start(self.date_from)

    @property
    def end(self) -> dt.datetime:
        """The first instant after the range."""
        return day_start(self.date_to + dt.timedelta(days=1))


def check_format(value: str | None) -> str:
    """``ndjson`` (the default) or ``csv``.

    :raises InvalidInput: another format
    """
    value = (value or "ndjson").lower()
    if value not in FORMATS:
        raise InvalidInput("Unknown export format.", {"format": ["ndjson or csv."]})
    return value


# --- Decisions ----------------------------------------------------------------------------


def decisions(
    session: Session, config: Config, dates: DateRange, *, chunk: int = CHUNK
) -> Iterator[dict]:
    """Every decision of the configuration made in ``dates``, oldest first, with its
    outcomes (``type``, ``value``, ``occurred_at``) in the order they occurred.

    A generator: run it to the end (or close it) before closing ``session``.
    """
    statement = (
        select(
            Decision.id,
            Decision.created_at,
            Decision.user_id,
            Decision.channel,
            Decision.action_id,
            Decision.probability,
            Decision.eligible,
            Decision.probabilities,
            Decision.variant,
            Decision.policy,
            Decision.model_version,
            Decision.model_action_id,
            Decision.source,
            Decision.context,
            Decision.reward,
            Decision.engaged,
            Decision.learned_at,
            Outcome.type.label("outcome_type"),
            Outcome.value.label("outcome_value"),
            Outcome.occurred_at.label("outcome_at"),
        )
        .outerjoin(Outcome, Outcome.decision_id == Decision.id)
        .where(
            Decision.config_id == config.id,
            Decision.created_at >= dates.start,
            Decision.created_at < dates.end,
        )
        .order_by(Decision.created_at, Decision.id, Outcome.occurred_at, Outcome.id)
        .execution_options(yield_per=chunk)
    )
    current: dict | None = None
    for row in session.execute(statement):
        if current is None or current["decision_id"] != row.id:
            if current is not None:
                yield _finished(current)
            current = _decision(config.id, row)
        if row.outcome_type is not None:
            current["outcomes"].append(
                {
                    "type": row.outcome_type,
                    "value": row.outcome_value,
                    "occurred_at": row.outcome_at,
                }
            )
    if current is not None:
        yield _finished(current)


def _decision(config_id: uuid.UUID, row) -> dict:
    return {
        "decision_id": row.id,
        "created_at": row.created_at,
        "config_id": config_id,
        "user_id": row.user_id,
        "channel": row.channel,
        "action_id": row.action_id,
        "probability": row.probability,
        "propensities": dict(zip(row.eligible or (), row.probabilities or (), strict=False)),
        "variant": row.variant,
        "policy": row.policy,
        "model_version": row.model_version,
        "model_action_id": row.model_action_id,
        "source": row.source,
        "context": row.context or {},
        "outcomes": [],
        "reward": row.reward,
        "engaged": row.engaged,
        "learned_at": row.learned_at,
    }


def _finished(decision: dict) -> dict:
    outcomes = decision["outcomes"]
    decision["outcome_count"] = len(outcomes)
    decision["value"] = sum(o["value"] or 0.0 for o in outcomes)
    return decision


# --- Daily metrics --------------------------------------------------------------------------


def daily_metrics(
    session: Session, config: Config, dates: DateRange, *, channel_costs: Mapping[str, float]
) -> Iterator[dict]:
    """One row per day with decisions, variant and scope (``all``, each ``channel``, each
    ``action``): the counters of the day's metrics document, read a year at a time."""
    start = dates.date_from
    while start <= dates.date_to:
        stop = min(dates.date_to, start + dt.timedelta(days=365))
        for day in rollups.read(session, config, start, stop, channel_costs=channel_costs):
            document = day.document
            yield from _day_rows(day.date, "all", "", document.variants)
            for scope, block in (("channel", document.channels), ("action", document.actions)):
                for key in sorted(block):
                    yield from _day_rows(day.date, scope, key, block[key])
        start = stop + dt.timedelta(days=1)


def _day_rows(date: dt.date, scope: str, key: str, by_variant: Mapping) -> Iterator[dict]:
    for variant in VARIANTS:
        counts = by_variant.get(variant) or {}
        decisions_ = int(counts.get("decisions") or 0)
        engagements = int(counts.get("engagements") or 0)
        yield {
            "date": date,
            "variant": variant,
            "scope": scope,
            "key": key,
            "decisions": decisions_,
            "engagements": engagements,
            "engagement_rate": rate(engagements, decisions_),
            "reward": float(counts.get("reward") or 0.0),
            "revenue": float(counts.get("revenue") or 0.0),
            "cost": float(counts.get("cost") or 0.0),
        }


# --- Encodings ------------------------------------------------------------------------------


def _plain(value: object) -> object:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def ndjson(rows: Iterable[Mapping], *, batch: int = 500) -> Iterator[bytes]:
    """One JSON object a line, written ``batch`` lines at a time."""
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps(_plain(row), separators=(",", ":")))
        if len(lines) >= batch:
            yield ("\n".join(lines) + "\n").encode()
            lines.clear()
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def csv_rows(
    rows: Iterable[Mapping], fields: tuple[str, ...], *, batch: int = 500
) -> Iterator[bytes]:
    """A header, then one line a row (objects as JSON text, None as empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    count = 0
    for row in rows:
        writer.writerow([_cell(field, row.get(field)) for field in fields])
        count += 1
        if count % batch == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _cell(field: str, value: object) -> object:
    if value is None:
        return ""
    if field in _JSON_FIELDS:
        return json.dumps(_plain(value), separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return _plain(value)


def encode(rows: Iterable[Mapping], fmt: str, fields: tuple[str, ...]) -> Iterator[bytes]:
    """``rows`` in the format asked for."""
    return csv_rows(rows, fields) if fmt == "csv" else ndjson(rows)
