"""Channel operations through the API: a workspace's channel settings, consent look-up
and change, a decision with its delivery, and SendGrid's ECDSA-signed event webhook
verified natively (with a key pair made here); on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hpe_core import hookimpl
from tests.api.conftest import assert_error
from tests.conftest import BASE, make_test_app
from tests.connectors.conftest import (
    EMAIL_ACTION,
    create_config,
    decide,
    email_plugin_config,
    new_tenant,
)
from web.extensions import app_runtime


class ConsentSpy:
    def __init__(self):
        self.calls = []

    @hookimpl
    def hpe_on_consent_changed(self, workspace_id, channel, user_id, status, source):
        self.calls.append((workspace_id, channel, user_id, status, source))


@pytest.fixture
def channel_client(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, PUBLIC_URL="http://hpe.test")
    yield app, app.test_client(), new_tenant(app)
    app_runtime(app).engine.dispose()


def test_channel_settings_read_and_replace(channel_client):
    """PUT validates with the channel's schema and logs; GET reads; unknown channel 404."""
    _app, client, tenant = channel_client
    url = f"{BASE}/channels/web/settings"
    assert client.get(url, headers=tenant.headers).get_json() == {"channel": "web", "settings": {}}
    body = {"settings": {"allowed_origins": ["https://shop.example"]}}
    put = client.put(url, json=body, headers=tenant.headers)
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["settings"]["allowed_origins"] == ["https://shop.example"]
    assert client.get(url, headers=tenant.headers).get_json() == put.get_json()
    bad = client.put(url, json={"settings": {"allowed_origins": "nope"}}, headers=tenant.headers)
    assert "allowed_origins" in str(assert_error(bad, 422)["errors"])
    assert_error(client.get(f"{BASE}/channels/pigeon/settings", headers=tenant.headers), 404)


def test_consent_look_up_and_change(channel_client):
    """subscribed by default; a change is stored, announced once, and read back."""
    app, client, tenant = channel_client
    spy = ConsentSpy()
    app_runtime(app).pm.register(spy)
    url = f"{BASE}/channels/email/consent"
    fresh = client.get(url, query_string={"user_id": "u 1/2"}, headers=tenant.headers).get_json()
    assert fresh == {
        "channel": "email",
        "user_id": "u 1/2",
        "status": "subscribed",
        "source": None,
        "updated_at": None,
    }
    changed = client.put(
        url, json={"user_id": "u 1/2", "status": "unsubscribed"}, headers=tenant.headers
    ).get_json()
    assert changed["status"] == "unsubscribed" and changed["changed"] is True
    assert changed["source"] and changed["updated_at"]
    again = client.put(
        url, json={"user_id": "u 1/2", "status": "unsubscribed"}, headers=tenant.headers
    ).get_json()
    assert again["changed"] is False
    assert [call[3] for call in spy.calls] == ["unsubscribed"]
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    refused = decide(client, tenant, config_id, user_id="u 1/2").get_json()
    assert refused["reason"] == "no_consent"
    assert_error(
        client.put(url, json={"user_id": "u", "status": "maybe"}, headers=tenant.headers), 422
    )
    assert_error(client.get(url, headers=tenant.headers), 422)


