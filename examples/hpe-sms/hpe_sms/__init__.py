"""An SMS channel for HPE, in one file: a Connector subclass and one hook."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from marshmallow import RAISE, Schema, fields, validate

from hpe_core import hookimpl
from hpe_core.channels import Connector, HealthStatus
from hpe_core.delivery import Delivery, DeliveryResult
from hpe_core.errors import PermanentDeliveryError, TransientDeliveryError

__version__ = "0.1.0"

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


class SmsConnector(Connector):
    name = "sms"
    description = "SMS through an HTTP gateway"
    config_schema = SmsConfigSchema
    content_schema = SmsContentSchema

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
        return HealthStatus(True, f"gateway {self.plugin_config['gateway_url']}")

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
