"""The built-in web channel, registered through the `hpe` entry point like any plugin.

Pages load ``/static/hpe.js`` (served by HPE, no CDN) with a publishable key; the
snippet asks for a decision per page slot and reports impressions and clicks. Browsers
may call the API only from the origins a workspace allows (``hpe channels configure
<workspace> web '{"allowed_origins": [...]}'``).
"""

from connectors.web.connector import WebConnector
from hpe_core import hookimpl

__all__ = ["WebConnector"]


@hookimpl
def hpe_register_connectors():
    return [WebConnector]


@hookimpl
def hpe_register_blueprints():
    from connectors.web.cors import blp  # Flask only when an app is built

    return [blp]
