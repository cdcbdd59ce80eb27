"""X-Request-ID on every answer, and JSON log lines that carry it (LOG_FORMAT=json)."""

from __future__ import annotations

import json
import logging

from hpe_core.log_format import JsonFormatter, configure
from tests.conftest import make_test_app
from web.extensions import app_runtime


def test_a_request_id_is_echoed_or_made(sqlite_app):
    """A sane X-Request-ID comes back as given; a missing or odd one is replaced."""
    client = sqlite_app.test_client()
    given = client.get("/api/v1/health", headers={"X-Request-ID": "lb-7f3a.42"})
    assert given.headers["X-Request-ID"] == "lb-7f3a.42"
    made = client.get("/api/v1/health").headers["X-Request-ID"]
    for odd in ("x" * 65, "two words", "<script>"):
        answered = client.get("/api/v1/health", headers={"X-Request-ID": odd})
        assert answered.headers["X-Request-ID"] != odd
    assert len(made) == 12


def test_json_logs_carry_the_request_id(sqlite_url, tmp_path, capsys):
    """LOG_FORMAT=json: one JSON object a line, with the request's id and the traceback."""
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    app = make_test_app(sqlite_url, tmp_path, LOG_FORMAT="json")
    try:
        with app.test_request_context("/", headers={"X-Request-ID": "req-123"}):
            app.preprocess_request()
            try:
                raise ValueError("boom")
            except ValueError:
                logging.getLogger("hpe.test").exception("it failed")
        logging.getLogger("hpe.test").warning("outside")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        app_runtime(app).engine.dispose()
    failed = next(line for line in lines if line["message"] == "it failed")
    assert failed["request_id"] == "req-123" and failed["level"] == "ERROR"
    assert "ValueError: boom" in failed["exception"] and failed["logger"] == "hpe.test"
    outside = next(line for line in lines if line["message"] == "outside")
    assert "request_id" not in outside


def test_text_format_changes_nothing():
    """The default format leaves logging alone."""
    assert configure("text") is False and configure(None) is False
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hi %s", ("there",), None)
    assert json.loads(JsonFormatter().format(record))["message"] == "hi there"
