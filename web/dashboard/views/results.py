"""``/dashboard/configs/<id>``: a configuration's results, and the actions taken from them.

The numbers are :func:`hpe_core.measure.metrics.read`'s, over the same range and with the
same default as ``GET /{id}/metrics``, so the page and the API always agree. Off-policy
evaluation is slower (it replays the model on logged decisions): the page shows the one
the measurement pass last computed, with its time, when it covers the page's range
(:mod:`hpe_core.measure.evaluation_snapshots`), with a link to evaluate again now;
otherwise it loads after the page, into a panel marked ``aria-busy`` until it arrives
(and is a link without JavaScript).
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from hpe_core.decide.policy import store
from hpe_core.errors import Conflict, InvalidInput, NotFound
from hpe_core.measure import evaluation, evaluation_snapshots, impact, metrics
from hpe_core.recommend import recommendations
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import configs
from hpe_core.tenancy.configs import settings_of
from hpe_core.tenancy.settings_changes import patch_changes
from web.dashboard import charts, timeline
from web.dashboard.page_range import PRESETS, PageRange, preset
from web.dashboard.sessions import current_person, requires
from web.extensions import app_runtime, catalog, db_session

#: The model versions panel lists this many, newest first.
MODEL_ROWS = 5


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/configs/<uuid:config_id>", "results", results)
    blueprint.add_url_rule("/configs/<uuid:config_id>/evaluation", "evaluation", evaluation_panel)
    blueprint.add_url_rule(
        "/configs/<uuid:config_id>/model/rollback", "rollback", roll_back, methods=["POST"]
    )
    blueprint.add_url_rule(
        "/configs/<uuid:config_id>/recommendations/<uuid:recommendation_id>"
        "/<any(apply, dismiss):act>",
        "recommendation",
        act_on_recommendation,
        methods=["POST"],
    )


@requires()
def results(config_id: uuid.UUID):
    person = current_person()
    session = db_session()
    config = configs.get(session, person.principal(), config_id)
    page_range = PageRange.from_request(request.args)
    report, range_error = _report(config.id, page_range)
    if report is None:  # a bad range: say so, and show the default one
        page_range = PageRange()
        report, _ = _report(config.id, page_range)
    open_recommendations = recommendations.list_for(session, person.principal(), config.id)
    points = impact.day_points(report.daily)
    marks = timeline.annotations(session, config.id, report.date_from, report.date_to)
    measured = evaluation_snapshots.latest(session, config.id)
    if measured is not None and not measured.covers(report.date_from, report.date_to):
        measured = None
    return render_template(
        "results.html",
        config=config,
        settings=settings_of(config),
        report=report,
        summary=report.summary,
        gain=impact.impact(report.summary),
        points=points,
        annotations=marks,
        lift_chart=charts.lift_series(points, marks),
        daily_chart=charts.daily_series(points, marks),
        segment_rows=charts.segment_rows(report.summary),
        presets=PRESETS,
        preset=lambda days: preset(days, today()),
        recommendations=open_recommendations,
        versions=list(session.scalars(store.list_versions(session, config.id).limit(MODEL_ROWS))),
        previews={
            r.id: patch_changes(config.settings, r.patch) for r in open_recommendations if r.patch
        },
        breaker=next((r for r in open_recommendations if r.kind == "circuit_breaker"), None),
        measured_evaluation=measured,
        page_range=page_range,
        range_error=range_error,
        may_edit=person.may(Role.EDITOR),
    )


def _report(config_id: uuid.UUID, page_range: PageRange):
    try:
        return (
            metrics.read(
                db_session(),
                current_person().principal(),
                config_id,
                date_from=page_range.date_from,
                date_to=page_range.date_to,
                channel_costs=app_runtime().measurement.channel_costs,
            ),
            None,
        )
    except InvalidInput as exc:
        return None, exc.message


@requires()
def evaluation_panel(config_id: uuid.UUID):
    """The off-policy evaluation panel (a fragment for htmx, a page without it)."""
    page_range = PageRange.from_request(request.args)
    try:
        found = evaluation.read(
            db_session(),
            current_person().principal(),
            config_id,
            date_from=page_range.date_from,
            date_to=page_range.date_to,
        )
        error = None
    except InvalidInput as exc:
        found, error = None, exc.message
    template = "_evaluation.html" if request.headers.get("HX-Request") else "evaluation.html"
    config = configs.get(db_session(), current_person().principal(), config_id)
    return render_template(template, config=config, evaluation=found, error=error)


@requires(Role.EDITOR)
def act_on_recommendation(config_id: uuid.UUID, recommendation_id: uuid.UUID, act: str):
    """Apply or dismiss one open recommendation, then back to the results."""
    person = current_person()
    session = db_session()
    try:
        if act == "apply":
            row, config = recommendations.apply(
                session, person.principal(), catalog(), config_id, recommendation_id
            )
            session.commit()
            app_runtime().decisions.invalidate(config.id)
            flash(f"Applied: {row.title}")
        else:
            row = recommendations.dismiss(session, person.principal(), config_id, recommendation_id)
            session.commit()
            flash(f"Dismissed: {row.title}")
    except (Conflict, NotFound) as exc:
        # Someone else acted first, or the settings moved on: say so on the page.
        session.rollback()
        flash(exc.message)
    back = request.form.get("back") or ""
    return redirect(
        back
        if back.startswith("/dashboard/")
        else url_for("dashboard.results", config_id=config_id)
    )


@requires(Role.EDITOR)
def roll_back(config_id: uuid.UUID):
    """Serve an earlier model version again (the model versions panel)."""
    session = db_session()
    try:
        version = int(request.form.get("version", ""))
    except ValueError:
        abort(400, description="Which version? The form sent none.")
    restored = store.roll_back_configuration(
        session, current_person().principal(), config_id, version
    )
    session.commit()
    app_runtime().decisions.models.reload(restored.config_id)
    flash(f"Model v{version} serves again (saved as v{restored.version}).")
    return redirect(url_for("dashboard.results", config_id=config_id) + "#models-title")


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
