"""The local target's server process: the HTTP front (`front.py`), the worker pool (`pool.py`)
and each worker's Runtime API (`runtime_api.py`), all on one event loop (`loop.py`) on the main
thread, so a request is read, handed to a warm worker (awslambdaric) and answered as API
Gateway would without crossing a thread.

Run detached by `deploy` as `python -m mlops_cli.targets.local.server --env E --root R
--ready-fd N` with the `ServerSpec` JSON on stdin, or in the foreground by `serve` through
`run()`. The ready message (one JSON line on the ready fd) carries the bound port, or the init
error that stopped the start. Standard library only besides this package's pure modules, so the
server starts fast and never fights the workers for the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from mlops_cli.targets.local.front import Front
from mlops_cli.targets.local.linelog import LineLog
from mlops_cli.targets.local.loop import Loop
from mlops_cli.targets.local.pool import InitError, WorkerPool
from mlops_cli.targets.local.spec import ServerSpec

# How late a line written outside a request's path (a worker exit, a replacement) may reach
# the log; a request's own lines are flushed before its event and before its answer.
LOG_FLUSH_S = 0.05


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so shutdown runs the same path as Ctrl-C (a
    BaseException: the loop's guard around callbacks must not swallow it)."""


def run(
    spec: ServerSpec,
    on_ready: Callable[[dict[str, Any]], None],
    log: LineLog,
) -> int:
    """Bind, start the workers, report readiness, serve until SIGINT/SIGTERM. Returns the exit
    status; on a start failure `on_ready` gets `{"ok": False, "error": ...}` instead."""

    def _terminate(signum: int, frame: Any) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, _terminate)
    loop = Loop(on_error=log.write)
    pool = WorkerPool(spec, log, loop)
    front: Front | None = None
    try:
        try:
            front = Front(loop, spec.port, pool, spec, log)
        except OSError as exc:
            on_ready({"ok": False, "error": f"cannot listen on 127.0.0.1:{spec.port}: "
                      f"{exc.strerror or exc}"})
            return 1
        try:
            pool.start()
        except InitError as exc:
            log.write(f"init failed: {exc}", flush=True)
            on_ready({"ok": False, "error": str(exc), "init_error": exc.info})
            return 1
        log.write(f"listening on http://127.0.0.1:{front.port} (pid {os.getpid()}, "
                  f"env {spec.env})", flush=True)
        on_ready({"ok": True, "port": front.port, "pid": os.getpid(), "workers": pool.pids(),
                  "python_version": pool.python_version})
        front.serve()
        log.buffered = True  # see LineLog: two writes per request instead of four
        _flush_every(loop, log)
        loop.run()
    except (KeyboardInterrupt, _Terminated):
        log.write("stopping", flush=True)
    finally:
        log.buffered = False
        log.flush()
        if front is not None:
            front.close()
        pool.close()
        loop.close()
        signal.signal(signal.SIGTERM, previous)
    return 0


def _flush_every(loop: Loop, log: LineLog) -> None:
    log.flush()
    loop.call_later(LOG_FLUSH_S, lambda: _flush_every(loop, log))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_cli.targets.local.server")
    parser.add_argument("--env", required=True, help="for `ps`: which env this server serves")
    parser.add_argument("--root", required=True, help="the unpacked package (also in the spec)")
    parser.add_argument("--ready-fd", type=int, required=True)
    args = parser.parse_args(argv)
    spec = ServerSpec.from_json(sys.stdin.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    ready = os.fdopen(args.ready_fd, "w")

    def on_ready(message: dict[str, Any]) -> None:
        try:
            ready.write(json.dumps(message) + "\n")
            ready.close()
        except OSError:
            pass  # the deploying CLI gave up waiting; keep serving (or exiting) regardless

    return run(spec, on_ready, LineLog(sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
