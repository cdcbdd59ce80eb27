"""The configuration form: settings as form fields and back, with no rule of its own.

Field names are the settings' dotted paths (``holdout.percent``, ``actions.2.cost``,
``actions.0.features.1.key``), so a validation error from the settings schema (the one the
API uses: :func:`hpe_core.tenancy.settings.validate_settings`) lands beside the field it
names. This module only turns text into JSON values and back; whether a value is allowed
is the schema's business, never decided here.

Lists (offers, their feature and content rows, reward events, frequency caps, channel
exclusions) grow, shrink and reorder with submit buttons (``op=add:actions``,
``op=remove:actions.2``, ``op=up:actions.2``): the page re-renders with the change and
nothing is saved, so the form works without JavaScript.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from hpe_core.tenancy.settings_types import (
    AutomationLevel,
    BudgetPeriod,
    ExplorationAlgorithm,
    Kpi,
)

#: Empty rows each list gets when added (and the new form starts with).
NEW_ROWS = {
    "actions": {"id": "", "cost": "", "features": [{"key": "", "value": ""}], "content": []},
    "features": {"key": "", "value": ""},
    "content": {"key": "", "value": ""},
    "reward.events": {"key": "", "value": ""},
    "guardrails.frequency_caps": {"channel": "", "max": "", "per_hours": ""},
    "guardrails.channel_exclusions": {"channel": "", "key": "", "in": ""},
}
CHOICES = {
    "automation": [level.value for level in AutomationLevel],
    "exploration.algorithm": [algorithm.value for algorithm in ExplorationAlgorithm],
    "goals.kpi": [kpi.value for kpi in Kpi],
    "guardrails.budget.period": [period.value for period in BudgetPeriod],
}
_INDEX = re.compile(r"\d+")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


# --- The form's draft: nested dicts and lists of text, as the fields hold it ---------------


def draft_from_form(form) -> dict:
    """The submitted fields as a nested draft (``actions.0.id`` -> draft["actions"][0]["id"]).

    :param form: a ``werkzeug`` MultiDict; multi-valued fields (``channels``,
        ``actions.N.channels``) keep every value
    """
    draft: dict = {}
    for name in form:
        if name in ("csrf_token", "op", "name", "settings_json", "mode"):
            continue
        values = form.getlist(name)
        multi = name == "channels" or name.endswith(".channels")
        _put(draft, name.split("."), values if multi else values[-1])
    return _lists_in_order(draft)


def draft_from_settings(settings: Mapping) -> dict:
    """A stored (or blank) settings document as the form shows it."""
    draft = json.loads(json.dumps(settings))  # a deep copy, JSON values only
    for action in draft.get("actions", []):
        action["features"] = _rows(action.get("features") or {})
        action["content"] = _rows(action.get("content") or {})
        action["rules"] = json.dumps(action["rules"]) if action.get("rules") else ""
        action["cost"] = _text(action.get("cost", ""))
    reward = draft.setdefault("reward", {})
    reward["events"] = _rows(reward.get("events") or {})
    reward["value_events"] = ", ".join(reward.get("value_events") or [])
    holdout = draft.setdefault("holdout", {})
    baseline = holdout.get("baseline", "random")
    holdout["baseline"] = baseline["action_id"] if isinstance(baseline, Mapping) else "random"
    guardrails = draft.setdefault("guardrails", {})
    for exclusion in guardrails.get("channel_exclusions") or []:
        exclusion["in"] = ", ".join(map(str, exclusion.get("in") or []))
    guardrails["budget"] = guardrails.get("budget") or {"amount": "", "period": "day"}
    schedule = draft.setdefault("schedule", {})
    quiet = schedule.get("quiet_hours")
    schedule["quiet_hours"] = {**(quiet or {"start": "", "end": "", "timezone_context_key": "tz"})}
    schedule["quiet_hours"]["enabled"] = "on" if quiet else ""
    campaign = draft.setdefault("campaign", {})
    for key in ("starts_at", "ends_at"):
        campaign[key] = _local_input(campaign.get(key))
    return _texts(draft)


def new_row(path: str) -> dict:
    """An empty row of the list at ``path`` (an offer starts with one feature row)."""
    template = NEW_ROWS.get(path) or NEW_ROWS.get(path.rsplit(".", 1)[-1]) or {}
    return json.loads(json.dumps(template))


def change(draft: dict, op: str) -> dict:
    """Apply one list edit (``add:<list>``, ``remove:<item>``, ``up:<item>``, ``down:<item>``)."""
    verb, _, path = op.partition(":")
    parts = path.split(".")
    if verb == "add":
        _get(draft, parts, create=True).append(new_row(path))
        return draft
    *parent_path, last = parts
    if not parent_path or not _INDEX.fullmatch(last):
        return draft
    items, index = _get(draft, parent_path, create=True), int(last)
    if not 0 <= index < len(items):
        return draft
    if verb == "remove":
        items.pop(index)
    elif verb in ("up", "down"):
        other = index - 1 if verb == "up" else index + 1
        if 0 <= other < len(items):
            items[index], items[other] = items[other], items[index]
    return draft


# --- From the draft to a settings document (values typed, nothing checked) -----------------


def settings_from_draft(draft: Mapping) -> dict:
    """The settings document the draft describes: text turned into JSON values.

    A number field that does not read as a number is passed on as text, so that the
    schema's own message ("Not a valid number.") is shown beside it.
    """
    settings: dict = {
        "channels": list(draft.get("channels") or []),
        "actions": [_action(a) for a in draft.get("actions") or []],
        "reward": _reward(draft.get("reward") or {}),
        "exploration": _numbers(
            draft.get("exploration") or {},
            ("epsilon", "gamma_scale", "learning_rate", "power_t"),
            ("bag_size", "cover_size"),
        ),
        "holdout": _holdout(draft.get("holdout") or {}),
        "guardrails": _guardrails(draft.get("guardrails") or {}),
        "automation": draft.get("automation") or AutomationLevel.ASSISTED.value,
        "attribution": _numbers(
            draft.get("attribution") or {}, ("window_hours", "half_life_hours"), ()
        ),
        "goals": _numbers(draft.get("goals") or {}, ("target_lift",), ()),
        "campaign": _campaign(draft.get("campaign") or {}),
        "schedule": _schedule(draft.get("schedule") or {}),
    }
    return settings


def _action(row: Mapping) -> dict:
    action: dict = {"id": (row.get("id") or "").strip()}
    if row.get("channels"):
        action["channels"] = list(row["channels"])
    cost = row.get("cost", "")
    if str(cost).strip() != "":
        action["cost"] = _number(cost)
    action["features"] = {
        r["key"].strip(): feature_value(r.get("value", ""))
        for r in row.get("features") or []
        if (r.get("key") or "").strip()
    }
    action["content"] = {
        r["key"].strip(): r.get("value", "")
        for r in row.get("content") or []
        if (r.get("key") or "").strip()
    }
    rules = (row.get("rules") or "").strip()
    if rules:
        try:
            action["rules"] = json.loads(rules)
        except ValueError:
            action["rules"] = rules  # the schema says it is not a list
    return action


def _reward(block: Mapping) -> dict:
    reward = _numbers(block, ("default",), ("wait_seconds",))
    reward.pop("events", None)
    events = {
        r["key"].strip(): _number(r.get("value", ""))
        for r in block.get("events") or []
        if (r.get("key") or "").strip()
    }
    if events:
        reward["events"] = events
    value_events = block.get("value_events")
    if isinstance(value_events, str):
        value_events = [v.strip() for v in value_events.split(",") if v.strip()]
    reward["value_events"] = list(value_events or [])
    return reward


def _holdout(block: Mapping) -> dict:
    holdout = _numbers(block, ("percent",), ())
    baseline = (block.get("baseline") or "random").strip()
    holdout["baseline"] = "random" if baseline == "random" else {"action_id": baseline}
    return holdout


def _guardrails(block: Mapping) -> dict:
    budget = block.get("budget") or {}
    amount = str(budget.get("amount", "")).strip()
    breaker = block.get("circuit_breaker") or {}
    return {
        "frequency_caps": [
            {
                "channel": cap.get("channel", ""),
                "max": _number(cap.get("max", ""), integer=True),
                "per_hours": _number(cap.get("per_hours", "")),
            }
            for cap in block.get("frequency_caps") or []
            if any(str(v).strip() for v in cap.values())
        ],
        "max_action_share": _optional_number(block.get("max_action_share", "")),
        "budget": None
        if amount == ""
        else {"amount": _number(amount), "period": budget.get("period") or "day"},
        "circuit_breaker": {
            **_numbers(breaker, ("alpha",), ("min_decisions", "window_days")),
            "enabled": breaker.get("enabled") == "on",
        },
        "channel_exclusions": [
            {
                "channel": rule.get("channel", ""),
                "key": rule.get("key", ""),
                "in": [
                    feature_value(v.strip())
                    for v in str(rule.get("in", "")).split(",")
                    if v.strip()
                ],
            }
            for rule in block.get("channel_exclusions") or []
            if any(str(v).strip() for v in rule.values())
        ],
    }


def _campaign(block: Mapping) -> dict:
    campaign = {}
    for key in ("external_id", "source"):
        value = (block.get(key) or "").strip()
        campaign[key] = value or None
    for key in ("starts_at", "ends_at"):
        campaign[key] = _utc_from_local_input(block.get(key) or "")
    return campaign


def _schedule(block: Mapping) -> dict:
    quiet = block.get("quiet_hours") or {}
    if quiet.get("enabled") != "on":
        return {"quiet_hours": None}
    return {
        "quiet_hours": {
            "start": quiet.get("start", ""),
            "end": quiet.get("end", ""),
            "timezone_context_key": quiet.get("timezone_context_key") or "tz",
        }
    }


def feature_value(text: str) -> Any:
    """A feature as typed: ``20`` a number, ``true``/``false`` a boolean, else text."""
    text = str(text).strip()
    if text in ("true", "false"):
        return text == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        return float(text)
    return text


# --- Errors: the schema's nested messages, keyed by the fields' names ----------------------


def field_errors(errors: Mapping, prefix: str = "") -> dict[str, list[str]]:
    """``{"holdout": {"percent": ["..."]}}`` -> ``{"holdout.percent": ["..."]}``."""
    found: dict[str, list[str]] = {}
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            found.update(field_errors(value, path))
        else:
            found.setdefault(path, []).extend(str(v) for v in value)
    return found


def json_errors(errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Errors of a save from the JSON view, all beside the JSON (the name keeps its own)."""
    found = {key: list(value) for key, value in errors.items() if key == "name"}
    messages = [
        f"{path.removeprefix('settings.')}: {message}"
        for path, values in errors.items()
        if path != "name"
        for message in values
    ]
    if messages:
        found["settings_json"] = messages
    return found


