"""Inbound channel webhooks: ``POST /webhooks/{channel}``, HMAC-signed, no API key."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from hpe_core.deliver import webhooks
from hpe_core.deliver.channels import WebhookRequest
from web.api import BASE
from web.extensions import app_runtime, app_state, db_session

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix=BASE,
    description="Inbound channel events (ESP event webhooks, ad conversion postbacks)",
)

#: Largest webhook body accepted (an ESP batches at most a few thousand events).
MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


class IgnoredEventSchema(Schema):
    index = fields.Integer()
    reason = fields.String()


class WebhookAcceptedSchema(Schema):
    accepted = fields.Integer(metadata={"description": "Outcomes stored from this request"})
    duplicate = fields.Boolean(
        metadata={"description": "This signed request was already processed: nothing stored"}
    )
    ignored = fields.List(
        fields.Nested(IgnoredEventSchema),
        metadata={"description": "Events not tied to a decision or configuration of the workspace"},
    )


@blp.route("/webhooks/<string:channel>")
class Webhooks(MethodView):
    @blp.response(202, WebhookAcceptedSchema)
    @blp.alt_response(200, schema=WebhookAcceptedSchema, description="A replay: nothing stored")
    @blp.alt_response(401, description="Missing, stale or invalid signature: nothing stored")
    @blp.doc(
        security=[],
        parameters=[
            {
                "in": "header",
                "name": webhooks.WORKSPACE_HEADER,
                "schema": {"type": "string"},
                "description": "The workspace (or the `workspace` query parameter)",
            },
            {
                "in": "header",
                "name": webhooks.SIGNATURE_HEADER,
                "required": True,
                "schema": {"type": "string"},
                "description": "`t=<unix time>,v1=<hex HMAC-SHA256(secret, t + '.' + body)>`",
            },
        ],
        requestBody={
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object"},
                    "example": {
                        "events": [{"type": "conversion", "decision_id": "…", "value": 42.0}]
                    },
                }
            },
        },
    )
    def post(self, channel):
        """Receive channel events

        Events a channel sends back (opens, clicks, bounces, unsubscribes, conversions)
        become outcomes of their decisions; unsubscribes, bounces and complaints withdraw
        the user's consent for the channel. The body is HPE's `{"events": [...]}` format
        or the channel's own (the email channel reads SendGrid-style event arrays).

        No API key: the request is signed with the workspace's webhook secret (`hpe
        webhooks create-secret`) over `<t>.<raw body>`, and accepted within 5 minutes of
        `t`. A replayed request answers 200 with `duplicate: true` and stores nothing.
        ---
        Internal: backed by hpe_core.deliver.webhooks.receive.
        """
        runtime = app_runtime()
        receipt = webhooks.receive(
            db_session(),
            runtime.pm,
            runtime.channels,
            _inbound(channel, _body()),
            secret_key=app_state().secret_keys,
            signature=request.headers.get(webhooks.SIGNATURE_HEADER),
        )
        if receipt.duplicate:
            return {"accepted": 0, "duplicate": True, "ignored": []}, 200
        report = receipt.report
        return {"accepted": report.accepted, "duplicate": False, "ignored": report.ignored}


def _body() -> bytes:
    """The raw body, exactly as signed; 413 past :data:`MAX_WEBHOOK_BYTES`."""
    if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
        abort(413, message=f"Webhook bodies are limited to {MAX_WEBHOOK_BYTES} bytes.")
    body = request.get_data(cache=True)
    if len(body) > MAX_WEBHOOK_BYTES:
        abort(413, message=f"Webhook bodies are limited to {MAX_WEBHOOK_BYTES} bytes.")
    return body


def _inbound(channel: str, body: bytes) -> WebhookRequest:
    workspace_id = request.headers.get(webhooks.WORKSPACE_HEADER) or request.args.get(
        "workspace", ""
    )
    return WebhookRequest(
        channel=channel,
        workspace_id=workspace_id,
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
        query=request.args.to_dict(),
    )
