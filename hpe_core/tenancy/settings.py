"""The ``Config.settings`` schema: validation, defaults, and per-field messages.

Every block is optional except ``actions``; whatever is left out is filled in with its
default and returned, so a stored configuration always shows the full effective settings.
Unknown keys are rejected at every level: a typo must not silently become a default.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from hpe_core.errors import InvalidInput
from hpe_core.tenancy import settings_types as types
from hpe_core.tenancy.merge_patch import apply_merge_patch
from hpe_core.tenancy.settings_types import (
    AutomationLevel,
    BudgetPeriod,
    ExplorationAlgorithm,
    Kpi,
    RewardAggregation,
    Settings,
)

BUILTIN_CHANNELS = ("email", "web", "ads")
EXPLORATION_ALGORITHMS = tuple(ExplorationAlgorithm)
AUTOMATION_LEVELS = tuple(AutomationLevel)
ATTRIBUTION_MODELS = ("last_touch", "first_touch", "linear", "time_decay", "position_based")
KPIS = tuple(Kpi)

MAX_ACTIONS = 1000
# \Z, not $: "$" also matches before a trailing newline.
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}\Z")
_IDENTIFIER_MESSAGE = (
    "Must be 1-128 characters: letters, digits, '_', '.', ':' or '-', starting with a letter "
    "or digit."
)
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d\Z")
#: Free-form blocks (features, content, rules) may nest, but not without bound: deep
#: documents exhaust the recursion of the merge patch, the JSON encoder and the database.
MAX_DEPTH = 32


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored as-is (NUL or an unpaired surrogate), or None.

    PostgreSQL rejects both in text and JSONB; SQLite would store them, so without this
    check the same request would succeed on one backend and fail on the other.
    """
    if "\x00" in text:
        return "Text may not contain NUL (\\u0000) characters."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Text may not contain unpaired surrogates (invalid Unicode)."
    return None


