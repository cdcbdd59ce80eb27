"""The optional ``deliver`` block of ``POST /{id}/decisions``: have HPE send the chosen
action on the decision's channel (email through SMTP, ads into the next audience), and
the plugin hooks around a decision (context enrichment, ``hpe_on_decision``)."""

from __future__ import annotations

import dataclasses
import logging

from flask import current_app
from flask_smorest import abort
from marshmallow import Schema, fields, validate

from hpe_core.deliver import delivery
from hpe_core.events import notify
from web.api.loop_schemas import DecisionRequestSchema, DecisionSchema
from web.api.schemas import HpeSchema
from web.auth import current_principal

log = logging.getLogger(__name__)


class RecipientSchema(HpeSchema):
    email = fields.Email(validate=validate.Length(max=320))
    phone = fields.String(validate=validate.Length(3, 32))
    name = fields.String(validate=validate.Length(max=200))


class DeliverSchema(HpeSchema):
    to = fields.Nested(
        RecipientSchema,
        load_default=dict,
        metadata={"description": "Who to send to (email for email; email/phone for ads)"},
    )
    variables = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 64)),
        load_default=dict,
        validate=validate.Length(max=100),
        metadata={"description": 'Per-user template variables, e.g. {"first_name": "Ada"}'},
    )


class DecisionDeliverRequestSchema(DecisionRequestSchema):
    deliver = fields.Nested(
        DeliverSchema,
        metadata={
            "description": "Optional: also deliver the chosen action on the channel, in the "
            "background (secret key only). Recipient data is erased once delivered."
        },
    )


class DeliveryRefSchema(Schema):
    id = fields.UUID()
    status = fields.String(metadata={"description": "pending: queued for delivery"})


class DecisionDeliveredSchema(DecisionSchema):
    reason = fields.String(
        metadata={
            "description": "Why nothing was chosen: no_eligible_action, frequency_cap, "
            "quiet_hours, campaign_not_running, no_consent, excluded (a channel exclusion), "
            "max_action_share, budget_exhausted"
        }
    )
    delivery = fields.Nested(
        DeliveryRefSchema, metadata={"description": "Only when `deliver` was requested"}
    )


def pop_deliver(data: dict) -> dict | None:
    """Take ``deliver`` out of the request body; publishable keys may not send messages."""
    deliver = data.pop("deliver", None)
    if deliver is not None and current_principal().kind != "secret":
        abort(403, message="A publishable key cannot request delivery: use a secret key.")
    if deliver is not None and data.get("channel") not in current_app.extensions["hpe_channels"]:
        abort(
            422,
            message="No installed plugin delivers on this channel.",
            errors={"channel": ["No connector for this channel."]},
        )
    return deliver


def enrich(request):
    """The decision request with the channel plugins' extra context (caller's keys win)."""
    connector = current_app.extensions["hpe_channels"].get(request.channel)
    if connector is None:
        return request
    pm = current_app.extensions["hpe_pm"]
    extra: dict = {}
    for contribution in pm.hook.hpe_enrich_context(
        connector=connector, user_id=request.user_id, context=request.context
    ):
        if contribution:
            extra.update(contribution)
    if not extra:
        return request
    return dataclasses.replace(request, context={**extra, **request.context})


def request_delivery(session, config_id, data: dict, result: dict, deliver: dict | None):
    """Store a pending delivery with the decision (same transaction); add it to the result."""
    if deliver is None or result.get("decision_id") is None:
        return None
    row = delivery.request_delivery(
        session,
        workspace_id=current_principal().workspace_id,
        config_id=config_id,
        decision_id=result["decision_id"],
        channel=data["channel"],
        user_id=data["user_id"],
        action_id=result["action_id"],
        recipient=deliver["to"],
        variables=deliver["variables"],
    )
    result["delivery"] = {"id": row.id, "status": "pending"}
    return row.id


def after_commit(config_id, data: dict, result: dict, delivery_id) -> None:
    """Enqueue the delivery job and tell event sinks about the decision."""
    app = current_app._get_current_object()
    if delivery_id is not None:
        try:
            app.extensions["hpe_jobs"].enqueue_delivery(delivery_id, app=app)
        except Exception as exc:  # noqa: BLE001 - e.g. Redis down: the decision is committed
            # The delivery is stored as pending; the sweeper enqueues it again later.
            log.warning("could not enqueue delivery %s (will be swept): %s", delivery_id, exc)
    notify(
        app.extensions["hpe_pm"].hook.hpe_on_decision,
        workspace_id=current_principal().workspace_id,
        config_id=config_id,
        channel=data["channel"],
        user_id=data["user_id"],
        decision=result,
    )
