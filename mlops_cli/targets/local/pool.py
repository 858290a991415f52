"""Warm worker processes, one invocation at a time each, like Lambda execution environments.

Each worker is the env's interpreter running AWS's runtime interface client (`awslambdaric`)
against its own Runtime API (`runtime_api.py`) on 127.0.0.1: the handler is imported, called,
and its errors reported by AWS's code. The pool plays Lambda's platform around it: it hands out
invocations, writes the START/END/REPORT lines, and owns every failure an instance can have —
an init error stops the start, a handler past its timeout is killed and replaced, a worker that
dies is replaced. A request never hangs: every invocation and every wait for a worker has a
timer on the server's event loop (`loop.py`), which runs all of this on one thread; a worker's
exit is a readable pidfd on that loop, not a thread blocked in `wait()`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_cli.targets.local import spawn
from mlops_cli.targets.local.linelog import LineLog
from mlops_cli.targets.local.loop import Loop, Timer
from mlops_cli.targets.local.runtime_api import Invocation, RuntimeApi, new_trace_id
from mlops_cli.targets.local.spec import ServerSpec, worker_environment

__all__ = ["GATEWAY_TIMEOUT_S", "InitError", "LineLog", "Outcome", "WorkerPool"]
# json.dumps with separators builds a new encoder per call; one is enough (same output)
_encode_event = json.JSONEncoder(separators=(",", ":")).encode

# API Gateway's integration timeout (HTTP APIs: 30 s at most); a function allowed longer is cut
# off by the gateway while Lambda lets it run on.
GATEWAY_TIMEOUT_S = 30.0
# How long a worker that closed its Runtime API connection mid-invocation gets to exit (its
# exit status then goes in the log) before it is called lost and killed.
LOST_GRACE_S = 5.0
# `python -m awslambdaric <handler>` as Lambda's bootstrap runs it, with the paths Lambda gives:
# the function first, the runtime (client) after it. Each worker has a session of its own and
# dies with the server (`spawn.py`); the pool decides when workers stop (SIGINT is ignored for
# where `spawn.py` must leave them in the server's process group). One departure: on
# python3.12+ the client waits for `/next` in a thread of a ThreadPoolExecutor built per
# invocation (so that Lambda's main thread can take signals meanwhile); measured here that
# costs ~0.9 ms of CPU per invocation, more than the rest of the client, and changes nothing a
# handler can see, since the workers are never signalled while they wait (the pool stops them
# with SIGTERM's default action), so the client polls directly. AWS_EXECUTION_ENV stays the
# runtime's, which the marshaller keys on.
LAUNCH = (
    "import os,signal,sys;signal.signal(signal.SIGINT,signal.SIG_IGN);del sys.argv[1];"
    "sys.path[:0]=[os.environ['LAMBDA_TASK_ROOT'],os.environ['LAMBDA_RUNTIME_DIR']];"
    "from awslambdaric import lambda_config;"
    "lambda_config.LambdaConfigProvider.SUPPORTED_THREADPOLLING_ENVS=frozenset();"
    "import runpy;runpy.run_module('awslambdaric',run_name='__main__',alter_sys=True)"
)


class InitError(Exception):
    """The function failed its cold start; `info` holds Lambda's errorType and errorMessage."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        super().__init__(f"{info.get('errorType', 'Runtime.Unknown')}: {info.get('errorMessage')}")


@dataclass(frozen=True)
class Outcome:
    kind: str  # "result" | "error" | "timeout" | "died" | "gateway_timeout" | "unavailable"
    value: Any = None


Respond = Callable[[Outcome], None]


