"""``/dashboard/``: the workspace's configurations, one row each, sortable.

Each row reads the same metrics as its results page (the metrics API's default range,
the last 30 days), plus the health badges (:mod:`hpe_core.measure.health`). Sorting is a
link (``?sort=lift&dir=desc``), so it works without JavaScript and can be shared.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask import Blueprint, render_template, request

from hpe_core.measure import health, metrics
from hpe_core.measure.metrics import MetricsReport
from hpe_core.store.models import Config
from hpe_core.store.vocabulary import ConfigStatus, Role
from hpe_core.tenancy import configs, survey
from hpe_core.tenancy.configs import settings_of
from web.dashboard.sessions import current_person, requires
from web.extensions import app_runtime, db_session

#: Column -> sort key of a row (None sorts last whichever the direction).
SORTS = {
    "name": lambda row: row.config.name.lower(),
    "status": lambda row: _STATUS_ORDER.get(row.config.status, 9),
    "lift": lambda row: row.report.summary.lift.estimate,
    "decisions": lambda row: row.decisions,
    "roi": lambda row: row.report.summary.roi,
    "recommendations": lambda row: row.open_recommendations,
}
_STATUS_ORDER = {ConfigStatus.ACTIVE: 0, ConfigStatus.PAUSED: 1, ConfigStatus.INACTIVE: 2}
#: The overview reads at most this many configurations (newest first); more is a search.
MAX_ROWS = 100


@dataclasses.dataclass(frozen=True)
class Row:
    config: Config
    report: MetricsReport
    health: health.Health
    open_recommendations: int

    @property
    def decisions(self) -> int:
        return self.report.summary.decisions.treatment + self.report.summary.decisions.holdout


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/", "overview", overview)


@requires()
def overview():
    person = current_person()
    session = db_session()
    found = list(session.scalars(configs.query(session, person.principal()).limit(MAX_ROWS)))
    rows = _rows(found)
    sort = request.args.get("sort", "status")
    sort = sort if sort in SORTS else "status"
    descending = request.args.get("dir", "desc" if sort in ("lift", "decisions", "roi") else "asc")
    rows = _sorted(rows, sort, descending == "desc")
    return render_template(
        "overview.html",
        rows=rows,
        sort=sort,
        descending=descending == "desc",
        may_edit=person.may(Role.EDITOR),
        # SC-003's satisfaction, for admins (the survey's report page has the rest).
        survey=survey.report(session, person.workspace_id) if person.may(Role.ADMIN) else None,
        date_range=(rows[0].report.date_from, rows[0].report.date_to) if rows else None,
    )


def _rows(found: list[Config]) -> list[Row]:
    person, session = current_person(), db_session()
    costs = app_runtime().measurement.channel_costs
    reports = {
        config.id: metrics.read(session, person.principal(), config.id, channel_costs=costs)
        for config in found
    }
    recommendations = health.open_recommendations(session, reports)
    now = dt.datetime.now(dt.UTC)
    badges = health.many(
        session,
        {
            config.id: (
                settings_of(config),
                reports[config.id].summary,
                recommendations.get(config.id, (0, False))[1],
            )
            for config in found
        },
        now,
    )
    return [
        Row(
            config=config,
            report=reports[config.id],
            health=badges[config.id],
            open_recommendations=recommendations.get(config.id, (0, False))[0],
        )
        for config in found
    ]


def _sorted(rows: list[Row], sort: str, descending: bool) -> list[Row]:
    key = SORTS[sort]
    present = [row for row in rows if key(row) is not None]
    missing = [row for row in rows if key(row) is None]
    return sorted(present, key=key, reverse=descending) + missing
