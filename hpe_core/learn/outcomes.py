"""Outcomes: events that come back after a decision (open, click, conversion, ...).

A publishable key (public, in web pages) reports only outcomes of decisions it was
given, with their ``outcome_token`` (:mod:`hpe_core.learn.outcome_tokens`), only of the
types ``publishable_keys.outcome_events`` lists, once per decision and type, and never a
value or a user-level outcome (:mod:`hpe_core.tenancy.client_access`).

Accepting an outcome is one INSERT ... ON CONFLICT DO NOTHING per event: the same
idempotency key (or the same decision + type for single-shot events) is stored once, and
a retried request gets the same response. Rewards are computed later, when the decision's
window closes (see :mod:`hpe_core.learn.learning`), so accepting needs no Redis.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.errors import Forbidden, InvalidInput, NotFound
from hpe_core.learn import outcome_store
from hpe_core.learn.outcome_tokens import OutcomeTokens
from hpe_core.store import stale_days
from hpe_core.store.models import Config, Decision, Outcome, utcnow
from hpe_core.tenancy import activities, client_access, configs
from hpe_core.tenancy.settings_types import PublishableKeys, Reward, Settings
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
    """One event to record: tied to its decision, or to a user for attribution."""

    type: str
    decision_id: uuid.UUID | None = None
    user_id: str | None = None
    value: float | None = None
    occurred_at: dt.datetime | None = None
    idempotency_key: str | None = None
    #: The decision's ``outcome_token`` (how a publishable key names its decision).
    outcome_token: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedOutcome:
    """One stored outcome, as the answer shows it (the same on every retry).

    :param late: it arrived after its decision's reward window closed: kept, never learned
    """

    idempotency_key: str
    decision_id: uuid.UUID | None
    type: str
    late: bool
    #: It was stored before (an earlier request, or earlier in this batch): nothing stored.
    duplicate: bool = False


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What :func:`record` stored, answered the same on every retry."""

    #: One entry per event, in the order given.
    outcomes: tuple[RecordedOutcome, ...]
    #: The event types of the batch that ``reward.events`` does not list, sorted: they
    #: are kept and counted in metrics, but weigh nothing in the reward.
    unweighted: list[str]
    #: Rows this call stored, and events it recognised as stored already.
    accepted: int = 0
    duplicates: int = 0


def unweighted_types(reward: Reward, types: Iterable[str]) -> list[str]:
    """The ``types`` that ``reward.events`` does not weigh (not listed), sorted."""
    return sorted({type_ for type_ in types if reward.weight(type_) is None})


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
    event: OutcomeEvent,
    occurred_at: dt.datetime,
    value_events: frozenset[str] = frozenset(),
    now: dt.datetime | None = None,
) -> str:
    """The key that makes an event count once: :func:`hpe_core.learn.outcome_store.key_of`
    (its module says the rules)."""
    return outcome_store.key_of(event, occurred_at, value_events, now or occurred_at)


def record(
    session: Session,
    principal: Principal,
    config_id: uuid.UUID,
    events: list[OutcomeEvent],
    *,
    source: str = "api",
    now: dt.datetime | None = None,
    max_value: float | None = None,
    tokens: OutcomeTokens | None = None,
) -> Recorded:
    """Store a batch of outcomes, all or nothing.

    Types that ``reward.events`` does not list are accepted (settings may catch up later)
    and named in the answer; the first of each type is logged as an activity.

    :param source: where the outcomes came from (``api``, ``webhook``, ``tracking``...)
    :param max_value: the largest absolute ``value`` (default
        :data:`~hpe_core.learn.outcome_store.DEFAULT_MAX_VALUE`)
    :param tokens: checks the events' ``outcome_token`` (a publishable key needs them)
    :returns: what was stored, the same on every retry
    :raises NotFound: if the configuration or any referenced decision is unknown or
        another workspace's (then nothing is stored)
    :raises InvalidInput: empty or too large a batch, an event with neither decision nor
        user, a value or an ``occurred_at`` it cannot have
        (:func:`~hpe_core.learn.outcome_store.check_claims`)
    :raises Conflict: an ``idempotency_key`` reused for another outcome (then nothing is
        stored, and the caller must not commit)
    :raises Forbidden: an event a publishable key may not report (see the module), or an
        invalid or expired ``outcome_token`` (then nothing is stored)
    """
    now = now or utcnow()
    config = configs.get(session, principal, config_id)
    settings = configs.settings_of(config)
    events, decisions = _checked_events(
        session, config, settings, principal, events, tokens, now, max_value
    )
    reward = settings.reward
    # A client's events count once per decision and type, value events included: a page
    # cannot repeat a conversion by changing its time.
    client = client_access.publishable(principal)
    value_events = frozenset() if client else frozenset(reward.value_events)
    rows = [
        _outcome_row(config, event, decisions.get(event.decision_id), value_events, source, now)
        for event in events
    ]
    stored = outcome_store.store_once(session, config.id, rows, events, now)
    _mark_old_days_stale(session, config, events, decisions, now)
    unweighted = unweighted_types(reward, (event.type for event in events))
    note_unweighted(session, config, unweighted, actor=principal.actor, source=source)
    return Recorded(
        outcomes=_recorded_outcomes(rows, stored),
        unweighted=unweighted,
        accepted=stored.accepted,
        duplicates=stored.duplicates,
    )


