"""JSON Merge Patch (RFC 7386) and the flattened diff written to the activity log."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpe_core.tenancy.merge_patch import apply_merge_patch, diff

# RFC 7386, Appendix A: (original, patch, result).
RFC_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("original, patch, expected", RFC_EXAMPLES)
def test_rfc_7386_appendix_a(original, patch, expected):
    """Each example of RFC 7386's appendix gives the RFC's result."""
    assert apply_merge_patch(original, patch) == expected


def test_rfc_7386_section_3_example():
    """The worked example of RFC 7386 section 3 (title, author, tags, content)."""
    original = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert apply_merge_patch(original, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_diff_flattens_nested_changes_to_dotted_paths():
    """Changed leaves are reported as {dotted.path: [old, new]}; lists whole."""
    before = {"name": "a", "settings": {"holdout": {"percent": 10.0}, "channels": ["email"]}}
    after = {"name": "a", "settings": {"holdout": {"percent": 20.0}, "channels": ["web"]}}
    assert diff(before, after) == {
        "settings.holdout.percent": [10.0, 20.0],
        "settings.channels": [["email"], ["web"]],
    }


def test_diff_reports_added_and_removed_keys_against_none():
    """A key only on one side is reported with None on the other."""
    assert diff({"a": 1}, {"b": 2}) == {"a": [1, None], "b": [None, 2]}
    assert diff({"a": {"x": 1}}, {"a": 5}) == {"a": [{"x": 1}, 5]}


def test_diff_keeps_empty_keys_in_the_path():
    """An empty key is a path segment too: {"": {"0": ...}} changes at ".0", not "0"."""
    assert diff({"": {"0": 1}}, {"": {"0": 2}}) == {".0": [1, 2]}
    assert diff({"0": 1, "": {"0": 1}}, {"0": 2, "": {"0": 1}}) == {"0": [1, 2]}


# --- properties -------------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=10,
)
_null_free = st.recursive(
    st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=10,
)
_objects = st.dictionaries(st.text(max_size=3), _json, max_size=4)


@settings(max_examples=75, deadline=None)
@given(target=_json, patch=_json)
def test_applying_never_modifies_its_arguments(target, patch):
    """The target and the patch are left exactly as they were."""
    target_copy, patch_copy = copy.deepcopy(target), copy.deepcopy(patch)
    apply_merge_patch(target, patch)
    assert target == target_copy and patch == patch_copy


@settings(max_examples=75, deadline=None)
@given(target=_json, patch=_json)
def test_applying_a_patch_twice_is_applying_it_once(target, patch):
    """Merge patches are idempotent: a retried PATCH changes nothing more."""
    once = apply_merge_patch(target, patch)
    assert apply_merge_patch(once, patch) == once


@settings(max_examples=75, deadline=None)
@given(target=_json, document=_null_free)
def test_a_null_free_non_object_patch_replaces_the_target(target, document):
    """A patch that is not an object is the result, whatever the target."""
    if not isinstance(document, dict):
        assert apply_merge_patch(target, document) == document
    else:
        assert apply_merge_patch({}, document) == document


@settings(max_examples=75, deadline=None)
@given(target=_objects, patch=st.dictionaries(st.text(max_size=3), _json, max_size=4))
def test_keys_not_in_the_patch_are_untouched(target, patch):
    """Only the keys a patch names can change."""
    result = apply_merge_patch(target, patch)
    for key, value in target.items():
        if key not in patch:
            assert result[key] == value
    for key, value in patch.items():
        if value is None:
            assert key not in result


@settings(max_examples=75, deadline=None)
@given(
    before=st.dictionaries(st.text(max_size=3), _null_free, max_size=4),
    after=st.dictionaries(st.text(max_size=3), _null_free, max_size=4),
)
def test_diff_is_empty_exactly_when_documents_are_equal(before, after):
    """Between null-free documents, diff is empty if and only if they are equal."""
    assert (diff(before, after) == {}) == (before == after)


@settings(max_examples=75, deadline=None)
@given(
    before=_objects, patch=st.dictionaries(st.text(alphabet="ab", max_size=2), _json, max_size=3)
)
def test_diff_only_names_paths_the_patch_touched(before, patch):
    """Every path the diff reports starts with a key the patch names."""
    changes = diff(before, apply_merge_patch(before, patch))
    for path in changes:
        assert any(path == key or path.startswith(f"{key}.") for key in patch)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


@given(
    before=st.dictionaries(st.text(max_size=3), _JSON, max_size=4),
    after=st.dictionaries(st.text(max_size=3), _JSON, max_size=4),
)
def test_make_merge_patch_turns_before_into_after(before, after):
    """Applying the made patch to before gives after (nulls in objects read as removed)."""
    from hpe_core.tenancy.merge_patch import make_merge_patch

    patch = make_merge_patch(before, after)
    assert _without_nulls(apply_merge_patch(before, patch)) == _without_nulls(after)
