"""The measurement pass (hpe_core.measure.measurement.run): end to end on RQ with a burst worker,
idempotent on both databases, skipping what it must, and going on when the off-policy
evaluation fails."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from rq import SimpleWorker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.measure import measurement
from hpe_core.store.models import Activity, Config, MetricsDay, ModelVersion, Recommendation
from hpe_core.tenancy import configs
from hpe_core.tenancy.workspaces import Principal
from tests.conftest import create_tenant
from tests.core.recommend.test_circuit_breaker import seed
from web.extensions import app_runtime
from worker.queues import sweep_measurements
from worker.runtime import bind

SETTINGS = {"actions": [{"id": "a"}, {"id": "b"}, {"id": "c"}], "holdout": {"percent": 10}}


def _config(app, settings: dict = SETTINGS, name: str = "Spring") -> Config:
    """A configuration whose action "a" engages 4% of treatment against 30% for b and c."""
    session = app_runtime(app).sessions()
    try:
        principal = Principal(create_tenant(app).id, "hpe_sk_test")
        config = configs.create(session, principal, configs.Catalog(), name=name, settings=settings)
        session.commit()
        seed(session, config, variant="treatment", count=400, engaged=16, action_id="a")
        for action in ("b", "c"):
            seed(session, config, variant="treatment", count=400, engaged=120, action_id=action)
        seed(session, config, variant="holdout", count=133, engaged=40, action_id="b")
        return config
    finally:
        session.close()


def _pass(app, config_id, **kwargs) -> measurement.MeasurementReport:
    with app_runtime(app).sessions() as session:
        return measurement.run(session, config_id, app_runtime(app).measurement, **kwargs)


def _state(app, config_id) -> dict:
    """Everything a pass may write, except the rollups' updated_at."""
    with app_runtime(app).sessions() as session:
        config = session.get(Config, config_id)
        rows = session.scalars(
            select(Recommendation)
            .where(Recommendation.config_id == config_id)
            .order_by(Recommendation.kind, Recommendation.subject)
        ).all()
        return {
            "settings": config.settings,
            "recommendations": [
                (r.id, r.kind, r.subject, r.status, r.evidence, r.patch, r.title, r.updated_at)
                for r in rows
            ],
            "activities": session.scalar(
                select(func.count()).where(Activity.config_id == config_id)
            ),
            "metrics": [
                (m.date, m.metrics)
                for m in session.scalars(
                    select(MetricsDay)
                    .where(MetricsDay.config_id == config_id)
                    .order_by(MetricsDay.date)
                )
            ],
        }


@pytest.mark.postgres
@pytest.mark.redis
def test_measure_job_runs_end_to_end_on_rq(rq_app):
    """The sweep enqueues one measure job per configuration; a burst worker runs it; its
    report comes back as a dict and the recommendation is stored."""
    config = _config(rq_app)
    backend = app_runtime(rq_app).jobs
    sessions = app_runtime(rq_app).sessions
    assert sweep_measurements(backend, sessions) == 1
    assert sweep_measurements(backend, sessions) == 0  # one pending job is enough
    assert len(backend.measure_queue) == 1

    bind(app_runtime(rq_app))
    worker = SimpleWorker(
        [backend.measure_queue], connection=backend.redis, serializer=JSONSerializer
    )
    assert worker.work(burst=True) is True

    [job_id] = FinishedJobRegistry(queue=backend.measure_queue).get_job_ids()
    report = Job.fetch(job_id, connection=backend.redis, serializer=JSONSerializer).return_value()
    assert report["config_id"] == str(config.id) and report["skipped"] is None
    assert report["days_refreshed"] >= 1 and report["tripped"] is False
    assert "retire_action:a" in report["open_recommendations"]
    assert report["evaluation_error"] is None
    with sessions() as session:
        row = session.scalar(select(Recommendation).where(Recommendation.kind == "retire_action"))
        assert (row.config_id, row.subject, row.status) == (config.id, "a", "open")
        assert session.scalar(select(func.count()).where(MetricsDay.config_id == config.id)) >= 1
    # Done and not pending any more: the next sweep enqueues it again.
    assert sweep_measurements(backend, sessions) == 1


@pytest.mark.parametrize("automation", ["assisted", "autonomous"])
def test_two_passes_in_a_row_change_nothing_the_second_time(app, automation):
    config = _config(app, SETTINGS | {"automation": automation})
    first = _pass(app, config.id)
    assert "retire_action:a" in first.open_recommendations or first.applied == ["retire_action:a"]
    after_first = _state(app, config.id)
    second = _pass(app, config.id)
    assert second.applied == [] and second.tripped is False
    assert _state(app, config.id) == after_first
    assert second.open_recommendations == [
        name for name in first.open_recommendations if name not in first.applied
    ]


