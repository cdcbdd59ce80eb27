"""Password hashing for people who sign in to the dashboard: scrypt, from the standard library.

scrypt is memory-hard (OWASP lists it beside argon2id), so a stolen users table is slow to
attack on GPUs, and it needs no compiled dependency. The parameters are stored with each
hash, so raising them later re-hashes at the next sign-in (:func:`needs_rehash`) without
invalidating anyone's password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

#: OWASP's scrypt floor (N=2^17, r=8, p=1): ~128 MiB and ~0.1-0.2 s per hash here.
COST = 2**17
BLOCK_SIZE = 8
PARALLELISM = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_SCHEME = "scrypt"
#: Generated passwords: 20 URL-safe characters (~120 bits), easy to paste, never guessed.
GENERATED_LENGTH = 20
#: The shortest password a person may choose (NIST SP 800-63B's floor is 8).
MIN_LENGTH = 10
MAX_LENGTH = 1024


def hash_password(password: str, *, cost: int = COST) -> str:
    """A self-describing hash: ``scrypt$N$r$p$salt$key`` (salt and key base64)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _derive(password, salt, cost, BLOCK_SIZE, PARALLELISM)
    return "$".join((_SCHEME, str(cost), str(BLOCK_SIZE), str(PARALLELISM), _b64(salt), _b64(key)))


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (constant-time comparison)."""
    try:
        scheme, cost, block_size, parallelism, salt, key = stored.split("$")
        if scheme != _SCHEME:
            return False
        derived = _derive(password, _unb64(salt), int(cost), int(block_size), int(parallelism))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, _unb64(key))


def needs_rehash(stored: str, *, cost: int = COST) -> bool:
    """True when ``stored`` was made with weaker parameters than today's."""
    parts = stored.split("$")
    return len(parts) != 6 or parts[0] != _SCHEME or int(parts[1]) < cost


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_LENGTH)[:GENERATED_LENGTH]


def password_problem(password: str) -> str | None:
    """Why a chosen password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    return None


#: A hash to verify against when the email is unknown, so that an unknown address takes
#: as long to refuse as a wrong password (no account enumeration by timing).
_DECOY: dict[int, str] = {}


def burn_time_like_a_verification(password: str, *, cost: int = COST) -> None:
    if cost not in _DECOY:
        _DECOY[cost] = hash_password(secrets.token_urlsafe(16), cost=cost)
    verify_password(password, _DECOY[cost])


def _derive(password: str, salt: bytes, cost: int, block_size: int, parallelism: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=cost,
        r=block_size,
        p=parallelism,
        # N=2^17, r=8 needs 128 MiB: above OpenSSL's 32 MiB default limit.
        maxmem=256 * cost * block_size + 1024 * 1024,
        dklen=_KEY_BYTES,
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
