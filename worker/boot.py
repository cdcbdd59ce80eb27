"""Build this process's :class:`hpe_core.runtime.Runtime` with the default parts: the plugin
layer of ``plugins.manager`` and the job backend of :mod:`worker.queues` (inline without
Redis, RQ with ``REDIS_URL``). ``web.create_app`` and ``hpe worker`` both call it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpe_core import runtime
from plugins import manager
from worker.queues import make_backend


def build_runtime(
    overrides: Mapping[str, Any] | None = None,
    *,
    instance_path: str | None = None,
    defaults: type = runtime.Defaults,
    plugin_manager=None,
) -> runtime.Runtime:
    """Load the layered settings (with ``overrides`` last) and build the runtime on them.

    :param defaults: the first layer (the web app adds its own keys to it)
    :param plugin_manager: a manager built by the caller (the plugin test kit's)
    :raises RuntimeError: the schema is not migrated, or a plugin's settings are invalid
    """
    settings = runtime.load_settings(overrides, instance_path=instance_path, defaults=defaults)
    return runtime.build(
        settings, plugins=manager, make_jobs=make_backend, plugin_manager=plugin_manager
    )
