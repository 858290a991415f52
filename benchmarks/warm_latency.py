"""Figure 2 — warm latency: per-request time of the full handler path inside one process.

Measured in the target runtime's interpreter (`-I -S`, the unpacked package on `sys.path`), as
Lambda runs a warm container. Baselines: the same handler with prediction stubbed out (the I/O
floor: parsing, validation, JSON, the log line) and scikit-learn's own `predict_proba` on a 1×4
array. Figure 6 (scaling) reuses `probe` with larger batches.
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

WARM_PROBE = Path(__file__).resolve().parent / "probes" / "warm.py"


def probe(python: str, root: Path, mode: str, batches: list[int], groups: int,
          min_group_s: float) -> dict[int, Stats]:
    job = {
        "root": str(root),
        "mode": mode,
        "events": {str(b): predict_event(b) for b in batches},
        "groups": groups,
        "min_group_s": min_group_s,
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    proc = subprocess.run(
        [python, "-I", "-S", "-B", str(WARM_PROBE), json.dumps(job)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:]) or f"exit {proc.returncode}"
        raise Unavailable(f"{mode} probe failed: {tail[:400]}")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {int(b): Stats.of(v["per_call_us"]) for b, v in data.items()}


def run(ws: Workspace) -> Figure:
    fig = Figure("warm_latency", "Warm latency: one request through the handler, in-process")
    python = ws.target_python()
    groups, min_group = (5, 0.002) if ws.smoke else (60, 0.02)
    fig.notes.append(f"interpreter: {python} -I -S; {groups} groups of calls (timeit-style)")

    def measured(label: str, root: Any, mode: str) -> Row:
        try:
            return Row.measured(label, "µs", probe(python, root(), mode, [1], groups,
                                                   min_group)[1])
        except Unavailable as exc:
            status = str(exc) if str(exc).startswith("skipped") else f"unavailable: {exc}"
            return Row.missing(label, status, "µs")

    portable_root = lambda: ws.unpacked("portable")  # noqa: E731
    sklearn_root = lambda: ws.unpacked("sklearn")  # noqa: E731
    floor = measured("handler I/O, prediction stubbed (floor)", portable_root, "floor")
    portable = measured("portable handler", portable_root, "handler")
    sklearn = measured("sklearn handler", sklearn_root, "handler")
    predict = measured("scikit-learn predict_proba, 1×4 array", sklearn_root, "sklearn_predict")
    if predict.status != "ok":
        predict = _predict_in_harness(ws, groups, min_group, predict)
    portable.compare("floor", floor.median)
    portable.check("≤ 2× floor", None if portable.ratio is None else portable.ratio <= 2.0)
    if portable.status != "ok":
        portable.target = "≤ 2× floor"
    sklearn.compare("floor", floor.median)
    predict.compare("floor", floor.median)
    fig.rows = [floor, portable, sklearn, predict]
    if portable.median and predict.median:
        fig.notes.append(
            f"portable handler path / bare scikit-learn predict_proba: "
            f"{portable.median / predict.median:.2f}×"
        )
    return fig


def _predict_in_harness(ws: Workspace, groups: int, min_group: float, fallback: Row) -> Row:
    """Without the sklearn zip, scikit-learn's own predict_proba in the harness's Python."""
    import sys
    import time

    import joblib
    import numpy as np

    try:
        estimator = joblib.load(ws.stored_model().model_path)
    except Unavailable:
        return fallback
    x = np.array([[5.1, 3.5, 1.4, 0.2]])
    for _ in range(3):
        estimator.predict_proba(x)
    k = 1
    while True:
        start = time.perf_counter()
        for _ in range(k):
            estimator.predict_proba(x)
        if time.perf_counter() - start >= min_group:
            break
        k *= 2
    samples = []
    for _ in range(groups):
        start = time.perf_counter()
        for _ in range(k):
            estimator.predict_proba(x)
        samples.append((time.perf_counter() - start) / k * 1e6)
    version = ".".join(map(str, sys.version_info[:2]))
    return Row.measured(f"scikit-learn predict_proba, 1×4 array (harness Python {version})",
                        "µs", Stats.of(samples))
