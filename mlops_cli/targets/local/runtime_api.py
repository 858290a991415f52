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
- A `/next` is parked, not served by a waiting thread: the front thread that takes the worker
  answers it with the event and reads the worker's `/response` on the same connection itself,
  so a request crosses no thread boundary (each crossing costs a GIL handoff and was most of
  the server's per-request CPU). Any other time a connection is read by its own thread.
- Every wait on a worker's socket has a deadline; a worker that stays silent past it is the
  caller's timeout, one that closes its socket is the caller's crash.
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
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

PREFIX = "/2018-06-01/runtime"
# Lambda's synchronous response limit, as its error message states it.
MAX_RESPONSE = 6_291_556
_MAX_LINE = 8192
_MAX_HEADERS = 64
_MAX_HEAD = 64 * 1024
_MAX_ERROR_BODY = 1 << 20
_TIMEVAL = struct.Struct("@ll")  # struct timeval, for SO_RCVTIMEO
_NO_TIMEOUT = _TIMEVAL.pack(0, 0)
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


_SERVED, _PARKED, _CLOSE = "served", "parked", "close"


class _BadRequest(Exception):
    pass


class _Conn:
    """A socket with its own read buffer and a deadline on every read (no makefile: a timed-out
    socket file cannot be read again, and a parked connection changes threads).

    The deadline is the socket's SO_RCVTIMEO, so a timed read is one `recv` — one release of
    the GIL — rather than `poll` then `recv`: each release is a GIL handoff between the front's
    threads, and those handoffs are most of the server's per-request CPU."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self._timeout = _NO_TIMEOUT

    def _fill(self, deadline: float | None) -> None:
        if deadline is None:
            timeout = _NO_TIMEOUT
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            # at least 1 ms (a zeroed timeval would mean "wait forever")
            seconds, micros = divmod(max(1000, int(remaining * 1e6)), 1_000_000)
            timeout = _TIMEVAL.pack(seconds, micros)
        if timeout != self._timeout:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
            self._timeout = timeout
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:  # EAGAIN: SO_RCVTIMEO ran out
            raise TimeoutError from None
        if not chunk:
            raise EOFError
        self.buf += chunk

    def head(self, deadline: float | None) -> bytes:
        """A request's head, up to (not including) the blank line that ends it."""
        start = 0
        while True:
            end = self.buf.find(b"\r\n\r\n", start)
            if end >= 0:
                out = bytes(self.buf[:end])
                del self.buf[: end + 4]
                return out
            if len(self.buf) > _MAX_HEAD:
                raise _BadRequest("request head too long")
            start = max(0, len(self.buf) - 3)
            self._fill(deadline)

    def line(self, deadline: float | None) -> bytes:
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                out = bytes(self.buf[: end + 1])
                del self.buf[: end + 1]
                return out
            if len(self.buf) > _MAX_LINE:
                raise _BadRequest("line too long")
            self._fill(deadline)

    def exact(self, size: int, deadline: float | None, keep: bool = True) -> bytes:
        """`size` bytes (dropped as they come when `keep` is False: an over-limit body)."""
        out = bytearray()
        while size > 0:
            if not self.buf:
                self._fill(deadline)
            take = self.buf[:size]
            del self.buf[:size]
            size -= len(take)
            if keep:
                out += take
        return bytes(out)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


class RuntimeApi:
    def __init__(self, function_arn: str, sandbox: Sandbox) -> None:
        self.function_arn = function_arn
        self.sandbox = sandbox
        self.current: Invocation | None = None
        self._parked: _Conn | None = None
        self._closed = False
        self._conns: set[_Conn] = set()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True, name="runtime-api").start()

    # the pool's side ---------------------------------------------------------------------------
    def run(self, invocation: Invocation, deadline: float) -> None:
        """Answer the parked `/next` with `invocation` and serve the worker until it posts the
        outcome, closes, or `deadline` passes (the invocation is then left incomplete)."""
        conn, self._parked = self._parked, None
        if conn is None:
            return  # the worker is gone; its process watcher settles the invocation
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
        try:
            conn.send(head + invocation.payload)
            self.resume(conn, invocation, deadline)
        except (OSError, EOFError):
            self._drop(conn)

    def resume(self, conn: _Conn, invocation: Invocation, deadline: float) -> None:
        """Serve `conn` until the invocation completes (then re-park it) or the deadline."""
        try:
            while not invocation.done.is_set():
                if self._serve_one(conn, deadline) == _CLOSE:
                    self._drop(conn)
                    return
            # The worker's next /next follows its /response within microseconds: wait for it
            # here briefly rather than wake another thread; a slow one gets a thread of its own.
            state = self._serve_one(conn, time.monotonic() + 0.2)
        except TimeoutError:
            self._handoff(conn)
            return
        except (OSError, EOFError):
            self._drop(conn)
            return
        if state == _CLOSE:
            self._drop(conn)
        elif state == _SERVED:
            self._handoff(conn)
        # _PARKED: the connection now belongs to whoever takes the worker; never touch it here

    def connected(self) -> bool:
        """Whether the worker still holds a connection to this Runtime API."""
        with self._lock:
            return bool(self._conns)

    def close(self) -> None:
        """Retire: stop listening, drop every connection (a parked `/next` included)."""
        with self._lock:
            self._closed = True
            conns = list(self._conns)
            self._parked = None
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in conns:
            conn.close()

    # serving ----------------------------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # closed
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock)
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._conns.add(conn)
            self._handoff(conn)

    def _handoff(self, conn: _Conn) -> None:
        """Let a thread of its own read `conn` until it parks a `/next` or closes."""
        threading.Thread(target=self._serve_background, args=(conn,), daemon=True,
                         name="runtime-api-conn").start()

    def _serve_background(self, conn: _Conn) -> None:
        try:
            while not self._closed:
                state = self._serve_one(conn, None)
                if state == _PARKED:
                    return
                if state == _CLOSE:
                    break
        except (OSError, EOFError, TimeoutError):
            pass
        self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        with self._lock:
            self._conns.discard(conn)
            if self._parked is conn:
                self._parked = None
        conn.close()

    def _serve_one(self, conn: _Conn, deadline: float | None) -> str:
        """Read and answer one request: _SERVED, _PARKED (a `/next`, now waiting for an
        invocation: the caller lets go of `conn`) or _CLOSE."""
        try:
            method, path, headers, body = _read_request(conn, deadline)
        except _BadRequest as exc:
            _send(conn, 400, {"errorMessage": str(exc), "errorType": "BadRequest"}, close=True)
            return _CLOSE
        if method == "GET" and path == PREFIX + "/invocation/next":
            with self._lock:
                if self._closed:
                    return _CLOSE
                self._parked = conn
            self.sandbox.next_requested()
            return _PARKED
        if method == "POST" and path == PREFIX + "/init/error":
            self.sandbox.init_failed(_error_info(body or b"", headers))
            conn.send(_ACCEPTED)
            return _SERVED
        parts = path[len(PREFIX):].split("/") if path.startswith(PREFIX + "/invocation/") else []
        if method == "POST" and len(parts) == 4 and parts[3] in ("response", "error"):
            self._outcome(conn, parts[2], parts[3], headers, body)
            return _SERVED
        _send(conn, 404, {"errorMessage": f"no route {method} {path}", "errorType": "NotFound"})
        return _SERVED

    def _outcome(self, conn: _Conn, request_id: str, kind: str, headers: dict[str, str],
                 body: bytes | None) -> None:
        invocation = self.current
        if invocation is None or invocation.request_id != request_id:
            _send(conn, 400, {"errorMessage": "Invalid request ID",
                              "errorType": "InvalidRequestID"})
            return
        self.current = None
        if kind == "error":
            finished = invocation.complete("error", _error_info(body or b"", headers))
            reply = _ACCEPTED
        elif body is None:
            finished = invocation.complete("error", dict(RESPONSE_TOO_LARGE))
            reply = _TOO_LARGE_REPLY
        else:
            finished = invocation.complete("result", body)
            reply = _ACCEPTED
        if finished:
            self.sandbox.invocation_finished(invocation)
        conn.send(reply)


