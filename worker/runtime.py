"""The runtime a worker process runs jobs on: built once per process, bound here.

``hpe worker`` builds it (:func:`worker.boot.build_runtime`: no Flask app) and binds it
before the first job; the inline backend of ``hpe serve`` needs none (it is handed the
runtime with each job). Jobs read it with :func:`current_runtime`.
"""

from __future__ import annotations

from contextlib import contextmanager

_runtime = None


def bind(runtime) -> None:
    """Make ``runtime`` (:class:`hpe_core.runtime.Runtime`) the one jobs in this process use."""
    global _runtime
    _runtime = runtime


def current_runtime():
    """The runtime bound in this process.

    :raises RuntimeError: none is bound: RQ workers for HPE are started with ``hpe worker``
        (a plain ``rq worker`` has no HPE settings, plugins or database to run jobs on)
    """
    if _runtime is None:
        raise RuntimeError(
            "No HPE runtime in this worker process: start HPE's workers with `hpe worker`."
        )
    return _runtime


@contextmanager
def job_session():
    """A database session for one job, always closed."""
    session = current_runtime().sessions()
    try:
        yield session
    finally:
        session.close()