def _checked_events(
    session: Session,
    config: Config,
    settings: Settings,
    principal: Principal,
    events: list[OutcomeEvent],
    tokens: OutcomeTokens | None,
    now: dt.datetime,
    max_value: float | None,
) -> tuple[list[OutcomeEvent], dict[uuid.UUID, _DecisionOf]]:
    """The events, each with the decision its ``outcome_token`` names, and their decisions,
    once everything :func:`record` checks before storing has passed.

    :raises: what :func:`record` raises, except Conflict
    """
    if client_access.publishable(principal):
        _check_client_events(settings, principal, events)
    events = _with_token_decisions(events, tokens, settings.publishable_keys, now)
    _check_batch(events)
    decisions = _decisions_of(session, config.id, events)
    created = {decision.id: decision.created_at for decision in decisions.values()}
    outcome_store.check_claims(events, created, now, max_value)
    return events, decisions


def _recorded_outcomes(
    rows: list[dict], stored: outcome_store.Stored
) -> tuple[RecordedOutcome, ...]:
    """Each row's answer entry, in the order given."""
    return tuple(
        RecordedOutcome(
            idempotency_key=key,
            decision_id=row["decision_id"],
            type=row["type"],
            late=late,
            duplicate=duplicate,
        )
        for row, key, late, duplicate in zip(
            rows, stored.keys, stored.late, stored.duplicate, strict=True
        )
    )


def _check_client_events(
    settings: Settings, principal: Principal, events: list[OutcomeEvent]
) -> None:
    """What a publishable key may report: its decisions' outcomes (by token), of the
    client-reportable types, once each, with nothing the page could make up.

    :raises Forbidden: naming each refused event by its position
    """
    client_access.check_allowed(settings, principal)
    allowed = settings.publishable_keys.outcome_events
    errors: dict = {}
    for position, event in enumerate(events):
        problems = {}
        if not event.outcome_token:
            problems["outcome_token"] = ["Send the outcome_token of the decision."]
        if event.type not in allowed:
            listed = ", ".join(allowed) or "none"
            problems["type"] = [
                f"Not client-reportable (publishable_keys.outcome_events: {listed})."
            ]
        for name in ("value", "user_id", "occurred_at", "idempotency_key"):
            if getattr(event, name) is not None:
                problems[name] = ["Needs a secret key."]
        if problems:
            errors[str(position)] = problems
    if errors:
        raise Forbidden(
            "A publishable key reports only outcomes of the types the configuration lets "
            "clients report, each with its decision's outcome_token and without value, "
            "user_id, occurred_at or idempotency_key: use a secret key for the rest.",
            errors,
        )


def _with_token_decisions(
    events: list[OutcomeEvent],
    tokens: OutcomeTokens | None,
    rules: PublishableKeys,
    now: dt.datetime,
) -> list[OutcomeEvent]:
    """The events with the decision each ``outcome_token`` names as their decision.

    :raises Forbidden: a token HPE did not issue, an expired one, or one that names
        another decision than the event's ``decision_id``
    """
    if not any(event.outcome_token for event in events):
        return events
    if tokens is None:
        raise Forbidden("Outcome tokens cannot be checked here: use a secret key.")
    resolved = []
    for event in events:
        if event.outcome_token:
            decision_id = tokens.verify(event.outcome_token, now=now, max_age=rules.token_seconds)
            if event.decision_id is not None and event.decision_id != decision_id:
                raise Forbidden(
                    "This outcome_token belongs to another decision than decision_id.",
                    {"outcome_token": ["Not this decision's token."]},
                )
            event = dataclasses.replace(event, decision_id=decision_id)
        resolved.append(event)
    return resolved


def _check_batch(events: list[OutcomeEvent]) -> None:
    """:raises InvalidInput: no events, too many, or one with neither decision nor user"""
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


class _DecisionOf(NamedTuple):
    """What recording an outcome needs of its decision."""

    id: uuid.UUID
    user_id: str
    window_closes_at: dt.datetime
    created_at: dt.datetime


def _decisions_of(
    session: Session, config_id: uuid.UUID, events: list[OutcomeEvent]
) -> dict[uuid.UUID, _DecisionOf]:
    """The decisions the events name, by id.

    :raises NotFound: one is not a decision of this configuration
    """
    decision_ids = {event.decision_id for event in events if event.decision_id is not None}
    if not decision_ids:
        return {}
    rows = session.execute(
        select(Decision.id, Decision.user_id, Decision.window_closes_at, Decision.created_at).where(
            Decision.config_id == config_id, Decision.id.in_(decision_ids)
        )
    )
    decisions = {row.id: _DecisionOf(*row) for row in rows}
    missing = decision_ids - decisions.keys()
    if missing:
        raise NotFound(
            f"Unknown decision(s) for this configuration: "
            f"{', '.join(sorted(str(m) for m in missing)[:5])}.",
            {"decision_id": ["Unknown decision."]},
        )
    return decisions


def _outcome_row(
    config: Config,
    event: OutcomeEvent,
    decision: _DecisionOf | None,
    value_events: frozenset[str],
    source: str,
    now: dt.datetime,
) -> dict:
    occurred_at = event.occurred_at or now
    return {
        "id": uuid.uuid4(),
        "workspace_id": config.workspace_id,
        "config_id": config.id,
        "decision_id": event.decision_id,
        "user_id": event.user_id or (decision.user_id if decision else None),
        "type": event.type,
        "value": event.value,
        "occurred_at": occurred_at,
        "received_at": now,
        "idempotency_key": outcome_store.key_of(event, occurred_at, value_events, now),
        # Late = arrived after the decision's reward window closed: kept, never learned.
        "late": decision is not None and now > decision.window_closes_at,
        "source": source,
    }


def _mark_old_days_stale(
    session: Session,
    config: Config,
    events: list[OutcomeEvent],
    decisions: Mapping[uuid.UUID, _DecisionOf],
    now: dt.datetime,
) -> None:
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
            outcome_token=item.get("outcome_token"),
        )
        for item in items
    ]
