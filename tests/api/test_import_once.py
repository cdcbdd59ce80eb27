"""Imports are idempotent and never drop lines silently (issue 14, defect 2).

Before: the same NDJSON posted twice stored every decision twice, and a file over the
per-call limit answered 202 with one rejection at the line after the limit while every
later line vanished unreported.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.learn.imports import MAX_LINES
from hpe_core.store.models import Decision
from tests.api.conftest import assert_error
from tests.conftest import BASE
from web.extensions import app_runtime

SETTINGS = {"actions": [{"id": "a"}, {"id": "b"}]}


def _lines(count: int, user: str = "u") -> bytes:
    return b"".join(
        json.dumps(
            {
                "user_id": f"{user}{n}",
                "channel": "email",
                "timestamp": "2026-10-01T09:00:00Z",
                "context": {"n": n},
                "action_id": "a",
                "probability": 0.5,
                "reward": n % 2,
            }
        ).encode()
        + b"\n"
        for n in range(count)
    )


def _import(client, tenant, config_id, body: bytes, key: str | None = None):
    headers = {**tenant.headers, "Content-Type": "application/x-ndjson"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(f"{BASE}/{config_id}/imports", data=body, headers=headers)


def _decisions(app, config_id) -> int:
    with app_runtime(app).sessions() as session:
        return session.scalar(
            sa.select(sa.func.count()).where(Decision.config_id == uuid.UUID(config_id))
        )


@pytest.fixture
def config_id(create_config):
    return create_config(settings=SETTINGS)["id"]


def test_the_same_file_with_the_same_key_is_imported_once(app, client, tenant, config_id):
    """A retried import answers the first answer (Idempotent-Replayed) and stores nothing."""
    body = _lines(50) + b"not json\n"
    first = _import(client, tenant, config_id, body, key="import-2026-10-01")
    again = _import(client, tenant, config_id, body, key="import-2026-10-01")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json() == first.get_json()
    assert first.get_json()["accepted"] == 50 and len(first.get_json()["rejected"]) == 1
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _decisions(app, config_id) == 50


def test_the_same_key_with_another_file_is_409(app, client, tenant, config_id):
    """Another body under a used key: 409 naming the header, nothing imported."""
    assert _import(client, tenant, config_id, _lines(5), key="k1").status_code == 202
    error = assert_error(_import(client, tenant, config_id, _lines(6), key="k1"), 409)
    assert "Idempotency-Key" in error["errors"]
    assert _decisions(app, config_id) == 5


def test_the_same_file_without_a_key_is_recognised_by_its_digest(app, client, tenant, config_id):
    """No header: the file's SHA-256 is the key for this configuration."""
    body = _lines(20)
    first = _import(client, tenant, config_id, body)
    again = _import(client, tenant, config_id, body)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _decisions(app, config_id) == 20
    # Another file is another import.
    assert _import(client, tenant, config_id, _lines(3, user="v")).get_json()["accepted"] == 3
    assert _decisions(app, config_id) == 23


def test_a_file_over_the_line_limit_is_refused_whole(app, client, tenant, config_id):
    """MAX_LINES + 1 lines: 413 saying how many and the limit; nothing imported."""
    body = _lines(2) + b"{}\n" * (MAX_LINES - 1)
    error = assert_error(_import(client, tenant, config_id, body, key="big"), 413)
    assert f"{MAX_LINES + 1} lines" in error["message"]
    assert _decisions(app, config_id) == 0
    # The key was not used up by the refusal.
    assert _import(client, tenant, config_id, _lines(2), key="big").status_code == 202


@pytest.mark.parametrize("backend", ["postgresql"])
def test_concurrent_imports_under_one_key_import_once(app, tenant, config_id):
    """Two requests with one key at once: one imports, the other answers its answer."""
    body = _lines(2000)
    answers, errors = [], []
    start = threading.Barrier(2)

    def post() -> None:
        try:
            client = app.test_client()
            start.wait(10)
            response = _import(client, tenant, config_id, body, key="concurrent")
            answers.append((response.status_code, response.get_json()))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [status for status, _ in answers] == [202, 202]
    assert answers[0][1] == answers[1][1]
    assert _decisions(app, config_id) == 2000
