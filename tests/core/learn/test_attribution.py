"""hpe_core.learn.attribution on real databases: user-level outcomes credited to the user's
decisions across channels, windows, isolation, re-attribution, bad models, learning."""

from __future__ import annotations

import datetime as dt
import math
import random
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from hpe_core.decide.decisions import DecisionEngine, DecisionRequest
from hpe_core.learn import attribution, learning, outcomes
from hpe_core.store.models import Attribution, Decision, Outcome, StaleMetricsDay
from hpe_core.tenancy import configs, workspaces
from hpe_core.tenancy.workspaces import Principal
from plugins.attribution import MODELS
from tests.conftest import BASE
from web.extensions import app_runtime

T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
BUILTIN = {model.name: model for model in MODELS}
REWARD = {
    "events": {"open": 0.1, "click": 1.0, "conversion": 0.01},
    "value_events": ["conversion"],
    "wait_seconds": 3600,
}
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])
postgres_only = pytest.mark.parametrize("backend", ["postgresql"])


class Shop:
    """One workspace's configuration, with decisions and outcomes at chosen times."""

    def __init__(self, app, session, workspace_id: str = "shop", **attribution_settings):
        self.app, self.session = app, session
        if session.get(workspaces.Workspace, workspace_id) is None:
            workspaces.create_workspace(session, workspace_id)
        self.principal = Principal(workspace_id, "test")
        settings = {
            "actions": [{"id": "a"}, {"id": "b"}],
            "reward": REWARD,
            "attribution": {"model": "linear", **attribution_settings},
        }
        self.config_id = configs.create(
            session, self.principal, app_runtime(app).catalog, name="Shop", settings=settings
        ).id
        session.commit()
        self.engine = DecisionEngine(app_runtime(app).sessions, rng=random.Random(3))

    def decide(self, user_id: str, at: dt.datetime, channel: str = "email") -> uuid.UUID:
        request = DecisionRequest(user_id=user_id, channel=channel, context={})
        decision = self.engine.decide(self.session, self.principal, self.config_id, request, now=at)
        self.session.commit()
        return decision.decision_id

    def convert(
        self, user_id: str, at: dt.datetime, value: float = 100.0, received: dt.datetime = None
    ) -> uuid.UUID:
        event = outcomes.OutcomeEvent(
            type="conversion", user_id=user_id, value=value, occurred_at=at
        )
        outcomes.record(self.session, self.principal, self.config_id, [event], now=received or at)
        self.session.commit()
        return self.session.scalar(
            sa.select(Outcome.id).where(
                Outcome.config_id == self.config_id,
                Outcome.user_id == user_id,
                Outcome.occurred_at == at,
            )
        )

    def attribute(self, models=None, **kwargs) -> attribution.AttributionReport:
        models = BUILTIN if models is None else models
        return attribution.attribute_pending(self.session, self.config_id, models, **kwargs)

    def credit(self, outcome_id: uuid.UUID | None = None) -> dict[uuid.UUID, float]:
        """decision id -> credit (of one outcome, or all of this configuration's)."""
        query = sa.select(Attribution.decision_id, Attribution.credit).where(
            Attribution.config_id == self.config_id
        )
        if outcome_id is not None:
            query = query.where(Attribution.outcome_id == outcome_id)
        self.session.expire_all()
        return dict(self.session.execute(query).all())

    def patch(self, settings_patch: dict) -> None:
        configs.update(
            self.session,
            self.principal,
            app_runtime(self.app).catalog,
            self.config_id,
            settings_patch=settings_patch,
        )
        self.session.commit()


@pytest.fixture
def shop(app, session):
    return Shop(app, session)


# --- through the API, on both backends -------------------------------------------------------