def test_inactive_and_missing_configurations_are_skipped(app):
    config = _config(app)
    with app_runtime(app).sessions() as session:
        principal = Principal(config.workspace_id, "hpe_sk_test")
        configs.deactivate(session, principal, config.id)
        session.commit()
    report = _pass(app, config.id)
    assert report.skipped == "inactive" and report.open_recommendations == []
    assert _state(app, config.id)["recommendations"] == []
    assert _pass(app, uuid.uuid4()).skipped == "missing"


def test_a_failing_evaluation_is_reported_and_the_pass_goes_on(app):
    """A corrupt stored model makes the off-policy evaluation fail: the pass still rolls up
    and raises the summary's recommendations, and says why evaluation is missing."""
    config = _config(app)
    junk = b"not a vw model" * 8
    with app_runtime(app).sessions() as session:
        session.add(
            ModelVersion(
                config_id=config.id,
                version=1,
                vw_args=vw_arguments(config.settings["exploration"]),
                vw_version="9.10.0",
                checksum=hashlib.sha256(junk).hexdigest(),
                model=junk,
            )
        )
        session.commit()
    report = _pass(app, config.id)
    assert report.evaluation_error and "RuntimeError" in report.evaluation_error
    assert "retire_action:a" in report.open_recommendations
    assert _state(app, config.id)["metrics"]


def test_thin_logged_support_for_the_model_widens_exploration(app):
    """Off-policy evaluation drives a rule end to end: the logging policy almost never
    chose "b" (propensity 0.01) while the model would choose it half the time, so the
    model's effective sample size is a few percent of n: widen exploration (epsilon)."""
    settings = {
        "actions": [{"id": "a"}, {"id": "b"}],
        "exploration": {"algorithm": "epsilon", "epsilon": 0.05},
        "holdout": {"percent": 10},
    }
    with app_runtime(app).sessions() as session:
        principal = Principal(create_tenant(app).id, "hpe_sk_test")
        config = configs.create(session, principal, configs.Catalog(), name="S", settings=settings)
        session.commit()
        skewed = [0.99, 0.01]
        seed(session, config, variant="treatment", count=590, engaged=100, action_id="a",
             probabilities=skewed, learned=True)  # fmt: skip
        seed(session, config, variant="treatment", count=10, engaged=2, action_id="b",
             probabilities=skewed, learned=True)  # fmt: skip
    report = _pass(app, config.id)
    assert report.evaluation_error is None
    assert "change_exploration:exploration" in report.open_recommendations
    with app_runtime(app).sessions() as session:
        row = session.scalar(
            select(Recommendation).where(Recommendation.kind == "change_exploration")
        )
        assert row.patch == {"exploration": {"epsilon": 0.1}}
        assert row.evidence["n"] == 600 and row.evidence["ess_ratio"] < 0.1


def test_autonomous_engine_steps_a_model_worse_than_the_baseline_back(app):
    """The baseline always shows "a" (engages 80%); the untrained model spreads over the bad
    "b" too. Off-policy evaluation puts the model's whole interval below the baseline, and
    in autonomous mode the engine switches to manual itself, logged as the engine."""
    settings = {
        "actions": [{"id": "b"}, {"id": "a"}],
        "holdout": {"percent": 10, "baseline": {"action_id": "a"}},
        "automation": "autonomous",
    }
    with app_runtime(app).sessions() as session:
        principal = Principal(create_tenant(app).id, "hpe_sk_test")
        config = configs.create(session, principal, configs.Catalog(), name="S", settings=settings)
        session.commit()
        seed(session, config, variant="treatment", count=300, engaged=240, action_id="a",
             learned=True)  # fmt: skip
        seed(session, config, variant="treatment", count=300, engaged=0, action_id="b",
             learned=True)  # fmt: skip
    report = _pass(app, config.id)
    assert report.evaluation_error is None
    assert report.applied == ["model_worse_than_baseline:"]
    with app_runtime(app).sessions() as session:
        assert session.get(Config, config.id).settings["automation"] == "manual"
        row = session.scalar(
            select(Recommendation).where(Recommendation.kind == "model_worse_than_baseline")
        )
        assert (row.status, row.applied_by) == ("applied", "engine")
        assert row.evidence["model_ci_high"] < row.evidence["baseline_dr"]
        assert row.evidence["n"] == 600
        logged = session.scalars(
            select(Activity.type).where(Activity.config_id == config.id, Activity.actor == "engine")
        ).all()
        assert sorted(logged) == ["config.updated", "recommendation.applied"]
