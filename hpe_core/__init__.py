"""The HPE domain: settings, data model, decisions, learning and measurement.

This package never imports Flask or RQ: the web app and the workers call into it.
"""

import pluggy

from hpe_core.errors import Conflict, HpeError, InvalidInput, NotFound

__version__ = "0.1.0"

#: Marker for plugin implementations: ``from hpe_core import hookimpl``.
hookimpl = pluggy.HookimplMarker("hpe")

__all__ = ["Conflict", "HpeError", "InvalidInput", "NotFound", "__version__", "hookimpl"]
