"""`hpe decide --config ID --input users.ndjson`: an audience through the batch service, a
chunk per transaction, run for real in a subprocess on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.store.models import Decision
from tests.cli.test_cli import hpe
from tests.conftest import BASE
from web.extensions import app_runtime

SETTINGS = {
    "actions": [
        {"id": "email-only", "channels": ["email"]},
        {"id": "web-only", "channels": ["web"]},
    ],
    "channels": ["email", "web"],
}


@pytest.fixture
def audience_config(app, client, tenant):
    response = client.post(
        f"{BASE}/", json={"name": "send", "settings": SETTINGS}, headers=tenant.headers
    )
    assert response.status_code == 201
    return response.get_json()["id"]


def _write(path, lines) -> None:
    path.write_text(
        "".join(line if isinstance(line, str) else json.dumps(line) + "\n" for line in lines)
    )


def _stored(app, config_id) -> dict[uuid.UUID, str]:
    session = app_runtime(app).sessions()
    try:
        rows = session.execute(
            sa.select(Decision.id, Decision.user_id).where(
                Decision.config_id == uuid.UUID(config_id)
            )
        )
        return dict(rows.all())
    finally:
        session.close()


def test_an_audience_file_is_decided_in_order_chunk_by_chunk(
    app, audience_config, database_url, tmp_path
):
    """2,500 users (a blank line, one with nothing eligible) in chunks of 1,000: one
    answer a line in input order with its line number, every decision logged."""
    users = [{"user_id": f"u{i}", "channel": "email", "context": {"i": i}} for i in range(2500)]
    users[17] = {"user_id": "u17", "channel": "email", "candidates": ["web-only"]}
    lines = [*users[:10], "\n", *users[10:]]
    _write(tmp_path / "users.ndjson", lines)
    result = hpe(
        tmp_path,
        "decide",
        "--config",
        audience_config,
        "--input",
        "users.ndjson",
        "--output",
        "decisions.ndjson",
        database_url=database_url,
    )
    answers = [
        json.loads(line) for line in (tmp_path / "decisions.ndjson").read_text().splitlines()
    ]
    assert [a["user_id"] for a in answers] == [u["user_id"] for u in users]
    assert [a["line"] for a in answers] == [*range(1, 11), *range(12, 2502)]
    assert answers[17]["decision_id"] is None and answers[17]["reason"] == "no_eligible_action"
    stored = _stored(app, audience_config)
    assert len(stored) == 2499
    for answer in answers:
        if answer["decision_id"] is not None:
            assert stored[uuid.UUID(answer["decision_id"])] == answer["user_id"]
            assert answer["action_id"] == "email-only"
    assert "2,500 lines answered" in result.stderr and "2,499 decisions logged" in result.stderr


def test_an_invalid_line_stops_the_run_after_the_chunks_before_it(
    app, audience_config, database_url, tmp_path
):
    """Line 1,503 has no user_id: the first chunk (lines 1-1,000) is answered and kept,
    the chunk holding the bad line is not decided, the error names the line."""
    users = [{"user_id": f"u{i}", "channel": "email"} for i in range(2000)]
    users[1502] = {"channel": "email"}
    _write(tmp_path / "users.ndjson", users)
    result = hpe(
        tmp_path,
        "decide",
        "--config",
        audience_config,
        "--input",
        "users.ndjson",
        "-o",
        "out.ndjson",
        database_url=database_url,
        check=False,
    )
    assert result.returncode == 1
    assert "line 1503 is invalid" in result.stderr and "user_id" in result.stderr
    assert "1,000 lines before it" in result.stderr
    assert len((tmp_path / "out.ndjson").read_text().splitlines()) == 1000
    assert len(_stored(app, audience_config)) == 1000


@pytest.mark.parametrize("backend", ["sqlite"])
def test_skip_invalid_answers_bad_lines_with_their_errors(
    app, audience_config, database_url, tmp_path
):
    """--skip-invalid: unreadable JSON, a schema error and a channel the configuration
    does not have are answered with their errors; every other line is decided."""
    lines = [
        {"user_id": "a", "channel": "email"},
        "{not json\n",
        {"user_id": "b", "channel": "sms"},
        {"user_id": "", "channel": "web"},
        {"user_id": "c", "channel": "web"},
    ]
    _write(tmp_path / "users.ndjson", lines)
    result = hpe(
        tmp_path,
        "decide",
        "--config",
        audience_config,
        "--input",
        "users.ndjson",
        "--skip-invalid",
        database_url=database_url,
    )
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["line"] for a in answers] == [1, 2, 3, 4, 5]
    assert [sorted(a.get("errors", {})) for a in answers] == [
        [],
        ["json"],
        ["channel"],
        ["user_id"],
        [],
    ]
    assert {answers[0]["action_id"], answers[4]["action_id"]} == {"email-only", "web-only"}
    assert len(_stored(app, audience_config)) == 2
    assert "3 invalid" in result.stderr


def test_an_unknown_configuration_is_a_one_line_error(app, database_url, tmp_path):
    _write(tmp_path / "users.ndjson", [{"user_id": "a", "channel": "email"}])
    result = hpe(
        tmp_path,
        "decide",
        "--config",
        str(uuid.uuid4()),
        "--input",
        "users.ndjson",
        database_url=database_url,
        check=False,
    )
    assert result.returncode == 1 and "No configuration" in result.stderr
    assert "Traceback" not in result.stderr
