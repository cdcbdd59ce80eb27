"""The web connector: content for page slots, and the per-workspace CORS allow-list."""

from __future__ import annotations

import re
from collections.abc import Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from hpe_core.deliver.channels import Connector
from hpe_core.deliver.delivery import Delivery, DeliveryResult

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?\Z")
_MOBILE = re.compile(r"Mobi|Android|iPhone|iPod", re.IGNORECASE)
_TABLET = re.compile(r"iPad|Tablet", re.IGNORECASE)


def _origin(value: str) -> None:
    if not _ORIGIN.match(value):
        raise ValidationError("An origin is scheme://host[:port], e.g. https://shop.example.")


class WebSettingsSchema(Schema):
    """One workspace's web settings."""

    class Meta:
        unknown = RAISE

    allowed_origins = fields.List(
        fields.String(validate=_origin),
        load_default=list,
        validate=validate.Length(max=100),
        metadata={"description": "Origins whose pages may call decide/outcomes"},
    )


class WebContentSchema(Schema):
    """``action.content.web``: what the snippet shows in a slot."""

    class Meta:
        unknown = RAISE

    title = fields.String(validate=validate.Length(max=500))
    text = fields.String(validate=validate.Length(max=5000))
    html = fields.String(
        validate=validate.Length(max=64 * 1024),
        metadata={"description": "Trusted HTML (written by the marketer) for the slot"},
    )
    image = fields.Url(schemes={"http", "https"}, require_tld=False)
    href = fields.Url(schemes={"http", "https"}, require_tld=False)


class WebConnector(Connector):
    name = "web"
    description = "Web page slots, through a JavaScript snippet or JSON"
    workspace_settings_schema = WebSettingsSchema
    content_schema = WebContentSchema

    def send(self, delivery: Delivery) -> DeliveryResult:
        # The page renders the decision itself (hpe.js): "delivering" returns the payload.
        return DeliveryResult(status="rendered", detail={"payload": dict(delivery.content)})

    def enrich_context(self, user_id: str, context: Mapping) -> Mapping | None:
        agent = context.get("user_agent")
        if not isinstance(agent, str) or "device" in context:
            return None
        if _TABLET.search(agent):
            return {"device": "tablet"}
        return {"device": "mobile" if _MOBILE.search(agent) else "desktop"}