def max_memory_mb(pid: int) -> int:
    """Peak RSS since exec (VmHWM): what Lambda reports as Max Memory Used."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return math.ceil(int(line.split()[1]) / 1024)
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Worker:
    """One execution environment: the client process and the Runtime API it talks to."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        spec = pool.spec
        self.pool = pool
        self.index = index
        self.ready = False  # first /next seen
        self.init_error: dict[str, Any] | None = None
        self.init_ms: float | None = None
        self.exit_code: int | None = None
        self.retired = False
        self.respond: Respond | None = None  # who waits for the current invocation
        self.retry_delay = 1.0  # a replacement's wait before the next try, if it fails
        self._peak, self._peak_read = 0, 0.0
        self._reported = False
        self._timers: list[Timer] = []
        self.api = RuntimeApi(pool.loop, spec.function_arn, self)
        day = time.strftime("%Y/%m/%d", time.gmtime())
        stream = f"{day}/[$LATEST]{os.urandom(16).hex()}"
        out = pool.log.fileno()
        self._spawned = time.perf_counter()
        self.proc = subprocess.Popen(
            [spec.python, "-I", "-S", "-c", LAUNCH, spec.root, spec.handler],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=worker_environment(spec, stream, self.api.address),
            cwd=spec.root,
            **spawn.popen_options(),
        )
        spawn.started(self.proc.pid)
        self._pidfd = os.pidfd_open(self.proc.pid)
        pool.loop.add(self._pidfd, 1, self._exited)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def dead(self) -> bool:
        return self.exit_code is not None

    @property
    def settled(self) -> bool:
        """Its cold start is over: ready, failed, or gone."""
        return self.ready or self.init_error is not None or self.dead

    # the Runtime API's callbacks -------------------------------------------------------------
    def next_requested(self) -> None:
        if self.init_ms is None:
            self.init_ms = (time.perf_counter() - self._spawned) * 1000
            self.ready = True
        self.pool.idle(self)

    def invocation_started(self, invocation: Invocation) -> None:
        log = self.pool.log
        log.write(f"START RequestId: {invocation.request_id} Version: $LATEST")
        log.flush()  # before the worker has the event: its output follows the START line

    def init_failed(self, info: dict[str, Any]) -> None:
        self.init_error = info

    def connection_lost(self) -> None:
        invocation = self.api.current
        if invocation is not None and not invocation.done and not self.api.connected():
            # the worker closed its socket: its exit settles it as a crash, unless it lingers
            self.later(LOST_GRACE_S, lambda: self._lost(invocation))

    def _lost(self, invocation: Invocation) -> None:
        if invocation.complete("died", None):
            self.pool.retire(self, "lost its Runtime API connection")

    # invocations ------------------------------------------------------------------------------
    def later(self, delay: float, fn: Callable[[], None]) -> None:
        self._timers.append(self.pool.loop.call_later(delay, fn))

    def finished(self, invocation: Invocation) -> None:
        """`Invocation.on_done`: Lambda's END and REPORT lines, then the caller's answer."""
        for timer in self._timers:
            self.pool.loop.cancel(timer)
        self._timers.clear()
        status = {"timeout": "timeout", "died": "error"}.get(invocation.kind or "", "")
        self.report(invocation, status)
        respond, self.respond = self.respond, None
        if respond is not None:
            respond(_outcome(invocation, float(self.pool.spec.timeout_s)))

    def report(self, invocation: Invocation, status: str = "") -> None:
        rid = invocation.request_id
        line = (
            f"REPORT RequestId: {rid}\tDuration: {invocation.duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(invocation.duration_ms))} ms\t"
            f"Memory Size: {self.pool.spec.memory_mb} MB\t"
            f"Max Memory Used: {self._peak_mb()} MB"
        )
        if self.init_ms is not None and not self._reported:
            self._reported = True
            line += f"\tInit Duration: {self.init_ms:.2f} ms"
        if status:
            line += f"\tStatus: {status}"
        error = invocation.body if invocation.kind == "error" else None
        if isinstance(error, dict) and str(error.get("errorType")).startswith("Function."):
            # an error of the platform's, not the runtime's: Lambda logs it itself
            self.pool.log.write(f"[ERROR] {error['errorType']}: {error.get('errorMessage')}")
        self.pool.log.write(f"END RequestId: {rid}", line)

    def _peak_mb(self) -> int:
        """VmHWM, re-read at most every 0.2 s: the kernel formats all of /proc/PID/status for
        it, which would otherwise be a large share of the server's per-request work."""
        now = time.monotonic()
        if now - self._peak_read > 0.2:
            self._peak_read = now
            self._peak = max(self._peak, max_memory_mb(self.pid))
        return self._peak

    # lifecycle -------------------------------------------------------------------------------
    def _exited(self, mask: int = 0) -> None:
        """The pidfd is readable: the process is gone. Reap it and settle what it held."""
        if self._pidfd < 0:
            return
        self.pool.loop.remove(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        code = self.proc.wait()
        self.exit_code = code
        invocation = self.api.current
        if invocation is not None and not invocation.done:
            self.pool.log.write(
                f"RequestId: {invocation.request_id} Error: Runtime exited with error: "
                f"exit status {code}\nRuntime.ExitError"
            )
            invocation.complete("died", code)
        self.api.close()
        if not self.retired:
            self.pool.died(self, code)

    def kill(self) -> int | None:
        """SIGKILL and reap (SIGKILL is not refused: the wait is milliseconds)."""
        self.retired = True
        with contextlib.suppress(OSError):
            self.proc.kill()
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None
        self._exited()
        return code

    def stop(self, grace: float) -> None:
        """SIGTERM (as Lambda's shutdown phase sends it); SIGKILL after `grace`."""
        self.retired = True
        with contextlib.suppress(OSError):
            self.proc.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._exited()


def _outcome(invocation: Invocation, timeout_s: float) -> Outcome:
    if invocation.kind == "result":
        return Outcome("result", invocation.body)
    if invocation.kind == "timeout":
        return Outcome("timeout", timeout_s)
    if invocation.kind == "died":
        return Outcome("died", invocation.body)
    return Outcome("error", invocation.body)


class WorkerPool:
    def __init__(self, spec: ServerSpec, log: LineLog, loop: Loop | None = None) -> None:
        self.spec = spec
        self.log = log
        self.loop = loop or Loop(on_error=log.write)
        self._idle: deque[Worker] = deque()
        self._waiting: deque[tuple[bytes, str, Respond, float]] = deque()
        self._all: set[Worker] = set()
        self._closed = False
        self._counter = 0
        self._starting = False
        self._expiry: Timer | None = None
        self.python_version: str | None = spec.python_version or None

    # lifecycle --------------------------------------------------------------------------------
    def _spawn(self) -> Worker:
        if self._closed:
            raise RuntimeError("the pool is closed")
        self._counter += 1
        worker = Worker(self, self._counter)
        self._all.add(worker)
        return worker

    def _init_error(self, worker: Worker) -> InitError | None:
        """Why `worker`'s cold start failed, or None when it is ready."""
        if worker.init_error is not None:
            return InitError(worker.init_error)
        if worker.dead:
            return InitError({
                "errorType": "Runtime.ExitError",
                "errorMessage": f"Runtime exited with error: exit status {worker.exit_code} "
                                "(during init, without reporting an init error; see the log)",
            })
        if not worker.ready:
            return InitError({
                "errorType": "Runtime.InitTimeout",
                "errorMessage": (
                    f"the handler did not finish importing within "
                    f"{self.spec.init_timeout_s:.0f} s"
                ),
            })
        return None

    def start(self) -> None:
        """Start every worker and wait for all cold starts; the first init error stops it all."""
        self._starting = True
        try:
            workers = [self._spawn() for _ in range(self.spec.workers)]
            self.loop.run_until(
                lambda: all(w.settled for w in workers)
                or any(w.init_error is not None or w.dead for w in workers),
                self.spec.init_timeout_s,
            )
            # a worker that failed explains more than one still importing when it did
            for worker in sorted(workers, key=lambda w: not (w.init_error or w.dead)):
                error = self._init_error(worker)
                if error is not None:
                    raise error
        except InitError:
            self.close()
            raise
        finally:
            self._starting = False
        self.log.write(
            f"{len(workers)} worker(s) ready under awslambdaric: Python {self.python_version} "
            f"pids {', '.join(str(w.pid) for w in workers)}", flush=True,
        )

    def init_durations_ms(self) -> list[float]:
        """Each live worker's cold start, spawn to first `/next` (its REPORT's Init Duration)."""
        return [w.init_ms for w in self._all if w.init_ms is not None]

    def pids(self) -> list[int]:
        return sorted(w.pid for w in self._all)

    def close(self, grace: float = 1.0) -> None:
        self._closed = True
        workers = list(self._all)
        self._all.clear()
        for worker in workers:
            worker.stop(grace)
        while self._waiting:
            self._waiting.popleft()[2](Outcome("unavailable"))

    def died(self, worker: Worker, code: int | None) -> None:
        """A worker exited on its own (crash, kill, failed cold start): replace it."""
        self._all.discard(worker)
        if self._closed or self._starting:
            return  # start() reads every worker's fate itself
        if not worker.ready:
            self._refill_failed(worker)
            return
        self.log.write(f"worker pid {worker.pid} exited (exit status {code}); starting a new one")
        self._refill()

    def retire(self, worker: Worker, why: str) -> None:
        code = worker.kill()
        self._all.discard(worker)
        self.log.write(f"worker pid {worker.pid} {why} (exit status {code}); starting a new one")
        self._refill()

    def _refill(self, delay: float = 1.0) -> None:
        """Start a replacement; one whose cold start fails is retried after `delay` (doubling)."""
        if self._closed:
            return
        try:
            worker = self._spawn()
        except (RuntimeError, OSError) as exc:
            self.log.write(f"cannot start a worker: {exc}")
            return
        worker.retry_delay = delay

        def init_budget_spent() -> None:
            if not worker.settled:
                worker.kill()
                self._all.discard(worker)
                self._refill_failed(worker)

        worker.later(self.spec.init_timeout_s, init_budget_spent)

    def _refill_failed(self, worker: Worker) -> None:
        error = self._init_error(worker)
        self.log.write(f"replacement worker failed to start: {error}; retrying")
        delay = worker.retry_delay
        self.loop.call_later(delay, lambda: self._refill(min(delay * 2, 30.0)))

    # requests ---------------------------------------------------------------------------------
    def idle(self, worker: Worker) -> None:
        """A worker asks for its next event: give it the oldest waiting request, if any."""
        if self._closed or worker.retired:
            return
        now = time.monotonic()
        while self._waiting:
            payload, request_id, respond, deadline = self._waiting.popleft()
            if deadline < now:
                respond(Outcome("unavailable"))
                continue
            self._dispatch(worker, payload, request_id, respond)
            return
        self._idle.append(worker)

    def invoke(self, event: dict[str, Any], request_id: str, respond: Respond) -> None:
        """Run `event` on the next free worker; `respond` gets the outcome, exactly once."""
        self._invoke(_encode_event(event).encode("utf-8"), request_id, respond)

    def _invoke(self, payload: bytes, request_id: str, respond: Respond) -> None:
        while self._idle:
            worker = self._idle.popleft()
            if not worker.retired and not worker.dead and worker.api.parked is not None:
                self._dispatch(worker, payload, request_id, respond)
                return
        if self._closed:
            respond(Outcome("unavailable"))
            return
        wait = float(self.spec.timeout_s) + self.spec.init_timeout_s
        self._waiting.append((payload, request_id, respond, time.monotonic() + wait))
        if self._expiry is None:
            self._expiry = self.loop.call_later(wait, self._expire_waiting)

    def _expire_waiting(self) -> None:
        """One timer for the whole queue (the oldest entry's deadline), not one per request."""
        self._expiry = None
        now = time.monotonic()
        while self._waiting and self._waiting[0][3] <= now:
            self._waiting.popleft()[2](Outcome("unavailable"))
        if self._waiting:
            self._expiry = self.loop.call_later(self._waiting[0][3] - now, self._expire_waiting)

    def _dispatch(self, worker: Worker, payload: bytes, request_id: str,
                  respond: Respond) -> None:
        timeout = float(self.spec.timeout_s)
        invocation = Invocation(
            request_id, payload, int(time.time() * 1000 + timeout * 1000), new_trace_id(),
            on_done=worker.finished,
        )
        worker.respond = respond
        if not worker.api.run(invocation):
            worker.respond = None
            self._invoke(payload, request_id, respond)  # that worker just left
            return
        budget = min(timeout, GATEWAY_TIMEOUT_S)
        worker.later(budget, lambda: self._past_budget(worker, invocation, budget))

    def _past_budget(self, worker: Worker, invocation: Invocation, budget: float) -> None:
        if invocation.done:
            return
        timeout = float(self.spec.timeout_s)
        if timeout > budget:
            # API Gateway gives up; Lambda lets the function run to its own timeout.
            respond, worker.respond = worker.respond, None
            if respond is not None:
                respond(Outcome("gateway_timeout", GATEWAY_TIMEOUT_S))
            worker.later(timeout - budget, lambda: self._timed_out(worker, invocation))
            return
        self._timed_out(worker, invocation)

    def _timed_out(self, worker: Worker, invocation: Invocation) -> None:
        if invocation.done:
            return
        timeout = float(self.spec.timeout_s)
        self.log.write(f"{invocation.request_id} Task timed out after {timeout:.2f} seconds")
        invocation.complete("timeout")
        self.retire(worker, "was killed after the timeout")
