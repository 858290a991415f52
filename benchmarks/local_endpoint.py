"""Figure 5 — the local endpoint under keep-alive load: throughput, p50 and p99 latency for 1, 8
and 32 concurrent clients, against a plain `http.server` echo (the floor of any stdlib HTTP front),
and a worker's cold start (awslambdaric: spawn → first `/next`) against a bare interpreter
(`worker_cold_start.py`).

Clients are threads in one or two load processes (`probes/loadgen.py`), each holding one reused
`http.client` connection. Everything — clients, the front and its workers — shares the machine's
cores, so the client's own cost is part of every figure, baseline included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.common import Figure, Row, Stats, Unavailable, percentile
from benchmarks.events import SETOSA
from benchmarks.workspace import Workspace

PROBES = Path(__file__).resolve().parent / "probes"
CLIENTS = [1, 8, 32]
BODY = json.dumps({"features": SETOSA})


def load(port: int, path: str, clients: int, total: int, smoke: bool) -> dict[str, Any]:
    procs = 1 if clients == 1 else 2
    threads = clients // procs
    per_thread = max(2, total // clients)
    start_ns = time.monotonic_ns() + int((0.4 if smoke else 1.0) * 1e9)
    job = {"port": port, "path": path, "body": BODY, "threads": threads,
           "requests": per_thread, "warmup": 2, "start_ns": start_ns}
    running = [
        subprocess.Popen([sys.executable, "-I", "-S", str(PROBES / "loadgen.py"), json.dumps(job)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(procs)
    ]
    latencies: list[float] = []
    errors, end_ns, first_error, begin_ns = 0, 0, None, None
    for proc in running:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise Unavailable(f"load generator failed: {err.strip().splitlines()[-1:]}")
        data = json.loads(out.strip().splitlines()[-1])
        latencies += data["latencies_us"]
        errors += data["errors"]
        first_error = first_error or data["first_error"]
        end_ns = max(end_ns, data["end_ns"])
        begin_ns = min(begin_ns or data["begin_ns"], data["begin_ns"])
    # from the first measured request (warm-up may overrun start_ns) to the last response
    seconds = max(end_ns - (begin_ns or start_ns), 1) / 1e9
    ms = [v / 1000.0 for v in latencies]
    return {"throughput": len(ms) / seconds, "latency": Stats.of(ms),
            "p99": percentile(ms, 99), "errors": errors, "first_error": first_error,
            "requests": len(ms), "load_processes": procs}


def start_echo() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(PROBES / "echo_server.py")],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise Unavailable("the echo server did not start")
    return proc, int(json.loads(line)["port"])


def run(ws: Workspace) -> Figure:
    fig = Figure("local_endpoint", "Local endpoint: keep-alive clients on 127.0.0.1")
    total = 30 if ws.smoke else int(os.environ.get("IRIS_BENCH_LOCAL_REQUESTS") or 3000)
    try:
        from mlops_cli.targets.local import deploy, teardown

        cfg = ws.cfg("local")
        info = ws.package("portable").info
    except Exception as exc:  # the local target not there yet
        fig.status = f"unavailable: {exc}"
        fig.rows = [Row.missing(f"local, {c} clients", fig.status) for c in CLIENTS]
        return fig
    echo, echo_port = start_echo()
    try:
        try:
            result = deploy(cfg, ws.store, info, ws.reporter())
            port = urlsplit(str(result["url"])).port
            if not port:
                raise Unavailable(f"deploy returned no usable url: {result}")
        except Exception as exc:
            fig.status = f"unavailable: {exc}"
            fig.rows = [Row.missing(f"local, {c} clients", fig.status) for c in CLIENTS]
            return fig
        fig.notes.append(
            f"local server: portable zip, {cfg.settings.local.workers} workers, "
            f"Python {result.get('python_version')}; baseline: ThreadingHTTPServer echo; "
            f"{total} requests per level; clients and servers share {_cores()} cores"
        )
        try:
            fig.rows += _cold_start_rows(ws, cfg, info)
            for clients in CLIENTS:
                base = load(echo_port, "/", clients, total, ws.smoke)
                got = load(port, "/predict", clients, total, ws.smoke)
                fig.rows += _rows(clients, got, base)
                for name, r in (("local", got), ("echo", base)):
                    if r["errors"]:
                        fig.notes.append(f"{name}, {clients} clients: {r['errors']} failed "
                                         f"requests (first: {r['first_error']})")
        finally:
            teardown(cfg, ws.store, ws.reporter())
    finally:
        echo.kill()
        echo.wait()
    return fig


def _cold_start_rows(ws: Workspace, cfg: Any, info: Any) -> list[Row]:
    from benchmarks.worker_cold_start import rows
    from mlops_cli.targets.local.deploy import build_spec, resolve_python
    from mlops_cli.targets.local.ric import ensure_client

    record = ws.store.read_record(cfg.env) or {}
    python = resolve_python(cfg, info.runtime, ws.reporter())
    client = ensure_client(python.version, ws.reporter())
    spec = build_spec(cfg, info, Path(record["root"]), python, 0, runtime_client=client)
    try:
        return rows(spec, 3 if ws.smoke else 20)
    except Unavailable as exc:
        return [Row.missing("worker cold start: spawn → first /next", f"unavailable: {exc}",
                            "ms")]


def _cores() -> int:
    return os.cpu_count() or 1


def _rows(clients: int, got: dict[str, Any], base: dict[str, Any]) -> list[Row]:
    at8 = clients == 8
    thr = Row(f"local, {clients} clients: throughput", "req/s", got["throughput"],
              n=got["requests"], extra={"load_processes": got["load_processes"],
                                        "errors": got["errors"]})
    thr.compare("echo", base["throughput"])
    if at8:
        thr.check("≥ 1,000 req/s and ≥ 0.4× echo",
                  got["throughput"] >= 1000 and (thr.ratio or 0) >= 0.4)
    p50 = Row.measured(f"local, {clients} clients: latency p50", "ms", got["latency"])
    p50.compare("echo", base["latency"].median)
    p99 = Row(f"local, {clients} clients: latency p99", "ms", got["p99"], n=got["requests"])
    p99.compare("echo", base["p99"])
    if at8:
        p99.check("≤ 10 ms", got["p99"] <= 10.0)
    return [thr, p50, p99]
