"""Part of figure 5 — a local worker's cold start: spawn → its first `GET /next`.

The worker is the pool's own (`WorkerPool` with one worker: the env's interpreter running
awslambdaric, which imports the portable zip's handler and so loads the model) and the time is
the pool's own Init Duration, from just before the spawn to the first `/next` on its Runtime API.
The baseline is a bare interpreter started the same way (`-I -S`, same environment shape) that
only connects to a Runtime API socket and sends `GET /next` — the floor of any runtime client.
Runs alternate so machine noise falls on both alike.

Both are spawned from a process of the local server's size (`python -m
benchmarks.worker_cold_start`, which imports what the server imports), not from the benchmark
process: a worker is started with fork (its death-with-the-server hook runs between fork and
exec), and a fork costs in proportion to its parent's memory; the benchmark process, with
scikit-learn loaded, would add milliseconds a real server never pays.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Row, Stats, Unavailable

BARE = (
    "import os,socket;host,port=os.environ['AWS_LAMBDA_RUNTIME_API'].split(':');"
    "s=socket.create_connection((host,int(port)));"
    "s.sendall(b'GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n');"
    "s.recv(1)"
)


class _Stopwatch:
    """A sandbox for one Runtime API that only notes when `/next` arrives."""

    def __init__(self) -> None:
        self.arrived = False
        self.at = 0.0

    def next_requested(self) -> None:
        self.at = time.perf_counter()
        self.arrived = True

    def invocation_started(self, invocation: Any) -> None:
        pass

    def init_failed(self, info: dict[str, Any]) -> None:
        self.arrived = True

    def connection_lost(self) -> None:
        pass


def _bare_once(python: str, env: dict[str, str]) -> float:
    from mlops_cli.targets.local.loop import Loop
    from mlops_cli.targets.local.runtime_api import RuntimeApi

    watch = _Stopwatch()
    loop = Loop()
    api = RuntimeApi(loop, "arn:aws:lambda:us-east-1:123456789012:function:bench", watch)
    started = time.perf_counter()
    proc = subprocess.Popen([python, "-I", "-S", "-c", BARE], env={
        **env, "AWS_LAMBDA_RUNTIME_API": api.address}, stdin=subprocess.DEVNULL)
    try:
        if not loop.run_until(lambda: watch.arrived, 30):
            raise Unavailable("the bare interpreter never reached the Runtime API")
        return (watch.at - started) * 1000
    finally:
        api.close()
        loop.close()
        proc.kill()
        proc.wait()


def _worker_once(spec: Any) -> float:
    from mlops_cli.targets.local.linelog import LineLog
    from mlops_cli.targets.local.pool import InitError, WorkerPool

    pool = WorkerPool(spec, LineLog(io.StringIO()))
    try:
        pool.start()
    except InitError as exc:
        raise Unavailable(f"the worker failed to start: {exc}") from None
    try:
        return pool.init_durations_ms()[0]
    finally:
        pool.close()
        pool.loop.close()


def measure(spec: Any, runs: int) -> tuple[list[float], list[float]]:
    """(bare, worker) cold starts in ms, `runs` of each after one warm-up each, alternating."""
    from dataclasses import replace

    from mlops_cli.targets.local.spec import worker_environment

    one = replace(spec, workers=1)
    env = worker_environment(one, "bench", "127.0.0.1:9")
    env.pop("AWS_LAMBDA_RUNTIME_API")
    _bare_once(one.python, env)
    _worker_once(one)
    bare: list[float] = []
    worker: list[float] = []
    for _ in range(runs):
        bare.append(_bare_once(one.python, env))
        worker.append(_worker_once(one))
    return bare, worker


def rows(spec: Any, runs: int) -> list[Row]:
    """Worker cold start vs the bare interpreter, measured in a server-sized process."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker_cold_start", str(runs)],
        input=spec.to_json(), capture_output=True, text=True, timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    if proc.returncode != 0:
        raise Unavailable((proc.stderr.strip().splitlines() or ["no output"])[-1])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "error" in result:
        raise Unavailable(result["error"])
    bare, worker = result["bare"], result["worker"]
    floor = Row.measured("bare interpreter: spawn → first /next", "ms", Stats.of(bare))
    got = Row.measured(
        f"worker (awslambdaric + portable zip, Python {spec.python_version}): "
        "spawn → first /next", "ms", Stats.of(worker),
    ).compare("bare", floor.median)
    return [floor, got]


def main() -> None:
    """In a process that imports what the local server imports: the spec on stdin, runs in argv."""
    from mlops_cli.targets.local.spec import ServerSpec

    spec = ServerSpec.from_json(sys.stdin.read())
    try:
        bare, worker = measure(spec, int(sys.argv[1]))
    except Unavailable as exc:
        print(json.dumps({"error": str(exc)}))
        return
    print(json.dumps({"bare": bare, "worker": worker}))


if __name__ == "__main__":
    main()
