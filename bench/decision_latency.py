"""Decision latency and throughput over HTTP, beside raw Vowpal Wabbit in the same run.

What it does, in one run (PostgreSQL + Redis mode, a fresh database):

1. creates two configurations, one with 20 actions and one with 100 (four features each),
   and takes decision contexts from the simulated audience (hpe_core.simulation);
2. for each gunicorn layout given with ``--server WORKERS:THREADS``: starts ``hpe serve``,
   warms every worker up, then
   - latency: ``--clients`` (default 2) concurrent keep-alive clients send ``--requests``
     decisions per configuration; p50/p99 of the HTTP round trip;
   - throughput: ``--throughput-clients`` (default 4) clients for ``--throughput-seconds``
     on the 20-action configuration; decisions/s, every one logged durably (an INSERT and
     a COMMIT in PostgreSQL before the response);
   - CPU seconds used per decision by the gunicorn workers, the PostgreSQL backends of the
     benchmark database and the clients (to show where the two cores go);
3. raw VW: ``vowpalwabbit.Workspace(<vw_arguments of the default settings>)`` predicting
   the same shared + action lines with ``Workspace.predict(list_of_lines)`` (the public
   text API), before and after the HTTP phases; and, for reference, the product's own
   ``Learner.predict`` (VW's native parse + predict, no Python ``Example`` objects).

Clients are separate processes (``--client-mode process``, the default), each with one
keep-alive ``http.client`` connection, so the clients' GIL never serializes the requests.
They share the machine's 2 cores with the server and PostgreSQL, as a co-located campaign
tool would.

Usage::

    python bench/decision_latency.py --server 2:2 --server 2:4 --server 4:1 \
        --requests 4000 --latency-seconds 40 --throughput-seconds 20 \
        [--profile-dir /tmp/prof] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    API,
    CpuMeter,
    Deployment,
    dump_json,
    loadavg,
    postgres_backends,
    print_header,
    shared_line,
    summarize,
)
from hpe_core import simulation  # noqa: E402
from hpe_core.decide.features import ActionCatalog  # noqa: E402
from hpe_core.decide.policy import Learner, vw_arguments  # noqa: E402

_CATEGORIES = (
    "sitewide",
    "clearance",
    "basics",
    "welcome",
    "new_arrivals",
    "exclusive",
    "loyalty",
    "winback",
    "bundles",
    "electronics",
    "app",
    "content",
)
_CREATIVES = ("urgency", "playful", "minimal", "friendly", "editorial", "lifestyle")
_PRICE_BANDS = ("low", "mid", "high")


def make_actions(count: int) -> list[dict]:
    """``count`` offers with four features each (category, discount, price band, creative)."""
    return [
        {
            "id": f"offer-{i:03d}",
            "features": {
                "category": _CATEGORIES[i % len(_CATEGORIES)],
                "discount_pct": (i * 5) % 55,
                "price_band": _PRICE_BANDS[i % 3],
                "creative": _CREATIVES[(i // 3) % len(_CREATIVES)],
            },
            "content": {"headline": f"Offer {i}"},
        }
        for i in range(count)
    ]


def make_bodies(count: int, seed: int = 7) -> list[dict]:
    population = simulation.Population(seed=seed)
    return [
        {"user_id": t.user.user_id, "channel": t.channel, "context": t.context}
        for t in population.touchpoints(count, seed=seed)
    ]


# --- the framework floor -------------------------------------------------------------------


def floor_app():
    """A minimal Flask app on the same stack (gunicorn gthread, Flask, psycopg 3,
    PostgreSQL), for ``--floor``: what one JSON request with one durable INSERT costs
    before any HPE code runs. ``gunicorn 'bench.decision_latency:floor_app()'``.

    ``/plain/<id>/decisions`` parses the JSON body and returns a 20-item ranking;
    ``/insert/<id>/decisions`` also INSERTs the decision (JSONB context and
    probabilities) on a per-thread autocommit connection: one round trip.
    """
    import threading
    import uuid as uuid_module

    import psycopg
    from flask import Flask, jsonify, request
    from psycopg.types.json import Jsonb

    app = Flask("hpe-floor")
    local = threading.local()
    url = os.environ["BENCH_FLOOR_DB"]

    def respond():
        return jsonify(
            {
                "decision_id": str(uuid_module.uuid4()),
                "action_id": "offer-000",
                "ranking": [
                    {"action_id": f"offer-{i:03d}", "probability": 0.05} for i in range(20)
                ],
            }
        ), 201

    @app.post("/plain/<config_id>/decisions")
    def plain(config_id):
        request.get_json()
        return respond()

    @app.post("/insert/<config_id>/decisions")
    def insert(config_id):
        body = request.get_json()
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(url, autocommit=True)
        conn.execute(
            "INSERT INTO floor_decisions (id, user_id, channel, context, probabilities) "
            "VALUES (%s, %s, %s, %s, %s)",
            (
                uuid_module.uuid4(),
                body["user_id"],
                body["channel"],
                Jsonb(body["context"]),
                Jsonb([0.05] * 20),
            ),
        )
        return respond()

    return app


def run_floor(dep: Deployment, bodies, args) -> dict:
    """Serve :func:`floor_app` with gunicorn (same layout as the first --server) and drive
    it exactly like HPE: latency with --clients, throughput with --throughput-clients."""
    import psycopg

    from bench.common import children, free_port

    with psycopg.connect(dep.database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS floor_decisions (id uuid PRIMARY KEY, user_id text, "
            "channel text, context jsonb, probabilities jsonb, "
            "created_at timestamptz DEFAULT now())"
        )
    workers, threads = (args.server or [(2, 2)])[0]
    port = free_port()
    env = dict(os.environ, BENCH_FLOOR_DB=dep.database_url)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    log = open(dep.log_dir / "floor.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "-k",
            "gthread" if threads > 1 else "sync",
            "-b",
            f"127.0.0.1:{port}",
            "bench.decision_latency:floor_app()",
        ],
        env=env,
        cwd=repo,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    dep._processes.append(server)  # stopped with the deployment whatever happens
    url = f"http://127.0.0.1:{port}"
    out = {"workers": workers, "threads": threads}
    try:
        deadline = time.monotonic() + 60
        while len(children(server.pid)) < workers or not _answers(url):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the floor app did not start")
            time.sleep(0.3)
        global API
        saved = API
        for kind in ("plain", "insert"):
            API = f"/{kind}"
            try:
                drive(url, "-", "floor", bodies[:400], clients=4, mode="process")
                pids = children(server.pid)
                for label, clients, cycle in (
                    ("latency", args.clients, False),
                    ("throughput", args.throughput_clients, True),
                ):
                    meter = CpuMeter(
                        {"gunicorn": pids, "postgres": postgres_backends(dep.database)}
                    )
                    seconds = args.latency_seconds if not cycle else args.throughput_seconds
                    run = drive(
                        url,
                        "-",
                        "floor",
                        bodies,
                        clients=clients,
                        mode=args.client_mode,
                        meter=meter,
                        seconds=seconds,
                        cycle=cycle,
                    )
                    run["cpu"] = _cpu_per_decision(meter, run)
                    run["gunicorn_cpu_by_pid"] = {
                        str(p): round(v, 2) for p, v in meter.per_pid["gunicorn"].items()
                    }
                    out[f"{kind}_{label}"] = run
                    _print_run(f"floor /{kind}, {label}, {clients} clients", run)
            finally:
                API = saved
    finally:
        dep._processes.remove(server)
        from bench.common import _stop_group

        _stop_group(server)
        log.close()
    return out


def _answers(url: str) -> bool:
    import http.client

    parsed = urllib.parse.urlsplit(url)
    try:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
        conn.request("POST", "/plain/x/decisions", b"{}", {"Content-Type": "application/json"})
        ok = conn.getresponse().status == 201
        conn.close()
        return ok
    except OSError:
        return False


# --- clients -------------------------------------------------------------------------------


def _client(url, key, path, bodies, barrier, results, deadline_seconds, index, cycle=True):
    """One keep-alive client: send ``bodies`` in order until a deadline (cycling through
    them when ``cycle``) or, without a deadline, each once."""
    import http.client

    parsed = urllib.parse.urlsplit(url)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    payloads = [json.dumps(b).encode() for b in bodies]
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    statuses: Counter = Counter()
    reconnects = 0

    def one(payload):
        nonlocal conn, reconnects
        for attempt in range(3):
            try:
                conn.request("POST", path, payload, headers)
                response = conn.getresponse()
                data = response.read()
                if response.will_close:
                    conn.close()  # sync gunicorn workers close after every response
                    reconnects += 1
                return response.status, data
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
                reconnects += 1
                if attempt == 2:
                    raise
        raise AssertionError

    one(payloads[0])  # connect before the clock starts
    barrier.wait()
    latencies = []
    perf = time.perf_counter
    cpu0 = time.process_time()
    started = perf()
    if deadline_seconds:
        end = started + deadline_seconds
        i = index
        while True:
            t0 = perf()
            status, _data = one(payloads[i % len(payloads)])
            t1 = perf()
            latencies.append(t1 - t0)
            statuses[status] += 1
            i += 1
            if t1 >= end or (not cycle and i >= len(payloads) + index):
                break
    else:
        for payload in payloads:
            t0 = perf()
            status, _data = one(payload)
            latencies.append(perf() - t0)
            statuses[status] += 1
    elapsed = perf() - started
    results.put(
        {
            "index": index,
            "latencies": latencies,
            "elapsed": elapsed,
            "statuses": dict(statuses),
            "reconnects": reconnects,
            "cpu": time.process_time() - cpu0,
        }
    )
    conn.close()


def drive(url, key, config_id, bodies, *, clients, mode, seconds=None, meter=None, cycle=True):
    """Run ``clients`` concurrent clients; returns latencies, wall time, statuses, CPU."""
    path = f"{API}/{config_id}/decisions"
    ctx = multiprocessing.get_context("fork")
    if mode == "process":
        barrier, results = ctx.Barrier(clients + 1), ctx.Queue()
        spawn = ctx.Process
    else:
        import queue

        barrier, results = threading.Barrier(clients + 1), queue.Queue()
        spawn = threading.Thread
    shares = [bodies[i::clients] for i in range(clients)]
    workers = [
        spawn(target=_client, args=(url, key, path, shares[i], barrier, results, seconds, i, cycle))
        for i in range(clients)
    ]
    for w in workers:
        w.start()
    barrier.wait()
    if meter:
        meter.start()
    t0 = time.perf_counter()
    outs = [results.get(timeout=900) for _ in workers]
    wall = time.perf_counter() - t0
    if meter:
        meter.stop()
    for w in workers:
        w.join()
    latencies = [x for o in outs for x in o["latencies"]]
    statuses: Counter = Counter()
    for o in outs:
        statuses.update(o["statuses"])
    return {
        "latency": summarize(latencies),
        "wall": wall,
        "count": len(latencies),
        "statuses": dict(statuses),
        "reconnects": sum(o["reconnects"] for o in outs),
        "client_cpu": sum(o["cpu"] for o in outs),
        "per_client": [len(o["latencies"]) for o in outs],
    }


# --- raw VW ----------------------------------------------------------------------------------


def raw_vw(bodies, actions, repeats: int) -> dict:
    """p50/p99 of raw VW predictions on the same lines the server builds."""
    import vowpalwabbit

    args = vw_arguments({})
    catalog = ActionCatalog(actions)
    lines = catalog.lines()
    shared = [shared_line(b["channel"], b["context"]) for b in bodies]
    examples = [[s, *lines] for s in shared]
    vw = vowpalwabbit.Workspace(args)
    perf = time.perf_counter
    public, fast, featurize_predict = [], [], []
    for e in examples[:200]:
        vw.predict(e)  # warm up
    for _ in range(repeats):
        for e in examples:
            t0 = perf()
            vw.predict(e)
            public.append(perf() - t0)
    vw.finish()
    learner = Learner(args)
    for s in shared[:200]:
        learner.predict(s, lines)
    for _ in range(repeats):
        for s in shared:
            t0 = perf()
            learner.predict(s, lines)
            fast.append(perf() - t0)
        for b in bodies:
            t0 = perf()
            learner.predict(shared_line(b["channel"], b["context"]), catalog.lines())
            featurize_predict.append(perf() - t0)
    learner.close()
    return {
        "vw_args": args,
        "public_predict": summarize(public),
        "learner_predict": summarize(fast),
        "featurize_and_learner_predict": summarize(featurize_predict),
    }


def merge_raw(a: dict, b: dict) -> dict:
    """Pool the two raw-VW runs (before and after the HTTP phases) by re-summarizing."""
    return {"before": a, "after": b}


# --- profiling -------------------------------------------------------------------------------


def start_profile(pid: int, seconds: int, out: str) -> subprocess.Popen | None:
    pyspy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(pyspy):
        print("  (py-spy not installed: no profile)")
        return None
    return subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            "250",
            "--format",
            "raw",
            "--gil",
            "--nonblocking",
            "--output",
            out,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


#: (label, a substring of the py-spy frame) for the decision hot path's parts.
PROFILE_PARTS = (
    ("Flask dispatch (everything in the app)", "Flask.wsgi_app ("),
    ("  webargs: parse + validate the request", "Parser.parse ("),
    ("  webargs: instantiate the request schema", "Parser._get_schema ("),
    ("  marshmallow: dump the response", "Schema.dump ("),
    ("  Flask: JSON response", "DefaultJSONProvider.response ("),
    ("  auth: API key (cached)", "_principal ("),
    ("  Decisions.post", "Decisions.post ("),
    ("    decide()", "DecisionEngine.decide ("),
    ("      config snapshot (TTL reload)", "DecisionEngine.snapshot ("),
    ("      consent lookup (SELECT)", "allowed (hpe_core/decide/consent.py"),
    ("      frequency caps (SELECT count)", "_over_frequency_cap ("),
    ("      eligibility", "eligible_actions ("),
    ("      featurize context", "_features (hpe_core/decide/features.py"),
    ("      model registry (version check)", "ModelRegistry.get ("),
    ("      VW predict (Learner.predict)", "Learner.predict ("),
    ("      decision INSERT (Session.execute)", "decide (hpe_core/decide/decisions.py"),
    ("    Session.commit", "Session.commit ("),
    ("  pool checkout", "_ConnectionFairy._checkout ("),
    ("    pool pre-ping (SELECT 1)", "_do_ping_w_event ("),
    ("  Session.close", "Session.close ("),
    ("gunicorn access log", "Logger.access ("),
)


def profile_parts(raw_path: str) -> dict:
    """Share of request-thread samples per part of the hot path (py-spy --gil samples:
    a thread holding the GIL, i.e. spending CPU in Python or in C called from Python)."""
    parts = {label: 0 for label, _ in PROFILE_PARTS}
    total = 0
    insert_frames = 0
    with open(raw_path) as handle:
        for line in handle:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or ("Worker.handle (" not in stack):
                continue
            n = int(count)
            total += n
            for label, key in PROFILE_PARTS:
                if key == "decide (hpe_core/decide/decisions.py":
                    # Time in Session.execute called directly from decide() = the INSERT.
                    frames = stack.split(";")
                    for i, frame in enumerate(frames[:-1]):
                        if frame.startswith("DecisionEngine.decide (") and frames[i + 1].startswith(
                            "Session.execute ("
                        ):
                            parts[label] += n
                            insert_frames += n
                            break
                elif key in stack:
                    parts[label] += n
    return {"samples": total, "percent": {k: 100 * v / max(total, 1) for k, v in parts.items()}}


# --- main ----------------------------------------------------------------------------------


def breakdown(raw_path: str, frame: str, limit: int = 25) -> None:
    """Print what runs under ``frame`` in a py-spy raw profile: the share of that
    frame's samples spent under each function it calls (inclusive), and leaf functions."""
    inside: Counter = Counter()
    leaves: Counter = Counter()
    total = 0
    with open(raw_path) as handle:
        for line in handle:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            frames = stack.split(";")
            hits = [i for i, f in enumerate(frames) if f.startswith(frame)]
            if not hits:
                continue
            n = int(count)
            total += n
            below = frames[hits[0] + 1 :]
            for name in set(below):
                inside[name] += n
            leaves[frames[-1]] += n
    print(f"{raw_path}: {total} samples under {frame!r}")
    for name, n in inside.most_common(limit):
        print(f"  {100 * n / max(total, 1):5.1f}% incl  {name}")
    for name, n in leaves.most_common(10):
        print(f"  {100 * n / max(total, 1):5.1f}% leaf  {name}")


