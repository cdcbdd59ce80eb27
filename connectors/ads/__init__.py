"""The built-in ads channel, registered through the `hpe` entry point like any plugin."""

from hpe_core import hookimpl
from hpe_core.channels import Connector


class AdsConnector(Connector):
    name = "ads"
    description = "Ad audiences exported as hashed customer lists"


@hookimpl
def hpe_register_connectors():
    return [AdsConnector]
