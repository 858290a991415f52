"""Warm worker processes, one invocation at a time each, like Lambda execution environments.

Each worker is the env's interpreter running AWS's runtime interface client (`awslambdaric`)
against its own Runtime API (`runtime_api.py`) on 127.0.0.1: the handler is imported, called,
and its errors reported by AWS's code. The pool plays Lambda's platform around it: it hands out
invocations, writes the START/END/REPORT lines, and owns every failure an instance can have —
an init error stops the start, a handler past its timeout is killed and replaced, a worker that
dies is replaced. A request never hangs: every wait on a worker has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from mlops_cli.targets.local.runtime_api import Invocation, RuntimeApi, new_trace_id
from mlops_cli.targets.local.spec import ServerSpec, worker_environment

# API Gateway's integration timeout (HTTP APIs: 30 s at most); a function allowed longer is cut
# off by the gateway while Lambda lets it run on.
GATEWAY_TIMEOUT_S = 30.0
# `python -m awslambdaric <handler>` as Lambda's bootstrap runs it, with the paths Lambda gives:
# the function first, the runtime (client) after it. Ctrl-C in `serve` reaches the whole group;
# the pool decides when workers stop. One departure: on python3.12+ the client waits for
# `/next` in a thread of a ThreadPoolExecutor built per invocation (so that Lambda's main thread
# can take signals meanwhile); measured here that costs ~0.9 ms of CPU per invocation, more than
# the rest of the client, and changes nothing a handler can see, since the workers are never
# signalled while they wait (the pool stops them with SIGTERM's default action), so the client
# polls directly. AWS_EXECUTION_ENV stays the runtime's, which the marshaller keys on.
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


class LineLog:
    """Thread-safe line writer for the server log (a file when detached, the terminal in serve)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, *lines: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        text = "".join(f"{stamp}Z {line}\n" for line in lines)
        with self._lock:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed or full log must never fail a request

    def fileno(self) -> int | None:
        """Where workers write their own output (the same log), or None to inherit."""
        try:
            return self._stream.fileno()
        except (OSError, ValueError, AttributeError):
            return None


@dataclass(frozen=True)
class Outcome:
    kind: str  # "result" | "error" | "timeout" | "died" | "gateway_timeout" | "unavailable"
    value: Any = None


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
        self.ready = threading.Event()  # first /next, an init error, or death
        self.init_error: dict[str, Any] | None = None
        self.init_ms: float | None = None
        self.dead = False
        self.retired = False
        self._peak, self._peak_read = 0, 0.0
        self._reported = False
        self.api = RuntimeApi(spec.function_arn, self)
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
        )
        threading.Thread(target=self._watch, daemon=True, name="iris-worker-watch").start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    # the Runtime API's callbacks -------------------------------------------------------------
    def next_requested(self) -> None:
        if self.init_ms is None:
            self.init_ms = (time.perf_counter() - self._spawned) * 1000
            self.ready.set()
        self.pool.idle(self)

    def invocation_started(self, invocation: Invocation) -> None:
        self.pool.log.write(f"START RequestId: {invocation.request_id} Version: $LATEST")

    def invocation_finished(self, invocation: Invocation, status: str = "") -> None:
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

    def init_failed(self, info: dict[str, Any]) -> None:
        self.init_error = info
        self.ready.set()

    # lifecycle -------------------------------------------------------------------------------
    def _watch(self) -> None:
        code = self.proc.wait()
        self.dead = True
        invocation = self.api.current
        if invocation is not None and invocation.complete("died", code):
            self.pool.log.write(
                f"RequestId: {invocation.request_id} Error: Runtime exited with error: "
                f"exit status {code}\nRuntime.ExitError"
            )
            self.invocation_finished(invocation, "error")
        self.ready.set()
        self.api.close()
        if not self.retired:
            self.pool.died(self, code)

    def kill(self) -> int | None:
        """SIGKILL and reap; returns the exit status."""
        self.retired = True
        with contextlib.suppress(OSError):
            self.proc.kill()
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float) -> None:
        """SIGTERM (as Lambda's shutdown phase sends it); SIGKILL after `grace`."""
        self.retired = True
        with contextlib.suppress(OSError):
            self.proc.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self.api.close()


