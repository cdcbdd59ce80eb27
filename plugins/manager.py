"""Build the pluggy plugin manager: installed entry points (group ``hpe``) and built-ins.

Built when the app, a worker or the ``hpe`` command starts, never at import time, so
each app (and each test) gets its own manager.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Iterable, Mapping

import pluggy

from hpe_core import hookspecs
from hpe_core.deliver.channels import ChannelRuntime, Connector
from hpe_core.errors import InvalidInput
from hpe_core.tenancy.configs import Catalog

log = logging.getLogger(__name__)

#: Non-channel plugins that ship with HPE. The connector defaults are ``trylast``
#: implementations of the channel hooks, so any plugin can override them.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "plugins.connector_defaults",
    "plugins.attribution",
    "plugins.commands",
    "plugins.event_sinks",
    "plugins.operator_metrics",
)


def make_plugin_manager(
    *, load: Iterable[str] | None = None, blocked: Iterable[str] = (), trace: bool = False
) -> pluggy.PluginManager:
    """Create a plugin manager with the hookspecs, the allowed plugins and the built-ins.

    :param load: entry-point names to load (an allow-list); None loads every installed one
    :param blocked: plugin names never to load (entry-point or built-in module names)
    :param trace: log every hook call at DEBUG level (``TRACE_PLUGINS``)
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
        if not pm.is_blocked(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    pm.check_pending()  # a misspelled hookimpl fails at start, not silently at run time
    if trace:
        pm.add_hookcall_monitoring(
            lambda name, impls, kwargs: log.debug("hook %s(%s)", name, ", ".join(kwargs)),
            lambda outcome, name, impls, kwargs: None,
        )
    return pm


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict:
    """``LOAD_PLUGINS``/``BLOCKED_PLUGINS`` from ``HPE_*`` variables (JSON lists), for
    the command line, which builds its manager before any app exists."""
    environ = os.environ if environ is None else environ
    result: dict = {"load": None, "blocked": []}
    for key, env in (("load", "HPE_LOAD_PLUGINS"), ("blocked", "HPE_BLOCKED_PLUGINS")):
        raw = environ.get(env)
        if raw:
            try:
                value = json.loads(raw)
            except ValueError:
                value = [part.strip() for part in raw.split(",") if part.strip()]
            result[key] = value
    return result


def connectors(pm: pluggy.PluginManager) -> dict[str, type[Connector]]:
    """Channel name -> connector class, from every plugin's ``hpe_register_connectors``.

    :raises RuntimeError: if two plugins provide one channel, or a class is no Connector
    """
    found: dict[str, type[Connector]] = {}
    for batch in pm.hook.hpe_register_connectors():
        for connector in batch or ():
            if not (isinstance(connector, type) and issubclass(connector, Connector)):
                raise RuntimeError(
                    f"{connector!r} is not a hpe_core.deliver.channels.Connector subclass."
                )
            if not connector.name:
                raise RuntimeError(f"{connector.__qualname__} has no channel name.")
            if connector.name in found and found[connector.name] is not connector:
                raise RuntimeError(f"Two plugins provide the channel {connector.name!r}.")
            found[connector.name] = connector
    return found


def build_channels(
    pm: pluggy.PluginManager, plugins_config: Mapping, runtime: ChannelRuntime
) -> dict[str, Connector]:
    """One configured connector per channel.

    :param plugins_config: the app's ``PLUGINS`` (``{channel: {...}}``)
    :raises RuntimeError: naming the field if a plugin's settings are invalid
    """
    channels = {}
    for name, cls in connectors(pm).items():
        given = plugins_config.get(name)
        try:
            config = cls.validate_plugin_config(given)
        except InvalidInput as exc:
            if given is None:
                # Installed but not configured (e.g. a gateway URL is required): the channel
                # is left out until it is configured, instead of stopping every command.
                log.warning(
                    "channel %s is not available: its plugin needs settings (PLUGINS[%r]): %s",
                    name,
                    name,
                    json.dumps(exc.errors),
                )
                continue
            raise RuntimeError(f"{exc.message} {json.dumps(exc.errors)}") from exc
        channels[name] = cls(config, runtime)
    return channels


def unavailable_channels(
    pm: pluggy.PluginManager, plugins_config: Mapping, available: Iterable[str]
) -> dict[str, str]:
    """Channels a plugin provides that are left out, and why (their settings are missing:
    ``build_channels`` leaves such a channel out instead of stopping the app), for
    ``hpe plugins``.

    :returns: channel name -> the reason, naming each field its schema wants
    """
    found = {}
    for name, cls in connectors(pm).items():
        if name in set(available):
            continue
        try:
            cls.validate_plugin_config(plugins_config.get(name))
        except InvalidInput as exc:
            found[name] = f"{exc.message} {json.dumps(exc.errors)}"
        else:  # pragma: no cover - it validates now: the app was built with other settings
            found[name] = "left out when the app started"
    return found


def attribution_models(pm: pluggy.PluginManager) -> dict[str, object]:
    """Model name -> attribution model, from ``hpe_register_attribution_models``."""
    found: dict[str, object] = {}
    for batch in pm.hook.hpe_register_attribution_models():
        for model in batch or ():
            found.setdefault(model.name, model)
    return found


class PluginCatalog(Catalog):
    """The settings catalog, plus each channel's check of ``action.content[<channel>]``."""

    def __init__(self, channel_classes: Mapping[str, type[Connector]], attribution_models):
        super().__init__(channels=sorted(channel_classes), attribution_models=attribution_models)
        self.channel_classes = dict(channel_classes)

    def validate(self, settings: object) -> dict:
        settings = super().validate(settings)
        errors: dict = {}
        for index, action in enumerate(settings["actions"]):
            for channel, content in (action.get("content") or {}).items():
                cls = self.channel_classes.get(channel)
                if cls is None or cls.content_schema is None:
                    continue  # content for other systems is kept as given
                if not isinstance(content, Mapping):
                    problem: object = ["Must be an object."]
                else:
                    try:
                        action["content"][channel] = cls.validate_content(content)
                        continue
                    except InvalidInput as exc:
                        problem = _stringify(exc.errors)
                errors.setdefault("actions", {}).setdefault(str(index), {}).setdefault(
                    "content", {}
                )[channel] = problem
        if errors:
            raise InvalidInput("Invalid settings.", {"settings": errors})
        return settings


def _stringify(messages):
    if isinstance(messages, dict):
        return {str(k): _stringify(v) for k, v in messages.items()}
    return messages


def plugin_name_of(pm: pluggy.PluginManager, connector: type[Connector]) -> str:
    """The name of the plugin (entry point) a connector class comes from."""
    module = connector.__module__
    for name, plugin in pm.list_name_plugin():
        plugin_module = getattr(plugin, "__name__", None)
        if plugin_module and (module == plugin_module or module.startswith(plugin_module + ".")):
            return name
    return module


def describe_plugins(pm: pluggy.PluginManager) -> list[dict]:
    """Each loaded plugin: name, distribution and version, hooks it implements."""
    from hpe_core import __version__

    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:  # blocked
            continue
        dist = dists.get(id(plugin))
        rows.append(
            {
                "name": name,
                "distribution": dist.project_name if dist else "hpe",
                "version": dist.version if dist else __version__,
                "hooks": sorted(caller.name for caller in pm.get_hookcallers(plugin) or []),
            }
        )
    return rows
