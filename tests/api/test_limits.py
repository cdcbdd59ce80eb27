"""Limits on what a key may send (issue 14, defects 5 and 7).

Before: no rate limits at all, a publishable key could post a 67 MB decision body and
store a 22.7 MB context, and a revoked key kept working for up to 10 s in other processes.
"""

from __future__ import annotations

import time
import uuid

import pytest

from hpe_core.tenancy import workspaces
from tests.api.conftest import assert_error
from tests.conftest import BASE, make_test_app
from web.extensions import app_runtime

SETTINGS = {"actions": [{"id": "a"}, {"id": "b"}]}


class _Node:
    """An app of its own (an API process) with its client, on a shared database."""

    def __init__(self, database_url, tmp_path, **config):
        self.app = make_test_app(database_url, tmp_path, **config)
        self.client = self.app.test_client()

    def decide(self, headers, config_id, **body):
        return self.client.post(
            f"{BASE}/{config_id}/decisions",
            json={"user_id": "u", "channel": "email", **body},
            headers=headers,
        )

    def close(self):
        app_runtime(self.app).engine.dispose()
        backend = app_runtime(self.app).jobs
        if getattr(backend, "redis", None) is not None:
            backend.redis.close()


@pytest.fixture
def nodes(tmp_path):
    made = []

    def make(database_url, **config):
        node = _Node(database_url, tmp_path / f"node{len(made)}", **config)
        made.append(node)
        return node

    yield make
    for node in made:
        node.close()


def _tenant(app, workspace_id=None, count=1):
    """A workspace with ``count`` secret keys: (workspace id, [headers...])."""
    workspace_id = workspace_id or f"ws-{uuid.uuid4().hex[:8]}"
    with app_runtime(app).sessions() as session:
        workspaces.create_workspace(session, workspace_id)
        keys = [workspaces.create_key(session, workspace_id)[1] for _ in range(count)]
        session.commit()
    return workspace_id, [{"Authorization": f"Bearer {key}"} for key in keys]