def parse_layout(text: str) -> tuple[int, int]:
    workers, _, threads = text.partition(":")
    return int(workers), int(threads or 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        action="append",
        type=parse_layout,
        help="gunicorn WORKERS:THREADS (repeatable; default 2:2)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=4000,
        help="at most this many decisions per configuration in the latency phase",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=40.0,
        help="at most this long per configuration in the latency phase",
    )
    parser.add_argument("--warmup", type=int, default=600, help="warm-up decisions per config")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--throughput-clients", type=int, default=4)
    parser.add_argument("--throughput-seconds", type=float, default=20.0)
    parser.add_argument("--client-mode", choices=("process", "thread"), default="process")
    parser.add_argument(
        "--raw-repeats", type=int, default=2, help="passes over the contexts for raw VW (each run)"
    )
    parser.add_argument("--profile-dir", help="py-spy a gunicorn worker in the throughput phase")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure a minimal Flask app with one INSERT on the same stack",
    )
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument(
        "--breakdown",
        nargs=2,
        metavar=("PROFILE", "FRAME"),
        help="only print what runs under FRAME (e.g. 'allowed (') in a --profile-dir file",
    )
    args = parser.parse_args(argv)
    if args.breakdown:
        breakdown(*args.breakdown)
        return 0
    layouts = args.server or [(2, 2)]

    info = print_header("decision latency and throughput (PostgreSQL + Redis)")
    results = {"machine": info, "args": vars(args), "layouts": []}
    action_sets = {20: make_actions(20), 100: make_actions(100)}
    bodies = make_bodies(args.requests)
    warm = make_bodies(args.warmup, seed=11)
    throughput_bodies = make_bodies(20000, seed=13)

    print(f"\nraw VW (before the HTTP phases), load {loadavg()}")
    raw_before = {n: raw_vw(bodies, acts, args.raw_repeats) for n, acts in action_sets.items()}
    _print_raw(raw_before)

    with Deployment("latency") as dep:
        print(f"\ndatabase {dep.database}, redis db {dep.redis_db}, logs {dep.log_dir}")
        for workers, threads in layouts:
            layout = {"workers": workers, "threads": threads, "load_start": loadavg()}
            print(f"\n-- hpe serve --workers {workers} --threads {threads}   load {loadavg()}")
            dep.serve(workers=workers, threads=threads)
            client = dep.client()
            configs = {}
            for n, acts in action_sets.items():
                status, body = client.call(
                    "POST",
                    f"{API}/",
                    {
                        "name": f"bench {n} actions",
                        "settings": {"actions": acts, "reward": {"wait_seconds": 86400}},
                    },
                )
                assert status == 201, (status, body)
                configs[n] = body["id"]
            # Warm up: enough requests from several connections to reach every worker and
            # thread (model load, config snapshot, SQLAlchemy statement caches).
            for config_id in configs.values():
                drive(
                    dep.url,
                    dep.key,
                    config_id,
                    warm,
                    clients=max(4, workers * threads),
                    mode="process",
                )
            gunicorn = dep.server_workers()
            for n, config_id in configs.items():
                meter = CpuMeter(
                    {"gunicorn": gunicorn, "postgres": postgres_backends(dep.database)}
                )
                out = drive(
                    dep.url,
                    dep.key,
                    config_id,
                    bodies,
                    clients=args.clients,
                    mode=args.client_mode,
                    meter=meter,
                    seconds=args.latency_seconds,
                    cycle=False,
                )
                out["cpu"] = _cpu_per_decision(meter, out)
                out["gunicorn_cpu_by_pid"] = {
                    str(p): round(s, 2) for p, s in meter.per_pid["gunicorn"].items()
                }
                layout[f"latency_{n}"] = out
                _print_run(f"latency, {n} actions, {args.clients} clients", out)
            meter = CpuMeter({"gunicorn": gunicorn, "postgres": postgres_backends(dep.database)})
            profiler = None
            if args.profile_dir:
                os.makedirs(args.profile_dir, exist_ok=True)
                busiest = gunicorn[0]
                raw_path = os.path.join(args.profile_dir, f"serve-w{workers}-t{threads}.txt")
                profiler = start_profile(busiest, int(args.throughput_seconds), raw_path)
            out = drive(
                dep.url,
                dep.key,
                configs[20],
                throughput_bodies,
                clients=args.throughput_clients,
                mode=args.client_mode,
                seconds=args.throughput_seconds,
                meter=meter,
            )
            out["throughput"] = out["count"] / out["wall"]
            out["cpu"] = _cpu_per_decision(meter, out)
            out["gunicorn_cpu_by_pid"] = {
                str(p): round(s, 2) for p, s in meter.per_pid["gunicorn"].items()
            }
            layout["throughput_20"] = out
            _print_run(f"throughput, 20 actions, {args.throughput_clients} clients", out)
            print(f"   => {out['throughput']:.0f} decisions/s")
            if profiler is not None:
                profiler.wait(timeout=args.throughput_seconds + 60)
                if os.path.exists(raw_path):
                    parts = profile_parts(raw_path)
                    layout["profile"] = parts
                    print(
                        f"   py-spy --gil of gunicorn worker {busiest} ({raw_path}, "
                        f"{parts['samples']} samples): % of request CPU samples"
                    )
                    for label, percent in parts["percent"].items():
                        print(f"     {percent:5.1f}%  {label}")
            layout["logged_decisions"] = _count_decisions(dep)
            layout["load_end"] = loadavg()
            dep.stop_server()
            results["layouts"].append(layout)
            print(f"   load at end {layout['load_end']}")
        if args.floor:
            print(
                f"\n-- floor: minimal Flask app, same gunicorn layout as the first --server, "
                f"load {loadavg()}"
            )
            results["floor"] = run_floor(dep, throughput_bodies, args)

    print(f"\nraw VW (after the HTTP phases), load {loadavg()}")
    raw_after = {n: raw_vw(bodies, acts, args.raw_repeats) for n, acts in action_sets.items()}
    _print_raw(raw_after)
    results["raw_vw"] = {"before": raw_before, "after": raw_after}

    print(
        "\n== summary (p99 ratio = HTTP p99 / raw VW Workspace.predict p99, the lower of"
        " the two raw runs' p99 = the stricter ratio)"
    )
    print(
        f"{'layout':>8} {'actions':>7} {'HTTP p50':>10} {'HTTP p99':>10} {'raw p50':>9} "
        f"{'raw p99':>9} {'p99 ratio':>9} {'p50 ratio':>9}"
    )
    for layout in results["layouts"]:
        name = f"{layout['workers']}x{layout['threads']}"
        for n in action_sets:
            http = layout[f"latency_{n}"]["latency"]
            before, after = raw_before[n]["public_predict"], raw_after[n]["public_predict"]
            raw99 = min(before["p99"], after["p99"])
            raw50 = min(before["p50"], after["p50"])
            layout[f"ratio_p99_{n}"] = http["p99"] / raw99
            layout[f"ratio_p50_{n}"] = http["p50"] / raw50
            print(
                f"{name:>8} {n:>7} {http['p50'] * 1e3:8.2f}ms {http['p99'] * 1e3:8.2f}ms "
                f"{raw50 * 1e3:7.3f}ms {raw99 * 1e3:7.3f}ms {http['p99'] / raw99:8.1f}x "
                f"{http['p50'] / raw50:8.1f}x"
            )
        t = layout["throughput_20"]
        print(
            f"{name:>8} throughput {t['throughput']:.0f} decisions/s "
            f"({args.throughput_clients} clients, {t['count']} decisions, "
            f"statuses {t['statuses']})"
        )
        cpu = t["cpu"]
        total = cpu["gunicorn_ms"] + cpu["postgres_ms"] + cpu["clients_ms"]
        print(
            f"{'':>8} CPU per decision {total:.2f} ms (gunicorn {cpu['gunicorn_ms']:.2f}, "
            f"postgres {cpu['postgres_ms']:.2f}, clients {cpu['clients_ms']:.2f}) => at most "
            f"{2000 / total:.0f} decisions/s on 2 dedicated cores"
        )
    if "floor" in results:
        for kind in ("plain", "insert"):
            t = results["floor"][f"{kind}_throughput"]
            lat = results["floor"][f"{kind}_latency"]["latency"]
            cpu = t["cpu"]
            total = cpu["gunicorn_ms"] + cpu["postgres_ms"] + cpu["clients_ms"]
            print(
                f"   floor /{kind}: latency p50 {lat['p50'] * 1e3:.2f} ms "
                f"p99 {lat['p99'] * 1e3:.2f} ms; "
                f"throughput {t['count'] / t['wall']:.0f}/s; CPU per request {total:.2f} ms "
                f"(gunicorn {cpu['gunicorn_ms']:.2f}, postgres {cpu['postgres_ms']:.2f}, "
                f"clients {cpu['clients_ms']:.2f}) => at most {2000 / total:.0f}/s on 2 cores"
            )
    print(f"load at end {loadavg()}")
    dump_json(args.json, results)
    return 0


