"""Which actions may be shown to this user, at this touchpoint, right now."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def lookup(context: Mapping, dotted_key: str) -> object:
    """Read ``a.b.c`` from a nested context; None when any part is missing."""
    value: object = context
    for part in dotted_key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def rule_matches(rule: Mapping, context: Mapping) -> bool:
    """Whether one action rule (``{"key", "<operator>": value}``) holds for the context.

    A rule on a missing key fails, except ``exists: false``; comparisons between
    mismatched types fail instead of raising.
    """
    value = lookup(context, rule["key"])
    if "exists" in rule:
        return (value is not None) == rule["exists"]
    if value is None:
        return False
    if "in" in rule:
        return value in rule["in"]
    if "not_in" in rule:
        return value not in rule["not_in"]
    try:
        if "gte" in rule and not value >= rule["gte"]:
            return False
        if "lte" in rule and not value <= rule["lte"]:
            return False
    except TypeError:
        return False
    return True


def eligible_actions(
    actions: list[Mapping], channel: str, context: Mapping, candidates: list[str] | None
) -> list[str]:
    """Ids of the actions allowed on this channel, among the candidates, passing their rules.

    Order follows the settings (or the candidates, when given), so logs are reproducible.
    """
    by_id = {action["id"]: action for action in actions}
    # Duplicate candidates would rank (and log) one action twice.
    ids = list(dict.fromkeys(candidates)) if candidates is not None else list(by_id)
    result = []
    for action_id in ids:
        action = by_id.get(action_id)
        if action is None:
            continue
        if action.get("channels") and channel not in action["channels"]:
            continue
        if not all(rule_matches(rule, context) for rule in action.get("rules") or ()):
            continue
        result.append(action_id)
    return result


def excluded(exclusions: list[Mapping], channel: str, context: Mapping) -> bool:
    """Whether a channel exclusion guardrail (``guardrails.channel_exclusions``) forbids
    deciding on ``channel`` for this context: its value at ``key`` is among ``in``.

    Values also match by their text, because reports (and the exclusions recommended from
    them) name segments as text: ``{"segment": 3}`` is excluded by ``"in": ["3"]``.
    """
    for rule in exclusions:
        if rule["channel"] != channel:
            continue
        value = lookup(context, rule["key"])
        if value is None or isinstance(value, Mapping | list):
            continue
        if value in rule["in"] or _as_text(value) in rule["in"]:
            return True
    return False


def _as_text(value: object) -> str:
    # JSON spelling: true/false, not Python's True/False.
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def in_quiet_hours(schedule: Mapping, context: Mapping, now: dt.datetime) -> bool:
    """Whether ``now``, in the user's time zone (from the context), is in quiet hours.

    Without a quiet-hours setting, or without a valid time zone in the context, it is not.
    """
    quiet = schedule.get("quiet_hours")
    if not quiet:
        return False
    zone_name = lookup(context, quiet.get("timezone_context_key") or "tz")
    if not isinstance(zone_name, str):
        return False
    try:
        local = now.astimezone(ZoneInfo(zone_name)).strftime("%H:%M")
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder
        return False
    start, end = quiet["start"], quiet["end"]
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # the window wraps midnight (21:00-08:00)


def campaign_running(campaign: Mapping, now: dt.datetime) -> bool:
    """Whether ``now`` is inside the campaign's optional start/end."""
    starts, ends = campaign.get("starts_at"), campaign.get("ends_at")
    if starts and now < dt.datetime.fromisoformat(starts):
        return False
    if ends and now >= dt.datetime.fromisoformat(ends):
        return False
    return True
