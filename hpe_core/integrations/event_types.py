"""The events a workspace can subscribe an outgoing webhook endpoint to.

A subscription lists exact types (``model.updated``) or families (``guardrail.*``,
``recommendation.*``); ``*`` is every type. The payload of every message is
``{"type", "timestamp", "data"}`` (Standard Webhooks' recommended shape); docs/integrations.md
gives each type's ``data``.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpe_core.errors import InvalidInput

DECISION_CREATED = "decision.created"
OUTCOME_RECEIVED = "outcome.received"
MODEL_UPDATED = "model.updated"
RECOMMENDATION_OPENED = "recommendation.opened"
RECOMMENDATION_APPLIED = "recommendation.applied"
RECOMMENDATION_DISMISSED = "recommendation.dismissed"
GUARDRAIL_BUDGET_EXHAUSTED = "guardrail.budget_exhausted"
GUARDRAIL_CIRCUIT_BREAKER = "guardrail.circuit_breaker"
CONFIG_CREATED = "config.created"
CONFIG_UPDATED = "config.updated"
CONFIG_STATUS_CHANGED = "config.status_changed"

#: Every type, with what it carries (also the OpenAPI description).
EVENT_TYPES: dict[str, str] = {
    DECISION_CREATED: "decisions logged, batched (`data.decisions`: up to 500 a message)",
    OUTCOME_RECEIVED: "outcomes stored for one configuration (`data.outcomes`)",
    MODEL_UPDATED: "a new model version was learned (`data.version`, `data.examples`)",
    RECOMMENDATION_OPENED: "a recommendation was raised (or raised again)",
    RECOMMENDATION_APPLIED: "a recommendation was applied, by a person or the engine",
    RECOMMENDATION_DISMISSED: "a recommendation was dismissed",
    GUARDRAIL_BUDGET_EXHAUSTED: "a budget ran out: costly actions stop until the next period",
    GUARDRAIL_CIRCUIT_BREAKER: "treatment was worse than the holdout: switched to manual",
    CONFIG_CREATED: "a configuration was created",
    CONFIG_UPDATED: "a configuration's name or settings changed (`data.changes`)",
    CONFIG_STATUS_CHANGED: "a configuration was paused, resumed or deactivated",
}

#: The activity types whose committed activities become events of the same type.
FROM_ACTIVITIES = frozenset(
    {
        MODEL_UPDATED,
        GUARDRAIL_BUDGET_EXHAUSTED,
        GUARDRAIL_CIRCUIT_BREAKER,
        CONFIG_CREATED,
        CONFIG_UPDATED,
        CONFIG_STATUS_CHANGED,
    }
)

MAX_SUBSCRIPTIONS = 50


def families() -> set[str]:
    """``guardrail.*`` and the like: every prefix of a known type, with ``.*``."""
    return {name.split(".", 1)[0] + ".*" for name in EVENT_TYPES}


def check_subscriptions(value: object) -> list[str]:
    """A subscription list, checked: known types or families, no duplicates, in order.

    :raises InvalidInput: naming the unknown entries
    """
    if not isinstance(value, list) or not value or len(value) > MAX_SUBSCRIPTIONS:
        raise InvalidInput(
            "Subscribe to at least one event type.",
            {"event_types": [f"A list of 1 to {MAX_SUBSCRIPTIONS} event types."]},
        )
    allowed = set(EVENT_TYPES) | families() | {"*"}
    unknown = [item for item in value if item not in allowed]
    if unknown:
        raise InvalidInput(
            "Unknown event types.",
            {
                "event_types": [
                    f"Unknown: {', '.join(map(str, unknown))}. Known: "
                    f"{', '.join(sorted(EVENT_TYPES))} (or a family, e.g. guardrail.*)."
                ]
            },
        )
    return list(dict.fromkeys(value))


def matches(subscriptions: Iterable[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``subscriptions`` receives ``event_type``."""
    family = event_type.split(".", 1)[0] + ".*"
    return any(item in ("*", event_type, family) for item in subscriptions)
