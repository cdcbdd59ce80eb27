"""The runtime and change hooks: ``hpe_on_startup``, ``hpe_on_activity`` (every committed
activity) and ``hpe_on_recommendation_changed`` (raised, applied, dismissed...)."""

from __future__ import annotations

import datetime as dt
import uuid

from hpe_core import hookimpl
from hpe_core.activity_events import ActivityEvent, RecommendationChange
from hpe_core.recommend import recommendations
from hpe_core.store.models import Recommendation, utcnow
from hpe_core.store.vocabulary import RecommendationStatus
from hpe_core.tenancy import activities
from tests.conftest import BASE
from web.extensions import app_runtime


class ChangeRecorder:
    def __init__(self):
        self.runtimes: list = []
        self.activities: list[ActivityEvent] = []
        self.recommendations: list[RecommendationChange] = []

    @hookimpl
    def hpe_on_startup(self, runtime):
        self.runtimes.append(runtime)

    @hookimpl
    def hpe_on_activity(self, activity):
        self.activities.append(activity)

    @hookimpl
    def hpe_on_recommendation_changed(self, recommendation):
        self.recommendations.append(recommendation)


def _config(kit_app, recorder):
    app, client, tenant = kit_app(recorder)
    response = client.post(
        f"{BASE}/",
        json={"name": "Spring", "settings": {"actions": [{"id": "a"}, {"id": "b"}]}},
        headers=tenant.headers,
    )
    assert response.status_code == 201
    return app, client, tenant, uuid.UUID(response.get_json()["id"])


def test_hook_hpe_on_startup(kit_app):
    """Called once per runtime built, with that runtime (before any request)."""
    recorder = ChangeRecorder()
    app, _client, _tenant = kit_app(recorder)
    assert recorder.runtimes == [app_runtime(app)]


def test_hook_hpe_on_activity(kit_app):
    """Each committed activity is announced once; a rolled-back one never is."""
    recorder = ChangeRecorder()
    app, client, tenant, config_id = _config(kit_app, recorder)
    [created] = recorder.activities
    assert created.type == "config.created" and created.config_id == config_id
    assert created.workspace_id == tenant.id and created.actor.startswith("hpe_sk_")
    assert isinstance(created.created_at, dt.datetime) and created.data["name"] == "Spring"
    client.patch(f"{BASE}/{config_id}", json={"name": "Summer"}, headers=tenant.headers)
    assert [a.type for a in recorder.activities] == ["config.created", "config.updated"]
    assert recorder.activities[-1].data == {"changes": {"name": ["Spring", "Summer"]}}
    session = app_runtime(app).sessions()
    try:
        activities.record(
            session, workspace_id=tenant.id, config_id=config_id, type="x.y", actor="test"
        )
        session.flush()
        session.rollback()
        session.commit()
    finally:
        session.close()
    assert len(recorder.activities) == 2


def test_hook_hpe_on_recommendation_changed(kit_app):
    """Raised (open, from nothing), then dismissed (from open): one call each, after commit."""
    recorder = ChangeRecorder()
    app, _client, tenant, config_id = _config(kit_app, recorder)
    session = app_runtime(app).sessions()
    try:
        row = Recommendation(
            id=uuid.uuid4(),
            workspace_id=tenant.id,
            config_id=config_id,
            kind="retire_action",
            subject="a",
            severity="warning",
            title="Retire a",
            detail="It loses.",
            evidence={},
            patch={"actions": []},
            status=RecommendationStatus.OPEN,
        )
        session.add(row)
        session.flush()
        assert recorder.recommendations == []  # not committed yet
        session.commit()
        [opened] = recorder.recommendations
        assert (opened.status, opened.previous_status, opened.subject) == ("open", None, "a")
        recommendations.move(row, RecommendationStatus.DISMISSED, now=utcnow())
        session.commit()
    finally:
        session.close()
    dismissed = recorder.recommendations[-1]
    assert (dismissed.status, dismissed.previous_status) == ("dismissed", "open")
    assert dismissed.config_id == config_id and dismissed.patch == {"actions": []}
