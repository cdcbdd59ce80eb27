"""The HPE domain, laid out by the loop's stages: ``tenancy``, ``store``, ``decide``,
``deliver``, ``learn``, ``measure``, ``recommend`` (docs/architecture.md).

This package never imports Flask or RQ: the web app and the workers call into it.

Plugin authors import what they need from here, the one stable surface (docs/plugins.md):
``hookimpl``, the connector contract (``Connector``, ``ChannelRuntime``, ``Delivery``,
``DeliveryResult``, ``InboundEvent``, ``WebhookRequest``, ``HealthStatus``), the values
hooks receive (``OutcomeEvent``, ``Touch``) and the errors. Those are imported on first
use, so ``import hpe_core`` stays light.
"""

import importlib

import pluggy

from hpe_core import _moved
from hpe_core.errors import (
    Conflict,
    HpeError,
    InvalidInput,
    NotFound,
    PermanentDeliveryError,
    TransientDeliveryError,
    TransientError,
    Unauthorized,
)

__version__ = "0.1.0"

#: Marker for plugin implementations: ``from hpe_core import hookimpl``.
hookimpl = pluggy.HookimplMarker("hpe")

#: The connector contract, re-exported from where it lives; and the values event hooks
#: and attribution models receive.
_CONNECTOR_CONTRACT = {
    **{
        name: "hpe_core.deliver.channels"
        for name in (
            "ChannelRuntime",
            "Connector",
            "Delivery",
            "DeliveryResult",
            "HealthStatus",
            "InboundEvent",
            "WebhookRequest",
        )
    },
    "ActivityEvent": "hpe_core.activity_events",
    "RecommendationChange": "hpe_core.activity_events",
    "OutcomeEvent": "hpe_core.learn.outcomes",
    "Touch": "hpe_core.learn.attribution",
}

_moved.install()  # 0.1 module paths (hpe_core.channels, ...) keep working, with a warning


def __getattr__(name: str):
    module = _CONNECTOR_CONTRACT.get(name)
    if module is None:
        raise AttributeError(f"module 'hpe_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups find it directly
    return value


__all__ = [
    "ActivityEvent",
    "ChannelRuntime",
    "Conflict",
    "Connector",
    "Delivery",
    "DeliveryResult",
    "HealthStatus",
    "HpeError",
    "InboundEvent",
    "InvalidInput",
    "NotFound",
    "OutcomeEvent",
    "PermanentDeliveryError",
    "RecommendationChange",
    "TransientDeliveryError",
    "Touch",
    "TransientError",
    "Unauthorized",
    "WebhookRequest",
    "__version__",
    "hookimpl",
]
