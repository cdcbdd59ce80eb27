"""The common shape of a decision request, checked without marshmallow's machinery.

A decision request is usually ``{user_id, channel, context}``, maybe with
``candidates``. Loading it through marshmallow costs more CPU than the decision itself
(a field object per key, a validator call per rule), so :func:`simple_body` checks that
shape by hand against the same rules as
:class:`~web.api.loop_schemas.DecisionRequestSchema` and returns what the schema would
load. Anything else (a ``deliver`` block, a wrong type, a missing or unknown field)
returns None, and the schema itself accepts it or names the error.
"""

from __future__ import annotations

from hpe_core.errors import InvalidInput
from hpe_core.store.limits import MAX_USER_ID_LENGTH
from hpe_core.tenancy.settings import check_json_document, text_problem

_SIMPLE_KEYS = frozenset({"user_id", "channel", "context", "candidates"})
# The schema's limits (web/api/loop_schemas.py), repeated: tests hold them equal.
MAX_CHANNEL = 64
MAX_CANDIDATE = 128
MAX_CANDIDATES = 1000


def simple_body(item: object) -> dict | None:
    """The loaded request when ``item`` has the common shape and passes every rule of the
    request schema, else None (let the schema decide, and name the error)."""
    if type(item) is not dict or not item.keys() <= _SIMPLE_KEYS:
        return None
    user_id, channel = item.get("user_id"), item.get("channel")
    if type(user_id) is not str or not 0 < len(user_id) <= MAX_USER_ID_LENGTH:
        return None
    if type(channel) is not str or not 0 < len(channel) <= MAX_CHANNEL:
        return None
    if text_problem(user_id):
        return None
    context = item.get("context", {})
    if type(context) is not dict:
        return None
    if context:
        try:
            check_json_document(context, "context")
        except InvalidInput:
            return None
    loaded = {"user_id": user_id, "channel": channel, "context": context}
    if "candidates" in item:
        candidates = item["candidates"]
        if type(candidates) is not list or not 0 < len(candidates) <= MAX_CANDIDATES:
            return None
        for candidate in candidates:
            if type(candidate) is not str or not 0 < len(candidate) <= MAX_CANDIDATE:
                return None
        loaded["candidates"] = candidates
    return loaded


def fast_loading(schema):
    """``schema`` (an instance of the single decision's request schema), loading the
    common shape through :func:`simple_body` and anything else as before.

    The instance's ``load`` is replaced, not the class's: the OpenAPI document still
    describes the schema class, and nothing else that loads it changes.
    """
    load = schema.load

    def load_fast(data, *, many=None, partial=None, unknown=None):
        if many is None and partial is None and unknown is None:
            loaded = simple_body(data)
            if loaded is not None:
                return loaded
        return load(data, many=many, partial=partial, unknown=unknown)

    schema.load = load_fast
    return schema
