"""Request and response schemas of the REST API (documentation and input parsing).

Body schemas reject unknown fields; the settings document itself is validated by
``hpe_core.tenancy.settings`` (it depends on the installed plugins' channels).
"""

from __future__ import annotations

import json

from marshmallow import RAISE, Schema, fields, validate
from webargs.flaskparser import FlaskParser

from hpe_core.store.vocabulary import ConfigStatus

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
    status = fields.String(validate=validate.OneOf(list(ConfigStatus)))
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class ConfigCreateSchema(HpeSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    settings = fields.Dict(
        required=True,
        metadata={"description": SETTINGS_DESCRIPTION, "example": SETTINGS_EXAMPLE},
    )
    status = fields.String(
        load_default=ConfigStatus.ACTIVE, validate=validate.OneOf(list(ConfigStatus))
    )


class ConfigPatchSchema(HpeSchema):
    name = fields.String(validate=validate.Length(1, 200))
    settings = fields.Dict(
        metadata={
            "description": "A JSON merge patch (RFC 7386) applied to the stored settings; "
            "`null` resets a key to its default. The result is validated whole.",
            "example": {"holdout": {"percent": 20}},
        }
    )
    status = fields.String(validate=validate.OneOf(list(ConfigStatus)))


class ConfigQueryArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(list(ConfigStatus)))


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


def _nullable(description: str, field=fields.Float):
    return field(allow_none=True, metadata={"description": description})


class _Lift(Schema):
    estimate = _nullable("Treatment rate / holdout rate - 1 (null without holdout engagement)")
    ci_low = _nullable("Lower bound of the 95% interval of the lift")
    ci_high = _nullable("Upper bound of the 95% interval of the lift")
    p_value = _nullable("Two-sided pooled two-proportion z-test p-value")
    method = fields.String(
        metadata={"description": "Interval method: `katz-log-rr` (Katz log risk ratio)"}
    )


class _Apprentice(Schema):
    baseline_decisions = fields.Integer(
        metadata={"description": "Live decisions the baseline served (holdout; everyone in manual)"}
    )
    model_agreements = fields.Integer(
        metadata={"description": "Of those, how many the model would have chosen too"}
    )
    agreement_rate = fields.Float(allow_none=True)


class _RoiInterval(Schema):
    incremental_revenue = _nullable(
        "Revenue above the holdout's: (treatment revenue per decision - holdout revenue per "
        "decision) x treatment decisions"
    )
    incremental_revenue_ci_low = _nullable("95% interval of the incremental revenue, low")
    incremental_revenue_ci_high = _nullable("95% interval of the incremental revenue, high")
    cost = fields.Float(metadata={"description": "Cost of the treatment decisions (ROI's base)"})
    ci_low = _nullable("95% interval of the ROI, low")
    ci_high = _nullable("95% interval of the ROI, high")


class _Srm(Schema):
    expected_holdout_share = fields.Float(
        metadata={"description": "The configured holdout.percent / 100 (current setting)"}
    )
    observed_holdout_share = _nullable("Holdout decisions / live decisions")
    chi_square = _nullable("Chi-square statistic of the split, 1 degree of freedom")
    p_value = _nullable("Probability of a split this uneven by chance")
    alarm = fields.Boolean(
        metadata={"description": "Sample ratio mismatch: p < 0.001, lift is not trustworthy"}
    )


class _Power(Schema):
    target_lift = fields.Float(metadata={"description": "goals.target_lift"})
    baseline_rate = _nullable("Holdout engagement rate")
    alpha = fields.Float(metadata={"description": "Two-sided significance level (0.05)"})
    power = fields.Float(metadata={"description": "Power the plan aims for (0.8)"})
    decisions_per_day = _nullable("Live decisions per day over the range's last 7 full days")
    holdout_decisions_per_day = _nullable("Holdout decisions per day, same days")
    required_holdout_decisions = _nullable(
        "Holdout decisions needed to detect target_lift", fields.Integer
    )
    holdout_decisions = fields.Integer(metadata={"description": "Holdout decisions so far"})
    days_more = _nullable(
        "Days until enough holdout decisions at the recent pace (0: enough already)",
        fields.Integer,
    )
    detectable_lift = _nullable("Smallest lift detectable with the decisions so far")


