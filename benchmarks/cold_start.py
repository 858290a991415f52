"""Figure 1 — cold start: exec of a fresh `python -I -S` to the first prediction returned.

Each run is a new process of the target runtime's interpreter with only the unpacked package on
`sys.path` (`-I -S`: no site-packages, no environment; `-B`: nothing written, so a package
without .pyc stays cold run after run). The child stamps CLOCK_MONOTONIC — the same clock in
every process on Linux — right after `lambda_handler` returns, so the figure excludes interpreter
shutdown; the time to process exit and the child's peak RSS (from wait4) are kept as extras.
Variants are interleaved round-robin so machine noise falls on all of them alike.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.common import Figure, Row, Stats, Unavailable
from benchmarks.events import predict_event
from benchmarks.workspace import Workspace

STAMP = "BENCH_T="
SPAWNER = Path(__file__).resolve().parent / "probes" / "spawner.py"
BARE = """\
from time import monotonic_ns
import sys
sys.stderr.write("%s%d\\n" % ({stamp!r}, monotonic_ns()))
"""
DRIVER = """\
import sys
sys.path.insert(0, {root!r})
from time import monotonic_ns
from {module} import lambda_handler
response = lambda_handler({event!r}, None)
t = monotonic_ns()
if type(response) is not dict or response.get("statusCode") != 200:
    sys.exit("unexpected response: %r" % (response,))
sys.stderr.write("%s%d\\n" % ({stamp!r}, t))
"""


def driver(root: Path | None, module: str | None) -> str:
    if root is None or module is None:
        return BARE.format(stamp=STAMP)
    return DRIVER.format(root=str(root), module=module, event=predict_event(1), stamp=STAMP)


def child_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}


class Spawner:
    """A small launcher process (probes/spawner.py) that starts and reaps the cold processes."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.proc = subprocess.Popen(
            [python, "-I", "-S", str(SPAWNER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(),
        )

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def run_once(self, code: str) -> dict[str, float]:
        """One cold process: ms to the stamp, ms to exit, peak RSS in MiB."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        argv = [self.python, "-I", "-S", "-B", "-c", code]
        self.proc.stdin.write(json.dumps({"argv": argv, "env": child_env()}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise Unavailable("the launcher process died")
        result = json.loads(line)
        text = result["stderr"]
        stamps = [ln for ln in text.splitlines() if ln.startswith(STAMP)]
        if result["exit"] != 0 or not stamps:
            tail = " | ".join(text.strip().splitlines()[-3:]) or f"exit {result['exit']}"
            raise Unavailable(f"the cold process failed: {tail[:400]}")
        stamp = int(stamps[-1][len(STAMP):])
        return {
            "first_ms": (stamp - result["start_ns"]) / 1e6,
            "exit_ms": (result["end_ns"] - result["start_ns"]) / 1e6,
            "rss_mib": result["maxrss_kb"] / 1024.0,
        }


def run(ws: Workspace) -> Figure:
    fig = Figure("cold_start", "Cold start: exec → first prediction (python -I -S, fresh process)")
    smoke = ws.smoke
    python = ws.target_python()
    fig.notes.append(
        f"interpreter: {python} -I -S -B; event: API Gateway HTTP API v2 POST /predict"
    )

    variants: dict[str, tuple[str, int]] = {}  # name -> (driver code, runs)
    missing: dict[str, str] = {}
    base_runs = 3 if smoke else 40
    variants["bare"] = (driver(None, None), base_runs)

    def add(name: str, make: Any, module: str, runs: int) -> None:
        try:
            variants[name] = (driver(make(), module), runs)
        except Unavailable as exc:
            missing[name] = str(exc)

    add("hello", ws.hello, "hello_handler", base_runs)
    add("portable", lambda: ws.unpacked("portable"), "iris_runtime.handler", base_runs)
    add("sklearn", lambda: ws.unpacked("sklearn"), "iris_runtime.handler", 3 if smoke else 15)
    add("naive", ws.naive, "lambda_function", 3 if smoke else 10)

    samples: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    spawner = Spawner(python)
    try:
        for name, (code, _) in list(variants.items()):  # one discarded warm-up (page cache)
            try:
                spawner.run_once(code)
            except Unavailable as exc:
                missing[name] = str(exc)
                del variants[name], samples[name]
        rounds = max((runs for _, runs in variants.values()), default=0)
        for i in range(rounds):
            for name, (code, runs) in variants.items():
                if i < runs:
                    samples[name].append(spawner.run_once(code))
    finally:
        spawner.close()

    stats = {n: Stats.of([s["first_ms"] for s in runs]) for n, runs in samples.items() if runs}

    def row(name: str, label: str) -> Row:
        if name not in stats:
            return Row.missing(label, missing.get(name, "unavailable"), "ms")
        runs = samples[name]
        extra = {
            "exit_ms_median": Stats.of([s["exit_ms"] for s in runs]).median,
            "peak_rss_mib_median": Stats.of([s["rss_mib"] for s in runs]).median,
        }
        return Row.measured(label, "ms", stats[name], extra=extra)

    def median(name: str) -> float | None:
        return stats[name].median if name in stats else None

    bare = row("bare", "bare interpreter (floor)")
    hello = row("hello", "hello handler, stdlib only (floor)").compare("bare", median("bare"))
    portable = row("portable", "portable zip").compare("hello", median("hello"))
    if portable.ratio is not None:
        portable.check("≤ 1.25× hello", portable.ratio <= 1.25)
    else:
        portable.target = "≤ 1.25× hello"
    sklearn = row("sklearn", "sklearn zip (slimmed, .pyc)").compare("naive", median("naive"))
    if sklearn.ratio is not None:
        sklearn.check("≤ 0.45× naive", sklearn.ratio <= 0.45)
    else:
        sklearn.target = "≤ 0.45× naive"
    naive = row("naive", "naive package (pip --target, no .pyc)").compare("hello", median("hello"))
    fig.rows = [bare, hello, portable, sklearn, naive]
    for r in fig.rows:
        if r.status == "ok":
            fig.notes.append(
                f"{r.label}: to exit {r.extra['exit_ms_median']:.1f} ms, "
                f"peak RSS {r.extra['peak_rss_mib_median']:.1f} MiB (medians)"
            )
    return fig
