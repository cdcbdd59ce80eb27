"""A real HTTP receiver on loopback for outgoing-webhook tests: it records every request
and answers with the statuses it is told, in order (then the last one), and the headers it
is told (e.g. a ``Location`` to test redirects)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@dataclasses.dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """``receiver.url``, ``receiver.requests``; ``receiver.statuses`` is consumed in order."""

    def __init__(self, statuses: list[int] | None = None, headers: dict | None = None):
        self.statuses = list(statuses or [200])
        self.headers = dict(headers or {})
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            self.path,
                            {name.lower(): value for name, value in self.headers.items()},
                            body,
                        )
                    )
                    status = (
                        receiver.statuses.pop(0)
                        if len(receiver.statuses) > 1
                        else receiver.statuses[0]
                    )
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(f"answered {status}".encode())

            def log_message(self, *_args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def receiving(statuses: list[int] | None = None, headers: dict | None = None) -> Iterator[Receiver]:
    receiver = Receiver(statuses, headers).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def verify_from_spec(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification written from the specification (not HPE's code):
    the key is the base64 after ``whsec_``; the signed content ``id.timestamp.body``;
    the header holds space-separated ``v1,<base64>`` signatures."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = b".".join(
        [headers["webhook-id"].encode(), headers["webhook-timestamp"].encode(), body]
    )
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False
