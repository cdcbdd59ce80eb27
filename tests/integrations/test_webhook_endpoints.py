"""``/webhook-endpoints``: create (secret shown once), list, get, update, rotate, delete,
the attempt log, and what is refused; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_error
from tests.integrations.conftest import ENDPOINTS, create_endpoint


class TestWebhookEndpoints:
    def test_create_shows_the_secret_once(self, client, tenant):
        """201 with a whsec_ secret; GET and the list never show it again."""
        created = create_endpoint(
            client, tenant, "https://hooks.example.com/hpe", ["decision.created", "guardrail.*"]
        )
        assert created["secret"].startswith("whsec_")
        assert created["secret_hint"] == created["secret"][:12]
        assert created["status"] == "enabled"
        assert created["event_types"] == ["decision.created", "guardrail.*"]
        fetched = client.get(f"{ENDPOINTS}/{created['id']}", headers=tenant.headers).get_json()
        assert "secret" not in fetched
        listed = client.get(ENDPOINTS, headers=tenant.headers).get_json()
        assert [item["id"] for item in listed] == [created["id"]]
        assert "secret" not in listed[0]

    def test_update_disable_enable_and_delete(self, client, tenant):
        """PATCH changes fields and disables/enables; DELETE removes it (then 404)."""
        created = create_endpoint(client, tenant, "https://a.example/h", ["model.updated"])
        url = f"{ENDPOINTS}/{created['id']}"
        patched = client.patch(
            url,
            json={"event_types": ["*"], "enabled": False, "description": "BI"},
            headers=tenant.headers,
        ).get_json()
        assert patched["event_types"] == ["*"]
        assert patched["status"] == "disabled"
        assert patched["disabled_reason"] == "Disabled through the API."
        enabled = client.patch(url, json={"enabled": True}, headers=tenant.headers).get_json()
        assert enabled["status"] == "enabled" and enabled["disabled_reason"] is None
        assert client.delete(url, headers=tenant.headers).status_code == 204
        assert_error(client.get(url, headers=tenant.headers), 404)

    def test_rotate_secret_shows_a_new_one(self, client, tenant):
        """rotate-secret answers a new secret, once."""
        created = create_endpoint(client, tenant, "https://a.example/h", ["model.updated"])
        rotated = client.post(
            f"{ENDPOINTS}/{created['id']}/rotate-secret", headers=tenant.headers
        ).get_json()
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"url": "ftp://x.example/h", "event_types": ["model.updated"]}, "url"),
            ({"url": "http://hooks.example.com/h", "event_types": ["model.updated"]}, "url"),
            ({"url": "https://u:p@x.example/h", "event_types": ["model.updated"]}, "url"),
            ({"url": "https://x.example/h", "event_types": ["model.exploded"]}, "event_types"),
            ({"url": "https://x.example/h", "event_types": []}, "event_types"),
            ({"url": "https://x.example/h"}, "event_types"),
        ],
    )
    def test_bad_input_is_422(self, client, tenant, body, field):
        """A bad URL (not https, credentials) or unknown event types: 422 on the field."""
        response = client.post(ENDPOINTS, json=body, headers=tenant.headers)
        assert field in assert_error(response, 422)["errors"]

    def test_another_workspace_sees_404(self, client, tenant, make_tenant):
        """Another workspace's endpoint, and its attempts, are 404."""
        created = create_endpoint(client, tenant, "https://a.example/h", ["model.updated"])
        other = make_tenant("other")
        for path in ("", "/attempts"):
            assert_error(
                client.get(f"{ENDPOINTS}/{created['id']}{path}", headers=other.headers), 404
            )
        assert_error(
            client.patch(
                f"{ENDPOINTS}/{created['id']}", json={"enabled": False}, headers=other.headers
            ),
            404,
        )
        assert client.get(ENDPOINTS, headers=other.headers).get_json() == []

    def test_publishable_key_is_refused(self, client, make_tenant):
        """Endpoints are a secret-key resource: 403 for a publishable key, 401 without."""
        publishable = make_tenant("acme", kind="publishable")
        assert_error(client.get(ENDPOINTS, headers=publishable.headers), 403)
        assert_error(client.get(ENDPOINTS), 401)
