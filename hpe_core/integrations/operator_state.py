"""What an operator's metrics scrape reads from the database: per active configuration,
how long learning lags and how old the serving model is.

Two grouped queries on indexes the loop already has (``measure.health``), whatever the
number of configurations.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from sqlalchemy.orm import Session

from hpe_core.measure import health
from hpe_core.tenancy import configs


@dataclasses.dataclass(frozen=True)
class OperatorState:
    """Seconds, per configuration that is not INACTIVE.

    :param learn_lag: age of the oldest closed, unlearned reward window (0: none waiting)
    :param model_age: age of the newest model version (absent: never learned)
    """

    learn_lag: dict[uuid.UUID, float]
    model_age: dict[uuid.UUID, float]


def read(session: Session, now: dt.datetime) -> OperatorState:
    """The state of every configuration that is not INACTIVE, at ``now``."""
    ids = configs.measured_ids(session)
    lags = health.learning_lags(session, ids, now)
    saved = health.model_saved_at(session, ids)
    return OperatorState(
        learn_lag={
            config_id: max(0.0, lags[config_id].total_seconds()) if config_id in lags else 0.0
            for config_id in ids
        },
        model_age={
            config_id: max(0.0, (now - saved_at).total_seconds())
            for config_id, saved_at in saved.items()
            if saved_at is not None
        },
    )
