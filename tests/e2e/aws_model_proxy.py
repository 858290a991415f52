"""A small HTTP proxy in front of moto_server that answers the way real AWS does where moto does
not, for end-to-end tests of the real CLI (a subprocess: no botocore hooks reach it).

Modelled (the same behaviours as tests/aws/behaviour.py, in real time, kept short):
- a function is `Pending` for `pending_s` after CreateFunction and `InProgress` for `updating_s`
  after UpdateFunctionCode/Configuration; meanwhile PublishVersion, those updates and an
  unqualified Invoke answer 409 ResourceConflictException, and GetFunction /
  GetFunctionConfiguration report the state;
- GetFunction answers without `Tags` (with `TagsError`), as to a caller who may not
  lambda:ListTags on GetFunction's answer but is allowed ListTags itself;
- AddPermission with a statement id that already exists answers 409 (moto appends a duplicate).

It also counts the calls it forwards, named as AWS names them, so a test can assert that a
no-change deploy made no mutating call.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_FN = r"/2015-03-31/functions/(?P<fn>[^/?]+)"
READ_PREFIXES = ("Get", "List", "Describe", "Head")


@dataclass
class ModelState:
    upstream: str
    pending_s: float = 1.5
    updating_s: float = 1.5
    busy: dict[str, tuple[str, float]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self, fn: str) -> str | None:
        kind, until = self.busy.get(fn, ("", 0.0))
        return kind if kind and time.monotonic() < until else None

    def mutating(self) -> list[str]:
        return [c for c in self.calls if not c.startswith(READ_PREFIXES)]


def _operation(method: str, path: str, headers: Any, body: bytes) -> str:
    """AWS's name for the call: X-Amz-Target (JSON protocols), Action= (query), else the REST
    method and path (Lambda, API Gateway v2)."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    if body and b"Action=" in body:
        return urllib.parse.parse_qs(body.decode()).get("Action", ["?"])[0]
    verb = {"GET": "Get", "HEAD": "Head"}.get(method, method.title())
    return f"{verb} {urllib.parse.urlsplit(path).path}"


class _Handler(BaseHTTPRequestHandler):
    model: ModelState

    def log_message(self, *_: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, method, m = self.path, self.command, self.model
        m.calls.append(_operation(method, path, self.headers, body))
        bare = urllib.parse.urlsplit(path).path
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        busy_op = (
            (method == "PUT" and re.fullmatch(_FN + r"/(code|configuration)", bare))
            or (method == "POST" and re.fullmatch(_FN + r"/versions", bare))
            or (method == "POST" and re.fullmatch(_FN + r"/invocations", bare)
                and query.get("Qualifier", ["$LATEST"])[0] == "$LATEST")
        )
        if busy_op:
            fn = urllib.parse.unquote(busy_op.group("fn")).split(":")[-1]
            state = m.state(fn)
            if state:
                m.conflicts.append(bare)
                return self._error(409, "ResourceConflictException",
                                   f"The operation cannot be performed at this time. The "
                                   f"function is {state}: {fn}")
        policy = method == "POST" and re.fullmatch(_FN + r"/policy", bare)
        if policy and self._statement_exists(policy.group("fn"), query, body):
            m.conflicts.append(bare)
            return self._error(409, "ResourceConflictException",
                               "The statement id provided already exists. Please provide a new "
                               "statement id, or remove the existing statement.")
        status, headers, answer = self._forward(method, path, body)
        if status < 300:
            answer = self._after(method, bare, query, body, answer)
        self._reply(status, headers, answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def _after(self, method: str, bare: str, query: dict, body: bytes, answer: bytes) -> bytes:
        m = self.model
        now = time.monotonic()
        if method == "POST" and bare == "/2015-03-31/functions":
            name = json.loads(body or b"{}").get("FunctionName", "")
            m.busy[name] = ("Pending", now + m.pending_s)
        update = method == "PUT" and re.fullmatch(_FN + r"/(code|configuration)", bare)
        if update:
            m.busy[update.group("fn")] = ("InProgress", now + m.updating_s)
        get = method == "GET" and re.fullmatch(_FN + r"(/configuration)?", bare)
        if get:
            doc = json.loads(answer)
            latest = query.get("Qualifier", ["$LATEST"])[0] == "$LATEST"
            conf = doc if get.group(2) else doc.get("Configuration", {})
            state = m.state(get.group("fn")) if latest else None
            if state == "Pending":
                conf["State"], conf["LastUpdateStatus"] = "Pending", "InProgress"
            elif state == "InProgress":
                conf["LastUpdateStatus"] = "InProgress"
            if not get.group(2):
                doc.pop("Tags", None)
                doc["TagsError"] = {"ErrorCode": "AccessDeniedException",
                                    "Message": "The caller may not read tags through "
                                               "GetFunction: use ListTags instead of this."}
            answer = json.dumps(doc).encode()
        return answer

    def _statement_exists(self, fn: str, query: dict, body: bytes) -> bool:
        sid = json.loads(body or b"{}").get("StatementId")
        qualifier = query.get("Qualifier", [None])[0]
        url = f"/2015-03-31/functions/{fn}/policy" + (f"?Qualifier={qualifier}" if qualifier
                                                      else "")
        status, _, answer = self._forward("GET", url, b"")
        if status >= 300:
            return False
        policy = json.loads(json.loads(answer).get("Policy") or "{}")
        return any(s.get("Sid") == sid for s in policy.get("Statement", []))

    def _forward(self, method: str, path: str, body: bytes) -> tuple[int, dict, bytes]:
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "content-length", "connection")}
        request = urllib.request.Request(self.model.upstream + path, data=body or None,
                                         method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self._reply(status, {"x-amzn-ErrorType": code, "Content-Type": "application/json"}, body)

    def _reply(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "server",
                                   "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def start(upstream: str) -> tuple[ThreadingHTTPServer, ModelState, str]:
    state = ModelState(upstream=upstream)
    handler = type("ModelHandler", (_Handler,), {"model": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, state, f"http://{host}:{port}"
