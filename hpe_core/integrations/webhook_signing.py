"""Standard Webhooks signatures (https://www.standardwebhooks.com) for outgoing events.

Every message is posted with three headers::

    webhook-id: msg_<32 hex>                      the same on every retry: dedupe on it
    webhook-timestamp: <unix seconds>             when this attempt was signed
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>

where ``key`` is the base64-decoded part of the endpoint's ``whsec_...`` secret. Any
Standard Webhooks library verifies them (``standardwebhooks`` on PyPI, ``svix``'s, ...).

Secrets: like inbound webhook secrets (:mod:`hpe_core.deliver.webhooks`), only a random
nonce is stored and the secret is derived from it and ``SECRET_KEY``, so a database dump
alone does not reveal it; changing ``SECRET_KEY`` changes every endpoint's secret (rotate
them after such a change).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as secrets_module
import uuid

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def new_nonce() -> str:
    """A random nonce to store for a new secret."""
    return secrets_module.token_urlsafe(32)


def secret_for(secret_key: str, nonce: str) -> str:
    """The endpoint's secret: ``whsec_`` + base64 of 32 bytes derived from the nonce."""
    key = hashlib.sha256(b"hpe-outgoing-webhook-secret:" + secret_key.encode()).digest()
    raw = hmac.new(key, nonce.encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def message_id(message_uuid: uuid.UUID) -> str:
    """The ``webhook-id`` of a stored message."""
    return f"msg_{message_uuid.hex}"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) of one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
    }
