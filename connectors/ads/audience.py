"""Customer lists as ad platforms accept them: normalized, SHA-256 hashed identifiers.

Normalization follows the platforms' customer-match rules: emails trimmed and
lower-cased; phones in E.164 (``+`` country code and number, digits only). Google's
template hashes the phone *with* its ``+``, Meta's without; both take lowercase hex.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Mapping

FORMATS = {
    # format: (CSV header, hash the phone with its "+")
    "google": (["Email", "Phone"], True),
    "meta": (["email", "phone"], False),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")


def normalize_email(value: str | None) -> str | None:
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if _EMAIL.match(email) else None


def normalize_phone(value: str | None, default_country_code: str | None = None) -> str | None:
    """E.164 (``+4915123456789``), or None when it cannot be made one."""
    if not isinstance(value, str):
        return None
    raw = value.strip()
    digits = re.sub(r"\D", "", raw)
    if raw.startswith("+"):
        number = digits
    elif raw.startswith("00"):
        number = digits[2:]
    elif default_country_code:
        number = default_country_code + digits.lstrip("0")
    else:
        return None
    return "+" + number if 8 <= len(number) <= 15 else None


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hashed_identifiers(
    recipient: Mapping, audience_format: str, default_country_code: str | None
) -> dict:
    """``{"email_sha256", "phone_sha256"}`` (each may be None) for one recipient."""
    email = normalize_email(recipient.get("email"))
    phone = normalize_phone(recipient.get("phone"), default_country_code)
    if phone and not FORMATS[audience_format][1]:
        phone = phone[1:]
    return {
        "email_sha256": sha256(email) if email else None,
        "phone_sha256": sha256(phone) if phone else None,
    }


def to_csv(rows: Iterable[Mapping], audience_format: str) -> tuple[str, int]:
    """The customer-list CSV of hashed rows, without duplicates.

    :returns: the CSV text and its number of data rows
    """
    header, _ = FORMATS[audience_format]
    seen: set[tuple] = set()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        key = (row.get("email_sha256") or "", row.get("phone_sha256") or "")
        if key == ("", "") or key in seen:
            continue
        seen.add(key)
        writer.writerow(key)
    return out.getvalue(), len(seen)
