"""Storing each outcome once, and what an outcome may claim (issue 14, defects 3, 5, 6).

**The same event is stored once (Stripe's rule).** Each event gets an idempotency key
(:func:`key_of`). A key seen before answers the first arrival's answer and stores nothing
(a *duplicate*); the same client ``idempotency_key`` with another payload (another
decision, user, type, value, or time) is a 409 and stores nothing. The keys:

- the caller's ``idempotency_key`` (``k:``), whatever else the event says;
- a single-shot event of a decision (an open, a click): once per decision and type (``d:``);
- a repeatable event (a value event such as a purchase, or a user-level event) with its
  ``occurred_at``: once per decision or user, type, time and value (``v:``, ``u:``);
- the same without ``occurred_at``: a network retry is recognised when an identical event
  (decision or user, type, value) arrived in the previous :data:`RETRY_WINDOW` (``r:``).
  A purchase really made twice within that window needs an ``idempotency_key`` (the
  order id) or its ``occurred_at``.

``accepted`` counts the rows a request stored; ``duplicates`` the events it recognised as
stored already (before, or earlier in the same batch).

**What an outcome may claim.** ``occurred_at`` no earlier than its decision and no later
than now, each within :data:`OCCURRED_AT_SKEW` of clock skew; a ``value`` finite and at most
the cap in absolute value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.errors import Conflict, InvalidInput
from hpe_core.store.db import dialect_insert
from hpe_core.store.models import Outcome

_OUTCOMES = Outcome.__table__
#: A repeatable event without a key or a time, identical to one received this recently,
#: is a network retry of it.
RETRY_WINDOW = dt.timedelta(minutes=10)
#: How far ``occurred_at`` may be before its decision, or after now: clocks differ.
OCCURRED_AT_SKEW = dt.timedelta(minutes=5)
#: The largest outcome value (absolute) accepted when nothing else is configured
#: (``HPE_MAX_OUTCOME_VALUE``).
DEFAULT_MAX_VALUE = 1_000_000.0


def key_of(event, occurred_at: dt.datetime, value_events: frozenset[str], now: dt.datetime) -> str:
    """The key that makes an event count once (the module's rules).

    :param event: an :class:`~hpe_core.learn.outcomes.OutcomeEvent`
    :param occurred_at: the time stored for it (``event.occurred_at``, else ``now``)
    """
    if event.idempotency_key:
        return "k:" + event.idempotency_key
    if event.decision_id is not None and event.type not in value_events:
        return f"d:{event.decision_id}:{event.type}"
    who = f"d:{event.decision_id}" if event.decision_id is not None else f"u:{event.user_id}"
    if event.occurred_at is None:
        return _retry_key(f"{who}|{event.type}|{event.value}", _bucket(now))
    digest = hashlib.sha256(
        f"{who}|{event.type}|{occurred_at.isoformat()}|{event.value}".encode()
    ).hexdigest()
    return ("v:" if event.decision_id is not None else "u:") + digest


def _retry_key(identity: str, bucket: int) -> str:
    return f"r:{hashlib.sha256(identity.encode()).hexdigest()}:{bucket}"


def _bucket(now: dt.datetime) -> int:
    return int(now.timestamp() // RETRY_WINDOW.total_seconds())


def check_claims(
    events: Sequence,
    created_at: Mapping[uuid.UUID, dt.datetime],
    now: dt.datetime,
    max_value: float | None = None,
) -> None:
    """Reject values and times an outcome cannot have, naming each event by position.

    :param created_at: decision id -> when it was made (the events' decisions)
    :param max_value: the largest absolute value (default :data:`DEFAULT_MAX_VALUE`)
    :raises InvalidInput: a non-finite value or one over the cap; an ``occurred_at`` in the
        future or before its decision (beyond :data:`OCCURRED_AT_SKEW`)
    """
    cap = DEFAULT_MAX_VALUE if max_value is None else float(max_value)
    errors: dict = {}
    for position, event in enumerate(events):
        problems: dict[str, list[str]] = {}
        if event.value is not None:
            if not math.isfinite(event.value):
                problems["value"] = ["Must be a finite number."]
            elif abs(event.value) > cap:
                problems["value"] = [f"At most {cap:g} in absolute value (HPE_MAX_OUTCOME_VALUE)."]
        if event.occurred_at is not None:
            if event.occurred_at > now + OCCURRED_AT_SKEW:
                problems["occurred_at"] = ["In the future."]
            elif event.decision_id is not None:
                decided = created_at.get(event.decision_id)
                if decided is not None and event.occurred_at < decided - OCCURRED_AT_SKEW:
                    problems["occurred_at"] = [f"Before its decision (made {decided.isoformat()})."]
        if problems:
            errors[str(position)] = problems
    if errors:
        raise InvalidInput(
            "Some outcomes claim a value or a time they cannot have; nothing was stored.",
            errors,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    """What :func:`store_once` did.

    :param keys: the stored key each event counts under, in the order given
    :param duplicate: per event, whether it was stored before (this request stored nothing)
    :param late: per event, the stored row's lateness
    """

    keys: tuple[str, ...]
    duplicate: tuple[bool, ...]
    late: tuple[bool, ...]

    @property
    def accepted(self) -> int:
        return self.duplicate.count(False)

    @property
    def duplicates(self) -> int:
        return self.duplicate.count(True)


def store_once(
    session: Session, config_id: uuid.UUID, rows: list[dict], events: Sequence, now: dt.datetime
) -> Stored:
    """Insert the rows whose events were not stored before; recognise the others.

    :param rows: one outcome row per event, with its ``idempotency_key`` (:func:`key_of`)
    :raises Conflict: an ``idempotency_key`` reused with another payload (nothing stored:
        the caller's transaction must not be committed)
    """
    keys = _earlier_retries(session, config_id, [row["idempotency_key"] for row in rows], now)
    first: dict[str, int] = {}
    for position, key in enumerate(keys):
        first.setdefault(key, position)
    # A key twice in one batch: the first event is stored, a later one is its duplicate,
    # or a conflict when a client key carries another payload.
    _raise_conflicts(
        (position, events[position], rows[first[key]])
        for position, key in enumerate(keys)
        if first[key] != position
    )
    inserted = _insert_returning_keys(
        session,
        [
            rows[position]
            for key, position in first.items()
            if rows[position]["idempotency_key"] == key
        ],
    )
    stored = _stored_rows(session, config_id, list(first))
    # Stored before (or concurrently, by another request that won the insert).
    _raise_conflicts(
        (position, events[position], stored[key])
        for position, key in enumerate(keys)
        if key not in inserted and key in stored
    )
    duplicate = tuple(
        not (key in inserted and first[key] == position) for position, key in enumerate(keys)
    )
    late = tuple(bool(stored[key]["late"]) if key in stored else False for key in keys)
    return Stored(keys=tuple(keys), duplicate=duplicate, late=late)


def _raise_conflicts(candidates) -> None:
    """:raises Conflict: for each ``(position, event, stored payload)`` that differs"""
    errors = {
        str(position): {
            "idempotency_key": ["Already used for another outcome: use a new key for a new one."]
        }
        for position, event, payload in candidates
        if _differs(payload, event)
    }
    if errors:
        raise Conflict(
            "An idempotency_key was used before for another outcome (the same key must carry "
            "the same payload); nothing was stored.",
            errors,
        )


def _earlier_retries(
    session: Session, config_id: uuid.UUID, keys: list[str], now: dt.datetime
) -> list[str]:
    """Each ``r:`` key of this window's bucket replaced by the previous bucket's key when an
    identical event was received there within :data:`RETRY_WINDOW`."""
    previous = {}
    for key in keys:
        if key.startswith("r:"):
            _prefix, identity, bucket = key.split(":")
            previous[key] = f"r:{identity}:{int(bucket) - 1}"
    if not previous:
        return keys
    found = set(
        session.scalars(
            select(Outcome.idempotency_key).where(
                Outcome.config_id == config_id,
                Outcome.idempotency_key.in_(set(previous.values())),
                Outcome.received_at >= now - RETRY_WINDOW,
            )
        )
    )
    return [previous[key] if previous.get(key) in found else key for key in keys]


def _insert_returning_keys(session: Session, rows: list[dict]) -> set[str]:
    if not rows:
        return set()
    statement = (
        dialect_insert(session, _OUTCOMES)
        .on_conflict_do_nothing(index_elements=["config_id", "idempotency_key"])
        .returning(_OUTCOMES.c.idempotency_key)
    )
    return set(session.scalars(statement, rows))


def _stored_rows(session: Session, config_id: uuid.UUID, keys: list[str]) -> dict[str, dict]:
    stored = {}
    for start in range(0, len(keys), 1000):
        rows = session.execute(
            select(
                Outcome.idempotency_key,
                Outcome.decision_id,
                Outcome.user_id,
                Outcome.type,
                Outcome.value,
                Outcome.occurred_at,
                Outcome.late,
            ).where(
                Outcome.config_id == config_id,
                Outcome.idempotency_key.in_(keys[start : start + 1000]),
            )
        )
        for row in rows:
            stored[row.idempotency_key] = row._asdict()
    return stored


def _differs(stored: Mapping, event) -> bool:
    """Whether ``event`` reuses a client ``idempotency_key`` for another outcome than the
    one stored (or first in the batch) under it. Keys HPE makes mean the same event by
    construction, so only client keys can conflict; what the event leaves out (its user,
    its time) is not compared."""
    if not event.idempotency_key:
        return False
    if stored.get("decision_id") != event.decision_id or stored.get("type") != event.type:
        return True
    if stored.get("value") != event.value:
        return True
    if event.user_id and stored.get("user_id") != event.user_id:
        return True
    occurred = stored.get("occurred_at")
    if event.occurred_at is not None and occurred is not None:
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=dt.UTC)
        if occurred != event.occurred_at:
            return True
    return False
