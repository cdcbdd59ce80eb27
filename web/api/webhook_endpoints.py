"""Outgoing webhook endpoints: subscribe a URL to HPE's events (Standard Webhooks)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from hpe_core.deliver.outbound import OutboundPolicy
from hpe_core.integrations import event_types, webhook_endpoints, webhook_messages
from hpe_core.store.vocabulary import WebhookEndpointStatus
from web.api import BASE
from web.api.pagination import SQLCursorPage
from web.api.schemas import PARSER, HpeSchema
from web.auth import current_principal, require_secret_key
from web.extensions import db_session

blp = Blueprint(
    "webhook_endpoints",
    __name__,
    url_prefix=BASE,
    description="Outgoing webhooks: HPE's events posted to your endpoints, signed the "
    "Standard Webhooks way (docs/integrations.md)",
)
blp.ARGUMENTS_PARSER = PARSER
blp.before_request(require_secret_key)

_TYPES_DESCRIPTION = (
    "Event types to receive: "
    + "; ".join(f"`{name}`: {what}" for name, what in event_types.EVENT_TYPES.items())
    + ". A family (`guardrail.*`, `recommendation.*`, `config.*`) or `*` subscribes to "
    "several."
)


class WebhookEndpointSchema(Schema):
    id = fields.UUID(dump_only=True)
    url = fields.String()
    description = fields.String()
    event_types = fields.List(fields.String(), metadata={"description": _TYPES_DESCRIPTION})
    status = fields.String(
        metadata={
            "description": "enabled, or disabled (by a person, or by HPE after a day of "
            "failed deliveries: see `disabled_reason`)",
            "enum": list(WebhookEndpointStatus),
        }
    )
    disabled_reason = fields.String(allow_none=True)
    failing_since = fields.DateTime(
        allow_none=True,
        metadata={"description": "When the current run of failed attempts began (null: none)"},
    )
    secret_hint = fields.String(metadata={"description": "The secret's first characters"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class WebhookEndpointCreatedSchema(WebhookEndpointSchema):
    secret = fields.String(
        metadata={
            "description": "The signing secret (`whsec_...`), shown only in this answer: "
            "verify each delivery's `webhook-signature` with it"
        }
    )


class WebhookEndpointCreateSchema(HpeSchema):
    url = fields.String(
        required=True,
        metadata={
            "description": "https:// (http:// for loopback addresses); its host may not "
            "resolve to a private, loopback or link-local address unless the operator "
            "allows that network (OUTBOUND_ALLOWED_NETWORKS)"
        },
    )
    event_types = fields.List(
        fields.String(), required=True, metadata={"description": _TYPES_DESCRIPTION}
    )
    description = fields.String(load_default="", validate=validate.Length(max=500))


class WebhookEndpointPatchSchema(HpeSchema):
    url = fields.String()
    event_types = fields.List(fields.String(), metadata={"description": _TYPES_DESCRIPTION})
    description = fields.String(validate=validate.Length(max=500))
    enabled = fields.Boolean(
        metadata={"description": "false disables it; true enables it again (failures forgotten)"}
    )


class WebhookAttemptSchema(Schema):
    id = fields.UUID()
    message_id = fields.Function(
        lambda attempt: f"msg_{attempt.message_id.hex}",
        metadata={"description": "The `webhook-id` header of the message"},
    )
    attempt = fields.Integer(metadata={"description": "1 for the first attempt of the message"})
    status_code = fields.Integer(
        allow_none=True, metadata={"description": "What the endpoint answered (null: no answer)"}
    )
    response = fields.String(
        allow_none=True, metadata={"description": "The first 1000 characters of its body"}
    )
    error = fields.String(allow_none=True, metadata={"description": "Why there was no answer"})
    duration_ms = fields.Float()
    created_at = fields.DateTime()


def _allow_http() -> bool:
    return bool(current_app.config.get("WEBHOOK_ALLOW_HTTP"))


def _policy() -> OutboundPolicy:
    """The operator's outbound policy (checked when the app started)."""
    return OutboundPolicy.from_settings(current_app.config)


