"""GET /metrics (Prometheus): decisions, latency, outcomes, learn lag, model age, queues and
health, who may scrape; and multiprocess mode with a real ``hpe serve`` of two gunicorn
workers plus an ``hpe worker`` process, all counted in one scrape."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from hpe_core.store.models import Decision
from tests.api.conftest import assert_error
from tests.conftest import BASE, IN_REPO_PLUGINS, make_test_app
from tests.integrations.conftest import TEST_KEY, create_config, decide
from tests.servers import hpe_serving
from web.extensions import app_runtime

REPO = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def scrape(client, **kwargs) -> dict:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return samples(response.get_data(as_text=True))


def test_decisions_outcomes_and_latency_are_counted(client, tenant, web_settings):
    """Decisions by config and variant, outcomes by type and source, the latency histogram."""
    before = scrape(client)
    config_id = create_config(client, tenant, web_settings)
    answers = [decide(client, tenant, config_id, user_id=f"u{i}") for i in range(4)]
    client.post(
        f"{BASE}/{config_id}/outcomes",
        json={"decision_id": answers[0]["decision_id"], "type": "click"},
        headers=tenant.headers,
    )
    after = scrape(client)
    by_variant = {
        variant: value(
            after, "hpe_decisions_total", config_id=config_id, channel="web", variant=variant
        )
        or 0
        for variant in ("treatment", "holdout")
    }
    assert sum(by_variant.values()) == 4
    clicks = value(after, "hpe_outcomes_total", type="click", source="api")
    assert clicks - (value(before, "hpe_outcomes_total", type="click", source="api") or 0) == 1
    count = value(after, "hpe_decision_duration_seconds_count", endpoint="decisions")
    assert (
        count - (value(before, "hpe_decision_duration_seconds_count", endpoint="decisions") or 0)
        == 4
    )
    assert (
        value(after, "hpe_decision_duration_seconds_bucket", endpoint="decisions", le="+Inf") >= 4
    )
    assert value(after, "hpe_up", component="database") == 1.0
    assert value(after, "hpe_up", component="redis") is None  # not configured: inline jobs
    assert value(after, "hpe_queue_depth", queue="inline", state="queued") is not None


def test_learn_lag_then_model_age(app, client, tenant, web_settings, session):
    """A closed, unlearned window shows as learn lag; once learned, lag is 0 and the new
    model version has an age."""
    config_id = create_config(client, tenant, web_settings)
    decided = decide(client, tenant, config_id)
    session.execute(
        sa.update(Decision)
        .where(Decision.id == uuid.UUID(decided["decision_id"]))
        .values(window_closes_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    )
    session.commit()
    found = scrape(client)
    assert 590 < value(found, "hpe_learn_lag_seconds", config_id=config_id) < 900
    assert value(found, "hpe_model_age_seconds", config_id=config_id) is None
    runtime = app_runtime(app)
    runtime.jobs.enqueue_learn(uuid.UUID(config_id))
    runtime.jobs.run_pending()
    found = scrape(client)
    assert value(found, "hpe_learn_lag_seconds", config_id=config_id) == 0.0
    assert 0 <= value(found, "hpe_model_age_seconds", config_id=config_id) < 60
    assert value(found, "hpe_model_versions_learned_total", config_id=config_id) == 1


@pytest.mark.redis
def test_queues_and_redis_on_rq(sqlite_url, tmp_path, redis_url):
    """With Redis: hpe_up{redis} and each RQ queue's depth and failed jobs; Redis down: 0."""
    app = make_test_app(sqlite_url, tmp_path, REDIS_URL=redis_url, SECRET_KEY=TEST_KEY)
    runtime = app_runtime(app)
    try:
        runtime.jobs.enqueue_learn(uuid.uuid4())
        found = scrape(app.test_client())
        assert value(found, "hpe_up", component="redis") == 1.0
        assert value(found, "hpe_queue_depth", queue="hpe-learn", state="queued") == 1.0
        assert value(found, "hpe_queue_depth", queue="hpe-deliver", state="scheduled") == 0.0
        assert value(found, "hpe_jobs_failed", queue="hpe-measure") == 0.0
    finally:
        runtime.jobs.redis.close()
        runtime.engine.dispose()
    down = make_test_app(
        sqlite_url, tmp_path, REDIS_URL="redis://127.0.0.1:1/0", SECRET_KEY=TEST_KEY
    )
    try:
        found = scrape(down.test_client())
        assert value(found, "hpe_up", component="redis") == 0.0
        assert value(found, "hpe_up", component="database") == 1.0
    finally:
        app_runtime(down).engine.dispose()


