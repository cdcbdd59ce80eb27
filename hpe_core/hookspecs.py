"""Every hook HPE calls, prefixed ``hpe_``. Plugins implement them with
``from hpe_core import hookimpl``. Hooks grow by adding arguments; implementations take
only the arguments they need.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("hpe")

# --- Registration hooks: called once while building the app or worker ----------------


@hookspec
def hpe_register_connectors():
    """Return the :class:`hpe_core.channels.Connector` subclasses this plugin provides.

    Called once when the plugin manager is built; the lists of all plugins are
    concatenated. A channel name may be provided by one connector only.

    :returns: a list of Connector subclasses
    """
