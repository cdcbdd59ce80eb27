"""An SMS channel for HPE, in one file: a Connector subclass and one hook."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from marshmallow import RAISE, Schema, fields, validate

from hpe_core import hookimpl
from hpe_core.channels import Connector, HealthStatus, InboundEvent, WebhookRequest
from hpe_core.delivery import Delivery, DeliveryResult
from hpe_core.errors import InvalidInput, PermanentDeliveryError, TransientDeliveryError

__version__ = "0.2.0"

_TEMPLATES = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class SmsConfigSchema(Schema):
    """PLUGINS["sms"]: HPE_PLUGINS__sms__gateway_url, HPE_PLUGINS__sms__token."""

    class Meta:
        unknown = RAISE

    gateway_url = fields.Url(schemes={"http", "https"}, require_tld=False, required=True)
    token = fields.String(load_default=None, allow_none=True)
    timeout = fields.Float(load_default=10.0)


class SmsContentSchema(Schema):
    """action.content.sms"""

    class Meta:
        unknown = RAISE

    text = fields.String(required=True, validate=validate.Length(1, 1600))


class SmsRecipientSchema(Schema):
    """deliver.to for an SMS: the phone number, E.164 (HPE checks it before deciding)."""

    class Meta:
        unknown = RAISE

    phone = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^\+[1-9][0-9]{6,14}\Z", error="An E.164 number, e.g. +15550100."
        ),
        metadata={"description": "E.164 phone number, e.g. +15550100"},
    )


class SmsConnector(Connector):
    name = "sms"
    description = "SMS through an HTTP gateway"
    config_schema = SmsConfigSchema
    content_schema = SmsContentSchema
    recipient_schema = SmsRecipientSchema

    def send(self, delivery: Delivery) -> DeliveryResult:
        phone = delivery.recipient.get("phone")
        if not phone:
            raise PermanentDeliveryError("No phone number (deliver.to.phone).")
        try:
            text = _TEMPLATES.from_string(delivery.content["text"]).render(
                **delivery.variables, user_id=delivery.user_id
            )
        except (KeyError, TemplateError) as exc:
            raise PermanentDeliveryError(f"Cannot render the SMS: {exc}") from exc
        body = {"to": phone, "text": text, "reference": str(delivery.decision_id)}
        reply = self._post(body)
        return DeliveryResult(status="sent", provider_id=reply.get("id"))

    def health(self) -> HealthStatus:
        """Whether the gateway accepts a connection (a TCP connect, within 3 seconds)."""
        url = urllib.parse.urlsplit(self.plugin_config["gateway_url"])
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            socket.create_connection((url.hostname, port), timeout=3).close()
        except OSError as exc:
            return HealthStatus(False, f"gateway {url.hostname}:{port} unreachable: {exc}")
        return HealthStatus(True, f"gateway {url.hostname}:{port} reachable")

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        """The gateway's delivery receipts, ``{"reference": <decision id>, "status":
        "delivered" | "failed"}`` (the reference is the decision id sent with each SMS:
        the gateway echoes it back); anything else is HPE's generic format."""
        body = request.json()
        if not (isinstance(body, dict) and "reference" in body):
            return super().parse_webhook(request)
        try:
            decision_id = uuid.UUID(str(body["reference"]))
        except ValueError as exc:
            raise InvalidInput("The receipt's reference is not a decision id.") from exc
        status = body.get("status")
        status = status if status in ("delivered", "failed") else "unknown"
        return [
            InboundEvent(type=f"sms_{status}", decision_id=decision_id, event_id=body.get("id"))
        ]

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.plugin_config.get("token"):
            headers["Authorization"] = f"Bearer {self.plugin_config['token']}"
        request = urllib.request.Request(
            self.plugin_config["gateway_url"], json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.plugin_config["timeout"]) as reply:
                return json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise TransientDeliveryError(f"SMS gateway answered {exc.code}.") from exc
            raise PermanentDeliveryError(f"SMS gateway refused: {exc.code}.") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TransientDeliveryError(f"SMS gateway unreachable: {exc}") from exc


@hookimpl
def hpe_register_connectors():
    return [SmsConnector]
