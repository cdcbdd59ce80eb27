"""The Config.settings schema: defaults, unknown keys, per-field messages, cross references."""

from __future__ import annotations

import copy
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpe_core.errors import InvalidInput
from hpe_core.tenancy.settings import (
    ATTRIBUTION_MODELS,
    AUTOMATION_LEVELS,
    BUILTIN_CHANNELS,
    EXPLORATION_ALGORITHMS,
    KPIS,
    MAX_DEPTH,
    check_json_document,
    merge_settings_patch,
    validate_settings,
)

ONE_ACTION = {"actions": [{"id": "a"}]}


def _errors(raw, **kwargs) -> dict:
    """The ``errors["settings"]`` of the InvalidInput that validating ``raw`` raises."""
    with pytest.raises(InvalidInput) as info:
        validate_settings(raw, **kwargs)
    assert set(info.value.errors) == {"settings"}
    return info.value.errors["settings"]


def _at(errors, path: str) -> list[str]:
    node = errors
    for part in path.split("."):
        assert isinstance(node, dict) and part in node, (path, errors)
        node = node[part]
    assert isinstance(node, list) and all(isinstance(m, str) for m in node), node
    return node


# --- defaults ---------------------------------------------------------------------------


def test_only_actions_are_required():
    """Settings without actions are refused with a message on actions alone."""
    errors = _errors({})
    assert list(errors) == ["actions"]
    assert _at(errors, "actions") == ["Missing data for required field."]


def test_every_block_gets_its_defaults():
    """One action in, the full document out, with DESIGN.md §5's defaults."""
    result = validate_settings(ONE_ACTION)
    assert set(result) >= {
        "channels",
        "actions",
        "reward",
        "exploration",
        "holdout",
        "guardrails",
        "automation",
        "attribution",
        "goals",
        "campaign",
        "schedule",
    }
    assert result["channels"] == list(BUILTIN_CHANNELS)
    assert result["actions"][0] | {"rules": []} == {
        "id": "a",
        "channels": None,
        "features": {},
        "content": {},
        "cost": 0.0,
        "rules": [],
    }
    assert result["reward"] == {
        "events": {"open": 0.1, "click": 1.0, "conversion": 1.0},
        "value_events": ["conversion"],
        "wait_seconds": 86400,
        "default": 0.0,
    }
    assert result["exploration"]["algorithm"] == "squarecb"
    assert result["exploration"]["epsilon"] == 0.05
    assert result["holdout"] == {"percent": 10.0, "baseline": "random"}
    assert result["guardrails"] == {
        "frequency_caps": [],
        "max_action_share": None,
        "budget": None,
        "circuit_breaker": {
            "enabled": True,
            "alpha": 0.01,
            "min_decisions": 1000,
            "window_days": 7,
        },
        "channel_exclusions": [],
    }
    assert result["automation"] == "assisted"
    assert result["attribution"]["model"] == "last_touch"
    assert result["attribution"]["window_hours"] == 168.0
    assert result["goals"] == {
        "kpi": "engagement_rate",
        "target_lift": 0.5,
        "segment_key": "segment",
    }
    assert result["campaign"] == {
        "external_id": None,
        "source": None,
        "starts_at": None,
        "ends_at": None,
    }
    assert result["schedule"] == {"quiet_hours": None}


def test_a_partial_block_is_completed_with_its_defaults():
    """Giving one key of a block keeps the block's other defaults."""
    result = validate_settings({**ONE_ACTION, "holdout": {"percent": 5}, "reward": {"default": -1}})
    assert result["holdout"] == {"percent": 5.0, "baseline": "random"}
    assert result["reward"]["events"] == {"open": 0.1, "click": 1.0, "conversion": 1.0}
    assert result["reward"]["default"] == -1.0


def test_default_channels_are_the_installed_ones():
    """Without channels, the configuration uses every channel the plugins provide."""
    result = validate_settings(ONE_ACTION, channels=["email", "sms"])
    assert result["channels"] == ["email", "sms"]


def test_validation_does_not_modify_its_input():
    """The raw document is left untouched; the result is a new document."""
    raw = {"actions": [{"id": "a", "features": {"x": 1}}], "holdout": {"percent": 20}}
    before = copy.deepcopy(raw)
    validate_settings(raw)
    assert raw == before


