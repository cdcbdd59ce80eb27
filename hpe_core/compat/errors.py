"""Errors of the Personalizer-compatible routes.

The services raise HPE's domain errors (:mod:`hpe_core.errors`); where Personalizer has a
more specific error code than the route's default (``InvalidLogRetentionDays`` rather
than ``InvalidServiceConfiguration``), :func:`coded` attaches it. ``web/compat`` turns
both into Personalizer's error shape.
"""

from __future__ import annotations

from typing import TypeVar

from hpe_core.errors import HpeError, InvalidInput

E = TypeVar("E", bound=HpeError)


class NotSupported(HpeError):
    """A Personalizer feature HPE does not provide (answered 501 Not Implemented)."""


def coded(error: E, code: str) -> E:
    """``error`` with Personalizer's error ``code`` (e.g. ``InvalidRankRequest``)."""
    error.personalizer_code = code  # type: ignore[attr-defined]
    return error


def code_of(error: HpeError) -> str | None:
    """The Personalizer code :func:`coded` attached, or None."""
    return getattr(error, "personalizer_code", None)


def invalid(code: str, message: str, target: str | None = None) -> InvalidInput:
    """A 400 with Personalizer's ``code``; ``target`` names the offending field."""
    return coded(InvalidInput(message, {target: [message]} if target else None), code)


def flat_messages(errors: object, path: str = "") -> list[tuple[str, str]]:
    """``(dotted path, message)`` for every message of nested per-field errors."""
    if isinstance(errors, dict):
        found = []
        for key, value in errors.items():
            found += flat_messages(value, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(errors, list | tuple):
        found = []
        for item in errors:
            if isinstance(item, dict | list | tuple):
                found += flat_messages(item, path)
            else:
                found.append((path, str(item)))
        return found
    return [(path, str(errors))]
