"""Why an action was left out of a decision, in words: what the dry run shows.

A live decision only logs what it chose among the eligible actions; a person trying a
configuration out ("would Ann see the shoes offer on the web?") also wants to know why
the others were not in the running: the channel, the request's candidates, an action
rule, or a guardrail. Pure functions of the settings and the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from hpe_core.decide.eligibility import rule_matches
from hpe_core.tenancy.settings_types import ActionRule, Settings


class _Request(Protocol):
    """What is read of a decision request (a ``DecisionRequest``)."""

    channel: str
    context: Mapping
    candidates: list[str] | None


def explain(
    settings: Settings, request: _Request, kept: Iterable[str] | None = None
) -> dict[str, str]:
    """Action id -> why it was left out, for every action not in ``kept``.

    :param kept: the actions still in the running after the guardrails; None when the
        request was refused as a whole (its reason says why), and then only the actions
        that would have failed eligibility anyway are listed
    """
    candidates = set(request.candidates) if request.candidates is not None else None
    kept = set(kept) if kept is not None else None
    found = {}
    for action in settings.actions:
        if kept is not None and action.id in kept:
            continue
        reason = _eligibility_reason(action, request, candidates)
        if reason is None and kept is not None:
            reason = _guardrail_reason(settings)
        if reason is not None:
            found[action.id] = reason
    return found


def _eligibility_reason(action, request: _Request, candidates: set[str] | None):
    if candidates is not None and action.id not in candidates:
        return "not among the request's candidates"
    if not action.offered_on(request.channel):
        return f"not offered on {request.channel} (only {', '.join(action.channels)})"
    failing = next((rule for rule in action.rules if not rule_matches(rule, request.context)), None)
    if failing is not None:
        return f"its rule does not hold for this context: {describe_rule(failing)}"
    return None


def _guardrail_reason(settings: Settings) -> str:
    guardrails = settings.guardrails
    if guardrails.budget is not None and guardrails.max_action_share is None:
        return "costs more than what is left of the budget"
    if guardrails.budget is None and guardrails.max_action_share is not None:
        return "reached its max action share today"
    return "over the remaining budget, or at its max action share today"


def describe_rule(rule: ActionRule) -> str:
    """``country in [DE, AT]``, ``age >= 18``, ``vip exists``."""
    if rule.exists is not None:
        return f"{rule.key} {'exists' if rule.exists else 'is absent'}"
    if rule.in_ is not None:
        return f"{rule.key} in [{', '.join(map(str, rule.in_))}]"
    if rule.not_in is not None:
        return f"{rule.key} not in [{', '.join(map(str, rule.not_in))}]"
    bounds = []
    if rule.gte is not None:
        bounds.append(f"{rule.key} >= {rule.gte}")
    if rule.lte is not None:
        bounds.append(f"{rule.key} <= {rule.lte}")
    return " and ".join(bounds)
