"""Auth and workspace isolation: the endpoint x workspace matrix of DESIGN.md §5.

A key belongs to one workspace. Another workspace's configuration is a 404 on every
endpoint (indistinguishable from a missing one) and is never changed; a missing, malformed,
unknown or revoked key is a 401; a publishable key cannot use the configuration API (403).
"""

from __future__ import annotations

import secrets
import uuid

import pytest

from tests.api.conftest import MINIMAL_SETTINGS, assert_error
from tests.conftest import BASE
from web.extensions import app_runtime

#: (method, path template, JSON body) for every endpoint that takes a configuration id.
BY_ID = [
    ("GET", "/{id}", None),
    ("PATCH", "/{id}", {"name": "hijacked", "status": "PAUSED"}),
    ("PATCH", "/{id}", {"settings": {"holdout": {"percent": 50}}}),
    ("DELETE", "/{id}", None),
    ("GET", "/{id}/metrics", None),
    ("GET", "/{id}/metrics?from=2026-01-01&to=2026-01-31", None),
    ("GET", "/{id}/activities", None),
    ("GET", "/{id}/activities?type=config.*", None),
]
#: Endpoints without an id.
COLLECTION = [
    ("GET", "/", None),
    ("GET", "/?status=ACTIVE", None),
    ("POST", "/", {"name": "new", "settings": MINIMAL_SETTINGS}),
    ("GET", "/channels", None),
]
EVERY_ENDPOINT = COLLECTION + BY_ID


def _call(client, method, path, body, headers, config_id=None):
    url = BASE + path.replace("{id}", str(config_id or uuid.uuid4()))
    return client.open(url, method=method, json=body, headers=headers)


@pytest.fixture
def owner(make_tenant):
    return make_tenant("owner")


@pytest.fixture
def intruder(make_tenant):
    return make_tenant("intruder")


@pytest.fixture
def owned_config(client, owner):
    """A configuration of the owner's workspace, with one update in its history."""
    created = client.post(
        f"{BASE}/", json={"name": "Owned", "settings": MINIMAL_SETTINGS}, headers=owner.headers
    ).get_json()
    client.patch(f"{BASE}/{created['id']}", json={"name": "Owned v2"}, headers=owner.headers)
    return client.get(f"{BASE}/{created['id']}", headers=owner.headers).get_json()


def _snapshot(client, owner, config_id):
    config = client.get(f"{BASE}/{config_id}", headers=owner.headers).get_json()
    log = client.get(f"{BASE}/{config_id}/activities", headers=owner.headers).get_json()
    return config, log


def test_another_workspaces_config_is_404_and_untouched(
    client, owner, intruder, owned_config, row_counts, subtests
):
    """On every endpoint another workspace's id answers 404 like a missing id, changing nothing."""
    before, counts = _snapshot(client, owner, owned_config["id"]), row_counts()
    for method, path, body in BY_ID:
        with subtests.test(msg=f"{method} {path}", body=body):
            missing_id = str(uuid.uuid4())
            foreign = _call(client, method, path, body, intruder.headers, owned_config["id"])
            missing = _call(client, method, path, body, intruder.headers, missing_id)
            foreign_body = assert_error(foreign, 404)
            missing_body = assert_error(missing, 404)
            # Nothing tells "exists elsewhere" from "does not exist" but the id in the message.
            foreign_body["message"] = foreign_body["message"].replace(owned_config["id"], "<id>")
            missing_body["message"] = missing_body["message"].replace(missing_id, "<id>")
            assert foreign_body == missing_body
            assert _snapshot(client, owner, owned_config["id"]) == before
            assert row_counts() == counts


def test_lists_only_show_the_callers_workspace(client, owner, intruder, owned_config):
    """GET / never lists another workspace's configurations, whatever the filter."""
    mine = client.post(
        f"{BASE}/", json={"name": "Mine", "settings": MINIMAL_SETTINGS}, headers=intruder.headers
    ).get_json()
    for query in ("", "?status=ACTIVE", "?page_size=100"):
        listed = client.get(f"{BASE}/{query}", headers=intruder.headers).get_json()
        assert [c["id"] for c in listed] == [mine["id"]]
    owner_list = client.get(f"{BASE}/", headers=owner.headers).get_json()
    assert [c["id"] for c in owner_list] == [owned_config["id"]]


def test_same_workspace_keys_share_configs(client, make_tenant, owner, owned_config):
    """A second key of the same workspace sees the workspace's configurations."""
    colleague = make_tenant("owner")
    assert colleague.key != owner.key
    response = client.get(f"{BASE}/{owned_config['id']}", headers=colleague.headers)
    assert response.status_code == 200


# --- 401: no usable key ---------------------------------------------------------------