def test_only_this_machine_or_the_token_may_scrape(sqlite_url, tmp_path, sqlite_app):
    """No token: loopback only (403 elsewhere). With HPE_METRICS_TOKEN: the bearer token."""
    remote = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    assert_error(sqlite_app.test_client().get("/metrics", **remote), 403)
    app = make_test_app(sqlite_url, tmp_path, METRICS_TOKEN="s3cret-scrape")
    try:
        client = app.test_client()
        assert_error(client.get("/metrics"), 401)
        assert_error(client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401)
        scrape(client, headers={"Authorization": "Bearer s3cret-scrape"}, **remote)
    finally:
        app_runtime(app).engine.dispose()


@pytest.mark.slow
@pytest.mark.redis
def test_gunicorn_workers_and_rq_workers_are_all_counted(postgres_url, redis_url, tmp_path):
    """hpe serve with two gunicorn workers and an hpe worker process share
    PROMETHEUS_MULTIPROC_DIR: one scrape counts every decision and the worker's learning."""
    from tests.conftest import empty_database

    multiproc = tmp_path / "prom"
    env = {name: v for name, v in os.environ.items() if not name.startswith("HPE_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "HPE_DATABASE_URL": postgres_url,
            "HPE_REDIS_URL": redis_url,
            "HPE_INSTANCE_PATH": str(tmp_path / "instance"),
            "HPE_LOAD_PLUGINS": json.dumps(IN_REPO_PLUGINS),
            "HPE_SWEEP_INTERVAL": "0.2",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "HPE_SECRET_KEY": "metrics-test-" + uuid.uuid4().hex * 2,
        }
    )
    hpe = [str(Path(os.sys.executable).parent / "hpe")]
    try:
        key = (
            subprocess.run(
                [*hpe, "workspace", "create", "acme"],
                env=env,
                cwd=tmp_path,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        with hpe_serving(tmp_path, env, tmp_path / "serve.log", workers=2) as base:
            api = f"{base}{BASE}"
            settings = {
                "channels": ["web"],
                "actions": [{"id": "a"}, {"id": "b"}],
                "reward": {"wait_seconds": 1},
            }
            config = _post(f"{api}/", key, {"name": "Spring", "settings": settings})
            for user in range(30):
                _post(
                    f"{api}/{config['id']}/decisions",
                    key,
                    {"user_id": f"u{user}", "channel": "web"},
                )
            found = samples(_get(f"{base}/metrics"))
            total = sum(
                value(
                    found,
                    "hpe_decisions_total",
                    config_id=config["id"],
                    channel="web",
                    variant=variant,
                )
                or 0
                for variant in ("treatment", "holdout")
            )
            assert total == 30
            # Each gunicorn worker that served a request wrote its own counters file.
            pids = {path.stem.rsplit("_", 1)[-1] for path in multiproc.glob("counter_*.db")}
            assert len(pids) >= 2, sorted(multiproc.iterdir())
            import time

            time.sleep(1.5)  # the reward windows close
            subprocess.run(
                [*hpe, "worker", "--burst"],
                env=env,
                cwd=tmp_path,
                check=True,
                capture_output=True,
                timeout=120,
            )
            found = samples(_get(f"{base}/metrics"))
            assert value(found, "hpe_model_versions_learned_total", config_id=config["id"]) >= 1
            assert value(found, "hpe_learn_lag_seconds", config_id=config["id"]) == 0.0
    finally:
        empty_database(postgres_url)


def _post(url: str, key: str, body: dict) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Connection": "close",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as reply:
        return json.loads(reply.read())


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=120) as reply:
        return reply.read().decode()
