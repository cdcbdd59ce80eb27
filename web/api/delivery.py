"""The schemas of the optional ``deliver`` block of ``POST /{id}/decisions``: have HPE
send the chosen action on the decision's channel (email through SMTP, ads into the next
audience). The rule itself (who may deliver, storing the delivery with the decision,
enqueuing it) is :mod:`hpe_core.deliver.touchpoints`."""

from __future__ import annotations

import dataclasses

from marshmallow import Schema, ValidationError, fields, post_load, validate

from hpe_core.deliver.touchpoints import DeliverRequest
from hpe_core.errors import InvalidInput
from web.api.loop_schemas import DecisionRequestSchema, DecisionSchema
from web.api.schemas import HpeSchema
from web.extensions import app_runtime


class RecipientSchema(HpeSchema):
    email = fields.Email(validate=validate.Length(max=320))
    phone = fields.String(validate=validate.Length(3, 32))
    name = fields.String(
        validate=[
            validate.Length(max=200),
            # A line break in a name could add headers to a message: never a valid name.
            validate.Regexp(r"^[^\x00-\x1f\x7f]*\Z", error="No line breaks or control characters."),
        ]
    )


class DeliverSchema(HpeSchema):
    to = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 64)),
        load_default=dict,
        metadata={
            "description": "Who to send to: the fields the decision's channel declares "
            "(the components `<Channel>Recipient`, e.g. `EmailRecipient`); a channel that "
            "declares none takes `Recipient` (email, phone, name)"
        },
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

    @post_load
    def _check_recipient(self, data: dict, **_kwargs) -> dict:
        """``deliver.to`` checked against what the decision's channel declares."""
        deliver = data.get("deliver")
        # With "auto" or a list the channel is not known yet: the engine's choice checks
        # the recipient (hpe_core.deliver.touchpoints.answer).
        if deliver is not None and isinstance(data["channel"], str) and data["channel"] != "auto":
            recipient = _recipient(data["channel"], deliver.recipient)
            data["deliver"] = dataclasses.replace(deliver, recipient=recipient)
        return data


def _recipient(channel: str, recipient: dict) -> dict:
    """The recipient checked by the channel's ``recipient_schema``, else the generic one.

    :raises ValidationError: under ``deliver.to``, per field
    """
    connector = app_runtime().channels.get(channel)
    try:
        if connector is not None:
            checked = type(connector).validate_recipient(recipient)
            if checked is not None:
                return checked
        return RecipientSchema().load(recipient)
    except InvalidInput as exc:
        raise ValidationError({"deliver": {"to": exc.errors}}) from exc
    except ValidationError as exc:
        raise ValidationError({"deliver": {"to": exc.messages}}) from exc


def document_recipients(api, channels) -> None:
    """Name each channel's recipient fields in the OpenAPI document: ``Recipient`` (the
    generic one) and ``<Name>Recipient`` for each channel that declares its own."""
    spec = api.spec
    if "Recipient" not in spec.components.schemas:
        spec.components.schema("Recipient", schema=RecipientSchema)
    for name, connector in sorted(channels.items()):
        declared = type(connector).recipient_schema
        component = f"{name.capitalize()}Recipient"
        if declared is not None and component not in spec.components.schemas:
            spec.components.schema(component, schema=declared)


class DeliveryRefSchema(Schema):
    id = fields.UUID()
    status = fields.String(metadata={"description": "pending: queued for delivery"})


class DecisionDeliveredSchema(DecisionSchema):
    delivery = fields.Nested(
        DeliveryRefSchema, metadata={"description": "Only when `deliver` was requested"}
    )
