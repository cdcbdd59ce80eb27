"""What a settings change changes, in terms a person reads: "offer X removed", not a list.

A merge patch replaces lists whole, so a raw diff of two settings documents shows the
entire ``actions`` list twice when one offer went. :func:`changes` instead matches list
items by their ``id`` (actions), or by value (channels, caps, exclusions, rules), and
reports each addition, removal and field change on its own. The dashboard previews a
recommendation's patch with it, and the activity trail shows each settings update so.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from hpe_core.tenancy.merge_patch import apply_merge_patch


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclasses.dataclass(frozen=True)
class Change:
    """One change at ``path`` (``actions[shoes].cost``, ``channels``, ``holdout.percent``)."""

    path: str
    kind: ChangeKind
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        if self.kind is ChangeKind.ADDED:
            return f"{self.path}: added {_show(self.after)}"
        if self.kind is ChangeKind.REMOVED:
            return f"{self.path}: removed {_show(self.before)}"
        return f"{self.path}: {_show(self.before)} → {_show(self.after)}"


def changes(before: Any, after: Any, path: str = "") -> list[Change]:
    """The changes from ``before`` to ``after`` (two settings documents, or parts of them)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        found: list[Change] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before:
                found.append(Change(sub, ChangeKind.ADDED, after=after[key]))
            elif key not in after:
                found.append(Change(sub, ChangeKind.REMOVED, before=before[key]))
            else:
                found += changes(before[key], after[key], sub)
        return found
    if isinstance(before, list) and isinstance(after, list):
        return _list_changes(before, after, path)
    return [] if before == after else [Change(path, ChangeKind.CHANGED, before, after)]


def patch_changes(settings: Mapping, patch: Mapping) -> list[Change]:
    """What applying a merge ``patch`` to ``settings`` would change."""
    return changes(settings, apply_merge_patch(settings, patch))


def _list_changes(before: list, after: list, path: str) -> list[Change]:
    if _keyed(before) and _keyed(after):
        return _changes_by_id(before, after, path)
    return _changes_by_value(before, after, path)


def _changes_by_id(before: list, after: list, path: str) -> list[Change]:
    """Items with an ``id`` (offers): added, removed, or changed field by field."""
    old = {item["id"]: item for item in before}
    new = {item["id"]: item for item in after}
    found = [Change(path, ChangeKind.REMOVED, before=old[i]) for i in old if i not in new]
    found += [Change(path, ChangeKind.ADDED, after=new[i]) for i in new if i not in old]
    for item_id in (i for i in new if i in old):
        found += changes(old[item_id], new[item_id], f"{path}[{item_id}]")
    if not found and list(old) != list(new):
        found.append(Change(path, ChangeKind.CHANGED, "order", "new order"))
    return found


def _changes_by_value(before: list, after: list, path: str) -> list[Change]:
    """Plain items (channels, caps, exclusions): each one added or removed."""
    old_keys, new_keys = {_canonical(i) for i in before}, {_canonical(i) for i in after}
    found = [
        Change(path, ChangeKind.REMOVED, before=i) for i in before if _canonical(i) not in new_keys
    ]
    found += [
        Change(path, ChangeKind.ADDED, after=i) for i in after if _canonical(i) not in old_keys
    ]
    return found


def _keyed(items: list) -> bool:
    return all(isinstance(item, Mapping) and isinstance(item.get("id"), str) for item in items)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _show(value: Any) -> str:
    """A value as it reads in one line: strings bare, an item with an id by its id (an
    offer is "shoes", not its whole document), the rest as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return value["id"]
    text = json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)
    return text if len(text) <= 160 else text[:157] + "…"
