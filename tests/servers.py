"""A real ``hpe serve`` (gunicorn) for tests: a subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HPE = str(Path(sys.executable).parent / "hpe")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def hpe_serving(
    workdir: Path, env: dict[str, str], log: Path, *, workers: int = 1
) -> Iterator[str]:
    """Run ``hpe serve`` in ``workdir`` (its output to ``log``); yield its base URL once
    ``/api/v1/health`` answers 200.

    The server and its workers are always stopped (SIGTERM, then SIGKILL) on the way out.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as log_file:
        server = subprocess.Popen(
            [HPE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            cwd=workdir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its gunicorn workers share our group id, to stop them all
        )
        try:
            _wait_for_health(server, base, log)
            yield base
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _wait_for_health(server: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        assert server.poll() is None, f"hpe serve exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "hpe serve did not answer /api/v1/health in 60 s"
        time.sleep(0.2)