@pytest.mark.parametrize("raw", [None, [], "settings", 3, True, [ONE_ACTION]])
def test_settings_must_be_an_object(raw):
    """Anything but a JSON object is refused as a whole."""
    assert _errors(raw) == ["Must be an object."]


# --- unknown keys at every level ----------------------------------------------------------


@pytest.mark.parametrize(
    "raw, path",
    [
        ({**ONE_ACTION, "colour": 1}, "colour"),
        ({"actions": [{"id": "a", "price": 1}]}, "actions.0.price"),
        ({**ONE_ACTION, "reward": {"events": {"click": 1}, "weights": 1}}, "reward.weights"),
        ({**ONE_ACTION, "exploration": {"eps": 0.1}}, "exploration.eps"),
        ({**ONE_ACTION, "holdout": {"pct": 10}}, "holdout.pct"),
        ({**ONE_ACTION, "guardrails": {"caps": []}}, "guardrails.caps"),
        (
            {
                **ONE_ACTION,
                "guardrails": {
                    "frequency_caps": [{"channel": "web", "max": 1, "per_hours": 1, "per": 1}]
                },
            },
            "guardrails.frequency_caps.0.per",
        ),
        (
            {**ONE_ACTION, "guardrails": {"budget": {"amount": 1, "currency": "EUR"}}},
            "guardrails.budget.currency",
        ),
        ({**ONE_ACTION, "attribution": {"window": 1}}, "attribution.window"),
        ({**ONE_ACTION, "goals": {"target": 1}}, "goals.target"),
        ({**ONE_ACTION, "campaign": {"name": "x"}}, "campaign.name"),
        ({**ONE_ACTION, "schedule": {"weekdays": []}}, "schedule.weekdays"),
        (
            {
                **ONE_ACTION,
                "schedule": {"quiet_hours": {"start": "21:00", "end": "08:00", "tz": 1}},
            },
            "schedule.quiet_hours.tz",
        ),
    ],
)
def test_unknown_keys_are_rejected_at_every_level(raw, path):
    """A typo anywhere is an error at its exact path, never a silent default."""
    assert _at(_errors(raw), path) == ["Unknown field."]


