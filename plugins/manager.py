"""Build the pluggy plugin manager: installed entry points (group ``hpe``) and built-ins.

Built when the app or a worker starts, never at import time, so each app (and each test)
gets its own manager.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import pluggy

from hpe_core import hookspecs
from hpe_core.channels import Connector

#: Non-channel plugins that ship with HPE (attribution models, event sinks: later stages).
BUILTIN_PLUGINS: tuple[str, ...] = ()


def make_plugin_manager(
    *, load: Iterable[str] | None = None, blocked: Iterable[str] = ()
) -> pluggy.PluginManager:
    """Create a plugin manager with the hookspecs, the allowed plugins and the built-ins.

    :param load: entry-point names to load (an allow-list); None loads every installed one
    :param blocked: entry-point names never to load
    """
    pm = pluggy.PluginManager("hpe")
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    if load is None:
        pm.load_setuptools_entrypoints("hpe")
    else:
        for name in load:
            pm.load_setuptools_entrypoints("hpe", name=name)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    pm.check_pending()  # a misspelled hookimpl fails at start, not silently at run time
    return pm


def connectors(pm: pluggy.PluginManager) -> dict[str, type[Connector]]:
    """Channel name -> connector class, from every plugin's ``hpe_register_connectors``."""
    found: dict[str, type[Connector]] = {}
    for batch in pm.hook.hpe_register_connectors():
        for connector in batch or ():
            if connector.name in found and found[connector.name] is not connector:
                raise RuntimeError(f"Two plugins provide the channel {connector.name!r}.")
            found[connector.name] = connector
    return found


def plugin_name_of(pm: pluggy.PluginManager, connector: type[Connector]) -> str:
    module = connector.__module__
    for name, plugin in pm.list_name_plugin():
        if getattr(plugin, "__name__", None) and module.startswith(plugin.__name__):
            return name
    return module
