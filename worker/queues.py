"""The queue seam: inline (no Redis: a thread in the API process) or RQ (HPE_REDIS_URL).

Both run the same job functions on the same services. Callers use ``enqueue_learn``,
``enqueue_attribution``, ``enqueue_measure`` and ``sweep`` and never know which backend
is behind them.
"""

from __future__ import annotations

import itertools
import logging
import queue as queue_module
import threading
import time
import uuid
from typing import NamedTuple

from hpe_core.learn import attribution, learning
from hpe_core.tenancy import configs
from worker import jobs, retry
from worker.jobs import DELIVERY_QUEUE, LEARN_QUEUE, MEASURE_QUEUE, JobKind

log = logging.getLogger(__name__)

#: A delivery still pending (never attempted) this long after its decision lost its job
#: (e.g. Redis was down when it was enqueued): the sweeper enqueues it again.
STRANDED_DELIVERY_SECONDS = 300
#: How long a pending key outlives a job that never started (a lost enqueue).
_PENDING_TTL = 60
_CONFIG_JOB_OPTIONS = {"job_timeout": 600, "result_ttl": 300, "failure_ttl": 7 * 86400}


class _DueDelivery(NamedTuple):
    """An inline delivery waiting for its time (the earliest due first; ``sequence`` is
    unique, so two entries never compare their runtimes)."""

    due: float
    sequence: int
    delivery_id: str
    runtime: object
    #: ``delivery`` (a channel delivery) or ``webhook`` (an outgoing webhook message).
    kind: str = "delivery"


class QueueDepths(NamedTuple):
    """Jobs waiting, for the operator's metrics: ``waiting[(queue, state)]`` (``queued``,
    ``scheduled`` for a later retry, ``started``) and ``failed[queue]`` (RQ's failed-job
    registry; the inline backend logs failures instead)."""

    waiting: dict[tuple[str, str], int]
    failed: dict[str, int]


class _ConfigJobCalls:
    """The enqueue calls callers use, one per :class:`~worker.jobs.JobKind`; each backend
    implements :meth:`enqueue`."""

    def enqueue(self, kind: JobKind, config_id: uuid.UUID) -> bool:
        raise NotImplementedError

    def enqueue_learn(self, config_id: uuid.UUID) -> bool:
        return self.enqueue(JobKind.LEARN, config_id)

    def enqueue_attribution(self, config_id: uuid.UUID) -> bool:
        return self.enqueue(JobKind.ATTRIBUTE, config_id)

    def enqueue_measure(self, config_id: uuid.UUID) -> bool:
        return self.enqueue(JobKind.MEASURE, config_id)


