"""The Lambda Runtime API, served on 127.0.0.1 to one worker (one execution environment).

What the worker's `awslambdaric` calls, as Lambda serves it (API version 2018-06-01):
  GET  /2018-06-01/runtime/invocation/next            -> 200, the event; headers
       Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn, -Trace-Id
  POST /2018-06-01/runtime/invocation/{id}/response   -> 202 (413 over Lambda's 6 MB)
  POST /2018-06-01/runtime/invocation/{id}/error      -> 202
  POST /2018-06-01/runtime/init/error                 -> 202
What holds:
- One listening socket per worker, so the server always knows which environment is calling
  (as each Lambda sandbox has its own Runtime API) and hands it one invocation at a time.
- `/next` blocks until the pool delivers an invocation, or the worker is being retired.
- Every invocation is completed exactly once (`Invocation.complete`): by the worker's answer,
  or by the pool (timeout, death), whichever comes first; the loser's answer is dropped.
- A response over the limit is refused with 413 as Lambda refuses it, and the invocation fails
  with Lambda's `Function.ResponseSizeTooLarge`.
- Requests are parsed strictly and bounded (line, header and body sizes); a malformed one gets a
  4xx and the connection is closed, never a server thread crash.
Standard library only: the HTTP front's speed depends on this hop staying cheap.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

PREFIX = "/2018-06-01/runtime"
# Lambda's synchronous response limit, as its error message states it.
MAX_RESPONSE = 6_291_556
_MAX_LINE = 8192
_MAX_HEADERS = 64
_MAX_ERROR_BODY = 1 << 20
_TOO_LARGE = {
    "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).",
    "errorType": "RequestEntityTooLarge",
}
RESPONSE_TOO_LARGE = {
    "errorMessage": (
        f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."
    ),
    "errorType": "Function.ResponseSizeTooLarge",
}


@dataclass
class Invocation:
    request_id: str
    payload: bytes  # the event, JSON
    deadline_ms: int
    trace_id: str
    kind: str | None = None  # "result" | "error" | "timeout" | "died"
    body: Any = None  # result bytes, or the error dict
    started: float = 0.0  # perf_counter when the worker received it
    duration_ms: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def complete(self, kind: str, body: Any = None) -> bool:
        """Record the outcome once; False when another party already did."""
        with self._lock:
            if self.kind is not None:
                return False
            self.kind, self.body = kind, body
            if self.started:
                self.duration_ms = (time.perf_counter() - self.started) * 1000
        self.done.set()
        return True


class Sandbox(Protocol):
    """What the Runtime API tells the worker's owner."""

    def next_requested(self) -> None: ...

    def invocation_started(self, invocation: Invocation) -> None: ...

    def invocation_finished(self, invocation: Invocation) -> None: ...

    def init_failed(self, info: dict[str, Any]) -> None: ...


class _BadRequest(Exception):
    pass


class RuntimeApi:
    def __init__(self, function_arn: str, sandbox: Sandbox) -> None:
        self.function_arn = function_arn
        self.sandbox = sandbox
        self._inbox: queue.SimpleQueue[Invocation | None] = queue.SimpleQueue()
        self.current: Invocation | None = None
        self._closed = False
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True, name="runtime-api").start()

    # the pool's side ---------------------------------------------------------------------------
    def deliver(self, invocation: Invocation) -> None:
        self._inbox.put(invocation)

    def close(self) -> None:
        """Retire: wake a blocked `/next`, stop listening, drop connections."""
        with self._lock:
            self._closed = True
            conns = list(self._conns)
        self._inbox.put(None)
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # serving ----------------------------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="runtime-api-conn").start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rfile = conn.makefile("rb")
        try:
            while not self._closed:
                try:
                    request = _read_request(rfile, conn)
                except _BadRequest as exc:
                    _send(conn, 400, {"errorMessage": str(exc), "errorType": "BadRequest"},
                          close=True)
                    return
                if request is None:
                    return
                if not self._dispatch(conn, *request):
                    return
        except OSError:
            return  # the worker went away; its process watcher settles the invocation
        finally:
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                rfile.close()
                conn.close()

    def _dispatch(self, conn: socket.socket, method: str, path: str,
                  headers: dict[str, str], body: bytes | None) -> bool:
        """Answer one request; False closes the connection."""
        if method == "GET" and path == PREFIX + "/invocation/next":
            return self._next(conn)
        if method == "POST" and path == PREFIX + "/init/error":
            self.sandbox.init_failed(_error_info(body or b"", headers))
            _send(conn, 202, {"status": "OK"})
            return True
        parts = path[len(PREFIX):].split("/") if path.startswith(PREFIX + "/invocation/") else []
        if method == "POST" and len(parts) == 4 and parts[3] in ("response", "error"):
            invocation = self.current
            if invocation is None or invocation.request_id != parts[2]:
                _send(conn, 400, {"errorMessage": "Invalid request ID",
                                  "errorType": "InvalidRequestID"})
                return True
            self.current = None
            if parts[3] == "error":
                finished = invocation.complete("error", _error_info(body or b"", headers))
            elif body is None:
                finished = invocation.complete("error", dict(RESPONSE_TOO_LARGE))
                _send(conn, 413, _TOO_LARGE)
                if finished:
                    self.sandbox.invocation_finished(invocation)
                return True
            else:
                finished = invocation.complete("result", body)
            if finished:
                self.sandbox.invocation_finished(invocation)
            _send(conn, 202, {"status": "OK"})
            return True
        _send(conn, 404, {"errorMessage": f"no route {method} {path}", "errorType": "NotFound"})
        return True

    def _next(self, conn: socket.socket) -> bool:
        self.sandbox.next_requested()
        invocation = self._inbox.get()
        if invocation is None:
            return False
        invocation.started = time.perf_counter()
        self.current = invocation
        self.sandbox.invocation_started(invocation)
        head = (
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: application/json\r\n"
            f"Lambda-Runtime-Aws-Request-Id: {invocation.request_id}\r\n"
            f"Lambda-Runtime-Deadline-Ms: {invocation.deadline_ms}\r\n"
            f"Lambda-Runtime-Invoked-Function-Arn: {self.function_arn}\r\n"
            f"Lambda-Runtime-Trace-Id: {invocation.trace_id}\r\n"
            f"Content-Length: {len(invocation.payload)}\r\n\r\n"
        ).encode("ascii")
        conn.sendall(head + invocation.payload)
        return True


