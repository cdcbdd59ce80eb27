"""A configuration's health at a glance: the badges of the workspace overview.

Each badge is a condition a marketer should act on or at least know about before trusting
the lift: a sample-ratio mismatch, the circuit breaker tripped, an experiment too small to
detect its goal, a model that stopped updating, or learning that lags behind the closed
reward windows (a stalled worker). All of them for many configurations cost two grouped
queries besides the metrics the overview already reads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from enum import StrEnum

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from hpe_core.recommend.circuit_breaker import KIND as CIRCUIT_BREAKER_KIND
from hpe_core.results import Summary
from hpe_core.store.models import Config, Decision, ModelVersion, Recommendation
from hpe_core.store.vocabulary import RecommendationStatus
from hpe_core.tenancy.settings_types import Settings

#: Learning counts as lagging when a closed reward window has waited this long: the
#: sweeper looks every second and a learn batch takes seconds, so minutes mean a stall.
LAG_ALARM = dt.timedelta(minutes=10)
#: A model counts as stale when it has not changed for this long (and at least two
#: reward windows) while decisions keep coming.
STALE_AFTER = dt.timedelta(days=1)


class Badge(StrEnum):
    SRM = "srm"
    BREAKER_TRIPPED = "breaker_tripped"
    UNDERPOWERED = "underpowered"
    MODEL_STALE = "model_stale"
    LEARNING_LAG = "learning_lag"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Badge.SRM: "Sample ratio mismatch",
    Badge.BREAKER_TRIPPED: "Circuit breaker tripped",
    Badge.UNDERPOWERED: "Underpowered",
    Badge.MODEL_STALE: "Model stale",
    Badge.LEARNING_LAG: "Learning lag",
}


@dataclasses.dataclass(frozen=True)
class Health:
    badges: tuple[Badge, ...]
    #: Age of the oldest closed reward window not learned yet (None: none waiting).
    learning_lag: dt.timedelta | None
    #: When the newest model version was saved (None: no model yet).
    model_saved_at: dt.datetime | None

    @property
    def ok(self) -> bool:
        return not self.badges


def learning_lags(
    session: Session, config_ids: Iterable[uuid.UUID], now: dt.datetime
) -> dict[uuid.UUID, dt.timedelta]:
    """Per configuration, how long its oldest closed-but-unlearned reward window has waited.

    One grouped query on the learner's own index (``ix_041_hpe_decisions_unlearned``).
    Configurations with nothing waiting are absent.
    """
    ids = list(config_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Decision.config_id, func.min(Decision.window_closes_at))
        .where(
            Decision.config_id.in_(ids),
            Decision.learned_at.is_(None),
            Decision.window_closes_at <= now,
        )
        .group_by(Decision.config_id)
    )
    return {config_id: now - oldest for config_id, oldest in rows if oldest is not None}


def oldest_learning_lag(session: Session, now: dt.datetime) -> dt.timedelta | None:
    """The longest wait of any configuration's oldest closed-but-unlearned reward window
    (None: nothing waits): the stall signal of ``GET /api/v1/health``.

    One index probe per configuration (the learner's partial index), not a scan of a
    backlog, so a load balancer may poll it.
    """
    oldest_of_config = (
        select(func.min(Decision.window_closes_at))
        .where(
            Decision.config_id == Config.id,
            Decision.learned_at.is_(None),
            Decision.window_closes_at <= now,
        )
        .scalar_subquery()
    )
    oldest = session.scalar(select(func.min(oldest_of_config)).select_from(Config))
    if oldest is None:
        return None
    if oldest.tzinfo is None:  # SQLite returns the aggregate as naive UTC text
        oldest = oldest.replace(tzinfo=dt.UTC)
    return now - oldest


def model_saved_at(
    session: Session, config_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dt.datetime]:
    """When each configuration's newest model version was saved (no blob is read)."""
    ids = list(config_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(ModelVersion.config_id, func.max(ModelVersion.created_at))
        .where(ModelVersion.config_id.in_(ids))
        .group_by(ModelVersion.config_id)
    )
    return dict(rows.all())


def open_recommendations(
    session: Session, config_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, bool]]:
    """Per configuration: how many recommendations are open, and is one the breaker's."""
    ids = list(config_ids)
    if not ids:
        return {}
    breaker = func.sum(case((Recommendation.kind == CIRCUIT_BREAKER_KIND, 1), else_=0))
    rows = session.execute(
        select(Recommendation.config_id, func.count(), breaker)
        .where(
            Recommendation.config_id.in_(ids),
            Recommendation.status == RecommendationStatus.OPEN,
        )
        .group_by(Recommendation.config_id)
    )
    return {config_id: (int(count), bool(tripped)) for config_id, count, tripped in rows}


def assess(
    settings: Settings,
    summary: Summary,
    *,
    breaker_open: bool,
    lag: dt.timedelta | None,
    saved_at: dt.datetime | None,
    now: dt.datetime,
) -> Health:
    """The badges of one configuration from what the overview already read."""
    badges = []
    if summary.srm.alarm:
        badges.append(Badge.SRM)
    if breaker_open:
        badges.append(Badge.BREAKER_TRIPPED)
    if summary.power.days_more:
        badges.append(Badge.UNDERPOWERED)
    decisions = summary.decisions.treatment + summary.decisions.holdout
    stale_after = max(STALE_AFTER, dt.timedelta(seconds=2 * settings.reward.wait_seconds))
    if decisions and saved_at is not None and now - saved_at > stale_after:
        badges.append(Badge.MODEL_STALE)
    if lag is not None and lag > LAG_ALARM:
        badges.append(Badge.LEARNING_LAG)
    return Health(badges=tuple(badges), learning_lag=lag, model_saved_at=saved_at)


def many(
    session: Session,
    inputs: Mapping[uuid.UUID, tuple[Settings, Summary, bool]],
    now: dt.datetime,
) -> dict[uuid.UUID, Health]:
    """:func:`assess` for many configurations with two grouped queries in all.

    :param inputs: config id -> (its settings, its metrics summary, breaker open?)
    """
    lags = learning_lags(session, inputs, now)
    saved = model_saved_at(session, inputs)
    return {
        config_id: assess(
            settings,
            summary,
            breaker_open=breaker_open,
            lag=lags.get(config_id),
            saved_at=saved.get(config_id),
            now=now,
        )
        for config_id, (settings, summary, breaker_open) in inputs.items()
    }
