"""Schemas of the learning loop's endpoints: decisions, outcomes, models, imports."""

from __future__ import annotations

import datetime as dt

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from hpe_core.decide.results import NoDecisionReason
from hpe_core.errors import InvalidInput
from hpe_core.store.limits import MAX_USER_ID_LENGTH
from hpe_core.tenancy.settings import check_json_document, text_problem
from web.api.schemas import HpeSchema

_EVENT_TYPE = validate.Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$",
    error="1-64 characters: letters, digits, '_', '.', ':' or '-'.",
)


def _storable_text(value: str) -> None:
    """Reject NUL and unpaired surrogates: PostgreSQL refuses them (SQLite would not)."""
    problem = text_problem(value)
    if problem:
        raise ValidationError(problem)


def _storable_document(value: object) -> None:
    """Reject what a JSON column cannot hold on every backend (NaN/Infinity, NUL, depth)."""
    try:
        check_json_document(value, "value")
    except InvalidInput as exc:
        raise ValidationError(exc.errors["value"]) from exc


def _utc_representable(value: dt.datetime) -> None:
    """Reject times that fall outside years 1-9999 once converted to UTC."""
    try:
        value.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValidationError("Out of range once converted to UTC.") from exc


class _ChannelChoice(fields.Field):
    """A channel name, ``"auto"`` (the engine chooses among the configuration's channels)
    or a list of the channels it may choose among."""

    def __init__(self, **kwargs):
        super().__init__(
            metadata={
                "description": "The touchpoint's channel; `auto` to let the engine choose "
                "the channel and the offer (among the configuration's channels), or a list "
                "of the channels it may choose among. The answer's `channel` says which.",
                "oneOf": [
                    {"type": "string", "minLength": 1, "maxLength": 64},
                    {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1, "maxLength": 64},
                        "minItems": 1,
                        "maxItems": 50,
                    },
                ],
                "example": "email",
            },
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and 1 <= len(value) <= 64:
            return value
        if (
            isinstance(value, list)
            and 1 <= len(value) <= 50
            and all(isinstance(item, str) and 1 <= len(item) <= 64 for item in value)
        ):
            return value
        raise ValidationError(
            'A channel name (1-64 characters), "auto", or a list of 1-50 channel names.'
        )


class DecisionRequestSchema(HpeSchema):
    user_id = fields.String(
        required=True,
        validate=[validate.Length(1, MAX_USER_ID_LENGTH), _storable_text],
        metadata={"description": "Your id for the person; hashed for assignment, never a feature."},
    )
    channel = _ChannelChoice(required=True)
    context = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        validate=_storable_document,
        metadata={
            "description": "What you know at decision time (segment, device, hour...). "
            "Nested objects are flattened; numbers are numeric features, strings categorical.",
            "example": {"segment": "bargain", "device": "mobile", "hour": 20},
        },
    )
    candidates = fields.List(
        fields.String(validate=validate.Length(1, 128)),
        validate=validate.Length(1, 1000),
        metadata={"description": "Restrict the choice to these action ids."},
    )


class RankedActionSchema(Schema):
    action_id = fields.String()
    probability = fields.Float()
    channel = fields.String(
        metadata={"description": "Only when the engine chose the channel: this entry's"}
    )


class DecisionSchema(Schema):
    decision_id = fields.UUID(allow_none=True)
    action_id = fields.String(allow_none=True)
    action = fields.Dict(allow_none=True)
    probability = fields.Float(allow_none=True)
    variant = fields.String(allow_none=True, metadata={"description": "treatment or holdout"})
    channel = fields.String(
        allow_none=True,
        metadata={
            "description": "The channel decided on: the request's, or the engine's choice "
            'for `"channel": "auto"` (or a list)'
        },
    )
    model_version = fields.Integer(allow_none=True)
    ranking = fields.List(fields.Nested(RankedActionSchema))
    reason = fields.String(
        metadata={
            "description": "Only when nothing was chosen, why: "
            + ", ".join(NoDecisionReason)
            + " (checked in this order; see docs/learning.md)"
        }
    )
    outcome_token = fields.String(
        metadata={
            "description": "Only when a decision was logged: a short-lived signed token "
            "that lets a publishable key (a web page) report this decision's outcomes "
            "(send it as the outcome's `outcome_token`). Valid for the configuration's "
            "`publishable_keys.token_seconds` (1 hour by default)"
        }
    )
    excluded = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "Dry runs only (`?dry_run=true`): each action left out, and why "
            "(not on this channel, not among the candidates, an action rule, a guardrail)"
        },
    )


