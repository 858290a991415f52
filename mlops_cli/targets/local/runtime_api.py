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
- Served by the server's event loop (`loop.py`), like the HTTP front: a `/next` is parked until
  the pool hands it an invocation (`run`), and the worker's `/response` completes it in the
  same loop that then answers the HTTP client. No thread, so no GIL handoff, on the way.
- Every invocation is completed exactly once (`Invocation.complete`): by the worker's answer,
  or by the pool (timeout, death), whichever comes first; the loser's answer is dropped. The
  pool's timers are the deadline on every read made for an invocation.
- A response over the limit is read and dropped, refused with 413 as Lambda refuses it, and the
  invocation fails with Lambda's `Function.ResponseSizeTooLarge`.
- Requests are parsed strictly and bounded (`wire.py`); a malformed one gets a 400 and the
  connection is closed, never a server crash.
Standard library only: the HTTP front's speed depends on this hop staying cheap.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mlops_cli.targets.local.channel import Channel
from mlops_cli.targets.local.loop import Loop
from mlops_cli.targets.local.wire import (
    NO_BODY,
    BodyPlan,
    Head,
    HttpError,
    Request,
    RequestReader,
)

PREFIX = "/2018-06-01/runtime"
_NEXT = PREFIX + "/invocation/next"
_INIT_ERROR = PREFIX + "/init/error"
_INVOCATION = PREFIX + "/invocation/"
# Lambda's synchronous response limit, as its error message states it.
MAX_RESPONSE = 6_291_556
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


@dataclass(eq=False, slots=True)
class Invocation:
    request_id: str
    payload: bytes  # the event, JSON
    deadline_ms: int
    trace_id: str
    on_done: Callable[[Invocation], None] | None = None
    kind: str | None = None  # "result" | "error" | "timeout" | "died"
    body: Any = None  # result bytes, or the error dict
    started: float = 0.0  # perf_counter when the worker received it
    duration_ms: float = 0.0

    @property
    def done(self) -> bool:
        return self.kind is not None

    def complete(self, kind: str, body: Any = None) -> bool:
        """Record the outcome once and tell `on_done`; False when another party already did."""
        if self.kind is not None:
            return False
        self.kind, self.body = kind, body
        if self.started:
            self.duration_ms = (time.perf_counter() - self.started) * 1000
        if self.on_done is not None:
            self.on_done(self)
        return True


class Sandbox(Protocol):
    """What the Runtime API tells the worker's owner."""

    def next_requested(self) -> None: ...

    def invocation_started(self, invocation: Invocation) -> None: ...

    def init_failed(self, info: dict[str, Any]) -> None: ...

    def connection_lost(self) -> None: ...


class RuntimeApi:
    def __init__(self, loop: Loop, function_arn: str, sandbox: Sandbox) -> None:
        self.loop = loop
        self.function_arn = function_arn
        self.sandbox = sandbox
        self.current: Invocation | None = None
        self.parked: _RuntimeConn | None = None
        self.closed = False
        self._conns: set[_RuntimeConn] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.setblocking(False)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        loop.add(self._listener, 1, self._accept)

    # the pool's side ---------------------------------------------------------------------------
    def run(self, invocation: Invocation) -> bool:
        """Answer the parked `/next` with `invocation`; False when no `/next` is parked."""
        conn, self.parked = self.parked, None
        if conn is None or conn.is_closed:
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
        payload, invocation.payload = invocation.payload, b""  # timers hold the invocation
        if len(payload) < 65536:
            conn.send(head + payload)  # one system call
        else:
            conn.send(head)  # no copy of a large event
            conn.send(payload)
        return True

    def connected(self) -> bool:
        """Whether the worker still holds a connection to this Runtime API."""
        return bool(self._conns)

    def close(self) -> None:
        """Retire: stop listening, drop every connection (a parked `/next` included)."""
        if self.closed:
            return
        self.closed = True
        self.parked = None
        self.loop.remove(self._listener)
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in list(self._conns):
            conn.close()

    # serving ----------------------------------------------------------------------------------
    def _accept(self, mask: int) -> None:
        while not self.closed:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.add(_RuntimeConn(self, sock))

    def _forget(self, conn: _RuntimeConn) -> None:
        self._conns.discard(conn)
        if self.parked is conn:
            self.parked = None
        if not self.closed:
            self.sandbox.connection_lost()

    def _serve(self, conn: _RuntimeConn, request: Request) -> None:
        head = request.head
        method, path = head.method, head.target.split("?", 1)[0]
        if method == "GET" and path == _NEXT:
            self.parked = conn
            self.sandbox.next_requested()
        elif method == "POST" and path == _INIT_ERROR:
            self.sandbox.init_failed(_error_info(request.body or b"", head))
            conn.send(_ACCEPTED)
        elif method == "POST" and path.startswith(_INVOCATION):
            parts = path[len(_INVOCATION):].split("/")
            if len(parts) == 2 and parts[1] in ("response", "error"):
                self._outcome(conn, parts[0], parts[1], request)
            else:
                conn.send(_reply(404, _no_route(method, path)))
        else:
            conn.send(_reply(404, _no_route(method, path)))

    def _outcome(self, conn: _RuntimeConn, request_id: str, kind: str, request: Request) -> None:
        """Accept the worker's outcome, then settle the invocation: the worker has its 202
        first, so it asks for its next event while this loop answers the client."""
        invocation = self.current
        if invocation is None or invocation.request_id != request_id:
            conn.send(_reply(400, {"errorMessage": "Invalid request ID",
                                   "errorType": "InvalidRequestID"}))
            return
        self.current = None
        if kind == "error":
            conn.send(_ACCEPTED)
            invocation.complete("error", _error_info(request.body or b"", request.head))
        elif request.body is None:
            conn.send(_TOO_LARGE_REPLY)
            invocation.complete("error", dict(RESPONSE_TOO_LARGE))
        else:
            conn.send(_ACCEPTED)
            invocation.complete("result", request.body)