# --- per-field messages -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, path, words",
    [
        ({"actions": []}, "actions", "between 1 and 1000"),
        ({"actions": [{"id": "a"}] * 1001}, "actions", "between 1 and 1000"),
        ({"actions": [{}]}, "actions.0.id", "missing"),
        ({"actions": [{"id": ""}]}, "actions.0.id", "1-128 characters"),
        ({"actions": [{"id": "a b"}]}, "actions.0.id", "1-128 characters"),
        ({"actions": [{"id": "x" * 129}]}, "actions.0.id", "1-128 characters"),
        ({"actions": [{"id": "a", "cost": -0.5}]}, "actions.0.cost", "greater than or equal to 0"),
        (
            {"actions": [{"id": "a", "features": {"f": "x" * 257}}]},
            "actions.0.features.f.value",
            "256",
        ),
        (
            {"actions": [{"id": "a", "features": {"f": [1, 2]}}]},
            "actions.0.features.f.value",
            "list of at most 64 strings",
        ),
        ({"actions": [{"id": "a", "features": {"": 1}}]}, "actions.0.features..key", "length"),
        ({**ONE_ACTION, "channels": []}, "channels", "minimum length 1"),
        ({**ONE_ACTION, "channels": "email"}, "channels", "not a valid list"),
        ({**ONE_ACTION, "reward": {"events": {}}}, "reward.events", "length"),
        (
            {**ONE_ACTION, "reward": {"events": {"click": 2000}}},
            "reward.events.click.value",
            "1000",
        ),
        ({**ONE_ACTION, "reward": {"wait_seconds": 31 * 86400}}, "reward.wait_seconds", "2592000"),
        (
            {**ONE_ACTION, "reward": {"wait_seconds": 1.5}},
            "reward.wait_seconds",
            "not a valid integer",
        ),
        ({**ONE_ACTION, "exploration": {"algorithm": "ucb"}}, "exploration.algorithm", "squarecb"),
        ({**ONE_ACTION, "exploration": {"epsilon": 1.5}}, "exploration.epsilon", "1"),
        ({**ONE_ACTION, "holdout": {"percent": 0}}, "holdout.percent", "above 0"),
        ({**ONE_ACTION, "holdout": {"percent": 50.5}}, "holdout.percent", "at most 50"),
        ({**ONE_ACTION, "holdout": {"percent": "10"}}, "holdout.percent", "not a valid number"),
        ({**ONE_ACTION, "holdout": {"baseline": "best"}}, "holdout.baseline", "random"),
        ({**ONE_ACTION, "holdout": {"baseline": {"action_id": 1}}}, "holdout.baseline", "random"),
        (
            {**ONE_ACTION, "guardrails": {"frequency_caps": [{"channel": "web"}]}},
            "guardrails.frequency_caps.0.max",
            "missing",
        ),
        (
            {
                **ONE_ACTION,
                "guardrails": {"frequency_caps": [{"channel": "web", "max": 0, "per_hours": 1}]},
            },
            "guardrails.frequency_caps.0.max",
            "greater than or equal to 1",
        ),
        (
            {**ONE_ACTION, "guardrails": {"max_action_share": 0}},
            "guardrails.max_action_share",
            "greater than 0",
        ),
        (
            {**ONE_ACTION, "guardrails": {"budget": {"amount": 1, "period": "week"}}},
            "guardrails.budget.period",
            "day",
        ),
        ({**ONE_ACTION, "automation": "auto"}, "automation", "manual, assisted, autonomous"),
        ({**ONE_ACTION, "goals": {"kpi": "clicks"}}, "goals.kpi", "engagement_rate"),
        ({**ONE_ACTION, "campaign": {"starts_at": "tomorrow"}}, "campaign.starts_at", "ISO-8601"),
        (
            {**ONE_ACTION, "campaign": {"starts_at": "2026-12-01T09:00:00"}},
            "campaign.starts_at",
            "offset",
        ),
        (
            {**ONE_ACTION, "schedule": {"quiet_hours": {"start": "9:00", "end": "08:00"}}},
            "schedule.quiet_hours.start",
            "HH:MM",
        ),
        (
            {**ONE_ACTION, "schedule": {"quiet_hours": {"start": "21:00\n", "end": "08:00"}}},
            "schedule.quiet_hours.start",
            "HH:MM",
        ),
    ],
)
def test_each_field_has_its_own_message(raw, path, words):
    """Each invalid field is reported at its own path with a message saying what is wrong."""
    messages = _at(_errors(raw), path)
    if words:
        assert words.lower() in " ".join(messages).lower(), messages


@pytest.mark.parametrize(
    "raw, path, message",
    [
        ({"actions": [{"id": "a", "cost": "1"}]}, "actions.0.cost", "Not a valid number."),
        ({**ONE_ACTION, "holdout": {"percent": True}}, "holdout.percent", "Not a valid number."),
        (
            {**ONE_ACTION, "reward": {"wait_seconds": 1.5}},
            "reward.wait_seconds",
            "Not a valid integer.",
        ),
        (
            {**ONE_ACTION, "reward": {"wait_seconds": "60"}},
            "reward.wait_seconds",
            "Not a valid integer.",
        ),
        (
            {**ONE_ACTION, "exploration": {"bag_size": 2.9}},
            "exploration.bag_size",
            "Not a valid integer.",
        ),
        (
            {**ONE_ACTION, "reward": {"events": {"click": "1"}}},
            "reward.events.click.value",
            "Not a valid number.",
        ),
        (
            {
                **ONE_ACTION,
                "guardrails": {"frequency_caps": [{"channel": "web", "max": "3", "per_hours": 1}]},
            },
            "guardrails.frequency_caps.0.max",
            "Not a valid integer.",
        ),
    ],
)
def test_numbers_must_be_json_numbers(raw, path, message):
    """No casting: numeric strings, booleans and fractional integers are wrong types."""
    assert _at(_errors(raw), path) == [message]


def test_integral_floats_are_integers():
    """86400.0 is the integer 86400 (JSON has one number type)."""
    result = validate_settings({**ONE_ACTION, "reward": {"wait_seconds": 86400.0}})
    assert result["reward"]["wait_seconds"] == 86400
    assert isinstance(result["reward"]["wait_seconds"], int)


def test_several_errors_are_reported_together():
    """Validation reports every bad field at once, not just the first."""
    errors = _errors(
        {"actions": [{"id": "a", "cost": -1}], "holdout": {"percent": 99}, "automation": "x"}
    )
    assert set(errors) == {"actions", "holdout", "automation"}


