"""Deterministic assignment of users to treatment or the always-on holdout."""

from __future__ import annotations

import hashlib

from hpe_core.store.vocabulary import Variant

BUCKETS = 10_000


def bucket(config_id: object, user_id: str) -> int:
    """A stable bucket in ``[0, 10000)`` for this user in this configuration.

    Salted with the configuration id so one user is not always in the holdout of every
    configuration; SHA-256 so the split is uniform and the same in every process.
    """
    digest = hashlib.sha256(f"{config_id}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def variant(config_id: object, user_id: str, holdout_percent: float) -> Variant:
    """The holdout for the first ``holdout_percent`` of buckets, else treatment.

    Raising the percentage only moves treatment users into the holdout, never back out.
    """
    if bucket(config_id, user_id) < holdout_percent * BUCKETS / 100:
        return Variant.HOLDOUT
    return Variant.TREATMENT
