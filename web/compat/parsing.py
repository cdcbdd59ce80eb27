"""Reading Personalizer's JSON bodies: shapes and JSON types checked, one message a field.

Personalizer's service read JSON as ASP.NET does: property names in any case
(``eventId`` or ``EventId``), unknown properties ignored. These helpers do the same, and
refuse what HPE cannot store on every database (NaN, NUL characters, unpaired
surrogates) with a 400 rather than a 500.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping

from flask import request

from hpe_core.compat.errors import invalid
from hpe_core.errors import InvalidInput
from hpe_core.tenancy.settings import check_json_document


def json_body(code: str) -> dict:
    """The request's JSON object.

    :param code: Personalizer's error code for this route's invalid requests
    :raises InvalidInput: no body, unreadable JSON, or not an object
    """
    raw = request.get_data()
    if not raw.strip():
        raise invalid(code, "The request body must be a JSON object.")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise invalid(code, f"Malformed JSON in the request body: {exc}") from exc
    if not isinstance(data, dict):
        raise invalid(code, "The request body must be a JSON object.")
    try:
        check_json_document(data, "body")
    except InvalidInput as exc:
        raise invalid(code, exc.message.replace("Invalid body: ", "Invalid request: ")) from exc
    return data


def field(data: Mapping, name: str) -> object:
    """``data[name]``, the name matched in any case (None when absent)."""
    if name in data:
        return data[name]
    lowered = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def string(data: Mapping, name: str, code: str, *, required: bool = False) -> str | None:
    value = field(data, name)
    if value is None:
        if required:
            raise invalid(code, f"{name} is required.", name)
        return None
    if not isinstance(value, str):
        raise invalid(code, f"{name} must be a string.", name)
    return value


def number(data: Mapping, name: str, code: str, *, required: bool = False) -> float | None:
    value = field(data, name)
    if value is None:
        if required:
            raise invalid(code, f"{name} is required.", name)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(code, f"{name} must be a number.", name)
    return float(value)


def integer(data: Mapping, name: str, code: str, *, default: int) -> int:
    value = field(data, name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise invalid(code, f"{name} must be a whole number.", name)
    return int(value)


def boolean(data: Mapping, name: str, code: str) -> bool | None:
    value = field(data, name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(code, f"{name} must be true or false.", name)
    return value


def items(data: Mapping, name: str, code: str, *, required: bool = False) -> list:
    value = field(data, name)
    if value is None:
        if required:
            raise invalid(code, f"{name} is required.", name)
        return []
    if not isinstance(value, list):
        raise invalid(code, f"{name} must be a list.", name)
    return value


def objects(data: Mapping, name: str, code: str, *, required: bool = False) -> list[dict]:
    found = items(data, name, code, required=required)
    if not all(isinstance(item, dict) for item in found):
        raise invalid(code, f"{name} must be a list of objects.", name)
    return found


def strings(data: Mapping, name: str, code: str) -> list[str]:
    found = items(data, name, code)
    if not all(isinstance(item, str) for item in found):
        raise invalid(code, f"{name} must be a list of strings.", name)
    return found


def timestamp(value: object, name: str, code: str) -> dt.datetime:
    """An ISO 8601 time (without an offset: UTC), as Personalizer's clients send them."""
    if not isinstance(value, str):
        raise invalid(code, f"{name} is required: an ISO 8601 time.", name)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise invalid(code, f"{name} is not an ISO 8601 time: {value!r}.", name) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise invalid(code, f"{name} is out of range.", name) from None


def flag(name: str, code: str) -> bool:
    """A true/false query parameter (absent: false)."""
    value = request.args.get(name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise invalid(code, f"{name} must be true or false.", name)
    return value.lower() == "true"


def query_integer(name: str, code: str, *, default: int | None, minimum: int) -> int | None:
    value = request.args.get(name)
    if value is None:
        return default
    try:
        number_ = int(value)
    except ValueError:
        raise invalid(code, f"{name} must be a whole number.", name) from None
    if number_ < minimum:
        raise invalid(code, f"{name} must be at least {minimum}.", name)
    return number_
