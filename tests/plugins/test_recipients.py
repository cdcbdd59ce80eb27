"""A channel declares the recipient fields it needs (``Connector.recipient_schema``):
HPE checks ``deliver.to`` against it before deciding and documents it in OpenAPI."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields

from hpe_core import Connector, DeliveryResult, hookimpl
from plugins.testing import make_tenant, run_deliveries

BASE = "/api/v1/041-hyper-personalization-engine"
SENT = []


class PushRecipientSchema(Schema):
    class Meta:
        unknown = RAISE

    push_token = fields.String(required=True)
    device_id = fields.String()


class PushConnector(Connector):
    name = "push"
    description = "Push notifications"
    recipient_schema = PushRecipientSchema

    def send(self, delivery):
        SENT.append(dict(delivery.recipient))
        return DeliveryResult(status="sent", provider_id="p-1")


class PushPlugin:
    @hookimpl
    def hpe_register_connectors(self):
        return [PushConnector]


def _config(client, tenant, channel):
    response = client.post(
        f"{BASE}/",
        json={"name": "n", "settings": {"channels": [channel], "actions": [{"id": "a"}]}},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_declared_recipient_is_checked_and_delivered(register_plugin, make_hpe_app):
    """A push token is required (422 under deliver.to without it, nothing decided); with it
    the connector gets exactly the declared fields."""
    register_plugin(PushPlugin(), "push")
    app = make_hpe_app()
    tenant, client = make_tenant(app), app.test_client()
    config_id = _config(client, tenant, "push")
    url = f"{BASE}/{config_id}/decisions"
    missing = client.post(
        url,
        headers=tenant.headers,
        json={"user_id": "u1", "channel": "push", "deliver": {"to": {"email": "a@b.example"}}},
    )
    assert missing.status_code == 422
    errors = missing.get_json()["errors"]["deliver"]["to"]
    assert "push_token" in errors and "email" in errors
    sent = client.post(
        url,
        headers=tenant.headers,
        json={
            "user_id": "u1",
            "channel": "push",
            "deliver": {"to": {"push_token": "tok-1", "device_id": "d-9"}},
        },
    )
    assert sent.status_code == 201, sent.get_json()
    assert run_deliveries(app) == 1
    assert SENT[-1] == {"push_token": "tok-1", "device_id": "d-9"}


def test_built_in_channels_declare_theirs_and_openapi_shows_them(make_hpe_app, register_plugin):
    """email and ads declare recipients; the document has Recipient and <Channel>Recipient."""
    import connectors.ads
    import connectors.email

    register_plugin(connectors.email, "email")
    register_plugin(connectors.ads, "ads")
    register_plugin(PushPlugin(), "push")
    app = make_hpe_app()
    tenant, client = make_tenant(app), app.test_client()
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert set(schemas["EmailRecipient"]["properties"]) == {"email", "name"}
    assert set(schemas["AdsRecipient"]["properties"]) == {"email", "phone"}
    assert schemas["PushRecipient"]["required"] == ["push_token"]
    assert set(schemas["Recipient"]["properties"]) == {"email", "phone", "name"}
    config_id = _config(client, tenant, "email")
    wrong = client.post(
        f"{BASE}/{config_id}/decisions",
        headers=tenant.headers,
        json={"user_id": "u1", "channel": "email", "deliver": {"to": {"phone": "+15550100"}}},
    )
    assert wrong.status_code == 422 and "phone" in wrong.get_json()["errors"]["deliver"]["to"]
