"""Optimization recommendations: list, apply, dismiss."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from hpe_core.recommend import recommendations
from hpe_core.store.vocabulary import RecommendationStatus
from web.api import BASE
from web.api.schemas import ConfigSchema
from web.auth import current_principal, require_secret_key
from web.extensions import app_runtime, catalog, db_session

blp = Blueprint("recommendations", __name__, url_prefix=BASE, description="Recommendations")
blp.before_request(require_secret_key)


class RecommendationQueryArgsSchema(Schema):
    status = fields.String(
        load_default=RecommendationStatus.OPEN.value,
        validate=validate.OneOf(recommendations.STATUS_FILTERS),
        metadata={"description": "open (default), applied, dismissed, resolved or all"},
    )


class RecommendationSchema(Schema):
    id = fields.UUID()
    kind = fields.String(
        metadata={
            "description": "retire_action, change_exploration, holdout_underpowered, "
            "srm_alarm, channel_segment_underperforms, model_worse_than_baseline or "
            "circuit_breaker"
        }
    )
    subject = fields.String(metadata={"description": "What it is about, e.g. an action id"})
    severity = fields.String(metadata={"description": "info, warning or critical"})
    title = fields.String(metadata={"description": "One plain-language sentence"})
    detail = fields.String()
    evidence = fields.Dict(metadata={"description": "The numbers it rests on"})
    patch = fields.Dict(
        allow_none=True,
        metadata={"description": "JSON merge patch of the settings; null: nothing to apply"},
    )
    status = fields.String(metadata={"description": "open, applied, dismissed or resolved"})
    auto_apply = fields.Boolean(
        metadata={"description": "Whether the engine applies it itself in autonomous mode"}
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    applied_at = fields.DateTime(allow_none=True)
    applied_by = fields.String(
        allow_none=True, metadata={"description": "API key prefix, or `engine`"}
    )


class RecommendationListSchema(Schema):
    config_id = fields.UUID()
    recommendations = fields.List(fields.Nested(RecommendationSchema))


class AppliedRecommendationSchema(Schema):
    recommendation = fields.Nested(RecommendationSchema)
    config = fields.Nested(ConfigSchema)


class DismissedRecommendationSchema(Schema):
    recommendation = fields.Nested(RecommendationSchema)


@blp.route("/<uuid:config_id>/recommendations")
class Recommendations(MethodView):
    @blp.arguments(RecommendationQueryArgsSchema, location="query")
    @blp.response(200, RecommendationListSchema)
    def get(self, args, config_id):
        """List recommendations

        What the measurement pass (every few minutes) suggests changing, each with a
        plain-language title, the evidence (numbers) and a settings patch: retire an
        action, change exploration, a too-small holdout, a sample-ratio alarm, a channel
        that underperforms for a segment, a model worse than the baseline, the circuit
        breaker. Most severe first; `status` filters (default `open`).
        """
        rows = recommendations.list_for(
            db_session(), current_principal(), config_id, status=args["status"]
        )
        return {
            "config_id": config_id,
            "recommendations": [recommendations.as_dict(row) for row in rows],
        }


@blp.route("/<uuid:config_id>/recommendations/<uuid:recommendation_id>/apply")
class ApplyRecommendation(MethodView):
    @blp.response(200, AppliedRecommendationSchema)
    @blp.alt_response(404, description="Unknown configuration or recommendation")
    @blp.alt_response(409, description="Not open, nothing to apply, or the settings moved on")
    def post(self, config_id, recommendation_id):
        """Apply a recommendation

        Applies its settings patch (validated whole, like a PATCH of the configuration),
        marks it applied and logs a `recommendation.applied` activity. Returns the
        recommendation and the updated configuration. 409 when it is not open, has no
        patch (an alarm to investigate), or no longer fits the current settings (then
        nothing changes).
        """
        session = db_session()
        row, config = recommendations.apply(
            session, current_principal(), catalog(), config_id, recommendation_id
        )
        session.commit()
        app_runtime().decisions.invalidate(config.id)
        return {"recommendation": recommendations.as_dict(row), "config": config}


@blp.route("/<uuid:config_id>/recommendations/<uuid:recommendation_id>/dismiss")
class DismissRecommendation(MethodView):
    @blp.response(200, DismissedRecommendationSchema)
    @blp.alt_response(404, description="Unknown configuration or recommendation")
    @blp.alt_response(409, description="Not open")
    def post(self, config_id, recommendation_id):
        """Dismiss a recommendation

        Marks an open recommendation dismissed (logged as `recommendation.dismissed`); it
        comes back only if later raised with a different patch.
        """
        session = db_session()
        row = recommendations.dismiss(session, current_principal(), config_id, recommendation_id)
        session.commit()
        return {"recommendation": recommendations.as_dict(row)}
