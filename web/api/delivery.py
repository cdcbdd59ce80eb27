"""The schemas of the optional ``deliver`` block of ``POST /{id}/decisions``: have HPE
send the chosen action on the decision's channel (email through SMTP, ads into the next
audience). The rule itself (who may deliver, storing the delivery with the decision,
enqueuing it) is :mod:`hpe_core.deliver.touchpoints`."""

from __future__ import annotations

from marshmallow import Schema, fields, post_load, validate

from hpe_core.deliver.touchpoints import DeliverRequest
from web.api.loop_schemas import DecisionRequestSchema, DecisionSchema
from web.api.schemas import HpeSchema


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

    @post_load
    def _to_request(self, data: dict, **_kwargs) -> DeliverRequest:
        return DeliverRequest(recipient=data["to"], variables=data["variables"])


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
    delivery = fields.Nested(
        DeliveryRefSchema, metadata={"description": "Only when `deliver` was requested"}
    )
