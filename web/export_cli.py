"""``hpe export decisions|metrics CONFIG_ID``: the API's exports from the command line,
streamed to a file or stdout (``hpe_core.integrations.exports``)."""

from __future__ import annotations

import datetime as dt
import uuid

import click

_FORMAT = click.Choice(["ndjson", "csv"])
_DAY = click.DateTime(["%Y-%m-%d"])


@click.group()
def export():
    """Export a configuration's decisions or daily metrics (NDJSON or CSV)."""


def _options(command):
    command = click.option(
        "--output",
        "-o",
        type=click.File("wb"),
        default="-",
        show_default=True,
        help="File to write ('-': stdout).",
    )(command)
    command = click.option("--format", "fmt", type=_FORMAT, default="ndjson", show_default=True)(
        command
    )
    command = click.option("--to", "date_to", type=_DAY, help="Last UTC day, included.")(command)
    command = click.option("--from", "date_from", type=_DAY, help="First UTC day, included.")(
        command
    )
    return click.argument("config_id", type=click.UUID)(command)


@export.command("decisions")
@_options
def export_decisions(config_id, date_from, date_to, fmt, output):
    """Every decision of CONFIG_ID made --from..--to (default: the last 30 days), with its
    propensities, variant, model version, outcomes and reward."""
    from hpe_core.integrations import exports

    _write(
        config_id,
        date_from,
        date_to,
        output,
        lambda session, config, dates: exports.encode(
            exports.decisions(session, config, dates), fmt, exports.DECISION_FIELDS
        ),
    )


@export.command("metrics")
@_options
def export_metrics(config_id, date_from, date_to, fmt, output):
    """CONFIG_ID's daily metrics --from..--to: one row per day, variant and scope."""
    from hpe_core.integrations import exports
    from plugins.app_runtime import app_runtime

    def rows(session, config, dates):
        costs = app_runtime().measurement.channel_costs
        return exports.encode(
            exports.daily_metrics(session, config, dates, channel_costs=costs),
            fmt,
            exports.METRIC_FIELDS,
        )

    _write(config_id, date_from, date_to, output, rows)


def _write(config_id: uuid.UUID, date_from, date_to, output, chunks) -> None:
    from hpe_core.errors import InvalidInput
    from hpe_core.integrations import exports
    from hpe_core.store.models import Config
    from plugins.cli import app_session

    with app_session(INLINE_SWEEPER=False) as (_app, session):
        config = session.get(Config, config_id)
        if config is None:
            raise click.ClickException(f"No configuration {config_id}.")
        try:
            dates = exports.DateRange.of(
                date_from.date() if date_from else None,
                date_to.date() if date_to else None,
                dt.datetime.now(dt.UTC).date(),
            )
        except InvalidInput as exc:
            raise click.BadParameter(exc.message, param_hint="--from") from exc
        for chunk in chunks(session, config, dates):
            output.write(chunk)
        output.flush()
