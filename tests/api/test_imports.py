"""POST /{id}/imports (DESIGN.md §5): NDJSON logged decisions, bad lines, learning."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.store.models import Decision, Outcome
from tests.api.conftest import assert_error
from tests.conftest import BASE
from web.extensions import app_runtime
from worker.queues import sweep

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

SETTINGS = {"actions": [{"id": "a"}, {"id": "b"}, {"id": "mail", "channels": ["email"]}]}
NDJSON = "application/x-ndjson"


def _line(**fields) -> str:
    line = {
        "user_id": "u1",
        "channel": "email",
        "timestamp": "2026-03-01T09:00:00Z",
        "context": {"segment": "new"},
        "action_id": "a",
        "probability": 0.5,
        "reward": 1,
    }
    line.update(fields)
    return json.dumps({k: v for k, v in line.items() if v is not ...})


def _import(client, tenant, config_id, body, content_type=NDJSON):
    data = body.encode() if isinstance(body, str) else body
    return client.post(
        f"{BASE}/{config_id}/imports",
        data=data,
        headers={**tenant.headers, "Content-Type": content_type},
    )


def _imported(client, tenant, config_id, body) -> dict:
    response = _import(client, tenant, config_id, body)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def _rows(app, model, config_id) -> list:
    session = app_runtime(app).sessions()
    try:
        return list(
            session.scalars(sa.select(model).where(model.config_id == uuid.UUID(config_id)))
        )
    finally:
        session.close()


def _sweep(app) -> None:
    sweep(app_runtime(app).jobs, app_runtime(app).sessions)
    app_runtime(app).jobs.run_pending()


def test_good_lines_are_imported_and_bad_lines_rejected_with_their_number(
    app, client, tenant, create_config
):
    """202 {import_id, accepted, rejected: [{line, error}]} with exact line numbers."""
    config = create_config(settings=SETTINGS)
    lines = [
        _line(user_id="good-reward"),  # 1
        '{"user_id": "broken", ',  # 2: not JSON
        _line(action_id="no-such-offer"),  # 3
        _line(probability=0),  # 4
        _line(
            user_id="good-outcomes",
            reward=...,
            outcomes=[{"type": "click"}, {"type": "conversion", "value": 20}],
        ),  # 5
        "",  # 6: blank lines are skipped, not rejected
        _line(user_id="good-web", channel="web", action_id="b", reward=0),  # 7
        "[1, 2]",  # 8
        _line(user_id=...),  # 9
        _line(outcomes=[{"type": "click"}]),  # 10: both reward and outcomes
        _line(timestamp="2026-03-01T09:00:00"),  # 11: no offset
        _line(
            channel="web", action_id="mail", actions=["mail", "a"]
        ),  # 12: an explicit eligible set
    ]
    body = _imported(client, tenant, config["id"], "\n".join(lines) + "\n")
    assert set(body) == {"import_id", "accepted", "rejected", "unweighted"}
    assert uuid.UUID(body["import_id"])
    rejected = {item["line"]: item["error"] for item in body["rejected"]}
    assert sorted(rejected) == [2, 3, 4, 8, 9, 10, 11]
    assert all(isinstance(error, str) and error for error in rejected.values())
    assert "JSON" in rejected[2]
    assert "no-such-offer" in rejected[3]
    assert "probability" in rejected[4]
    assert "user_id" in rejected[9]
    assert body["accepted"] == 4  # lines 1, 5, 7, 12
    decisions = _rows(app, Decision, config["id"])
    assert sorted(d.user_id for d in decisions) == [
        "good-outcomes",
        "good-reward",
        "good-web",
        "u1",
    ]
    assert {d.source for d in decisions} == {"import"}
    outcomes = _rows(app, Outcome, config["id"])
    assert sorted(o.type for o in outcomes) == ["click", "conversion"]


def test_imported_decisions_are_learned_by_the_next_sweep(app, client, tenant, create_config):
    """After an import, a sweep learns every imported decision with its reward."""
    config = create_config(settings=SETTINGS)
    lines = [
        _line(user_id="r1", reward=1),
        _line(user_id="r0", action_id="b", reward=0, probability=0.25),
        _line(
            user_id="o1",
            reward=...,
            outcomes=[{"type": "open"}, {"type": "conversion", "value": 20}],
        ),
    ]
    assert _imported(client, tenant, config["id"], "\n".join(lines))["accepted"] == 3
    _sweep(app)
    rewards = {d.user_id: d.reward for d in _rows(app, Decision, config["id"])}
    assert rewards == {"r1": 1.0, "r0": 0.0, "o1": pytest.approx(0.1 + 20 * 1.0)}
    assert all(d.learned_at is not None for d in _rows(app, Decision, config["id"]))
    models = client.get(f"{BASE}/{config['id']}/models", headers=tenant.headers).get_json()
    assert [(m["version"], m["examples"]) for m in models] == [(1, 3)]


@sqlite_only
def test_import_needs_ndjson_content_type(app, client, tenant, create_config):
    """Any other content type → 415 with the error shape; nothing imported."""
    config = create_config(settings=SETTINGS)
    for content_type in ("application/json", "multipart/form-data", "application/xml"):
        assert_error(_import(client, tenant, config["id"], _line(), content_type), 415)
    assert _rows(app, Decision, config["id"]) == []


@sqlite_only
def test_import_into_another_workspaces_config_is_404(app, client, make_tenant, create_config):
    """Another workspace's configuration is not found; publishable keys may not import."""
    config = create_config(settings=SETTINGS)
    assert_error(_import(client, make_tenant("rival"), config["id"], _line()), 404)
    assert_error(
        _import(client, make_tenant("acme", kind="publishable"), config["id"], _line()), 403
    )
    assert _rows(app, Decision, config["id"]) == []


def test_hostile_lines_are_rejected_never_a_500(app, client, tenant, create_config):
    """Lines PostgreSQL or Python cannot take (NaN, NUL, deep nesting...) are rejected alone."""
    config = create_config(settings=SETTINGS)
    lines = [
        _line(user_id="fine"),  # 1
        _line(context={"x": float("nan")}),  # 2: json.dumps writes NaN
        _line(user_id="nul\u0000"),  # 3
        _line(context={"note": "a\u0000b"}),  # 4
        "[" * 50_000,  # 5: RecursionError in json.loads
        '{"user_id": "u", "context": {"n": ' + "1" * 5000 + "}}",  # 6: int too long
        _line(timestamp="0001-01-01T00:00:00+05:00"),  # 7: before year 1 in UTC
        _line(reward=float("inf")),  # 8
        _line(user_id="also-fine"),  # 9
    ]
    body = "\n".join(lines).encode() + b"\n\xff\xfe\xfd\n"  # 10: not UTF-8
    result = _imported(client, tenant, config["id"], body)
    assert sorted(item["line"] for item in result["rejected"]) == [2, 3, 4, 5, 6, 7, 8, 10]
    assert result["accepted"] == 2
    assert sorted(d.user_id for d in _rows(app, Decision, config["id"])) == ["also-fine", "fine"]
