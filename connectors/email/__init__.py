"""The built-in email channel, registered through the `hpe` entry point like any plugin.

Sends an action's ``content.email`` (sandboxed Jinja2 subject/html/text) through SMTP,
with tracked links, an open pixel and one-click unsubscribe; reads SendGrid-style event
webhooks. Settings: ``PLUGINS["email"]`` (see :class:`EmailConfigSchema`).
"""

from connectors.email import sendgrid_signature
from connectors.email.connector import EmailConfigSchema, EmailConnector
from hpe_core import hookimpl

__all__ = ["EmailConfigSchema", "EmailConnector"]


@hookimpl
def hpe_register_connectors():
    return [EmailConnector]


@hookimpl
def hpe_register_blueprints():
    from connectors.email.tracking import blp  # Flask only when an app is built

    return [blp]


@hookimpl
def hpe_verify_webhook(request, connector):
    """SendGrid's ECDSA-signed event webhook (``connectors/email/sendgrid_signature.py``)."""
    if connector.name != "email":
        return None
    return sendgrid_signature.verdict(request, connector)