def test_an_action_id_may_use_the_documented_characters():
    """Letters, digits, '_', '.', ':' and '-' are fine after a letter or digit."""
    result = validate_settings({"actions": [{"id": "Spring_sale.v2:EU-1"}, {"id": "9"}]})
    assert [a["id"] for a in result["actions"]] == ["Spring_sale.v2:EU-1", "9"]


def test_timestamps_are_normalized():
    """Campaign timestamps are stored as normalized ISO strings with an offset."""
    result = validate_settings(
        {
            **ONE_ACTION,
            "campaign": {
                "starts_at": "2026-12-01T09:00:00Z",
                "ends_at": "2026-12-24T18:00:00+01:00",
            },
        }
    )
    assert result["campaign"]["starts_at"] == "2026-12-01T09:00:00+00:00"
    assert result["campaign"]["ends_at"] == "2026-12-24T18:00:00+01:00"


# --- cross references -------------------------------------------------------------------


def test_channels_must_be_installed():
    """A channel no plugin provides is refused, naming the installed ones."""
    [message] = _at(_errors({**ONE_ACTION, "channels": ["email", "sms"]}), "channels")
    assert "sms" in message
    assert all(name in message.split(":", 1)[1] for name in BUILTIN_CHANNELS)
    assert validate_settings({**ONE_ACTION, "channels": ["sms"]}, channels=["sms"])


def test_an_action_channel_must_be_a_config_channel():
    """An action limited to a channel the configuration does not use is refused."""
    raw = {"channels": ["email"], "actions": [{"id": "a", "channels": ["email", "web"]}]}
    assert "web" in _at(_errors(raw), "actions.0.channels")[0]


def test_action_ids_are_unique():
    """The second use of an id is reported at its index."""
    errors = _errors({"actions": [{"id": "a"}, {"id": "b"}, {"id": "a"}]})
    assert set(errors["actions"]) == {"2"}
    assert "Duplicate action id a" in _at(errors, "actions.2.id")[0]


def test_the_baseline_must_be_an_action():
    """A fixed baseline names one of the configuration's actions."""
    assert (
        "nope"
        in _at(
            _errors({**ONE_ACTION, "holdout": {"baseline": {"action_id": "nope"}}}),
            "holdout.baseline",
        )[0]
    )
    result = validate_settings({**ONE_ACTION, "holdout": {"baseline": {"action_id": "a"}}})
    assert result["holdout"]["baseline"] == {"action_id": "a"}


def test_frequency_caps_must_name_a_config_channel():
    """A cap on a channel the configuration does not use is refused at its index."""
    raw = {
        **ONE_ACTION,
        "channels": ["email"],
        "guardrails": {
            "frequency_caps": [
                {"channel": "email", "max": 1, "per_hours": 24},
                {"channel": "web", "max": 1, "per_hours": 24},
            ]
        },
    }
    errors = _errors(raw)
    assert set(errors["guardrails"]["frequency_caps"]) == {"1"}
    assert "web" in _at(errors, "guardrails.frequency_caps.1.channel")[0]


def test_a_cap_on_a_default_channel_is_fine():
    """Without explicit channels every installed channel may be capped."""
    raw = {
        **ONE_ACTION,
        "guardrails": {"frequency_caps": [{"channel": "ads", "max": 2, "per_hours": 1}]},
    }
    assert validate_settings(raw)["guardrails"]["frequency_caps"][0]["channel"] == "ads"


def test_value_events_must_be_events():
    """A value event must also carry a reward weight."""
    raw = {**ONE_ACTION, "reward": {"events": {"click": 1}, "value_events": ["purchase"]}}
    assert "purchase" in _at(_errors(raw), "reward.value_events")[0]


# --- defaults derived from what the user wrote --------------------------------------------


@pytest.mark.parametrize(
    "events, value_events",
    [
        ({"click": 1.0}, []),
        ({"open": 0.1, "click": 1}, []),
        ({"click": 1.0, "conversion": 2.0}, ["conversion"]),
        ({"click": 1.0, "purchase": 1.0}, ["purchase"]),
    ],
)
def test_a_first_reward_block_takes_its_value_events_from_its_own_events(events, value_events):
    """Events without value_events: the value events are those of the user's events that
    carry values, never a default event the user left out (the first-hour 422)."""
    result = validate_settings({**ONE_ACTION, "reward": {"events": events}})
    assert result["reward"]["events"] == {k: float(v) for k, v in events.items()}
    assert result["reward"]["value_events"] == value_events


