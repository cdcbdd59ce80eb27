"""Calling the plugins' ``hpe_on_*`` event hooks (event sinks, analytics exports).

Not a loop stage: every stage that commits a change the plugins may want to hear about
(an outcome, a delivery, a webhook) calls :func:`notify` after its commit.
"""

from __future__ import annotations

import logging


def notify(hook, **kwargs) -> None:
    """Call an ``hpe_on_*`` event hook: each implementation on its own, so one failing
    event sink is logged and the others still run (the change is already committed)."""
    for impl in reversed(hook.get_hookimpls()):  # pluggy's order: last registered first
        if impl.hookwrapper or impl.wrapper:
            continue  # wrappers only make sense around a normal hook call
        try:
            impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception:  # noqa: BLE001 - one broken sink must not break the loop
            logging.getLogger(__name__).exception(
                "event hook %s of plugin %s failed", hook.name, impl.plugin_name
            )
