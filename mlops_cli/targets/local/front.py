"""The HTTP front: API Gateway's side of the local endpoint, on the server's event loop.

What holds:
- 127.0.0.1 only, HTTP/1.1 keep-alive (HTTP/1.0 closes unless asked not to), one request at a
  time per connection, answered in order.
- Each request becomes an API Gateway HTTP API payload 2.0 event (`events.build_event`) for the
  pool, and the pool's outcome becomes API Gateway's answer (`answer`). Reading, the hand-off to
  a worker and the answer all run on the loop's one thread: no request crosses a thread.
- What API Gateway refuses never reaches a worker: a body over `max_body` (413, from the header:
  the body is never read, and `Expect: 100-continue` gets no 100), an unreadable request (400,
  411, 414, 431, 501, 505; always a JSON body, then the connection closes), a request the
  `api.auth` gate refuses (403).
- A connection that makes no progress for `IDLE_TIMEOUT_S` (idle, trickling, or not reading its
  answer) is closed: a slow client holds a socket, never a worker or the loop.
"""

from __future__ import annotations

import json
import socket
import time
from email.utils import formatdate
from http import HTTPStatus

from mlops_cli.targets.local.auth import Gate, gate_for
from mlops_cli.targets.local.channel import Channel
from mlops_cli.targets.local.events import (
    HttpResponse,
    build_event,
    internal_error,
    json_response,
    map_result,
    new_request_id,
)
from mlops_cli.targets.local.linelog import LineLog
from mlops_cli.targets.local.loop import Loop
from mlops_cli.targets.local.pool import Outcome, WorkerPool
from mlops_cli.targets.local.spec import ServerSpec
from mlops_cli.targets.local.wire import (
    NO_BODY,
    BodyPlan,
    Head,
    HttpError,
    Request,
    RequestReader,
)

IDLE_TIMEOUT_S = 15.0  # an idle or trickling client loses its connection, never a worker
SERVER = "iris-mlops-local"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_SWEEP_S = 1.0


def answer(outcome: Outcome, request_id: str) -> HttpResponse:
    """What API Gateway (HTTP API, Lambda proxy integration) answers for a Lambda outcome.

    A result goes through the payload 2.0 response rules. Every function error — an exception,
    a timeout, a crash, a response over 6 MB — is the same bare 500 on AWS (the details are in
    the function's log, here in the local log); the gateway's own 30 s integration timeout and
    a function it cannot reach are 503.
    """
    if outcome.kind == "result":
        try:
            result = json.loads(outcome.value)
        except (TypeError, ValueError):
            return internal_error(request_id)
        return map_result(result, request_id)
    if outcome.kind in ("error", "timeout", "died"):
        return internal_error(request_id)
    return json_response(503, {"message": "Service Unavailable"}, request_id)


class Front:
    """The listening socket and its connections."""

    def __init__(self, loop: Loop, port: int, pool: WorkerPool, spec: ServerSpec,
                 log: LineLog) -> None:
        self.loop = loop
        self.pool = pool
        self.spec = spec
        self.log = log
        self.gate: Gate | None = gate_for(spec, log.write)  # iam: SigV4 before any worker
        self.conns: set[_Client] = set()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(("127.0.0.1", port))
            self.listener.listen(128)
        except OSError:
            self.listener.close()
            raise
        self.listener.setblocking(False)
        self.port = int(self.listener.getsockname()[1])
        self._second = -1
        self._date = ""

    def serve(self) -> None:
        """Start accepting (after the workers are ready: until then clients wait in the
        backlog) and sweeping idle connections."""
        self.loop.add(self.listener, 1, self._accept)
        self.loop.call_later(_SWEEP_S, self._sweep)

    def close(self) -> None:
        self.loop.remove(self.listener)
        self.listener.close()
        for conn in list(self.conns):
            conn.close()

    def date(self) -> str:
        """The Date header, formatted once a second rather than once a response."""
        now = int(time.time())
        if now != self._second:
            self._second, self._date = now, formatdate(now, usegmt=True)
        return self._date

    def _accept(self, mask: int) -> None:
        for _ in range(64):
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors: pause rather than spin
                self.log.write(f"cannot accept a connection: {exc}")
                self.loop.remove(self.listener)
                self.loop.call_later(0.1, lambda: self.loop.add(self.listener, 1, self._accept))
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conns.add(_Client(self, sock, address[0]))

    def _sweep(self) -> None:
        stale = time.monotonic() - IDLE_TIMEOUT_S
        for conn in [c for c in self.conns if c.active < stale and c.invocation_id is None]:
            if conn.reader.started:
                self.log.write(f"{conn.ip} Request timed out")
            conn.close()
        self.loop.call_later(_SWEEP_S, self._sweep)