def test_value_events_alone_join_the_default_events():
    """value_events without events: the default weights, plus each named value event."""
    result = validate_settings({**ONE_ACTION, "reward": {"value_events": ["purchase"]}})
    assert result["reward"]["events"] == {
        "open": 0.1,
        "click": 1.0,
        "conversion": 1.0,
        "purchase": 1.0,
    }
    assert result["reward"]["value_events"] == ["purchase"]


def test_a_contradiction_the_user_wrote_is_still_refused():
    """Both keys given and in conflict: 422 naming value_events, which the user sent."""
    raw = {**ONE_ACTION, "reward": {"events": {"click": 1}, "value_events": ["conversion"]}}
    assert "conversion" in _at(_errors(raw), "reward.value_events")[0]


def _stored(raw: dict) -> dict:
    return validate_settings(raw)


def test_patching_the_events_re_derives_default_value_events():
    """Removing conversion from the default events removes it from the default value
    events too, instead of a 422 about value_events (which the user never wrote)."""
    stored = _stored(ONE_ACTION)
    patch = {"reward": {"events": {"open": None, "conversion": None}}}
    result = validate_settings(merge_settings_patch(stored, patch))
    assert result["reward"]["events"] == {"click": 1.0}
    assert result["reward"]["value_events"] == []


def test_patching_value_events_re_derives_default_events():
    """Naming a new value event on default events gives it a weight."""
    stored = _stored(ONE_ACTION)
    result = validate_settings(merge_settings_patch(stored, {"reward": {"value_events": ["buy"]}}))
    assert result["reward"]["events"]["buy"] == 1.0
    assert result["reward"]["value_events"] == ["buy"]


def test_patching_keeps_value_events_the_user_chose():
    """Value events that differ from the derived default are the user's: a patch of the
    events keeps them (and a conflict then names them, as the user wrote them)."""
    stored = _stored(
        {**ONE_ACTION, "reward": {"events": {"click": 1, "conversion": 1}, "value_events": []}}
    )
    result = validate_settings(merge_settings_patch(stored, {"reward": {"events": {"open": 1}}}))
    assert result["reward"]["value_events"] == []
    assert result["reward"]["events"] == {"click": 1.0, "conversion": 1.0, "open": 1.0}


def test_a_patch_that_touches_both_keys_is_taken_as_written():
    stored = _stored(ONE_ACTION)
    patch = {"reward": {"events": {"conversion": None}, "value_events": ["conversion"]}}
    errors = _errors(merge_settings_patch(stored, patch))
    assert "conversion" in _at(errors, "reward.value_events")[0]


def test_merge_settings_patch_does_not_modify_its_arguments():
    stored = _stored(ONE_ACTION)
    before = copy.deepcopy(stored)
    patch = {"reward": {"events": {"conversion": None}}}
    merge_settings_patch(stored, patch)
    assert stored == before and patch == {"reward": {"events": {"conversion": None}}}


def test_attribution_models_come_from_the_catalog():
    """Only available attribution models are accepted."""
    raw = {**ONE_ACTION, "attribution": {"model": "linear"}}
    assert validate_settings(raw)["attribution"]["model"] == "linear"
    assert (
        "last_touch" in _at(_errors(raw, attribution_models=["last_touch"]), "attribution.model")[0]
    )


def test_campaign_must_end_after_it_starts():
    """ends_at at or before starts_at is refused on ends_at."""
    raw = {
        **ONE_ACTION,
        "campaign": {"starts_at": "2026-12-01T10:00:00+01:00", "ends_at": "2026-12-01T09:00:00Z"},
    }
    assert _at(_errors(raw), "campaign.ends_at") == ["Must be after starts_at."]


# --- what storage cannot hold -----------------------------------------------------------


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"actions": [{"id": "a", "features": {"f": float("nan")}}]}, "actions.0.features.f"),
        ({"actions": [{"id": "a", "content": {"x": [float("inf")]}}]}, "actions.0.content.x.0"),
        ({"actions": [{"id": "a", "content": {"x": "a\x00"}}]}, "NUL"),
        ({"actions": [{"id": "a", "content": {"x\x00": 1}}]}, "NUL"),
        ({"actions": [{"id": "a", "content": {"x": "\udc00"}}]}, "surrogates"),
    ],
)
def test_values_storage_cannot_hold_are_refused(raw, words):
    """NaN, Infinity, NUL and unpaired surrogates are refused, naming their path."""
    [message] = _errors(raw)
    assert words in message


