"""Audience exports of a configuration (the ``ads`` channel's hashed customer lists): now,
or on a schedule."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields, validate

from hpe_core.errors import Conflict, PermanentDeliveryError
from hpe_core.integrations import audience_schedules
from hpe_core.tenancy import configs
from web.api import BASE
from web.api.schemas import PARSER, HpeSchema
from web.auth import current_principal, require_secret_key
from web.extensions import app_runtime, db_session

blp = Blueprint(
    "audience_exports",
    __name__,
    url_prefix=BASE,
    description="Audience exports (ads): now or on a schedule",
)
blp.ARGUMENTS_PARSER = PARSER
blp.before_request(require_secret_key)


class _Exported(Schema):
    action_id = fields.String()
    audience = fields.String()
    rows = fields.Integer()
    target = fields.String(metadata={"description": "Where it went (upload URL or file)"})


class ScheduleSchema(Schema):
    config_id = fields.UUID()
    channel = fields.String()
    every_hours = fields.Integer()
    next_run_at = fields.DateTime()
    last_run_at = fields.DateTime(allow_none=True)
    last_result = fields.List(fields.Nested(_Exported), allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SchedulePutSchema(HpeSchema):
    channel = fields.String(load_default="ads")
    every_hours = fields.Integer(
        required=True,
        validate=validate.Range(audience_schedules.MIN_HOURS, audience_schedules.MAX_HOURS),
        metadata={"description": "Export every this many hours (the first run within a minute)"},
    )


class ChannelArgsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    channel = fields.String(load_default="ads")


class ExportNowSchema(HpeSchema):
    channel = fields.String(load_default="ads")


class ExportedSchema(Schema):
    exported = fields.List(fields.Nested(_Exported))


@blp.route("/<uuid:config_id>/audiences/schedule")
class AudienceSchedules(MethodView):
    @blp.response(200, ScheduleSchema(many=True))
    def get(self, config_id):
        """List audience export schedules

        The configuration's schedules, one per channel, with how the last run went.
        """
        return audience_schedules.of_config(db_session(), current_principal(), config_id)

    @blp.arguments(SchedulePutSchema)
    @blp.response(200, ScheduleSchema)
    def put(self, data, config_id):
        """Schedule audience exports

        Ship the configuration's audiences on `channel` (default `ads`: one hashed
        customer list per action, from its recent deliveries, uploaded or dropped as the
        plugin's settings say) every `every_hours` hours, the first run at the next
        sweep (within a minute). `hpe worker` runs them with Redis; the API process
        without it. Replaces an existing schedule of the channel.
        """
        session = db_session()
        row = audience_schedules.put(
            session,
            current_principal(),
            app_runtime().channels,
            config_id,
            data["channel"],
            data["every_hours"],
        )
        session.commit()
        return row

    @blp.arguments(ChannelArgsSchema, location="query")
    @blp.response(204)
    def delete(self, args, config_id):
        """Stop scheduled audience exports"""
        session = db_session()
        audience_schedules.remove(session, current_principal(), config_id, args["channel"])
        session.commit()


@blp.route("/<uuid:config_id>/audiences/export")
class AudienceExportNow(MethodView):
    @blp.arguments(ExportNowSchema)
    @blp.response(200, ExportedSchema)
    @blp.alt_response(409, description="The channel has nowhere to send audiences")
    @blp.alt_response(503, description="The upload endpoint is down or throttling")
    def post(self, data, config_id):
        """Export audiences now

        The same export as a scheduled run (and `hpe ads export`), in this request.
        """
        session = db_session()
        config = configs.get(session, current_principal(), config_id)
        try:
            exported = audience_schedules.run(
                session, app_runtime().channels, config.id, data["channel"]
            )
        except PermanentDeliveryError as exc:  # e.g. no upload URL nor drop folder set
            raise Conflict(exc.message) from exc
        return {"exported": exported}
