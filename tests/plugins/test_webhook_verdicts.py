"""Webhooks a plugin verifies (``hpe_verify_webhook``) are de-duplicated with a timestamp
(issue 15, also seen): they were de-duplicated on the body alone, so the same signed body
replayed once its receipt was purged counted again, and two genuine events with one body
were merged. A plugin now returns the time its provider signed the request: HPE applies
its own 5-minute tolerance and de-duplicates on time and body."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from hpe_core import hookimpl
from hpe_core.deliver import webhooks
from tests.conftest import BASE
from tests.connectors.conftest import EMAIL_ACTION, create_config, decide

SIGNED_AT = "x-provider-timestamp"


class Provider:
    """A provider whose signature covers a timestamp header (as SendGrid's, Stripe's...).
    The check itself is elided: a request with the header is "signed"."""

    @hookimpl
    def hpe_verify_webhook(self, request, connector):
        stamp = request.headers.get(SIGNED_AT)
        if stamp is None:
            return None
        return int(stamp)


@pytest.fixture
def provider_app(kit_app):
    app, client, tenant = kit_app(Provider())
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    return app, client, tenant, config_id


def _post(client, tenant, body, signed_at: int):
    return client.post(
        f"{BASE}/webhooks/email?workspace={tenant.id}",
        json=body,
        headers={SIGNED_AT: str(signed_at)},
    )


def test_a_replay_of_a_plugin_verified_webhook_counts_once(provider_app):
    """The same signed request twice: the second is a duplicate."""
    _app, client, tenant, config_id = provider_app
    decision_id = decide(client, tenant, config_id).get_json()["decision_id"]
    body = {"events": [{"type": "open", "decision_id": decision_id}]}
    now = int(time.time())
    assert _post(client, tenant, body, now).get_json()["accepted"] == 1
    assert _post(client, tenant, body, now).get_json()["duplicate"] is True


def test_a_stale_plugin_verified_webhook_is_refused(provider_app):
    """Signed outside the tolerance (an old request replayed after its receipt is gone):
    401, nothing stored."""
    _app, client, tenant, config_id = provider_app
    decision_id = decide(client, tenant, config_id).get_json()["decision_id"]
    body = {"events": [{"type": "open", "decision_id": decision_id}]}
    stale = int(time.time()) - webhooks.TOLERANCE_SECONDS - 60
    answer = _post(client, tenant, body, stale)
    assert answer.status_code == 401
    assert "tolerance" in answer.get_json()["message"]


def test_two_signed_requests_with_one_body_are_two_requests(provider_app):
    """Genuine events that happen to share a body, signed at different times, both count
    (conversions of one user, identified by the provider's event id each time)."""
    _app, client, tenant, config_id = provider_app
    body = {"events": [{"type": "signup", "config_id": config_id, "user_id": "u1"}]}
    now = int(time.time())
    first = _post(client, tenant, body, now - 30).get_json()
    second = _post(client, tenant, body, now).get_json()
    assert first["duplicate"] is False and second["duplicate"] is False


def test_a_plugin_may_answer_an_aware_datetime(kit_app):
    """The signing time may be a timezone-aware datetime."""

    class Plugin:
        @hookimpl
        def hpe_verify_webhook(self, request, connector):
            return dt.datetime.now(dt.UTC) if "x-signed" in request.headers else None

    _app, client, tenant = kit_app(Plugin())
    answer = client.post(
        f"{BASE}/webhooks/email?workspace={tenant.id}",
        json={"events": [{"type": "open", "decision_id": str(uuid.uuid4())}]},
        headers={"X-Signed": "1"},
    )
    assert answer.status_code == 202, answer.get_json()
