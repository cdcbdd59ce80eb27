"""Outcomes: events that come back after a decision (open, click, conversion, ...).

Accepting an outcome is one INSERT ... ON CONFLICT DO NOTHING per event: the same
idempotency key (or the same decision + type for single-shot events) is stored once, and
a retried request gets the same response. Rewards are computed later, when the decision's
window closes (see :mod:`hpe_core.learn.learning`), so accepting needs no Redis.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.errors import InvalidInput, NotFound
from hpe_core.store import stale_days
from hpe_core.store.db import dialect_insert
from hpe_core.store.models import Decision, Outcome, utcnow
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.workspaces import Principal

_OUTCOMES = Outcome.__table__
MAX_BATCH = 1000
#: Outcomes are received, and credit given, after the decision they belong to exists
#: (server clock), so a live day needs only those written since it began: indexed by
#: time (migration 0006), today's read stays proportional to today's rows. The margin
#: absorbs clock skew between hosts that decide and hosts that record outcomes or
#: attribute, and the slightly future timestamps imports accept (no more than this).
CLOCK_SKEW = dt.timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class OutcomeEvent:
    type: str
    decision_id: uuid.UUID | None = None
    user_id: str | None = None
    value: float | None = None
    occurred_at: dt.datetime | None = None
    idempotency_key: str | None = None


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What :func:`record` stored, answered the same on every retry."""

    #: One entry per event: ``{"idempotency_key", "decision_id", "type", "late"}``.
    outcomes: list[dict]
    #: The event types of the batch that ``reward.events`` does not list, sorted: they
    #: are kept and counted in metrics, but weigh nothing in the reward.
    unweighted: list[str]


def unweighted_types(reward_settings: Mapping, types: Iterable[str]) -> list[str]:
    """The ``types`` that ``reward.events`` does not weigh (not listed), sorted."""
    return sorted(set(types) - set(reward_settings["events"]))


def note_unweighted(
    session: Session, config, types: Iterable[str], *, actor: str, source: str
) -> None:
    """Log :data:`~hpe_core.tenancy.activities.OUTCOME_UNWEIGHTED_TYPE` the first time a type
    the reward does not weigh arrives for this configuration (once per type, ever)."""
    for type_ in types:
        activities.record_once(
            session,
            key=type_,
            workspace_id=config.workspace_id,
            config_id=config.id,
            type=activities.OUTCOME_UNWEIGHTED_TYPE,
            actor=actor,
            data={
                "type": type_,
                "source": source,
                "message": (
                    f"Outcomes of type {type_!r} are stored and counted in metrics, but "
                    f"reward.events gives them no weight, so the model does not learn "
                    f"from them. Add {type_!r} to reward.events to reward them."
                ),
            },
        )


def idempotency_key(
    event: OutcomeEvent, occurred_at: dt.datetime, value_events: frozenset[str] = frozenset()
) -> str:
    """The key that makes an event count once.

    The caller's key when given. Else, tied to a decision, ``<decision_id>:<type>`` for
    single-shot events (an open, a click: once per decision); value events (purchases)
    can repeat, so theirs also digests ``occurred_at`` and value. Else a digest of user,
    type, time and value, so the same user-level event replayed is still recognised.
    Send an ``idempotency_key`` (e.g. the order id) whenever an event can repeat.
    """
    if event.idempotency_key:
        return "k:" + event.idempotency_key
    if event.decision_id is not None and event.type not in value_events:
        return f"d:{event.decision_id}:{event.type}"
    who = f"d:{event.decision_id}" if event.decision_id is not None else f"u:{event.user_id}"
    digest = hashlib.sha256(
        f"{who}|{event.type}|{occurred_at.isoformat()}|{event.value}".encode()
    ).hexdigest()
    return ("v:" if event.decision_id is not None else "u:") + digest


