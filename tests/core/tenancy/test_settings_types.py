"""Typed settings: every key of a validated document is read, and read once per version."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from hpe_core.store.models import Config
from hpe_core.tenancy.configs import settings_of
from hpe_core.tenancy.settings import parse_settings, validate_settings
from hpe_core.tenancy.settings_types import (
    AutomationLevel,
    BudgetPeriod,
    ExplorationAlgorithm,
    Kpi,
    Settings,
)

FULL = {
    "channels": ["email", "web"],
    "actions": [
        {
            "id": "shoes",
            "channels": ["email"],
            "features": {"category": "shoes", "discount": 20},
            "content": {"subject": "Shoes"},
            "cost": 0.5,
            "rules": [{"key": "country", "in": ["DE", "AT"]}, {"key": "age", "gte": 18}],
        },
        {"id": "hats"},
    ],
    "reward": {"events": {"click": 1.0, "purchase": 2.0}, "wait_seconds": 3600, "default": 0.1},
    "exploration": {"algorithm": "epsilon", "epsilon": 0.2},
    "holdout": {"percent": 20, "baseline": {"action_id": "hats"}},
    "guardrails": {
        "frequency_caps": [{"channel": "email", "max": 2, "per_hours": 24}],
        "max_action_share": 0.8,
        "budget": {"amount": 100, "period": "month"},
        "channel_exclusions": [{"channel": "web", "key": "segment", "in": ["bargain"]}],
    },
    "automation": "autonomous",
    "attribution": {"model": "linear", "window_hours": 48},
    "goals": {"kpi": "revenue_per_decision", "target_lift": 0.3, "segment_key": "tier"},
    "campaign": {"external_id": "c-1", "starts_at": "2026-12-01T00:00:00+00:00"},
    "schedule": {"quiet_hours": {"start": "21:00", "end": "08:00"}},
}


def _leaves(value, path=()):
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def test_every_document_key_has_a_typed_field():
    """No key of a full document is left unread: each maps to a field of its block."""
    settings = parse_settings(FULL)
    renamed = {"in": ("in_", "values"), "baseline": ("baseline_action",)}
    for path in _leaves(settings.document):
        node = settings
        for part in path:
            if isinstance(part, int):
                node = node[part]
                continue
            if dataclasses.is_dataclass(node):
                names = {f.name for f in dataclasses.fields(node)}
                name = next((n for n in (part, *renamed.get(part, ())) if n in names), None)
                assert name is not None, f"{'.'.join(map(str, path))} has no typed field"
                node = getattr(node, name)
            else:
                break  # a free-form mapping (features, content, events): read as a whole


def test_typed_values_match_the_document():
    """The typed objects hold the document's values, with enums for closed sets."""
    settings = parse_settings(FULL)
    assert settings.automation is AutomationLevel.AUTONOMOUS
    assert settings.exploration.algorithm is ExplorationAlgorithm.EPSILON
    assert settings.goals.kpi is Kpi.REVENUE_PER_DECISION
    assert settings.guardrails.budget.period is BudgetPeriod.MONTH
    assert settings.holdout.baseline_action == "hats"
    assert settings.holdout.baseline == {"action_id": "hats"}
    assert settings.reward.value_events == ("purchase",)
    assert settings.reward.weight("click") == 1.0 and settings.reward.weight("open") is None
    shoes = settings.actions_by_id["shoes"]
    assert shoes.rules[0].in_ == ("DE", "AT") and shoes.rules[1].gte == 18
    assert shoes.offered_on("email") and not shoes.offered_on("web")
    assert settings.actions_by_id["hats"].offered_on("web")
    assert settings.guardrails.channel_exclusions[0].values == ("bargain",)
    assert settings.campaign.starts_at == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert settings.schedule.quiet_hours.timezone_context_key == "tz"
    assert settings.document == validate_settings(FULL)


def test_settings_are_frozen():
    """Nobody changes settings in place: a change is a new validated document."""
    settings = parse_settings(FULL)
    try:
        settings.holdout.percent = 50  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        return
    raise AssertionError("settings were mutable")


def test_a_stored_document_missing_a_newer_block_reads_with_its_defaults():
    """A document stored before a key existed still reads, the key at its default."""
    document = validate_settings({"actions": [{"id": "a"}]})
    del document["guardrails"]["channel_exclusions"]
    del document["schedule"]
    config = Config(id=uuid.uuid4(), workspace_id="w", name="n", settings=document)
    settings = settings_of(config)
    assert settings.guardrails.channel_exclusions == ()
    assert settings.schedule.quiet_hours is None


def test_settings_of_follows_a_new_document_assigned_to_the_instance():
    """Assigning new settings to a configuration is seen at once (no stale cache)."""
    config = Config(
        id=uuid.uuid4(),
        workspace_id="w",
        name="n",
        settings=validate_settings({"actions": [{"id": "a"}]}),
        updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    first = settings_of(config)
    assert settings_of(config) is first
    config.settings = validate_settings({"actions": [{"id": "b"}]})
    assert settings_of(config).action_ids == ["b"]


def test_a_stored_version_is_parsed_once_across_sessions(sqlite_app):
    """Two loads of one unchanged configuration share one parse; a change makes another."""
    from hpe_core.tenancy import configs
    from hpe_core.tenancy.workspaces import Principal, create_workspace
    from web.extensions import app_runtime

    runtime = app_runtime(sqlite_app)
    with runtime.sessions() as session:
        create_workspace(session, "w")
        config = configs.create(
            session,
            Principal("w", "test"),
            runtime.catalog,
            name="n",
            settings={"actions": [{"id": "a"}]},
        )
        session.commit()
        config_id = config.id
    with runtime.sessions() as session:
        first = settings_of(session.get(Config, config_id))
    with runtime.sessions() as session:
        assert settings_of(session.get(Config, config_id)) is first
        assert isinstance(first, Settings)
