"""Cross-touchpoint attribution of user-level outcomes to the user's decisions."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.models import Outcome


def configs_with_pending(session: Session) -> list[uuid.UUID]:
    """Configurations with user-level outcomes waiting for attribution (for the sweeper)."""
    return list(
        session.scalars(
            select(Outcome.config_id)
            .where(Outcome.decision_id.is_(None), Outcome.attributed_at.is_(None))
            .group_by(Outcome.config_id)
        )
    )