# --- Helpers -------------------------------------------------------------------------------


def _numbers(block: Mapping, floats: tuple[str, ...], integers: tuple[str, ...]) -> dict:
    found = {key: value for key, value in block.items() if not isinstance(value, list | dict)}
    for key in floats + integers:
        if key in found:
            if str(found[key]).strip() == "":
                del found[key]  # left empty: the default applies
            else:
                found[key] = _number(found[key], integer=key in integers)
    return found


def _number(text: Any, *, integer: bool = False) -> Any:
    text = str(text).strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text) and not integer:
        return float(text)
    if _NUMBER.fullmatch(text) and float(text).is_integer():
        return int(float(text))
    return text


def _optional_number(text: Any) -> Any:
    return None if str(text).strip() == "" else _number(text)


def _rows(mapping: Mapping) -> list[dict]:
    return [{"key": key, "value": _text(value)} for key, value in mapping.items()]


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if value is None:
        return ""
    return value


def _texts(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _texts(item) for key, item in value.items()}
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        return [_texts(item) for item in value]
    return _text(value)


def _local_input(iso: str | None) -> str:
    """An ISO timestamp as a ``datetime-local`` input's value, in UTC."""
    if not iso:
        return ""
    return dt.datetime.fromisoformat(iso).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")


def _utc_from_local_input(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).isoformat()
    except ValueError:
        return text  # the schema explains what it expects


def _put(draft: dict, parts: list[str], value: Any) -> None:
    node: Any = draft
    for part in parts[:-1]:
        node = node.setdefault(int(part) if _INDEX.fullmatch(part) else part, {})
    last = parts[-1]
    node[int(last) if _INDEX.fullmatch(last) else last] = value


def _lists_in_order(value: Any) -> Any:
    """Dicts keyed by indexes (from the field names) become lists, in index order."""
    if isinstance(value, dict):
        converted = {key: _lists_in_order(item) for key, item in value.items()}
        if converted and all(isinstance(key, int) for key in converted):
            return [converted[key] for key in sorted(converted)]
        return converted
    return value


def _get(draft: dict, parts: list[str], *, create: bool = False) -> Any:
    node: Any = draft
    for index, part in enumerate(parts):
        key: Any = int(part) if _INDEX.fullmatch(part) else part
        if isinstance(node, list):
            node = node[key]
            continue
        if key not in node and create:
            node[key] = [] if index == len(parts) - 1 else {}
        node = node[key]
    return node
