"""Late outcomes, reported apart (issue 14, defect 6).

An outcome that arrives after its decision's reward window closed is kept and counted in
the metrics' engagements (the experiment is about what people did), but it is never
learned: the reward was final when the window closed. Without this report the two
disagreed silently (1,500 engagements reported, a learned reward of 1,013). ``GET
/{id}/metrics`` therefore says, per variant, how many of the range's live decisions
engaged only through late outcomes (``engagements`` minus these is what learning saw),
and how many late outcomes they received.

One grouped query over the configuration's late outcomes received since the range began
(the outcomes' ``(config_id, received_at)`` index); computed at read time, not rolled up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session, aliased

from hpe_core.learn import rewards
from hpe_core.learn.outcomes import CLOCK_SKEW
from hpe_core.store.days import created_between, day_start
from hpe_core.store.models import Decision, Outcome
from hpe_core.store.vocabulary import DecisionSource, Variant
from hpe_core.tenancy.settings_types import Reward


@dataclasses.dataclass(frozen=True, slots=True)
class Late:
    """Per variant (``treatment``, ``holdout``): live decisions engaged only by late
    outcomes, and late outcomes of live decisions."""

    engagements: dict[str, int]
    outcomes: dict[str, int]


def late_counts(
    session: Session,
    config_id: uuid.UUID,
    reward: Reward,
    date_from: dt.date,
    date_to: dt.date,
) -> Late:
    """The range's late engagements and outcomes, per variant."""
    variants = [variant.value for variant in Variant]
    positive = rewards.positive_types(reward) or ["__none__"]
    on_time = aliased(Outcome)
    engaged_on_time = exists().where(
        on_time.decision_id == Decision.id,
        on_time.late.is_(False),
        on_time.type.in_(positive),
    )
    try:
        since = day_start(date_from) - CLOCK_SKEW
    except OverflowError:
        since = None
    received = [Outcome.config_id == config_id, Outcome.late.is_(True)]
    if since is not None:
        received.append(Outcome.received_at >= since)
    rows = session.execute(
        select(
            Decision.variant,
            func.count(),
            # A decision engaged only late: a late positive outcome, and no on-time one.
            func.count(
                func.distinct(
                    case((and_(Outcome.type.in_(positive), ~engaged_on_time), Decision.id))
                )
            ),
        )
        .select_from(Outcome)
        .join(Decision, Decision.id == Outcome.decision_id)
        .where(
            *received,
            Decision.config_id == config_id,
            Decision.source == DecisionSource.LIVE,
            created_between(date_from, date_to),
        )
        .group_by(Decision.variant)
    ).all()
    outcomes = dict.fromkeys(variants, 0)
    engagements = dict.fromkeys(variants, 0)
    for variant, count, engaged in rows:
        if variant in outcomes:
            outcomes[variant] = int(count)
            engagements[variant] = int(engaged or 0)
    return Late(engagements=engagements, outcomes=outcomes)
