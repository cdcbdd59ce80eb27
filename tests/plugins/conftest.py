"""Helpers for plugin tests: apps built on the test kit's ``hpe_pm`` with the in-repo
connectors plus whatever a test registers."""

from __future__ import annotations

import pytest

import connectors.ads
import connectors.email
import connectors.web
from tests.connectors.conftest import http_server, new_tenant

__all__ = ["http_server"]  # the local HTTP server fixture, shared with the connector tests

IN_REPO = {"email": connectors.email, "web": connectors.web, "ads": connectors.ads}


@pytest.fixture
def kit_app(register_plugin, make_hpe_app):
    """``kit_app(*plugins, **config)``: register plugins (after the in-repo connectors),
    then build an app on them; returns ``(app, client, tenant)``."""

    def make(*plugins, **config):
        for name, module in IN_REPO.items():
            register_plugin(module, name)
        for plugin in plugins:
            register_plugin(plugin)
        app = make_hpe_app(**config)
        return app, app.test_client(), new_tenant(app)

    return make
