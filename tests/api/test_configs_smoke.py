"""Smoke test of the configuration API on both backends (the full matrix is in test_configs)."""

from tests.conftest import BASE


def test_create_then_get_returns_the_same_config(client, tenant):
    """A created configuration reads back with defaults filled in."""
    created = client.post(
        f"{BASE}/",
        json={"name": "Spring", "settings": {"actions": [{"id": "a"}]}},
        headers=tenant.headers,
    )
    assert created.status_code == 201
    body = client.get(f"{BASE}/{created.json['id']}", headers=tenant.headers).json
    assert body["name"] == "Spring"
    assert body["workspace_id"] == "acme"
    assert body["settings"]["holdout"] == {"percent": 10.0, "baseline": "random"}