class DecisionQueryArgsSchema(Schema):
    dry_run = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Answer what the decision would be now without logging it: "
            "`decision_id` null, no cap or budget consumed, 200, with `excluded` (secret "
            "key only; no `deliver`)"
        },
    )


_TOKEN_DOC = {
    "description": "The decision's `outcome_token` (from its decision answer): how a "
    "publishable key names the decision (then `decision_id` may be left out)"
}


class OutcomeInputSchema(HpeSchema):
    decision_id = fields.UUID()
    user_id = fields.String(validate=[validate.Length(1, MAX_USER_ID_LENGTH), _storable_text])
    type = fields.String(validate=_EVENT_TYPE, metadata={"example": "click"})
    value = fields.Float(allow_nan=False, validate=validate.Range(-1e12, 1e12))
    occurred_at = fields.AwareDateTime(default_timezone=None, validate=_utc_representable)
    idempotency_key = fields.String(validate=[validate.Length(1, 200), _storable_text])
    outcome_token = fields.String(validate=validate.Length(1, 200), metadata=_TOKEN_DOC)

    @validates_schema
    def _one_event(self, data, **kwargs):
        if "type" not in data:
            raise ValidationError("Missing data for required field.", "type")
        if not {"decision_id", "user_id", "outcome_token"} & set(data):
            raise ValidationError("Give decision_id or user_id.", "decision_id")


class OutcomesRequestSchema(HpeSchema):
    """One outcome (the fields of an outcome) or a batch (``{"outcomes": [...]}``)."""

    decision_id = fields.UUID()
    user_id = fields.String(validate=[validate.Length(1, MAX_USER_ID_LENGTH), _storable_text])
    type = fields.String(validate=_EVENT_TYPE)
    value = fields.Float(allow_nan=False, validate=validate.Range(-1e12, 1e12))
    occurred_at = fields.AwareDateTime(default_timezone=None, validate=_utc_representable)
    idempotency_key = fields.String(validate=[validate.Length(1, 200), _storable_text])
    outcome_token = fields.String(validate=validate.Length(1, 200), metadata=_TOKEN_DOC)
    outcomes = fields.List(fields.Nested(OutcomeInputSchema), validate=validate.Length(1, 1000))

    @validates_schema
    def _single_or_batch(self, data, **kwargs):
        if "outcomes" in data:
            if len(data) > 1:
                raise ValidationError("Send one outcome, or only 'outcomes' for a batch.")
            return
        OutcomeInputSchema()._one_event(data)


class OutcomeResultSchema(Schema):
    idempotency_key = fields.String()
    decision_id = fields.UUID(allow_none=True)
    type = fields.String()
    late = fields.Boolean(
        metadata={"description": "Arrived after the decision's reward window: kept, not learned"}
    )
    duplicate = fields.Boolean(
        metadata={
            "description": "Stored before (an earlier request, or earlier in this batch): "
            "this answer is the first one's, and nothing was stored again"
        }
    )


class OutcomesAcceptedSchema(Schema):
    accepted = fields.Integer(metadata={"description": "Outcomes this request stored"})
    duplicates = fields.Integer(
        metadata={"description": "Outcomes of this request that were stored before (retries)"}
    )
    outcomes = fields.List(fields.Nested(OutcomeResultSchema))
    unweighted = fields.List(
        fields.String(),
        metadata={
            "description": "Types in this request that reward.events does not list: stored "
            "and counted in metrics, but they weigh nothing in the reward ([] when all do)"
        },
    )


class ModelVersionSchema(Schema):
    version = fields.Integer(metadata={"description": "The highest version serves decisions"})
    vw_args = fields.String()
    vw_version = fields.String()
    checksum = fields.String()
    examples = fields.Integer()
    total_examples = fields.Integer()
    source = fields.String()
    created_at = fields.DateTime()


class RollbackSchema(HpeSchema):
    version = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))


class ImportResultSchema(Schema):
    import_id = fields.UUID()
    accepted = fields.Integer()
    rejected = fields.List(fields.Dict(), metadata={"description": "[{line, error}]"})
    unweighted = fields.List(
        fields.String(),
        metadata={
            "description": "Outcome types of accepted lines that reward.events does not "
            "list: stored and counted, but they weigh nothing ([] when all do)"
        },
    )
