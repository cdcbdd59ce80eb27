"""The measurement pass of one configuration, run by a job every few minutes.

Roll up the days that changed, check the circuit breaker, refresh the recommendations
and, in ``autonomous`` mode, apply them. (Attribution runs separately and sooner: its
credit must reach decisions before their reward windows close.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class MeasurementPlugins:
    """What measurement needs from the installed plugins, resolved once per process.

    :param attribution_models: model name -> model (``hpe_register_attribution_models``)
    :param channel_costs: channel name -> cost of one decision on it (the connector's
        ``cost_per_decision``), added to the action's own ``cost``
    """

    attribution_models: Mapping[str, object] = dataclasses.field(default_factory=dict)
    channel_costs: Mapping[str, float] = dataclasses.field(default_factory=dict)
