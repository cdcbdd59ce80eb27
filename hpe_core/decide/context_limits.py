"""How big a decision's context may be (issue 14, defect 5).

A context is stored with every decision (the big table) and featurized on the hot path, so
it is bounded: its JSON size, its number of keys at every level, and its depth. The model
reads at most 256 features anyway (:mod:`hpe_core.decide.features`); these limits leave
room for nested profiles and tag lists while refusing what only abuse sends (a 22 MB
context once reached the decision log through a publishable key).
"""

from __future__ import annotations

import json

from hpe_core.errors import InvalidInput

#: The largest context, in bytes of compact JSON.
MAX_CONTEXT_BYTES = 16 * 1024
#: The most keys a context holds, counting those of nested objects.
MAX_CONTEXT_KEYS = 512
#: The deepest nesting of objects and lists (``{"profile": {"age": 30}}`` is 2).
MAX_CONTEXT_DEPTH = 8


def check_context(context: object, field: str = "context") -> None:
    """Refuse a context over :data:`MAX_CONTEXT_BYTES`, :data:`MAX_CONTEXT_KEYS` or
    :data:`MAX_CONTEXT_DEPTH`.

    :raises InvalidInput: naming the limit, under ``field``
    """
    keys, depth = _shape(context)
    problem = None
    if depth > MAX_CONTEXT_DEPTH:
        problem = f"Nested {depth} levels deep: at most {MAX_CONTEXT_DEPTH}."
    elif keys > MAX_CONTEXT_KEYS:
        problem = f"{keys} keys: at most {MAX_CONTEXT_KEYS} (nested ones count too)."
    else:
        size = len(json.dumps(context, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_CONTEXT_BYTES:
            problem = f"{size} bytes of JSON: at most {MAX_CONTEXT_BYTES}."
    if problem:
        raise InvalidInput(f"The {field} is too large: {problem}", {field: [problem]})


def _shape(value: object) -> tuple[int, int]:
    """``(keys, depth)`` of a JSON value, without recursion (a deep value cannot overflow)."""
    keys, deepest = 0, 0
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            keys += len(node)
            deepest = max(deepest, depth + 1)
            stack.extend((item, depth + 1) for item in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, depth + 1)
            stack.extend((item, depth + 1) for item in node)
        if keys > MAX_CONTEXT_KEYS or deepest > MAX_CONTEXT_DEPTH:
            break  # already over: no need to walk the rest of a huge value
    return keys, deepest