class _RuntimeConn(Channel):
    """One connection from the worker's client: requests in, answers out, in order."""

    def __init__(self, api: RuntimeApi, sock: socket.socket) -> None:
        self.api = api
        # only a `/next` head repeats: a POST's path holds the invocation's request id
        self.reader = RequestReader(self._plan, max_head=65536, max_headers=_MAX_HEADERS,
                                    keep=_is_get)
        super().__init__(api.loop, sock)

    def _plan(self, head: Head) -> BodyPlan:
        fields = head.fields
        if "expect" in fields and fields["expect"].lower() == "100-continue":
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "transfer-encoding" in fields and fields["transfer-encoding"].lower() == "chunked":
            return BodyPlan(chunked=True, limit=MAX_RESPONSE, drop=True)
        length = fields.get("content-length")
        if length is None:
            return NO_BODY  # a `/next`
        if not length.isdigit():
            raise HttpError(400, "invalid Content-Length")
        return BodyPlan(length=int(length), limit=MAX_RESPONSE, drop=True)

    def received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while not self.is_closed and (request := self.reader.next()) is not None:
                self.api._serve(self, request)
        except HttpError as exc:
            self.send(_reply(400, {"errorMessage": exc.message, "errorType": "BadRequest"},
                             close=True), close=True)

    def closed(self) -> None:
        self.api._forget(self)


def _is_get(head: Head) -> bool:
    return head.method == "GET"


def new_trace_id() -> str:
    """An X-Ray-shaped trace id (not a secret: a PRNG is enough, and far cheaper than urandom)."""
    return f"Root=1-{int(time.time()):08x}-{random.getrandbits(96):024x};Sampled=0"


def _no_route(method: str, path: str) -> dict[str, str]:
    return {"errorMessage": f"no route {method} {path[:200]}", "errorType": "NotFound"}


def _error_info(body: bytes, head: Head) -> dict[str, Any]:
    """The error document a runtime posted; Lambda keeps errorType and errorMessage."""
    info: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        parsed = json.loads(body[:_MAX_ERROR_BODY]) if body else {}
        if isinstance(parsed, dict):
            info = parsed
    error_type = info.get("errorType") or head.get("lambda-runtime-function-error-type")
    return {
        "errorType": str(error_type or "Runtime.Unknown"),
        "errorMessage": str(info.get("errorMessage", "")),
        "stackTrace": info.get("stackTrace") if isinstance(info.get("stackTrace"), list) else [],
    }


def _reply(status: int, payload: dict[str, Any], close: bool = False) -> bytes:
    body = json.dumps(payload).encode()
    phrase = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found",
              413: "Payload Too Large"}.get(status, "Error")
    connection = "Connection: close\r\n" if close else ""
    return (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{connection}\r\n").encode("ascii") + body


_ACCEPTED = _reply(202, {"status": "OK"})
_TOO_LARGE_REPLY = _reply(413, _TOO_LARGE)
