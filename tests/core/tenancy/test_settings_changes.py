"""Readable settings changes: list items matched by id or value, fields by path."""

from __future__ import annotations

from hpe_core.tenancy.settings_changes import ChangeKind, changes, patch_changes

BEFORE = {
    "channels": ["email", "web"],
    "actions": [
        {"id": "shoes", "cost": 0.0, "features": {"category": "shoes"}},
        {"id": "hats", "cost": 1.0},
        {"id": "socks", "cost": 0.5},
    ],
    "holdout": {"percent": 10, "baseline": "random"},
    "guardrails": {"channel_exclusions": [{"channel": "email", "key": "segment", "in": ["a"]}]},
}


def test_a_removed_offer_is_one_change_not_the_whole_list():
    """Retiring one action reads 'actions: removed hats', nothing about the others."""
    found = patch_changes(BEFORE, {"actions": [BEFORE["actions"][0], BEFORE["actions"][2]]})
    assert [(c.path, c.kind) for c in found] == [("actions", ChangeKind.REMOVED)]
    assert str(found[0]) == "actions: removed hats"
    assert found[0].before == BEFORE["actions"][1]


def test_field_changes_inside_an_offer_and_a_block():
    """A cost change names the offer and the field; a block field its dotted path."""
    after = {
        **BEFORE,
        "actions": [*BEFORE["actions"]],
        "holdout": {"percent": 20, "baseline": "random"},
    }
    after["actions"][1] = {"id": "hats", "cost": 2.5}
    found = {c.path: c for c in changes(BEFORE, after)}
    assert str(found["actions[hats].cost"]) == "actions[hats].cost: 1.0 → 2.5"
    assert str(found["holdout.percent"]) == "holdout.percent: 10 → 20"
    assert len(found) == 2


def test_value_lists_report_additions_and_removals():
    """Channels and exclusion rules: each added or removed item on its own."""
    found = patch_changes(
        BEFORE,
        {
            "channels": ["web", "ads"],
            "guardrails": {
                "channel_exclusions": [{"channel": "web", "key": "segment", "in": ["b"]}]
            },
        },
    )
    summary = sorted(str(c) for c in found)
    assert "channels: added ads" in summary and "channels: removed email" in summary
    assert any(s.startswith("guardrails.channel_exclusions: added {") for s in summary)
    assert any(s.startswith("guardrails.channel_exclusions: removed {") for s in summary)


def test_a_new_block_and_a_removed_key():
    """A key the patch adds or removes (null) is an addition or a removal."""
    found = patch_changes(
        BEFORE, {"schedule": {"quiet_hours": None}, "holdout": {"baseline": None}}
    )
    assert [str(c) for c in found] == ["holdout.baseline: removed random", "schedule: added {}"]


def test_no_change_is_no_change():
    assert patch_changes(BEFORE, {"holdout": {"percent": 10}}) == []
