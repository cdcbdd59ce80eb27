"""RQ jobs. Thin: they take ids, open a session and call the same hpe_core services the
inline backend calls."""

from __future__ import annotations

import dataclasses
import logging
import uuid

from sqlalchemy.exc import InterfaceError, OperationalError

from hpe_core.errors import TransientError
from hpe_core.learn import learning
from worker import retry
from worker.runtime import current_runtime, job_session

log = logging.getLogger(__name__)

#: While this key exists a learn job for the configuration is already queued.
PENDING_KEY = "hpe:learn-pending:{}"
ATTRIBUTE_PENDING_KEY = "hpe:attribute-pending:{}"
MEASURE_PENDING_KEY = "hpe:measure-pending:{}"


def run_for_config(kind: str, session, config_id: uuid.UUID, plugins) -> object:
    """Run one per-configuration job's service (the inline backend and the RQ jobs
    below share it): ``learn``, ``attribute`` or ``measure``."""
    if kind == "learn":
        return learning.learn_all_closed(session, config_id)
    if kind == "attribute":
        from hpe_core.learn import attribution

        return attribution.attribute_pending(session, config_id, plugins.attribution_models)
    if kind == "measure":
        from hpe_core.measure import measurement

        return measurement.run(session, config_id, plugins)
    raise ValueError(f"unknown job kind {kind!r}")


def attempt_delivery(session, runtime, delivery_id: uuid.UUID):
    """One attempt at a delivery with the runtime's plugins and channels (the inline
    backend and the RQ job below share it): ``hpe_core.deliver.delivery.attempt``'s report."""
    from hpe_core.deliver import delivery

    return delivery.attempt(
        session,
        runtime.pm,
        runtime.channels,
        delivery_id,
        max_attempts=retry.delivery_attempts(),
    )


def _clear_pending(key_format: str, config_id: str) -> None:
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        job.connection.delete(key_format.format(config_id))


def attribute(config_id: str) -> dict:
    """Attribute one configuration's waiting user-level outcomes to decisions."""
    return _config_job("attribute", ATTRIBUTE_PENDING_KEY, config_id)


def measure(config_id: str) -> dict:
    """One configuration's measurement pass (rollups, circuit breaker, recommendations)."""
    return _config_job("measure", MEASURE_PENDING_KEY, config_id)


def _config_job(kind: str, pending_key: str, config_id: str) -> dict:
    _clear_pending(pending_key, config_id)
    plugins = current_runtime().measurement
    try:
        with job_session() as session:
            report = run_for_config(kind, session, uuid.UUID(config_id), plugins)
    except (OperationalError, InterfaceError, TransientError) as exc:
        # Transient: rq retries the job (worker/retry.py); anything else is a bug.
        log.warning("%s job for %s hit a transient error, will retry: %s", kind, config_id, exc)
        return retry.for_learning()
    return dataclasses.asdict(report)


def learn(config_id: str) -> dict:
    """Learn every closed decision of one configuration (one learner per config at a time).

    Idempotent: each batch commits with its model version; a killed job loses nothing and
    a rerun learns only what is still unlearned.
    """
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        # Cleared when the job starts, not when it ends: a worker killed mid-job (SIGKILL
        # runs no cleanup) must not block the next sweep from enqueuing the work again.
        # The price: sweeps during a long learn queue jobs that find the config busy and
        # return at once (the advisory lock), which is cheap.
        job.connection.delete(PENDING_KEY.format(config_id))
    try:
        with job_session() as session:
            report = learning.learn_all_closed(session, uuid.UUID(config_id))
    except (OperationalError, InterfaceError, TransientError) as exc:
        # Transient (the database is unreachable, a connection dropped): rq retries the job
        # per worker/retry.py. Anything else is a bug and goes to the failed-job registry.
        log.warning("learn job for %s hit a transient error, will retry: %s", config_id, exc)
        return retry.for_learning()
    return {
        "learned": report.learned,
        "skipped": report.skipped,
        "version": report.version,
        "busy": report.busy,
    }


def deliver(delivery_id: str):
    """Send one delivery through its channel (``hpe_core.deliver.delivery.attempt``).

    Returns an rq ``Retry`` after a transient failure (rq re-runs the job later); a
    permanent failure, or the last retry, is recorded as failed and the job finishes.
    Idempotent: a delivery already sent or failed is skipped.
    """
    with job_session() as session:
        report = attempt_delivery(session, current_runtime(), uuid.UUID(delivery_id))
    if report.outcome == "retry":
        return retry.for_delivery(report.retry_after)
    return {"outcome": report.outcome, "error": report.error}


def export_audiences(config_id: str, channel: str = "ads") -> dict:
    """Export one configuration's audiences on a channel (the ads connector's export)."""
    connector = current_runtime().channels.get(channel)
    if connector is None or not hasattr(connector, "export_audiences"):
        return {"exported": []}
    with job_session() as session:
        exported = connector.export_audiences(session, uuid.UUID(config_id))
    return {"exported": exported}
