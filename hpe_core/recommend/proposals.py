"""What a recommendation rule proposes (:class:`Proposal`), the kinds of recommendation
(:class:`RecommendationKind`, each described by a :class:`KindSpec` beside its rule), and
the helpers rules share.

The rules themselves are :mod:`hpe_core.recommend.rules` (experiment health),
:mod:`hpe_core.recommend.model_rules` (the model: OPE, exploration),
:mod:`hpe_core.recommend.targeting_rules` (which offers and channels reach whom) and
:mod:`hpe_core.recommend.learning_rules` (keeping up with change: drift, self-tuning).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import StrEnum

from hpe_core.store.models import Recommendation
from hpe_core.store.vocabulary import Severity
from hpe_core.tenancy.settings_types import Settings


class RecommendationKind(StrEnum):
    """What a recommendation is about: one per rule, and the circuit breaker's."""

    SRM_ALARM = "srm_alarm"
    MODEL_WORSE_THAN_BASELINE = "model_worse_than_baseline"
    RETIRE_ACTION = "retire_action"
    CHANNEL_SEGMENT_UNDERPERFORMS = "channel_segment_underperforms"
    CHANGE_EXPLORATION = "change_exploration"
    HOLDOUT_UNDERPOWERED = "holdout_underpowered"
    PREFERENCES_SHIFTED = "preferences_shifted"
    TUNE_LEARNING = "tune_learning"
    CIRCUIT_BREAKER = "circuit_breaker"


@dataclasses.dataclass(frozen=True, slots=True)
class KindSpec:
    """How the engine treats one kind of recommendation (declared beside its rule).

    :param kind: the kind it describes
    :param auto_apply: whether the engine may apply it by itself in ``autonomous`` mode
        (when it has a patch)
    :param rebase: the patch to apply now, rebuilt from the stored recommendation on the
        current settings; None: the stored patch applies as it is. A merge patch
        replaces a list whole, so a stored list patch would undo what another
        recommendation changed in that list meanwhile. Raises
        :class:`~hpe_core.errors.Conflict` when the change no longer fits.
    """

    kind: RecommendationKind
    auto_apply: bool
    rebase: Callable[[Recommendation, Settings], dict] | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """One recommended change (or alarm) for a configuration.

    :param spec: its kind (see :class:`KindSpec`)
    :param subject: what it is about within the kind (an action id, ``email:bargain``);
        one stored recommendation per ``(kind, subject)``
    :param severity: how urgent it is
    :param title: one plain-language sentence for a marketer
    :param detail: why, and what applying it does
    :param evidence: the numbers it rests on
    :param patch: a JSON merge patch of the settings, or None when a person must act
    """

    spec: KindSpec
    subject: str
    severity: Severity
    title: str
    detail: str
    evidence: dict
    patch: dict | None

    @property
    def kind(self) -> RecommendationKind:
        return self.spec.kind

    @property
    def auto_apply(self) -> bool:
        """Whether the engine may apply it itself in ``autonomous`` mode."""
        return self.spec.auto_apply and self.patch is not None


def percent(share: float | None) -> str:
    """A share as a percentage for a sentence ("12.5%"), or "an unknown share"."""
    return "an unknown share" if share is None else f"{share:.1%}"


def pvalue(value: float | None) -> str:
    """A p-value for a sentence ("3.6e-25"), or "unknown"."""
    return "unknown" if value is None else f"{value:.2g}"