def test_a_decision_with_its_delivery(database_url, tmp_path, smtp_server):
    """GET /{id}/decisions/{decision_id}: propensities, outcomes and the delivery's status,
    attempts and message id; another config's or workspace's decision is 404."""
    smtp = smtp_server
    app = make_test_app(
        database_url,
        tmp_path,
        PUBLIC_URL="http://hpe.test",
        PLUGINS={"email": email_plugin_config(smtp.port)},
    )
    try:
        client, tenant = app.test_client(), new_tenant(app)
        config_id = create_config(client, tenant, [EMAIL_ACTION])
        decided = decide(
            client,
            tenant,
            config_id,
            deliver={"to": {"email": "ada@example.org"}, "variables": {"first_name": "Ada"}},
        ).get_json()
        url = f"{BASE}/{config_id}/decisions/{decided['decision_id']}"
        pending = client.get(url, headers=tenant.headers).get_json()
        assert pending["delivery"]["status"] == "pending"
        assert pending["delivery"]["attempts"] == 0
        app_runtime(app).jobs.run_pending_deliveries()
        smtp.wait_for(1)
        client.post(
            f"{BASE}/{config_id}/outcomes",
            headers=tenant.headers,
            json={"decision_id": decided["decision_id"], "type": "open"},
        )
        body = client.get(url, headers=tenant.headers).get_json()
        assert body["action_id"] == decided["action_id"] and body["channel"] == "email"
        assert body["propensities"][body["action_id"]] == pytest.approx(body["probability"])
        delivery = body["delivery"]
        assert delivery["status"] == "sent" and delivery["attempts"] == 1
        assert delivery["provider_id"] and delivery["sent_at"] and delivery["error"] is None
        assert [o["type"] for o in body["outcomes"]] == ["open"]
        undelivered = decide(client, tenant, config_id, user_id="u2").get_json()
        plain = client.get(
            f"{BASE}/{config_id}/decisions/{undelivered['decision_id']}", headers=tenant.headers
        ).get_json()
        assert plain["delivery"] is None and plain["outcomes"] == []
        other_config = create_config(client, tenant, [EMAIL_ACTION])
        assert_error(
            client.get(
                f"{BASE}/{other_config}/decisions/{decided['decision_id']}",
                headers=tenant.headers,
            ),
            404,
        )
        assert_error(client.get(url, headers=new_tenant(app, "other").headers), 404)
        assert_error(
            client.get(f"{BASE}/{config_id}/decisions/{uuid.uuid4()}", headers=tenant.headers),
            404,
        )
    finally:
        app_runtime(app).engine.dispose()


# --- SendGrid's signed event webhook ---------------------------------------------------


def _key_pair():
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public).decode()


def _signed(private, body: bytes, timestamp: str) -> dict:
    signature = private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def test_sendgrid_signed_webhook_is_verified_natively(channel_client):
    """A SendGrid-signed event array is accepted under the workspace's verification key;
    a tampered body, another timestamp, another key or no key configured: 401."""
    _app, client, tenant = channel_client
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    decision = decide(client, tenant, config_id).get_json()
    private, public = _key_pair()
    url = f"{BASE}/webhooks/email?workspace={tenant.id}"
    events = [
        {
            "event": "open",
            "decision_id": decision["decision_id"],
            "sg_event_id": "e1",
            "timestamp": int(time.time()),
        }
    ]
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    assert_error(client.post(url, data=body, headers=_signed(private, body, timestamp)), 401)
    put = client.put(
        f"{BASE}/channels/email/settings",
        headers=tenant.headers,
        json={"settings": {"sendgrid_verification_key": public}},
    )
    assert put.status_code == 200, put.get_json()
    accepted = client.post(url, data=body, headers=_signed(private, body, timestamp))
    assert accepted.status_code == 202, accepted.get_json()
    assert accepted.get_json()["accepted"] == 1
    tampered = body.replace(b"open", b"click")
    assert_error(client.post(url, data=tampered, headers=_signed(private, body, timestamp)), 401)
    headers = _signed(private, body, timestamp)
    headers["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(timestamp) + 1)
    assert_error(client.post(url, data=body, headers=headers), 401)
    stranger, _ = _key_pair()
    assert_error(client.post(url, data=body, headers=_signed(stranger, body, timestamp)), 401)
    # A genuine signed request replayed 11 minutes later (the signature covers the
    # timestamp, so it cannot be refreshed): refused.
    old = str(int(timestamp) - 11 * 60)
    assert_error(client.post(url, data=body, headers=_signed(private, body, old)), 401)
    nine_minutes_ago = str(int(timestamp) - 9 * 60)
    assert client.post(
        url, data=body, headers=_signed(private, body, nine_minutes_ago)
    ).status_code in (
        200,
        202,
    )
    bad_key = client.put(
        f"{BASE}/channels/email/settings",
        headers=tenant.headers,
        json={"settings": {"sendgrid_verification_key": "bm90IGEga2V5"}},
    )
    assert "sendgrid_verification_key" in assert_error(bad_key, 422)["errors"]
