"""The channel connector interface that channel plugins implement (email, web, ads, ...)."""

from __future__ import annotations

from typing import ClassVar


class Connector:
    """Base class of a channel connector, returned by ``hpe_register_connectors``.

    Subclasses set ``name`` (the channel name used in settings) and ``description``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, plugin_config: dict | None = None):
        self.plugin_config = plugin_config or {}
