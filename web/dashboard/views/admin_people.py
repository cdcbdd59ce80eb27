"""``/dashboard/admin/people``: the workspace's people (admin role only).

List them with their role and last sign-in; add a person with a role (a new account gets
a generated password, shown once on the page that answers the form: never put in the
session cookie or a redirect); change a role; disable a person or reset their password,
each after a confirmation page. The services are :mod:`hpe_core.tenancy.administration`'s
(the CLI's, bounded to the workspace and logged with the admin as the actor).
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from hpe_core.errors import Conflict, Forbidden, InvalidInput, NotFound
from hpe_core.store.vocabulary import Role
from hpe_core.tenancy import administration
from web.dashboard.confirmation import confirm_page, confirmed
from web.dashboard.sessions import current_person, requires
from web.extensions import db_session

TAB = "admin_people"
#: What each role may do, as the form says it.
ROLE_HINTS = {
    Role.VIEWER: "Reads every page.",
    Role.EDITOR: "Also creates and edits configurations, pauses them, applies recommendations.",
    Role.ADMIN: "Also manages people, API keys, webhook secrets, channels and consent.",
}


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/admin/people", TAB, people_page, methods=["GET", "POST"])
    blueprint.add_url_rule("/admin/people/role", "admin_role", change_role, methods=["POST"])
    blueprint.add_url_rule("/admin/people/disable", "admin_disable", disable, methods=["POST"])
    blueprint.add_url_rule(
        "/admin/people/reset-password", "admin_reset_password", reset_password, methods=["POST"]
    )


@requires(Role.ADMIN)
def people_page():
    """The list, and the "add a person" form (POST adds, then shows the password once)."""
    if request.method == "GET":
        return _render()
    form = {key: request.form.get(key, "").strip() for key in ("email", "name", "role")}
    session = db_session()
    try:
        added = administration.add_person(
            session,
            current_person(),
            form["email"],
            role=form["role"] or Role.EDITOR,
            name=form["name"],
            password_cost=current_app.config["PASSWORD_HASH_COST"],
        )
    except (InvalidInput, Conflict) as exc:
        session.rollback()
        errors = exc.errors if isinstance(exc, InvalidInput) else {"email": [exc.message]}
        return _render(form=form, errors=_as_lists(errors)), 422
    session.commit()
    return _render(added=added)


@requires(Role.ADMIN)
def change_role():
    person, session = current_person(), db_session()
    email, role = request.form.get("email", ""), request.form.get("role", "")
    try:
        administration.change_role(session, person, email, role)
    except (InvalidInput, Conflict, NotFound) as exc:
        session.rollback()
        flash(f"{email}: {exc.message}")
        return redirect(url_for("dashboard.admin_people"))
    session.commit()
    if email.strip().lower() == person.email and role != Role.ADMIN:
        return redirect(url_for("dashboard.overview"))  # no admin pages for them any more
    flash(f"{email} is now {role}.")
    return redirect(url_for("dashboard.admin_people"))


@requires(Role.ADMIN)
def disable():
    email = request.form.get("email", "")
    session = db_session()
    user = administration.member(session, current_person(), email)
    if not confirmed():
        return confirm_page(
            tab=TAB,
            heading="Disable a person",
            question=f"Disable {user.email}?",
            consequences=(
                "They can no longer sign in, in any workspace; their open sessions end now.",
                "What they changed stays, with their name on it in the activity log.",
                "There is no undo in the dashboard: an operator re-creates the account.",
            ),
            action=url_for("dashboard.admin_disable"),
            fields={"email": user.email},
            button="Disable",
            cancel=url_for("dashboard.admin_people"),
            testid="disable",
        )
    try:
        administration.disable_person(session, current_person(), email)
    except (Conflict, Forbidden) as exc:
        session.rollback()
        flash(exc.message)
        return redirect(url_for("dashboard.admin_people"))
    session.commit()
    flash(f"Disabled {user.email}: their sessions have ended.")
    return redirect(url_for("dashboard.admin_people"))


@requires(Role.ADMIN)
def reset_password():
    email = request.form.get("email", "")
    session = db_session()
    user = administration.member(session, current_person(), email)
    if not confirmed():
        return confirm_page(
            tab=TAB,
            heading="Reset a password",
            question=f"Give {user.email} a new password?",
            consequences=(
                "Their current password stops working and their open sessions end now.",
                "The new password is shown once, on the next page: pass it on safely.",
            ),
            action=url_for("dashboard.admin_reset_password"),
            fields={"email": user.email},
            button="Reset password",
            cancel=url_for("dashboard.admin_people"),
            testid="reset-password",
        )
    try:
        password = administration.reset_password(
            session,
            current_person(),
            email,
            password_cost=current_app.config["PASSWORD_HASH_COST"],
        )
    except (Conflict, Forbidden) as exc:
        session.rollback()
        flash(exc.message)
        return redirect(url_for("dashboard.admin_people"))
    session.commit()
    return _render(reset=(user.email, password))


def _render(*, form: dict | None = None, errors: dict | None = None, added=None, reset=None):
    return render_template(
        "admin_people.html",
        admin_tab=TAB,
        members=administration.members(db_session(), current_person()),
        roles=ROLE_HINTS,
        form=form or {"email": "", "name": "", "role": Role.EDITOR},
        errors=errors or {},
        added=added,
        reset=reset,
    )


def _as_lists(errors: dict) -> dict:
    return {name: [m] if isinstance(m, str) else list(m) for name, m in errors.items()}