def test_a_conversion_is_split_across_the_users_touchpoints(app, client, tenant, make_tenant):
    """Decisions on email, web and ads for one user, then a conversion with only a user_id:
    the inline attribution job credits each touch a third (linear), and only those."""
    settings = {"actions": [{"id": "a"}, {"id": "b"}], "attribution": {"model": "linear"}}

    def create(as_headers, name="Spring"):
        response = client.post(
            f"{BASE}/", json={"name": name, "settings": settings}, headers=as_headers
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def decide(config_id, user_id, channel, headers=tenant.headers):
        response = client.post(
            f"{BASE}/{config_id}/decisions",
            json={"user_id": user_id, "channel": channel, "context": {}},
            headers=headers,
        )
        assert response.status_code == 201, response.get_json()
        return uuid.UUID(response.get_json()["decision_id"])

    config_id = create(tenant.headers)
    touches = [decide(config_id, "alice", channel) for channel in ("email", "web", "ads")]
    decide(config_id, "bob", "email")  # another user
    other_config = create(tenant.headers, "Other")
    decide(other_config, "alice", "email")  # same user, another configuration
    stranger = make_tenant("stranger")
    foreign_config = create(stranger.headers, "Foreign")
    decide(foreign_config, "alice", "web", headers=stranger.headers)  # another workspace

    response = client.post(
        f"{BASE}/{config_id}/outcomes",
        json={"user_id": "alice", "type": "conversion", "value": 100},
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.get_json()
    session = app_runtime(app).sessions()
    try:
        assert attribution.configs_with_pending(session) == [uuid.UUID(config_id)]
    finally:
        session.close()

    jobs = app_runtime(app).jobs
    assert jobs.enqueue_attribution(uuid.UUID(config_id))
    jobs.run_pending()

    session = app_runtime(app).sessions()
    try:
        rows = session.scalars(sa.select(Attribution)).all()
        assert {row.decision_id: row.credit for row in rows} == pytest.approx(
            {decision_id: 1 / 3 for decision_id in touches}
        )
        assert {row.model for row in rows} == {"linear"}
        assert {row.workspace_id for row in rows} == {tenant.id}
        outcome = session.scalar(sa.select(Outcome).where(Outcome.user_id == "alice"))
        assert outcome.attributed_at is not None
        assert {row.outcome_id for row in rows} == {outcome.id}
        assert attribution.configs_with_pending(session) == []
    finally:
        session.close()


def test_metrics_count_attributed_revenue_once_after_reattribution(app, client, tenant):
    """GET /metrics: a purchase of 100 credited by last touch is 100 of revenue on ads; after
    switching to linear and re-attributing, still 100 in total, a third per channel, and
    every touch engaged."""
    settings = {"actions": [{"id": "a"}], "attribution": {"model": "last_touch"}}
    response = client.post(
        f"{BASE}/", json={"name": "m", "settings": settings}, headers=tenant.headers
    )
    config_id = response.get_json()["id"]
    for channel in ("email", "web", "ads"):
        response = client.post(
            f"{BASE}/{config_id}/decisions",
            json={"user_id": "alice", "channel": channel, "context": {}},
            headers=tenant.headers,
        )
        assert response.status_code == 201, response.get_json()
    response = client.post(
        f"{BASE}/{config_id}/outcomes",
        json={"user_id": "alice", "type": "conversion", "value": 100},
        headers=tenant.headers,
    )
    assert response.status_code == 202
    jobs = app_runtime(app).jobs

    def attribute_and_measure() -> dict:
        jobs.enqueue_attribution(uuid.UUID(config_id))
        jobs.enqueue_measure(uuid.UUID(config_id))  # stores the rollups it can
        jobs.run_pending()
        today = dt.datetime.now(dt.UTC).date()
        query = f"from={today - dt.timedelta(days=1)}&to={today + dt.timedelta(days=1)}"
        response = client.get(f"{BASE}/{config_id}/metrics?{query}", headers=tenant.headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def by_channel(body: dict, counter: str) -> dict:
        totals: dict = {}
        for day in body["daily"]:
            for channel, split in day["metrics"]["channels"].items():
                for counts in split.values():
                    totals[channel] = totals.get(channel, 0) + counts[counter]
        return totals

    body = attribute_and_measure()
    assert body["summary"]["revenue"] == pytest.approx(100.0)
    assert by_channel(body, "revenue") == pytest.approx({"email": 0, "web": 0, "ads": 100})

    response = client.patch(
        f"{BASE}/{config_id}",
        json={"settings": {"attribution": {"model": "linear"}}},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.get_json()
    session = app_runtime(app).sessions()
    try:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        assert attribution.reattribute(session, uuid.UUID(config_id), since=since) == 1
        session.commit()
    finally:
        session.close()
    body = attribute_and_measure()
    assert body["summary"]["revenue"] == pytest.approx(100.0)
    third = 100 / 3
    assert by_channel(body, "revenue") == pytest.approx(
        {"email": third, "web": third, "ads": third}
    )
    assert by_channel(body, "engagements") == {"email": 1, "web": 1, "ads": 1}


def test_touches_outside_the_window_or_after_the_conversion_get_nothing(shop):
    """window_hours 24: a decision exactly 24 h before counts, one a second earlier and one
    a second after the conversion do not."""
    shop.patch({"attribution": {"window_hours": 24}})
    conversion = T0 + dt.timedelta(days=2)
    too_early = shop.decide("alice", conversion - 24 * HOUR - dt.timedelta(seconds=1))
    on_edge = shop.decide("alice", conversion - 24 * HOUR, channel="web")
    recent = shop.decide("alice", conversion - HOUR, channel="ads")
    after = shop.decide("alice", conversion + dt.timedelta(seconds=1))
    outcome_id = shop.convert("alice", conversion)

    report = shop.attribute()
    assert (report.outcomes, report.credited_decisions, report.unattributed) == (1, 2, 0)
    assert shop.credit(outcome_id) == pytest.approx({on_edge: 0.5, recent: 0.5})
    assert too_early not in shop.credit() and after not in shop.credit()


def test_an_outcome_without_touches_is_attributed_with_no_credit(shop):
    """A conversion of a user with no decision in the window: marked done, no rows."""
    shop.decide("alice", T0 - dt.timedelta(days=30))  # far outside the 7-day window
    outcome_id = shop.convert("alice", T0)
    report = shop.attribute(now=T0 + HOUR)
    assert (report.outcomes, report.credited_decisions, report.unattributed) == (1, 0, 1)
    assert shop.credit() == {}
    assert shop.session.get(Outcome, outcome_id).attributed_at == T0 + HOUR
    assert attribution.configs_with_pending(shop.session) == []


def test_a_second_run_changes_nothing(shop):
    """Idempotent: once attributed, a rerun finds nothing waiting and writes nothing."""
    first = shop.decide("alice", T0)
    shop.decide("bob", T0)
    shop.convert("alice", T0 + HOUR)
    shop.convert("bob", T0 + HOUR)
    assert shop.attribute().outcomes == 2
    before = shop.credit()
    again = shop.attribute()
    assert (again.outcomes, again.credited_decisions) == (0, 0)
    assert shop.credit() == before and before[first] == 1.0


def test_days_of_credited_decisions_are_marked_for_a_new_rollup(shop):
    """Credit changes a past day's revenue: that day (and only days with credit) is stale."""
    shop.session.execute(sa.delete(StaleMetricsDay))
    shop.session.commit()
    old = shop.decide("alice", T0 - dt.timedelta(days=3))
    shop.decide("bob", T0 - dt.timedelta(days=5))  # bob converts nothing
    shop.convert("alice", T0)
    shop.attribute()
    stale = shop.session.scalars(
        sa.select(StaleMetricsDay.date).where(StaleMetricsDay.config_id == shop.config_id)
    ).all()
    assert stale == [(T0 - dt.timedelta(days=3)).date()]
    assert old in shop.credit()


def test_reattribution_with_another_model_leaves_one_credit_set(shop):
    """last_touch, then the model changes to linear and `reattribute` redoes the outcome:
    its old rows are replaced, credits sum to 1 and credit × value is the value once."""
    channels = ("email", "web", "ads")
    touches = [shop.decide("alice", T0 + n * HOUR, channel=c) for n, c in enumerate(channels)]
    outcome_id = shop.convert("alice", T0 + 5 * HOUR, value=100.0)
    shop.patch({"attribution": {"model": "last_touch"}})
    shop.attribute()
    assert shop.credit(outcome_id) == {touches[-1]: 1.0}

    shop.patch({"attribution": {"model": "linear"}})
    assert attribution.reattribute(shop.session, shop.config_id, since=T0) == 1
    shop.session.commit()
    assert attribution.configs_with_pending(shop.session) == [shop.config_id]
    # Until the next run the old credit stays: metrics never see a gap.
    assert shop.credit(outcome_id) == {touches[-1]: 1.0}
    report = shop.attribute()
    assert (report.outcomes, report.credited_decisions, report.model) == (1, 3, "linear")
    credit = shop.credit(outcome_id)
    assert credit == pytest.approx({d: 1 / 3 for d in touches})
    assert math.fsum(credit.values()) == pytest.approx(1.0)
    rows = shop.session.execute(
        sa.select(Attribution.credit, Outcome.value).join(
            Outcome, Outcome.id == Attribution.outcome_id
        )
    ).all()
    assert math.fsum(c * v for c, v in rows) == pytest.approx(100.0)  # revenue not doubled


def test_reattribute_only_resets_outcomes_since_the_date(shop):
    """Outcomes that occurred before ``since`` keep their attribution; unknown config: 404."""
    shop.decide("alice", T0)
    shop.decide("bob", T0 + 2 * 24 * HOUR)
    shop.convert("alice", T0 + HOUR)
    shop.convert("bob", T0 + 2 * 24 * HOUR + HOUR)
    shop.attribute()
    assert attribution.reattribute(shop.session, shop.config_id, since=T0 + 24 * HOUR) == 1
    shop.session.commit()
    waiting = shop.session.scalars(
        sa.select(Outcome.user_id).where(Outcome.attributed_at.is_(None))
    ).all()
    assert waiting == ["bob"]
    from hpe_core.errors import NotFound

    with pytest.raises(NotFound):
        attribution.reattribute(shop.session, uuid.uuid4(), since=T0)


def test_an_imported_earlier_touch_is_credited_after_a_rerun(shop):
    """A conversion attributed to nothing, then an older decision is logged for the user
    (like an import): `reattribute` + a run credit it."""
    outcome_id = shop.convert("alice", T0)
    assert shop.attribute().unattributed == 1
    earlier = shop.decide("alice", T0 - 2 * HOUR)
    assert shop.attribute().outcomes == 0  # nothing waits: the outcome was done
    attribution.reattribute(shop.session, shop.config_id, since=T0 - 24 * HOUR)
    shop.session.commit()
    assert shop.attribute().credited_decisions == 1
    assert shop.credit(outcome_id) == {earlier: 1.0}


def test_time_decay_uses_the_configured_half_life(shop):
    """half_life_hours 12, touches 24 h and 0 h before: 0.2 and 0.8 stored."""
    shop.patch({"attribution": {"model": "time_decay", "half_life_hours": 12}})
    old, new = shop.decide("alice", T0), shop.decide("alice", T0 + 24 * HOUR, channel="web")
    outcome_id = shop.convert("alice", T0 + 24 * HOUR)
    shop.attribute()
    assert shop.credit(outcome_id) == pytest.approx({old: 0.2, new: 0.8})


def test_batches_cover_every_waiting_outcome(shop):
    """Seven outcomes in batches of two, received in ties of three (the cursor breaks ties
    by id): every one is attributed, each to its own user."""
    decisions = {f"u{n}": shop.decide(f"u{n}", T0) for n in range(7)}
    for n in range(7):
        shop.convert(f"u{n}", T0 + HOUR, received=T0 + HOUR + (n // 3) * dt.timedelta(seconds=1))
    report = shop.attribute(batch_size=2)
    assert (report.outcomes, report.credited_decisions) == (7, 7)
    assert shop.credit() == {decision_id: 1.0 for decision_id in decisions.values()}


# --- models that are missing or broken -------------------------------------------------------


@sqlite_only
def test_an_uninstalled_model_falls_back_to_last_touch(shop):
    """attribution.model names a model no plugin provides any more: the last touch gets the
    credit (recorded as last_touch), nothing crashes, nothing waits."""
    first, last = shop.decide("alice", T0), shop.decide("alice", T0 + HOUR, channel="web")
    outcome_id = shop.convert("alice", T0 + 2 * HOUR)
    report = shop.attribute(models={"first_touch": BUILTIN["first_touch"]})  # linear is gone
    assert (report.model, report.outcomes) == ("last_touch", 1)
    assert shop.credit(outcome_id) == {last: 1.0}
    assert first not in shop.credit()
    models = shop.session.scalars(sa.select(Attribution.model)).all()
    assert models == ["last_touch"]


@sqlite_only
def test_with_no_models_at_all_last_touch_still_works(shop):
    """Even with every attribution plugin blocked, HPE's own last touch credits."""
    last = [shop.decide("alice", T0 + n * HOUR) for n in range(3)][-1]
    shop.convert("alice", T0 + 4 * HOUR)
    assert shop.attribute(models={}).outcomes == 1
    assert shop.credit() == {last: 1.0}


class _Model:
    """A plugin model whose ``credit`` is the given function."""

    def __init__(self, credit):
        self.name, self.description, self.credit = "linear", "test", credit


def _raises(touches, at, options):
    raise RuntimeError("plugin bug")


@sqlite_only
@pytest.mark.parametrize(
    "bad",
    [
        lambda touches, at, options: [1.0],  # wrong length
        lambda touches, at, options: [1.5, -0.5],  # negative
        lambda touches, at, options: [float("nan"), 1.0],  # NaN
        lambda touches, at, options: [0.4, 0.4],  # sums to 0.8
        _raises,
    ],
    ids=["length", "negative", "nan", "sum", "raises"],
)
def test_a_bad_model_answer_is_never_written_and_the_outcome_waits(shop, bad, caplog):
    """Invalid credit for two touches: that outcome is skipped (left waiting, logged); an
    outcome the same model splits correctly (one touch) is attributed in the same run."""

    def model(touches, at, options):
        return bad(touches, at, options) if len(touches) == 2 else [1.0]

    shop.decide("alice", T0)
    shop.decide("alice", T0 + HOUR, channel="web")
    solo = shop.decide("bob", T0)
    broken = shop.convert("alice", T0 + 2 * HOUR)
    fine = shop.convert("bob", T0 + 2 * HOUR)
    report = shop.attribute(models={"linear": _Model(model)})
    assert (report.outcomes, report.skipped, report.credited_decisions) == (1, 1, 1)
    assert shop.credit(broken) == {}
    assert shop.credit(fine) == {solo: 1.0}
    assert shop.session.get(Outcome, broken).attributed_at is None
    assert shop.session.get(Outcome, fine).attributed_at is not None
    assert str(broken) in caplog.text
    # The next run tries again (and, the model still broken, skips again without looping).
    again = shop.attribute(models={"linear": _Model(model)}, batch_size=1)
    assert (again.outcomes, again.skipped) == (0, 1)


# --- credit into rewards ---------------------------------------------------------------------


def test_learning_gives_credited_decisions_their_share_of_the_reward(shop):
    """Three touches, linear: the two whose windows are open when the conversion (value
    100, weight 0.01) occurs learn 1/3 of 1.0; the one whose window had closed learns the
    default and is not engaged, though it keeps its attribution credit."""
    closed = shop.decide("alice", T0 - 2 * HOUR)  # window closed at T0 - 1 h
    email = shop.decide("alice", T0)
    web = shop.decide("alice", T0 + dt.timedelta(minutes=10), channel="web")
    shop.convert("alice", T0 + dt.timedelta(minutes=20), received=T0 + dt.timedelta(minutes=21))
    shop.attribute(now=T0 + dt.timedelta(minutes=22))
    assert shop.credit() == pytest.approx({closed: 1 / 3, email: 1 / 3, web: 1 / 3})

    learning.learn_all_closed(shop.session, shop.config_id, now=T0 + 2 * HOUR)
    shop.session.expire_all()
    rows = {d.id: d for d in shop.session.scalars(sa.select(Decision))}
    assert rows[email].reward == pytest.approx(1 / 3) and rows[email].engaged
    assert rows[web].reward == pytest.approx(1 / 3) and rows[web].engaged
    assert rows[closed].reward == 0.0 and rows[closed].engaged is False


def test_direct_and_attributed_outcomes_combine(shop):
    """A click tied to the decision (1.0) plus half of a 100 conversion (0.01 × 100 × 0.5)."""
    first = shop.decide("alice", T0)
    shop.decide("alice", T0 + dt.timedelta(minutes=1), channel="web")
    click = outcomes.OutcomeEvent(type="click", decision_id=first)
    outcomes.record(shop.session, shop.principal, shop.config_id, [click], now=T0)
    shop.session.commit()
    shop.convert("alice", T0 + dt.timedelta(minutes=5))
    shop.attribute()
    learning.learn_all_closed(shop.session, shop.config_id, now=T0 + 2 * HOUR)
    shop.session.expire_all()
    assert shop.session.get(Decision, first).reward == pytest.approx(1.0 + 0.5)


@sqlite_only
def test_credit_written_after_learning_does_not_change_the_learned_reward(shop):
    """The sweep missed it: learned first (default reward), attributed later. The reward
    stays; the credit row exists for metrics."""
    decision_id = shop.decide("alice", T0)
    shop.convert("alice", T0 + dt.timedelta(minutes=5), received=T0 + 2 * HOUR)
    learning.learn_all_closed(shop.session, shop.config_id, now=T0 + 2 * HOUR)
    shop.attribute()
    learning.learn_all_closed(shop.session, shop.config_id, now=T0 + 3 * HOUR)
    shop.session.expire_all()
    assert shop.session.get(Decision, decision_id).reward == 0.0
    assert shop.credit() == {decision_id: 1.0}


# --- concurrency (PostgreSQL) ----------------------------------------------------------------


@postgres_only
def test_a_run_finds_the_configuration_busy_while_another_holds_it(app, shop):
    """The per-configuration advisory lock: a second run at the same time writes nothing."""
    shop.decide("alice", T0)
    shop.convert("alice", T0 + HOUR)
    holder = app_runtime(app).sessions()
    try:
        assert attribution._try_lock(holder, shop.config_id)
        report = shop.attribute()
        assert report.busy and report.outcomes == 0
        assert shop.credit() == {}
    finally:
        holder.rollback()
        holder.close()
    assert shop.attribute().outcomes == 1


@postgres_only
def test_concurrent_runs_never_double_credit(app, shop):
    """Four threads attribute 200 outcomes at once, in small batches: each outcome ends
    with credits summing to exactly 1."""
    users = [f"u{n}" for n in range(100)]
    rows = []
    for user in users:
        for k in range(2):
            rows.append(
                {
                    "id": uuid.uuid4(), "workspace_id": "shop", "config_id": shop.config_id,
                    "user_id": user, "channel": "email", "context": {}, "eligible": ["a", "b"],
                    "probabilities": [0.5, 0.5], "action_id": "a", "probability": 0.5,
                    "variant": "treatment", "policy": "model", "model_version": 0,
                    "model_action_id": "a", "source": "live", "created_at": T0 + k * HOUR,
                    "window_closes_at": T0 + (k + 1) * HOUR,
                }
            )  # fmt: skip
    shop.session.execute(sa.insert(Decision), rows)
    shop.session.commit()
    for n, user in enumerate(users):
        for k in range(2):
            received = T0 + 3 * HOUR + dt.timedelta(seconds=2 * n + k)
            shop.convert(user, T0 + 2 * HOUR + k * dt.timedelta(minutes=1), received=received)

    reports, errors = [], []

    def run():
        session = app_runtime(app).sessions()
        try:
            while True:
                report = attribution.attribute_pending(
                    session, shop.config_id, BUILTIN, batch_size=7
                )
                reports.append(report)
                if not report.busy:
                    return
                time.sleep(0.01)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(r.outcomes for r in reports) == 200
    sums = shop.session.execute(
        sa.select(
            Attribution.outcome_id, sa.func.sum(Attribution.credit), sa.func.count()
        ).group_by(Attribution.outcome_id)
    ).all()
    assert len(sums) == 200
    assert all(total == pytest.approx(1.0) and count == 2 for _, total, count in sums)
    assert attribution.configs_with_pending(shop.session) == []


def test_an_attributed_outcome_counts_its_credit_shares_by_type(app, client, tenant):
    """summary.outcomes: a user-level conversion split by linear attribution over two
    touches counts once in all (half per touch), beside a direct click."""
    settings = {"actions": [{"id": "a"}], "attribution": {"model": "linear"}}
    response = client.post(
        f"{BASE}/", json={"name": "m", "settings": settings}, headers=tenant.headers
    )
    config_id = response.get_json()["id"]
    decision_ids = []
    for channel in ("email", "web"):
        response = client.post(
            f"{BASE}/{config_id}/decisions",
            json={"user_id": "alice", "channel": channel, "context": {}},
            headers=tenant.headers,
        )
        assert response.status_code == 201, response.get_json()
        decision_ids.append(response.get_json()["decision_id"])
    outcomes = [
        {"user_id": "alice", "type": "conversion", "value": 10, "idempotency_key": "o-1"},
        {"decision_id": decision_ids[0], "type": "click"},
    ]
    response = client.post(
        f"{BASE}/{config_id}/outcomes", json={"outcomes": outcomes}, headers=tenant.headers
    )
    assert response.status_code == 202
    jobs = app_runtime(app).jobs
    jobs.enqueue_attribution(uuid.UUID(config_id))
    jobs.run_pending()
    response = client.get(f"{BASE}/{config_id}/metrics", headers=tenant.headers)
    by_type = response.get_json()["summary"]["outcomes"]
    conversion, click = by_type["conversion"], by_type["click"]
    assert conversion["treatment"] + conversion["holdout"] == pytest.approx(1.0)
    assert click["treatment"] + click["holdout"] == 1
    assert conversion["weight"] == 1.0 and click["weight"] == 1.0
