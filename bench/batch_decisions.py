"""Batch decisions beside raw Vowpal Wabbit's single-thread text predict, in the same run.

Issue 19, target 1: decisions through ``POST /{id}/decisions/batch`` (and the service
behind it) at >= 0.8x the rate raw VW predicts the same examples from their text, in one
process, every decision durably logged (first bar: 0.5x).

One run (PostgreSQL + Redis mode, a fresh database, a configuration of ``--actions``
actions, touchpoints of the simulated audience) measures, in ``--rounds`` rounds of
``--batch-size`` new touchpoints each, in an order that rotates between rounds so that
every contender sees the machine in the same state as often:

- raw VW: a ``vowpalwabbit.Workspace`` with HPE's arguments predicting each example of
  the round from its text, both ways the public API takes it (a list of lines, one
  multi-line string); the faster is the round's reference;
- in-process: :func:`hpe_core.deliver.touchpoints.decide_and_deliver_all` (what the
  endpoint calls) on the round's requests: decided, COPYed and committed, in this
  process, on one thread;
- over HTTP: one ``POST /{id}/decisions/batch`` of the round's requests to ``hpe serve
  --workers 1 --threads 1`` (one server process, which parses, validates, decides, logs
  and serializes); the client reads the answer and counts its decisions.

Each is timed by wall clock and by the CPU time of the process doing the work (this one,
or the server's worker); the ratios are per round, then their median. The CPU ratio is
the steadier one on a shared machine: a process gets whatever share of the 2 cores the
other work leaves it, and that share moves by the second. Then ``hpe decide`` runs on
all the rounds' touchpoints again, with raw VW right before and after it. The logged
rows are counted against the decisions answered.

Usage::

    python bench/batch_decisions.py --rounds 5 --batch-size 10000 [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    API,
    Deployment,
    _hpe_executable,
    children,
    cpu_seconds,
    dump_json,
    loadavg,
    print_header,
    shared_line,
)
from bench.decision_latency import make_actions, make_bodies  # noqa: E402


def _examples(bodies: list[dict], actions: list[dict]) -> tuple[list, list]:
    from hpe_core.decide.features import ActionCatalog

    lines = ActionCatalog(actions).lines()
    as_lists = [[shared_line(b["channel"], b["context"]), *lines] for b in bodies]
    return as_lists, ["\n".join(example) for example in as_lists]


class RawVW:
    """Raw VW predicting from text, warmed up once (a fresh workspace per form)."""

    def __init__(self, actions: list[dict], warm: list[dict]):
        import vowpalwabbit

        from hpe_core.decide.policy import vw_arguments

        self.actions = actions
        self.workspaces = {
            form: vowpalwabbit.Workspace(vw_arguments({}))
            for form in ("list_of_lines", "multiline_text")
        }
        lists, texts = _examples(warm, actions)
        for example in lists:
            self.workspaces["list_of_lines"].predict(example)
        for example in texts:
            self.workspaces["multiline_text"].predict(example)

    def run(self, bodies: list[dict]) -> dict:
        lists, texts = _examples(bodies, self.actions)
        out = {}
        for form, examples in (("list_of_lines", lists), ("multiline_text", texts)):
            predict = self.workspaces[form].predict
            cpu0, t0 = time.process_time(), time.perf_counter()
            for example in examples:
                predict(example)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            out[form] = {"per_second": len(examples) / wall, "per_cpu_second": len(examples) / cpu}
        forms = list(out.values())
        out["per_second"] = max(r["per_second"] for r in forms)
        out["per_cpu_second"] = max(r["per_cpu_second"] for r in forms)
        return out

    def close(self) -> None:
        for workspace in self.workspaces.values():
            workspace.finish()


class InProcess:
    """decide_and_deliver_all in this process, on a fresh session per batch."""

    def __init__(self, dep: Deployment, config_id: str):
        dep.apply_env()
        from hpe_core.tenancy.workspaces import Principal
        from web import create_app
        from web.extensions import app_runtime, app_state

        self.app = create_app({"INLINE_SWEEPER": False})
        self.runtime = app_runtime(self.app)
        self.parts = app_state(self.app).touchpoints
        self.principal = Principal(workspace_id="bench", actor="bench", kind="secret")
        self.config_id = uuid.UUID(config_id)

    def run(self, bodies: list[dict]) -> dict:
        from hpe_core.decide.decisions import parse_request
        from hpe_core.deliver import touchpoints

        requests = [(parse_request(b), None) for b in bodies]
        with self.app.app_context():
            session = self.runtime.sessions()
            try:
                cpu0, t0 = time.process_time(), time.perf_counter()
                answers = touchpoints.decide_and_deliver_all(
                    session, self.parts, self.principal, self.config_id, requests
                )
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            finally:
                session.close()
        return {
            "decisions": len(answers),
            "per_second": len(answers) / wall,
            "per_cpu_second": len(answers) / cpu,
        }

    def close(self) -> None:
        self.runtime.engine.dispose()


class OverHttp:
    """One client posting batches to ``hpe serve --workers 1 --threads 1``."""

    def __init__(self, dep: Deployment, config_id: str):
        self.dep = dep
        url = dep.serve(workers=1, threads=1)
        self.worker = children(dep.server.pid)[0]
        parsed = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
        self.path = f"{API}/{config_id}/decisions/batch"
        self.headers = {"Authorization": f"Bearer {dep.key}", "Content-Type": "application/json"}

    def post(self, bodies: list[dict]) -> int:
        self.conn.request("POST", self.path, json.dumps({"requests": bodies}), self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 201:
            raise RuntimeError(f"{response.status}: {data[:500]!r}")
        return data.count(b'"decision_id"')

    def run(self, bodies: list[dict]) -> dict:
        payload = json.dumps({"requests": bodies}).encode()
        cpu0, t0 = cpu_seconds(self.worker), time.perf_counter()
        self.conn.request("POST", self.path, payload, self.headers)
        response = self.conn.getresponse()
        data = response.read()
        wall, cpu = time.perf_counter() - t0, cpu_seconds(self.worker) - cpu0
        if response.status != 201:
            raise RuntimeError(f"{response.status}: {data[:500]!r}")
        count = data.count(b'"decision_id"')
        return {
            "decisions": count,
            "per_second": count / wall,
            "per_cpu_second": count / max(cpu, 1e-9),
            "body_mb": len(payload) / 1e6,
            "answer_mb": len(data) / 1e6,
        }

    def close(self) -> None:
        self.conn.close()
        self.dep.stop_server()


def with_cli(dep: Deployment, config_id: str, bodies: list[dict], batch_size: int) -> dict:
    """``hpe decide`` on an NDJSON file of the bodies (its own summary line's rate)."""
    source = os.path.join(dep.instance, "users.ndjson")
    with open(source, "w") as handle:
        for body in bodies:
            handle.write(json.dumps(body) + "\n")
    output = os.path.join(dep.instance, "decisions.ndjson")
    t0 = time.perf_counter()
    result = subprocess.run(
        [
            _hpe_executable(),
            "decide",
            "--config",
            config_id,
            "--input",
            source,
            "--output",
            output,
            "--batch-size",
            str(batch_size),
            "--quiet",
        ],
        env=dep.env(),
        cwd=dep.instance,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    wall = time.perf_counter() - t0
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    summary = result.stderr.strip().splitlines()[-1]
    rate = float(re.search(r"\(([\d,]+)/s\)", summary).group(1).replace(",", ""))
    with open(output) as handle:
        lines = sum(1 for _ in handle)
    return {"decisions": lines, "process_wall": wall, "per_second": rate, "summary": summary}


def _count(dep: Deployment, config_id: str) -> int:
    import psycopg

    with psycopg.connect(dep.database_url) as conn:
        return conn.execute(
            'SELECT count(*) FROM "041_hyper_personalization_engine_decisions" '
            "WHERE config_id = %s",
            (config_id,),
        ).fetchone()[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=10000)
    parser.add_argument("--actions", type=int, default=20)
    parser.add_argument("--no-cli", action="store_true", help="skip the hpe decide run")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    info = print_header("batch decisions vs raw VW text predict (PostgreSQL + Redis)")
    actions = make_actions(args.actions)
    bodies = make_bodies(args.batch_size * args.rounds + 400, seed=21)
    warm, bodies = bodies[:400], bodies[400:]
    rounds = [bodies[i * args.batch_size : (i + 1) * args.batch_size] for i in range(args.rounds)]
    results = {"machine": info, "args": vars(args), "rounds": []}
    answered = 0
    with Deployment("batch") as dep:
        dep.serve(workers=1, threads=1)
        settings = {"actions": actions, "reward": {"wait_seconds": 86400}}
        status, body = dep.call("POST", f"{API}/", {"name": "batch", "settings": settings})
        assert status == 201, (status, body)
        config_id = body["id"]
        dep.stop_server()
        print(f"\ndatabase {dep.database}, redis db {dep.redis_db}, logs {dep.log_dir}")
        contenders = {
            "raw_vw": RawVW(actions, warm),
            "process": InProcess(dep, config_id),
            "http": OverHttp(dep, config_id),
        }
        contenders["process"].run(warm[:200])
        answered += 200 + contenders["http"].post(warm[200:])
        names = list(contenders)
        try:
            for number, chunk in enumerate(rounds):
                order = names[number % 3 :] + names[: number % 3]
                measured = {"round": number + 1, "order": order, "load_start": loadavg()}
                for name in order:
                    measured[name] = contenders[name].run(chunk)
                    answered += measured[name].get("decisions", 0)
                measured["load_end"] = loadavg()
                results["rounds"].append(measured)
                raw = measured["raw_vw"]
                line = [f"round {number + 1} ({' '.join(order)}), load {measured['load_end']}:"]
                line.append(
                    f"raw VW {raw['per_second']:,.0f}/s ({raw['per_cpu_second']:,.0f}/CPU-s)"
                )
                for name in ("process", "http"):
                    r = measured[name]
                    r["ratio"] = r["per_second"] / raw["per_second"]
                    r["cpu_ratio"] = r["per_cpu_second"] / raw["per_cpu_second"]
                    line.append(
                        f"{name} {r['per_second']:,.0f}/s ({r['per_cpu_second']:,.0f}/CPU-s) "
                        f"= {r['ratio']:.2f}x ({r['cpu_ratio']:.2f}x by CPU)"
                    )
                print("  ".join(line[:1]) + "\n    " + "\n    ".join(line[1:]))
                sys.stdout.flush()
        finally:
            for contender in contenders.values():
                contender.close()
        if not args.no_cli:
            raw = RawVW(actions, warm)
            before = raw.run(rounds[0])
            load = loadavg()
            cli = with_cli(dep, config_id, bodies, args.batch_size)
            after = raw.run(rounds[0])
            raw.close()
            answered += cli["decisions"]
            reference = max(before["per_second"], after["per_second"])
            cli.update(raw_before=before, raw_after=after, ratio=cli["per_second"] / reference)
            cli["load_start"], cli["load_end"] = load, loadavg()
            results["cli"] = cli
            print(
                f"\nhpe decide: {cli['summary']}\n    raw VW before {before['per_second']:,.0f}/s,"
                f" after {after['per_second']:,.0f}/s: {cli['ratio']:.2f}x the faster"
            )
        results["logged"] = logged = _count(dep, config_id)
        print(f"\nlogged rows {logged:,}, decisions answered {answered:,}")

    print(
        "\n== summary: HPE ÷ raw VW text predict, median of the rounds "
        "(target >= 0.8x, first bar 0.5x)"
    )
    summary = {}
    for name in ("process", "http"):
        ratios = [r[name]["ratio"] for r in results["rounds"]]
        cpu_ratios = [r[name]["cpu_ratio"] for r in results["rounds"]]
        rates = [r[name]["per_second"] for r in results["rounds"]]
        summary[name] = {
            "ratio": statistics.median(ratios),
            "cpu_ratio": statistics.median(cpu_ratios),
            "per_second": statistics.median(rates),
        }
        wall_rounds = ", ".join(f"{x:.2f}" for x in ratios)
        cpu_rounds = ", ".join(f"{x:.2f}" for x in cpu_ratios)
        print(
            f"  {name:8} {summary[name]['per_second']:7,.0f}/s  wall {summary[name]['ratio']:.2f}x "
            f"(rounds {wall_rounds})  CPU {summary[name]['cpu_ratio']:.2f}x (rounds {cpu_rounds})"
        )
    raw_rates = [r["raw_vw"]["per_second"] for r in results["rounds"]]
    listed = ", ".join(f"{x:,.0f}" for x in raw_rates)
    print(f"  raw VW   {statistics.median(raw_rates):7,.0f}/s (rounds {listed})")
    results["summary"] = summary
    print(f"load at end {loadavg()}")
    dump_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