@blp.route("/webhook-endpoints")
class WebhookEndpoints(MethodView):
    @blp.response(200, WebhookEndpointSchema(many=True))
    @blp.paginate(SQLCursorPage)
    def get(self):
        """List webhook endpoints

        The workspace's outgoing webhook endpoints, oldest first. Secrets are never
        listed (only `secret_hint`).
        """
        return webhook_endpoints.query(current_principal().workspace_id)

    @blp.arguments(WebhookEndpointCreateSchema)
    @blp.response(201, WebhookEndpointCreatedSchema)
    def post(self, data):
        """Create a webhook endpoint

        HPE posts each subscribed event to `url` as JSON `{type, timestamp, data}`, with
        the Standard Webhooks headers `webhook-id`, `webhook-timestamp` and
        `webhook-signature` (`v1,<base64 HMAC-SHA256>` over `<id>.<timestamp>.<body>`,
        keyed with the secret). Failed deliveries are retried for about a day; an
        endpoint that fails for a day is disabled. Like every outbound request a tenant
        can steer, each delivery goes only to addresses the operator's policy allows
        (public ones, by default) and never follows a redirect. The answer holds the
        `secret`: it is shown only this once.
        """
        session = db_session()
        row, secret = webhook_endpoints.create(
            session,
            current_principal().workspace_id,
            current_app.config["SECRET_KEY"],
            url=data["url"],
            event_types=data["event_types"],
            description=data["description"],
            policy=_policy(),
            allow_http=_allow_http(),
        )
        session.commit()
        return _with_secret(row, secret)


@blp.route("/webhook-endpoints/<uuid:endpoint_id>")
class WebhookEndpointsById(MethodView):
    @blp.response(200, WebhookEndpointSchema)
    def get(self, endpoint_id):
        """Get a webhook endpoint"""
        return webhook_endpoints.get(db_session(), current_principal().workspace_id, endpoint_id)

    @blp.arguments(WebhookEndpointPatchSchema)
    @blp.response(200, WebhookEndpointSchema)
    def patch(self, data, endpoint_id):
        """Update a webhook endpoint

        Change its URL, event types or description, or disable it (`enabled: false`) and
        enable it again (`enabled: true`, which also forgets past failures).
        """
        session = db_session()
        row = webhook_endpoints.update(
            session,
            current_principal().workspace_id,
            endpoint_id,
            data,
            policy=_policy(),
            allow_http=_allow_http(),
        )
        session.commit()
        return row

    @blp.response(204)
    def delete(self, endpoint_id):
        """Delete a webhook endpoint

        With its messages and their delivery log. Messages still waiting are not sent.
        """
        session = db_session()
        webhook_endpoints.remove(session, current_principal().workspace_id, endpoint_id)
        session.commit()


@blp.route("/webhook-endpoints/<uuid:endpoint_id>/rotate-secret")
class WebhookEndpointSecret(MethodView):
    @blp.response(200, WebhookEndpointCreatedSchema)
    def post(self, endpoint_id):
        """Rotate a webhook endpoint's secret

        A new secret signs every attempt from now on (retries of older messages too);
        it is shown only in this answer.
        """
        session = db_session()
        row, secret = webhook_endpoints.rotate_secret(
            session,
            current_principal().workspace_id,
            endpoint_id,
            current_app.config["SECRET_KEY"],
        )
        session.commit()
        return _with_secret(row, secret)


@blp.route("/webhook-endpoints/<uuid:endpoint_id>/attempts")
class WebhookEndpointAttempts(MethodView):
    @blp.response(200, WebhookAttemptSchema(many=True))
    @blp.paginate(SQLCursorPage)
    def get(self, endpoint_id):
        """List delivery attempts

        Every attempt at posting a message to this endpoint, newest first: what it
        answered, or why it did not.
        """
        workspace_id = current_principal().workspace_id
        webhook_endpoints.get(db_session(), workspace_id, endpoint_id)
        return webhook_messages.attempts_query(workspace_id, endpoint_id)


def _with_secret(row, secret: str) -> dict:
    """The endpoint's fields and its secret, for the one answer that shows it."""
    shown = {name: getattr(row, name) for name in WebhookEndpointSchema().fields}
    return {**shown, "secret": secret}