class _Slice(Schema):
    decisions = fields.Nested(_VariantCounts)
    engagements = fields.Nested(_VariantCounts)
    engagement_rate = fields.Nested(_Variants)
    lift = fields.Nested(_Lift)
    revenue = fields.Float(metadata={"description": "Revenue of treatment and holdout"})
    cost = fields.Float(metadata={"description": "Cost of treatment and holdout decisions"})
    treatment_cost = fields.Float(metadata={"description": "Cost of treatment decisions"})
    incremental_revenue = _nullable("Incremental revenue over the counterfactual holdout")
    incremental_revenue_ci_low = _nullable("95% interval of the incremental revenue, low")
    incremental_revenue_ci_high = _nullable("95% interval of the incremental revenue, high")
    roi = _nullable("(incremental revenue - treatment cost) / treatment cost")
    roi_ci_low = _nullable("95% interval of the ROI, low")
    roi_ci_high = _nullable("95% interval of the ROI, high")


class _SegmentSlice(Schema):
    decisions = fields.Nested(_VariantCounts)
    engagements = fields.Nested(_VariantCounts)
    engagement_rate = fields.Nested(_Variants)
    lift = fields.Nested(_Lift)


class _OutcomeType(Schema):
    # Raw: whole counts stay integers; attributed outcomes add fractional credit shares.
    treatment = fields.Raw(
        metadata={"type": "number", "description": "Outcomes of treatment decisions"}
    )
    holdout = fields.Raw(
        metadata={"type": "number", "description": "Outcomes of holdout decisions"}
    )
    weight = _nullable("Its weight in reward.events; null: not listed, so it weighs nothing")


class _Summary(Schema):
    decisions = fields.Nested(_VariantCounts)
    engagements = fields.Nested(_VariantCounts)
    engagement_rate = fields.Nested(_Variants)
    lift = fields.Nested(_Lift)
    reward = fields.Float()
    revenue = fields.Float(metadata={"description": "Revenue of live decisions"})
    cost = fields.Float(metadata={"description": "Cost of live decisions (treatment + holdout)"})
    roi = _nullable(
        "Incremental ROI: (incremental revenue - treatment cost) / treatment cost; null "
        "without holdout decisions or cost"
    )
    roi_interval = fields.Nested(_RoiInterval)
    srm = fields.Nested(_Srm, metadata={"description": "Sample-ratio-mismatch check"})
    power = fields.Nested(_Power, metadata={"description": "Power planner for goals.target_lift"})
    channels = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(_Slice),
        metadata={"description": "Per channel, against that channel's holdout"},
    )
    actions = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(_Slice),
        metadata={"description": "Per action, against the whole holdout"},
    )
    segments = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Nested(_SegmentSlice)),
        metadata={
            "description": "Per value of the context key goals.segment_key (`(none)` when "
            "absent, `(other)` beyond the 50 largest), then per channel"
        },
    )
    apprentice = fields.Nested(_Apprentice)
    outcomes = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(_OutcomeType),
        metadata={
            "description": "Outcomes of live decisions per type, weighted or not (an "
            "attributed outcome counts its credit share)"
        },
    )


class _Day(Schema):
    date = fields.Date()
    metrics = fields.Dict(
        metadata={
            "description": "The day's document: variants, channels, actions, segments, "
            "sources (each counting decisions, engagements, reward, revenue, revenue_sq, "
            "cost, baseline_decisions, model_agreements) and outcomes (per type and "
            "variant); see docs/measurement.md"
        }
    )
    rolled_up_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "When the stored rollup was computed; null: computed live"},
    )


class _Late(Schema):
    engagements = fields.Nested(
        _VariantCounts,
        metadata={
            "description": "Live decisions engaged only by outcomes that came after their "
            "reward window: counted in summary.engagements, never learned (engagements "
            "minus these is what learning saw)"
        },
    )
    outcomes = fields.Nested(
        _VariantCounts, metadata={"description": "Outcomes that came after their window"}
    )


class MetricsSchema(Schema):
    """Dumps :class:`hpe_core.measure.metrics.MetricsReport`."""

    config_id = fields.UUID()
    from_ = fields.Date(data_key="from", attribute="date_from")
    to = fields.Date(attribute="date_to")
    summary = fields.Nested(_Summary)
    daily = fields.List(fields.Nested(_Day))
    late = fields.Nested(_Late, metadata={"description": "Late outcomes, reported apart"})
    learning_lag_seconds = fields.Float(
        allow_none=True,
        metadata={
            "description": "Seconds the oldest closed reward window not learned yet has "
            "waited (null: none waits). Learning keeps it to a few seconds; minutes mean "
            "learning is stalled (docs/operations.md, 'Learning lag')"
        },
    )


class ChannelSchema(Schema):
    name = fields.String()
    description = fields.String()
    plugin = fields.String()