def test_nesting_is_bounded():
    """Free-form content may nest up to MAX_DEPTH levels, no deeper."""

    def nested(depth):
        value = "leaf"
        for _ in range(depth):
            value = {"d": value}
        return value

    # actions -> [0] -> content is 3 levels; the rest fits in MAX_DEPTH
    ok = {"actions": [{"id": "a", "content": nested(MAX_DEPTH - 3)}]}
    assert validate_settings(ok)["actions"][0]["content"] == nested(MAX_DEPTH - 3)
    deep = {"actions": [{"id": "a", "content": nested(MAX_DEPTH)}]}
    assert "deeper" in _errors(deep)[0]
    check_json_document(nested(MAX_DEPTH))
    with pytest.raises(InvalidInput):
        check_json_document(nested(MAX_DEPTH + 1))


# --- properties -------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
_identifiers = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,15}", fullmatch=True)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
_feature_values = (
    st.booleans() | st.integers(-(10**9), 10**9) | _finite | _text | st.lists(_text, max_size=4)
)
_content = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | _finite | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_timestamps = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())


_EVENT_TYPES = ("open", "click", "conversion", "purchase", "signup", "view")


@st.composite
def _reward_blocks(draw) -> dict:
    """A consistent pair of events and value events, each of which may be left out."""
    events = draw(
        st.dictionaries(
            st.sampled_from(_EVENT_TYPES), st.floats(-1000, 1000), min_size=1, max_size=6
        )
    )
    value_events = draw(st.lists(st.sampled_from(sorted(events)), unique=True))
    full = {
        "events": events,
        "value_events": value_events,
        "wait_seconds": draw(st.integers(1, 30 * 86400)),
        "default": draw(st.floats(-10, 10)),
    }
    kept = draw(st.lists(st.sampled_from(sorted(full)), unique=True))
    return {key: full[key] for key in kept}


@st.composite
def valid_settings(draw) -> dict:
    """Documents that satisfy the schema, with random subsets of optional blocks and keys."""
    channels = draw(st.lists(st.sampled_from(BUILTIN_CHANNELS), min_size=1, unique=True))
    ids = draw(st.lists(_identifiers, min_size=1, max_size=5, unique=True))
    actions = []
    for action_id in ids:
        action = {"id": action_id}
        if draw(st.booleans()):
            action["channels"] = draw(st.lists(st.sampled_from(channels), unique=True))
        if draw(st.booleans()):
            action["features"] = draw(
                st.dictionaries(_text.filter(bool), _feature_values, max_size=4)
            )
        if draw(st.booleans()):
            action["content"] = draw(st.dictionaries(_text, _content, max_size=3))
        if draw(st.booleans()):
            action["cost"] = draw(st.floats(0, 1000))
        actions.append(action)
    optional = {
        "channels": st.just(channels),
        "reward": _reward_blocks(),
        "exploration": st.fixed_dictionaries(
            {},
            optional={
                "algorithm": st.sampled_from(EXPLORATION_ALGORITHMS),
                "epsilon": st.floats(0, 1),
                "bag_size": st.integers(2, 50),
            },
        ),
        "holdout": st.fixed_dictionaries(
            {},
            optional={
                "percent": st.floats(0.01, 50),
                "baseline": st.just("random")
                | st.sampled_from(ids).map(lambda a: {"action_id": a}),
            },
        ),
        "guardrails": st.fixed_dictionaries(
            {},
            optional={
                "frequency_caps": st.lists(
                    st.fixed_dictionaries(
                        {
                            "channel": st.sampled_from(channels),
                            "max": st.integers(1, 1000),
                            "per_hours": st.floats(0.01, 24 * 366),
                        }
                    ),
                    max_size=3,
                ),
                "max_action_share": st.none() | st.floats(0.01, 1),
                "budget": st.none()
                | st.fixed_dictionaries(
                    {"amount": st.floats(0, 1e6)},
                    optional={"period": st.sampled_from(["day", "month", "total"])},
                ),
            },
        ),
        "automation": st.sampled_from(AUTOMATION_LEVELS),
        "attribution": st.fixed_dictionaries(
            {},
            optional={
                "model": st.sampled_from(ATTRIBUTION_MODELS),
                "window_hours": st.floats(1, 24 * 90),
            },
        ),
        "goals": st.fixed_dictionaries(
            {},
            optional={"kpi": st.sampled_from(KPIS), "target_lift": st.floats(0, 100)},
        ),
        "campaign": st.fixed_dictionaries(
            {},
            optional={
                "external_id": st.none() | _text,
                "source": st.none() | _text,
                "starts_at": st.none() | _timestamps,
            },
        ),
        "schedule": st.fixed_dictionaries(
            {},
            optional={
                "quiet_hours": st.none()
                | st.fixed_dictionaries(
                    {
                        "start": st.from_regex(r"([01]\d|2[0-3]):[0-5]\d", fullmatch=True),
                        "end": st.from_regex(r"([01]\d|2[0-3]):[0-5]\d", fullmatch=True),
                    }
                )
            },
        ),
    }
    return draw(st.fixed_dictionaries({"actions": st.just(actions)}, optional=optional))


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(raw=valid_settings())
def test_validate_settings_is_idempotent(raw):
    """Validating a validated document returns the same document."""
    once = validate_settings(raw)
    assert validate_settings(once) == once
    assert validate_settings(copy.deepcopy(once)) == once


