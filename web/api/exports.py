"""Exports for analytics and BI: a configuration's decisions and daily metrics, streamed."""

from __future__ import annotations

import datetime as dt

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields, validate

from hpe_core.integrations import exports
from hpe_core.store.models import Config
from hpe_core.tenancy import configs
from web.api import BASE
from web.auth import current_principal, require_secret_key
from web.extensions import app_runtime, db_session

blp = Blueprint(
    "exports",
    __name__,
    url_prefix=BASE,
    description="Exports for analytics and BI (streamed NDJSON or CSV)",
)
blp.before_request(require_secret_key)


class ExportQueryArgsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    from_ = fields.Date(
        data_key="from",
        metadata={"description": "First UTC day, included (default: 29 days before `to`)"},
    )
    to = fields.Date(metadata={"description": "Last UTC day, included (default: today)"})
    format = fields.String(
        load_default="ndjson",
        validate=validate.OneOf(list(exports.FORMATS)),
        metadata={"description": "ndjson (one JSON object a line) or csv"},
    )


_CONTENT = {
    "application/x-ndjson": {"schema": {"type": "string"}},
    "text/csv": {"schema": {"type": "string"}},
}


@blp.route("/<uuid:config_id>/decisions/export")
class DecisionsExport(MethodView):
    @blp.arguments(ExportQueryArgsSchema, location="query")
    @blp.doc(responses={"200": {"description": "The decisions, streamed", "content": _CONTENT}})
    def get(self, args, config_id):
        """Export decisions

        Every decision made in `from`..`to` (UTC days, both included; no length limit),
        oldest first, streamed: `decision_id, created_at, config_id, user_id, channel,
        action_id, probability` (the chosen action's propensity), `propensities` (every
        eligible action's probability), `variant, policy, model_version,
        model_action_id, source, context, outcomes` (`[{type, value, occurred_at}]`),
        `outcome_count, value` (the outcomes' values added up), `reward` and `engaged`
        (once learned: null before), `learned_at`. In CSV, `propensities`, `context`
        and `outcomes` are JSON text. The export's memory does not grow with its size.
        """
        config = configs.get(db_session(), current_principal(), config_id)
        dates = _dates(args)
        return _stream(
            config,
            args["format"],
            exports.DECISION_FIELDS,
            lambda session, row: exports.decisions(session, row, dates),
            f"decisions-{dates.date_from}-{dates.date_to}",
        )


@blp.route("/<uuid:config_id>/metrics/export")
class MetricsExport(MethodView):
    @blp.arguments(ExportQueryArgsSchema, location="query")
    @blp.doc(responses={"200": {"description": "The daily metrics, streamed", "content": _CONTENT}})
    def get(self, args, config_id):
        """Export daily metrics

        One row per day with decisions in `from`..`to`, per variant (`treatment`,
        `holdout`) and scope: `all` (the configuration), each `channel` and each
        `action` (`key`): `decisions, engagements, engagement_rate, reward, revenue,
        cost`. The same days as `GET /{id}/metrics` (stored rollups, or computed live).
        """
        config = configs.get(db_session(), current_principal(), config_id)
        dates = _dates(args)
        costs = app_runtime().measurement.channel_costs
        return _stream(
            config,
            args["format"],
            exports.METRIC_FIELDS,
            lambda session, row: exports.daily_metrics(session, row, dates, channel_costs=costs),
            f"metrics-{dates.date_from}-{dates.date_to}",
        )


def _dates(args) -> exports.DateRange:
    return exports.DateRange.of(args.get("from_"), args.get("to"), dt.datetime.now(dt.UTC).date())


def _stream(config, fmt: str, fields, rows, name: str) -> Response:
    """Stream ``rows(session, config)`` on a session of its own (the request's is closed
    before the body is sent)."""
    sessions = app_runtime().sessions
    config_id = config.id

    def body():
        session = sessions()
        try:
            yield from exports.encode(rows(session, session.get(Config, config_id)), fmt, fields)
        finally:
            session.close()

    return Response(
        body(),
        content_type=exports.FORMATS[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="hpe-{config_id}-{name}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )
