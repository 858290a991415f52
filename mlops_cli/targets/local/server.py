"""The HTTP front of the local target: 127.0.0.1 only, HTTP/1.1 keep-alive, one thread per
connection, every request handed as an API Gateway payload 2.0 event to a warm worker (which
runs awslambdaric against the Runtime API in `runtime_api.py`), answered as API Gateway would.

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
import socketserver
import sys
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlops_cli.targets.local.auth import gate_for
from mlops_cli.targets.local.events import (
    HttpResponse,
    build_event,
    internal_error,
    json_response,
    map_result,
    new_request_id,
)
from mlops_cli.targets.local.pool import InitError, LineLog, Outcome, WorkerPool
from mlops_cli.targets.local.spec import ServerSpec

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SOCKET_TIMEOUT_S = 15.0  # an idle or trickling client loses its connection, never a worker


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Terminated(Exception):
    """SIGTERM, raised in the main thread so shutdown runs the same path as Ctrl-C."""


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, port: int, pool: WorkerPool, spec: ServerSpec, log: LineLog) -> None:
        self.pool = pool
        self.spec = spec
        self.log = log
        self.gate = gate_for(spec, log.write)  # api.auth: iam → SigV4 checked before any worker
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a DNS lookup); loopback needs none.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        self.log.write(f"connection from {client_address[0]} failed: {exc!r}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "iris-mlops-local"
    sys_version = ""
    timeout = SOCKET_TIMEOUT_S
    disable_nagle_algorithm = True
    server: LocalHTTPServer

    # every method reaches the function, which answers unknown ones itself (as on AWS)
    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    # plumbing ---------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        self.server.log.write(f"{self.client_address[0]} {format % args}")

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # _handle writes one line with the latency instead

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """JSON errors, with a status line even for requests too broken to have a version."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self._write(json_response(code, {"message": message or phrase}, close=True))
        self.log_message('"%s" %d', (self.requestline or "")[:200], code)

    def handle_expect_100(self) -> bool:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = 0
        if length > self.server.spec.max_body:
            self.send_error(413, "Request Entity Too Large")
            return False
        return super().handle_expect_100()

    def _write(self, response: HttpResponse) -> None:
        phrase = _phrase(response.status)
        lines = [
            f"HTTP/1.1 {response.status} {phrase}",
            f"Date: {formatdate(usegmt=True)}",
            f"Server: {self.server_version}",
            f"Content-Length: {len(response.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if any(n.lower() == "connection" and v.lower() == "close" for n, v in response.headers):
            self.close_connection = True
        elif self.close_connection and self.request_version == "HTTP/1.1":
            lines.append("Connection: close")
        elif not self.close_connection and self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        body = b"" if self.command == "HEAD" else response.body
        self.wfile.write(head + body)

    def _read_body(self) -> bytes:
        limit = self.server.spec.max_body
        encoding = self.headers.get("Transfer-Encoding")
        lengths = self.headers.get_all("Content-Length") or []
        if encoding is not None:
            if lengths:
                raise _HttpError(400, "Content-Length and Transfer-Encoding are both set")
            if encoding.strip().lower() != "chunked":
                raise _HttpError(501, f"Transfer-Encoding {encoding!r} is not supported")
            return self._read_chunked(limit)
        if not lengths:
            if self.command in _BODY_METHODS:
                raise _HttpError(411, "Length Required")
            return b""
        if len(set(lengths)) != 1 or not lengths[0].strip().isdigit():
            raise _HttpError(400, "invalid Content-Length")
        length = int(lengths[0])
        if length > limit:
            raise _HttpError(413, f"Request Entity Too Large: the limit is {limit} bytes")
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("client closed the connection mid-body")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "malformed chunked body") from None
            if size < 0:
                raise _HttpError(400, "malformed chunked body")
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are dropped, as API Gateway drops them
                return b"".join(chunks)
            total += size
            if total > limit:
                raise _HttpError(413, f"Request Entity Too Large: the limit is {limit} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ConnectionError("client closed the connection mid-body")
            chunks.append(chunk)
            self.rfile.readline(8)

    # the request ------------------------------------------------------------------------------
    def _handle(self) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        try:
            if self.request_version == "HTTP/0.9":
                raise _HttpError(400, "HTTP/0.9 is not supported")
            body = self._read_body()
        except _HttpError as exc:
            # The unread body would be parsed as the next request: close instead.
            self.close_connection = True
            response = json_response(exc.status, {"message": exc.message}, request_id, close=True)
        else:
            gate = self.server.gate
            refused = gate and gate(self.command, self.path, list(self.headers.items()), body,
                                    request_id)
            response = refused or self._invoke(body, request_id)
        self._write(response)
        if self.server.spec.access_log:
            ms = (time.perf_counter() - started) * 1000
            self.server.log.write(
                f'{self.client_address[0]} "{self.command} {self.path[:200]}" '
                f"{response.status} {ms:.2f}ms {request_id}"
            )

    def _invoke(self, body: bytes, request_id: str) -> HttpResponse:
        event = build_event(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            request_id=request_id,
            now=time.time(),
        )
        outcome = self.server.pool.invoke(event, request_id)
        return answer(outcome, request_id)


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


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


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
    pool = WorkerPool(spec, log)
    httpd: LocalHTTPServer | None = None
    try:
        try:
            httpd = LocalHTTPServer(spec.port, pool, spec, log)
        except OSError as exc:
            on_ready({"ok": False, "error": f"cannot listen on 127.0.0.1:{spec.port}: "
                      f"{exc.strerror or exc}"})
            return 1
        try:
            pool.start()
        except InitError as exc:
            log.write(f"init failed: {exc}")
            on_ready({"ok": False, "error": str(exc), "init_error": exc.info})
            return 1
        port = httpd.server_address[1]
        log.write(f"listening on http://127.0.0.1:{port} (pid {os.getpid()}, env {spec.env})")
        on_ready({"ok": True, "port": port, "pid": os.getpid(), "workers": pool.pids(),
                  "python_version": pool.python_version})
        httpd.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, _Terminated):
        log.write("stopping")
    finally:
        if httpd is not None:
            httpd.server_close()
        pool.close()
        signal.signal(signal.SIGTERM, previous)
    return 0


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