def record(
    session: Session,
    principal: Principal,
    config_id: uuid.UUID,
    events: list[OutcomeEvent],
    *,
    source: str = "api",
    now: dt.datetime | None = None,
) -> Recorded:
    """Store a batch of outcomes, all or nothing.

    Types that ``reward.events`` does not list are accepted (settings may catch up later)
    and named in the answer; the first of each type is logged as an activity.

    :returns: what was stored, the same on every retry
    :raises NotFound: if the configuration or any referenced decision is unknown or
        another workspace's (then nothing is stored)
    :raises InvalidInput: empty or too large a batch, an event with neither decision nor user
    """
    now = now or utcnow()
    config = configs.get(session, principal, config_id)
    if not events:
        raise InvalidInput("No outcomes given.", {"outcomes": ["Give at least one outcome."]})
    if len(events) > MAX_BATCH:
        raise InvalidInput(
            f"At most {MAX_BATCH} outcomes per request.", {"outcomes": ["Too many."]}
        )
    for position, event in enumerate(events):
        if event.decision_id is None and not event.user_id:
            raise InvalidInput(
                "An outcome needs a decision_id or a user_id.",
                {str(position): ["Give decision_id or user_id."]},
            )

    decision_ids = {e.decision_id for e in events if e.decision_id is not None}
    decisions = {}
    if decision_ids:
        rows = session.execute(
            select(
                Decision.id, Decision.user_id, Decision.window_closes_at, Decision.created_at
            ).where(Decision.config_id == config.id, Decision.id.in_(decision_ids))
        ).all()
        decisions = {row.id: row for row in rows}
        missing = decision_ids - decisions.keys()
        if missing:
            raise NotFound(
                f"Unknown decision(s) for this configuration: "
                f"{', '.join(sorted(str(m) for m in missing)[:5])}.",
                {"decision_id": ["Unknown decision."]},
            )

    value_events = frozenset(config.settings["reward"]["value_events"])
    rows, results = [], []
    for event in events:
        occurred_at = event.occurred_at or now
        key = idempotency_key(event, occurred_at, value_events)
        decision = decisions.get(event.decision_id)
        # Late = arrived after the decision's reward window closed: kept, never learned.
        late = decision is not None and now > decision.window_closes_at
        rows.append(
            {
                "id": uuid.uuid4(),
                "workspace_id": config.workspace_id,
                "config_id": config.id,
                "decision_id": event.decision_id,
                "user_id": event.user_id or (decision.user_id if decision else None),
                "type": event.type,
                "value": event.value,
                "occurred_at": occurred_at,
                "received_at": now,
                "idempotency_key": key,
                "late": late,
                "source": source,
            }
        )
        results.append(
            {
                "idempotency_key": key,
                "decision_id": event.decision_id,
                "type": event.type,
            }
        )
    _insert_ignoring_duplicates(session, rows)
    _mark_old_days_stale(session, config, events, decisions, now)
    stored = dict(
        session.execute(
            select(Outcome.idempotency_key, Outcome.late).where(
                Outcome.config_id == config.id,
                Outcome.idempotency_key.in_([r["idempotency_key"] for r in rows]),
            )
        ).all()
    )
    # Report what is stored (the first arrival's lateness), so a retry answers the same.
    for result in results:
        result["late"] = bool(stored.get(result["idempotency_key"], False))
    unweighted = unweighted_types(config.settings["reward"], (e.type for e in events))
    note_unweighted(session, config, unweighted, actor=principal.actor, source=source)
    return Recorded(outcomes=results, unweighted=unweighted)


def _mark_old_days_stale(session: Session, config, events, decisions: dict, now) -> None:
    """Outcomes that change an already rolled-up day (their decision is older than
    yesterday) mark it stale. Recent days are recomputed by every rollup pass anyway, so
    the usual request adds no statement. Every type counts: a day's document counts
    outcomes by type, weighted or not."""
    cutoff = stale_days.recent_cutoff(now)
    days = {
        decisions[event.decision_id].created_at.astimezone(dt.UTC).date()
        for event in events
        if event.decision_id is not None and decisions[event.decision_id].created_at < cutoff
    }
    if days:
        stale_days.mark_stale(session, config.id, days)


def _insert_ignoring_duplicates(session: Session, rows: list[dict]) -> None:
    statement = dialect_insert(session, _OUTCOMES).on_conflict_do_nothing(
        index_elements=["config_id", "idempotency_key"]
    )
    session.execute(statement, rows)


def parse_events(items: list[Mapping]) -> list[OutcomeEvent]:
    """Events from API bodies already shape-checked by the web schema."""
    return [
        OutcomeEvent(
            type=item["type"],
            decision_id=item.get("decision_id"),
            user_id=item.get("user_id"),
            value=item.get("value"),
            occurred_at=item.get("occurred_at"),
            idempotency_key=item.get("idempotency_key"),
        )
        for item in items
    ]