class InlineBackend(_ConfigJobCalls):
    """Jobs run in one background thread of this process: the embedded default.

    One thread means learning is sequential, which VW requires; it never blocks requests.
    """

    name = "inline"

    def __init__(self, session_factory, *, background: bool = True, plugins=None):
        self._sessions = session_factory
        self._background = background
        self._plugins = plugins
        self._jobs: queue_module.Queue = queue_module.Queue()
        self._pending: set[tuple[JobKind, uuid.UUID]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # _DueDelivery entries: the earliest due first
        self._deliveries: queue_module.PriorityQueue = queue_module.PriorityQueue()
        self._delivery_seq = itertools.count()
        self._delivery_thread: threading.Thread | None = None

    def enqueue(self, kind: JobKind, config_id: uuid.UUID) -> bool:
        """Queue one job of ``kind`` for the configuration unless one is already queued.

        :returns: True if this call queued it
        """
        key = (kind, config_id)
        with self._lock:
            if key in self._pending:
                return False
            self._pending.add(key)
            if self._background:
                self._ensure_thread()
        self._jobs.put(key)
        return True

    def depths(self) -> QueueDepths:
        """The jobs and deliveries waiting in this process (queue ``inline``)."""
        return QueueDepths(
            waiting={
                ("inline", "queued"): self._jobs.qsize(),
                ("inline-deliveries", "queued"): self._deliveries.qsize(),
            },
            failed={},
        )

    def run_pending(self) -> None:
        """Run every queued job now, in this thread (tests and `hpe simulate` use it)."""
        while True:
            try:
                key = self._jobs.get_nowait()
            except queue_module.Empty:
                return
            self._run(key)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, daemon=True, name="hpe-inline-jobs")
            self._thread.start()

    def _loop(self) -> None:
        while True:
            key = self._jobs.get()
            self._run(key)

    def _run(self, key: tuple[JobKind, uuid.UUID]) -> None:
        with self._lock:
            self._pending.discard(key)
        kind, config_id = key
        try:
            with self._sessions() as session:
                jobs.run_for_config(kind, session, config_id, self._plugins)
        except Exception:  # the sweeper will enqueue the configuration again
            log.exception("inline %s job for %s failed", kind, config_id)

    # --- deliveries (inline): a second thread, so a slow SMTP server never delays learning

    def enqueue_delivery(
        self, delivery_id: uuid.UUID, *, runtime=None, delay: float = 0.0, kind: str = "delivery"
    ) -> None:
        """Queue one delivery; ``runtime`` (:class:`hpe_core.runtime.Runtime`) supplies the
        plugin manager and channels it is sent with."""
        with self._lock:
            if self._background and (
                self._delivery_thread is None or not self._delivery_thread.is_alive()
            ):
                self._delivery_thread = threading.Thread(
                    target=self._delivery_loop, daemon=True, name="hpe-inline-deliveries"
                )
                self._delivery_thread.start()
        self._deliveries.put(
            _DueDelivery(
                time.monotonic() + delay, next(self._delivery_seq), str(delivery_id), runtime, kind
            )
        )

    def enqueue_deliveries(self, delivery_ids: list[uuid.UUID], *, runtime=None) -> None:
        """Queue many deliveries (a batch's): each as :meth:`enqueue_delivery` would."""
        for delivery_id in delivery_ids:
            self.enqueue_delivery(delivery_id, runtime=runtime)

    def enqueue_webhook_message(
        self, message_id: uuid.UUID, *, runtime=None, delay: float = 0.0
    ) -> None:
        """Queue one outgoing webhook message on the delivery thread (``runtime`` gives
        the settings it is signed with; a retry re-uses the first one's)."""
        self.enqueue_delivery(message_id, runtime=runtime, delay=delay, kind="webhook")

    def enqueue_audience_export(
        self, config_id: uuid.UUID, channel: str, *, runtime=None, delay: float = 0.0
    ) -> None:
        """Queue one scheduled audience export on the delivery thread."""
        self.enqueue_delivery(
            f"{config_id}:{channel}", runtime=runtime, delay=delay, kind="audience-export"
        )

    def run_pending_deliveries(self) -> int:
        """Run every queued delivery once now, ignoring retry delays (tests use it).

        A delivery that fails transiently is queued again for the next call.

        :returns: how many attempts ran
        """
        jobs_now = []
        while True:
            try:
                jobs_now.append(self._deliveries.get_nowait())
            except queue_module.Empty:
                break
        for item in jobs_now:
            self._run_due(item)
        return len(jobs_now)

    def _delivery_loop(self) -> None:
        while True:
            item: _DueDelivery = self._deliveries.get()
            wait = item.due - time.monotonic()
            if wait > 0:
                # The earliest delivery is not due yet: put it back, look again soon (a new
                # delivery, due now, is then picked first).
                self._deliveries.put(item)
                time.sleep(min(wait, 0.2))
                continue
            self._run_due(item)

    def _run_due(self, item: _DueDelivery) -> None:
        if item.kind == "webhook":
            self._run_webhook_message(item.delivery_id, item.runtime)
        elif item.kind == "audience-export":
            self._run_audience_export(item.delivery_id, item.runtime)
        else:
            self._run_delivery(item.delivery_id, item.runtime)

    def _run_audience_export(self, key: str, runtime) -> None:
        config_id, channel = key.split(":", 1)
        try:
            with self._sessions() as session:
                jobs.run_audience_export(session, runtime, uuid.UUID(config_id), channel)
        except Exception:  # recorded on the schedule; the next run comes anyway
            log.exception("inline audience export %s failed", key)

    def _run_webhook_message(self, key: str, runtime) -> None:
        try:
            with self._sessions() as session:
                report = jobs.attempt_webhook_message(session, runtime, uuid.UUID(key))
        except Exception:  # the message stays unsettled; the sink's sweep finds it again
            log.exception("inline webhook message %s failed", key)
            return
        if report.outcome == "retry":
            delay = retry.webhook_delay(report.attempts)
            self.enqueue_webhook_message(uuid.UUID(key), runtime=runtime, delay=delay)

    def _run_delivery(self, key: str, runtime) -> None:
        try:
            with self._sessions() as session:
                report = jobs.attempt_delivery(session, runtime, uuid.UUID(key))
        except Exception:  # the delivery stays pending; logged for the operator
            log.exception("inline delivery %s failed", key)
            return
        if report.outcome == "retry":
            with self._sessions() as session:
                from hpe_core.store.models import Delivery

                attempts = session.get(Delivery, uuid.UUID(key)).attempts
            delay = retry.delivery_delay(attempts, report.retry_after)
            self.enqueue_delivery(uuid.UUID(key), runtime=runtime, delay=delay)


class RQBackend(_ConfigJobCalls):
    """Jobs go to RQ on Redis; `hpe worker` processes run them."""

    name = "rq"

    def __init__(self, redis_url: str, plugins=None):
        from redis import Redis
        from rq import Queue
        from rq.serializers import JSONSerializer

        self.redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.queue = Queue(LEARN_QUEUE, connection=self.redis, serializer=JSONSerializer)
        self.delivery_queue = Queue(
            DELIVERY_QUEUE, connection=self.redis, serializer=JSONSerializer
        )
        self.measure_queue = Queue(MEASURE_QUEUE, connection=self.redis, serializer=JSONSerializer)
        self._queues = {LEARN_QUEUE: self.queue, MEASURE_QUEUE: self.measure_queue}

    def enqueue(self, kind: JobKind, config_id: uuid.UUID) -> bool:
        """Queue one job of ``kind`` for the configuration unless one is already queued
        (its pending key exists: one job learns, attributes or measures everything there
        is; the job clears the key when it starts, see :func:`worker.jobs._clear_pending`).

        :returns: True if this call queued it
        """
        job = jobs.CONFIG_JOBS[kind]
        if not self.redis.set(job.pending_key.format(config_id), "1", nx=True, ex=_PENDING_TTL):
            return False
        self._queues[job.queue].enqueue(job.function, str(config_id), **_CONFIG_JOB_OPTIONS)
        return True

    def enqueue_delivery(self, delivery_id: uuid.UUID, *, runtime=None, delay: float = 0.0) -> None:
        """Queue one delivery job (retried by rq when it returns a Retry; the worker sends
        it with its own runtime, so ``runtime`` is not needed here)."""
        from datetime import timedelta

        kwargs = {"job_timeout": 120, "result_ttl": 3600, "failure_ttl": 7 * 86400}
        # One job id per delivery: enqueuing the same delivery twice is harmless.
        job_id = f"hpe-deliver-{delivery_id}"
        if delay > 0:
            self.delivery_queue.enqueue_in(
                timedelta(seconds=delay), jobs.deliver, str(delivery_id), job_id=job_id, **kwargs
            )
        else:
            self.delivery_queue.enqueue(jobs.deliver, str(delivery_id), job_id=job_id, **kwargs)

    def enqueue_deliveries(self, delivery_ids: list[uuid.UUID], *, runtime=None) -> None:
        """Queue many delivery jobs (a batch's) through Redis pipelines of up to 1,000 jobs,
        not a round trip each; the jobs are those :meth:`enqueue_delivery` makes."""
        queue = self.delivery_queue
        unique = list(dict.fromkeys(delivery_ids))
        for start in range(0, len(unique), 1000):
            chunk = unique[start : start + 1000]
            queue.enqueue_many(
                [
                    queue.prepare_data(
                        jobs.deliver,
                        (str(delivery_id),),
                        job_id=f"hpe-deliver-{delivery_id}",
                        timeout=120,
                        result_ttl=3600,
                        failure_ttl=7 * 86400,
                    )
                    for delivery_id in chunk
                ]
            )

    def depths(self) -> QueueDepths:
        """Each RQ queue's queued, scheduled and started jobs, and its failed ones.

        :raises redis.exceptions.RedisError: Redis does not answer
        """
        from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

        waiting, failed = {}, {}
        for queue in (self.delivery_queue, self.queue, self.measure_queue):
            waiting[(queue.name, "queued")] = queue.count
            waiting[(queue.name, "scheduled")] = ScheduledJobRegistry(queue=queue).count
            waiting[(queue.name, "started")] = StartedJobRegistry(queue=queue).count
            failed[queue.name] = FailedJobRegistry(queue=queue).count
        return QueueDepths(waiting, failed)

    def enqueue_audience_export(
        self, config_id: uuid.UUID, channel: str, *, runtime=None, delay: float = 0.0
    ) -> None:
        """Queue one scheduled audience export on the delivery queue."""
        self.delivery_queue.enqueue(
            jobs.scheduled_audience_export,
            str(config_id),
            channel,
            job_timeout=600,
            result_ttl=86400,
            failure_ttl=7 * 86400,
        )

    def enqueue_webhook_message(
        self, message_id: uuid.UUID, *, runtime=None, delay: float = 0.0
    ) -> None:
        """Queue one outgoing webhook message on the delivery queue (after ``delay``
        seconds: RQ's scheduler, which ``hpe worker`` runs, moves it to the queue then)."""
        from datetime import timedelta

        kwargs = {"job_timeout": 60, "result_ttl": 3600, "failure_ttl": 7 * 86400}
        job_id = f"hpe-webhook-{message_id}"
        if delay > 0:
            self.delivery_queue.enqueue_in(
                timedelta(seconds=delay),
                jobs.send_webhook_message,
                str(message_id),
                job_id=job_id,
                **kwargs,
            )
        else:
            self.delivery_queue.enqueue(
                jobs.send_webhook_message, str(message_id), job_id=job_id, **kwargs
            )


