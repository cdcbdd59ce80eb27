"""Bad input: each a 4xx with the one error shape and a useful message, never a 500, and
nothing half-written (row counts before and after are equal)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.api.conftest import MINIMAL_SETTINGS, assert_error
from tests.conftest import BASE


def _settings(**blocks):
    return {**MINIMAL_SETTINGS, **blocks}


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"d": value}
    return value


def _dig(errors: dict, path: str):
    """``errors`` at a dotted path (``settings.actions.1.id``), failing if it is missing."""
    node = errors
    for part in path.split("."):
        assert isinstance(node, dict) and part in node, (path, errors)
        node = node[part]
    return node


# (label, request body: a dict to send as JSON, or raw text, code, dotted errors path,
#  a word the message or the field's messages must contain)
CREATE_CASES = [
    # --- the body itself
    ("malformed JSON", '{"name": "x", ', 400, "body", "json"),
    ("trailing garbage", '{"name": "x", "settings": {}} and more', 400, "body", "json"),
    ("nested a thousand deep", '{"a":' * 5000 + "1" + "}" * 5000, 400, "body", "json"),
    ("an integer of 5000 digits", '{"name": "x", "settings": ' + "9" * 5000 + "}", 400, "body", ""),
    ("body is a list", "[]", 422, "_schema", "object"),
    ("body is null", "null", 422, "_schema", "object"),
    ("body is a string", '"config"', 422, "_schema", "object"),
    ("empty object", {}, 422, "name", "missing"),
    (
        "unknown top-level field",
        {"name": "x", "settings": MINIMAL_SETTINGS, "owner": 1},
        422,
        "owner",
        "unknown",
    ),
    # --- name
    ("name is a number", {"name": 42, "settings": MINIMAL_SETTINGS}, 422, "name", "string"),
    ("name is a list", {"name": ["x"], "settings": MINIMAL_SETTINGS}, 422, "name", "string"),
    ("name is null", {"name": None, "settings": MINIMAL_SETTINGS}, 422, "name", "null"),
    ("name is empty", {"name": "", "settings": MINIMAL_SETTINGS}, 422, "name", "length"),
    ("name is blank", {"name": "   ", "settings": MINIMAL_SETTINGS}, 422, "name", "non-empty"),
    ("name is too long", {"name": "x" * 201, "settings": MINIMAL_SETTINGS}, 422, "name", "200"),
    ("name has a newline", {"name": "a\nb", "settings": MINIMAL_SETTINGS}, 422, "name", "control"),
    ("name has a NUL", {"name": "a\x00b", "settings": MINIMAL_SETTINGS}, 422, "name", "nul"),
    (
        "name has a lone surrogate",
        '{"name": "a\\ud800", "settings": {"actions": [{"id": "a"}]}}',
        422,
        "name",
        "surrogate",
    ),
    # --- status
    (
        "status lower case",
        {"name": "x", "settings": MINIMAL_SETTINGS, "status": "active"},
        422,
        "status",
        "ACTIVE",
    ),
    (
        "status unknown",
        {"name": "x", "settings": MINIMAL_SETTINGS, "status": "DELETED"},
        422,
        "status",
        "ACTIVE",
    ),
    (
        "status a number",
        {"name": "x", "settings": MINIMAL_SETTINGS, "status": 1},
        422,
        "status",
        "",
    ),
    # --- settings: shape and types
    ("settings missing", {"name": "x"}, 422, "settings", "missing"),
    ("settings a list", {"name": "x", "settings": []}, 422, "settings", "mapping"),
    ("settings a string", {"name": "x", "settings": "{}"}, 422, "settings", "mapping"),
    ("settings null", {"name": "x", "settings": None}, 422, "settings", "null"),
    (
        "actions missing",
        {"name": "x", "settings": {"holdout": {"percent": 5}}},
        422,
        "settings.actions",
        "missing",
    ),
    ("actions empty", {"name": "x", "settings": {"actions": []}}, 422, "settings.actions", "1000"),
    (
        "actions an object",
        {"name": "x", "settings": {"actions": {"id": "a"}}},
        422,
        "settings.actions",
        "list",
    ),
    (
        "action id a number",
        {"name": "x", "settings": {"actions": [{"id": 5}]}},
        422,
        "settings.actions.0.id",
        "string",
    ),
    (
        "action id with a newline",
        {"name": "x", "settings": {"actions": [{"id": "a\n"}]}},
        422,
        "settings.actions.0.id",
        "characters",
    ),
    (
        "action cost negative",
        {"name": "x", "settings": {"actions": [{"id": "a", "cost": -1}]}},
        422,
        "settings.actions.0.cost",
        "greater",
    ),
    (
        "feature an object",
        {"name": "x", "settings": {"actions": [{"id": "a", "features": {"f": {"g": 1}}}]}},
        422,
        "settings.actions.0.features",
        "feature",
    ),
    (
        "holdout percent a string",
        {"name": "x", "settings": _settings(holdout={"percent": "ten"})},
        422,
        "settings.holdout.percent",
        "number",
    ),
    (
        "holdout percent 0",
        {"name": "x", "settings": _settings(holdout={"percent": 0})},
        422,
        "settings.holdout.percent",
        "above 0",
    ),
    (
        "holdout over 50",
        {"name": "x", "settings": _settings(holdout={"percent": 51})},
        422,
        "settings.holdout.percent",
        "50",
    ),
    (
        "automation unknown",
        {"name": "x", "settings": _settings(automation="yolo")},
        422,
        "settings.automation",
        "manual",
    ),
    (
        "exploration unknown",
        {"name": "x", "settings": _settings(exploration={"algorithm": "greedy"})},
        422,
        "settings.exploration.algorithm",
        "squarecb",
    ),
    (
        "reward wait zero",
        {"name": "x", "settings": _settings(reward={"wait_seconds": 0})},
        422,
        "settings.reward.wait_seconds",
        "",
    ),
    (
        "attribution model unknown",
        {"name": "x", "settings": _settings(attribution={"model": "magic"})},
        422,
        "settings.attribution.model",
        "last_touch",
    ),
    (
        "quiet hours not a clock",
        {
            "name": "x",
            "settings": _settings(schedule={"quiet_hours": {"start": "25:00", "end": "08:00"}}),
        },
        422,
        "settings.schedule.quiet_hours.start",
        "HH:MM",
    ),
    (
        "campaign timestamp without zone",
        {"name": "x", "settings": _settings(campaign={"starts_at": "2026-12-01T09:00:00"})},
        422,
        "settings.campaign.starts_at",
        "offset",
    ),
    # --- settings: unknown keys at each level
    (
        "unknown top-level settings key",
        {"name": "x", "settings": _settings(colour="red")},
        422,
        "settings.colour",
        "unknown",
    ),
    (
        "unknown key in a block",
        {"name": "x", "settings": _settings(holdout={"pct": 20})},
        422,
        "settings.holdout.pct",
        "unknown",
    ),
    (
        "unknown key in an action",
        {"name": "x", "settings": {"actions": [{"id": "a", "price": 3}]}},
        422,
        "settings.actions.0.price",
        "unknown",
    ),
    (
        "unknown key in a frequency cap",
        {
            "name": "x",
            "settings": _settings(
                guardrails={
                    "frequency_caps": [{"channel": "email", "max": 1, "per_hours": 24, "x": 1}]
                }
            ),
        },
        422,
        "settings.guardrails.frequency_caps.0.x",
        "unknown",
    ),
    # --- settings: cross references
    (
        "unknown channel",
        {"name": "x", "settings": _settings(channels=["sms"])},
        422,
        "settings.channels",
        "sms",
    ),
    (
        "duplicate action ids",
        {"name": "x", "settings": {"actions": [{"id": "a"}, {"id": "a"}]}},
        422,
        "settings.actions.1.id",
        "duplicate",
    ),
    (
        "baseline names an unknown action",
        {"name": "x", "settings": _settings(holdout={"baseline": {"action_id": "nope"}})},
        422,
        "settings.holdout.baseline",
        "nope",
    ),
    (
        "baseline neither random nor an action",
        {"name": "x", "settings": _settings(holdout={"baseline": "best"})},
        422,
        "settings.holdout.baseline",
        "random",
    ),
    (
        "frequency cap on a channel not in the config",
        {
            "name": "x",
            "settings": _settings(
                channels=["email"],
                guardrails={"frequency_caps": [{"channel": "web", "max": 1, "per_hours": 24}]},
            ),
        },
        422,
        "settings.guardrails.frequency_caps.0.channel",
        "web",
    ),
    (
        "action channel not in the config",
        {
            "name": "x",
            "settings": {"channels": ["email"], "actions": [{"id": "a", "channels": ["ads"]}]},
        },
        422,
        "settings.actions.0.channels",
        "ads",
    ),
    (
        "value event that is not an event",
        {
            "name": "x",
            "settings": _settings(reward={"events": {"click": 1}, "value_events": ["buy"]}),
        },
        422,
        "settings.reward.value_events",
        "buy",
    ),
    (
        "campaign ends before it starts",
        {
            "name": "x",
            "settings": _settings(
                campaign={"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-11-01T00:00:00Z"}
            ),
        },
        422,
        "settings.campaign.ends_at",
        "after",
    ),
    # --- settings: what JSON parsers accept but storage must not hold
    (
        "NaN in a feature",
        '{"name": "x", "settings": {"actions": [{"id": "a", "features": {"f": NaN}}]}}',
        422,
        "settings",
        "finite",
    ),
    (
        "Infinity in content",
        '{"name": "x", "settings": {"actions": [{"id": "a", "content": {"n": 1e400}}]}}',
        422,
        "settings",
        "finite",
    ),
    (
        "NUL in content",
        {"name": "x", "settings": {"actions": [{"id": "a", "content": {"t": "a\x00"}}]}},
        422,
        "settings",
        "nul",
    ),
    (
        "NUL in a content key",
        {"name": "x", "settings": {"actions": [{"id": "a", "content": {"t\x00": "a"}}]}},
        422,
        "settings",
        "nul",
    ),
    (
        "lone surrogate in content",
        '{"name": "x", "settings": {"actions": [{"id": "a", "content": {"t": "\\udc00"}}]}}',
        422,
        "settings",
        "surrogate",
    ),
    (
        "content nested 40 deep",
        {"name": "x", "settings": {"actions": [{"id": "a", "content": _nested(40)}]}},
        422,
        "settings",
        "deeper",
    ),
]


def _send(client, method, url, body, headers):
    if isinstance(body, str):
        return client.open(
            url, method=method, data=body, content_type="application/json", headers=headers
        )
    return client.open(url, method=method, json=body, headers=headers)


def _check(response, code, path, word):
    body = assert_error(response, code)
    details = _dig(body["errors"], path) if path else body["errors"]
    text = (body["message"] + " " + json.dumps(details, ensure_ascii=False)).lower()
    assert word.lower() in text, (word, body)
    return body


def test_bad_creates_are_4xx_and_write_nothing(client, tenant, row_counts, subtests):
    """Every malformed create answers its 4xx with a useful message and leaves no row."""
    before = row_counts()
    for label, body, code, path, word in CREATE_CASES:
        with subtests.test(msg=label):
            _check(_send(client, "POST", f"{BASE}/", body, tenant.headers), code, path, word)
            assert row_counts() == before


PATCH_CASES = [
    ("malformed JSON", '{"name": ', 400, "body", "json"),
    ("body is a list", "[1]", 422, "_schema", "object"),
    ("unknown field", {"colour": "red"}, 422, "colour", "unknown"),
    ("workspace_id", {"workspace_id": "other"}, 422, "workspace_id", "unknown"),
    ("id", {"id": str(uuid.uuid4())}, 422, "id", "unknown"),
    ("name null", {"name": None}, 422, "name", "null"),
    ("name too long", {"name": "x" * 201}, 422, "name", "200"),
    ("name blank", {"name": " "}, 422, "name", "non-empty"),
    ("name a number", {"name": 1}, 422, "name", "string"),
    ("status unknown", {"status": "STOPPED"}, 422, "status", "ACTIVE"),
    ("status null", {"status": None}, 422, "status", "null"),
    ("settings a list", {"settings": [{"op": "replace"}]}, 422, "settings", "mapping"),
    ("settings null", {"settings": None}, 422, "settings", "null"),
    ("unknown settings key", {"settings": {"colour": 1}}, 422, "settings.colour", "unknown"),
    (
        "unknown nested key",
        {"settings": {"reward": {"wait": 1}}},
        422,
        "settings.reward.wait",
        "unknown",
    ),
    ("removing the actions", {"settings": {"actions": None}}, 422, "settings.actions", "missing"),
    (
        "duplicate action ids",
        {"settings": {"actions": [{"id": "b"}, {"id": "b"}]}},
        422,
        "settings.actions.1.id",
        "duplicate",
    ),
    (
        "baseline to a removed action",
        {
            "settings": {
                "actions": [{"id": "only"}],
                "holdout": {"baseline": {"action_id": "spring-sale"}},
            }
        },
        422,
        "settings.holdout.baseline",
        "spring-sale",
    ),
    (
        "cap on a dropped channel",
        {
            "settings": {
                "channels": ["web"],
                "guardrails": {"frequency_caps": [{"channel": "email", "max": 2, "per_hours": 1}]},
            }
        },
        422,
        "settings.guardrails.frequency_caps.0.channel",
        "email",
    ),
    (
        "valid name, invalid settings",
        {"name": "ok", "settings": {"holdout": {"percent": 99}}},
        422,
        "settings.holdout.percent",
        "50",
    ),
    (
        "NaN",
        '{"settings": {"actions": [{"id": "a", "features": {"f": NaN}}]}}',
        422,
        "settings",
        "finite",
    ),
    ("patch nested 40 deep", {"settings": {"content": _nested(40)}}, 422, "settings", "deeper"),
]


def test_bad_patches_are_4xx_and_change_nothing(
    client, tenant, create_config, row_counts, subtests
):
    """Every malformed patch answers its 4xx and the config and its log stay exactly as before."""
    created = create_config(
        settings=_settings(
            holdout={"baseline": {"action_id": "spring-sale"}},
            guardrails={"frequency_caps": [{"channel": "email", "max": 3, "per_hours": 24}]},
        )
    )
    url = f"{BASE}/{created['id']}"
    before = row_counts()
    for label, body, code, path, word in PATCH_CASES:
        with subtests.test(msg=label):
            _check(_send(client, "PATCH", url, body, tenant.headers), code, path, word)
            assert client.get(url, headers=tenant.headers).get_json() == created
            assert row_counts() == before


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
def test_non_uuid_ids_are_404_with_the_error_shape(client, tenant, subtests, bad_id):
    """A path id that is not a UUID is a 404 that says ids are UUIDs, on every endpoint."""
    for method, suffix in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "/metrics"),
        ("GET", "/activities"),
    ]:
        with subtests.test(msg=f"{method} /{bad_id}{suffix}"):
            response = client.open(
                f"{BASE}/{bad_id}{suffix}", method=method, json={}, headers=tenant.headers
            )
            assert "uuid" in assert_error(response, 404)["message"].lower()


def test_a_foreign_id_with_a_valid_patch_is_404_and_writes_nothing(
    client, tenant, make_tenant, create_config, row_counts
):
    """A valid patch aimed at another workspace's config is a 404 and changes nothing."""
    created = create_config()
    stranger = make_tenant("stranger")
    before = row_counts()
    response = client.patch(
        f"{BASE}/{created['id']}", json={"name": "mine now"}, headers=stranger.headers
    )
    assert_error(response, 404)
    assert row_counts() == before
    assert client.get(f"{BASE}/{created['id']}", headers=tenant.headers).get_json() == created


def test_unsupported_methods_are_405_with_the_error_shape(client, tenant, create_config):
    """PUT and POST on an item are a 405 naming the allowed methods."""
    created = create_config()
    for method in ("PUT", "POST"):
        response = client.open(f"{BASE}/{created['id']}", method=method, headers=tenant.headers)
        assert_error(response, 405)
        assert "PATCH" in response.headers["Allow"]


def test_a_non_json_body_is_refused(client, tenant, row_counts):
    """A form-encoded create is refused with the missing fields named; nothing is written."""
    before = row_counts()
    response = client.post(f"{BASE}/", data={"name": "x"}, headers=tenant.headers)
    body = assert_error(response, 422)
    assert {"name", "settings"} <= set(body["errors"])
    assert row_counts() == before