def check_json_document(document: object, field: str = "settings") -> None:
    """Reject what JSON parsers accept but a stored settings document must not hold.

    That is NaN/Infinity (not JSON; PostgreSQL refuses them), NUL characters and unpaired
    surrogates in keys or strings, and nesting deeper than ``MAX_DEPTH``.

    :raises InvalidInput: naming the first offending path, e.g. ``actions.0.content.title``
    """
    stack: list[tuple[object, str, int]] = [(document, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        problem = None
        if depth > MAX_DEPTH:
            problem = f"Nested deeper than {MAX_DEPTH} levels."
        elif isinstance(value, float) and not math.isfinite(value):
            problem = "Numbers must be finite (no NaN or Infinity)."
        elif isinstance(value, str):
            problem = text_problem(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                key_problem = text_problem(key) if isinstance(key, str) else None
                if key_problem:
                    problem = f"Key {key!r}: {key_problem}"
                    break
                stack.append((item, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{path}.{index}" if path else str(index), depth + 1)
                for index, item in enumerate(value)
            )
        if problem:
            where = f"{path}: " if path else ""
            raise InvalidInput(f"Invalid {field}: {where}{problem}", {field: [where + problem]})


def _json_type_problem(field: fields.Field, value: object) -> str | None:
    """Why ``value`` has the wrong JSON type for ``field`` (None: fine, or not checked here).

    marshmallow casts leniently: "10" becomes 10.0, 1.5 becomes the integer 1, "yes" becomes
    True. A JSON client never needs that, and a silently truncated ``wait_seconds`` is a
    wrong setting, so numbers must be JSON numbers and booleans JSON booleans.
    """
    if value is None:
        return None  # allow_none / required are marshmallow's business
    if isinstance(field, fields.Boolean):
        return None if isinstance(value, bool) else "Not a valid boolean."
    if isinstance(field, fields.Integer):
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        return None if integral and not isinstance(value, bool) else "Not a valid integer."
    if isinstance(field, fields.Number):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return None if number else "Not a valid number."
    return None


class StrictSchema(Schema):
    """A schema of JSON input: unknown keys are errors, numbers and booleans must be JSON
    numbers and booleans (no lenient casts). The settings blocks and imports' lines use it."""

    class Meta:
        unknown = RAISE

    @pre_load
    def _strict_json_types(self, data, **kwargs):
        if not isinstance(data, dict):
            return data  # marshmallow reports "Invalid input type."
        by_key = {field.data_key or name: field for name, field in self.load_fields.items()}
        errors: dict = {}
        for key, value in data.items():
            field = by_key.get(key)
            if field is None:
                continue
            problem = _json_type_problem(field, value)
            if problem:
                errors[key] = [problem]
            elif isinstance(field, fields.Dict) and field.value_field and isinstance(value, dict):
                bad = {
                    k: {"value": [p]}
                    for k, v in value.items()
                    if (p := _json_type_problem(field.value_field, v))
                }
                if bad:
                    errors[key] = bad
            elif isinstance(field, fields.List) and isinstance(value, list):
                bad = {
                    i: [p] for i, v in enumerate(value) if (p := _json_type_problem(field.inner, v))
                }
                if bad:
                    errors[key] = bad
        if errors:
            raise ValidationError(errors)
        return data


_Strict = StrictSchema  # the name the settings blocks below use


def is_identifier(text: str) -> bool:
    """True when ``text`` may be an action id (the rule every ``id`` of ``actions`` follows)."""
    return bool(_IDENTIFIER.match(text))


class _Identifier(fields.String):
    def __init__(self, **kwargs):
        super().__init__(validate=validate.Regexp(_IDENTIFIER, error=_IDENTIFIER_MESSAGE), **kwargs)


class _FeatureValue(fields.Field):
    """A feature: a string (categorical), a number (numeric), a bool, or a list of strings."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool | int | float | str):
            if isinstance(value, str) and len(value) > 256:
                raise ValidationError("Feature strings are at most 256 characters.")
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value) and len(value) <= 64:
            return value
        raise ValidationError(
            "A feature is a string, a number, a boolean or a list of at most 64 strings."
        )


class _IsoTimestamp(fields.String):
    """An ISO-8601 timestamp with an offset, kept as the normalized ISO string."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValidationError("Not an ISO-8601 timestamp, e.g. 2026-12-01T09:00:00Z.") from exc
        if parsed.tzinfo is None:
            raise ValidationError("Give a timezone offset, e.g. 2026-12-01T09:00:00Z.")
        return parsed.isoformat()


class ActionRuleSchema(_Strict):
    """``{"key": "country", "in": ["DE", "AT"]}``: the action is shown only when it holds."""

    key = fields.String(required=True, validate=validate.Length(1, 200))
    in_ = fields.List(fields.Raw(), data_key="in", attribute="in")
    not_in = fields.List(fields.Raw())
    gte = fields.Raw()
    lte = fields.Raw()
    exists = fields.Boolean()

    @validates_schema
    def _one_operator(self, data, **kwargs):
        operators = [name for name in ("in", "not_in", "exists") if name in data]
        ranges = [name for name in ("gte", "lte") if name in data]
        if len(operators) + (1 if ranges else 0) != 1:
            raise ValidationError(
                "Give exactly one of: in, not_in, exists, or a range (gte and/or lte)."
            )
        for name in ranges:
            if not isinstance(data[name], int | float | str) or isinstance(data[name], bool):
                raise ValidationError("Must be a number or a string.", name)


class ActionSchema(_Strict):
    id = _Identifier(required=True)
    channels = fields.List(fields.String(), load_default=None, allow_none=True)
    features = fields.Dict(
        # "id" is reserved: every action line already carries its own id=<action id>.
        keys=fields.String(
            validate=[
                validate.Length(1, 128),
                validate.NoneOf(["id"], error="'id' is reserved for the action id."),
            ]
        ),
        values=_FeatureValue(),
        load_default=dict,
        validate=validate.Length(max=100),
    )
    content = fields.Dict(keys=fields.String(), load_default=dict)
    cost = fields.Float(load_default=0.0, validate=validate.Range(min=0), allow_nan=False)
    rules = fields.List(
        fields.Nested(ActionRuleSchema), load_default=list, validate=validate.Length(max=20)
    )


#: The reward weights when ``reward.events`` is left out.
DEFAULT_REWARD_EVENTS = {"open": 0.1, "click": 1.0, "conversion": 1.0}
#: Event types that carry an amount by their nature. When ``value_events`` is left out,
#: the configuration's own events of these types are its value events (weight x value).
VALUE_CARRYING_TYPES = ("conversion", "purchase")
#: The weight a value event gets when it is named in ``value_events`` but ``events`` is
#: left out: the default events plus it, so the two keys always agree.
DEFAULT_VALUE_EVENT_WEIGHT = 1.0


def default_value_events(events: dict) -> list[str]:
    """``reward.value_events`` when it is left out: the value-carrying ``events``."""
    return [name for name in events if name in VALUE_CARRYING_TYPES]


def default_reward_events(value_events: list[str]) -> dict:
    """``reward.events`` when it is left out: the defaults plus every named value event."""
    events = dict(DEFAULT_REWARD_EVENTS)
    for name in value_events:
        events.setdefault(name, DEFAULT_VALUE_EVENT_WEIGHT)
    return events


class RewardSchema(_Strict):
    # No load_default on events and value_events: each one's default is derived from the
    # other when the user gave it (see _derive_defaults), so a default never contradicts
    # what the user wrote. A 422 then only ever names a key the user sent.
    events = fields.Dict(
        keys=_Identifier(),
        values=fields.Float(allow_nan=False, validate=validate.Range(-1000, 1000)),
        validate=validate.Length(min=1, max=50),
    )
    value_events = fields.List(_Identifier())
    wait_seconds = fields.Integer(load_default=86400, validate=validate.Range(1, 30 * 86400))
    default = fields.Float(load_default=0.0, allow_nan=False)

    @pre_load
    def _derive_defaults(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        events, value_events = data.get("events"), data.get("value_events")
        if events is None and value_events is None:
            return {**data, "events": dict(DEFAULT_REWARD_EVENTS), "value_events": ["conversion"]}
        if value_events is None and isinstance(events, dict):
            return {**data, "value_events": default_value_events(events)}
        if events is None and _strings(value_events):
            return {**data, "events": default_reward_events(value_events)}
        return data  # a malformed key: its own field reports it

    @validates_schema
    def _value_events_are_events(self, data, **kwargs):
        unknown = [e for e in data.get("value_events", []) if e not in data.get("events", {})]
        if unknown:
            raise ValidationError(
                f"Value events must also be listed in events: {', '.join(unknown)}.",
                "value_events",
            )


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


class ExplorationSchema(_Strict):
    algorithm = fields.String(
        load_default="squarecb", validate=validate.OneOf(EXPLORATION_ALGORITHMS)
    )
    epsilon = fields.Float(load_default=0.05, validate=validate.Range(0, 1), allow_nan=False)
    gamma_scale = fields.Float(load_default=10.0, validate=validate.Range(min=0.001, max=1e6))
    bag_size = fields.Integer(load_default=5, validate=validate.Range(2, 50))
    cover_size = fields.Integer(load_default=4, validate=validate.Range(1, 50))
    # 0.1 (not VW's 0.5): best and least seed-sensitive with squarecb in
    # bench/exploration.py (see bench/README-exploration.md).
    learning_rate = fields.Float(load_default=0.1, validate=validate.Range(min=1e-6, max=100))
    # VW's learning-rate decay exponent; 0 keeps the rate constant (tracks drifting tastes).
    power_t = fields.Float(load_default=0.5, validate=validate.Range(0, 1), allow_nan=False)


class _Baseline(fields.Field):
    """``"random"`` or ``{"action_id": "..."}``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value == "random":
            return value
        if (
            isinstance(value, dict)
            and set(value) == {"action_id"}
            and isinstance(value["action_id"], str)
        ):
            return {"action_id": value["action_id"]}
        raise ValidationError('Use "random" or {"action_id": "<an action id>"}.')


class HoldoutSchema(_Strict):
    percent = fields.Float(
        load_default=10.0,
        allow_nan=False,
        validate=validate.Range(
            0, 50, min_inclusive=False, error="Must be above 0 and at most 50."
        ),
    )
    baseline = _Baseline(load_default="random")


class FrequencyCapSchema(_Strict):
    channel = fields.String(required=True)
    max = fields.Integer(required=True, validate=validate.Range(min=1))
    per_hours = fields.Float(required=True, validate=validate.Range(min=0.01, max=24 * 366))


class BudgetSchema(_Strict):
    amount = fields.Float(required=True, validate=validate.Range(min=0), allow_nan=False)
    period = fields.String(load_default="day", validate=validate.OneOf(tuple(BudgetPeriod)))


class CircuitBreakerSchema(_Strict):
    """When treatment is significantly worse than holdout, revert everyone to the baseline."""

    enabled = fields.Boolean(load_default=True)
    # The p-value below which "worse" counts as significant (the 95% lift interval must
    # also lie below zero). 0.01, not 0.05: a false trip stops the model for everyone.
    alpha = fields.Float(
        load_default=0.01,
        allow_nan=False,
        validate=validate.Range(0, 0.5, min_inclusive=False, error="Must be above 0, at most 0.5."),
    )
    # Per variant, in the window: too few decisions and one bad afternoon could trip it.
    min_decisions = fields.Integer(load_default=1000, validate=validate.Range(1, 10**9))
    window_days = fields.Integer(load_default=7, validate=validate.Range(1, 90))


class _ExclusionValue(fields.Field):
    """A context value to exclude: a string, a number or a boolean (never null or nested)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if len(value) > 256:
                raise ValidationError("At most 256 characters.")
            return value
        if isinstance(value, bool | int | float):
            return value
        raise ValidationError("Must be a string, a number or a boolean.")


class ChannelExclusionSchema(_Strict):
    """``{"channel": "email", "key": "segment", "in": ["bargain"]}``: no decision on that
    channel for a context whose ``key`` has one of these values (reason ``excluded``)."""

    channel = fields.String(required=True)
    key = fields.String(required=True, validate=validate.Length(1, 200))
    in_ = fields.List(
        _ExclusionValue(),
        data_key="in",
        attribute="in",
        required=True,
        validate=validate.Length(1, 1000),
    )


class GuardrailsSchema(_Strict):
    frequency_caps = fields.List(
        fields.Nested(FrequencyCapSchema), load_default=list, validate=validate.Length(max=50)
    )
    max_action_share = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(0, 1, min_inclusive=False),
    )
    budget = fields.Nested(BudgetSchema, load_default=None, allow_none=True)
    circuit_breaker = fields.Nested(
        CircuitBreakerSchema, load_default=lambda: CircuitBreakerSchema().load({})
    )
    channel_exclusions = fields.List(
        fields.Nested(ChannelExclusionSchema), load_default=list, validate=validate.Length(max=200)
    )


class AttributionSchema(_Strict):
    model = fields.String(load_default="last_touch")
    window_hours = fields.Float(load_default=168.0, validate=validate.Range(min=1, max=24 * 90))
    half_life_hours = fields.Float(load_default=24.0, validate=validate.Range(min=0.1, max=24 * 90))


class GoalsSchema(_Strict):
    kpi = fields.String(load_default="engagement_rate", validate=validate.OneOf(KPIS))
    target_lift = fields.Float(load_default=0.5, validate=validate.Range(min=0, max=100))
    # The context key whose value is the user's segment: reports break results down by it
    # and channel exclusions recommended for a segment match on it.
    segment_key = fields.String(load_default="segment", validate=validate.Length(1, 200))


class CampaignSchema(_Strict):
    external_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=200)
    )
    source = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    starts_at = _IsoTimestamp(load_default=None, allow_none=True)
    ends_at = _IsoTimestamp(load_default=None, allow_none=True)

    @validates_schema
    def _ends_after_start(self, data, **kwargs):
        if data.get("starts_at") and data.get("ends_at"):
            if dt.datetime.fromisoformat(data["ends_at"]) <= dt.datetime.fromisoformat(
                data["starts_at"]
            ):
                raise ValidationError("Must be after starts_at.", "ends_at")


class QuietHoursSchema(_Strict):
    start = fields.String(required=True, validate=validate.Regexp(_CLOCK, error="Use HH:MM."))
    end = fields.String(required=True, validate=validate.Regexp(_CLOCK, error="Use HH:MM."))
    timezone_context_key = fields.String(load_default="tz")


class ScheduleSchema(_Strict):
    quiet_hours = fields.Nested(QuietHoursSchema, load_default=None, allow_none=True)


#: How the Personalizer routes combine several rewards for one event (docs/personalizer.md).
REWARD_AGGREGATIONS = tuple(RewardAggregation)


class PersonalizerSchema(_Strict):
    """What the Azure Personalizer-compatible routes may do with this configuration."""

    # Rank adds the action ids this configuration does not list yet (with the features
    # the Rank call gave them), as Personalizer's own catalog-free Rank did.
    dynamic_actions = fields.Boolean(load_default=True)
    # Several rewards for one event: the first one counts, or their sum (Personalizer's
    # rewardAggregation).
    reward_aggregation = fields.String(
        load_default=RewardAggregation.EARLIEST.value, validate=validate.OneOf(REWARD_AGGREGATIONS)
    )


class DriftSchema(_Strict):
    """The drift detector on the treatment's reward (docs/learning.md)."""

    enabled = fields.Boolean(load_default=True)
    delta = fields.Float(load_default=types.DRIFT_DELTA, validate=validate.Range(0, 1))
    threshold = fields.Float(load_default=types.DRIFT_THRESHOLD, validate=validate.Range(5, 10_000))
    min_decisions = fields.Integer(
        load_default=types.DRIFT_MIN_DECISIONS, validate=validate.Range(100, 10_000_000)
    )


class NewActionsSchema(_Strict):
    """The trial an action added to a live configuration gets (docs/learning.md)."""

    trial_share = fields.Float(load_default=types.TRIAL_SHARE, validate=validate.Range(0, 0.5))
    trial_decisions = fields.Integer(
        load_default=types.TRIAL_DECISIONS, validate=validate.Range(0, 1_000_000)
    )


class TuningSchema(_Strict):
    """Self-tuning of the learning settings from the logged decisions (docs/learning.md)."""

    enabled = fields.Boolean(load_default=True)
    every_hours = fields.Float(
        load_default=types.TUNING_EVERY_HOURS, validate=validate.Range(1, 24 * 90)
    )
    min_decisions = fields.Integer(
        load_default=types.TUNING_MIN_DECISIONS, validate=validate.Range(200, 10_000_000)
    )
    max_decisions = fields.Integer(
        load_default=types.TUNING_MAX_DECISIONS, validate=validate.Range(200, 200_000)
    )


class LearningSchema(_Strict):
    """How the model keeps up with change: drift, new actions, self-tuning."""

    drift = fields.Nested(DriftSchema, load_default=lambda: DriftSchema().load({}))
    retrain_max_decisions = fields.Integer(
        load_default=types.RETRAIN_MAX_DECISIONS, validate=validate.Range(100, 1_000_000)
    )
    new_actions = fields.Nested(
        NewActionsSchema, load_default=lambda: NewActionsSchema().load({})
    )
    tuning = fields.Nested(TuningSchema, load_default=lambda: TuningSchema().load({}))


#: The event types a web page reports when ``publishable_keys.outcome_events`` is left
#: out: what hpe.js sends (impression, click) and the common name of an impression (view).
DEFAULT_CLIENT_EVENTS = ("impression", "view", "click")
#: Channels a publishable key may decide on when ``publishable_keys.channels`` is left out.
DEFAULT_CLIENT_CHANNELS = ("web",)


class PublishableKeysSchema(_Strict):
    """What a publishable key (public: it sits in web pages) may do with this
    configuration. Secret keys may do everything; this block never limits them."""

    # False: every call needs a secret key (decisions and outcomes included).
    allowed = fields.Boolean(load_default=True)
    # The client-side channels: a publishable key decides on these only.
    channels = fields.List(
        fields.String(validate=validate.Length(1, 64)),
        load_default=lambda: list(DEFAULT_CLIENT_CHANNELS),
        validate=validate.Length(max=50),
    )
    # The event types a publishable key may report (with a decision's outcome_token, no
    # value); everything else, value events and user-level outcomes need a secret key.
    outcome_events = fields.List(
        _Identifier(),
        load_default=lambda: list(DEFAULT_CLIENT_EVENTS),
        validate=validate.Length(max=50),
    )
    # How long a decision's outcome_token stays valid, in seconds.
    token_seconds = fields.Integer(load_default=3600, validate=validate.Range(60, 30 * 86400))


def _block(schema: type[Schema]) -> fields.Nested:
    # A missing block is loaded from {} so its own defaults are filled in.
    return fields.Nested(schema, load_default=lambda: schema().load({}))


class SettingsSchema(_Strict):
    channels = fields.List(fields.String(), validate=validate.Length(min=1))
    actions = fields.List(
        fields.Nested(ActionSchema),
        required=True,
        validate=validate.Length(1, MAX_ACTIONS, error="Give between 1 and 1000 actions."),
    )
    reward = _block(RewardSchema)
    exploration = _block(ExplorationSchema)
    holdout = _block(HoldoutSchema)
    guardrails = _block(GuardrailsSchema)
    automation = fields.String(load_default="assisted", validate=validate.OneOf(AUTOMATION_LEVELS))
    attribution = _block(AttributionSchema)
    goals = _block(GoalsSchema)
    campaign = _block(CampaignSchema)
    schedule = _block(ScheduleSchema)
    personalizer = _block(PersonalizerSchema)
    publishable_keys = _block(PublishableKeysSchema)
    learning = _block(LearningSchema)

    def __init__(
        self,
        *,
        channels: Iterable[str],
        attribution_models: Iterable[str],
        check_references: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.available_channels = tuple(channels)
        self.attribution_models = tuple(attribution_models)
        self.check_references = check_references

    @validates_schema
    def _cross_references(self, data, **kwargs):
        """Check what one block says about another: channels, action ids, models.

        ``data`` holds only the blocks that loaded; a block with errors of its own is
        absent (hence the ``.get``s) and its references are not checked twice.
        """
        if not self.check_references:
            return
        channels = data.get("channels") or list(self.available_channels)
        guardrails = data.get("guardrails", {})
        errors: dict = {}
        _merge(errors, "channels", self._unknown_channels(channels))
        action_ids, action_errors = _action_references(data.get("actions", []), channels)
        _merge(errors, "actions", action_errors)
        _merge(errors, "holdout", _baseline_reference(data.get("holdout", {}), action_ids))
        _merge(errors, "guardrails", _channel_references(guardrails, channels))
        _merge(errors, "attribution", self._unknown_model(data.get("attribution", {})))
        if errors:
            raise ValidationError(errors)

    def _unknown_channels(self, channels: list[str]) -> list[str] | None:
        unknown = [c for c in channels if c not in self.available_channels]
        if not unknown:
            return None
        return [
            f"Unknown channel(s) {', '.join(unknown)}; installed plugins provide: "
            f"{', '.join(self.available_channels) or 'none'}."
        ]

    def _unknown_model(self, attribution: dict) -> dict | None:
        model = attribution.get("model")
        if model is None or model in self.attribution_models:
            return None
        return {"model": [f"Must be one of: {', '.join(self.attribution_models)}."]}


def _merge(errors: dict, key: str, found) -> None:
    if found:
        errors[key] = found


def _outside(channels: list[str]) -> str:
    return f"Not among the configuration's channels: {', '.join(channels)}."


def _action_references(actions: list[dict], channels: list[str]) -> tuple[set[str], dict]:
    """The action ids, and per-index errors for duplicate ids and channels outside the
    configuration's."""
    errors: dict = {}
    seen: set[str] = set()
    for index, action in enumerate(actions):
        if action["id"] in seen:
            errors.setdefault(index, {})["id"] = [f"Duplicate action id {action['id']}."]
        seen.add(action["id"])
        outside = [c for c in action.get("channels") or [] if c not in channels]
        if outside:
            errors.setdefault(index, {})["channels"] = [_outside(outside)]
    return seen, errors


def _baseline_reference(holdout: dict, action_ids: set[str]) -> dict | None:
    baseline = holdout.get("baseline")
    if isinstance(baseline, dict) and baseline["action_id"] not in action_ids:
        return {"baseline": [f"Unknown action id {baseline['action_id']}."]}
    return None


def _channel_references(guardrails: dict, channels: list[str]) -> dict:
    """Per-index errors for frequency caps and channel exclusions on other channels."""
    errors = {}
    for key in ("frequency_caps", "channel_exclusions"):
        found = {
            index: {"channel": [_outside([rule["channel"]])]}
            for index, rule in enumerate(guardrails.get(key, []))
            if rule["channel"] not in channels
        }
        if found:
            errors[key] = found
    return errors


#: Keys whose default is derived from another key of the same block:
#: ``(block, key, the key it is derived from, how)``. See :func:`merge_settings_patch`.
DERIVED_DEFAULTS = (
    ("reward", "value_events", "events", lambda block: default_value_events(block["events"])),
    (
        "reward",
        "events",
        "value_events",
        lambda block: default_reward_events(block["value_events"]),
    ),
)


def merge_settings_patch(stored: dict, patch: dict) -> dict:
    """Apply a JSON merge patch to stored settings, keeping derived defaults derived.

    A stored document holds every default filled in, and a default derived from another
    key (``value_events`` from ``events``) is indistinguishable from a value the user
    wrote. When the patch changes the source key but not the derived one, and the stored
    derived value is exactly what the default would have been, it is dropped so that
    validation derives it again from the new source: removing ``conversion`` from the
    events then also removes it from the (default) value events, instead of answering a
    422 about a key the user never sent. Only one key of a pair is ever re-derived (the
    one the patch did not touch), so no information the user gave is lost.

    :returns: the merged document, to be validated
    """
    merged = apply_merge_patch(stored, patch)
    for block_name, key, source, derive in DERIVED_DEFAULTS:
        block_patch = patch.get(block_name)
        stored_block = stored.get(block_name)
        merged_block = merged.get(block_name)
        if not (
            isinstance(block_patch, dict)
            and source in block_patch
            and key not in block_patch
            and isinstance(stored_block, dict)
            and isinstance(merged_block, dict)
        ):
            continue
        try:
            default = derive(stored_block)
        except (KeyError, TypeError, AttributeError):
            continue  # the stored block lacks the source: nothing was derived from it
        if _same_json(stored_block.get(key), default):
            merged_block.pop(key, None)
    return merged


def _same_json(a: object, b: object) -> bool:
    # JSONB does not keep key order, and a list of names derived from a dict's keys
    # follows that order: compare lists of names as sets.
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b)) and len(a) == len(b)
    return a == b


def validate_settings(
    raw: object,
    *,
    channels: Iterable[str] = BUILTIN_CHANNELS,
    attribution_models: Iterable[str] = ATTRIBUTION_MODELS,
) -> dict:
    """Validate raw settings and return them with every default filled in.

    :param raw: the settings as received (any JSON value)
    :param channels: channel names the installed plugins provide
    :param attribution_models: attribution model names available
    :returns: the full settings document to store
    :raises InvalidInput: with ``errors == {"settings": {field: [messages]}}``
    """
    if not isinstance(raw, dict):
        raise InvalidInput("Settings must be a JSON object.", {"settings": ["Must be an object."]})
    check_json_document(raw)
    schema = SettingsSchema(channels=channels, attribution_models=attribution_models)
    try:
        settings = schema.load(raw)
    except ValidationError as exc:
        raise InvalidInput(
            "Invalid settings.", {"settings": _stringify_keys(exc.messages)}
        ) from exc
    if "channels" not in settings:
        settings["channels"] = list(schema.available_channels)
    return settings


def _stringify_keys(messages):
    # marshmallow keys list items by int index; JSON objects need string keys.
    if isinstance(messages, dict):
        return {str(k): _stringify_keys(v) for k, v in messages.items()}
    return messages


def normalize_stored_settings(document: Mapping) -> dict:
    """A stored settings document with every default filled in, for reading.

    Documents were validated when stored, but an older HPE may have stored one before a
    block or key existed: loading it through the schema gives those their defaults. The
    cross-references to installed channels and attribution models are not re-checked (a
    plugin removed since must not make a stored configuration unreadable).

    :raises InvalidInput: the document is not valid settings at all
    """
    schema = SettingsSchema(channels=(), attribution_models=(), check_references=False)
    try:
        settings = schema.load(dict(document))
    except ValidationError as exc:
        raise InvalidInput(
            "Invalid stored settings.", {"settings": _stringify_keys(exc.messages)}
        ) from exc
    settings.setdefault("channels", list(document.get("channels") or ()))
    return settings


def parse_settings(
    raw: object,
    *,
    channels: Iterable[str] = BUILTIN_CHANNELS,
    attribution_models: Iterable[str] = ATTRIBUTION_MODELS,
) -> Settings:
    """:func:`validate_settings`, read into typed :class:`Settings` (``.document`` is the
    document to store)."""
    return Settings.of(
        validate_settings(raw, channels=channels, attribution_models=attribution_models)
    )
