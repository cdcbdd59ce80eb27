"""The app's secret key: where it comes from, and the key ring everything signs with.

``SECRET_KEY`` signs tracking links, outcome tokens and the dashboard's session cookie,
and derives every webhook signing secret. Whoever knows it can forge all of those, so HPE
never runs on a key that is known:

- **Embedded default** (SQLite, no Redis): without ``HPE_SECRET_KEY``, the first start
  generates a strong key and keeps it in the instance folder (``instance/secret_key``,
  mode 0600); every later start, and every process on that folder, reads it back.
- **Production** (PostgreSQL or Redis configured): several machines must share one key,
  so ``HPE_SECRET_KEY`` is required; without it a process refuses to start.
- A key shorter than :data:`MIN_LENGTH` characters, or one published in HPE's own code
  or docs (:data:`PUBLIC_KEYS`), is refused everywhere.

**Rotation** (:class:`SecretKeys`): ``SECRET_KEY`` signs, and ``SECRET_KEY_FALLBACKS``
(old keys, newest first) still verify, so links in messages already sent, outcome tokens
and sessions keep working while the old key is phased out. Webhook secrets are derived
from a nonce that names the key it was made under (:meth:`SecretKeys.new_nonce`), so a
secret stays the same until that key is dropped from the fallbacks.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import stat
from collections.abc import Iterable, Mapping, MutableMapping
from functools import cached_property
from pathlib import Path

log = logging.getLogger(__name__)

#: The shortest key accepted. ``secrets.token_urlsafe(48)`` (what HPE generates, and
#: what the docs suggest) is 64 characters.
MIN_LENGTH = 32
#: Keys that appeared in HPE's code or docs: anyone can read them, so they sign nothing.
PUBLIC_KEYS = frozenset({"dev-only-change-me", "hpe-test-kit", "change-me", "secret"})
#: The file in the instance folder that holds the embedded default's generated key.
KEY_FILE = "secret_key"
_NONCE_SEPARATOR = "."


class SecretKeyError(RuntimeError):
    """The configured secret key cannot be used (missing in production, weak, public)."""


class SecretKeys:
    """The key ring: ``current`` signs, every key (current first) verifies.

    :param current: ``SECRET_KEY``
    :param fallbacks: ``SECRET_KEY_FALLBACKS``, old keys that still verify
    """

    def __init__(self, current: str, fallbacks: Iterable[str] = ()):
        if not current:
            raise ValueError("A secret key is required.")
        self.current = current
        self.fallbacks = tuple(key for key in fallbacks if key and key != current)

    @classmethod
    def of(cls, value: SecretKeys | str) -> SecretKeys:
        """A ring from a ring, or from one key (callers that pass ``SECRET_KEY`` alone)."""
        return value if isinstance(value, SecretKeys) else cls(value)

    @classmethod
    def from_settings(cls, settings: Mapping) -> SecretKeys:
        """The ring of ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` (settled settings)."""
        return cls(settings["SECRET_KEY"], fallback_list(settings.get("SECRET_KEY_FALLBACKS")))

    @property
    def all(self) -> tuple[str, ...]:
        """Every key, the signing one first."""
        return (self.current, *self.fallbacks)

    def derive(self, label: bytes) -> tuple[bytes, ...]:
        """One 32-byte subkey per key for a purpose (``label`` separates purposes), the
        signing key's first."""
        cache = self._derived
        if label not in cache:
            cache[label] = tuple(hashlib.sha256(label + key.encode()).digest() for key in self.all)
        return cache[label]

    @cached_property
    def _derived(self) -> dict[bytes, tuple[bytes, ...]]:
        return {}

    # --- Nonces: secrets derived from a stored nonce (webhook signing secrets) ----------

    def new_nonce(self) -> str:
        """A random nonce that names the signing key (``<key id>.<random>``), so the secret
        derived from it can still be derived after the next rotation."""
        return f"{key_id(self.current)}{_NONCE_SEPARATOR}{secrets.token_urlsafe(32)}"

    def keys_for_nonce(self, nonce: str) -> tuple[str, ...]:
        """The keys a secret derived from ``nonce`` may have been made with.

        A nonce that names its key: that key, if it is still in the ring (else none: the
        secret died with its key). An older nonce, made before nonces named their key:
        every key, the signing one first.
        """
        named, separator, _ = nonce.partition(_NONCE_SEPARATOR)
        if not separator:
            return self.all
        return tuple(key for key in self.all if key_id(key) == named)

    def key_for_nonce(self, nonce: str) -> str | None:
        """The one key to derive ``nonce``'s secret with when *signing* (an outgoing
        webhook): the key it names, the signing key for an older nonce, None when the key
        it names left the ring."""
        keys = self.keys_for_nonce(nonce)
        return keys[0] if keys else None


def key_id(key: str) -> str:
    """A short, public name of a key (8 characters of a SHA-256 of it): stored with the
    nonces made under it. It reveals nothing usable about a key of 32+ random characters."""
    digest = hashlib.sha256(b"hpe-key-id:" + key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:8]


def fallback_list(value: object) -> list[str]:
    """``SECRET_KEY_FALLBACKS`` as a list: a JSON list, or one key as a plain string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise SecretKeyError("HPE_SECRET_KEY_FALLBACKS must be a JSON list of old keys.")


def production(settings: Mapping) -> bool:
    """True when PostgreSQL (any database but SQLite) or Redis is configured: a deployment
    that may span machines, which must share one configured key."""
    url = str(settings.get("DATABASE_URL") or "")
    return bool(settings.get("REDIS_URL")) or not url.startswith("sqlite")


def settle(settings: MutableMapping) -> None:
    """Make ``settings["SECRET_KEY"]`` a key fit to sign with, and
    ``settings["SECRET_KEY_FALLBACKS"]`` a list.

    The configured key when there is one; else, on the embedded default, the key kept in
    the instance folder (generated on first use).

    :raises SecretKeyError: no key in production, or a weak or public key (or fallback)
    """
    fallbacks = fallback_list(settings.get("SECRET_KEY_FALLBACKS"))
    key = settings.get("SECRET_KEY")
    if key:
        if not isinstance(key, str):
            raise SecretKeyError("HPE_SECRET_KEY must be a string.")
        problem = weakness(key)
        if problem:
            raise SecretKeyError(f"HPE_SECRET_KEY {problem} {_HOW_TO_MAKE_ONE}")
    elif production(settings):
        raise SecretKeyError(
            "HPE_SECRET_KEY is not set. With PostgreSQL or Redis every HPE process (API "
            "machines and workers) must sign with the same key: set HPE_SECRET_KEY to the "
            f"same secret value everywhere. {_HOW_TO_MAKE_ONE}"
        )
    else:
        key = instance_key(Path(settings["INSTANCE_PATH"]))
    for old in fallbacks:
        if old in PUBLIC_KEYS:
            raise SecretKeyError(
                "HPE_SECRET_KEY_FALLBACKS holds a key published in HPE's code or docs: "
                "anything signed with it may be forged, so it may not verify anything."
            )
    settings["SECRET_KEY"] = key
    settings["SECRET_KEY_FALLBACKS"] = fallbacks


_HOW_TO_MAKE_ONE = (
    "Make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))' "
    "(see docs/operations.md, Security)."
)


def weakness(key: str) -> str | None:
    """Why ``key`` must not sign anything, or None."""
    if key in PUBLIC_KEYS:
        return "is a value published in HPE's code or docs: anyone could forge links with it."
    if len(key) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters."
    return None


def instance_key(instance_path: Path) -> str:
    """The embedded default's key: read from ``<instance>/secret_key``, or generated and
    written there first (mode 0600; the first of several starting processes wins).

    :raises SecretKeyError: the file exists but holds no usable key
    """
    path = instance_path / KEY_FILE
    if not path.exists():
        _create(path)
    key = path.read_text().strip()
    problem = weakness(key)
    if problem:
        raise SecretKeyError(f"{path} {problem} Delete it to have a new key generated.")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o): chmod 600 it.", path, mode)
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written in full to a private temporary file, then linked into place: a process
    # starting at the same moment sees either no file or the whole key, never half of one.
    temporary = path.with_name(f".{KEY_FILE}-{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(temporary, path)
            log.info("Generated a secret key in %s (keep it: it signs links).", path)
        except FileExistsError:
            pass  # another process was first: use its key
    finally:
        temporary.unlink(missing_ok=True)