def _bad_headers(real_key: str) -> dict[str, dict]:
    return {
        "missing": {},
        "empty": {"Authorization": ""},
        "scheme only": {"Authorization": "Bearer"},
        "blank token": {"Authorization": "Bearer    "},
        "basic auth": {"Authorization": "Basic dXNlcjpwYXNz"},
        "no scheme": {"Authorization": real_key},
        "token scheme": {"Authorization": f"Token {real_key}"},
        "too short": {"Authorization": "Bearer hpe_sk_abc"},
        "not an hpe key": {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"},
        "unknown key": {"Authorization": f"Bearer hpe_sk_{secrets.token_urlsafe(32)}"},
        "right prefix, wrong secret": {
            "Authorization": f"Bearer {real_key[:20]}{secrets.token_urlsafe(24)}"
        },
        "truncated key": {"Authorization": f"Bearer {real_key[:-1]}"},
        "key plus junk": {"Authorization": f"Bearer {real_key}x"},
    }


def test_every_endpoint_rejects_bad_keys_with_401(
    client, owner, owned_config, row_counts, subtests
):
    """Missing, malformed and unknown keys get 401 + WWW-Authenticate anywhere, writing nothing."""
    counts = row_counts()
    for method, path, body in EVERY_ENDPOINT:
        for name, headers in _bad_headers(owner.key).items():
            with subtests.test(msg=f"{method} {path} with {name}"):
                response = _call(client, method, path, body, headers, owned_config["id"])
                assert_error(response, 401)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert row_counts() == counts


def test_every_endpoint_rejects_a_revoked_key_with_401(
    app, client, owner, intruder, owned_config, make_tenant, row_counts, subtests
):
    """A revoked key is refused everywhere; other keys, in any workspace, keep working."""
    from hpe_core.tenancy import workspaces

    spare = make_tenant("owner")
    session = app_runtime(app).sessions()
    workspaces.revoke_key(session, owner.key[:15])
    session.commit()
    session.close()
    counts = row_counts()
    for method, path, body in EVERY_ENDPOINT:
        with subtests.test(msg=f"{method} {path}"):
            response = _call(client, method, path, body, owner.headers, owned_config["id"])
            assert "revoked" in assert_error(response, 401)["message"].lower()
    assert row_counts() == counts
    assert client.get(f"{BASE}/{owned_config['id']}", headers=spare.headers).status_code == 200
    assert client.get(f"{BASE}/", headers=intruder.headers).status_code == 200


def test_the_scheme_is_case_insensitive(client, owner):
    """'bearer' and 'BEARER' are the same scheme as 'Bearer' (RFC 7235)."""
    for scheme in ("bearer", "BEARER"):
        headers = {"Authorization": f"{scheme} {owner.key}"}
        assert client.get(f"{BASE}/", headers=headers).status_code == 200


# --- 403: publishable keys ------------------------------------------------------------


def test_a_publishable_key_cannot_use_the_config_api(
    client, make_tenant, owned_config, row_counts, subtests
):
    """A publishable key of the same workspace gets 403 on every configuration endpoint."""
    publishable = make_tenant("owner", kind="publishable")
    assert publishable.key.startswith("hpe_pk_")
    counts = row_counts()
    for method, path, body in EVERY_ENDPOINT:
        with subtests.test(msg=f"{method} {path}"):
            response = _call(client, method, path, body, publishable.headers, owned_config["id"])
            assert "publishable" in assert_error(response, 403)["message"].lower()
    assert row_counts() == counts


# --- every route the app serves -------------------------------------------------------


def _api_routes(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(BASE) or "/webhooks/" in rule.rule:
            continue  # webhooks are HMAC-signed by the channel, not API-key authenticated
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.rule


def _fill(rule: str, config_id: str) -> str:
    path = rule.replace("<uuid:config_id>", config_id)
    while "<" in path:  # any other id in the path: a random one
        start, end = path.index("<"), path.index(">")
        path = path[:start] + str(uuid.uuid4()) + path[end + 1 :]
    return path


def test_every_route_requires_a_key(app, client, owned_config, subtests):
    """Every route under the API base (webhooks aside) answers 401 without a key."""
    routes = list(_api_routes(app))
    assert len(routes) >= 8
    for method, rule in routes:
        with subtests.test(msg=f"{method} {rule}"):
            response = client.open(_fill(rule, owned_config["id"]), method=method, json={})
            assert_error(response, 401)


def test_no_route_serves_another_workspaces_config(
    app, client, owner, intruder, owned_config, row_counts, subtests
):
    """Every route taking a config id refuses another workspace's id and changes nothing."""
    before, counts = _snapshot(client, owner, owned_config["id"]), row_counts()
    for method, rule in _api_routes(app):
        if "<uuid:config_id>" not in rule:
            continue
        with subtests.test(msg=f"{method} {rule}"):
            response = client.open(
                _fill(rule, owned_config["id"]), method=method, json={}, headers=intruder.headers
            )
            assert 400 <= response.status_code < 500
            assert_error(response, response.status_code)
    assert _snapshot(client, owner, owned_config["id"]) == before
    assert row_counts() == counts
