"""Channel operations a workspace runs through the API (the CLI's ``hpe channels`` and
``hpe consent``, and a decision's delivery status)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields, validate

from hpe_core.deliver import administration
from hpe_core.deliver import channels as channel_settings
from hpe_core.errors import NotFound
from hpe_core.events import notify
from hpe_core.integrations import decision_status
from hpe_core.store.limits import MAX_USER_ID_LENGTH
from hpe_core.store.vocabulary import ConsentStatus
from web.api import BASE
from web.api.schemas import PARSER, HpeSchema
from web.auth import current_principal, require_secret_key
from web.extensions import app_runtime, db_session

blp = Blueprint(
    "channel_operations",
    __name__,
    url_prefix=BASE,
    description="Channel operations: a workspace's channel settings, consent, and where a "
    "decision's delivery stands",
)
blp.ARGUMENTS_PARSER = PARSER
blp.before_request(require_secret_key)


class ChannelSettingsSchema(Schema):
    channel = fields.String(dump_only=True)
    settings = fields.Dict(
        metadata={
            "description": "The workspace's settings for the channel, as its plugin "
            "declares them (e.g. the web channel's allowed_origins)"
        }
    )


class ChannelSettingsPutSchema(HpeSchema):
    settings = fields.Dict(required=True)


class ConsentQueryArgsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    user_id = fields.String(required=True, validate=validate.Length(1, MAX_USER_ID_LENGTH))


class ConsentPutSchema(HpeSchema):
    user_id = fields.String(required=True, validate=validate.Length(1, MAX_USER_ID_LENGTH))
    status = fields.String(required=True, validate=validate.OneOf(list(ConsentStatus)))


class ConsentSchema(Schema):
    channel = fields.String()
    user_id = fields.String()
    status = fields.String(
        metadata={"description": "subscribed (the default), unsubscribed, bounced or complained"}
    )
    source = fields.String(
        allow_none=True, metadata={"description": "What recorded it (null: never recorded)"}
    )
    updated_at = fields.DateTime(allow_none=True)
    changed = fields.Boolean(metadata={"description": "PUT only: whether it changed"})


class _Outcome(Schema):
    type = fields.String()
    value = fields.Float(allow_none=True)
    occurred_at = fields.DateTime()
    received_at = fields.DateTime()
    late = fields.Boolean(metadata={"description": "Arrived after the reward window closed"})


class _Delivery(Schema):
    id = fields.UUID()
    status = fields.String(metadata={"description": "pending, retrying, sent or failed"})
    attempts = fields.Integer(metadata={"description": "Attempts made so far"})
    error = fields.String(allow_none=True, metadata={"description": "The last failure"})
    provider_id = fields.String(allow_none=True, metadata={"description": "e.g. Message-ID"})
    result = fields.Dict(metadata={"description": "What the channel reported"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)


class DecisionStatusSchema(Schema):
    decision_id = fields.UUID()
    config_id = fields.UUID()
    created_at = fields.DateTime()
    user_id = fields.String()
    channel = fields.String()
    action_id = fields.String()
    probability = fields.Float()
    propensities = fields.Dict(keys=fields.String(), values=fields.Float())
    variant = fields.String()
    policy = fields.String()
    model_version = fields.Integer()
    source = fields.String()
    context = fields.Dict()
    window_closes_at = fields.DateTime()
    learned_at = fields.DateTime(allow_none=True)
    reward = fields.Float(allow_none=True)
    engaged = fields.Boolean(allow_none=True)
    outcomes = fields.List(fields.Nested(_Outcome))
    delivery = fields.Nested(
        _Delivery, allow_none=True, metadata={"description": "null: HPE was not asked to deliver"}
    )


@blp.route("/channels/<string:channel>/settings")
class ChannelSettings(MethodView):
    @blp.response(200, ChannelSettingsSchema)
    def get(self, channel):
        """Get the workspace's settings for a channel"""
        _installed(channel)
        settings = channel_settings.get_settings(
            db_session(), current_principal().workspace_id, channel
        )
        return {"channel": channel, "settings": settings}

    @blp.arguments(ChannelSettingsPutSchema)
    @blp.response(200, ChannelSettingsSchema)
    def put(self, data, channel):
        """Replace the workspace's settings for a channel

        Validated by the channel plugin's own schema (422 per field); logged as a
        `channel.settings_changed` activity. The same as `hpe channels configure`.
        """
        session = db_session()
        stored = administration.put_channel_settings(
            session, current_principal(), app_runtime().channels, channel, data["settings"]
        )
        session.commit()
        return {"channel": channel, "settings": stored}


@blp.route("/channels/<string:channel>/consent")
class ChannelConsent(MethodView):
    @blp.arguments(ConsentQueryArgsSchema, location="query")
    @blp.response(200, ConsentSchema)
    def get(self, args, channel):
        """Look up a user's consent on a channel

        `subscribed` unless an unsubscribe, bounce or complaint was recorded (from a
        webhook, the one-click unsubscribe, or a change here). The same as `hpe consent
        show`.
        """
        return administration.consent_of(
            db_session(), current_principal(), app_runtime().channels, channel, args["user_id"]
        )

    @blp.arguments(ConsentPutSchema)
    @blp.response(200, ConsentSchema)
    def put(self, data, channel):
        """Change a user's consent on a channel

        E.g. `subscribed` after a re-opt-in, or `unsubscribed` from your preference
        centre. Logged as a `consent.changed` activity, and plugins hear it
        (`hpe_on_consent_changed`). The same as `hpe consent set`.
        """
        session, principal = db_session(), current_principal()
        runtime = app_runtime()
        changed = administration.set_consent(
            session, principal, runtime.channels, channel, data["user_id"], data["status"]
        )
        session.commit()
        if changed:
            notify(
                runtime.pm.hook.hpe_on_consent_changed,
                workspace_id=principal.workspace_id,
                channel=channel,
                user_id=data["user_id"],
                status=data["status"],
                source=f"api:{principal.actor}",
            )
        record = administration.consent_of(
            session, principal, runtime.channels, channel, data["user_id"]
        )
        return {**record.__dict__, "changed": changed}


@blp.route("/<uuid:config_id>/decisions/<uuid:decision_id>")
class DecisionStatus(MethodView):
    @blp.response(200, DecisionStatusSchema)
    def get(self, config_id, decision_id):
        """Get a decision and its delivery

        What was chosen (with every eligible action's propensity, the variant and the
        model version), the outcomes that came back, the reward once learned, and when
        HPE delivers it (`deliver` in the request), where the delivery stands: status,
        attempts, the last error, the provider's message id.
        """
        return decision_status.lookup(db_session(), current_principal(), config_id, decision_id)


def _installed(channel: str) -> None:
    if channel not in app_runtime().channels:
        raise NotFound(f"No installed plugin provides the {channel!r} channel.")
