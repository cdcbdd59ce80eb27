"""The built-in web channel, registered through the `hpe` entry point like any plugin."""

from hpe_core import hookimpl
from hpe_core.channels import Connector


class WebConnector(Connector):
    name = "web"
    description = "Web page slots, through a JavaScript snippet or JSON"


@hookimpl
def hpe_register_connectors():
    return [WebConnector]
