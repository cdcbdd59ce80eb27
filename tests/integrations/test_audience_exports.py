"""Audience exports for ads through the API: now, or on a schedule that the sweepers run
(one process claims each run); on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest

from hpe_core.integrations import audience_schedules
from hpe_core.store.models import AudienceSchedule
from tests.api.conftest import assert_error
from tests.conftest import BASE, make_test_app
from tests.connectors.conftest import create_config, decide, new_tenant
from web.extensions import app_runtime
from worker.queues import sweep_audience_exports

ACTIONS = [
    {"id": "spring", "content": {"ads": {"audience": "spring-buyers"}}},
    {"id": "summer"},
]


@pytest.fixture
def ads_app(database_url, tmp_path):
    drop = tmp_path / "audiences"
    app = make_test_app(
        database_url,
        tmp_path,
        PUBLIC_URL="http://hpe.test",
        PLUGINS={"ads": {"drop_dir": str(drop)}},
    )
    client, tenant = app.test_client(), new_tenant(app)
    config_id = create_config(client, tenant, ACTIONS, channels=("ads",))
    for index, email in enumerate(["ada@example.org", "bob@example.org"]):
        response = decide(
            client,
            tenant,
            config_id,
            user_id=f"u{index}",
            channel="ads",
            candidates=["spring"],
            deliver={"to": {"email": email}},
        )
        assert response.status_code == 201, response.get_json()
    app_runtime(app).jobs.run_pending_deliveries()
    yield app, client, tenant, config_id, drop
    app_runtime(app).engine.dispose()


def test_schedule_is_set_listed_and_stopped(ads_app, make_tenant_for):
    """PUT sets (first run now), GET lists, DELETE stops; bad input 422; others 404."""
    app, client, tenant, config_id, _drop = ads_app
    url = f"{BASE}/{config_id}/audiences/schedule"
    put = client.put(url, json={"every_hours": 24}, headers=tenant.headers)
    assert put.status_code == 200, put.get_json()
    body = put.get_json()
    assert body["channel"] == "ads" and body["every_hours"] == 24 and body["last_run_at"] is None
    assert client.get(url, headers=tenant.headers).get_json() == [body]
    assert_error(client.put(url, json={"every_hours": 0}, headers=tenant.headers), 422)
    assert_error(
        client.put(url, json={"every_hours": 2, "channel": "email"}, headers=tenant.headers), 422
    )
    other = make_tenant_for(app, "other")
    assert_error(client.get(url, headers=other.headers), 404)
    assert client.delete(url, headers=tenant.headers).status_code == 204
    assert_error(client.delete(url, headers=tenant.headers), 404)
    assert client.get(url, headers=tenant.headers).get_json() == []


def test_the_sweep_runs_a_due_export_once(ads_app):
    """A due schedule is claimed by one sweep, run on the job backend, and recorded; the
    next sweep finds nothing due until every_hours have passed."""
    app, client, tenant, config_id, drop = ads_app
    client.put(
        f"{BASE}/{config_id}/audiences/schedule", json={"every_hours": 6}, headers=tenant.headers
    )
    runtime = app_runtime(app)
    assert sweep_audience_exports(runtime.jobs, runtime.sessions, runtime) == 1
    assert sweep_audience_exports(runtime.jobs, runtime.sessions, runtime) == 0
    runtime.jobs.run_pending_deliveries()
    files = sorted(path.name for path in drop.iterdir())
    assert [name.split("-2")[0] for name in files] == ["spring-buyers", "summer"]
    [schedule] = client.get(
        f"{BASE}/{config_id}/audiences/schedule", headers=tenant.headers
    ).get_json()
    assert schedule["last_error"] is None and schedule["last_run_at"]
    assert {(e["audience"], e["rows"]) for e in schedule["last_result"]} == {
        ("spring-buyers", 2),
        ("summer", 0),
    }
    next_run = dt.datetime.fromisoformat(schedule["next_run_at"])
    assert (
        dt.timedelta(hours=5, minutes=59)
        < next_run - dt.datetime.now(dt.UTC)
        <= dt.timedelta(hours=6)
    )


def test_concurrent_sweepers_claim_each_run_once(ads_app):
    """Six processes' sweeps at the same moment: one claim in all."""
    app, client, tenant, config_id, _drop = ads_app
    client.put(
        f"{BASE}/{config_id}/audiences/schedule", json={"every_hours": 1}, headers=tenant.headers
    )
    sessions = app_runtime(app).sessions
    claims, barrier = [], threading.Barrier(6)

    def sweep():
        with sessions() as session:
            barrier.wait()
            claims.extend(audience_schedules.claim_due(session))

    threads = [threading.Thread(target=sweep) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert claims == [(uuid.UUID(config_id), "ads")]


def test_export_now_and_failures_are_recorded(ads_app, tmp_path, database_url):
    """POST /audiences/export ships now; with nowhere to send: 409, recorded on the schedule."""
    app, client, tenant, config_id, drop = ads_app
    response = client.post(f"{BASE}/{config_id}/audiences/export", json={}, headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    assert [e["audience"] for e in response.get_json()["exported"]] == ["spring-buyers", "summer"]
    assert len(list(drop.iterdir())) == 2
    nowhere = make_test_app(
        database_url, tmp_path / "b", PUBLIC_URL="http://hpe.test", AUTO_MIGRATE=False
    )
    try:
        other_client = nowhere.test_client()
        other_client.put(
            f"{BASE}/{config_id}/audiences/schedule",
            json={"every_hours": 3},
            headers=tenant.headers,
        )
        assert_error(
            other_client.post(
                f"{BASE}/{config_id}/audiences/export", json={}, headers=tenant.headers
            ),
            409,
        )
        with app_runtime(nowhere).sessions() as session:
            row = session.get(AudienceSchedule, (uuid.UUID(config_id), "ads"))
            assert row.last_error and row.last_result is None
    finally:
        app_runtime(nowhere).engine.dispose()
