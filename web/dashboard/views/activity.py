"""``/dashboard/configs/<id>/activity``: the configuration's activity trail (FR-003).

Every activity with its actor, time and what changed, settings updates shown change by
change (:mod:`hpe_core.tenancy.settings_changes`), filterable by type, actor and date (all
in the URL), and downloadable as CSV with the same filters.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import uuid

from flask import Blueprint, Response, render_template, request
from sqlalchemy import select

from hpe_core.store.models import Activity, Config
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.settings_changes import changes
from web.dashboard.page_range import PageRange
from web.dashboard.sessions import current_person, requires
from web.extensions import db_session

PAGE_SIZE = 100
#: The CSV holds at most this many rows (newest first); narrow the filters for older ones.
MAX_EXPORT = 50_000


@dataclasses.dataclass(frozen=True)
class Entry:
    """One activity as the trail shows it: what changed, line by line."""

    activity: Activity
    lines: tuple[str, ...]


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/configs/<uuid:config_id>/activity", "activity", trail)
    blueprint.add_url_rule("/configs/<uuid:config_id>/activity.csv", "activity_csv", trail_csv)
    blueprint.add_url_rule("/admin/activity", "admin_activity", workspace_trail)
    blueprint.add_url_rule("/admin/activity.csv", "admin_activity_csv", workspace_trail_csv)


def _filters() -> dict:
    """The URL's filters as the activity queries take them."""
    page_range = PageRange.from_request(request.args)
    return {
        "type": request.args.get("type") or None,
        "actor": request.args.get("actor") or None,
        "since": _midnight(page_range.date_from),
        "until": _midnight(page_range.date_to + dt.timedelta(days=1))
        if page_range.date_to
        else None,
    }


def _filtered(config_id: uuid.UUID):
    config = configs.get(db_session(), current_person().principal(), config_id)
    statement = activities.query(db_session(), config.id, **_filters())
    return config, PageRange.from_request(request.args), statement


@requires()
def trail(config_id: uuid.UUID):
    config, page_range, statement = _filtered(config_id)
    page = max(1, request.args.get("page", 1, type=int))
    rows = list(db_session().scalars(statement.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    types, actors = activities.types_and_actors(db_session(), config.id)
    return render_template(
        "activity.html",
        config=config,
        entries=[Entry(row, describe(row)) for row in rows[:PAGE_SIZE]],
        more=len(rows) > PAGE_SIZE,
        page=page,
        types=types,
        actors=actors,
        filters={k: request.args.get(k, "") for k in ("type", "actor", "from", "to")},
        page_range=page_range,
    )


@requires(Role.ADMIN)
def workspace_trail():
    """Every activity of the workspace: sign-ins, people, keys and secrets, consent and
    channel changes (which belong to no configuration), and every configuration's."""
    person = current_person()
    statement = activities.workspace_query(db_session(), person.workspace_id, **_filters())
    page = max(1, request.args.get("page", 1, type=int))
    rows = list(db_session().scalars(statement.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    types, actors = activities.types_and_actors(db_session(), workspace_id=person.workspace_id)
    names = dict(
        db_session()
        .execute(select(Config.id, Config.name).where(Config.workspace_id == person.workspace_id))
        .all()
    )
    return render_template(
        "admin_activity.html",
        admin_tab="admin_activity",
        entries=[Entry(row, describe(row)) for row in rows[:PAGE_SIZE]],
        config_names=names,
        more=len(rows) > PAGE_SIZE,
        page=page,
        types=types,
        actors=actors,
        filters={k: request.args.get(k, "") for k in ("type", "actor", "from", "to")},
    )


@requires(Role.ADMIN)
def workspace_trail_csv():
    person = current_person()
    statement = activities.workspace_query(db_session(), person.workspace_id, **_filters())
    return _csv(statement, f"hpe-{person.workspace_id}-activity.csv")


@requires()
def trail_csv(config_id: uuid.UUID):
    config, _range, statement = _filtered(config_id)
    return _csv(statement, f"hpe-{config.id}-activity.csv")


def _csv(statement, filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["time_utc", "type", "actor", "summary", "data"])
    for row in db_session().scalars(statement.limit(MAX_EXPORT)):
        writer.writerow(
            [
                row.created_at.astimezone(dt.UTC).isoformat(),
                row.type,
                row.actor,
                "; ".join(describe(row)),
                json.dumps(row.data, sort_keys=True, default=str),
            ]
        )
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def describe(row: Activity) -> tuple[str, ...]:
    """What an activity says, one line per change or fact."""
    data = row.data or {}
    if row.type == activities.CONFIG_UPDATED and isinstance(data.get("changes"), dict):
        lines = []
        for path, (before, after) in data["changes"].items():
            found = changes(before, after, path.removeprefix("settings."))
            lines += [str(change) for change in found] or [f"{path}: {before} → {after}"]
        return tuple(lines)
    if row.type == activities.CONFIG_CREATED:
        settings = data.get("settings") or {}
        offers = len(settings.get("actions") or [])
        return (f"created as {data.get('status', '?')} with {offers} offers",)
    if row.type == activities.CONFIG_STATUS_CHANGED:
        return (f"status {data.get('from')} → {data.get('to')}",)
    return tuple(f"{key}: {_short(value)}" for key, value in sorted(data.items()))


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 200 else text[:197] + "…"


def _midnight(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time(), dt.UTC)
