"""Personalizer's features and action ids in HPE's terms.

Personalizer takes features as a *list* of JSON objects (``[{"user": {"tier": "gold"}},
{"device": "mobile"}]``), for the context, for each action and for each slot. HPE takes a
context as one object (nested objects are fine: :mod:`hpe_core.decide.features` flattens
them) and an action's features as one flat object of scalars and string lists
(``settings.actions[].features``). So:

- the context: the objects of the list merged into one, a later key replacing an earlier
  one (:func:`context_of`);
- an action's or a slot's features: flattened, nested keys joined with ``.``
  (``{"brand": {"name": "x"}}`` → ``{"brand.name": "x"}``), lists of strings kept, other
  lists numbered (``{"sizes": [38, 40]}`` → ``{"sizes.0": 38, "sizes.1": 40}``) and nulls
  left out (:func:`flat_features`).

Action ids: Personalizer takes any string; HPE's follow ``settings.actions[].id``'s rule
(1-128 letters, digits, ``_.:-``). An id that already follows it is used as it is. Any
other (``"Cafe Latte"``) is catalogued as ``pz-`` and 32 hex digits of its SHA-256, with
the original in the action's ``content.personalizer_id``; answers always show the
original (:func:`hpe_action_id`, :func:`personalizer_id`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from hpe_core.compat.errors import invalid
from hpe_core.tenancy.settings import MAX_DEPTH, is_identifier
from hpe_core.tenancy.settings_types import Action

#: Where a catalogued action keeps the Personalizer id it was given.
PERSONALIZER_ID = "personalizer_id"
_HASHED_PREFIX = "pz-"


def hpe_action_id(personalizer_id: str) -> str:
    """The catalog id of a Personalizer action id (itself when it is a valid one)."""
    if is_identifier(personalizer_id):
        return personalizer_id
    return _HASHED_PREFIX + hashlib.sha256(personalizer_id.encode()).hexdigest()[:32]


def personalizer_id(action: Action) -> str:
    """The id a Personalizer caller knows an action by."""
    original = action.content.get(PERSONALIZER_ID)
    return original if isinstance(original, str) else action.id


def context_of(context_features: object, *, code: str = "InvalidRankRequest") -> dict:
    """One context object from Personalizer's ``contextFeatures`` (None: no context).

    :raises InvalidInput: not a list of objects
    """
    if context_features is None:
        return {}
    if not isinstance(context_features, list) or not all(
        isinstance(item, dict) for item in context_features
    ):
        raise invalid(
            code, "contextFeatures must be a list of JSON objects.", target="contextFeatures"
        )
    context: dict = {}
    for item in context_features:
        context.update(item)
    return context


def flat_features(features: object, *, target: str, code: str = "InvalidRankRequest") -> dict:
    """One flat feature object from a Personalizer feature list (None: no features).

    :param target: the field named in errors, e.g. ``actions[2].features``
    :raises InvalidInput: not a list of objects, or nested deeper than HPE keeps
    """
    if features is None:
        return {}
    if not isinstance(features, list) or not all(isinstance(item, dict) for item in features):
        raise invalid(code, f"{target} must be a list of JSON objects.", target=target)
    flat: dict = {}
    for item in features:
        _flatten(item, "", flat, 0, target, code)
    return flat


def _flatten(value: object, prefix: str, into: dict, depth: int, target: str, code: str) -> None:
    if depth > MAX_DEPTH:
        raise invalid(code, f"{target} is nested deeper than {MAX_DEPTH} levels.", target=target)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), into, depth + 1, target, code)
    elif isinstance(value, list):
        if value and all(isinstance(item, str) for item in value):
            into[prefix] = list(value)
        else:
            for index, item in enumerate(value):
                _flatten(item, f"{prefix}.{index}", into, depth + 1, target, code)
    elif value is not None:
        into[prefix] = value


def action_document(personalizer_action_id: str, features: Mapping) -> dict:
    """The catalog entry a Rank call adds for an action id the configuration lacks."""
    document: dict = {"id": hpe_action_id(personalizer_action_id), "features": dict(features)}
    if document["id"] != personalizer_action_id:
        document["content"] = {PERSONALIZER_ID: personalizer_action_id}
    return document
