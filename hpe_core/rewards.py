"""From outcome events to one reward per decision (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def event_weight(reward_settings: Mapping, event_type: str) -> float:
    """The configured weight of an event type; types not listed weigh 0 (e.g. unsubscribe)."""
    return float(reward_settings["events"].get(event_type, 0.0))


def positive_types(reward_settings: Mapping) -> list[str]:
    """Event types whose outcome makes a decision count as engaged."""
    return sorted(t for t, w in reward_settings["events"].items() if w > 0)


def combine(reward_settings: Mapping, events: Iterable[tuple[str, float | None]]) -> float:
    """The reward of one decision from its ``(type, value)`` events.

    Stages combine by adding each event type's weight once (an open, then a click, then a
    conversion: 0.1 + 1.0 + 1.0), so a repeated open does not inflate the reward. Value
    events (``value_events``) instead add ``weight × value`` for every event with a value
    (two purchases of 40 and 60 with weight 0.01 add 1.0); without a value they count
    like any other type.
    """
    value_events = set(reward_settings["value_events"])
    seen: set[str] = set()
    total = 0.0
    for event_type, value in events:
        weight = event_weight(reward_settings, event_type)
        if event_type in value_events and value is not None:
            total += weight * value
            seen.add(event_type)
        elif event_type not in seen:
            total += weight
            seen.add(event_type)
    return total


def is_engaged(reward_settings: Mapping, event_types: Iterable[str]) -> bool:
    """A decision is engaged when at least one of its outcomes has a positive weight."""
    return any(event_weight(reward_settings, t) > 0 for t in event_types)
