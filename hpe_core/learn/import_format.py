"""The NDJSON line format of imports: one logged decision a line, checked and typed.

``{user_id, channel, timestamp, context, action_id, probability, reward}``, or
``outcomes: [{type, value?, occurred_at?}]`` instead of ``reward``; optionally
``actions`` (the ids that were eligible, default: every action on that channel).

:class:`ImportLineSchema` checks a line against the configuration it is imported into,
on the settings' strict base (:class:`~hpe_core.tenancy.settings.StrictSchema`: unknown
keys rejected, JSON numbers only), and loads it into a frozen :class:`ImportLine`. Its
errors are told in one sentence that names the field (:func:`line_error`); a line with
several problems is rejected for the first in :data:`_FIELD_ORDER` (a number sent as a
string is found first of all: the strict base checks JSON types before anything else).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping

from marshmallow import (
    EXCLUDE,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
    validates_schema,
)

from hpe_core.errors import InvalidInput
from hpe_core.store.limits import MAX_USER_ID_LENGTH
from hpe_core.tenancy.settings import StrictSchema, check_json_document
from hpe_core.tenancy.settings_types import Settings

#: Outcome types are stored in 64 characters; longer imported ones are cut.
_MAX_TYPE_LENGTH = 64


class LineError(ValueError):
    """Why one line cannot be imported (the answer's ``rejected[].error``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ImportedEvent:
    """One outcome of an imported decision."""

    type: str
    value: float | None
    occurred_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ImportLine:
    """One valid line: a logged decision with its reward or its outcomes.

    :param eligible: the action ids that could have been chosen (``actions``, or every
        action offered on the channel)
    :param reward: the given reward, or None when ``events`` say what happened
    """

    user_id: str
    channel: str
    timestamp: dt.datetime
    context: Mapping
    action_id: str
    probability: float
    eligible: list[str]
    reward: float | None
    events: tuple[ImportedEvent, ...]


#: Required fields, in the order a missing one is reported.
_REQUIRED = ("user_id", "channel", "timestamp", "action_id", "probability")
_MISSING = "missing"
#: The sentence for any error of a field whose rule fits in one (marshmallow's own
#: wording, e.g. "Not a valid number.", would not say which field of the line is wrong).
_RULES = {
    "user_id": f"user_id must be a string of 1-{MAX_USER_ID_LENGTH} characters",
    "probability": "probability must be a number in (0, 1]",
    "context": "context must be an object",
    "actions": "actions must list known action ids, including action_id",
    "reward": "reward must be a finite number",
}
#: Which problem a line with several is rejected for: the first field in this order.
_FIELD_ORDER = (
    "user_id",
    "channel",
    "action_id",
    "probability",
    "context",
    "actions",
    "_either",
    "reward",
    "timestamp",
    "outcomes",
)


class _Timestamp(fields.Field):
    """An ISO-8601 timestamp with an offset, as a UTC datetime. Its errors leave out the
    field's name: :func:`line_error` puts the path in front."""

    default_error_messages = {"null": "must be an ISO-8601 string"}

    def _deserialize(self, value, attr, data, **kwargs) -> dt.datetime:
        if not isinstance(value, str):
            raise ValidationError("must be an ISO-8601 string")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError("is not an ISO-8601 timestamp") from exc
        if parsed.tzinfo is None:
            raise ValidationError("needs a timezone offset (e.g. Z)")
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError as exc:  # e.g. 0001-01-01T00:00+05:00 is before year 1 in UTC
            raise ValidationError("is out of range") from exc


class _Context(fields.Dict):
    """The decision's context. Any empty value (null, ``[]``, ``""``) means none: exporters
    that write an empty map as ``[]`` (PHP's json_encode) are common."""

    def _deserialize(self, value, attr, data, **kwargs):
        return {} if not value else super()._deserialize(value, attr, data, **kwargs)


class ImportedEventSchema(StrictSchema):
    """One of a line's ``outcomes``: ``{type, value?, occurred_at?}``."""

    class Meta:
        # Other keys in an outcome (an exporter's ids, say) have always been ignored.
        unknown = EXCLUDE

    type = fields.String(required=True)
    value = fields.Float(load_default=None, allow_none=True)
    occurred_at = _Timestamp(load_default=None, allow_none=True)

    @pre_load
    def _empty_time_is_the_lines(self, data, **kwargs):
        # No occurred_at (absent, null or empty): it happened at the line's timestamp.
        if isinstance(data, dict) and not data.get("occurred_at"):
            return {key: value for key, value in data.items() if key != "occurred_at"}
        return data


class ImportLineSchema(StrictSchema):
    """One NDJSON line, checked against the configuration it is imported into.

    :param settings: that configuration's settings (channels and actions)
    """

    user_id = fields.String(
        required=True,
        validate=validate.Length(1, MAX_USER_ID_LENGTH),
        error_messages={"required": _MISSING},
    )
    # Raw, and null allowed: the validators below name any value that is not a
    # configured channel or action id, whatever its JSON type.
    channel = fields.Raw(required=True, allow_none=True, error_messages={"required": _MISSING})
    timestamp = _Timestamp(required=True, error_messages={"required": _MISSING})
    context = _Context(load_default=dict, allow_none=True)
    action_id = fields.Raw(required=True, allow_none=True, error_messages={"required": _MISSING})
    probability = fields.Float(
        required=True,
        validate=validate.Range(0, 1, min_inclusive=False),
        error_messages={"required": _MISSING},
    )
    reward = fields.Float()
    outcomes = fields.List(fields.Nested(ImportedEventSchema), allow_none=True)
    actions = fields.List(fields.Raw(), load_default=None, allow_none=True)

    def __init__(self, settings: Settings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    @validates("channel")
    def _configured_channel(self, value, **kwargs) -> None:
        if value not in self.settings.channels:
            raise ValidationError(f"channel {value!r} is not one of this configuration's channels")

    @validates("action_id")
    def _known_action(self, value, **kwargs) -> None:
        if not isinstance(value, str) or value not in self.settings.actions_by_id:
            raise ValidationError(f"unknown action_id {value!r}")

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _reward_or_outcomes(self, data, original_data, **kwargs) -> None:
        if ("reward" in original_data) == ("outcomes" in original_data):
            raise ValidationError("give either reward or outcomes", "_either")

    @validates_schema(skip_on_field_errors=False)
    def _eligible_actions(self, data, **kwargs) -> None:
        listed = data.get("actions")
        if listed is None or "action_id" not in data:
            return
        if data["action_id"] not in listed or any(
            not isinstance(action_id, str) or action_id not in self.settings.actions_by_id
            for action_id in listed
        ):
            raise ValidationError(_RULES["actions"], "actions")

    @post_load
    def _line(self, data, **kwargs) -> ImportLine:
        timestamp = data["timestamp"]
        return ImportLine(
            user_id=data["user_id"],
            channel=data["channel"],
            timestamp=timestamp,
            context=data["context"] or {},
            action_id=data["action_id"],
            probability=float(data["probability"]),
            eligible=(
                data["actions"]
                if data["actions"] is not None
                else self._offered(data["channel"], data["action_id"])
            ),
            reward=data.get("reward"),
            events=tuple(
                ImportedEvent(
                    type=event["type"][:_MAX_TYPE_LENGTH],
                    value=event["value"],
                    occurred_at=event["occurred_at"] or timestamp,
                )
                for event in data.get("outcomes") or ()
            ),
        )

    def _offered(self, channel: str, action_id: str) -> list[str]:
        # Not told which actions were eligible: every action offered on the channel, and
        # the chosen one even if the settings no longer offer it there.
        eligible = [action.id for action in self.settings.actions if action.offered_on(channel)]
        return eligible if action_id in eligible else [*eligible, action_id]


def line_error(messages: Mapping) -> str:
    """The one sentence a rejected line is answered with, from the schema's errors.

    Unknown fields first, then missing ones, then the first field of
    :data:`_FIELD_ORDER` with an error.
    """
    unknown = sorted(name for name in messages if name not in _FIELDS)
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    missing = next((name for name in _REQUIRED if messages.get(name) == [_MISSING]), None)
    if missing is not None:
        return f"missing {missing}"
    name = next((name for name in _FIELD_ORDER if name in messages), None)
    if name is None:  # not reached: every field and check is listed; still, say something
        return f"invalid line: {json.dumps(messages, default=str)}"[:200]
    return _field_error(name, messages[name])


def _field_error(name: str, problems: list | Mapping) -> str:
    if name in _RULES:
        return _RULES[name]
    if name == "outcomes":
        return _event_error(problems)
    if name == "timestamp":
        return f"timestamp {problems[0]}"
    return problems[0]  # already a sentence: channel, action_id, _either


#: What the schema's errors may be keyed by, besides an unknown field's name.
_FIELDS = frozenset(ImportLineSchema._declared_fields) | {"_either", "_schema"}


def _event_error(messages: list | Mapping) -> str:
    if not isinstance(messages, Mapping):  # not a list at all
        return "outcomes must be a list of {type, value?, occurred_at?}"
    position = min(messages)
    problems = messages[position]
    where = f"outcomes[{position}]"
    if "type" in problems or "_schema" in problems:  # no type, or not an object
        return f"{where} needs a type"
    if "value" in problems:
        return f"{where}.value must be a number"
    return f"{where}.occurred_at {problems['occurred_at'][0]}"


def parse_line(raw: object, schema: ImportLineSchema) -> ImportLine:
    """Validate one parsed JSON line against the configuration.

    :param schema: the line schema of the configuration imported into
    :raises LineError: saying what is wrong with the line
    """
    if not isinstance(raw, dict):
        raise LineError("each line must be a JSON object")
    try:
        # NaN/Infinity, NUL and unpaired surrogates: PostgreSQL refuses them.
        check_json_document(raw, "line")
    except InvalidInput as exc:
        raise LineError(exc.errors["line"][0]) from exc
    try:
        return schema.load(raw)
    except ValidationError as exc:
        raise LineError(line_error(exc.messages)) from exc
