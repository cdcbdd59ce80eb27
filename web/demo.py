"""``hpe demo``: a workspace with weeks of simulated history, to explore the dashboard.

The simulated audience of :mod:`hpe_core.simulation` meets a real configuration through
HPE's own services, in simulated time: each day's decisions are made by the decision
engine as of that day, their outcomes recorded as of minutes later, the closed reward
windows learned at the end of the day (so the model improves day by day, as it would
live), and one settings change is made part-way (a mark on the charts). Finally the
measurement pass rolls the days up and raises recommendations. Nothing is faked: the
numbers on the pages are what HPE computed from that history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from collections.abc import Callable

from hpe_core import simulation
from hpe_core.decide.decisions import DecisionRequest
from hpe_core.decide.results import Decision
from hpe_core.learn import learning, outcomes
from hpe_core.measure import measurement
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import activities, configs, people, workspaces
from hpe_core.tenancy.workspaces import Principal
from web.simulate import simulation_settings

#: A reward window short enough to close within each simulated day.
WAIT_SECONDS = 3600
#: Outcomes arrive this long after their decision.
OUTCOME_DELAY = dt.timedelta(minutes=5)
COMMIT_EVERY = 500


@dataclasses.dataclass
class DemoReport:
    workspace_id: str
    config_id: str
    key: str
    decisions: int = 0
    days: int = 0
    email: str | None = None
    password: str | None = None


def fill(
    runtime,
    *,
    workspace_id: str = "demo",
    days: int = 30,
    per_day: int = 1000,
    seed: int = 7,
    email: str | None = None,
    password_cost: int | None = None,
    now: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Create a demo workspace with ``days`` days of history ending ``now``.

    :param runtime: the process's :class:`hpe_core.runtime.Runtime`
    :param email: also create this person as the workspace's admin (password generated)
    :param progress: called with (day number, days) after each simulated day
    """
    now = now or dt.datetime.now(dt.UTC)
    report = _workspace(runtime, workspace_id, email, password_cost)
    population = simulation.Population(size=4000, seed=seed)
    rng = random.Random(f"hpe-demo-{seed}")
    first_day = now.date() - dt.timedelta(days=days - 1)
    for index in range(days):
        day = first_day + dt.timedelta(days=index)
        _one_day(runtime, report, population, rng, day, per_day, now)
        if index == days // 3:
            _change_settings(runtime, report, day)
        report.days += 1
        if progress:
            progress(index + 1, days)
    with runtime.sessions() as session:
        measurement.run(session, _id(report), runtime.measurement, now=now)
    return report


def _workspace(runtime, workspace_id: str, email: str | None, password_cost) -> DemoReport:
    with runtime.sessions() as session:
        if session.get(workspaces.Workspace, workspace_id) is None:
            workspaces.create_workspace(session, workspace_id, "Demo retailer")
        _row, key = workspaces.create_key(session, workspace_id, name="demo")
        config = configs.create(
            session,
            Principal(workspace_id, "demo"),
            runtime.catalog,
            name="Spring sale (demo)",
            settings=simulation_settings(holdout=10, wait_seconds=WAIT_SECONDS, algorithm=None),
        )
        report = DemoReport(workspace_id=workspace_id, config_id=str(config.id), key=key)
        if email:
            _user, report.password = people.create_user(
                session,
                email,
                workspace_id=workspace_id,
                role=Role.ADMIN,
                actor="demo",
                password_cost=password_cost or runtime.settings["PASSWORD_HASH_COST"],
            )
            report.email = email
        session.commit()
    return report


def _one_day(runtime, report, population, rng, day: dt.date, per_day: int, now) -> None:
    """A day of decisions and outcomes as of that day, then learn what closed."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    end = min(start + dt.timedelta(days=1), now)
    if end <= start:
        return
    span = (end - start).total_seconds()
    count = max(1, int(per_day * span / 86400))
    moments = sorted(start + dt.timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
    touches = population.touchpoints(count, seed=f"{report.config_id}-{day}")
    principal = Principal(report.workspace_id, "demo")
    with runtime.sessions() as session:
        for number, (moment, touch) in enumerate(zip(moments, touches, strict=True), start=1):
            _decide_and_respond(runtime, session, principal, report, touch, moment, rng)
            if number % COMMIT_EVERY == 0:
                session.commit()
        session.commit()
        learning.learn_all_closed(session, _id(report), now=end)
    runtime.decisions.models.reload(_id(report))


def _decide_and_respond(runtime, session, principal, report, touch, moment, rng) -> None:
    result = runtime.decisions.decide(
        session,
        principal,
        _id(report),
        DecisionRequest(user_id=touch.user.user_id, channel=touch.channel, context=touch.context),
        now=moment,
    )
    if not isinstance(result, Decision):
        return
    report.decisions += 1
    offer = simulation.OFFERS_BY_ID[result.action_id]
    events = simulation.outcomes(touch.user, offer, touch.channel, rng)
    if not events:
        return
    at = moment + OUTCOME_DELAY
    outcomes.record(
        session,
        principal,
        _id(report),
        [
            outcomes.OutcomeEvent(
                type=event["type"],
                decision_id=result.decision_id,
                value=event.get("value"),
                occurred_at=at,
            )
            for event in events
        ],
        source="demo",
        now=at,
    )


def _change_settings(runtime, report, day: dt.date) -> None:
    """One change part-way through, as a marketer would make (a mark on the charts)."""
    with runtime.sessions() as session:
        configs.update(
            session,
            Principal(report.workspace_id, "demo"),
            runtime.catalog,
            _id(report),
            settings_patch={"goals": {"target_lift": 0.3}},
        )
        # The change happened on the simulated day, not today: date its activity so.
        activity = session.scalars(
            activities.query(session, _id(report), type="config.updated")
        ).first()
        activity.created_at = dt.datetime.combine(day, dt.time(12), dt.UTC)
        session.commit()


def _id(report: DemoReport) -> uuid.UUID:
    return uuid.UUID(report.config_id)
