"""Inbound channel webhooks: ``POST /webhooks/{channel}``, HMAC-signed, no API key."""

from __future__ import annotations

import hashlib

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from hpe_core.deliver import webhooks
from hpe_core.deliver.channels import WebhookRequest
from hpe_core.errors import NotFound, Unauthorized
from hpe_core.events import notify
from web.api import BASE
from web.extensions import app_runtime, db_session

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
        """
        if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
            abort(413, message=f"Webhook bodies are limited to {MAX_WEBHOOK_BYTES} bytes.")
        body = request.get_data(cache=True)
        if len(body) > MAX_WEBHOOK_BYTES:
            abort(413, message=f"Webhook bodies are limited to {MAX_WEBHOOK_BYTES} bytes.")
        app = current_app
        pm = app_runtime(app).pm
        connector = app_runtime(app).channels.get(channel)
        workspace_id = request.headers.get(webhooks.WORKSPACE_HEADER) or request.args.get(
            "workspace", ""
        )
        inbound = WebhookRequest(
            channel=channel,
            workspace_id=workspace_id,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            query=request.args.to_dict(),
        )
        session = db_session()
        verdict = None
        if connector is not None:
            verdict = pm.hook.hpe_verify_webhook(request=inbound, connector=connector)
        if verdict is False:
            raise Unauthorized("The channel plugin refused this webhook's signature.")
        if verdict is True:
            digest = hashlib.sha256(b"plugin:" + body).hexdigest()
        else:
            # Authenticate before telling whether the channel exists.
            digest = webhooks.verify(
                session,
                app.config["SECRET_KEY"],
                workspace_id,
                request.headers.get(webhooks.SIGNATURE_HEADER),
                body,
            )
        if connector is None:
            raise NotFound(f"No installed plugin provides the {channel!r} channel.")
        if not webhooks.claim(session, workspace_id, channel, digest):
            session.rollback()
            return {"accepted": 0, "duplicate": True, "ignored": []}, 200
        events = pm.hook.hpe_parse_webhook(request=inbound, connector=connector)
        report = webhooks.ingest(session, inbound, webhooks.validate_event_list(events or []))
        # Receipts only matter within the signature tolerance: each request tidies its own.
        webhooks.purge_receipts(session, workspace_id=workspace_id)
        session.commit()
        for config_id, stored in report.outcomes.items():
            notify(
                pm.hook.hpe_on_outcomes,
                workspace_id=workspace_id,
                config_id=config_id,
                outcomes=stored,
                source="webhook",
            )
        for _config_id, user_id, status in report.consent_changes:
            notify(
                pm.hook.hpe_on_consent_changed,
                workspace_id=workspace_id,
                channel=channel,
                user_id=user_id,
                status=status,
                source=f"webhook:{channel}",
            )
        return {"accepted": report.accepted, "duplicate": False, "ignored": report.ignored}