def _config(node, headers) -> str:
    response = node.client.post(
        f"{BASE}/", json={"name": "limits", "settings": SETTINGS}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_key_over_its_rate_is_429_with_retry_after(database_url, nodes):
    """5 a minute per key: the 6th call is 429 with Retry-After; another key still works."""
    node = nodes(database_url, RATE_LIMIT_PER_KEY="6/minute", RATE_LIMIT_PER_WORKSPACE="")
    _workspace, (first, second) = _tenant(node.app, count=2)
    config_id = _config(node, first)  # the first call of the minute
    for _ in range(5):
        assert node.decide(first, config_id).status_code == 201
    response = node.decide(first, config_id)
    error = assert_error(response, 429)
    assert "API key" in error["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert node.decide(second, config_id).status_code == 201


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_workspace_over_its_rate_is_429_whatever_the_key(database_url, nodes):
    """The workspace's keys share its limit."""
    node = nodes(database_url, RATE_LIMIT_PER_KEY="", RATE_LIMIT_PER_WORKSPACE="7/minute")
    _workspace, (first, second) = _tenant(node.app, count=2)
    config_id = _config(node, first)
    for headers in (first, second) * 3:
        assert node.decide(headers, config_id).status_code == 201
    error = assert_error(node.decide(second, config_id), 429)
    assert "workspace" in error["message"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_workspace_can_have_limits_of_its_own(database_url, nodes):
    """WORKSPACE_LIMITS lifts one workspace's limit; the others keep the default."""
    node = nodes(
        database_url,
        RATE_LIMIT_PER_KEY="3/minute",
        RATE_LIMIT_PER_WORKSPACE="",
        WORKSPACE_LIMITS={"big-shop": {"per_key": "100/minute"}},
    )
    _big, (big,) = _tenant(node.app, "big-shop")
    _small, (small,) = _tenant(node.app)
    big_config, small_config = _config(node, big), _config(node, small)
    assert all(node.decide(big, big_config).status_code == 201 for _ in range(10))
    assert [node.decide(small, small_config).status_code for _ in range(3)] == [201, 201, 429]


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.redis
def test_with_redis_every_process_counts_against_one_limit(database_url, redis_url, nodes):
    """Two API processes on one Redis: 4 calls through each of a 6-a-minute key, 2 refused."""
    config = {"REDIS_URL": redis_url, "RATE_LIMIT_PER_KEY": "6/minute"}
    one, two = nodes(database_url, **config), nodes(database_url, **config)
    _workspace, (headers,) = _tenant(one.app)
    config_id = _config(one, headers)
    answers = [node.decide(headers, config_id).status_code for node in (one, two) * 3]
    assert answers.count(201) == 5 and answers.count(429) == 1, answers


@pytest.mark.parametrize("backend", ["sqlite"])
def test_with_redis_down_limits_count_in_memory_and_nothing_fails(database_url, nodes):
    """Redis unreachable: requests are served, and the limit still holds per process."""
    from tests.worker.conftest import free_port

    node = nodes(
        database_url,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        RATE_LIMIT_PER_KEY="4/minute",
    )
    _workspace, (headers,) = _tenant(node.app)
    config_id = _config(node, headers)
    answers = [node.decide(headers, config_id).status_code for _ in range(4)]
    assert answers == [201, 201, 201, 429]


def test_a_decision_body_over_its_limit_is_413_before_it_is_read(app, client, tenant):
    """64 KiB for a decision, 1 MiB for outcomes: 413 in the JSON shape."""
    config_id = _config(_Wrap(client), tenant.headers)
    big = {"user_id": "u", "channel": "email", "context": {"blob": "x" * 70_000}}
    response = client.post(f"{BASE}/{config_id}/decisions", json=big, headers=tenant.headers)
    error = assert_error(response, 413)
    assert "65536" in error["message"]
    outcomes = {"outcomes": [{"user_id": "u" * 200, "type": "click"}] * 6000}
    response = client.post(f"{BASE}/{config_id}/outcomes", json=outcomes, headers=tenant.headers)
    assert_error(response, 413)


class _Wrap:
    def __init__(self, client):
        self.client = client


@pytest.mark.parametrize(
    "context, problem",
    [
        ({"blob": "x" * 20_000}, "bytes"),
        ({f"k{n}": n for n in range(600)}, "keys"),
        ({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}, "levels"),
    ],
)
def test_a_context_over_its_limits_is_422(client, tenant, context, problem):
    """Size, key count and depth each give a 422 under context, saying which limit."""
    config_id = _config(_Wrap(client), tenant.headers)
    response = client.post(
        f"{BASE}/{config_id}/decisions",
        json={"user_id": "u", "channel": "email", "context": context},
        headers=tenant.headers,
    )
    error = assert_error(response, 422)
    assert problem in error["errors"]["context"][0]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_key_revoked_elsewhere_stops_working_here_within_a_second(database_url, nodes):
    """Two processes trusting verified keys for 10 s: a revocation through one reaches the
    other within about a second (REVOCATION_CHECK_SECONDS), not after 10 s."""
    one = nodes(database_url, KEY_CACHE_SECONDS=10)
    two = nodes(database_url, KEY_CACHE_SECONDS=10)
    _workspace, (headers,) = _tenant(one.app)
    config_id = _config(one, headers)
    assert two.decide(headers, config_id).status_code == 201  # verified and cached by two
    prefix = headers["Authorization"].split()[1][:15]
    with app_runtime(one.app).sessions() as session:
        workspaces.revoke_key(session, prefix)
        session.commit()
    revoked_at = time.monotonic()
    while two.decide(headers, config_id).status_code != 401:
        assert time.monotonic() - revoked_at < 1.5, "still accepted 1.5 s after revocation"
        time.sleep(0.05)
    assert time.monotonic() - revoked_at < 1.5
