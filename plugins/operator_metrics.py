"""Operator metrics for Prometheus: what every HPE process counts, and what the scrape
reads from the database and the queue at scrape time.

Counted by each process through the ``hpe_on_*`` hooks (a built-in plugin, like any
other sink): decisions by configuration, channel and variant; outcomes by type and
source; deliveries by channel and result; model versions learned. The decision latency
histogram is observed by the web layer (``web/prometheus.py``) around the decision
endpoints. Read at scrape time (:class:`StateCollector`): learn lag (the oldest
closed-but-unlearned reward window) and model version age per active configuration,
queue depths, jobs in RQ's failed registry, and whether the database and Redis answer.

Multiprocess mode: gunicorn workers and ``hpe worker`` processes each write their
counters to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's own variable) and
the scrape adds them up. ``hpe serve`` and ``hpe worker`` point it at
``<instance>/prometheus`` when it is unset (:func:`prepare_multiprocess_dir`; ``hpe serve``
empties it as it starts). prometheus_client decides on the mode when it is first
imported, so this module imports it only inside functions, after the commands have set
the variable.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

from hpe_core import __version__, hookimpl

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Decision latency buckets, in seconds (a decision is a few ms; a batch can take seconds).
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_lock = threading.Lock()
_metrics = None


def multiprocess_dir() -> str | None:
    """The folder the processes share their counters in, or None (one process only)."""
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


def prepare_multiprocess_dir(instance_path: str, *, empty: bool) -> str:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at ``<instance>/prometheus`` unless it is set, and
    create it; with ``empty``, delete the counters of earlier runs (``hpe serve`` at start:
    a restarted server starts its counters at zero, as Prometheus expects).

    Call it before anything imports prometheus_client.

    :returns: the folder
    """
    folder = multiprocess_dir() or str(Path(instance_path) / "prometheus")
    os.environ[MULTIPROC_ENV] = folder
    Path(folder).mkdir(parents=True, exist_ok=True)
    if empty:
        for stale in Path(folder).glob("*.db"):
            stale.unlink(missing_ok=True)
    return folder


def mark_process_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: drop a dead worker's live gauges (its counters stay)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class _Metrics:
    """The metrics this process updates (created on first use, in their own registry)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        options = {"registry": self.registry}
        self.decisions = Counter(
            "hpe_decisions",
            "Decisions logged, by configuration, channel and variant.",
            ["config_id", "channel", "variant"],
            **options,
        )
        self.decision_seconds = Histogram(
            "hpe_decision_duration_seconds",
            "Time to answer a decision request (the whole HTTP request), by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            **options,
        )
        self.outcomes = Counter(
            "hpe_outcomes", "Outcomes stored, by type and source.", ["type", "source"], **options
        )
        self.deliveries = Counter(
            "hpe_deliveries",
            "Delivery attempts by channel and result (sent, retry, failed).",
            ["channel", "result"],
            **options,
        )
        self.models = Counter(
            "hpe_model_versions_learned",
            "Model versions saved by learning, by configuration.",
            ["config_id"],
            **options,
        )


def metrics() -> _Metrics:
    """This process's metrics."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _Metrics()
    return _metrics


# --- The hooks ------------------------------------------------------------------------------


@hookimpl
def hpe_on_decision(config_id, channel, decision):
    metrics().decisions.labels(str(config_id), channel, decision.get("variant") or "").inc()


@hookimpl
def hpe_on_outcomes(outcomes, source):
    counter = metrics().outcomes
    for event in outcomes:
        counter.labels(event.type, source).inc()


@hookimpl
def hpe_on_delivered(delivery):
    metrics().deliveries.labels(delivery.channel, "sent").inc()


@hookimpl
def hpe_on_delivery_failed(delivery, final):
    metrics().deliveries.labels(delivery.channel, "failed" if final else "retry").inc()


@hookimpl
def hpe_on_activity(activity):
    if activity.type == "model.updated" and activity.config_id is not None:
        metrics().models.labels(str(activity.config_id)).inc()


# --- The scrape -----------------------------------------------------------------------------


class StateCollector:
    """What a scrape reads from the database and the job backend (one process answers it,
    so these are gauges computed now, never written to the multiprocess folder)."""

    def __init__(self, runtime):
        self.runtime = runtime

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            "hpe_up", "1 when the component answers, else 0.", labels=["component"]
        )
        lag = GaugeMetricFamily(
            "hpe_learn_lag_seconds",
            "Age of the oldest closed reward window not learned yet, per active "
            "configuration (0: nothing waiting).",
            labels=["config_id"],
        )
        age = GaugeMetricFamily(
            "hpe_model_age_seconds",
            "Age of the newest model version, per active configuration with one.",
            labels=["config_id"],
        )
        database_up = self._database(lag, age)
        up.add_metric(["database"], 1.0 if database_up else 0.0)
        depth = GaugeMetricFamily(
            "hpe_queue_depth", "Jobs waiting, per queue.", labels=["queue", "state"]
        )
        failed = GaugeMetricFamily(
            "hpe_jobs_failed",
            "Jobs in RQ's failed-job registry (kept 7 days), per queue.",
            labels=["queue"],
        )
        redis_up = self._queues(depth, failed)
        if redis_up is not None:
            up.add_metric(["redis"], 1.0 if redis_up else 0.0)
        info = GaugeMetricFamily("hpe_build_info", "HPE's version.", labels=["version"])
        info.add_metric([__version__], 1.0)
        yield from (up, lag, age, depth, failed, info)

    def _database(self, lag, age) -> bool:
        from hpe_core.integrations import operator_state

        try:
            with self.runtime.sessions() as session:
                state = operator_state.read(session, dt.datetime.now(dt.UTC))
        except Exception:  # noqa: BLE001 - the scrape still answers: hpe_up says why
            return False
        for config_id, seconds in state.learn_lag.items():
            lag.add_metric([str(config_id)], seconds)
        for config_id, seconds in state.model_age.items():
            age.add_metric([str(config_id)], seconds)
        return True

    def _queues(self, depth, failed) -> bool | None:
        """Queue depths; True/False whether Redis answers, None without Redis."""
        backend = self.runtime.jobs
        try:
            report = backend.depths()
        except Exception:  # noqa: BLE001 - Redis down: reported as hpe_up{redis} 0
            return False
        for (queue, state), count in sorted(report.waiting.items()):
            depth.add_metric([queue, state], float(count))
        for queue, count in sorted(report.failed.items()):
            failed.add_metric([queue], float(count))
        return True if backend.name == "rq" else None


def exposition(runtime) -> tuple[bytes, str]:
    """The scrape's body and content type: every process's counters (multiprocess mode)
    or this one's, then the state read now."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    if multiprocess_dir():
        from prometheus_client import multiprocess

        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = metrics().registry
    state = CollectorRegistry()
    state.register(StateCollector(runtime))
    return generate_latest(counted) + generate_latest(state), CONTENT_TYPE_LATEST