def new_trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};Sampled=0"


def _error_info(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The error document a runtime posted; Lambda keeps errorType and errorMessage."""
    info: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        parsed = json.loads(body[:_MAX_ERROR_BODY]) if body else {}
        if isinstance(parsed, dict):
            info = parsed
    error_type = info.get("errorType") or headers.get("lambda-runtime-function-error-type")
    return {
        "errorType": str(error_type or "Runtime.Unknown"),
        "errorMessage": str(info.get("errorMessage", "")),
        "stackTrace": info.get("stackTrace") if isinstance(info.get("stackTrace"), list) else [],
    }


def _read_request(
    rfile: Any, conn: socket.socket
) -> tuple[str, str, dict[str, str], bytes | None] | None:
    """(method, path, headers, body) or None at end of input; body None = over the limit."""
    line = rfile.readline(_MAX_LINE + 1)
    if not line:
        return None
    if len(line) > _MAX_LINE or not line.endswith(b"\n"):
        raise _BadRequest("request line too long")
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest("malformed request line")
    method, target, _ = parts
    headers: dict[str, str] = {}
    while True:
        raw = rfile.readline(_MAX_LINE + 1)
        if not raw or len(raw) > _MAX_LINE:
            raise _BadRequest("malformed headers")
        if raw in (b"\r\n", b"\n"):
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or len(headers) >= _MAX_HEADERS:
            raise _BadRequest("malformed headers")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _read_chunked(rfile)
    else:
        length = headers.get("content-length", "0")
        if not length.isdigit():
            raise _BadRequest("invalid Content-Length")
        size = int(length)
        if size > MAX_RESPONSE:
            if not _drain(rfile, size):
                return None
            body = None
        else:
            body = rfile.read(size) if size else b""
            if len(body) < size:
                return None
    return method, target.split("?", 1)[0], headers, body


def _drain(rfile: Any, size: int) -> bool:
    """Read and drop `size` bytes (an over-limit body): the connection stays usable."""
    while size > 0:
        chunk = rfile.read(min(size, 1 << 16))
        if not chunk:
            return False
        size -= len(chunk)
    return True


def _read_chunked(rfile: Any) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(_MAX_LINE)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest("malformed chunked body") from None
        if size < 0:
            raise _BadRequest("malformed chunked body")
        if size == 0:
            while rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks) if total <= MAX_RESPONSE else None
        total += size
        if total > MAX_RESPONSE:
            chunks.clear()
            if not _drain(rfile, size):
                raise _BadRequest("truncated chunked body")
        else:
            chunks.append(rfile.read(size))
        rfile.readline(8)


def _send(conn: socket.socket, status: int, payload: dict[str, Any], close: bool = False) -> None:
    body = json.dumps(payload).encode()
    phrase = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden",
              404: "Not Found", 413: "Payload Too Large"}.get(status, "Error")
    connection = "Connection: close\r\n" if close else ""
    head = (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{connection}\r\n").encode("ascii")
    conn.sendall(head + body)
