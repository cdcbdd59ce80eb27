"""`hpe worker`: RQ workers that learn, plus the sweeper that enqueues closed windows."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading

from hpe_core.runtime import Runtime
from worker.boot import build_runtime
from worker.queues import LEARN_QUEUE, Sweeper
from worker.queues import sweep as sweep_once
from worker.runtime import bind

log = logging.getLogger(__name__)


def run(runtime: Runtime, *, burst: bool = False, sweep: bool = True) -> bool:
    """Run one RQ worker in this process until stopped (or, with ``burst``, until idle).

    The worker runs jobs in its own process (rq's SimpleWorker: no fork per job), so a
    learner's memory and the database pool are reused across jobs. It also runs the
    scheduler (for retries with intervals) and a sweeper thread.
    """
    from rq.serializers import JSONSerializer

    backend = runtime.jobs
    if backend.name != "rq":
        raise RuntimeError(
            "No Redis configured (HPE_REDIS_URL): jobs already run inside the API process."
        )
    bind(runtime)
    _children_die_with_this_worker()
    sweeper = None
    if sweep and burst:
        # A burst worker quits as soon as the queue is empty, usually before the sweeper
        # thread's first pass: enqueue the closed windows before it looks.
        sweep_once(backend, runtime.sessions)
    if sweep:
        sweeper = Sweeper(
            backend,
            runtime.sessions,
            interval=runtime.settings["SWEEP_INTERVAL"],
            runtime=runtime,
            measure_interval=runtime.settings["MEASURE_INTERVAL"],
        ).start()
    # Deliveries first: a send never waits behind a long learn run.
    worker = _worker_class()(
        [backend.delivery_queue, backend.queue, backend.measure_queue],
        connection=backend.redis,
        serializer=JSONSerializer,
    )
    try:
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        if sweeper is not None:
            sweeper.stop()


def _worker_class():
    """rq's SimpleWorker, made to stop in a second or two when asked."""
    from rq import SimpleWorker

    class Worker(SimpleWorker):
        def unsubscribe(self):
            # rq 3.0 stops its pub/sub thread and joins it for up to a second; redis-py 8.2's
            # stop() itself waits for the thread, which may sleep up to rq's sleep_time (60
            # s) for a subscription that will not come: a SIGTERM then took up to a minute
            # to stop the worker (supervisors SIGKILL sooner). Bound that wait.
            thread = self.pubsub_thread
            if thread is None:
                return
            self.log.info("Worker %s: unsubscribing from its channel", self.name)
            self.pubsub.unsubscribe()
            try:
                thread.stop(timeout=1)
            except TypeError:  # redis-py before 8.2: stop() does not wait
                thread.stop()
            thread.join(timeout=1)

    return Worker


# --- Children RQ forks (its scheduler) never outlive the worker ----------------------------
#
# RQ forks its scheduler from the worker. Killed with SIGKILL (the OOM killer), the worker
# runs no cleanup, and the scheduler would run on as an orphan, holding the scheduler lock
# in Redis. Its database sockets are already closed on its side at the fork
# (hpe_core.store.db.forget_inherited_connections), so it cannot hold a learn
# transaction open; this makes it go too. Linux only (prctl); elsewhere orphans stay until
# stopped by hand.

_PR_SET_PDEATHSIG = 1
_parent_pid: int | None = None


def _children_die_with_this_worker() -> None:
    global _parent_pid
    if _parent_pid is not None or not sys.platform.startswith("linux"):
        return
    if threading.current_thread() is not threading.main_thread():
        return  # the death signal follows the forking thread: only the main thread forks
    _parent_pid = os.getpid()
    os.register_at_fork(after_in_child=_die_with_parent)


def _die_with_parent() -> None:
    """In a child forked by this worker: get SIGTERM when the worker dies (rq's scheduler
    stops on it and releases its locks), at once if it died already."""
    global _parent_pid
    parent, _parent_pid = _parent_pid, os.getpid()  # a grandchild dies with this child
    if parent is None or parent == _parent_pid:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    if os.getppid() != parent:  # the parent died between fork() and prctl()
        os.kill(os.getpid(), signal.SIGTERM)


def _child(burst: bool) -> None:
    run(build_runtime(), burst=burst)


def run_many(processes: int, *, burst: bool = False) -> None:
    """Start ``processes`` worker processes (each builds its own runtime) and wait for them."""
    children = [
        multiprocessing.get_context("spawn").Process(target=_child, args=(burst,), daemon=False)
        for _ in range(processes)
    ]

    def stop_children(signum, _frame) -> None:
        # `kill <pid>` (supervisord, a shell) reaches only this process: pass it on, or
        # the workers run on orphaned. rq ignores a duplicate within 1 s (Ctrl-C, group kill).
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    previous = {sig: signal.signal(sig, stop_children) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.start()
        log.info("started %d workers on queue %s (pid %d)", processes, LEARN_QUEUE, os.getpid())
        for child in children:
            child.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
