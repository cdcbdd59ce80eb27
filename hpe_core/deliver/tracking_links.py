"""Signed tracking links: a click, the open pixel, an unsubscribe.

Signed with the app's secret key, so the web layer can verify what a connector built
(connectors get a :class:`TrackingLinks` through their ``ChannelRuntime``). After a key
rotation the new key signs and the old ones (``SECRET_KEY_FALLBACKS``) still verify, so
the links in messages already sent keep working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

from hpe_core.errors import InvalidInput
from hpe_core.secret_keys import SecretKeys


class TrackingLinks:
    """Signed tracking URLs: ``/t/c/<token>`` (click), ``/t/o/<token>.gif`` (open pixel),
    ``/t/u/<token>`` (unsubscribe).

    A token holds the decision id (and, for a click, the *name* of one of the action's
    configured links, never a URL) and an HMAC-SHA256 of it under the app's secret key,
    with the kind as domain separator. Whoever forges or edits one gets a 404; the
    redirect target is read from the configuration at click time, so a click can only
    lead to a URL the action itself configures.
    """

    PATHS = {"click": "/t/c/{}", "open": "/t/o/{}.gif", "unsubscribe": "/t/u/{}"}

    def __init__(self, secret_key: SecretKeys | str, base_url: str | None):
        if not secret_key:
            raise ValueError("A secret key is required to sign tracking links.")
        # One subkey per key of the ring: the first signs, all verify.
        self._keys = SecretKeys.of(secret_key).derive(b"hpe-tracking:")
        self.base_url = (base_url or "").rstrip("/")

    def token(self, kind: str, decision_id: uuid.UUID, link: str | None = None) -> str:
        payload = {"d": str(decision_id)}
        if link is not None:
            payload["l"] = link
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(kind, body)}"

    def url(self, kind: str, decision_id: uuid.UUID, link: str | None = None) -> str:
        return self.base_url + self.PATHS[kind].format(self.token(kind, decision_id, link))

    def verify(self, kind: str, token: str) -> tuple[uuid.UUID, str | None]:
        """The decision id and link name a token carries.

        :raises InvalidInput: if the token is malformed or its signature is wrong
        """
        body, _, signature = (token or "").partition(".")
        if not body or not signature.isascii() or not any(
            # every key is tried: no early exit tells which one (or how much) matched
            [hmac.compare_digest(signature, self._sign(kind, body, key)) for key in self._keys]
        ):
            raise InvalidInput("Invalid tracking link.")
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            return uuid.UUID(payload["d"]), payload.get("l")
        except (ValueError, KeyError, TypeError) as exc:  # pragma: no cover - signed by us
            raise InvalidInput("Invalid tracking link.") from exc

    def _sign(self, kind: str, body: str, key: bytes | None = None) -> str:
        mac = hmac.new(key or self._keys[0], f"{kind}:{body}".encode(), hashlib.sha256).digest()
        return _b64(mac[:20])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
