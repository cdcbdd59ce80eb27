"""Which actions may be shown to this user, at this touchpoint, right now.

Every check reads the configuration's typed settings
(:mod:`hpe_core.tenancy.settings_types`) and the request's context.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hpe_core.tenancy.settings_types import (
    Action,
    ActionRule,
    Campaign,
    ChannelExclusion,
    Schedule,
)


def lookup(context: Mapping, dotted_key: str) -> object:
    """Read ``a.b.c`` from a nested context; None when any part is missing."""
    value: object = context
    for part in dotted_key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def rule_matches(rule: ActionRule, context: Mapping) -> bool:
    """Whether one action rule (``{"key", "<operator>": value}``) holds for the context.

    A rule on a missing key fails, except ``exists: false``; comparisons between
    mismatched types fail instead of raising.
    """
    value = lookup(context, rule.key)
    if rule.exists is not None:
        return (value is not None) == rule.exists
    if value is None:
        return False
    if rule.in_ is not None:
        return value in rule.in_
    if rule.not_in is not None:
        return value not in rule.not_in
    try:
        if rule.gte is not None and not value >= rule.gte:
            return False
        if rule.lte is not None and not value <= rule.lte:
            return False
    except TypeError:
        return False
    return True


def eligible_actions(
    actions: Mapping[str, Action], channel: str, context: Mapping, candidates: list[str] | None
) -> list[str]:
    """Ids of the actions offered on this channel, among the candidates, passing their rules.

    :param actions: action id -> action, in settings order (``Settings.actions_by_id``)
    :returns: in settings order (or the candidates', when given), so logs are reproducible
    """
    # Duplicate candidates would rank (and log) one action twice.
    ids = dict.fromkeys(candidates) if candidates is not None else actions
    result = []
    for action_id in ids:
        action = actions.get(action_id)
        if action is None or not action.offered_on(channel):
            continue
        if all(rule_matches(rule, context) for rule in action.rules):
            result.append(action_id)
    return result


def excluded(exclusions: Iterable[ChannelExclusion], channel: str, context: Mapping) -> bool:
    """Whether a channel exclusion guardrail (``guardrails.channel_exclusions``) forbids
    deciding on ``channel`` for this context: its value at ``key`` is among ``in``.

    Values also match by their text, because reports (and the exclusions recommended from
    them) name segments as text: ``{"segment": 3}`` is excluded by ``"in": ["3"]``.
    """
    for rule in exclusions:
        if rule.channel != channel:
            continue
        value = lookup(context, rule.key)
        if value is None or isinstance(value, Mapping | list):
            continue
        if value in rule.values or _as_text(value) in rule.values:
            return True
    return False


def _as_text(value: object) -> str:
    # JSON spelling: true/false, not Python's True/False.
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def in_quiet_hours(schedule: Schedule, context: Mapping, now: dt.datetime) -> bool:
    """Whether ``now``, in the user's time zone (from the context), is in quiet hours.

    Without a quiet-hours setting, or without a valid time zone in the context, it is not.
    """
    quiet = schedule.quiet_hours
    if quiet is None:
        return False
    zone_name = lookup(context, quiet.timezone_context_key or "tz")
    if not isinstance(zone_name, str):
        return False
    try:
        local = now.astimezone(ZoneInfo(zone_name)).strftime("%H:%M")
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder
        return False
    if quiet.start <= quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end  # the window wraps midnight (21:00-08:00)


def campaign_running(campaign: Campaign, now: dt.datetime) -> bool:
    """Whether ``now`` is inside the campaign's optional start/end."""
    if campaign.starts_at is not None and now < campaign.starts_at:
        return False
    return campaign.ends_at is None or now < campaign.ends_at
