"""Log lines as JSON objects (``LOG_FORMAT=json``), one per line, for log pipelines
(Loki, Elasticsearch, CloudWatch) that parse fields instead of text.

Each line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``request_id``
(the API request being served, ``X-Request-ID``; absent outside requests), ``process``
and, after an exception, ``exception`` (the traceback as text). The web layer fills in
``request_id`` (``web/request_ids.py``); workers log without one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

LOG_FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(log_format: str | None, *, level: int = logging.INFO) -> bool:
    """With ``json``, send the root logger's records to stderr as JSON lines (replacing its
    handlers); anything else leaves logging as it is.

    :returns: whether JSON logging was set up
    """
    if (log_format or "text").lower() != "json":
        return False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):  # one format: a text handler would print each line twice
        root.removeHandler(old)
    handler.hpe_json = True
    root.addHandler(handler)
    root.setLevel(level)
    return True
