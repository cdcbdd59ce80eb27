"""The six configuration endpoints of DESIGN.md §5, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from tests.api.conftest import MINIMAL_SETTINGS, assert_error
from tests.conftest import BASE


def _get(client, tenant, config_id):
    response = client.get(f"{BASE}/{config_id}", headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _pagination(response) -> dict:
    return json.loads(response.headers["X-Pagination"])


class TestCreate:
    def test_create_returns_201_with_the_config_object(self, client, tenant):
        """POST / answers 201 with {id, workspace_id, name, settings, status, timestamps}."""
        response = client.post(
            f"{BASE}/",
            json={"name": "Spring", "settings": MINIMAL_SETTINGS},
            headers=tenant.headers,
        )
        assert response.status_code == 201
        body = response.get_json()
        assert set(body) == {
            "id",
            "workspace_id",
            "name",
            "settings",
            "status",
            "created_at",
            "updated_at",
        }
        assert uuid.UUID(body["id"])
        assert body["workspace_id"] == tenant.id
        assert body["name"] == "Spring"
        assert body["status"] == "ACTIVE"
        created = dt.datetime.fromisoformat(body["created_at"])
        assert created.tzinfo is not None
        assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=5)

    def test_create_fills_in_every_default(self, create_config):
        """Only actions are given; every other block comes back with its defaults."""
        settings = create_config()["settings"]
        assert settings["channels"] == ["ads", "email", "web"]
        assert [a["id"] for a in settings["actions"]] == ["spring-sale", "new-arrivals"]
        action = settings["actions"][0]
        assert action["features"] == {} and action["content"] == {} and action["cost"] == 0.0
        assert settings["reward"] == {
            "events": {"open": 0.1, "click": 1.0, "conversion": 1.0},
            "value_events": ["conversion"],
            "wait_seconds": 86400,
            "default": 0.0,
        }
        assert settings["exploration"]["algorithm"] == "squarecb"
        assert settings["holdout"] == {"percent": 10.0, "baseline": "random"}
        assert settings["guardrails"]["frequency_caps"] == []
        assert settings["automation"] == "assisted"
        assert settings["attribution"]["model"] == "last_touch"
        assert settings["attribution"]["window_hours"] == 168.0
        assert settings["goals"] == {
            "kpi": "engagement_rate",
            "target_lift": 0.5,
            "segment_key": "segment",
        }
        assert settings["campaign"]["external_id"] is None
        assert settings["schedule"] == {"quiet_hours": None}

    def test_create_with_a_first_reward_block(self, client, tenant):
        """The reward block a new user writes first is accepted as written: its value
        events come from its own events (the README's "click only" case)."""
        for events, value_events in (
            ({"click": 1.0}, []),
            ({"open": 0.1, "click": 1}, []),
            ({"click": 1, "conversion": 1}, ["conversion"]),
        ):
            response = client.post(
                f"{BASE}/",
                json={
                    "name": "First",
                    "settings": {**MINIMAL_SETTINGS, "reward": {"events": events}},
                },
                headers=tenant.headers,
            )
            assert response.status_code == 201, response.get_json()
            assert response.get_json()["settings"]["reward"]["value_events"] == value_events

    def test_create_keeps_given_values_and_status(self, create_config):
        """Given blocks are kept (merged with their defaults) and status may start PAUSED."""
        body = create_config(
            settings={
                "actions": [{"id": "a", "channels": ["email"], "cost": 0.5}],
                "channels": ["email", "web"],
                "holdout": {"percent": 25, "baseline": {"action_id": "a"}},
                "automation": "manual",
            },
            status="PAUSED",
        )
        settings = body["settings"]
        assert body["status"] == "PAUSED"
        assert settings["channels"] == ["email", "web"]
        assert settings["actions"][0]["channels"] == ["email"]
        assert settings["actions"][0]["cost"] == 0.5
        assert settings["holdout"] == {"percent": 25.0, "baseline": {"action_id": "a"}}
        assert settings["automation"] == "manual"

    def test_create_takes_the_workspace_from_the_key_not_the_body(self, client, tenant):
        """A workspace_id in the body is rejected; the key decides the workspace."""
        response = client.post(
            f"{BASE}/",
            json={"name": "x", "settings": MINIMAL_SETTINGS, "workspace_id": "someone-else"},
            headers=tenant.headers,
        )
        body = assert_error(response, 422)
        assert "workspace_id" in body["errors"]

    def test_create_trims_the_name(self, create_config):
        """Leading and trailing spaces are not part of a name."""
        assert create_config(name="  Spring  ")["name"] == "Spring"


class TestList:
    def test_list_is_newest_first_with_pagination_header(self, client, tenant, create_config):
        """GET / pages newest first and reports totals in X-Pagination."""
        ids = [create_config(name=f"c{i}")["id"] for i in range(5)]
        first = client.get(f"{BASE}/?page=1&page_size=2", headers=tenant.headers)
        assert first.status_code == 200
        assert [c["id"] for c in first.get_json()] == ids[::-1][:2]
        meta = _pagination(first)
        assert meta["total"] == 5 and meta["total_pages"] == 3
        assert meta["page"] == 1 and meta["next_page"] == 2
        last = client.get(f"{BASE}/?page=3&page_size=2", headers=tenant.headers)
        assert [c["id"] for c in last.get_json()] == [ids[0]]
        assert _pagination(last)["previous_page"] == 2
        everything = client.get(f"{BASE}/?page_size=100", headers=tenant.headers).get_json()
        assert [c["id"] for c in everything] == ids[::-1]

    def test_list_default_page_holds_ten(self, client, tenant, create_config):
        """Without page/page_size the first ten configurations are returned."""
        for i in range(12):
            create_config(name=f"c{i}")
        response = client.get(f"{BASE}/", headers=tenant.headers)
        assert len(response.get_json()) == 10
        assert _pagination(response)["total"] == 12

    def test_list_past_the_last_page_is_empty(self, client, tenant, create_config):
        """A page beyond the end (even an absurd one) is an empty list, not an error."""
        create_config()
        for page in (2, 10**15):
            response = client.get(f"{BASE}/?page={page}", headers=tenant.headers)
            assert response.status_code == 200
            assert response.get_json() == []
            assert _pagination(response)["total"] == 1

    def test_list_filters_by_status(self, client, tenant, create_config):
        """?status= returns only configurations in that status."""
        active = create_config(name="active")["id"]
        paused = create_config(name="paused", status="PAUSED")["id"]
        inactive = create_config(name="gone")["id"]
        client.delete(f"{BASE}/{inactive}", headers=tenant.headers)
        for status, expected in (("ACTIVE", active), ("PAUSED", paused), ("INACTIVE", inactive)):
            response = client.get(f"{BASE}/?status={status}", headers=tenant.headers)
            assert [c["id"] for c in response.get_json()] == [expected]
            assert _pagination(response)["total"] == 1

    def test_list_is_empty_for_a_new_workspace(self, client, make_tenant):
        """A workspace with no configurations lists nothing, total 0."""
        fresh = make_tenant("fresh")
        response = client.get(f"{BASE}/", headers=fresh.headers)
        assert response.get_json() == []
        assert _pagination(response)["total"] == 0

    def test_list_rejects_bad_query_parameters(self, client, tenant, subtests):
        """Bad status or paging parameters are a 422 naming the parameter."""
        for query, field in [
            ("status=active", "status"),
            ("status=DELETED", "status"),
            ("page=0", "page"),
            ("page=abc", "page"),
            ("page_size=0", "page_size"),
            ("page_size=101", "page_size"),
        ]:
            with subtests.test(msg=query):
                body = assert_error(client.get(f"{BASE}/?{query}", headers=tenant.headers), 422)
                assert field in body["errors"]


class TestGet:
    def test_get_returns_what_create_returned(self, client, tenant, create_config):
        """GET /{id} returns the stored object, identical to the create response."""
        created = create_config()
        assert _get(client, tenant, created["id"]) == created

    def test_get_unknown_id_is_404(self, client, tenant):
        """A well-formed id that does not exist is a 404 with the error shape."""
        body = assert_error(client.get(f"{BASE}/{uuid.uuid4()}", headers=tenant.headers), 404)
        assert "configuration" in body["message"].lower()


class TestPatch:
    def test_patch_name(self, client, tenant, create_config):
        """PATCH {name} renames and leaves settings and status alone."""
        created = create_config()
        response = client.patch(
            f"{BASE}/{created['id']}", json={"name": "Autumn"}, headers=tenant.headers
        )
        assert response.status_code == 200
        body = response.get_json()
        assert body["name"] == "Autumn"
        assert body["settings"] == created["settings"] and body["status"] == "ACTIVE"
        assert _get(client, tenant, created["id"])["name"] == "Autumn"

    def test_patch_status(self, client, tenant, create_config):
        """PATCH {status} moves between ACTIVE, PAUSED and INACTIVE, in any order."""
        created = create_config()
        for status in ("PAUSED", "ACTIVE", "INACTIVE", "PAUSED", "INACTIVE", "ACTIVE"):
            response = client.patch(
                f"{BASE}/{created['id']}", json={"status": status}, headers=tenant.headers
            )
            assert response.get_json()["status"] == status
            assert _get(client, tenant, created["id"])["status"] == status

    def test_patch_settings_merges_nested_objects(self, client, tenant, create_config):
        """A merge patch changes only the keys it names, at any depth."""
        created = create_config(
            settings={**MINIMAL_SETTINGS, "holdout": {"baseline": {"action_id": "spring-sale"}}}
        )
        response = client.patch(
            f"{BASE}/{created['id']}",
            json={"settings": {"holdout": {"percent": 20}, "reward": {"events": {"open": 0.5}}}},
            headers=tenant.headers,
        )
        assert response.status_code == 200
        settings = response.get_json()["settings"]
        assert settings["holdout"] == {"percent": 20.0, "baseline": {"action_id": "spring-sale"}}
        # "events" is an object: the patch adds to it rather than replacing it.
        assert settings["reward"]["events"] == {"open": 0.5, "click": 1.0, "conversion": 1.0}
        untouched = {k: v for k, v in created["settings"].items() if k not in ("holdout", "reward")}
        assert {k: settings[k] for k in untouched} == untouched
        assert _get(client, tenant, created["id"])["settings"] == settings

    def test_patch_null_resets_a_key_to_its_default(self, client, tenant, create_config):
        """null removes a key, and validation puts its default back."""
        created = create_config(
            settings={
                **MINIMAL_SETTINGS,
                "holdout": {"percent": 30},
                "automation": "manual",
                "channels": ["email"],
            }
        )
        response = client.patch(
            f"{BASE}/{created['id']}",
            json={"settings": {"holdout": {"percent": None}, "automation": None, "channels": None}},
            headers=tenant.headers,
        )
        settings = response.get_json()["settings"]
        assert settings["holdout"]["percent"] == 10.0
        assert settings["automation"] == "assisted"
        assert settings["channels"] == ["ads", "email", "web"]

    def test_patch_removing_a_default_event_needs_no_value_events(
        self, client, tenant, create_config
    ):
        """Dropping conversion from the default events drops it from the default value
        events too: 200, not a 422 about value_events (a key the user never sent)."""
        created = create_config()
        response = client.patch(
            f"{BASE}/{created['id']}",
            json={"settings": {"reward": {"events": {"conversion": None}}}},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.get_json()
        reward = response.get_json()["settings"]["reward"]
        assert reward["events"] == {"open": 0.1, "click": 1.0}
        assert reward["value_events"] == []

    def test_patch_replaces_lists_whole(self, client, tenant, create_config):
        """Lists are replaced, not merged: the patch's actions are the new actions."""
        created = create_config()
        response = client.patch(
            f"{BASE}/{created['id']}",
            json={"settings": {"actions": [{"id": "only-one", "cost": 2}]}},
            headers=tenant.headers,
        )
        actions = response.get_json()["settings"]["actions"]
        assert [a["id"] for a in actions] == ["only-one"]
        assert actions[0]["cost"] == 2.0 and actions[0]["features"] == {}

    def test_invalid_patch_is_422_and_changes_nothing(
        self, client, tenant, create_config, row_counts, subtests
    ):
        """A patch that fails validation changes no field and logs no activity."""
        created = create_config()
        before = row_counts()
        for patch in [
            {"settings": {"holdout": {"percent": 80}}},
            {"settings": {"actions": None}},
            {"settings": {"actions": []}},
            {"settings": {"holdout": {"typo": 1}}},
            {"settings": {"channels": ["sms"]}},
            {"name": "fine", "settings": {"automation": "yolo"}},
            {"status": "PAUSED", "settings": {"reward": {"wait_seconds": -1}}},
            {"name": "fine", "status": "STOPPED"},
            {"settings": "not an object"},
            {"name": ""},
        ]:
            with subtests.test(msg=json.dumps(patch)):
                response = client.patch(
                    f"{BASE}/{created['id']}", json=patch, headers=tenant.headers
                )
                assert_error(response, 422)
                assert _get(client, tenant, created["id"]) == created
                assert row_counts() == before

    def test_patch_reports_the_field_that_failed(self, client, tenant, create_config):
        """The 422 names the offending settings field under errors.settings."""
        created = create_config()
        response = client.patch(
            f"{BASE}/{created['id']}",
            json={"settings": {"holdout": {"percent": 80}}},
            headers=tenant.headers,
        )
        body = assert_error(response, 422)
        assert "percent" in body["errors"]["settings"]["holdout"]

    def test_patch_moves_updated_at_but_not_created_at(self, client, tenant, create_config):
        """A change bumps updated_at; created_at never moves."""
        created = create_config()
        body = client.patch(
            f"{BASE}/{created['id']}", json={"name": "later"}, headers=tenant.headers
        ).get_json()
        assert body["created_at"] == created["created_at"]
        assert body["updated_at"] > created["updated_at"]


class TestDelete:
    def test_delete_deactivates_and_keeps_the_config(self, client, tenant, create_config):
        """DELETE sets INACTIVE; the object still reads back and is listed as INACTIVE."""
        created = create_config()
        response = client.delete(f"{BASE}/{created['id']}", headers=tenant.headers)
        assert response.status_code == 200
        assert response.get_json()["status"] == "INACTIVE"
        kept = _get(client, tenant, created["id"])
        assert kept["status"] == "INACTIVE"
        assert kept["settings"] == created["settings"] and kept["name"] == created["name"]
        listed = client.get(f"{BASE}/?status=INACTIVE", headers=tenant.headers).get_json()
        assert [c["id"] for c in listed] == [created["id"]]

    def test_delete_keeps_the_history(self, client, tenant, create_config):
        """Activities written before the deactivation are all still there after it."""
        created = create_config()
        client.patch(f"{BASE}/{created['id']}", json={"name": "n2"}, headers=tenant.headers)
        client.delete(f"{BASE}/{created['id']}", headers=tenant.headers)
        log = client.get(f"{BASE}/{created['id']}/activities", headers=tenant.headers).get_json()
        assert [a["type"] for a in log] == [
            "config.status_changed",
            "config.updated",
            "config.created",
        ]

    def test_delete_twice_is_harmless(self, client, tenant, create_config):
        """Deactivating an inactive configuration answers 200 and logs nothing new."""
        created = create_config()
        client.delete(f"{BASE}/{created['id']}", headers=tenant.headers)
        again = client.delete(f"{BASE}/{created['id']}", headers=tenant.headers)
        assert again.status_code == 200 and again.get_json()["status"] == "INACTIVE"
        log = client.get(f"{BASE}/{created['id']}/activities", headers=tenant.headers).get_json()
        assert len(log) == 2

    def test_delete_unknown_id_is_404(self, client, tenant):
        """Deactivating an id that does not exist is a 404."""
        assert_error(client.delete(f"{BASE}/{uuid.uuid4()}", headers=tenant.headers), 404)


class TestMetrics:
    def test_metrics_shape_without_data(self, client, tenant, create_config):
        """A new configuration's metrics have the full summary shape with zero counts."""
        config_id = create_config()["id"]
        response = client.get(f"{BASE}/{config_id}/metrics", headers=tenant.headers)
        assert response.status_code == 200
        body = response.get_json()
        assert set(body) == {
            "config_id", "from", "to", "summary", "daily", "learning_lag_seconds", "late"
        }
        assert body["config_id"] == config_id
        summary = body["summary"]
        assert set(summary) >= {
            "decisions",
            "engagements",
            "engagement_rate",
            "lift",
            "reward",
            "revenue",
            "cost",
            "roi",
        }
        assert summary["decisions"] == {"treatment": 0, "holdout": 0}
        assert summary["engagements"] == {"treatment": 0, "holdout": 0}
        assert summary["engagement_rate"] == {"treatment": None, "holdout": None}
        assert summary["lift"] == {
            "estimate": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
            "method": "katz-log-rr",
        }
        assert summary["roi"] is None
        assert body["daily"] == []

    def test_metrics_default_range_is_the_last_30_days(self, client, tenant, create_config):
        """Without from/to the range is today and the 29 days before it (UTC)."""
        config_id = create_config()["id"]
        body = client.get(f"{BASE}/{config_id}/metrics", headers=tenant.headers).get_json()
        today = dt.datetime.now(dt.UTC).date()
        assert dt.date.fromisoformat(body["to"]) in (today, today - dt.timedelta(days=1))
        span = dt.date.fromisoformat(body["to"]) - dt.date.fromisoformat(body["from"])
        assert span == dt.timedelta(days=29)

    def test_metrics_one_sided_ranges(self, client, tenant, create_config):
        """Only from runs to today; only to gives the 30 days ending there."""
        config_id = create_config()["id"]
        today = dt.datetime.now(dt.UTC).date()
        start = today - dt.timedelta(days=100)
        only_from = client.get(
            f"{BASE}/{config_id}/metrics?from={start}", headers=tenant.headers
        ).get_json()
        assert only_from["from"] == start.isoformat()
        assert dt.date.fromisoformat(only_from["to"]) - today in (dt.timedelta(0), dt.timedelta(-1))
        only_to = client.get(
            f"{BASE}/{config_id}/metrics?to=2026-01-30", headers=tenant.headers
        ).get_json()
        assert (only_to["from"], only_to["to"]) == ("2026-01-01", "2026-01-30")

    def test_metrics_accepts_a_full_year(self, client, tenant, create_config):
        """366 days (a leap year) is the longest range accepted."""
        config_id = create_config()["id"]
        response = client.get(
            f"{BASE}/{config_id}/metrics?from=2028-01-01&to=2028-12-31", headers=tenant.headers
        )
        assert response.status_code == 200

    def test_metrics_single_day_range(self, client, tenant, create_config):
        """from == to is one day."""
        config_id = create_config()["id"]
        body = client.get(
            f"{BASE}/{config_id}/metrics?from=2026-05-05&to=2026-05-05", headers=tenant.headers
        ).get_json()
        assert (body["from"], body["to"]) == ("2026-05-05", "2026-05-05")

    def test_metrics_rejects_bad_ranges(self, client, tenant, create_config, subtests):
        """Reversed, over-366-day and unparsable dates are a 422 naming the parameter."""
        config_id = create_config()["id"]
        for query, field in [
            ("from=2026-02-01&to=2026-01-01", "from"),
            ("from=2026-01-01&to=2027-01-02", "to"),
            ("from=2020-01-01&to=2026-01-01", "to"),
            ("from=2026-13-01", "from"),
            ("from=01/02/2026", "from"),
            ("to=yesterday", "to"),
            ("from=2026-02-30", "from"),
        ]:
            with subtests.test(msg=query):
                response = client.get(f"{BASE}/{config_id}/metrics?{query}", headers=tenant.headers)
                assert field in assert_error(response, 422)["errors"]

    def test_metrics_at_the_calendar_edges_never_fail(
        self, client, tenant, create_config, subtests
    ):
        """A default range running past year 1 or 9999 is cut there or refused, never a 500."""
        config_id = create_config()["id"]
        for query in ("from=9999-12-31", "to=0001-01-01", "from=0001-01-01"):
            with subtests.test(msg=query):
                response = client.get(f"{BASE}/{config_id}/metrics?{query}", headers=tenant.headers)
                if response.status_code == 422:  # from=0001-01-01 up to today: over 366 days
                    assert "366" in assert_error(response, 422)["message"]
                    continue
                assert response.status_code == 200
                body = response.get_json()
                assert body["from"] <= body["to"]
