"""HPE's built-in attribution models, registered like any plugin's.

A model splits one conversion's credit over the user's earlier decisions ("touches")
inside the configuration's attribution window. The measurement stage calls them through
``hpe_register_attribution_models``; a plugin adds a model the same way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Sequence

from hpe_core import hookimpl

Touch = tuple[object, dt.datetime]  # (decision id, decided at), oldest first


@dataclasses.dataclass(frozen=True)
class AttributionModel:
    """A named way to split credit: ``credit(touches, conversion_at)`` returns one share
    per touch (same order), summing to 1, or ``[]`` for no touches."""

    name: str
    description: str
    credit: Callable[[Sequence[Touch], dt.datetime], list[float]]


def last_touch(touches, conversion_at):
    return [0.0] * (len(touches) - 1) + [1.0] if touches else []


def first_touch(touches, conversion_at):
    return [1.0] + [0.0] * (len(touches) - 1) if touches else []


def linear(touches, conversion_at):
    return [1.0 / len(touches)] * len(touches) if touches else []


def time_decay(touches, conversion_at, half_life_hours: float = 168.0):
    """Credit halves every ``half_life_hours`` (7 days) before the conversion."""
    if not touches:
        return []
    weights = [
        math.pow(0.5, max((conversion_at - at).total_seconds(), 0) / 3600 / half_life_hours)
        for _decision, at in touches
    ]
    total = sum(weights)
    return [w / total for w in weights]


def position_based(touches, conversion_at):
    """40% to the first and the last touch, 20% shared by those in between."""
    n = len(touches)
    if n <= 2:
        return linear(touches, conversion_at)
    middle = 0.2 / (n - 2)
    return [0.4] + [middle] * (n - 2) + [0.4]


MODELS = [
    AttributionModel("last_touch", "All credit to the most recent decision.", last_touch),
    AttributionModel("first_touch", "All credit to the earliest decision.", first_touch),
    AttributionModel("linear", "Credit shared equally.", linear),
    AttributionModel("time_decay", "Recent decisions get more (7-day half-life).", time_decay),
    AttributionModel("position_based", "40% first, 40% last, 20% between.", position_based),
]


@hookimpl
def hpe_register_attribution_models():
    return list(MODELS)