def _cpu_per_decision(meter: CpuMeter, out: dict) -> dict:
    n = max(out["count"], 1)
    return {
        "gunicorn_ms": 1000 * meter.used["gunicorn"] / n,
        "postgres_ms": 1000 * meter.used["postgres"] / n,
        "clients_ms": 1000 * out["client_cpu"] / n,
        "wall_ms": 1000 * out["wall"] / n,
    }


def _count_decisions(dep: Deployment) -> int:
    import psycopg

    with psycopg.connect(dep.database_url) as conn:
        return conn.execute(
            'SELECT count(*) FROM "041_hyper_personalization_engine_decisions"'
        ).fetchone()[0]


def _print_run(title: str, out: dict) -> None:
    lat = out["latency"]
    cpu = out["cpu"]
    print(
        f"   {title}: n={out['count']} in {out['wall']:.1f}s ({out['count'] / out['wall']:.0f}/s) "
        f"p50 {lat['p50'] * 1e3:.2f} ms  p90 {lat['p90'] * 1e3:.2f} ms  "
        f"p99 {lat['p99'] * 1e3:.2f} ms  "
        f"max {lat['max'] * 1e3:.1f} ms  statuses {out['statuses']}  reconnects {out['reconnects']}"
    )
    print(
        f"     CPU per decision: gunicorn {cpu['gunicorn_ms']:.2f} ms, postgres "
        f"{cpu['postgres_ms']:.2f} ms, clients {cpu['clients_ms']:.2f} ms "
        f"(wall {cpu['wall_ms']:.2f} ms/decision); per gunicorn worker CPU s "
        f"{out['gunicorn_cpu_by_pid']}"
    )


def _print_raw(raw: dict) -> None:
    for n, r in raw.items():
        for key in ("public_predict", "learner_predict", "featurize_and_learner_predict"):
            s = r[key]
            print(
                f"   {n:>3} actions {key:30} n={s['n']} p50 {s['p50'] * 1e3:.3f} ms  "
                f"p99 {s['p99'] * 1e3:.3f} ms  max {s['max'] * 1e3:.2f} ms"
            )


if __name__ == "__main__":
    sys.exit(main())
