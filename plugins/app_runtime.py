"""How a plugin's routes and commands reach the runtime of the app they run in.

A connector's blueprint (tracking links, CORS checks) or a plugin command needs the
session factory, the plugin manager or the configured channels: it calls
:func:`app_runtime` instead of reading ``app.extensions`` by key. This module never
imports the web package (connectors import it, and must not depend on ``web``);
``web.extensions`` stores the state under :data:`EXTENSION_KEY`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from hpe_core.runtime import Runtime

#: The ``app.extensions`` key of HPE's per-app state (``web.extensions.AppState``).
EXTENSION_KEY = "hpe"


def app_runtime(app: Flask | None = None) -> Runtime:
    """The runtime (:class:`hpe_core.runtime.Runtime`) of ``app``, default the current app."""
    if app is None:
        from flask import current_app

        app = current_app
    return app.extensions[EXTENSION_KEY].runtime
