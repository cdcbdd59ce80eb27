"""Outgoing webhooks follow the outbound policy (hpe_core.deliver.outbound): a workspace
admin chooses the endpoint URL, so without it a tenant could make HPE post to the cloud
metadata service or an admin port on a private network (SSRF). Registration refuses what
it can see then; every delivery checks again (DNS and the operator's setting can change
after registration) and never follows a redirect. Real receivers on loopback."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_error
from tests.conftest import create_tenant, make_test_app
from tests.integrations.conftest import (
    ENDPOINTS,
    LOOPBACK,
    create_config,
    create_endpoint,
    run_jobs,
)
from tests.receivers import receiving
from web.extensions import app_runtime

#: What the policy's refusal of an address says (the operator's setting to change).
POLICY_REASON = "HPE_OUTBOUND_ALLOWED_NETWORKS"


def _post(client, tenant, url: str):
    return client.post(
        ENDPOINTS, json={"url": url, "event_types": ["config.*"]}, headers=tenant.headers
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://10.0.0.5/",
        "https://user:pass@hooks.example.com/h",
        "http://hooks.example.com/h",  # plain http outside loopback
    ],
)
def test_unsafe_urls_are_refused_at_registration(client, tenant, url):
    """422 in the error shape, naming url; nothing is stored."""
    body = assert_error(_post(client, tenant, url), 422)
    assert list(body["errors"]) == ["url"]
    assert client.get(ENDPOINTS, headers=tenant.headers).get_json() == []


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/",
        "https://[::ffff:169.254.169.254]/",  # IPv4-mapped IPv6
        "http://localhost:9/h",  # a name that resolves to loopback
        "http://127.0.0.1:9/h",  # http to loopback is fine; the address is not
    ],
)
def test_addresses_the_policy_refuses_are_refused_at_registration(client, tenant, url):
    """The scheme is acceptable: the host's addresses are what the policy refuses, and
    the message says which setting would allow them."""
    body = assert_error(_post(client, tenant, url), 422)
    [problem] = body["errors"]["url"]
    assert POLICY_REASON in problem


def test_a_patch_to_an_unsafe_url_is_refused(client, tenant):
    """PATCH checks a new URL as creation does, and leaves the endpoint as it was."""
    created = create_endpoint(client, tenant, "https://hooks.example.com/h", ["config.*"])
    response = client.patch(
        f"{ENDPOINTS}/{created['id']}",
        json={"url": "https://169.254.169.254/latest/meta-data/"},
        headers=tenant.headers,
    )
    assert POLICY_REASON in assert_error(response, 422)["errors"]["url"][0]
    fetched = client.get(f"{ENDPOINTS}/{created['id']}", headers=tenant.headers).get_json()
    assert fetched["url"] == "https://hooks.example.com/h"


def test_allowed_networks_and_plain_http_are_the_operators_to_open(sqlite_url, tmp_path):
    """OUTBOUND_ALLOWED_NETWORKS opens a network; WEBHOOK_ALLOW_HTTP opens plain http but
    no address. A name that does not resolve is accepted: each delivery resolves it."""
    app = make_test_app(
        sqlite_url,
        tmp_path,
        OUTBOUND_ALLOWED_NETWORKS=["10.0.0.0/8"],
        WEBHOOK_ALLOW_HTTP=True,
    )
    try:
        client = app.test_client()
        tenant = create_tenant(app, "acme")
        create_endpoint(client, tenant, "http://10.0.0.5/h", ["config.*"])
        create_endpoint(client, tenant, "http://no-such-host.invalid/h", ["config.*"])
        body = assert_error(_post(client, tenant, "http://169.254.169.254/latest/"), 422)
        assert POLICY_REASON in body["errors"]["url"][0]
    finally:
        app_runtime(app).engine.dispose()


def test_an_address_refused_at_delivery_is_a_failed_attempt(sqlite_url, tmp_path):
    """Registered while the operator allowed loopback; HPE then restarts without that
    setting. The delivery is refused before any byte is sent, and the attempt log says
    why; the message waits for a retry (the operator may allow it again)."""
    allowed = make_test_app(sqlite_url, tmp_path, OUTBOUND_ALLOWED_NETWORKS=LOOPBACK)
    with receiving() as receiver:
        try:
            tenant = create_tenant(allowed, "acme")
            endpoint = create_endpoint(
                allowed.test_client(), tenant, receiver.url, ["config.created"]
            )
        finally:
            app_runtime(allowed).engine.dispose()
        app = make_test_app(sqlite_url, tmp_path)  # the same database, the default policy
        try:
            client = app.test_client()
            create_config(client, tenant)
            assert run_jobs(app) == 1
            [attempt] = client.get(
                f"{ENDPOINTS}/{endpoint['id']}/attempts", headers=tenant.headers
            ).get_json()
            fetched = client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=tenant.headers)
        finally:
            app_runtime(app).engine.dispose()
        assert receiver.requests == []
    assert attempt["status_code"] is None and attempt["response"] is None
    assert attempt["error"].startswith("Refused by the outbound policy")
    assert "127.0.0.1" in attempt["error"] and POLICY_REASON in attempt["error"]
    assert fetched.get_json()["failing_since"] is not None
    assert fetched.get_json()["status"] == "enabled"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed(sqlite_url, tmp_path, status):
    """The endpoint answers a redirect to another local receiver: that one never gets the
    signed message; the attempt is a failure with the 3xx in its log."""
    app = make_test_app(sqlite_url, tmp_path, OUTBOUND_ALLOWED_NETWORKS=LOOPBACK)
    try:
        client = app.test_client()
        tenant = create_tenant(app, "acme")
        with receiving() as other, receiving([status], {"Location": other.url}) as first:
            endpoint = create_endpoint(client, tenant, first.url, ["config.created"])
            create_config(client, tenant)
            assert run_jobs(app) == 1
            assert len(first.requests) == 1
            assert other.requests == []
        [attempt] = client.get(
            f"{ENDPOINTS}/{endpoint['id']}/attempts", headers=tenant.headers
        ).get_json()
    finally:
        app_runtime(app).engine.dispose()
    assert attempt["status_code"] == status
    assert attempt["response"] == f"answered {status}"
