"""A form for one channel's workspace settings, drawn from the channel's own schema.

A connector declares its per-workspace settings as a marshmallow schema
(``workspace_settings_schema``, e.g. the web channel's ``allowed_origins``). This turns
the schema's fields into form inputs and the posted form back into a settings document;
validating that document stays the channel's (``put_settings`` loads it with the same
schema), so the rules live in one place. Lists of strings are a textarea with one item
per line, strings a text input, numbers a number input, booleans a checkbox; anything
else (nested objects) is a small JSON textarea.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from marshmallow import Schema, fields

LINES, TEXT, NUMBER, CHECKBOX, JSON_TEXT = "lines", "text", "number", "checkbox", "json"


@dataclasses.dataclass(frozen=True)
class Field:
    """One input of the form.

    :param name: the settings key (and the input's name)
    :param kind: how it is typed: lines, text, number, checkbox or json
    :param value: what the input holds, as text (``"on"``/``""`` for a checkbox)
    """

    name: str
    label: str
    kind: str
    description: str
    value: str


def fields_of(schema: type[Schema], settings: Mapping) -> list[Field]:
    """The form's inputs for ``schema``, filled with ``settings`` (the stored ones)."""
    return [
        Field(
            name=name,
            label=name.replace("_", " ").capitalize(),
            kind=_kind(field),
            description=str(field.metadata.get("description", "")),
            value=_shown(_kind(field), settings.get(name)),
        )
        for name, field in schema._declared_fields.items()
        if not field.dump_only
    ]


def as_typed(schema: type[Schema], form: Mapping) -> list[Field]:
    """The form's inputs holding what was posted (shown again beside its errors)."""
    return [
        dataclasses.replace(
            field,
            value=("on" if form.get(field.name) else "")
            if field.kind == CHECKBOX
            else form.get(field.name, ""),
        )
        for field in fields_of(schema, {})
    ]


def settings_from(schema: type[Schema], form: Mapping) -> tuple[dict, dict]:
    """The settings a posted form means, and the inputs that could not be read.

    :returns: ``(settings, errors)``; errors are ``{name: [message]}`` for text that is
        not a number or not JSON (the channel's schema judges everything else)
    """
    settings, errors = {}, {}
    for name, field in schema._declared_fields.items():
        if field.dump_only:
            continue
        kind, raw = _kind(field), form.get(name, "")
        if kind == CHECKBOX:
            settings[name] = bool(raw)
        elif kind == LINES:
            settings[name] = [line.strip() for line in raw.splitlines() if line.strip()]
        elif not raw.strip():
            continue  # left empty: the schema's default (or its "required" message)
        elif kind == TEXT:
            settings[name] = raw.strip()
        else:
            try:
                settings[name] = json.loads(raw)
            except ValueError:
                errors[name] = ["Enter a number." if kind == NUMBER else "Enter valid JSON."]
    return settings, errors


def messages(schema: type[Schema], errors: Mapping, settings: Mapping) -> dict[str, list[str]]:
    """The channel's validation errors as one list of sentences per input (``settings``
    for those that belong to no input).

    A list's item errors come keyed by index (``{"allowed_origins": {1: [...]}}``): they
    name the item instead, since blank lines were dropped and indexes mean nothing on
    the page.
    """
    found: dict[str, list[str]] = {}
    for name, problem in errors.items():
        key = name if name in schema._declared_fields else "settings"
        found.setdefault(key, []).extend(_sentences(problem, settings.get(name)))
    return found


def _sentences(problem, value) -> list[str]:
    if isinstance(problem, str):
        return [problem]
    if isinstance(problem, list):
        return [sentence for item in problem for sentence in _sentences(item, value)]
    if isinstance(problem, Mapping):
        sentences = []
        for key, inner in problem.items():
            named = isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)
            item = value[key] if named else key
            sentences.extend(f"{item}: {sentence}" for sentence in _sentences(inner, None))
        return sentences
    return [str(problem)]


def _kind(field: fields.Field) -> str:
    if isinstance(field, fields.Boolean):
        return CHECKBOX
    if isinstance(field, fields.Number):
        return NUMBER
    if isinstance(field, fields.List) and isinstance(field.inner, fields.String):
        return LINES
    if isinstance(field, fields.String):
        return TEXT
    return JSON_TEXT


def _shown(kind: str, value) -> str:
    if kind == CHECKBOX:
        return "on" if value else ""
    if value is None:
        return ""
    if kind == LINES:
        return "\n".join(str(item) for item in value)
    if kind in (TEXT, NUMBER):
        return str(value)
    return json.dumps(value, indent=2, sort_keys=True)
