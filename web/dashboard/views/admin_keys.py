"""``/dashboard/admin/keys`` and ``/dashboard/admin/webhooks``: the workspace's API keys
and inbound webhook signing secrets (admin role only).

A new key or secret is shown once, on the page that answers the form (never in the
session cookie or a redirect: the cookie is signed, not encrypted); only its hash (a key)
or a nonce (a secret) is stored. Revoking a key asks for a confirmation first.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from hpe_core.deliver import administration as channel_admin
from hpe_core.deliver import webhooks
from hpe_core.errors import InvalidInput
from hpe_core.store.vocabulary import KeyKind, Role
from hpe_core.tenancy import administration, workspaces
from web.api import BASE
from web.dashboard.confirmation import confirm_page, confirmed
from web.dashboard.sessions import current_person, requires
from web.extensions import db_session

KEY_KINDS = {
    KeyKind.SECRET: "The whole API: configurations, metrics, imports. Keep it on servers.",
    KeyKind.PUBLISHABLE: "Decisions and outcomes only, from pages on the web channel's "
    "allowed origins: safe to put in a web page.",
}


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/admin/keys", "admin_keys", keys_page, methods=["GET", "POST"])
    blueprint.add_url_rule("/admin/keys/revoke", "admin_revoke_key", revoke, methods=["POST"])
    blueprint.add_url_rule(
        "/admin/webhooks", "admin_webhooks", webhooks_page, methods=["GET", "POST"]
    )


# --- API keys -----------------------------------------------------------------------------


@requires(Role.ADMIN)
def keys_page():
    """The workspace's keys, and the "create a key" form (POST shows the key once)."""
    if request.method == "GET":
        return _render_keys()
    form = {"name": request.form.get("name", "").strip(), "kind": request.form.get("kind", "")}
    session = db_session()
    try:
        row, key = administration.create_key(
            session, current_person(), name=form["name"], kind=form["kind"]
        )
    except InvalidInput as exc:
        session.rollback()
        return _render_keys(form=form, errors=exc.errors), 422
    session.commit()
    return _render_keys(created=(row, key))


@requires(Role.ADMIN)
def revoke():
    session = db_session()
    row = administration.key_of(session, current_person(), request.form.get("prefix", ""))
    if not confirmed():
        label = f"{row.prefix}…" + (f" ({row.name})" if row.name else "")
        return confirm_page(
            tab="admin_keys",
            heading="Revoke an API key",
            question=f"Revoke the {row.kind} key {label}?",
            consequences=(
                _refused_when(current_app.config["KEY_CACHE_SECONDS"]),
                "Whatever uses it stops working: make and deploy a new key first.",
                "A revoked key cannot be restored.",
            ),
            action=url_for("dashboard.admin_revoke_key"),
            fields={"prefix": row.prefix},
            button="Revoke key",
            cancel=url_for("dashboard.admin_keys"),
            testid="revoke",
        )
    administration.revoke_key(session, current_person(), row.prefix)
    session.commit()
    flash(f"Revoked {row.prefix}….")
    return redirect(url_for("dashboard.admin_keys"))


def _refused_when(cache_seconds: float) -> str:
    if cache_seconds > 0:  # each server trusts a key it checked for that long
        return f"Requests made with it are refused within {cache_seconds:g} seconds, everywhere."
    return "Requests made with it are refused from now on."


def _render_keys(*, form: dict | None = None, errors: dict | None = None, created=None):
    return render_template(
        "admin_keys.html",
        admin_tab="admin_keys",
        keys=list(reversed(workspaces.list_keys(db_session(), current_person().workspace_id))),
        kinds=KEY_KINDS,
        form=form or {"name": "", "kind": KeyKind.SECRET},
        errors=errors or {},
        created=created,
    )


# --- Webhook signing secrets --------------------------------------------------------------


@requires(Role.ADMIN)
def webhooks_page():
    """The workspace's signing secrets, and "create a secret" (POST shows it once)."""
    if request.method == "GET":
        return _render_webhooks()
    raw = request.form.get("grace_hours", "").strip()
    session = db_session()
    try:
        grace = _hours(raw)
        row, secret = channel_admin.create_webhook_secret(
            session, current_person().principal(), current_app.config["SECRET_KEY"], grace=grace
        )
    except InvalidInput as exc:
        session.rollback()
        return _render_webhooks(grace_hours=raw, errors=exc.errors), 422
    session.commit()
    return _render_webhooks(created=(row, secret))


def _hours(raw: str) -> dt.timedelta:
    try:
        hours = float(raw) if raw else webhooks.DEFAULT_GRACE.total_seconds() / 3600
    except ValueError:
        hours = float("nan")
    if hours != hours or hours in (float("inf"), float("-inf")):  # NaN or infinite
        raise InvalidInput("Invalid grace period.", {"grace_hours": ["Enter a number of hours."]})
    return dt.timedelta(hours=max(min(hours, 1e6), -1e6))


def _render_webhooks(*, grace_hours: str = "", errors: dict | None = None, created=None):
    person = current_person()
    return render_template(
        "admin_webhooks.html",
        admin_tab="admin_webhooks",
        secrets=channel_admin.secrets_of(db_session(), person.principal()),
        grace_hours=grace_hours or f"{webhooks.DEFAULT_GRACE.total_seconds() / 3600:g}",
        errors=errors or {},
        created=created,
        webhook_url=f"{request.host_url.rstrip('/')}{BASE}/webhooks/",
        tolerance=webhooks.TOLERANCE_SECONDS,
        signature_header=webhooks.SIGNATURE_HEADER,
        workspace_header=webhooks.WORKSPACE_HEADER,
    )
