"""What a recommendation rule proposes (:class:`Proposal`), and the helpers rules share.

The rules themselves are :mod:`hpe_core.recommend.rules` (experiment health),
:mod:`hpe_core.recommend.model_rules` (the model: OPE, exploration) and
:mod:`hpe_core.recommend.targeting_rules` (which offers and channels reach whom).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

KINDS = (
    "srm_alarm",
    "model_worse_than_baseline",
    "retire_action",
    "channel_segment_underperforms",
    "change_exploration",
    "holdout_underpowered",
)
#: Kinds the engine may apply by itself in ``autonomous`` mode. The others change who is
#: measured (holdout) or need a person to investigate (SRM, the circuit breaker).
AUTO_APPLY_KINDS = frozenset(
    {
        "retire_action",
        "change_exploration",
        # Not channel_segment_underperforms: channels differ in base rates for everyone
        # (an email click is not a web click), so cutting a channel's reach for a segment
        # is a person's call, not the engine's.
        "model_worse_than_baseline",
    }
)


@dataclasses.dataclass(frozen=True)
class Proposal:
    """One recommended change (or alarm) for a configuration.

    :param kind: one of :data:`KINDS` (or ``circuit_breaker``)
    :param subject: what it is about within the kind (an action id, ``email:bargain``);
        one stored recommendation per ``(kind, subject)``
    :param severity: ``info``, ``warning`` or ``critical``
    :param title: one plain-language sentence for a marketer
    :param detail: why, and what applying it does
    :param evidence: the numbers it rests on
    :param patch: a JSON merge patch of the settings, or None when a person must act
    :param auto_apply: whether the engine may apply it itself in ``autonomous`` mode
    """

    kind: str
    subject: str
    severity: str
    title: str
    detail: str
    evidence: dict
    patch: dict | None
    auto_apply: bool


def auto_apply(kind: str, patch: object) -> bool:
    """Whether a recommendation of ``kind`` with ``patch`` may be applied by the engine."""
    return kind in AUTO_APPLY_KINDS and patch is not None


def make(kind, subject, severity, title, detail, evidence, patch) -> Proposal:
    """A :class:`Proposal` whose ``auto_apply`` follows from its kind and patch."""
    return Proposal(
        kind, subject, severity, title, detail, evidence, patch, auto_apply(kind, patch)
    )


def number(value: object) -> float | None:
    """A finite number from a summary field, or None (missing, null, NaN, a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def counts(block: Mapping | None, variant: str) -> tuple[int, int]:
    """``(engagements, decisions)`` of one variant from a summary slice."""
    block = block or {}
    engagements = number((block.get("engagements") or {}).get(variant)) or 0
    decisions = number((block.get("decisions") or {}).get(variant)) or 0
    return int(engagements), int(decisions)


def percent(share: object) -> str:
    """A share as a percentage for a sentence ("12.5%"), or "an unknown share"."""
    value = number(share)
    return "an unknown share" if value is None else f"{value:.1%}"


def pvalue(value: object) -> str:
    """A p-value for a sentence ("3.6e-25"), or "unknown"."""
    value = number(value)
    return "unknown" if value is None else f"{value:.2g}"
