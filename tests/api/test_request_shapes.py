"""The decision request's common shape, checked by hand (web.api.request_shapes), loads
exactly what the marshmallow schema loads, and leaves everything else to the schema."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, validate

from hpe_core.store.limits import MAX_USER_ID_LENGTH
from web.api import request_shapes
from web.api.delivery import DecisionDeliverRequestSchema
from web.api.loop_schemas import DecisionRequestSchema

SCHEMA = DecisionDeliverRequestSchema()
FAST = request_shapes.fast_loading(DecisionDeliverRequestSchema())


def _schema_load(body):
    try:
        return SCHEMA.load(body)
    except ValidationError:
        return "invalid"


def test_the_hand_checks_use_the_schemas_limits(sqlite_app):
    fields = DecisionRequestSchema().fields

    def length(field) -> validate.Length:
        return next(v for v in field.validators if isinstance(v, validate.Length))

    assert (length(fields["user_id"]).min, length(fields["user_id"]).max) == (
        1,
        MAX_USER_ID_LENGTH,
    )
    longest = {"user_id": "u", "channel": "c" * request_shapes.MAX_CHANNEL}
    assert _schema_load(longest) != "invalid"
    assert _schema_load({**longest, "channel": longest["channel"] + "c"}) == "invalid"
    assert length(fields["candidates"]).max == request_shapes.MAX_CANDIDATES
    assert length(fields["candidates"].inner).max == request_shapes.MAX_CANDIDATE


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "u", "channel": "email"},
        {"user_id": "u", "channel": "email", "context": {"a": 1, "b": {"c": [1, "x"]}}},
        {"user_id": "u", "channel": "email", "candidates": ["a", "b"]},
        {"user_id": "", "channel": "email"},
        {"user_id": "x" * (MAX_USER_ID_LENGTH + 1), "channel": "email"},
        {"user_id": "u\x00", "channel": "email"},
        {"user_id": "u", "channel": "c" * 65},
        {"user_id": "u", "channel": 3},
        {"user_id": 3, "channel": "email"},
        {"channel": "email"},
        {"user_id": "u", "channel": "email", "context": None},
        {"user_id": "u", "channel": "email", "context": []},
        {"user_id": "u", "channel": "email", "context": {"x": float("nan")}},
        {"user_id": "u", "channel": "email", "context": {"x": "\x00"}},
        {"user_id": "u", "channel": "email", "candidates": []},
        {"user_id": "u", "channel": "email", "candidates": None},
        {"user_id": "u", "channel": "email", "candidates": [""]},
        {"user_id": "u", "channel": "email", "candidates": ["a" * 129]},
        {"user_id": "u", "channel": "email", "candidates": ["a"] * 1001},
        {"user_id": "u", "channel": "email", "unknown": 1},
        {"user_id": "u", "channel": "email", "deliver": {"to": {"email": "a@b.example"}}},
        ["not", "an", "object"],
    ],
)
def test_the_fast_load_answers_as_the_schema_does(sqlite_app, body):
    with sqlite_app.app_context():
        expected = _schema_load(body)
        try:
            loaded = FAST.load(body)
        except ValidationError:
            loaded = "invalid"
    assert loaded == expected


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(), st.text(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.dictionaries(
        st.sampled_from(["user_id", "channel", "context", "candidates", "other"]),
        _values,
        max_size=5,
    )
)
def test_any_body_loads_the_same_either_way(body):
    """Whatever the body, the fast path returns the schema's result or leaves it to the
    schema (never accepts what the schema refuses, never loads something else)."""
    fast = request_shapes.simple_body(body)
    if fast is not None:
        assert fast == _schema_load(body)
