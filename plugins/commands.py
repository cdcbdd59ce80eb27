"""Built-in commands for channels, registered through ``hpe_register_commands``:
``hpe webhooks`` (signing secrets), ``hpe channels`` (per-workspace channel settings),
``hpe consent`` (look up or restore a user's consent)."""

from __future__ import annotations

import datetime as dt
import json

import click

from hpe_core import hookimpl
from plugins.app_runtime import app_runtime


@hookimpl
def hpe_register_commands():
    return [webhooks, channels, consent]


# --- hpe webhooks ----------------------------------------------------------------------


@click.group()
def webhooks():
    """Inbound webhook signing secrets (per workspace)."""


@webhooks.command("create-secret")
@click.argument("workspace_id")
@click.option(
    "--grace-hours",
    default=24.0,
    show_default=True,
    type=float,
    help="How long the previous secret keeps working (0: revoke it now).",
)
def create_secret(workspace_id, grace_hours):
    """Create (or rotate) WORKSPACE_ID's signing secret and print it (the last line)."""
    from hpe_core.deliver import webhooks as hooks_service
    from plugins.cli import app_session

    with app_session() as (app, session):
        _row, secret = hooks_service.create_secret(
            session,
            workspace_id,
            app.config["SECRET_KEY"],
            grace=dt.timedelta(hours=grace_hours),
        )
    click.echo(
        f"New webhook signing secret for {workspace_id} (shown only once). Sign "
        "'<unix time>.<raw body>' with HMAC-SHA256 and send X-HPE-Workspace and "
        "X-HPE-Signature: t=<unix time>,v1=<hex>.",
        err=True,
    )
    click.echo(secret)


@webhooks.command("list-secrets")
@click.argument("workspace_id")
def list_secrets(workspace_id):
    """List WORKSPACE_ID's secrets: hint, created, expires. Never the secrets."""
    from hpe_core.deliver import webhooks as hooks_service
    from plugins.cli import app_session

    with app_session() as (_app, session):
        click.echo("hint\tcreated\texpires")
        for row in hooks_service.list_secrets(session, workspace_id):
            expires = f"{row.expires_at:%Y-%m-%d %H:%M}" if row.expires_at else "-"
            click.echo(f"{row.hint}…\t{row.created_at:%Y-%m-%d %H:%M}\t{expires}")


# --- hpe channels ----------------------------------------------------------------------


@click.group()
def channels():
    """Channels: list them, and set a workspace's settings for one."""


@channels.command("list")
@click.option("--health", is_flag=True, help="Also run each channel's health check.")
def channels_list(health):
    """List the channels the installed plugins provide."""
    from plugins.cli import app_session
    from plugins.manager import plugin_name_of
    from web.api.channels import check_health

    with app_session() as (app, _session):
        pm = app_runtime(app).pm
        for name, connector in sorted(app_runtime(app).channels.items()):
            line = f"{name}\t{plugin_name_of(pm, type(connector))}\t{connector.description}"
            if health:
                status = check_health(pm, connector)
                line += f"\t{'ok' if status.ok else 'FAILING'}: {status.detail}"
            click.echo(line)


@channels.command("configure")
@click.argument("workspace_id")
@click.argument("channel")
@click.argument("settings_json")
def channels_configure(workspace_id, channel, settings_json):
    """Replace WORKSPACE_ID's settings for CHANNEL with SETTINGS_JSON, e.g.
    hpe channels configure acme web '{"allowed_origins": ["https://shop.example"]}'."""
    from hpe_core.deliver import channels as channel_service
    from plugins.cli import app_session

    try:
        settings = json.loads(settings_json)
    except ValueError as exc:
        raise click.BadParameter(f"Not JSON: {exc}", param_hint="SETTINGS_JSON") from exc
    with app_session() as (app, session):
        stored = channel_service.put_settings(
            session, app_runtime(app).channels, workspace_id, channel, settings
        )
    click.echo(json.dumps(stored, sort_keys=True))


@channels.command("show")
@click.argument("workspace_id")
@click.argument("channel")
def channels_show(workspace_id, channel):
    """Print WORKSPACE_ID's settings for CHANNEL."""
    from hpe_core.deliver import channels as channel_service
    from plugins.cli import app_session

    with app_session() as (_app, session):
        settings = channel_service.get_settings(session, workspace_id, channel)
    click.echo(json.dumps(settings, sort_keys=True))


# --- hpe consent -----------------------------------------------------------------------


@click.group()
def consent():
    """A user's consent per channel (unsubscribes, bounces, complaints)."""


@consent.command("show")
@click.argument("workspace_id")
@click.argument("channel")
@click.argument("user_id")
def consent_show(workspace_id, channel, user_id):
    """Print USER_ID's consent status for CHANNEL."""
    from hpe_core.decide import consent as consent_service
    from plugins.cli import app_session

    with app_session() as (_app, session):
        click.echo(consent_service.status_of(session, workspace_id, channel, user_id))


@consent.command("set")
@click.argument("workspace_id")
@click.argument("channel")
@click.argument("user_id")
@click.argument(
    "status", type=click.Choice(["subscribed", "unsubscribed", "bounced", "complained"])
)
def consent_set(workspace_id, channel, user_id, status):
    """Record USER_ID's consent for CHANNEL (e.g. 'subscribed' after a re-opt-in)."""
    from hpe_core.decide import consent as consent_service
    from plugins.cli import app_session

    with app_session() as (app, session):
        changed = consent_service.set_status(
            session,
            workspace_id=workspace_id,
            channel=channel,
            user_id=user_id,
            status=status,
            source="cli",
        )
    if changed:
        app_runtime(app).pm.hook.hpe_on_consent_changed(
            workspace_id=workspace_id, channel=channel, user_id=user_id, status=status, source="cli"
        )
    click.echo(f"{user_id} on {channel}: {status}" + ("" if changed else " (unchanged)"))