class WorkerPool:
    def __init__(self, spec: ServerSpec, log: LineLog) -> None:
        self.spec = spec
        self.log = log
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        self._all: set[Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._counter = 0
        self.python_version: str | None = spec.python_version or None

    # lifecycle --------------------------------------------------------------------------------
    def _spawn(self) -> Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is closed")
            self._counter += 1
            worker = Worker(self, self._counter)
            self._all.add(worker)
        return worker

    def _forget(self, worker: Worker) -> None:
        with self._lock:
            self._all.discard(worker)

    def idle(self, worker: Worker) -> None:
        if not self._closed and not worker.retired:
            self._idle.put(worker)

    def _wait_init(self, worker: Worker, deadline: float) -> None:
        """Return when the worker polls for its first event; raise InitError otherwise."""
        worker.ready.wait(max(0.0, deadline - time.monotonic()))
        if worker.init_error is not None:
            raise InitError(worker.init_error)
        if worker.dead or (not worker.ready.is_set() and worker.proc.poll() is not None):
            code = worker.proc.wait()
            raise InitError({
                "errorType": "Runtime.ExitError",
                "errorMessage": f"Runtime exited with error: exit status {code} (during init, "
                                "without reporting an init error; see the log)",
            })
        if not worker.ready.is_set():
            raise InitError({
                "errorType": "Runtime.InitTimeout",
                "errorMessage": (
                    f"the handler did not finish importing within "
                    f"{self.spec.init_timeout_s:.0f} s"
                ),
            })

    def start(self) -> None:
        """Start every worker and wait for all cold starts; the first init error stops it all."""
        deadline = time.monotonic() + self.spec.init_timeout_s
        try:
            workers = [self._spawn() for _ in range(self.spec.workers)]
            for worker in workers:
                self._wait_init(worker, deadline)
        except InitError:
            self.close()
            raise
        self.log.write(
            f"{len(workers)} worker(s) ready under awslambdaric: Python {self.python_version} "
            f"pids {', '.join(str(w.pid) for w in workers)}"
        )

    def init_durations_ms(self) -> list[float]:
        """Each live worker's cold start, spawn to first `/next` (its REPORT's Init Duration)."""
        with self._lock:
            return [w.init_ms for w in self._all if w.init_ms is not None]

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._all)

    def close(self, grace: float = 1.0) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.stop(grace)

    def died(self, worker: Worker, code: int | None) -> None:
        """A worker exited on its own (crash, kill): forget it and start a replacement."""
        self._forget(worker)
        if self._closed:
            return
        self.log.write(f"worker pid {worker.pid} exited (exit status {code}); starting a new one")
        threading.Thread(target=self._refill, daemon=True, name="iris-refill").start()

    def _retire(self, worker: Worker, why: str) -> None:
        code = worker.kill()
        self._forget(worker)
        self.log.write(f"worker pid {worker.pid} {why} (exit status {code}); starting a new one")
        threading.Thread(target=self._refill, daemon=True, name="iris-refill").start()

    def _refill(self) -> None:
        delay = 1.0
        while not self._closed:
            try:
                worker = self._spawn()
            except (RuntimeError, OSError) as exc:
                self.log.write(f"cannot start a worker: {exc}")
                return
            try:
                self._wait_init(worker, time.monotonic() + self.spec.init_timeout_s)
            except InitError as exc:
                worker.kill()
                worker.api.close()
                self._forget(worker)
                self.log.write(f"replacement worker failed to start: {exc}; retrying")
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            return

    # requests ---------------------------------------------------------------------------------
    def _acquire(self, deadline: float) -> Worker | None:
        while True:
            remaining = deadline - time.monotonic()
            if self._closed or remaining <= 0:
                return None
            try:
                worker = self._idle.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if not worker.dead and not worker.retired:
                return worker

    def invoke(self, event: dict[str, Any], request_id: str) -> Outcome:
        timeout = float(self.spec.timeout_s)
        worker = self._acquire(time.monotonic() + timeout + self.spec.init_timeout_s)
        if worker is None:
            return Outcome("unavailable")
        payload = json.dumps(event, separators=(",", ":")).encode("utf-8")
        invocation = Invocation(
            request_id, payload, int(time.time() * 1000 + timeout * 1000), new_trace_id()
        )
        budget = min(timeout, GATEWAY_TIMEOUT_S)
        worker.api.run(invocation, time.monotonic() + budget)  # on this thread: no handoff
        if not invocation.done.is_set():
            if worker.dead or worker.proc.poll() is not None or not worker.api.connected():
                # the worker closed its socket: its process watcher settles it as a crash
                if not invocation.done.wait(5.0) and invocation.complete("died", None):
                    self._retire(worker, "lost its Runtime API connection")
            elif timeout > GATEWAY_TIMEOUT_S:
                # API Gateway gives up; Lambda lets the function run to its own timeout.
                threading.Thread(
                    target=self._settle, args=(worker, invocation, timeout - budget),
                    daemon=True, name="iris-settle",
                ).start()
                return Outcome("gateway_timeout", GATEWAY_TIMEOUT_S)
        return self._settle(worker, invocation, 0.0)

    def _settle(self, worker: Worker, invocation: Invocation, wait_s: float) -> Outcome:
        if not invocation.done.wait(wait_s) and invocation.complete("timeout"):
            timeout = float(self.spec.timeout_s)
            self.log.write(f"{invocation.request_id} Task timed out after {timeout:.2f} seconds")
            worker.invocation_finished(invocation, "timeout")
            self._retire(worker, "was killed after the timeout")
            return Outcome("timeout", timeout)
        if invocation.kind == "result":
            return Outcome("result", invocation.body)
        if invocation.kind == "died":
            return Outcome("died", invocation.body)
        return Outcome("error", invocation.body)

