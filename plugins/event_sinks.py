"""HPE's own event sink: outgoing webhooks (``/webhook-endpoints``), built on the
``hpe_on_*`` hooks exactly as a third-party sink would be.

When a runtime starts (``hpe_on_startup``), a :class:`WebhookSink` for it is registered
on its plugin manager. It turns the events below into outgoing webhook messages for the
workspace's subscribed endpoints (:mod:`hpe_core.integrations.webhook_messages`) and
enqueues each on the runtime's job backend (RQ, or the API process's delivery thread):

- ``hpe_on_decision`` → ``decision.created``, batched: one message per workspace and
  endpoint every ``WEBHOOK_BATCH_SECONDS``, at most ``WEBHOOK_BATCH_SIZE`` decisions each;
- ``hpe_on_outcomes`` → ``outcome.received`` (one message per call: the outcomes stored
  together);
- ``hpe_on_activity`` → ``model.updated``, ``guardrail.*``, ``config.*``;
- ``hpe_on_recommendation_changed`` → ``recommendation.opened``, ``.applied``,
  ``.dismissed``.

Decisions are buffered in memory for up to ``WEBHOOK_BATCH_SECONDS``: a process killed
with ``kill -9`` loses the events of that last second (not the decisions: the export API
and the database have them). Every other event is stored before the call returns.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
import weakref
from collections import defaultdict

from hpe_core import hookimpl
from hpe_core.integrations import event_types, webhook_endpoints, webhook_messages

log = logging.getLogger(__name__)

#: The name the sink of the current runtime is registered under.
SINK_NAME = "plugins.event_sinks.webhooks"
#: Seconds between two sweeps for messages whose job was lost.
STRANDED_SWEEP_SECONDS = 60.0

_RECOMMENDATION_EVENTS = {
    "open": event_types.RECOMMENDATION_OPENED,
    "applied": event_types.RECOMMENDATION_APPLIED,
    "dismissed": event_types.RECOMMENDATION_DISMISSED,
}


@hookimpl
def hpe_on_startup(runtime):
    """Register this runtime's webhook sink (a runtime built again on the same plugin
    manager, as the plugin test kit does, replaces the previous sink)."""
    pm = runtime.pm
    if pm.get_plugin(SINK_NAME) is not None:
        pm.unregister(name=SINK_NAME)
    pm.register(WebhookSink(runtime), name=SINK_NAME)


def sink_of(runtime) -> WebhookSink | None:
    """The webhook sink registered for ``runtime`` (None when the plugin is blocked)."""
    sink = runtime.pm.get_plugin(SINK_NAME)
    return sink if isinstance(sink, WebhookSink) and sink.runtime is runtime else None


class WebhookSink:
    """Outgoing webhooks for one runtime: its sessions, job backend and settings."""

    def __init__(self, runtime):
        self.runtime = runtime
        settings = runtime.settings
        self.batch_seconds = float(settings.get("WEBHOOK_BATCH_SECONDS", 1.0))
        self.batch_size = max(1, int(settings.get("WEBHOOK_BATCH_SIZE", 500)))
        self.cache_seconds = float(settings.get("WEBHOOK_CACHE_SECONDS", 5.0))
        self._lock = threading.Lock()
        self._decisions: dict[str, list[dict]] = defaultdict(list)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscriptions: dict[str, list[tuple[uuid.UUID, tuple[str, ...]]]] = {}
        self._loaded_at = -float("inf")
        self._generation = -1
        self._next_stranded_sweep = 0.0

    # --- the hooks ----------------------------------------------------------------------

    @hookimpl
    def hpe_on_decision(self, workspace_id, config_id, channel, user_id, decision):
        if not self.subscribed(workspace_id, event_types.DECISION_CREATED):
            return
        entry = {
            "decision_id": decision.get("decision_id"),
            "config_id": config_id,
            "channel": channel,
            "user_id": user_id,
            "action_id": decision.get("action_id"),
            "probability": decision.get("probability"),
            "variant": decision.get("variant"),
            "model_version": decision.get("model_version"),
            "ranking": decision.get("ranking"),
            "decided_at": time.time(),
        }
        with self._lock:
            batch = self._decisions[workspace_id]
            batch.append(entry)
            full = len(batch) >= self.batch_size
            self._ensure_thread()
        if full:
            self._wake.set()

    @hookimpl
    def hpe_on_outcomes(self, workspace_id, config_id, outcomes, source):
        self.publish(
            workspace_id,
            event_types.OUTCOME_RECEIVED,
            {
                "config_id": config_id,
                "source": source,
                "outcomes": [
                    {
                        "type": event.type,
                        "decision_id": event.decision_id,
                        "user_id": event.user_id,
                        "value": event.value,
                        "occurred_at": event.occurred_at,
                    }
                    for event in outcomes
                ],
            },
        )

    @hookimpl
    def hpe_on_activity(self, activity):
        if activity.type not in event_types.FROM_ACTIVITIES or activity.config_id is None:
            return
        self.publish(
            activity.workspace_id,
            activity.type,
            {
                "config_id": activity.config_id,
                "activity_id": activity.id,
                "actor": activity.actor,
                "created_at": activity.created_at,
                **activity.data,
            },
        )

    @hookimpl
    def hpe_on_recommendation_changed(self, recommendation):
        event_type = _RECOMMENDATION_EVENTS.get(recommendation.status)
        if event_type is None:
            return
        self.publish(
            recommendation.workspace_id,
            event_type,
            {
                "config_id": recommendation.config_id,
                "recommendation_id": recommendation.id,
                "kind": recommendation.kind,
                "subject": recommendation.subject,
                "severity": recommendation.severity,
                "title": recommendation.title,
                "detail": recommendation.detail,
                "status": recommendation.status,
                "previous_status": recommendation.previous_status,
                "patch": recommendation.patch,
                "applied_by": recommendation.applied_by,
            },
        )

    # --- publishing -----------------------------------------------------------------------

    def subscribed(self, workspace_id: str, event_type: str) -> bool:
        """Whether an enabled endpoint of the workspace receives ``event_type`` (from a
        cache kept ``WEBHOOK_CACHE_SECONDS``, refreshed at once after a change here)."""
        now = time.monotonic()
        stale = now - self._loaded_at > self.cache_seconds
        if stale or self._generation != webhook_endpoints.GENERATION:
            try:
                with self.runtime.sessions() as session:
                    generation = webhook_endpoints.GENERATION
                    self._subscriptions = webhook_endpoints.subscriptions(session)
                self._loaded_at, self._generation = now, generation
            except Exception as exc:  # noqa: BLE001 - a database blip must not fail a decision
                log.warning("could not read webhook subscriptions: %s", exc)
                return False
        return any(
            event_types.matches(types, event_type)
            for _endpoint, types in self._subscriptions.get(workspace_id, ())
        )

    def publish(self, workspace_id: str, event_type: str, data: dict) -> list[uuid.UUID]:
        """Store one message per subscribed endpoint and enqueue each.

        :returns: the messages' ids (none when nobody subscribes)
        """
        if not self.subscribed(workspace_id, event_type):
            return []
        with self.runtime.sessions() as session:
            ids = webhook_messages.publish(session, workspace_id, event_type, data)
            session.commit()
        for message_id in ids:
            self.enqueue(message_id)
        with self._lock:
            self._ensure_thread()  # also sweeps for lost jobs from now on
        return ids

    def enqueue(self, message_id: uuid.UUID, delay: float = 0.0) -> None:
        try:
            self.runtime.jobs.enqueue_webhook_message(message_id, runtime=self.runtime, delay=delay)
        except Exception as exc:  # noqa: BLE001 - e.g. Redis down: the sweep enqueues it later
            log.warning("could not enqueue webhook message %s (will be swept): %s", message_id, exc)

    def flush(self) -> int:
        """Publish the buffered decisions now, as ``decision.created`` messages.

        :returns: how many messages were stored
        """
        with self._lock:
            buffered, self._decisions = self._decisions, defaultdict(list)
        stored = 0
        for workspace_id, decisions in buffered.items():
            for start in range(0, len(decisions), self.batch_size):
                chunk = decisions[start : start + self.batch_size]
                stored += len(
                    self.publish(workspace_id, event_types.DECISION_CREATED, {"decisions": chunk})
                )
        return stored

    def sweep_stranded(self) -> int:
        """Enqueue again the messages whose job was lost.

        :returns: how many were enqueued
        """
        with self.runtime.sessions() as session:
            stranded = webhook_messages.stranded(session)
        for message_id in stranded:
            self.enqueue(message_id)
        return len(stranded)

    # --- the batching thread ------------------------------------------------------------

    def _ensure_thread(self) -> None:
        # Called with the lock held.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=_run, args=(weakref.ref(self),), daemon=True, name="hpe-webhook-sink"
            )
            self._thread.start()
            atexit.register(_flush_at_exit, weakref.ref(self))

    def _tick(self) -> None:
        self.flush()
        if time.monotonic() >= self._next_stranded_sweep:
            self._next_stranded_sweep = time.monotonic() + STRANDED_SWEEP_SECONDS
            self.sweep_stranded()


def _run(sink_ref) -> None:
    """The sink's thread: flush every ``batch_seconds`` (sooner when a batch is full);
    ends once the sink is gone (its runtime replaced)."""
    while True:
        sink = sink_ref()
        if sink is None:
            return
        wake, interval = sink._wake, sink.batch_seconds
        del sink
        wake.wait(interval)
        wake.clear()
        sink = sink_ref()
        if sink is None:
            return
        try:
            sink._tick()
        except Exception:  # noqa: BLE001 - keep running: the next tick retries
            log.exception("webhook sink tick failed")
        del sink


def _flush_at_exit(sink_ref) -> None:
    sink = sink_ref()
    if sink is not None:
        try:
            sink.flush()
        except Exception:  # noqa: BLE001 - the process is going away
            log.exception("webhook sink: flush at exit failed")
