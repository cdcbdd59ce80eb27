"""Fixtures of the decide tests: a workspace's principal and a two-action web
configuration in it."""

from __future__ import annotations

import pytest

from hpe_core.tenancy import configs
from hpe_core.tenancy.workspaces import Principal
from web.extensions import app_runtime


@pytest.fixture
def principal(make_tenant):
    return Principal(workspace_id=make_tenant("acme").id, actor="test")


@pytest.fixture
def config_id(app, session, principal):
    """A configuration with actions a and b on the web channel."""
    config = configs.create(
        session,
        principal,
        app_runtime(app).catalog,
        name="decide",
        settings={"actions": [{"id": "a"}, {"id": "b"}], "channels": ["web"]},
    )
    session.commit()
    return config.id
