"""CSV downloads of a results page's tables: the daily table and each breakdown.

The same numbers as the page (one metrics read over the page's range), one row per day,
channel, action or segment, with raw counts beside every rate so a spreadsheet can
recompute anything.
"""

from __future__ import annotations

import csv
import io
import uuid

from flask import Blueprint, Response, abort, request

from hpe_core.measure import impact, metrics
from hpe_core.store.vocabulary import Variant
from hpe_core.tenancy import configs
from web.dashboard.page_range import PageRange
from web.dashboard.sessions import current_person, requires
from web.extensions import app_runtime, db_session

TABLES = ("daily", "channels", "actions", "segments")
_COUNTS = [
    "treatment_decisions",
    "treatment_engagements",
    "treatment_rate",
    "holdout_decisions",
    "holdout_engagements",
    "holdout_rate",
]
_LIFT = ["lift", "lift_ci_low", "lift_ci_high", "p_value"]


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/configs/<uuid:config_id>/<table>.csv", "export", export)


@requires()
def export(config_id: uuid.UUID, table: str):
    if table not in TABLES:
        abort(404)
    person = current_person()
    config = configs.get(db_session(), person.principal(), config_id)
    page_range = PageRange.from_request(request.args)
    report = metrics.read(
        db_session(),
        person.principal(),
        config.id,
        date_from=page_range.date_from,
        date_to=page_range.date_to,
        channel_costs=app_runtime().measurement.channel_costs,
    )
    header, rows = _TABLE_BUILDERS[table](report)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    filename = f"hpe-{config.id}-{table}-{report.date_from}-{report.date_to}.csv"
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _counts(comparison) -> list:
    return [
        comparison.decisions.treatment,
        comparison.engagements.treatment,
        _round(comparison.engagement_rate.treatment),
        comparison.decisions.holdout,
        comparison.engagements.holdout,
        _round(comparison.engagement_rate.holdout),
    ]


def _lift(lift) -> list:
    return [_round(lift.estimate), _round(lift.ci_low), _round(lift.ci_high), _round(lift.p_value)]


def _daily(report) -> tuple[list, list]:
    header = [
        "date",
        *_COUNTS,
        "cumulative_lift",
        "cumulative_lift_ci_low",
        "cumulative_lift_ci_high",
    ]
    rows = []
    for point in impact.day_points(report.daily):
        counts = []
        for variant in (Variant.TREATMENT, Variant.HOLDOUT):
            counts += [
                point.decisions[variant],
                point.engagements[variant],
                _round(point.rate[variant]),
            ]
        lift = point.cumulative_lift
        rows.append([point.date.isoformat(), *counts, *_lift(lift)[:3]])
    return header, rows


def _slices(block: str):
    def build(report) -> tuple[list, list]:
        gain = impact.impact(report.summary)
        header = [
            block[:-1],
            *_COUNTS,
            *_LIFT,
            "incremental_engagements",
            "incremental_revenue",
            "incremental_revenue_ci_low",
            "incremental_revenue_ci_high",
            "revenue",
            "cost",
            "roi",
        ]
        rows = []
        for part in getattr(gain, block):
            slice_ = part.comparison
            rows.append(
                [
                    part.name,
                    *_counts(slice_),
                    *_lift(slice_.lift),
                    _round(part.engagements.estimate),
                    _round(part.revenue.estimate),
                    _round(part.revenue.ci_low),
                    _round(part.revenue.ci_high),
                    _round(slice_.revenue),
                    _round(slice_.cost),
                    _round(slice_.roi),
                ]
            )
        return header, rows

    return build


def _segments(report) -> tuple[list, list]:
    header = ["segment", "channel", *_COUNTS, *_LIFT]
    rows = [
        [segment, channel, *_counts(comparison), *_lift(comparison.lift)]
        for segment, by_channel in sorted(report.summary.segments.items())
        for channel, comparison in sorted(by_channel.items())
    ]
    return header, rows


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 6)


_TABLE_BUILDERS = {
    "daily": _daily,
    "channels": _slices("channels"),
    "actions": _slices("actions"),
    "segments": _segments,
}
