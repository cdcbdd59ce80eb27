"""From outcome events to one reward per decision (pure functions).

An event is ``(type, value)`` or ``(type, value, credit)``. ``credit`` is the share of
the event this decision earned: 1.0 for an outcome tied to it by ``decision_id``, the
attribution model's share (0 to 1) for a user-level outcome credited to several of the
user's decisions (:mod:`hpe_core.learn.attribution`).
"""

from __future__ import annotations

from collections.abc import Iterable

from hpe_core.tenancy.settings_types import Reward

Event = tuple[str, float | None] | tuple[str, float | None, float]


def event_weight(reward: Reward, event_type: str) -> float:
    """The configured weight of an event type; types not listed weigh 0 (e.g. unsubscribe)."""
    return float(reward.weight(event_type) or 0.0)


def positive_types(reward: Reward) -> list[str]:
    """Event types whose outcome makes a decision count as engaged."""
    return sorted(t for t, w in reward.events.items() if w > 0)


def combine(reward: Reward, events: Iterable[Event]) -> float:
    """The reward of one decision from its events.

    Stages combine by adding each event type's weight once (an open, then a click, then a
    conversion: 0.1 + 1.0 + 1.0), so a repeated open does not inflate the reward; with
    credit, a type adds ``weight × the largest credit seen for it``. Value events
    (``value_events``) instead add ``weight × value × credit`` for every event with a
    value (two purchases of 40 and 60 with weight 0.01 add 1.0); without a value they
    count like any other type, unless the same type also came with a value (the valued
    events already count that stage). The order of the events never matters.

    :param events: ``(type, value)`` or ``(type, value, credit)`` tuples
    :returns: the combined reward
    """
    value_events = set(reward.value_events)
    stage_credit: dict[str, float] = {}
    valued: dict[str, float] = {}
    for event in events:
        event_type, value, credit = _unpack(event)
        if event_type in value_events and value is not None:
            valued[event_type] = valued.get(event_type, 0.0) + value * credit
        else:
            stage_credit[event_type] = max(stage_credit.get(event_type, 0.0), credit)
    total = 0.0
    for event_type, amount in valued.items():
        total += event_weight(reward, event_type) * amount
    for event_type, credit in stage_credit.items():
        if event_type not in valued:
            total += event_weight(reward, event_type) * credit
    return total


def is_engaged(reward: Reward, events: Iterable[str | Event]) -> bool:
    """A decision is engaged when at least one of its outcomes has a positive weight and,
    for an attributed outcome, a credit above 0.

    :param events: event types, or ``(type, value[, credit])`` tuples as for :func:`combine`
    """
    for event in events:
        event_type, _value, credit = _unpack((event,) if isinstance(event, str) else event)
        if credit > 0 and event_weight(reward, event_type) > 0:
            return True
    return False


def _unpack(event: tuple) -> tuple[str, float | None, float]:
    if len(event) == 3:
        return event[0], event[1], float(event[2])
    if len(event) == 2:
        return event[0], event[1], 1.0
    return event[0], None, 1.0
