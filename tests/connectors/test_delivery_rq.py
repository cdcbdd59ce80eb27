"""Delivery jobs on RQ (real Redis, rq's SimpleWorker): a transient SMTP failure returns
an rq Retry and the retried job delivers; the same job function as in production."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hpe_core.store.models import Delivery
from tests.conftest import make_test_app
from tests.connectors.conftest import (
    EMAIL_ACTION,
    SmtpServer,
    create_config,
    decide,
    email_plugin_config,
    free_port,
    new_tenant,
)
from web.extensions import app_runtime


@pytest.mark.redis
def test_delivery_job_retries_on_rq_then_delivers(sqlite_url, tmp_path, redis_url, monkeypatch):
    """SMTP down: the job returns Retry; the re-run after the server is up sends."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from worker import retry
    from worker.runtime import bind

    monkeypatch.setattr(retry, "DELIVERY_INTERVALS", [0])  # retry at once, no scheduler
    port = free_port()
    app = make_test_app(
        sqlite_url,
        tmp_path,
        REDIS_URL=redis_url,
        PUBLIC_URL="http://hpe.test",
        PLUGINS={"email": email_plugin_config(port)},
    )
    backend = app_runtime(app).jobs
    assert backend.name == "rq"
    bind(app_runtime(app))
    client = app.test_client()
    tenant = new_tenant(app)
    config_id = create_config(client, tenant, [EMAIL_ACTION])
    response = decide(
        client,
        tenant,
        config_id,
        deliver={"to": {"email": "ada@example.org"}, "variables": {"first_name": "Ada"}},
    )
    assert response.status_code == 201
    worker = SimpleWorker(
        [backend.delivery_queue, backend.queue],
        connection=backend.redis,
        serializer=JSONSerializer,
    )

    assert worker.work(burst=True, max_jobs=1) is True
    session = app_runtime(app).sessions()
    [row] = session.scalars(sa.select(Delivery))
    assert (row.status, row.attempts) == ("retrying", 1)
    assert len(backend.delivery_queue) == 1  # rq re-enqueued it, on the delivery queue

    server = SmtpServer(port).start()
    try:
        assert worker.work(burst=True) is True
        assert len(server.wait_for(1)) == 1
    finally:
        server.stop()
    session.expire_all()
    [row] = session.scalars(sa.select(Delivery))
    assert (row.status, row.attempts) == ("sent", 2)
    session.close()
    app_runtime(app).engine.dispose()
