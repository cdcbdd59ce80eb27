"""First run: the one-time link ``hpe serve`` prints creates the first admin and workspace."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from hpe_core.errors import InvalidInput, Unauthorized
from hpe_core.tenancy import people
from web.dashboard import sessions
from web.extensions import db_session


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/setup/<token>", "setup", setup, methods=["GET", "POST"])


def setup(token: str):
    """``/dashboard/setup/<token>``: create the first admin and workspace, then sign in."""
    session = db_session()
    if not people.setup_token_valid(session, token):
        abort(404)
    form = {key: request.form.get(key, "") for key in ("email", "workspace_id", "workspace_name")}
    if request.method == "GET":
        return render_template("setup.html", token=token, form=form, errors={})
    cost = current_app.config["PASSWORD_HASH_COST"]
    password = request.form.get("password", "")
    try:
        people.complete_setup(
            session,
            token,
            email=form["email"],
            password=password,
            workspace_id=form["workspace_id"],
            workspace_name=form["workspace_name"],
            password_cost=cost,
        )
        session.flush()
        person = people.sign_in(
            session, form["email"], password, workspace_id=form["workspace_id"], password_cost=cost
        )
    except InvalidInput as exc:
        session.rollback()
        return render_template("setup.html", token=token, form=form, errors=exc.errors), 422
    except Unauthorized:
        session.rollback()
        abort(404)
    session.commit()
    sessions.begin(person)
    return redirect(url_for("dashboard.overview"))