@_SETTINGS
@given(raw=valid_settings())
def test_valid_documents_keep_what_they_say(raw):
    """Every value given survives validation (defaults only fill gaps)."""
    result = validate_settings(raw)
    assert [a["id"] for a in result["actions"]] == [a["id"] for a in raw["actions"]]
    for block in ("holdout", "exploration", "goals", "attribution"):
        for key, value in raw.get(block, {}).items():
            assert result[block][key] == value


@_SETTINGS
@given(raw=valid_settings())
def test_a_default_never_turns_valid_input_invalid(raw):
    """Every document built from keys of one valid document validates: the defaults for
    the keys left out never contradict the keys given (and never replace them)."""
    result = validate_settings(raw)
    for key, value in raw.get("reward", {}).items():
        if key == "events":
            assert result["reward"]["events"] == {k: float(v) for k, v in value.items()}
        else:
            assert result["reward"][key] == value


@st.composite
def _part_of(draw, document: dict) -> dict:
    """Some of ``document``'s blocks, each with some of its keys (actions never dropped)."""
    part = {}
    for block, value in document.items():
        if block != "actions" and draw(st.booleans()):
            continue
        if isinstance(value, dict) and block != "actions":
            keys = draw(st.lists(st.sampled_from(sorted(value)), unique=True)) if value else []
            value = {key: value[key] for key in keys}
        part[block] = value
    return part


@_SETTINGS
@given(data=st.data(), full=valid_settings())
def test_a_default_never_turns_a_valid_patch_invalid(data, full):
    """Create from part of a valid document, PATCH with another part of it (or reset
    keys with null): the result validates, whatever defaults the first step filled in."""
    stored = validate_settings(data.draw(_part_of(full)))
    patch = data.draw(_part_of(full))
    patch.pop("actions", None)
    resets = data.draw(
        st.lists(st.sampled_from(["events", "value_events", "wait_seconds"]), unique=True)
    )
    if resets:
        patch.setdefault("reward", {}).update(dict.fromkeys(resets))
    validate_settings(merge_settings_patch(stored, patch))


_any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_keys = st.sampled_from(
    [
        "actions",
        "channels",
        "reward",
        "exploration",
        "holdout",
        "guardrails",
        "automation",
        "attribution",
        "goals",
        "campaign",
        "schedule",
        "id",
        "events",
        "percent",
        "baseline",
        "frequency_caps",
        "channel",
        "max",
        "per_hours",
        "starts_at",
        "ends_at",
        "quiet_hours",
    ]
) | st.text(alphabet=string.ascii_lowercase, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.dictionaries(_keys, _any_json, max_size=5), base=valid_settings())
def test_arbitrary_input_only_ever_raises_invalid_input(raw, base):
    """Whatever the JSON, validation returns a document or raises InvalidInput, nothing else."""
    for candidate in (raw, {**base, **raw}):
        try:
            validate_settings(candidate)
        except InvalidInput as exc:
            assert exc.errors and exc.message
