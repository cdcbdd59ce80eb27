"""Closed-loop HTTP load from client processes, for the decision benchmarks.

Each client is its own process (no client GIL between them) with one keep-alive
``http.client`` connection; it sends its next request as soon as the answer to the last
one is read, for a fixed time, timing each request from the first byte sent to the last
byte read. Processes are forked, so a payload list built once is shared.
"""

from __future__ import annotations

import http.client
import multiprocessing
import time
import urllib.parse
from collections import Counter

from bench.common import CpuMeter, percentile, summarize


def _client(url, path, headers, payloads, offset, seconds, barrier, results):
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    statuses: Counter = Counter()
    reconnects = 0

    def one(payload):
        nonlocal conn, reconnects
        for attempt in range(3):
            try:
                conn.request("POST", path, payload, headers)
                response = conn.getresponse()
                response.read()
                if response.will_close:
                    conn.close()
                    reconnects += 1
                return response.status
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
                reconnects += 1
                if attempt == 2:
                    raise
        raise AssertionError

    one(payloads[offset % len(payloads)])  # connected before the clock starts
    barrier.wait()
    perf = time.perf_counter
    latencies = []
    cpu0 = time.process_time()
    started = perf()
    end = started + seconds
    i = offset
    while True:
        t0 = perf()
        status = one(payloads[i % len(payloads)])
        t1 = perf()
        latencies.append(t1 - t0)
        statuses[status] += 1
        i += 1
        if t1 >= end:
            break
    results.put(
        {
            "latencies": latencies,
            "elapsed": perf() - started,
            "statuses": dict(statuses),
            "reconnects": reconnects,
            "cpu": time.process_time() - cpu0,
        }
    )
    conn.close()


def run(
    url: str,
    path: str,
    payloads: list[bytes],
    *,
    headers: dict[str, str],
    clients: int,
    seconds: float,
    meter_pids: dict[str, list[int]] | None = None,
) -> dict:
    """``clients`` processes posting ``payloads`` (each starting at its own offset) for
    ``seconds``: latency percentiles, requests/s, statuses, and CPU seconds per request of
    the processes in ``meter_pids`` (by role) and of the clients."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(clients + 1), ctx.Queue()
    step = max(1, len(payloads) // clients)
    procs = [
        ctx.Process(
            target=_client,
            args=(url, path, headers, payloads, i * step, seconds, barrier, results),
        )
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    barrier.wait()
    meter = CpuMeter(meter_pids or {}).start()
    t0 = time.perf_counter()
    outs = [results.get(timeout=seconds + 300) for _ in procs]
    wall = time.perf_counter() - t0
    meter.stop()
    for proc in procs:
        proc.join()
    latencies = [x for out in outs for x in out["latencies"]]
    statuses: Counter = Counter()
    for out in outs:
        statuses.update(out["statuses"])
    count = len(latencies)
    latency = summarize(latencies)
    latency["p95"] = percentile(latencies, 95) if latencies else float("nan")
    cpu_ms = {role: 1000 * used / max(count, 1) for role, used in meter.used.items()}
    cpu_ms["clients"] = 1000 * sum(out["cpu"] for out in outs) / max(count, 1)
    return {
        "clients": clients,
        "count": count,
        "wall": wall,
        "per_second": count / wall,
        "latency": latency,
        "statuses": dict(statuses),
        "reconnects": sum(out["reconnects"] for out in outs),
        "cpu_ms_per_request": cpu_ms,
    }


def describe(run_result: dict) -> str:
    """One line: rate, percentiles, statuses, CPU per request."""
    lat = run_result["latency"]
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in run_result["cpu_ms_per_request"].items())
    return (
        f"{run_result['per_second']:7.0f}/s  n={run_result['count']:<6} "
        f"p50 {lat['p50'] * 1e3:6.2f} ms  p95 {lat['p95'] * 1e3:6.2f} ms  "
        f"p99 {lat['p99'] * 1e3:6.2f} ms  max {lat['max'] * 1e3:6.1f} ms  "
        f"statuses {run_result['statuses']}  CPU ms/request: {cpu}"
    )
