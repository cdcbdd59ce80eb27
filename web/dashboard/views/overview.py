"""``/dashboard/``: the workspace's configurations, one row each."""

from __future__ import annotations

from flask import Blueprint, render_template

from hpe_core.tenancy import configs
from web.dashboard.sessions import current_person, requires
from web.extensions import db_session


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/", "overview", overview)


@requires()
def overview():
    person = current_person()
    rows = list(db_session().scalars(configs.query(db_session(), person.principal())))
    return render_template("overview.html", rows=rows)