def new_trace_id() -> str:
    """An X-Ray-shaped trace id (not a secret: a PRNG is enough, and far cheaper than urandom)."""
    return f"Root=1-{int(time.time()):08x}-{random.getrandbits(96):024x};Sampled=0"


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
    conn: _Conn, deadline: float | None
) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, path, headers, body); body None = over the response limit (read and dropped).

    The whole head is split at once: this runs twice per invocation on the hot path."""
    lines = conn.head(deadline).decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or len(lines) > _MAX_HEADERS:
        raise _BadRequest("malformed request line")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        name, sep, value = raw.partition(":")
        if not sep:
            raise _BadRequest("malformed headers")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _read_chunked(conn, deadline)
    else:
        length = headers.get("content-length", "0")
        if not length.isdigit():
            raise _BadRequest("invalid Content-Length")
        size = int(length)
        keep = size <= MAX_RESPONSE
        body = conn.exact(size, deadline, keep)
        if not keep:
            body = None
    return method, target.split("?", 1)[0], headers, body


def _read_chunked(conn: _Conn, deadline: float | None) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = conn.line(deadline)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest("malformed chunked body") from None
        if size < 0:
            raise _BadRequest("malformed chunked body")
        if size == 0:
            while conn.line(deadline) not in (b"\r\n", b"\n"):
                pass
            return b"".join(chunks) if total <= MAX_RESPONSE else None
        total += size
        keep = total <= MAX_RESPONSE
        data = conn.exact(size, deadline, keep)
        if keep:
            chunks.append(data)
        else:
            chunks.clear()
        conn.line(deadline)


def _reply(status: int, payload: dict[str, Any], close: bool = False) -> bytes:
    body = json.dumps(payload).encode()
    phrase = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found",
              413: "Payload Too Large"}.get(status, "Error")
    connection = "Connection: close\r\n" if close else ""
    return (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{connection}\r\n").encode("ascii") + body


def _send(conn: _Conn, status: int, payload: dict[str, Any], close: bool = False) -> None:
    conn.send(_reply(status, payload, close))


_ACCEPTED = _reply(202, {"status": "OK"})
_TOO_LARGE_REPLY = _reply(413, _TOO_LARGE)
