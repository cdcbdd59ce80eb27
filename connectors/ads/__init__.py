"""The built-in ads channel, registered through the `hpe` entry point like any plugin.

A decision on the ads channel with ``deliver.to`` adds the user's normalized, SHA-256
hashed email/phone to the chosen action's audience; ``hpe ads export`` (or the
``export_audiences`` job) uploads each action's audience as a customer-list CSV to a
configured endpoint or writes it to a drop folder. Conversions come back through
``POST /webhooks/ads`` (HPE's ``{"events": [...]}`` format).
"""

from connectors.ads.connector import AdsConnector
from hpe_core import hookimpl

__all__ = ["AdsConnector"]


@hookimpl
def hpe_register_connectors():
    return [AdsConnector]


@hookimpl
def hpe_register_commands():
    from connectors.ads.cli import ads

    return [ads]
