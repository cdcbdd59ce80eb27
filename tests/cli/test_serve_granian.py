"""`hpe serve --server granian`: the same API under Granian, run for real over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from tests.cli.test_cli import HPE, _env, hpe
from tests.conftest import BASE
from tests.servers import free_port


def _call(method: str, url: str, key: str | None = None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_granian_serves_decisions_and_stops_on_sigterm(tmp_path):
    """Two Granian workers on the embedded default: a configuration, a decision and a batch
    over real HTTP, then SIGTERM stops the server and its workers."""
    key = hpe(tmp_path, "workspace", "create", "acme").stdout.strip().splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "granian.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [HPE, "serve", "--server", "granian", "--port", str(port), "--workers", "2"],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _call("GET", f"{base}/api/v1/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        settings = {"actions": [{"id": "a"}, {"id": "b"}]}
        status, config = _call("POST", f"{base}{BASE}/", key, {"name": "g", "settings": settings})
        assert status == 201, config
        request = {"user_id": "u1", "channel": "email", "context": {"segment": "vip"}}
        status, decision = _call("POST", f"{base}{BASE}/{config['id']}/decisions", key, request)
        assert status == 201 and decision["action_id"] in {"a", "b"}, decision
        status, batch = _call(
            "POST",
            f"{base}{BASE}/{config['id']}/decisions/batch",
            key,
            {"requests": [request, {**request, "user_id": "u2"}]},
        )
        assert status == 201 and len(batch["decisions"]) == 2, batch
        assert _call("GET", f"{base}{BASE}/")[0] == 401
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            raise AssertionError("Granian did not stop on SIGTERM") from None
