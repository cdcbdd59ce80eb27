"""``hpe ads export``: ship a configuration's audiences now."""

from __future__ import annotations

import uuid

import click

from plugins.app_runtime import app_runtime


@click.group()
def ads():
    """Ad audiences (hashed customer lists)."""


@ads.command("export")
@click.argument("config_id", type=click.UUID)
def export(config_id: uuid.UUID):
    """Upload (or drop) one CSV per action of CONFIG_ID, from its recent ads deliveries."""
    from hpe_core.errors import HpeError
    from plugins.cli import app_session

    with app_session() as (app, session):
        connector = app_runtime(app).channels.get("ads")
        if connector is None:
            raise click.ClickException("The ads channel is not loaded.")
        try:
            exported = connector.export_audiences(session, config_id)
        except HpeError as exc:
            raise click.ClickException(exc.message) from exc
    for item in exported:
        click.echo(
            f"{item['action_id']}\t{item['audience']}\t{item['rows']} rows\t{item['target']}"
        )
