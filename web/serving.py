"""``hpe serve --server granian``: the API on Granian, a Rust HTTP server with a WSGI
interface, instead of gunicorn.

Same process model as gunicorn's: ``workers`` processes, each building its own app after
the fork (``web.create_app``, engines and pools per process), each running requests on
``threads`` threads. What gunicorn does that Granian does not (docs/operations.md): no
per-request worker timeout (a stuck request is not killed), and its own plain answers to
malformed HTTP.
"""

from __future__ import annotations

SERVERS = ("gunicorn", "granian")


def granian_server(*, host: str, port: int, workers: int, threads: int, access_log: bool):
    """The Granian server serving ``web.create_app()`` with these settings (not started).

    :param threads: WSGI threads per worker (Granian's ``blocking_threads``)
    """
    from granian.constants import Interfaces
    from granian.server import Server

    return Server(
        "web:create_app",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        factory=True,
        workers=workers,
        blocking_threads=threads,
        websockets=False,
        log_access=access_log,
        # A worker that dies is started again, as gunicorn's arbiter does.
        respawn_failed_workers=True,
    )


def granian_available() -> bool:
    try:
        import granian  # noqa: F401
    except ImportError:
        return False
    return True