def make_backend(redis_url: str | None, session_factory, *, background: bool = True, plugins=None):
    """RQ when a Redis URL is configured, else inline (jobs in a thread of this process;
    with ``background=False`` they wait for :meth:`InlineBackend.run_pending`).

    :param plugins: the :class:`hpe_core.measure.measurement.MeasurementPlugins` inline jobs use
        (RQ jobs take them from the worker's runtime)
    """
    if redis_url:
        return RQBackend(redis_url, plugins)
    return InlineBackend(session_factory, background=background, plugins=plugins)


def sweep(backend, session_factory) -> int:
    """Enqueue attribution for configurations with user-level outcomes waiting, then a
    learn job for every configuration with closed, unlearned decisions.

    :returns: how many jobs were enqueued
    """
    with session_factory() as session:
        waiting = attribution.configs_with_pending(session)
        config_ids = learning.configs_with_closed_windows(session)
    enqueued = sum(1 for config_id in waiting if backend.enqueue_attribution(config_id))
    return enqueued + sum(1 for config_id in config_ids if backend.enqueue_learn(config_id))


def sweep_measurements(backend, session_factory) -> int:
    """Enqueue a measurement pass for every configuration that is not INACTIVE.

    :returns: how many jobs were enqueued
    """
    with session_factory() as session:
        config_ids = configs.measured_ids(session)
    return sum(1 for config_id in config_ids if backend.enqueue_measure(config_id))


def sweep_deliveries(backend, session_factory, runtime) -> int:
    """Enqueue again deliveries that were stored but never got a job (Redis was down).

    :returns: how many were enqueued
    """
    from hpe_core.deliver import delivery

    with session_factory() as session:
        stranded = delivery.stranded(session, older_than_seconds=STRANDED_DELIVERY_SECONDS)
    for delivery_id in stranded:
        backend.enqueue_delivery(delivery_id, runtime=runtime)
    return len(stranded)


def sweep_audience_exports(backend, session_factory, runtime) -> int:
    """Claim the audience exports due now and queue them (one process claims each run).

    :returns: how many were queued
    """
    from hpe_core.integrations import audience_schedules

    with session_factory() as session:
        claimed = audience_schedules.claim_due(session)
    for config_id, channel in claimed:
        backend.enqueue_audience_export(config_id, channel, runtime=runtime)
    return len(claimed)


class Sweeper:
    """A daemon thread that calls :func:`sweep` every ``interval`` seconds (and, given the
    runtime, :func:`sweep_deliveries` every minute; :func:`sweep_measurements` every
    ``measure_interval`` seconds, when given).

    Errors (database or Redis down) are logged and retried on the next pass: outcomes are
    already safe in the database, so a pass missed only delays learning.
    """

    def __init__(
        self,
        backend,
        session_factory,
        interval: float = 1.0,
        runtime=None,
        measure_interval: float | None = None,
    ):
        self.backend, self._sessions, self.interval = backend, session_factory, interval
        self._runtime = runtime
        self._measure_interval = measure_interval
        self._next_delivery_sweep = 0.0
        self._next_measure_sweep = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="hpe-sweeper")

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                sweep(self.backend, self._sessions)
                if self._runtime is not None and time.monotonic() >= self._next_delivery_sweep:
                    self._next_delivery_sweep = time.monotonic() + 60
                    sweep_deliveries(self.backend, self._sessions, self._runtime)
                    sweep_audience_exports(self.backend, self._sessions, self._runtime)
                if self._measure_interval and time.monotonic() >= self._next_measure_sweep:
                    self._next_measure_sweep = time.monotonic() + self._measure_interval
                    sweep_measurements(self.backend, self._sessions)
            except Exception as exc:  # noqa: BLE001 - keep sweeping whatever failed
                log.warning("sweep failed (will retry): %s", exc)
