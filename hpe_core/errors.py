"""Domain errors. The web layer maps each to one HTTP status (web/errors.py)."""

from __future__ import annotations


class HpeError(Exception):
    """Base of every error the domain raises on purpose.

    :param message: a sentence a user can act on
    :param errors: per-field messages, ``{field: [message, ...]}`` (may nest)
    """

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class NotFound(HpeError):
    """The object does not exist, or belongs to another workspace."""


class Conflict(HpeError):
    """The request is valid but the object's state forbids it (e.g. a PAUSED config)."""


class InvalidInput(HpeError):
    """The request is well-formed JSON but its content is invalid."""


class TooLarge(HpeError):
    """The request is bigger than this endpoint accepts (a body, an import's lines): split
    it. Nothing was stored."""


class Unauthorized(HpeError):
    """The API key is missing, unknown or revoked."""


class Forbidden(HpeError):
    """The caller is known, but its key may not do this (e.g. a publishable key asking for
    delivery)."""


class RateLimited(HpeError):
    """Too many attempts: try again after ``retry_after`` seconds (e.g. failed sign-ins)."""

    def __init__(self, message: str, errors: dict | None = None, retry_after: float = 1.0):
        super().__init__(message, errors)
        self.retry_after = retry_after


class TransientError(HpeError):
    """A dependency failed in a way that retrying later may fix."""

    def __init__(self, message: str, errors: dict | None = None, retry_after: float | None = None):
        super().__init__(message, errors)
        self.retry_after = retry_after


class TransientDeliveryError(TransientError):
    """A channel could not deliver now, but may later (SMTP down, HTTP 429/5xx, timeout).

    Raised by a connector's ``send()``; the delivery job retries it, after
    ``retry_after`` seconds when the connector knows (e.g. a ``Retry-After`` header).
    """


class PermanentDeliveryError(HpeError):
    """A channel refused a delivery for good (invalid address, 5xx SMTP reply, bad
    template): retrying cannot help. The delivery is marked failed and logged."""
