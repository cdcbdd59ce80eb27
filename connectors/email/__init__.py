"""The built-in email channel, registered through the `hpe` entry point like any plugin."""

from hpe_core import hookimpl
from hpe_core.channels import Connector


class EmailConnector(Connector):
    name = "email"
    description = "Email through SMTP, with tracked links and an open pixel"


@hookimpl
def hpe_register_connectors():
    return [EmailConnector]
