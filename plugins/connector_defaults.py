"""Default implementations of the channel hooks: call the channel's connector.

Registered by ``make_plugin_manager`` as a built-in; every hook here is ``trylast``, so
any other plugin's implementation of the same hook runs first and may answer instead
(e.g. a sandbox plugin that records deliveries instead of sending them).
"""

from __future__ import annotations

from hpe_core import hookimpl


@hookimpl(trylast=True)
def hpe_deliver(delivery, connector):
    return connector.send(delivery)


@hookimpl(trylast=True)
def hpe_parse_webhook(request, connector):
    return connector.parse_webhook(request)


@hookimpl(trylast=True)
def hpe_health_check(connector):
    return connector.health()


@hookimpl(trylast=True)
def hpe_enrich_context(connector, user_id, context):
    return connector.enrich_context(user_id, context)
