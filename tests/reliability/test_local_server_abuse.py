"""Abuse the real local server (a trained model's portable zip, real runtime) on 127.0.0.1.

Malformed HTTP, lying Content-Length, slow clients, oversized bodies, 200 connections at once,
workers killed mid-request: the server keeps answering others, its memory (RSS from /proc) stays
bounded, it never crashes, and a request whose worker dies gets API Gateway's 500 instead of
hanging.

`tests/integration/test_local_target.py` covers the emulator's contract with a probe handler;
this module is about volume and hostility against the real package. Every loop is bounded in
count and time, every socket has a timeout, and nothing leaves loopback.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import random
import signal
import socket
import struct
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig, Settings
from mlops_cli.console import NullReporter
from mlops_cli.targets import local
from mlops_cli.targets.local.process import is_alive, server_processes
from tests.conftest import Trained
from tests.reliability import figures

SETOSA = json.dumps({"features": [5.1, 3.5, 1.4, 0.2]}).encode()
IO_TIMEOUT = 10.0  # every socket operation; a hang fails the test instead of stalling CI
RSS_GROWTH_LIMIT_KB = 64 * 1024


# -- the deployment and helpers ---------------------------------------------------------------
@pytest.fixture(scope="module")
def server(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("abuse")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IRIS_MLOPS_CACHE", str(tmp / "cache"))
        cfg = EnvConfig(env="abuse", path=None, settings=Settings.model_validate(
            {"local": {"port": 0, "workers": 2}, "lambda": {"timeout_s": 3}}
        ))
        store = ArtifactStore(tmp / "artifacts")
        result = local.deploy(cfg, store, trained.package, NullReporter())
        result["port"] = int(result["url"].rsplit(":", 1)[1])
        result["rss_start_kb"] = rss_kb(result["pid"])
        try:
            yield result
        finally:
            local.teardown(cfg, store, NullReporter())


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def workers_of(server_pid: int) -> list[int]:
    return [p for p in server_processes(server_pid) if p != server_pid]


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    sock.settimeout(IO_TIMEOUT)
    return sock


def exchange(port: int, data: bytes, *, half_close: bool = True) -> bytes:
    """Send raw bytes, signal end of input, read until the server closes (bounded by timeouts)."""
    with connect(port) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)  # the server may refuse (and close) before reading everything
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        else:
            raise AssertionError(f"the server kept the connection open: {data[:80]!r}")
    return b"".join(chunks)


def predict(port: int, body: bytes = SETOSA) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=IO_TIMEOUT)
    try:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def assert_serving(server: dict[str, Any]) -> None:
    """The server is alive, answers a real prediction and leaks no stack trace into its log."""
    assert is_alive(server["pid"]), "the server process died"
    status, body = predict(server["port"])
    assert (status, body.get("class_name")) == (200, "setosa"), body


def status_of(reply: bytes) -> int | None:
    if not reply.startswith(b"HTTP/1."):
        return None
    return int(reply.split(b" ", 2)[1])


# -- malformed HTTP -----------------------------------------------------------------------------
MALFORMED: list[bytes] = [
    b"GARBAGE\r\n\r\n",
    b"\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /health\r\n\r\n",  # HTTP/0.9
    b"GET /health HTTP/9.9\r\n\r\n",
    b"GET /health HTTP/1.1 extra\r\n\r\n",
    b"GET /health HTTP/1.1\r\nno-colon-header\r\n\r\n",
    b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 150 + b"\r\n",  # too many headers
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",  # request line too long
    b"GET /health HTTP/1.1\r\nX-Big: " + b"v" * 70_000 + b"\r\n\r\n",  # header line too long
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # an HTTP/2 preface
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),  # a TLS ClientHello
    b"GET /\x00health HTTP/1.1\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nContent-Length: -5\r\n\r\n{}",
    b"POST /predict HTTP/1.1\r\nContent-Length: +5\r\n\r\n{}",
    b"POST /predict HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n{}",
    b"POST /predict HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
    b"POST /predict HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}",
    b"POST /predict HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
    b"POST /predict HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n{}",
    b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n{}\r\n0\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6ACFC0\r\n",  # 7 MB chunk
    b"POST /predict HTTP/1.1\r\n\r\n" + SETOSA,  # no length at all
    b"POST /predict HTTP/1.1\r\nContent-Length: 36\r\n\r\n\xff\xfe\x00garbage-not-json",
]


def test_malformed_requests_never_get_a_server_failure_and_the_server_lives_on(server):
    port = server["port"]
    statuses: dict[int, int] = {}
    rng = random.Random(20240601)
    corpus = list(MALFORMED)
    for _ in range(150):  # random bytes, some shaped like a request line
        junk = rng.randbytes(rng.randint(1, 400))
        corpus.append(junk if rng.random() < 0.5 else b"POST /predict HTTP/1.1\r\n" + junk)
    for data in corpus:
        reply = exchange(port, data)
        status = status_of(reply)
        if status is not None:
            # 4xx, or 501/505 for what HTTP/1.1 does not support; never a server failure
            assert status < 500 or status in (501, 505), (data[:80], reply[:200])
            assert b"Traceback" not in reply and b'File "' not in reply
            _, _, body = reply.partition(b"\r\n\r\n")
            if body:
                json.loads(body)  # every error body is JSON
        statuses[status or 0] = statuses.get(status or 0, 0) + 1
    assert_serving(server)
    figures.record(
        "local server abuse",
        malformed_requests=len(corpus),
        malformed_answered=sum(n for s, n in statuses.items() if s),
        malformed_closed_silently=statuses.get(0, 0),
        malformed_statuses=" ".join(f"{s}x{n}" for s, n in sorted(statuses.items()) if s),
    )


# -- lying Content-Length -----------------------------------------------------------------------
def test_a_content_length_shorter_than_the_body_is_read_as_declared(server):
    port = server["port"]
    body = json.dumps({"features": [5.1, 3.5, 1.4, 0.2], "pad": "x" * 40}).encode()
    reply = exchange(
        port,
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n" + body,
    )
    # The first 10 bytes reach the handler as a (truncated) body: a JSON 400 from the runtime;
    # the rest is parsed as a next request and refused.
    assert reply.startswith(b"HTTP/1.1 400 ")
    first = reply.split(b"\r\n\r\n", 1)[1]
    assert b'"invalid_json"' in first
    assert_serving(server)
    figures.record("local server abuse", lying_content_length=1)


def test_a_content_length_longer_than_the_body_never_hangs_the_server(server):
    port = server["port"]
    with connect(port) as sock:  # the client stops sending but keeps its socket open
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"fe")
        for _ in range(3):
            assert_serving(server)  # others are served while that body never completes
    reply = exchange(  # the same lie, then end of input: the server gives up without answering
        port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"fe"
    )
    assert reply == b""
    assert_serving(server)
    figures.record("local server abuse", lying_content_length=2)


# -- slow clients -------------------------------------------------------------------------------
def test_slowloris_clients_hold_sockets_not_workers(server):
    """Five sockets trickle a request a byte a second for four seconds; 40 others are served."""
    port = server["port"]
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(SETOSA), SETOSA,
    )
    slow = [connect(port) for _ in range(5)]
    served: list[int] = []
    stop = threading.Event()

    def others() -> None:
        while not stop.is_set() and len(served) < 40:
            served.append(predict(port)[0])

    thread = threading.Thread(target=others)
    thread.start()
    try:
        for second in range(4):
            for sock in slow:
                sock.sendall(request[second : second + 1])
            time.sleep(1.0)
    finally:
        stop.set()
        thread.join(timeout=IO_TIMEOUT * 5)
        for sock in slow:
            sock.close()
    assert served and all(code == 200 for code in served), served
    assert_serving(server)
    figures.record(
        "local server abuse", slowloris_sockets=len(slow), served_during_slowloris=len(served)
    )


# -- bodies over the bound ----------------------------------------------------------------------
def test_bodies_over_the_bounds_get_413_from_the_server_or_the_runtime(server):
    port = server["port"]
    # over the emulator's 6 MB payload limit: refused from the header, the body is never read
    reply = exchange(
        port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 7000000\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413 ")
    # under the emulator's limit, over the runtime's 1 MiB: the handler's JSON 413
    big = json.dumps({"features": [1, 2, 3, 4], "pad": "x" * (1024 * 1024 + 10)}).encode()
    status, body = predict(port, big)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    # a batch over max_batch rows
    rows = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 1001}).encode()
    status, body = predict(port, rows)
    assert status == 413 and body["error"]["code"] == "batch_too_large"
    before = rss_kb(server["pid"])
    for _ in range(5):  # a few full-size (6 MB) bodies: memory returns, nothing accumulates
        status, _ = predict(port, b"x" * (6 * 1024 * 1024 - 100))
        assert status == 413  # the runtime's own 1 MiB bound
    assert rss_kb(server["pid"]) - before < RSS_GROWTH_LIMIT_KB
    assert_serving(server)
    figures.record("local server abuse", oversized_bodies=8)


# -- many connections at once -------------------------------------------------------------------
def test_two_hundred_connections_at_once_are_all_answered(server):
    port = server["port"]
    pid = server["pid"]
    threads_before = threads_of(pid)
    sockets: list[socket.socket] = []
    try:
        for _ in range(200):
            sockets.append(connect(port))
        request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
            len(SETOSA), SETOSA,
        )
        for sock in sockets:
            sock.sendall(request)
        peak_threads = threads_of(pid)
        answered = 0
        for sock in sockets:
            reply = b""
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200 ") and b"setosa" in reply, reply[:200]
            answered += 1
        peak_rss = rss_kb(pid)
    finally:
        for sock in sockets:
            sock.close()
    deadline = time.monotonic() + 10
    while threads_of(pid) > threads_before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)  # connection threads end once their sockets close
    assert threads_of(pid) <= threads_before + 5
    assert peak_rss - server["rss_start_kb"] < RSS_GROWTH_LIMIT_KB
    assert_serving(server)
    figures.record(
        "local server abuse",
        concurrent_connections=len(sockets),
        concurrent_answered_200=answered,
        peak_threads=peak_threads,
    )


# -- workers that die ---------------------------------------------------------------------------
def _socket_rx_queues() -> dict[str, int]:
    """Unread bytes per TCP socket inode (loopback sockets are in /proc/net/tcp)."""
    queues: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                queues[fields[9]] = int(fields[4].split(":")[1], 16)
    return queues


def _pending_bytes(pid: int) -> int:
    """Bytes waiting unread in a worker's sockets and pipes: the invocation handed to it."""
    total = 0
    queues = _socket_rx_queues()
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            total += queues.get(target[len("socket:["):-1], 0)
            continue
        if not target.startswith("pipe:"):
            continue
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
            total += struct.unpack("i", raw)[0]
        except OSError:
            pass
        finally:
            os.close(fd)
    return total


