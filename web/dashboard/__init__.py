"""The marketer's dashboard: server-rendered pages under ``/dashboard/`` (DESIGN.md §9).

Pages are Jinja templates that work before any JavaScript runs; small vendored libraries
(``static/vendor/``) only upgrade them (partial updates with htmx, charts with uPlot).
Views are thin: they call the same ``hpe_core`` services as the REST API, acting as the
signed-in person (:mod:`web.dashboard.sessions`), and render one template each.
"""

from __future__ import annotations

from flask import Blueprint, Flask, redirect, url_for

from hpe_core.tenancy import people
from web.dashboard import csrf, formatting, security_headers
from web.dashboard.sessions import DashboardSessionInterface, current_person
from web.extensions import app_state, db_session


def init_dashboard(app: Flask) -> None:
    """Register the dashboard's pages, its session cookie and its template helpers."""
    from web.dashboard.views.account import make_sign_in_limiter

    app.session_interface = DashboardSessionInterface()
    app_state(app).sign_in_limiter = make_sign_in_limiter()
    formatting.register(app)
    app.register_blueprint(_make_blueprint())
    app.add_url_rule("/", "root", lambda: redirect(url_for("dashboard.overview")))


def _make_blueprint() -> Blueprint:
    # One blueprint per app: routes cannot be added to a blueprint once an app has it,
    # and tests build many apps in one process.
    from web.dashboard.views import (
        account,
        activity,
        admin_channels,
        admin_keys,
        admin_people,
        configs,
        exports,
        overview,
        results,
        setup,
        survey,
    )

    blueprint = Blueprint(
        "dashboard",
        __name__,
        url_prefix="/dashboard",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    blueprint.before_request(csrf.protect)
    blueprint.after_request(security_headers.add)
    blueprint.context_processor(_page_context)
    for module in (account, setup, overview, results, exports, configs, activity):
        module.register(blueprint)
    for module in (survey, admin_people, admin_keys, admin_channels):
        module.register(blueprint)
    return blueprint


def _page_context() -> dict:
    person = current_person()
    workspaces = people.workspaces_of(db_session(), person.user_id) if person else {}
    return {"person": person, "workspaces": workspaces, "csrf_token": csrf.token}