class _Client(Channel):
    """One client connection."""

    def __init__(self, front: Front, sock: socket.socket, ip: str) -> None:
        self.front = front
        self.ip = ip
        self.reader = RequestReader(self._plan)
        self.invocation_id: str | None = None  # set while a request is in flight
        self._head: Head | None = None
        self._started = 0.0
        self._pumping = False
        super().__init__(front.loop, sock)

    # reading ----------------------------------------------------------------------------------
    def received(self, data: bytes) -> None:
        self.reader.feed(data)
        if self.invocation_id is None:
            self._next()
        else:
            self.throttle(len(self.reader.buf))

    def hung_up(self) -> None:
        if self.invocation_id is None:
            self._next()  # answer what is complete; a half-sent request is abandoned
        # else: answer what is in flight first (see _respond)

    def _next(self) -> None:
        """Serve buffered requests until one is in flight (a loop, not recursion: a refused
        request is answered at once and a pipelining client may have sent thousands)."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while self.invocation_id is None and not self.is_closed:
                try:
                    request = self.reader.next()
                except HttpError as exc:
                    self._refuse(exc)
                    return
                if request is None:
                    if self.eof and self.reader.partial_head:
                        self._refuse(HttpError(400, "Bad request: the request ended early"))
                    elif self.eof:
                        self.finish()  # the client is done sending: close once answered
                    else:
                        self.throttle(len(self.reader.buf))
                    return
                try:
                    self._handle(request)
                except Exception as exc:  # our bug: API Gateway's 500, never a stuck client
                    self.front.log.write(f"internal error handling a request: {exc!r}")
                    self._respond(internal_error(self.invocation_id), request.head)
        finally:
            self._pumping = False

    def _plan(self, head: Head) -> BodyPlan:
        """API Gateway's body rules, from the head alone."""
        self._head = head
        limit = self.front.spec.max_body
        encoding = head.get("transfer-encoding")
        lengths = head.get_all("content-length")
        if encoding is not None:
            if lengths:
                raise HttpError(400, "Content-Length and Transfer-Encoding are both set")
            if encoding.strip().lower() != "chunked":
                raise HttpError(501, f"Transfer-Encoding {encoding[:40]!r} is not supported")
            self._continue(head)
            return BodyPlan(chunked=True, limit=limit)
        if not lengths:
            if head.method in _BODY_METHODS:
                raise HttpError(411, "Length Required")
            return NO_BODY
        if len(set(lengths)) != 1 or not lengths[0].strip().isdigit():
            raise HttpError(400, "invalid Content-Length")
        length = int(lengths[0])
        if length > limit:
            raise HttpError(413, f"Request Entity Too Large: the limit is {limit} bytes")
        self._continue(head)
        return BodyPlan(length=length, limit=limit)

    def _continue(self, head: Head) -> None:
        if head.version == "HTTP/1.1" and (head.get("expect") or "").lower() == "100-continue":
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    # the request ------------------------------------------------------------------------------
    def _handle(self, request: Request) -> None:
        self._started = time.perf_counter()
        request_id = new_request_id()
        head = request.head
        self._head = None
        body = request.body or b""
        self.invocation_id = request_id
        gate = self.front.gate
        refused = gate and gate(head.method, head.target, head.headers, body, request_id)
        if refused:
            self._respond(refused, head)
            return
        event = build_event(
            method=head.method, target=head.target, headers=head.headers, body=body,
            source_ip=self.ip, protocol=head.version, request_id=request_id, now=time.time(),
        )
        self.front.pool.invoke(event, request_id, lambda outcome: self._done(outcome, head))

    def _done(self, outcome: Outcome, head: Head) -> None:
        request_id = self.invocation_id
        if request_id is None or self.is_closed:
            return  # the client left; Lambda still ran (and logged) the invocation
        self._respond(answer(outcome, request_id), head)

    def _respond(self, response: HttpResponse, head: Head) -> None:
        request_id = self.invocation_id or ""
        self.invocation_id = None
        close = _wants_close(head, response)
        data = self._format(response, head, close)
        log = self.front.log
        if self.front.spec.access_log:
            ms = (time.perf_counter() - self._started) * 1000
            log.write(f'{self.ip} "{head.method} {head.target[:200]}" '
                      f"{response.status} {ms:.2f}ms {request_id}")
        log.flush()  # END, REPORT, the access line: in the log once the client has its answer
        self.send(data, close=close)
        if not self.is_closed and not close:
            self._next()

    def _refuse(self, exc: HttpError) -> None:
        """An unreadable request: a JSON error, then close (its unread rest means nothing)."""
        request_line = self._head.line if self._head is not None else ""
        response = json_response(exc.status, {"message": exc.message}, close=True)
        self.front.log.write(f'{self.ip} "{request_line[:200]}" {exc.status}')
        self.front.log.flush()
        self.send(self._format(response, self._head, True), close=True)

    def _format(self, response: HttpResponse, head: Head | None, close: bool) -> bytes:
        lines = [
            f"HTTP/1.1 {response.status} {_phrase(response.status)}",
            f"Date: {self.front.date()}",
            f"Server: {SERVER}",
            f"Content-Length: {len(response.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        has_connection = any(n.lower() == "connection" for n, _ in response.headers)
        version = head.version if head is not None else "HTTP/1.1"
        if close and not has_connection and version == "HTTP/1.1":
            lines.append("Connection: close")
        elif not close and version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        if head is None or head.method != "HEAD":
            out += response.body
        return out

    def closed(self) -> None:
        self.front.conns.discard(self)


def _wants_close(head: Head, response: HttpResponse) -> bool:
    if any(n.lower() == "connection" and v.lower() == "close" for n, v in response.headers):
        return True
    connection = (head.get("connection") or "").lower()
    if head.version == "HTTP/1.0":
        return connection != "keep-alive"
    return connection == "close"


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def _phrase(status: int) -> str:
    return _PHRASES.get(status, "Unknown")
