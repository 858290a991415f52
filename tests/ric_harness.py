"""AWS's runtime interface client run directly, against a minimal Runtime API on 127.0.0.1.

Independent of the local target's own Runtime API (`runtime_api.py`): a plain `http.server`
that hands out the given events in order and records what the client posts back. Tests use it to
see what Lambda itself would receive from a package — the oracle the local endpoint's answers are
compared with.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

PREFIX = "/2018-06-01/runtime"
LAUNCH = (
    "import sys;root,client=sys.argv[1:3];del sys.argv[1:3];sys.path[:0]=[root,client];"
    "import runpy;runpy.run_module('awslambdaric',run_name='__main__',alter_sys=True)"
)


@dataclass
class Posted:
    init_error: dict[str, Any] | None = None
    init_error_type: str | None = None
    results: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (kind, body)


class _Api(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.pending: queue.SimpleQueue[tuple[str, bytes] | None] = queue.SimpleQueue()
        for event in events:
            self.pending.put((str(uuid.uuid4()), json.dumps(event).encode()))
        self.pending.put(None)
        self.ids: list[str] = []
        self.posted = Posted()
        self.finished = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body go out as separate writes
    server: _Api

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes = b'{"status":"OK"}',
               headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        item = self.server.pending.get() if self.path == PREFIX + "/invocation/next" else None
        if item is None:
            self.server.finished.set()
            self.close_connection = True
            self._reply(500, b'{"errorType":"NoMoreEvents"}')  # the client exits on it
            return
        request_id, body = item
        self.server.ids.append(request_id)
        self._reply(200, body, {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": "9999999999999",
            "Lambda-Runtime-Invoked-Function-Arn":
                "arn:aws:lambda:us-east-1:123456789012:function:harness",
            "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
        })

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        posted = self.server.posted
        if self.path == PREFIX + "/init/error":
            posted.init_error = json.loads(body)
            posted.init_error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
            self.server.finished.set()
        else:
            _, _, request_id, kind = self.path[len(PREFIX):].split("/")
            posted.results[request_id] = (kind, body)
        self._reply(202)


def python312() -> str:
    from mlops_cli.interpreters import find_interpreter

    found = find_interpreter("python3.12")
    if found is None:
        pytest.skip("no Python 3.12 interpreter here (PATH, pyenv)")
    return found.path


def run_client(
    root: Path, events: list[dict[str, Any]], handler: str = "iris_runtime.handler.lambda_handler",
    python: str | None = None, timeout: float = 60, extra_env: dict[str, str] | None = None,
) -> tuple[Posted, list[str], subprocess.CompletedProcess[str]]:
    """Run awslambdaric over `events` (the package unpacked at `root`); what it posted, the
    request ids in order, and the finished process (its output is the function's log)."""
    from mlops_cli.console import NullReporter
    from mlops_cli.interpreters import _probe
    from mlops_cli.targets.local.ric import ensure_client

    python = python or python312()
    version = _probe(python)
    assert version, python
    client = ensure_client(version, NullReporter())
    api = _Api(events)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        env = {
            "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": ":UTC",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
            "_HANDLER": handler, "LAMBDA_TASK_ROOT": str(root),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
            "AWS_LAMBDA_FUNCTION_NAME": "harness", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_REGION": "us-east-1",
            **(extra_env or {}),
        }
        proc = subprocess.run(
            [python, "-I", "-S", "-c", LAUNCH, str(root), str(client), handler],
            cwd=root, env=env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    finally:
        api.shutdown()
        api.server_close()
    return api.posted, api.ids, proc
