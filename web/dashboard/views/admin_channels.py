"""``/dashboard/admin/channels`` and ``/dashboard/admin/consent`` (admin role only).

Channels: each installed channel with this workspace's settings for it (e.g. the web
channel's allowed origins), edited in a form drawn from the channel's own settings
schema and saved through the same validation as ``hpe channels configure``
(:mod:`web.dashboard.channel_forms`). Consent: look up a user's consent on a channel and
change it (after a confirmation), as ``hpe consent`` does; a change fires
``hpe_on_consent_changed`` like the CLI's.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from hpe_core.deliver import administration as channel_admin
from hpe_core.deliver import channels as channel_settings
from hpe_core.errors import InvalidInput
from hpe_core.events import notify
from hpe_core.store.vocabulary import ConsentStatus, Role
from web.dashboard import channel_forms
from web.dashboard.confirmation import confirm_page, confirmed
from web.dashboard.sessions import current_person, requires
from web.extensions import app_runtime, db_session

#: What each consent status means, as the form says it.
CONSENT_HINTS = {
    ConsentStatus.SUBSCRIBED: "The channel may reach them (the default).",
    ConsentStatus.UNSUBSCRIBED: "They asked not to be contacted on this channel.",
    ConsentStatus.BOUNCED: "Messages cannot be delivered to them (e.g. a hard bounce).",
    ConsentStatus.COMPLAINED: "They marked a message as spam.",
}


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/admin/channels", "admin_channels", channels_page)
    blueprint.add_url_rule(
        "/admin/channels/<channel>", "admin_channel", channel_page, methods=["GET", "POST"]
    )
    blueprint.add_url_rule("/admin/consent", "admin_consent", consent_page, methods=["GET", "POST"])


# --- Channel settings ---------------------------------------------------------------------


@requires(Role.ADMIN)
def channels_page():
    """Every installed channel, with this workspace's settings for it."""
    session, workspace_id = db_session(), current_person().workspace_id
    rows = [
        (
            name,
            connector,
            channel_settings.get_settings(session, workspace_id, name),
        )
        for name, connector in sorted(app_runtime().channels.items())
    ]
    return render_template("admin_channels.html", admin_tab="admin_channels", rows=rows)


@requires(Role.ADMIN)
def channel_page(channel: str):
    """One channel's settings form; POST saves them through the channel's schema."""
    connector = app_runtime().channels.get(channel)
    if connector is None:
        abort(404, description=f"No installed plugin provides the {channel!r} channel.")
    schema = type(connector).workspace_settings_schema
    if schema is None:
        return redirect(url_for("dashboard.admin_channels"))
    session, person = db_session(), current_person()
    if request.method == "GET":
        stored = channel_settings.get_settings(session, person.workspace_id, channel)
        return _render_channel(channel, connector, channel_forms.fields_of(schema, stored), {})
    settings, errors = channel_forms.settings_from(schema, request.form)
    if not errors:
        try:
            channel_admin.put_channel_settings(
                session, person.principal(), app_runtime().channels, channel, settings
            )
            session.commit()
            flash(f"Saved the {channel} channel's settings.")
            return redirect(url_for("dashboard.admin_channels"))
        except InvalidInput as exc:
            session.rollback()
            errors = channel_forms.messages(schema, exc.errors, settings)
    # Show what was typed, with each problem beside its input.
    typed = channel_forms.as_typed(schema, request.form)
    return _render_channel(channel, connector, typed, errors), 422


def _render_channel(channel, connector, fields, errors):
    return render_template(
        "admin_channel.html",
        admin_tab="admin_channels",
        channel=channel,
        connector=connector,
        fields=fields,
        labels={field.name: field.label for field in fields} | {"settings": "Settings"},
        errors=errors,
    )


# --- Consent ------------------------------------------------------------------------------


@requires(Role.ADMIN)
def consent_page():
    """Look up a user's consent (GET ?channel=&user_id=); change it (POST, confirmed)."""
    values = request.values
    channel, user_id = values.get("channel", ""), values.get("user_id", "").strip()
    if request.method == "POST":
        return _change_consent(channel, user_id, values.get("status", ""))
    found, errors = None, {}
    if "channel" in values or "user_id" in values:
        try:
            found = channel_admin.consent_of(
                db_session(), current_person().principal(), app_runtime().channels, channel, user_id
            )
        except InvalidInput as exc:
            errors = exc.errors
    return _render_consent(channel, user_id, found, errors), (422 if errors else 200)


def _change_consent(channel: str, user_id: str, status: str):
    session, person, runtime = db_session(), current_person(), app_runtime()
    try:
        found = channel_admin.consent_of(
            session, person.principal(), runtime.channels, channel, user_id
        )
        if status not in tuple(ConsentStatus):
            raise InvalidInput("Choose a status.", {"status": ["Choose the new status."]})
    except InvalidInput as exc:
        return _render_consent(channel, user_id, None, exc.errors), 422
    back = url_for("dashboard.admin_consent", channel=channel, user_id=user_id)
    if not confirmed():
        return confirm_page(
            tab="admin_consent",
            heading="Change consent",
            question=f"Record {user_id} as {status} on {channel}?",
            consequences=(
                f"Now: {found.status}.",
                "Decisions for them on this channel answer no_consent from now on."
                if ConsentStatus(status).withdrawn
                else "The channel may reach them again from now on.",
                "A withdrawal keeps its first reason: a complaint stays a complaint.",
            ),
            action=url_for("dashboard.admin_consent"),
            fields={"channel": channel, "user_id": user_id, "status": status},
            button="Change consent",
            danger=ConsentStatus(status).withdrawn,
            cancel=back,
            testid="consent",
        )
    changed = channel_admin.set_consent(
        session, person.principal(), runtime.channels, channel, user_id, status
    )
    session.commit()
    if changed:
        notify(
            runtime.pm.hook.hpe_on_consent_changed,
            workspace_id=person.workspace_id,
            channel=channel,
            user_id=user_id,
            status=status,
            source=person.actor,
        )
        flash(f"{user_id} on {channel}: {status}.")
    else:
        flash(f"{user_id} on {channel}: unchanged ({found.status}).")
    return redirect(back)


def _render_consent(channel, user_id, found, errors):
    return render_template(
        "admin_consent.html",
        admin_tab="admin_consent",
        channels=sorted(app_runtime().channels),
        statuses=CONSENT_HINTS,
        channel=channel,
        user_id=user_id,
        found=found,
        errors=errors,
    )
