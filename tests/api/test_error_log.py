"""A request path with a newline is logged on one line (issue 15, also seen): the error
log took the decoded path as it came, so ``/x%0AFAKE: entry`` wrote a line of its own."""

from __future__ import annotations

import logging

import pytest


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_unexpected_error_on_a_path_with_a_newline_logs_one_line(app, client, caplog):
    """The 500's log entry escapes the newline (and other control characters)."""

    @app.route("/boom/<rest>")
    def boom(rest):
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="web.errors"):
        response = client.get("/boom/a%0D%0A2026-01-01 INFO forged%09entry%1B[31m")
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.name == "web.errors"]
    message = record.getMessage()
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert "/boom/a\\r\\n2026-01-01 INFO forged\\tentry\\x1b[31m" in message


def test_loggable_keeps_printable_text():
    """Printable text is kept as it is; control characters become escapes."""
    from web.errors import loggable

    assert loggable("/api/v1/ünïcode path") == "/api/v1/ünïcode path"
    assert loggable("a\nb\x00c\u2028d") == "a\\nb\\x00c\\u2028d"
