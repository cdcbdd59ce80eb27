"""The floor for single decisions: what a user would write instead of HPE.

A Flask app whose ``POST /naive/<config_id>/decisions`` parses the JSON body, picks an
action, INSERTs one row (JSONB context and probabilities) on a per-thread autocommit
psycopg connection (one round trip, durable when it returns) and answers a 20-entry
ranking. Nothing else: no auth, no eligibility, no model.

Served by the benchmarks with the same server settings as ``hpe serve``
(:func:`serve_command`), under gunicorn or Granian::

    BENCH_NAIVE_DB=postgresql://... gunicorn 'bench.naive_endpoint:make_app()'
"""

from __future__ import annotations

import os
import threading
import uuid

TABLE = "naive_decisions"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id uuid PRIMARY KEY, user_id text, channel text, "
    "context jsonb, action_id text, probabilities jsonb, created_at timestamptz DEFAULT now())"
)
ACTIONS = [f"offer-{i:03d}" for i in range(20)]


def make_app():
    """The naive app (a factory: each server worker builds its own)."""
    import psycopg
    from flask import Flask, jsonify, request
    from psycopg.types.json import Jsonb

    app = Flask("hpe-naive")
    local = threading.local()
    url = os.environ["BENCH_NAIVE_DB"]
    probabilities = [1 / len(ACTIONS)] * len(ACTIONS)

    @app.post("/naive/<config_id>/decisions")
    def decide(config_id):
        body = request.get_json()
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(url, autocommit=True)
        decision_id = uuid.uuid4()
        action = ACTIONS[hash(body["user_id"]) % len(ACTIONS)]
        conn.execute(
            f"INSERT INTO {TABLE} (id, user_id, channel, context, action_id, probabilities) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (
                decision_id,
                body["user_id"],
                body["channel"],
                Jsonb(body.get("context") or {}),
                action,
                Jsonb(probabilities),
            ),
        )
        return jsonify(
            {
                "decision_id": str(decision_id),
                "action_id": action,
                "ranking": [
                    {"action_id": a, "probability": p}
                    for a, p in zip(ACTIONS, probabilities, strict=True)
                ],
            }
        ), 201

    return app


def serve_command(
    server: str, *, host: str, port: int, workers: int, threads: int, python: str
) -> list[str]:
    """The command line serving :func:`make_app` with ``hpe serve``'s settings.

    gunicorn: ``hpe serve``'s worker class (gthread when threads > 1, else sync), workers,
    threads and timeout, no access log. Granian: the same as ``hpe serve --server
    granian`` (WSGI interface, the workers, ``threads`` blocking threads each, no access
    log).
    """
    if server == "gunicorn":
        return [
            python,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread" if threads > 1 else "sync",
            "--timeout",
            "60",
            "--bind",
            f"{host}:{port}",
            "bench.naive_endpoint:make_app()",
        ]
    if server == "granian":
        return [
            python,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--blocking-threads",
            str(threads),
            "--no-ws",
            "--log-level",
            "warning",
            "bench.naive_endpoint:make_app",
        ]
    raise ValueError(f"unknown server {server!r}")
