"""The activity log (FR-003): every create, update and status change, with who, what and when."""

from __future__ import annotations

import datetime as dt
import json

from tests.api.conftest import MINIMAL_SETTINGS, assert_error
from tests.conftest import BASE

PREFIX_LENGTH = len("hpe_sk_") + 8


def _log(client, tenant, config_id, query=""):
    response = client.get(f"{BASE}/{config_id}/activities{query}", headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _patch(client, tenant, config_id, body):
    response = client.patch(f"{BASE}/{config_id}", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_create_writes_an_activity_with_the_key_prefix(client, tenant, create_config):
    """Creating a config logs config.created by the key's prefix, with the stored settings."""
    created = create_config(name="Spring")
    [activity] = _log(client, tenant, created["id"])
    assert set(activity) == {"id", "config_id", "type", "actor", "data", "created_at"}
    assert activity["type"] == "config.created"
    assert activity["config_id"] == created["id"]
    assert activity["actor"] == tenant.key[:PREFIX_LENGTH]
    assert tenant.key[PREFIX_LENGTH:] not in json.dumps(activity)  # never the secret part
    assert activity["data"] == {
        "name": "Spring",
        "status": "ACTIVE",
        "settings": created["settings"],
    }
    when = dt.datetime.fromisoformat(activity["created_at"])
    assert abs(when - dt.datetime.fromisoformat(created["created_at"])) < dt.timedelta(seconds=5)


def test_update_writes_a_diff(client, tenant, create_config):
    """A settings change logs config.updated with {dotted.path: [old, new]}."""
    config_id = create_config()["id"]
    _patch(client, tenant, config_id, {"settings": {"holdout": {"percent": 20}}})
    latest = _log(client, tenant, config_id)[0]
    assert latest["type"] == "config.updated"
    assert latest["actor"] == tenant.key[:PREFIX_LENGTH]
    assert latest["data"] == {"changes": {"settings.holdout.percent": [10.0, 20.0]}}


def test_update_diff_names_every_changed_field(client, tenant, create_config):
    """Name and several nested settings changed at once are each listed in one activity."""
    config_id = create_config(name="Old")["id"]
    _patch(
        client,
        tenant,
        config_id,
        {
            "name": "New",
            "settings": {
                "automation": "manual",
                "reward": {"events": {"open": None, "signup": 2}},
                "channels": ["email", "web"],
            },
        },
    )
    changes = _log(client, tenant, config_id)[0]["data"]["changes"]
    assert changes == {
        "name": ["Old", "New"],
        "settings.automation": ["assisted", "manual"],
        "settings.reward.events.open": [0.1, None],
        "settings.reward.events.signup": [None, 2.0],
        "settings.channels": [["ads", "email", "web"], ["email", "web"]],
    }


def test_status_change_writes_its_own_activity(client, tenant, create_config):
    """PATCH status logs config.status_changed {from, to}; DELETE logs the move to INACTIVE."""
    config_id = create_config()["id"]
    _patch(client, tenant, config_id, {"status": "PAUSED"})
    client.delete(f"{BASE}/{config_id}", headers=tenant.headers)
    log = _log(client, tenant, config_id)
    assert [(a["type"], a["data"]) for a in log[:2]] == [
        ("config.status_changed", {"from": "PAUSED", "to": "INACTIVE"}),
        ("config.status_changed", {"from": "ACTIVE", "to": "PAUSED"}),
    ]


def test_one_patch_changing_name_and_status_writes_both(client, tenant, create_config):
    """A PATCH with a field change and a status change logs one of each."""
    config_id = create_config(name="a")["id"]
    _patch(client, tenant, config_id, {"name": "b", "status": "PAUSED"})
    types = sorted(a["type"] for a in _log(client, tenant, config_id)[:2])
    assert types == ["config.status_changed", "config.updated"]


def test_the_actor_is_the_key_that_made_the_change(client, make_tenant, create_config):
    """Two keys of one workspace are told apart in the log by their prefixes."""
    alice, bob = make_tenant("shop"), make_tenant("shop")
    config_id = create_config(as_tenant=alice)["id"]
    _patch(client, bob, config_id, {"name": "renamed by bob"})
    log = _log(client, alice, config_id)
    assert [a["actor"] for a in log] == [bob.key[:PREFIX_LENGTH], alice.key[:PREFIX_LENGTH]]
    assert alice.key[:PREFIX_LENGTH] != bob.key[:PREFIX_LENGTH]


def test_a_patch_that_changes_nothing_writes_nothing(client, tenant, create_config, subtests):
    """Patches that leave the config as it was (same values, defaults, empty) log nothing."""
    created = create_config(name="Same")
    config_id = created["id"]
    for patch in [
        {},
        {"name": "Same"},
        {"name": "  Same  "},
        {"status": "ACTIVE"},
        {"settings": {}},
        {"settings": {"holdout": {"percent": 10}}},
        {"settings": {"automation": None}},
        {"settings": {"actions": MINIMAL_SETTINGS["actions"]}},
        {"name": "Same", "status": "ACTIVE", "settings": {"reward": {"wait_seconds": 86400}}},
    ]:
        with subtests.test(msg=json.dumps(patch)):
            body = _patch(client, tenant, config_id, patch)
            assert body["updated_at"] == created["updated_at"]
            assert [a["type"] for a in _log(client, tenant, config_id)] == ["config.created"]


def test_type_filter_exact_and_family(client, tenant, create_config):
    """type=config.updated matches exactly; type=config.* matches the whole family."""
    config_id = create_config()["id"]
    _patch(client, tenant, config_id, {"name": "n1"})
    _patch(client, tenant, config_id, {"name": "n2", "status": "PAUSED"})

    def types(query):
        return [a["type"] for a in _log(client, tenant, config_id, query)]

    assert types("?type=config.updated") == ["config.updated", "config.updated"]
    assert types("?type=config.created") == ["config.created"]
    assert types("?type=config.status_changed") == ["config.status_changed"]
    assert len(types("?type=config.*")) == 4
    assert types("?type=config") == []  # exact: no prefix matching without ".*"
    assert types("?type=decision.*") == []
    assert types("?type=config.update") == []


def test_type_filter_rejects_malformed_types(client, tenant, create_config, subtests):
    """A type that is neither a dotted name nor a family pattern is a 422."""
    config_id = create_config()["id"]
    for bad in ("config.%25", "config_*", "*", "a%00b", "x" * 65, "config.*.*"):
        with subtests.test(msg=bad):
            response = client.get(
                f"{BASE}/{config_id}/activities?type={bad}", headers=tenant.headers
            )
            assert "type" in assert_error(response, 422)["errors"]


def test_activities_are_paginated_newest_first(client, tenant, create_config):
    """page/page_size page the log newest first, with totals in X-Pagination."""
    config_id = create_config(name="v0")["id"]
    for n in range(1, 6):
        _patch(client, tenant, config_id, {"name": f"v{n}"})
    first = client.get(f"{BASE}/{config_id}/activities?page=1&page_size=4", headers=tenant.headers)
    meta = json.loads(first.headers["X-Pagination"])
    assert meta["total"] == 6 and meta["total_pages"] == 2
    names = [a["data"]["changes"]["name"][1] for a in first.get_json()]
    assert names == ["v5", "v4", "v3", "v2"]
    second = client.get(
        f"{BASE}/{config_id}/activities?page=2&page_size=4", headers=tenant.headers
    ).get_json()
    assert [a["type"] for a in second] == ["config.updated", "config.created"]
    stamps = [a["created_at"] for a in first.get_json() + second]
    assert stamps == sorted(stamps, reverse=True)


def test_each_config_has_its_own_log(client, tenant, create_config):
    """A configuration's log never shows another configuration's activities."""
    one, two = create_config(name="one")["id"], create_config(name="two")["id"]
    _patch(client, tenant, two, {"name": "two!"})
    assert {a["config_id"] for a in _log(client, tenant, one)} == {one}
    assert len(_log(client, tenant, one)) == 1
    assert len(_log(client, tenant, two)) == 2


def test_a_rejected_change_writes_no_activity(client, tenant, create_config):
    """Invalid creates and patches leave no trace in any log."""
    config_id = create_config()["id"]
    bad = client.patch(
        f"{BASE}/{config_id}",
        json={"settings": {"holdout": {"percent": 99}}},
        headers=tenant.headers,
    )
    assert_error(bad, 422)
    assert len(_log(client, tenant, config_id)) == 1
