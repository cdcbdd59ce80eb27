"""RQ jobs. Thin: they take ids, open a session and call the same hpe_core services the
inline backend calls."""

from __future__ import annotations

import uuid

from hpe_core import learning
from worker.runtime import job_session

#: While this key exists a learn job for the configuration is already queued.
PENDING_KEY = "hpe:learn-pending:{}"


def learn(config_id: str) -> dict:
    """Learn every closed decision of one configuration (one learner per config at a time).

    Idempotent: each batch commits with its model version; a killed job loses nothing and
    a rerun learns only what is still unlearned.
    """
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        # From now on a new closed decision needs a new job: this one may have read past it.
        job.connection.delete(PENDING_KEY.format(config_id))
    with job_session() as session:
        report = learning.learn_all_closed(session, uuid.UUID(config_id))
    return {
        "learned": report.learned,
        "skipped": report.skipped,
        "version": report.version,
        "busy": report.busy,
    }
