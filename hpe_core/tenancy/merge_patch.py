"""JSON Merge Patch (RFC 7386): how PATCH changes a configuration's settings."""

from __future__ import annotations

import copy


def apply_merge_patch(target: object, patch: object) -> object:
    """Return ``target`` with ``patch`` applied; neither argument is modified.

    Objects merge key by key, ``null`` removes a key, anything else (lists included)
    replaces the target value whole.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def diff(before: object, after: object, path: str | None = None) -> dict[str, list]:
    """Flatten the differences between two JSON documents into ``{dotted.path: [old, new]}``.

    Objects are compared key by key; any other change (lists included) is reported whole.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        changes: dict[str, list] = {}
        for key in sorted(set(before) | set(after), key=str):
            # None marks the root: an empty key ("") is a key like any other, "a." + "".
            sub = str(key) if path is None else f"{path}.{key}"
            changes.update(diff(before.get(key), after.get(key), sub))
        return changes
    return {} if before == after else {path or "": [before, after]}


def make_merge_patch(before: object, after: object) -> object:
    """The merge patch that turns ``before`` into ``after``.

    Keys only in ``before`` become ``null`` (removed), objects are compared key by key,
    anything else that differs is given whole. A merge patch cannot set a value to null:
    a key that ``after`` holds as null is removed instead, which for settings is the same
    thing (validation fills a removed optional key back in with its null default).
    """
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return copy.deepcopy(after)
    patch: dict = {}
    for key in before:
        if key not in after:
            patch[key] = None
    for key, value in after.items():
        if key not in before:
            patch[key] = copy.deepcopy(value)
        elif before[key] != value:
            patch[key] = make_merge_patch(before[key], value)
    return patch
