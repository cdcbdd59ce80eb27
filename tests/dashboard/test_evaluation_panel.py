"""The results page's off-policy evaluation: the one the measurement pass kept, shown
at once with its time when it covers the page's range; otherwise loaded after the page
as before. GET /{id}/evaluation still evaluates afresh."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest

from hpe_core.measure import evaluation, evaluation_snapshots, measurement
from hpe_core.store.models import Config, Decision, EvaluationSnapshot
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import configs, people, workspaces
from hpe_core.tenancy.workspaces import Principal
from tests.conftest import BASE, make_test_app
from web.extensions import app_runtime

PASSWORD = "correct horse battery"
COST = 2**10
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TODAY = NOW.date()


@pytest.fixture
def app(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, PASSWORD_HASH_COST=COST)
    yield app
    app_runtime(app).engine.dispose()


@pytest.fixture
def shop(app):
    """A configuration with 40 learned decisions over the last two hours, an editor, a key."""
    runtime = app_runtime(app)
    with runtime.sessions() as session:
        workspaces.create_workspace(session, "acme")
        people.create_user(
            session,
            "ed@example.com",
            workspace_id="acme",
            role=Role.EDITOR,
            password=PASSWORD,
            password_cost=COST,
        )
        _row, key = workspaces.create_key(session, "acme")
        config = configs.create(
            session,
            Principal("acme", "test"),
            runtime.catalog,
            name="Shop",
            settings={"actions": [{"id": "a"}, {"id": "b"}], "holdout": {"percent": 20}},
        )
        for n in range(40):
            _learned(session, config, NOW - dt.timedelta(minutes=3 * n + 1), reward=n % 3 == 0)
        session.commit()
        return {"id": config.id, "key": key}


def _learned(session, config, at, *, reward: bool) -> None:
    session.add(
        Decision(
            id=uuid.uuid4(),
            workspace_id=config.workspace_id,
            config_id=config.id,
            user_id=f"u-{uuid.uuid4().hex[:6]}",
            channel="email",
            context={},
            eligible=["a", "b"],
            probabilities=[0.5, 0.5],
            action_id="a" if reward else "b",
            probability=0.5,
            variant="treatment",
            policy="model",
            model_version=0,
            source="live",
            created_at=at,
            window_closes_at=at,
            learned_at=at,
            reward=1.0 if reward else 0.0,
            engaged=reward,
        )
    )


def _signed_in(app):
    client = app.test_client()
    page = client.get("/dashboard/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post(
        "/dashboard/login",
        data={"email": "ed@example.com", "password": PASSWORD, "csrf_token": token},
    )
    return client


def _pass(app, config_id) -> None:
    runtime = app_runtime(app)
    with runtime.sessions() as session:
        measurement.run(session, config_id, runtime.measurement, now=NOW)


def test_the_page_shows_the_pass_evaluation_at_once_with_its_time(app, shop):
    """After a pass, the default range's page holds the evaluation (no busy panel), with
    when it was computed and a link to evaluate again; before any pass it loads after
    the page, as before."""
    client = _signed_in(app)
    page = client.get(f"/dashboard/configs/{shop['id']}").get_data(as_text=True)
    assert 'aria-busy="true"' in page and 'data-testid="evaluation-measured"' not in page
    _pass(app, shop["id"])
    page = client.get(f"/dashboard/configs/{shop['id']}").get_data(as_text=True)
    assert 'aria-busy="true"' not in page
    measured = re.search(r'data-testid="evaluation-measured">([^<]+)<a href="([^"]+)"', page)
    assert measured, page
    stamp = f"{NOW.day} {NOW:%b %Y %H:%M} UTC"
    assert f"Computed by the measurement pass at {stamp}" in measured.group(1)
    assert measured.group(2).startswith(f"/dashboard/configs/{shop['id']}/evaluation")
    assert "Model (HPE)" in page and "As logged" in page and "on the 40 logged decisions" in page


def test_a_range_the_pass_did_not_evaluate_loads_after_the_page(app, shop):
    """The pass evaluated all 40 decisions of its 30 days (fewer than its limit): a page
    of another range evaluates its own after the page."""
    _pass(app, shop["id"])
    client = _signed_in(app)
    week = f"from={TODAY - dt.timedelta(days=6)}&to={TODAY}"
    page = client.get(f"/dashboard/configs/{shop['id']}?{week}").get_data(as_text=True)
    assert 'aria-busy="true"' in page and 'data-testid="evaluation-measured"' not in page
    fragment = client.get(
        f"/dashboard/configs/{shop['id']}/evaluation?{week}", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert 'data-testid="evaluation"' in fragment and "evaluation-measured" not in fragment


def test_the_kept_evaluation_reads_back_equal(app, shop):
    """What the pass keeps reads back as the same Evaluation the API would dump."""
    _pass(app, shop["id"])
    runtime = app_runtime(app)
    with runtime.sessions() as session:
        kept = evaluation_snapshots.latest(session, shop["id"])
        config = session.get(Config, shop["id"])
        fresh = evaluation.evaluate(
            session,
            config,
            date_from=TODAY - dt.timedelta(days=measurement.LOOKBACK_DAYS - 1),
            date_to=TODAY,
            limit=measurement.EVALUATION_LIMIT,
        )
    assert kept.evaluation == fresh
    assert kept.computed_at == NOW and kept.limit == measurement.EVALUATION_LIMIT
    assert kept.sample_from is None  # 40 decisions: fewer than the limit


def test_a_full_sample_covers_every_range_that_holds_it(app, shop):
    """With its limit reached, the kept evaluation is also that of any range through the
    same day that holds its decisions (their most recent ones are the same)."""
    runtime = app_runtime(app)
    with runtime.sessions() as session:
        config = session.get(Config, shop["id"])
        fresh = evaluation.evaluate(
            session, config, date_from=TODAY - dt.timedelta(days=29), date_to=TODAY, limit=10
        )
        evaluation_snapshots.store(session, shop["id"], fresh, limit=10, now=NOW)
        session.commit()
        kept = evaluation_snapshots.latest(session, shop["id"])
    assert kept.sample_from is not None and kept.sample_from >= NOW - dt.timedelta(minutes=30)
    assert kept.covers(TODAY - dt.timedelta(days=29), TODAY)
    assert kept.covers(TODAY - dt.timedelta(days=89), TODAY)
    assert kept.covers(TODAY, TODAY) == (kept.sample_from.date() == TODAY)
    assert not kept.covers(TODAY - dt.timedelta(days=29), TODAY - dt.timedelta(days=1))


def test_the_api_still_evaluates_afresh(app, shop):
    """GET /{id}/evaluation answers from the decision log, not from the kept copy."""
    _pass(app, shop["id"])
    runtime = app_runtime(app)
    with runtime.sessions() as session:
        config = session.get(Config, shop["id"])
        _learned(session, config, NOW - dt.timedelta(seconds=5), reward=True)
        session.commit()
        assert session.get(EvaluationSnapshot, shop["id"]).evaluation["n"] == 40
    answer = app.test_client().get(
        f"{BASE}/{shop['id']}/evaluation", headers={"Authorization": f"Bearer {shop['key']}"}
    )
    assert answer.status_code == 200 and answer.get_json()["n"] == 41
