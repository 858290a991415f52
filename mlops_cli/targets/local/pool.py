"""Warm worker processes, one request at a time each, like Lambda execution environments.

The pool owns every failure a function instance can have: an init error stops the start, a
handler past its timeout is killed and replaced, a worker that dies mid-request is replaced. A
request never hangs: every wait on a worker has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mlops_cli.targets.local.spec import ServerSpec, worker_environment

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
_HEADER = struct.Struct(">I")
_MAX_FRAME = 64 * 1024 * 1024


class InitError(Exception):
    """The function failed its cold start; `info` holds Lambda's errorType and errorMessage."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        super().__init__(f"{info.get('errorType', 'Runtime.Unknown')}: {info.get('errorMessage')}")


class WorkerDied(Exception):
    pass


class WorkerTimeout(Exception):
    pass


class LineLog:
    """Thread-safe line writer for the server log (a file when detached, the terminal in serve)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with self._lock:
            try:
                self._stream.write(f"{stamp}Z {line}\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed or full log must never fail a request


@dataclass(frozen=True)
class Outcome:
    kind: str  # "result" | "error" | "timeout" | "died" | "unavailable"
    value: Any = None


class Worker:
    def __init__(self, spec: ServerSpec, index: int) -> None:
        day = time.strftime("%Y/%m/%d", time.gmtime())
        stream = f"{day}/[$LATEST]{os.urandom(16).hex()}"
        self.proc = subprocess.Popen(
            [spec.python, "-I", "-S", str(BOOTSTRAP), spec.root, spec.handler, spec.function_arn],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=worker_environment(spec, stream, str(BOOTSTRAP.parent)),
            cwd=spec.root,
            bufsize=0,
        )
        self.index = index
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._wfd = self.proc.stdin.fileno()
        self._rfd = self.proc.stdout.fileno()
        os.set_blocking(self._rfd, False)
        self._poller = select.poll()
        self._poller.register(self._rfd, select.POLLIN)
        self._buf = bytearray()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _fill(self, deadline: float) -> None:
        while True:
            try:
                chunk = os.read(self._rfd, 1 << 16)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WorkerTimeout from None
                self._poller.poll(max(1, int(remaining * 1000)))
                continue
            if not chunk:
                raise WorkerDied
            self._buf += chunk
            return

    def _read_frame(self, deadline: float) -> dict[str, Any]:
        while len(self._buf) < 4:
            self._fill(deadline)
        (size,) = _HEADER.unpack_from(self._buf)
        if size > _MAX_FRAME:
            raise WorkerDied
        while len(self._buf) < 4 + size:
            self._fill(deadline)
        data = bytes(self._buf[4 : 4 + size])
        del self._buf[: 4 + size]
        try:
            frame = json.loads(data)
        except ValueError:
            raise WorkerDied from None
        if not isinstance(frame, dict):
            raise WorkerDied
        return frame

    def wait_ready(self, deadline: float) -> dict[str, Any]:
        frame = self._read_frame(deadline)
        if "init_error" in frame:
            raise InitError(frame["init_error"])
        return frame.get("ready") or {}

    def call(self, payload: bytes, deadline: float) -> dict[str, Any]:
        data = memoryview(_HEADER.pack(len(payload)) + payload)
        try:
            while data:
                data = data[os.write(self._wfd, data) :]
        except (BrokenPipeError, OSError):
            raise WorkerDied from None
        return self._read_frame(deadline)

    def kill(self) -> int | None:
        """SIGKILL and reap; returns the exit status."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self._close_pipes()

    def stop(self, grace: float) -> None:
        """Closing stdin asks the worker to exit; anything still running after `grace` dies."""
        self._close_pipes()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass


class WorkerPool:
    def __init__(self, spec: ServerSpec, log: LineLog) -> None:
        self.spec = spec
        self.log = log
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._all: set[Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._counter = 0
        self.python_version: str | None = None

    # lifecycle --------------------------------------------------------------------------------
    def _spawn(self) -> Worker:
        with self._lock:
            if self._closed:
                raise WorkerDied
            self._counter += 1
            worker = Worker(self.spec, self._counter)
            self._all.add(worker)
        return worker

    def _forget(self, worker: Worker) -> None:
        with self._lock:
            self._all.discard(worker)

    def start(self) -> None:
        """Start every worker and wait for all cold starts; the first init error stops it all."""
        deadline = time.monotonic() + self.spec.init_timeout_s
        workers = [self._spawn() for _ in range(self.spec.workers)]
        try:
            for worker in workers:
                try:
                    ready = worker.wait_ready(deadline)
                except WorkerTimeout:
                    raise InitError({
                        "errorType": "Runtime.InitTimeout",
                        "errorMessage": (
                            f"the handler did not finish importing within "
                            f"{self.spec.init_timeout_s:.0f} s"
                        ),
                    }) from None
                except WorkerDied:
                    code = worker.kill()
                    raise InitError({
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"the worker exited during init (status {code})",
                    }) from None
                self.python_version = ready.get("version")
        except InitError:
            self.close()
            raise
        for worker in workers:
            self._idle.put(worker)
        self.log.write(
            f"{len(workers)} worker(s) ready: Python {self.python_version} "
            f"pids {', '.join(str(w.pid) for w in workers)}"
        )

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

    def _replace(self, worker: Worker, why: str) -> None:
        code = worker.kill()
        self._forget(worker)
        self.log.write(f"worker pid {worker.pid} {why} (exit status {code}); starting a new one")
        threading.Thread(target=self._refill, daemon=True, name="iris-refill").start()

    def _refill(self) -> None:
        delay = 1.0
        while not self._closed:
            try:
                worker = self._spawn()
            except (WorkerDied, OSError) as exc:
                self.log.write(f"cannot start a worker: {exc}")
                return
            try:
                worker.wait_ready(time.monotonic() + self.spec.init_timeout_s)
            except (InitError, WorkerDied, WorkerTimeout) as exc:
                worker.kill()
                self._forget(worker)
                self.log.write(f"replacement worker failed to start: {exc!r}; retrying")
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if self._closed:
                worker.stop(0.5)
                return
            self._idle.put(worker)
            return

    # requests ---------------------------------------------------------------------------------
    def invoke(self, event: dict[str, Any], request_id: str) -> Outcome:
        timeout = float(self.spec.timeout_s)
        acquire_deadline = time.monotonic() + timeout + self.spec.init_timeout_s
        while True:
            remaining = acquire_deadline - time.monotonic()
            if self._closed or remaining <= 0:
                return Outcome("unavailable")
            try:
                worker = self._idle.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if worker.proc.poll() is None:
                break
            self._replace(worker, "had exited while idle")

        payload = json.dumps(
            {"requestId": request_id, "deadlineMs": time.time() * 1000 + timeout * 1000,
             "event": event},
            separators=(",", ":"),
        ).encode("utf-8")
        try:
            reply = worker.call(payload, time.monotonic() + timeout)
        except WorkerTimeout:
            self.log.write(f"{request_id} Task timed out after {timeout:.2f} seconds")
            self._replace(worker, "was killed after the timeout")
            return Outcome("timeout", timeout)
        except WorkerDied:
            self._replace(worker, f"died during request {request_id}")
            return Outcome("died", worker.proc.returncode)
        self._idle.put(worker)
        if "error" in reply:
            return Outcome("error", reply["error"])
        return Outcome("result", reply.get("result"))
