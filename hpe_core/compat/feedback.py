"""Personalizer's Reward and Activate, single- and multi-slot, on the decision log.

**Rewards.** A Personalizer reward is one number for an event. It is stored on the event's
decision as its *given reward* (the column an import's reward goes to): learning takes it
as the decision's reward instead of combining outcome events, off-policy evaluation reads
it, and metrics count the decision engaged when it is above 0, at once. Several rewards
for one event combine as ``settings.personalizer.reward_aggregation`` says: ``earliest``
keeps the first, ``sum`` adds each one (one UPDATE either way: concurrent rewards never
lose one another). A reward counts while the decision's reward window is open
(``reward.wait_seconds`` from the decision, or from its activation); one that comes later
is ignored, as Personalizer ignores rewards after its ``rewardWaitTime``, and an event
that got none is learned with ``reward.default`` when its window closes.

**Activation.** A Rank with ``deferActivation`` logs its decision with source
``deferred`` and a reward window that does not close
(:data:`hpe_core.decide.decisions.DEFERRED_UNTIL`): it is not
learned, it gets no default reward, off-policy evaluation skips it, and metrics count it
only under ``sources.deferred``, outside the treatment-vs-holdout experiment and the
share and budget guardrails. Rewards that arrive before the activation are kept on it.
Activate makes it ``live`` and opens its reward window from that moment: from then on it
is counted, and learned when the window closes. Activating an event that is live already
changes nothing. An event never activated is never counted or learned.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from hpe_core.compat.errors import coded, invalid
from hpe_core.compat.options import check_event_id, event_decision_id, slot_decision_id
from hpe_core.decide.decisions import DecisionEngine
from hpe_core.errors import NotFound
from hpe_core.store import stale_days
from hpe_core.store.models import Decision, utcnow
from hpe_core.store.vocabulary import DecisionSource
from hpe_core.tenancy.settings_types import RewardAggregation
from hpe_core.tenancy.workspaces import Principal

_DECISIONS = Decision.__table__
#: The context key the multi-slot Rank gives a slot under (``ranking.SLOT_KEY``).
_SLOT_KEY = "_slot"


def reward(
    session: Session,
    engine: DecisionEngine,
    principal: Principal,
    config_id: uuid.UUID,
    event_id: str,
    value: float,
    now: dt.datetime | None = None,
) -> bool:
    """Record a reward for a single-slot event (the caller commits).

    :returns: True if it changed the event's reward (False: its window had closed, or
        with ``earliest`` it had a reward already)
    :raises NotFound: unknown configuration or event
    """
    now = now or utcnow()
    settings = engine.snapshot(session, principal, config_id).settings
    aggregation = settings.personalizer.reward_aggregation
    decision_id = event_decision_id(config_id, check_event_id(event_id))
    if not _exists(session, config_id, [decision_id]):
        raise _unknown_event(event_id)
    return _give(session, config_id, decision_id, value, aggregation, now)


def reward_slots(
    session: Session,
    engine: DecisionEngine,
    principal: Principal,
    config_id: uuid.UUID,
    event_id: str,
    rewards: Sequence[tuple[str, float]],
    now: dt.datetime | None = None,
) -> int:
    """Record rewards for slots of a multi-slot event (the caller commits).

    :param rewards: ``(slot id, value)`` pairs
    :returns: how many of them changed a slot's reward
    :raises NotFound: unknown configuration, event, or a slot that got no action
    :raises InvalidInput: no rewards given
    """
    now = now or utcnow()
    settings = engine.snapshot(session, principal, config_id).settings
    aggregation = settings.personalizer.reward_aggregation
    check_event_id(event_id)
    if not rewards:
        raise invalid("InvalidRewardRequest", "Give at least one slot reward.", "reward")
    ids = {slot_id: slot_decision_id(config_id, event_id, slot_id) for slot_id, _ in rewards}
    found = _exists(session, config_id, list(ids.values()))
    if not found:
        raise _unknown_event(event_id)
    missing = [slot_id for slot_id, decision_id in ids.items() if decision_id not in found]
    if missing:
        raise coded(
            NotFound(
                f"Event {event_id!r} has no decision for slot(s) {missing[:5]}: unknown "
                "slot ids, or slots that got no action."
            ),
            "ResourceNotFound",
        )
    return sum(
        _give(session, config_id, ids[slot_id], value, aggregation, now)
        for slot_id, value in rewards
    )


def activate(
    session: Session,
    engine: DecisionEngine,
    principal: Principal,
    config_id: uuid.UUID,
    event_id: str,
    now: dt.datetime | None = None,
) -> bool:
    """Activate a deferred single-slot event (the caller commits).

    :returns: True if it was deferred and is live now, False if it was live already
    :raises NotFound: unknown configuration or event
    """
    now = now or utcnow()
    settings = engine.snapshot(session, principal, config_id).settings
    decision_id = event_decision_id(config_id, check_event_id(event_id))
    if not _exists(session, config_id, [decision_id]):
        raise _unknown_event(event_id)
    return bool(_activate(session, config_id, [decision_id], settings.reward.wait_seconds, now))


def activate_slots(
    session: Session,
    engine: DecisionEngine,
    principal: Principal,
    config_id: uuid.UUID,
    event_id: str,
    now: dt.datetime | None = None,
) -> int:
    """Activate every deferred slot decision of a multi-slot event (the caller commits).

    The event's decisions are found by their user id (the event id) and told from a
    single-slot event of the same id by their derived ids.

    :returns: how many slot decisions became live
    :raises NotFound: unknown configuration or event
    """
    now = now or utcnow()
    settings = engine.snapshot(session, principal, config_id).settings
    check_event_id(event_id)
    rows = session.execute(
        select(Decision.id, Decision.context).where(
            Decision.config_id == config_id, Decision.user_id == event_id
        )
    )
    ids = [
        row.id
        for row in rows
        if isinstance((row.context or {}).get(_SLOT_KEY), dict)
        and row.id == slot_decision_id(config_id, event_id, str(row.context[_SLOT_KEY].get("id")))
    ]
    if not ids:
        raise _unknown_event(event_id)
    return _activate(session, config_id, ids, settings.reward.wait_seconds, now)


# --- Steps --------------------------------------------------------------------------------


def _exists(session: Session, config_id: uuid.UUID, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    return set(
        session.scalars(
            select(Decision.id).where(Decision.config_id == config_id, Decision.id.in_(ids))
        )
    )


def _give(
    session: Session,
    config_id: uuid.UUID,
    decision_id: uuid.UUID,
    value: float,
    aggregation: RewardAggregation,
    now: dt.datetime,
) -> bool:
    """Add one reward to a decision whose window is open.

    :returns: True if the decision's given reward changed
    """
    conditions = [
        _DECISIONS.c.config_id == config_id,
        _DECISIONS.c.id == decision_id,
        _DECISIONS.c.learned_at.is_(None),
        _DECISIONS.c.window_closes_at >= now,
    ]
    if aggregation == RewardAggregation.SUM:
        given = func.coalesce(_DECISIONS.c.given_reward, 0.0) + float(value)
    else:
        conditions.append(_DECISIONS.c.given_reward.is_(None))
        given = float(value)
    updated = session.execute(
        update(_DECISIONS).where(and_(*conditions)).values(given_reward=given)
    ).rowcount
    if not updated:
        # Closed, learned, or (earliest) rewarded before: this reward changes nothing.
        return False
    # The decision's day may be rolled up already: its engagement just changed.
    stale_days.mark_stale_decisions(session, config_id, [decision_id], now=now)
    return True


def _activate(
    session: Session,
    config_id: uuid.UUID,
    ids: list[uuid.UUID],
    wait_seconds: int,
    now: dt.datetime,
) -> int:
    """Make deferred decisions live, their reward windows open from ``now``."""
    activated = session.execute(
        update(_DECISIONS)
        .where(
            _DECISIONS.c.config_id == config_id,
            _DECISIONS.c.id.in_(ids),
            _DECISIONS.c.source == DecisionSource.DEFERRED,
        )
        .values(
            source=DecisionSource.LIVE,
            window_closes_at=now + dt.timedelta(seconds=wait_seconds),
        )
    ).rowcount
    if activated:
        # A day already rolled up gains live decisions.
        stale_days.mark_stale_decisions(session, config_id, ids, now=now)
    return activated


def _unknown_event(event_id: str) -> NotFound:
    return coded(
        NotFound(f"No event {event_id!r}: it was never ranked, or nothing was chosen for it."),
        "ResourceNotFound",
    )
