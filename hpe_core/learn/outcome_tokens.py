"""Outcome tokens: what lets a web page report an outcome of a decision it was given.

A publishable key sits in web pages, so anyone can read it. With it, outcomes could be
sent for any decision, of any type and value, and poison the model and the revenue
figures. So every decision answer carries an ``outcome_token``: the decision id and the
time it was issued, signed with the app's secret key. A publishable key reports an
outcome only with the token of its decision, only for the event types the configuration
lets clients report, without a value (see :func:`hpe_core.learn.outcomes.record`).

A token is ``<base64url(16-byte decision id + 4-byte issue time)>.<base64url(16-byte
HMAC-SHA256)>``, 50 characters: cheap to make on the decision hot path. It is signed with
the current key and verified against every key of the ring (:mod:`hpe_core.secret_keys`),
so a key rotation does not break the pages already served. How long it stays valid is
the configuration's ``publishable_keys.token_seconds``, applied when it is used.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import struct
import uuid

from hpe_core.errors import Forbidden
from hpe_core.secret_keys import SecretKeys

_LABEL = b"hpe-outcome-token:"
_MAC_BYTES = 16
_PAYLOAD = struct.Struct(">16sI")  # decision id, issued at (unix seconds)


class OutcomeTokens:
    """Issues and checks outcome tokens with the app's key ring."""

    def __init__(self, keys: SecretKeys | str):
        self._keys = SecretKeys.of(keys).derive(_LABEL)

    def issue(self, decision_id: uuid.UUID, now: dt.datetime) -> str:
        """The token of one decision, issued at ``now``."""
        payload = _PAYLOAD.pack(decision_id.bytes, int(now.timestamp()))
        return f"{_b64(payload)}.{_b64(self._mac(payload, self._keys[0]))}"

    def verify(self, token: str, *, now: dt.datetime, max_age: float) -> uuid.UUID:
        """The decision a token was issued for.

        :param max_age: seconds a token stays valid after it was issued
        :raises Forbidden: not a token HPE issued, altered, or expired
        """
        payload = _payload_of(token, self._keys, self._mac)
        decision_bytes, issued_at = _PAYLOAD.unpack(payload)
        age = now.timestamp() - issued_at
        if age > max_age:
            raise Forbidden(
                "This outcome_token has expired: outcomes of a decision can be reported "
                f"with its token for {int(max_age)} seconds (publishable_keys.token_seconds).",
                {"outcome_token": ["Expired."]},
            )
        return uuid.UUID(bytes=decision_bytes)

    @staticmethod
    def _mac(payload: bytes, key: bytes) -> bytes:
        return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _payload_of(token: object, keys, mac) -> bytes:
    invalid = Forbidden(
        "Invalid outcome_token: send the outcome_token of the decision, as HPE gave it.",
        {"outcome_token": ["Not a token HPE issued for a decision."]},
    )
    if not isinstance(token, str) or len(token) > 200:
        raise invalid
    body, _, signature = token.partition(".")
    try:
        payload = _unb64(body)
        given = _unb64(signature)
    except (ValueError, binascii.Error):
        raise invalid from None
    if len(payload) != _PAYLOAD.size or len(given) != _MAC_BYTES:
        raise invalid
    # Every key is compared, in constant time: nothing tells which one matched.
    if not any([hmac.compare_digest(given, mac(payload, key)) for key in keys]):
        raise invalid
    return payload


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