def test_a_worker_killed_mid_request_is_a_500_and_is_replaced(server):
    port, pid = server["port"], server["pid"]
    workers = workers_of(pid)
    assert len(workers) == 2
    for worker in workers:  # frozen: the next request waits inside a worker
        os.kill(worker, signal.SIGSTOP)
    result: list[tuple[int, dict[str, Any]]] = []
    caller = threading.Thread(target=lambda: result.append(predict(port)))
    caller.start()
    deadline = time.monotonic() + IO_TIMEOUT
    while not any(_pending_bytes(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(_pending_bytes(w) for w in workers), "the request never reached a worker"
    for worker in workers:
        os.kill(worker, signal.SIGKILL)
    caller.join(timeout=IO_TIMEOUT)
    assert not caller.is_alive(), "the request hung after its worker died"
    status, body = result[0]
    # API Gateway's answer to a function error; Lambda's Runtime.ExitError is in the log
    assert (status, body) == (500, {"message": "Internal Server Error"})
    deadline = time.monotonic() + IO_TIMEOUT
    while "Runtime.ExitError" not in Path(server["log"]).read_text():
        assert time.monotonic() < deadline, "the log never said the runtime exited"
        time.sleep(0.05)
    # A request handed to the idle worker in the instant between its SIGKILL and its death
    # fails like one sent to a dying Lambda instance; wait until the kernel has killed both.
    deadline = time.monotonic() + IO_TIMEOUT
    while any(is_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    for _ in range(6):  # both workers are replaced; every request is answered
        assert_serving(server)
    replaced = workers_of(pid)
    assert len(replaced) == 2 and not set(replaced) & set(workers)
    figures.record("local server abuse", workers_killed=len(workers), worker_deaths_500=1)


def test_memory_stays_bounded_and_the_log_holds_no_traceback(server):
    """Runs last: after everything above, the server is the same process, in bounded memory."""
    pid = server["pid"]
    rss = rss_kb(pid)
    assert rss - server["rss_start_kb"] < RSS_GROWTH_LIMIT_KB
    log = Path(server["log"]).read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log
    assert_serving(server)
    figures.record(
        "local server abuse",
        server_rss_start_mib=round(server["rss_start_kb"] / 1024, 1),
        server_rss_end_mib=round(rss / 1024, 1),
        server_restarts=0,
    )
