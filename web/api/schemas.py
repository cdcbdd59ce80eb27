"""Request and response schemas of the REST API (documentation and input parsing).

Body schemas reject unknown fields; the settings document itself is validated by
``hpe_core.settings`` (it depends on the installed plugins' channels).
"""

from __future__ import annotations

import json

from marshmallow import RAISE, Schema, fields, validate
from webargs.flaskparser import FlaskParser

from hpe_core.models import CONFIG_STATUSES

SETTINGS_DESCRIPTION = (
    "Configuration settings. Only `actions` is required; every other block (channels, "
    "reward, exploration, holdout, guardrails, automation, attribution, goals, campaign, "
    "schedule) is filled in with its defaults and returned. Unknown keys are rejected. "
    "See docs/api.md for every field."
)
SETTINGS_EXAMPLE = {
    "actions": [
        {"id": "spring-sale", "features": {"category": "shoes", "discount_pct": 20}},
        {"id": "new-arrivals", "features": {"category": "apparel", "discount_pct": 0}},
    ],
    "holdout": {"percent": 10},
}


class JsonBodyParser(FlaskParser):
    """webargs' Flask parser, with every unreadable JSON body reported as a 400.

    ``json.loads`` raises more than ``JSONDecodeError``: ``RecursionError`` for a body nested
    a thousand levels deep and ``ValueError`` for an integer of over 4300 digits. webargs
    only catches the first, so the others would be 500s. Blueprints set
    ``blp.ARGUMENTS_PARSER = PARSER``.
    """

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError) as exc:
            raise json.JSONDecodeError(f"Unreadable JSON: {exc}", "<body>", 0) from exc


PARSER = JsonBodyParser()


class HpeSchema(Schema):
    class Meta:
        unknown = RAISE


class ConfigSchema(HpeSchema):
    id = fields.UUID(dump_only=True)
    workspace_id = fields.String(dump_only=True)
    name = fields.String()
    settings = fields.Dict(metadata={"description": SETTINGS_DESCRIPTION})
    status = fields.String(validate=validate.OneOf(CONFIG_STATUSES))
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class ConfigCreateSchema(HpeSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    settings = fields.Dict(
        required=True,
        metadata={"description": SETTINGS_DESCRIPTION, "example": SETTINGS_EXAMPLE},
    )
    status = fields.String(load_default="ACTIVE", validate=validate.OneOf(CONFIG_STATUSES))


class ConfigPatchSchema(HpeSchema):
    name = fields.String(validate=validate.Length(1, 200))
    settings = fields.Dict(
        metadata={
            "description": "A JSON merge patch (RFC 7386) applied to the stored settings; "
            "`null` resets a key to its default. The result is validated whole.",
            "example": {"holdout": {"percent": 20}},
        }
    )
    status = fields.String(validate=validate.OneOf(CONFIG_STATUSES))


class ConfigQueryArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(CONFIG_STATUSES))


class ActivitySchema(HpeSchema):
    id = fields.UUID(dump_only=True)
    config_id = fields.UUID(dump_only=True)
    type = fields.String(dump_only=True)
    actor = fields.String(
        dump_only=True,
        metadata={"description": "API key prefix, `cli` or `engine`"},
    )
    data = fields.Dict(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class ActivityQueryArgsSchema(Schema):
    type = fields.String(
        validate=[
            validate.Length(1, 64),
            validate.Regexp(
                r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*(\.\*)?\Z",
                error="Give a type like config.updated, or a family like config.*.",
            ),
        ],
        metadata={"description": "Exact type (`config.updated`) or a family (`config.*`)"},
    )


class MetricsQueryArgsSchema(Schema):
    from_ = fields.Date(data_key="from", metadata={"description": "First day, YYYY-MM-DD"})
    to = fields.Date(metadata={"description": "Last day (inclusive), YYYY-MM-DD"})


class _Variants(Schema):
    treatment = fields.Float(allow_none=True)
    holdout = fields.Float(allow_none=True)


class _VariantCounts(Schema):
    treatment = fields.Integer()
    holdout = fields.Integer()


class _Lift(Schema):
    estimate = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)
    p_value = fields.Float(allow_none=True)


class _Apprentice(Schema):
    baseline_decisions = fields.Integer(
        metadata={"description": "Live decisions the baseline served (holdout; everyone in manual)"}
    )
    model_agreements = fields.Integer(
        metadata={"description": "Of those, how many the model would have chosen too"}
    )
    agreement_rate = fields.Float(allow_none=True)


class _Summary(Schema):
    decisions = fields.Nested(_VariantCounts)
    engagements = fields.Nested(_VariantCounts)
    engagement_rate = fields.Nested(_Variants)
    lift = fields.Nested(_Lift)
    reward = fields.Float()
    revenue = fields.Float()
    cost = fields.Float()
    roi = fields.Float(allow_none=True)
    apprentice = fields.Nested(_Apprentice)


class _Day(Schema):
    date = fields.Date()
    metrics = fields.Dict()


class MetricsSchema(Schema):
    config_id = fields.UUID()
    from_ = fields.Date(data_key="from", attribute="from")
    to = fields.Date()
    summary = fields.Nested(_Summary)
    daily = fields.List(fields.Nested(_Day))


class ChannelSchema(Schema):
    name = fields.String()
    description = fields.String()
    plugin = fields.String()
