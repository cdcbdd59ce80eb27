"""RQ jobs. Thin: they take ids, open a session and call the same hpe_core services the
inline backend calls.

The per-configuration jobs (learn, attribute, measure) are one table, :data:`CONFIG_JOBS`:
each kind's service, the Redis key that keeps one job of it queued per configuration,
and its queue. Both backends in :mod:`worker.queues` read it, and the three RQ job
functions below are the same body, :func:`_config_job`.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping
from enum import StrEnum

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from hpe_core.errors import TransientError
from hpe_core.learn import attribution, learning
from hpe_core.measure import measurement
from worker import retry
from worker.runtime import current_runtime, job_session

log = logging.getLogger(__name__)

LEARN_QUEUE = "hpe-learn"
#: Measurement passes (rollups, recommendations) can take seconds on a big day: their own
#: queue, listed last, so they never hold up learning or a send.
MEASURE_QUEUE = "hpe-measure"
#: Deliveries have their own queue, listed first by workers: a send never waits behind a
#: long learn run.
DELIVERY_QUEUE = "hpe-deliver"


class JobKind(StrEnum):
    """The jobs that run per configuration."""

    LEARN = "learn"
    ATTRIBUTE = "attribute"
    MEASURE = "measure"


#: ``(session, config_id, plugins) -> report``: a dataclass saying what the run did.
Service = Callable[[Session, uuid.UUID, measurement.MeasurementPlugins], object]


@dataclasses.dataclass(frozen=True)
class ConfigJob:
    """One kind of per-configuration job.

    :param function: the RQ job (workers import it by name)
    :param service: what the job runs, the same for the inline backend and RQ
    :param pending_key: a Redis key format: while the key exists, a job of this kind is
        queued for the configuration (set by the RQ backend, cleared when the job starts)
    :param queue: the RQ queue it goes to
    :param answer: the service's report as the plain dict RQ stores (JSON)
    """

    function: Callable[[str], object]
    service: Service
    pending_key: str
    queue: str
    answer: Callable[[object], dict] = dataclasses.asdict


def run_for_config(kind: str, session: Session, config_id: uuid.UUID, plugins) -> object:
    """Run one per-configuration job's service (the inline backend and the RQ jobs share
    it).

    :param kind: a :class:`JobKind` (or its value)
    :param plugins: the :class:`~hpe_core.measure.measurement.MeasurementPlugins` to use
    :returns: the service's report
    """
    return CONFIG_JOBS[JobKind(kind)].service(session, config_id, plugins)


def learn(config_id: str) -> dict:
    """Learn every closed decision of one configuration (one learner per config at a time).

    Idempotent: each batch commits with its model version; a killed job loses nothing and
    a rerun learns only what is still unlearned.
    """
    return _config_job(JobKind.LEARN, config_id)


def attribute(config_id: str) -> dict:
    """Attribute one configuration's waiting user-level outcomes to decisions."""
    return _config_job(JobKind.ATTRIBUTE, config_id)


def measure(config_id: str) -> dict:
    """One configuration's measurement pass (rollups, circuit breaker, recommendations)."""
    return _config_job(JobKind.MEASURE, config_id)


def _learn(session: Session, config_id: uuid.UUID, plugins) -> learning.LearnReport:
    return learning.learn_all_closed(session, config_id)


def _learn_answer(report: learning.LearnReport) -> dict:
    return {
        "learned": report.learned,
        "skipped": report.skipped,
        "version": report.version,
        "busy": report.busy,
    }


def _attribute(session: Session, config_id: uuid.UUID, plugins) -> attribution.AttributionReport:
    return attribution.attribute_pending(session, config_id, plugins.attribution_models)


CONFIG_JOBS: Mapping[JobKind, ConfigJob] = {
    JobKind.LEARN: ConfigJob(
        learn, _learn, "hpe:learn-pending:{}", LEARN_QUEUE, answer=_learn_answer
    ),
    # On the learn queue: attribution credit must reach decisions before they are
    # learned, and these jobs are short.
    JobKind.ATTRIBUTE: ConfigJob(attribute, _attribute, "hpe:attribute-pending:{}", LEARN_QUEUE),
    JobKind.MEASURE: ConfigJob(measure, measurement.run, "hpe:measure-pending:{}", MEASURE_QUEUE),
}


def _config_job(kind: JobKind, config_id: str):
    job = CONFIG_JOBS[kind]
    _clear_pending(job.pending_key, config_id)
    plugins = current_runtime().measurement
    try:
        with job_session() as session:
            report = job.service(session, uuid.UUID(config_id), plugins)
    except (OperationalError, InterfaceError, TransientError) as exc:
        # Transient (the database is unreachable, a connection dropped): rq retries the job
        # per worker/retry.py. Anything else is a bug and goes to the failed-job registry.
        log.warning("%s job for %s hit a transient error, will retry: %s", kind, config_id, exc)
        return retry.for_learning()
    return job.answer(report)


def _clear_pending(key_format: str, config_id: str) -> None:
    # Cleared when the job starts, not when it ends: a worker killed mid-job (SIGKILL runs
    # no cleanup) must not block the next sweep from enqueuing the work again. The price:
    # sweeps during a long learn queue jobs that find the config busy and return at once
    # (the advisory lock), which is cheap.
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        job.connection.delete(key_format.format(config_id))


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


def attempt_webhook_message(session, runtime, message_id: uuid.UUID):
    """One attempt at an outgoing webhook message (the inline backend and the RQ job below
    share it), under the operator's outbound policy: ``hpe_core.integrations.
    webhook_messages.attempt``'s report."""
    from hpe_core.deliver.outbound import OutboundPolicy
    from hpe_core.integrations import webhook_messages

    return webhook_messages.attempt(
        session,
        message_id,
        secret_key=runtime.settings["SECRET_KEY"],
        max_attempts=retry.webhook_attempts(),
        policy=OutboundPolicy.from_settings(runtime.settings),
        allow_http=bool(runtime.settings.get("WEBHOOK_ALLOW_HTTP")),
    )


def send_webhook_message(message_id: str) -> dict:
    """Post one outgoing webhook message (signed; ``hpe_core.integrations``).

    After a failed attempt the job enqueues the next one itself, after
    ``worker.retry.webhook_delay`` (the delays are hours apart: a scheduled job each, not
    a worker held). Idempotent: a message already delivered or given up on is skipped.
    """
    runtime = current_runtime()
    with job_session() as session:
        report = attempt_webhook_message(session, runtime, uuid.UUID(message_id))
    if report.outcome == "retry":
        runtime.jobs.enqueue_webhook_message(
            uuid.UUID(message_id), delay=retry.webhook_delay(report.attempts)
        )
    return {"outcome": report.outcome, "attempts": report.attempts, "error": report.error}


def run_audience_export(session, runtime, config_id: uuid.UUID, channel: str) -> list[dict]:
    """One scheduled audience export (the inline backend and the RQ job below share it):
    ``hpe_core.integrations.audience_schedules.run``."""
    from hpe_core.integrations import audience_schedules

    return audience_schedules.run(session, runtime.channels, config_id, channel)


def scheduled_audience_export(config_id: str, channel: str) -> dict:
    """Export one configuration's audiences on a channel, as its schedule asks (recorded on
    the schedule; a failure is recorded and the job fails, the next run comes anyway)."""
    with job_session() as session:
        exported = run_audience_export(session, current_runtime(), uuid.UUID(config_id), channel)
    return {"exported": exported}
