"""Tenant isolation, generated from the OpenAPI document (issue 14): every operation ×
another workspace's ids × each key kind.

For each operation the document lists, an intruder (another workspace, with a secret and
then a publishable key) calls it with the owner's ids, and again with ids that exist
nowhere. The two answers must be indistinguishable (same status: a 404 never tells that
the object exists), never a success, never a 5xx; operations without ids must not show
the owner's objects; and the owner's data must be unchanged afterwards. A new endpoint
is in the matrix by being in the document; a new kind of id in a path fails the test
until the owner has an object of that kind here.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.store.models import Decision, Outcome
from tests.conftest import BASE, create_tenant
from web.extensions import app_runtime

SETTINGS = {"actions": [{"id": "a"}, {"id": "b"}], "reward": {"wait_seconds": 3600}}
#: Path parameters that name the caller's own scope, not an object of the owner.
NOT_OWNED = {"channel": "email"}


def _bodies(owner_ids: dict) -> dict[tuple[str, str], object]:
    """A valid body per (method, path suffix): the ownership check must be what refuses."""
    return {
        ("PATCH", "/{config_id}"): {"name": "hijacked", "status": "PAUSED"},
        ("POST", "/{config_id}/decisions"): {"user_id": "u", "channel": "email"},
        ("POST", "/{config_id}/decisions/batch"): {
            "requests": [{"user_id": "u", "channel": "email"}]
        },
        ("POST", "/{config_id}/outcomes"): {
            "decision_id": owner_ids["decision_id"],
            "type": "click",
        },
        ("POST", "/{config_id}/model/rollback"): {"version": 1},
        ("PUT", "/{config_id}/audiences/schedule"): {"channel": "ads", "every_hours": 24},
        ("POST", "/{config_id}/audiences/export"): {"channel": "ads"},
        ("PATCH", "/webhook-endpoints/{endpoint_id}"): {"description": "hijacked"},
    }


def _operations(client) -> list[tuple[str, str, dict]]:
    document = client.get("/api/v1/openapi.json").get_json()
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            if operation.get("security") == []:
                continue  # no API key (health; webhooks are signed per channel instead)
            found.append((method.upper(), path, operation))
    return found


def _blanked(response, values: dict, names: list[str]) -> str:
    text = response.get_data(as_text=True)
    for name in names:
        text = text.replace(values[name], "<id>")
    return text


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


@pytest.fixture
def owner(app, client):
    tenant = create_tenant(app, "owner")
    config = client.post(
        f"{BASE}/", json={"name": "Owned", "settings": SETTINGS}, headers=tenant.headers
    ).get_json()
    decision = client.post(
        f"{BASE}/{config['id']}/decisions",
        json={"user_id": "owner-user", "channel": "email"},
        headers=tenant.headers,
    ).get_json()
    client.post(
        f"{BASE}/{config['id']}/outcomes",
        json={"decision_id": decision["decision_id"], "type": "click"},
        headers=tenant.headers,
    )
    endpoint = client.post(
        f"{BASE}/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hook", "events": ["decision.created"]},
        headers=tenant.headers,
    ).get_json()
    ids = {
        "config_id": config["id"],
        "decision_id": decision["decision_id"],
        "endpoint_id": endpoint.get("id", str(uuid.uuid4())),
        "recommendation_id": str(uuid.uuid4()),  # none exists: the config id decides
    }
    return tenant, ids


def _snapshot(app, client, tenant, ids) -> tuple:
    config = client.get(f"{BASE}/{ids['config_id']}", headers=tenant.headers).get_json()
    with app_runtime(app).sessions() as session:
        counts = tuple(
            session.scalar(
                sa.select(sa.func.count()).where(model.config_id == uuid.UUID(ids["config_id"]))
            )
            for model in (Decision, Outcome)
        )
    return config, counts


@pytest.mark.parametrize("kind", ["secret", "publishable"])
def test_every_operation_refuses_another_workspaces_ids_alike(app, client, owner, kind, subtests):
    """Owner's ids vs ids that exist nowhere: same answer, never a success, never a 5xx."""
    tenant, ids = owner
    intruder = create_tenant(app, "intruder", kind=kind)
    before = _snapshot(app, client, tenant, ids)
    bodies = _bodies(ids)
    operations = _operations(client)
    assert len(operations) > 20  # the document was read
    for method, path, _operation in operations:
        names = _path_params(path)
        owned = [name for name in names if name not in NOT_OWNED]
        unknown = [name for name in owned if name not in ids]
        assert not unknown, f"{method} {path}: give the owner an object for {unknown}"
        suffix = path.removeprefix(BASE)
        body = bodies.get((method, suffix), {} if method in ("POST", "PUT", "PATCH") else None)
        with subtests.test(msg=f"{method} {path}", kind=kind):
            answers, used = [], []
            for values in (ids, {name: str(uuid.uuid4()) for name in owned}):
                used.append(values)
                url = path
                for name in names:
                    url = url.replace("{" + name + "}", NOT_OWNED.get(name) or values[name])
                if suffix.endswith("/imports"):
                    response = client.post(
                        url,
                        data=b'{"user_id": "u"}\n',
                        headers={**intruder.headers, "Content-Type": "application/x-ndjson"},
                    )
                else:
                    response = client.open(url, method=method, json=body, headers=intruder.headers)
                assert response.status_code < 500, (url, response.get_data(as_text=True)[:300])
                answers.append(response)
            foreign, missing = answers
            text = foreign.get_data(as_text=True)
            if owned:
                assert foreign.status_code >= 400, (method, path, text[:300])
                assert foreign.status_code == missing.status_code, (method, path, text[:300])
                # The same words, once the ids each call sent are blanked out.
                assert _blanked(foreign, used[0], owned) == _blanked(missing, used[1], owned)
            given = {ids[name] for name in owned}
            for value in set(ids.values()) - given:
                assert value not in text, (method, path, "shows an owner's id it was not given")
            assert "owner-user" not in text
    assert _snapshot(app, client, tenant, ids) == before


def test_the_matrix_covers_every_operation_of_the_document(client):
    """Each operation with an API key is in the matrix (nothing is listed by hand)."""
    operations = _operations(client)
    with_ids = [path for _m, path, _o in operations if "{config_id}" in path]
    assert len(with_ids) >= 15
    assert json.dumps(sorted({path for _m, path, _o in operations})).count("{") >= 15
