"""Helpers for the API tests: configurations to act on, row counts, tenants on any app."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hpe_core.store.models import Activity, ApiKey, Config, MetricsDay, Workspace
from tests.conftest import BASE, Tenant, create_tenant
from web.extensions import app_runtime

#: Settings with the only required block; everything else is filled in with defaults.
MINIMAL_SETTINGS = {"actions": [{"id": "spring-sale"}, {"id": "new-arrivals"}]}

ERROR_KEYS = {"code", "status", "message", "errors"}


def assert_error(response, code: int) -> dict:
    """Assert ``response`` is an error with exactly the documented shape; return its body."""
    assert response.status_code == code, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert isinstance(body, dict), response.get_data(as_text=True)
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], dict)
    return body


@pytest.fixture
def make_tenant_on():
    """Create a workspace and key on a given app (for apps other than ``app``)."""

    def make(app, workspace_id: str | None = None, kind: str = "secret") -> Tenant:
        return create_tenant(app, workspace_id, kind)

    return make


@pytest.fixture
def create_config(client, tenant):
    """POST a configuration (as ``tenant`` unless told otherwise) and return its body."""

    def create(
        name: str = "Spring campaign",
        settings: dict | None = None,
        as_tenant: Tenant | None = None,
        **extra,
    ) -> dict:
        response = client.post(
            f"{BASE}/",
            json={"name": name, "settings": settings or MINIMAL_SETTINGS, **extra},
            headers=(as_tenant or tenant).headers,
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return create


@pytest.fixture
def row_counts(app):
    """``row_counts()`` -> rows per table, to prove a rejected request wrote nothing."""

    def count() -> dict[str, int]:
        session = app_runtime(app).sessions()
        try:
            return {
                model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model))
                for model in (Workspace, ApiKey, Config, Activity, MetricsDay)
            }
        finally:
            session.close()

    return count
