"""Exports for analytics and BI: decisions (propensities, variant, model version, outcomes,
reward) and daily metrics as NDJSON and CSV, by date range, through the API and
``hpe export``; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from hpe_core.integrations.exports import DECISION_FIELDS, METRIC_FIELDS
from hpe_core.store.models import Decision
from tests.api.conftest import assert_error
from tests.conftest import BASE, IN_REPO_PLUGINS
from tests.integrations.conftest import TEST_KEY, create_config, decide

HPE = str(Path(sys.executable).with_name("hpe"))
TODAY = dt.datetime.now(dt.UTC).date()


def _lines(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


@pytest.fixture
def history(client, tenant, web_settings, session):
    """Three decisions today (one with a click and a conversion), one moved to 3 days ago."""
    config_id = create_config(client, tenant, web_settings)
    answers = [decide(client, tenant, config_id, user_id=f"u{i}") for i in range(4)]
    for outcome in ({"type": "click"}, {"type": "conversion", "value": 12.5}):
        response = client.post(
            f"{BASE}/{config_id}/outcomes",
            json={"decision_id": answers[0]["decision_id"], **outcome},
            headers=tenant.headers,
        )
        assert response.status_code == 202
    old = uuid.UUID(answers[3]["decision_id"])
    session.execute(
        sa.update(Decision)
        .where(Decision.id == old)
        .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    )
    session.commit()
    return config_id, answers


def test_decisions_export_ndjson(client, tenant, history):
    """Today's decisions, oldest first, each with its propensities and outcomes."""
    config_id, answers = history
    response = client.get(
        f"{BASE}/{config_id}/decisions/export",
        headers=tenant.headers,
        query_string={"from": TODAY.isoformat()},
    )
    assert response.content_type == "application/x-ndjson"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = _lines(response)
    assert [row["decision_id"] for row in rows] == [a["decision_id"] for a in answers[:3]]
    first = rows[0]
    assert set(first) == set(DECISION_FIELDS)
    assert first["action_id"] == answers[0]["action_id"]
    assert first["probability"] == pytest.approx(answers[0]["probability"])
    assert sum(first["propensities"].values()) == pytest.approx(1.0)
    assert first["propensities"][first["action_id"]] == pytest.approx(first["probability"])
    assert first["variant"] == answers[0]["variant"] and first["model_version"] == 0
    assert [o["type"] for o in first["outcomes"]] == ["click", "conversion"]
    assert first["outcome_count"] == 2 and first["value"] == 12.5
    assert first["reward"] is None and first["learned_at"] is None  # not learned yet
    assert rows[1]["outcomes"] == [] and rows[1]["value"] == 0


def test_decisions_export_by_range_and_csv(client, tenant, history):
    """The range picks days (both ends included); CSV has the header and JSON cells."""
    config_id, answers = history
    three_days_ago = (TODAY - dt.timedelta(days=3)).isoformat()
    only_old = _lines(
        client.get(
            f"{BASE}/{config_id}/decisions/export",
            headers=tenant.headers,
            query_string={"from": three_days_ago, "to": three_days_ago},
        )
    )
    assert [row["decision_id"] for row in only_old] == [answers[3]["decision_id"]]
    response = client.get(
        f"{BASE}/{config_id}/decisions/export",
        headers=tenant.headers,
        query_string={"format": "csv"},
    )
    assert response.content_type.startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert list(table[0]) == list(DECISION_FIELDS)
    assert len(table) == 4 and table[0]["decision_id"] == answers[3]["decision_id"]
    clicked = next(row for row in table if row["decision_id"] == answers[0]["decision_id"])
    assert json.loads(clicked["outcomes"])[1] == {
        "type": "conversion",
        "value": 12.5,
        "occurred_at": json.loads(clicked["outcomes"])[1]["occurred_at"],
    }
    assert float(clicked["value"]) == 12.5 and clicked["reward"] == ""
    assert sum(json.loads(clicked["propensities"]).values()) == pytest.approx(1.0)


def test_metrics_export(client, tenant, history):
    """Daily rows per variant and scope; today's decisions add up to the metrics API's."""
    config_id, _answers = history
    rows = _lines(client.get(f"{BASE}/{config_id}/metrics/export", headers=tenant.headers))
    assert set(rows[0]) == set(METRIC_FIELDS)
    today = [r for r in rows if r["date"] == TODAY.isoformat() and r["scope"] == "all"]
    assert {r["variant"] for r in today} == {"treatment", "holdout"}
    assert sum(r["decisions"] for r in today) == 3
    assert sum(r["engagements"] for r in today) == 1
    assert sum(r["revenue"] for r in today) == 12.5
    assert {r["key"] for r in rows if r["scope"] == "channel"} == {"web"}
    summary = client.get(f"{BASE}/{config_id}/metrics", headers=tenant.headers).get_json()
    assert sum(r["decisions"] for r in rows if r["scope"] == "all") == sum(
        summary["summary"]["decisions"].values()
    )
    response = client.get(
        f"{BASE}/{config_id}/metrics/export",
        headers=tenant.headers,
        query_string={"format": "csv"},
    )
    assert response.get_data(as_text=True).splitlines()[0] == ",".join(METRIC_FIELDS)


def test_export_refusals(client, tenant, make_tenant, history):
    """from after to and unknown formats: 422; another workspace: 404; publishable: 403."""
    config_id, _answers = history
    for path in ("decisions/export", "metrics/export"):
        url = f"{BASE}/{config_id}/{path}"
        assert_error(
            client.get(
                url, headers=tenant.headers, query_string={"from": "2026-05-02", "to": "2026-05-01"}
            ),
            422,
        )
        assert_error(client.get(url, headers=tenant.headers, query_string={"format": "xml"}), 422)
        assert_error(client.get(url, headers=make_tenant("other").headers), 404)
        publishable = make_tenant(tenant.id, kind="publishable")
        assert_error(client.get(url, headers=publishable.headers), 403)


def test_hpe_export_command(database_url, tmp_path, history):
    """hpe export decisions|metrics writes the same rows as the API, to a file or stdout."""
    config_id, answers = history
    env = {name: value for name, value in os.environ.items() if not name.startswith("HPE_")}
    env.update(
        {
            "HPE_DATABASE_URL": database_url,
            "HPE_INSTANCE_PATH": str(tmp_path / "cli-instance"),
            "HPE_LOAD_PLUGINS": json.dumps(IN_REPO_PLUGINS),
            "HPE_SECRET_KEY": TEST_KEY,
            "HPE_AUTO_MIGRATE": "false",
        }
    )

    def hpe(*args):
        result = subprocess.run(
            [HPE, "export", *args], cwd=tmp_path, env=env, capture_output=True, timeout=120
        )
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout

    since = (TODAY - dt.timedelta(days=7)).isoformat()
    out = tmp_path / "decisions.csv"
    hpe("decisions", config_id, "--from", since, "--format", "csv", "--output", str(out))
    table = list(csv.DictReader(out.open()))
    assert sorted(r["decision_id"] for r in table) == sorted(a["decision_id"] for a in answers)
    lines = hpe("metrics", config_id, "--from", since).decode().splitlines()
    assert (
        sum(json.loads(line)["decisions"] for line in lines if json.loads(line)["scope"] == "all")
        == 4
    )
    missing = subprocess.run(
        [HPE, "export", "decisions", str(uuid.uuid4())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert missing.returncode != 0 and b"No configuration" in missing.stderr
