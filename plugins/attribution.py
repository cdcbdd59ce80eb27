"""HPE's built-in attribution models (and the ``hpe attribution`` command), registered like
any plugin's.

A model splits one conversion's credit over the user's earlier decisions ("touches")
inside the configuration's attribution window. :mod:`hpe_core.learn.attribution` calls them
through ``hpe_register_attribution_models`` and checks what they return; a plugin adds a
model the same way (see docs/plugins.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence

import click

from hpe_core import hookimpl
from hpe_core.learn.attribution import Touch
from plugins.app_runtime import app_runtime

__all__ = ["MODELS", "AttributionModel", "Touch"]

#: ``credit(touches, conversion_at, options) -> shares``
CreditFunction = Callable[[Sequence[Touch], dt.datetime, Mapping], list[float]]


@dataclasses.dataclass(frozen=True)
class AttributionModel:
    """A named way to split credit.

    :param name: the value of a configuration's ``attribution.model`` that selects it
    :param description: one line for people choosing a model
    :param credit: ``credit(touches, conversion_at, options)`` returns one share per touch
        (same order, oldest first), each >= 0, summing to 1. ``touches`` are
        :class:`~hpe_core.learn.attribution.Touch` tuples ``(decision_id, decided_at, channel)``,
        never empty; ``options`` is the configuration's ``attribution`` settings block
        (``window_hours``, ``half_life_hours``, ...).
    """

    name: str
    description: str
    credit: CreditFunction


def last_touch(touches: Sequence[Touch], conversion_at: dt.datetime, options: Mapping):
    """All credit to the most recent decision."""
    return [0.0] * (len(touches) - 1) + [1.0] if touches else []


def first_touch(touches: Sequence[Touch], conversion_at: dt.datetime, options: Mapping):
    """All credit to the earliest decision."""
    return [1.0] + [0.0] * (len(touches) - 1) if touches else []


def linear(touches: Sequence[Touch], conversion_at: dt.datetime, options: Mapping):
    """Credit shared equally."""
    return [1.0 / len(touches)] * len(touches) if touches else []


def time_decay(touches: Sequence[Touch], conversion_at: dt.datetime, options: Mapping):
    """A touch's weight halves every ``options["half_life_hours"]`` (default 24) before the
    conversion; shares are the weights normalised to sum to 1."""
    if not touches:
        return []
    half_life = float(options.get("half_life_hours") or 24.0)
    ages = [max((conversion_at - touch.decided_at).total_seconds(), 0.0) for touch in touches]
    # Relative to the newest touch, so a long window cannot underflow every weight to 0.
    youngest = min(ages)
    weights = [math.pow(0.5, (age - youngest) / 3600.0 / half_life) for age in ages]
    total = sum(weights)
    return [weight / total for weight in weights]


def position_based(touches: Sequence[Touch], conversion_at: dt.datetime, options: Mapping):
    """40% to the first and 40% to the last touch, 20% shared by those in between
    (one touch: all of it; two: half each)."""
    count = len(touches)
    if count <= 2:
        return linear(touches, conversion_at, options)
    middle = 0.2 / (count - 2)
    return [0.4] + [middle] * (count - 2) + [0.4]


MODELS = [
    AttributionModel("last_touch", "All credit to the most recent decision.", last_touch),
    AttributionModel("first_touch", "All credit to the earliest decision.", first_touch),
    AttributionModel("linear", "Credit shared equally by every decision.", linear),
    AttributionModel(
        "time_decay", "Recent decisions get more (halves every half_life_hours).", time_decay
    ),
    AttributionModel("position_based", "40% first, 40% last, 20% between.", position_based),
]


@hookimpl
def hpe_register_attribution_models():
    return list(MODELS)


# --- hpe attribution -------------------------------------------------------------------


@hookimpl
def hpe_register_commands():
    return [attribution]


@click.group()
def attribution():
    """Attribution of user-level outcomes (conversions without a decision_id)."""


@attribution.command("rerun")
@click.argument("config_id", type=click.UUID)
@click.option(
    "--since",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Redo outcomes that occurred at or after this UTC date (YYYY-MM-DD).",
)
@click.option(
    "--no-run",
    is_flag=True,
    help="Only mark them for attribution; the workers' next sweep redoes them.",
)
def rerun(config_id, since, no_run):
    """Redo CONFIG_ID's attribution of outcomes since --since with the current settings
    (after changing the model or window, or importing older decisions)."""
    from hpe_core.learn import attribution as service
    from plugins.cli import app_session

    since = since.replace(tzinfo=dt.UTC)
    with app_session() as (app, session):
        reset = service.reattribute(session, config_id, since=since)
        session.commit()
        click.echo(f"{reset} outcome(s) since {since:%Y-%m-%d %H:%M} UTC marked for attribution.")
        if no_run:
            return
        models = app_runtime(app).measurement.attribution_models
        report = service.attribute_pending(session, config_id, models)
    click.echo(
        f"Attributed {report.outcomes} outcome(s) with {report.model}: "
        f"{report.credited_decisions} credit(s), {report.unattributed} without a touch, "
        f"{report.skipped} skipped"
        + (" (another run holds this configuration)" if report.busy else "")
    )
