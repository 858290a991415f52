"""HTTP request ⇄ API Gateway HTTP API (payload format 2.0), as pure functions.

This is the contract the deployed function sees on AWS, so the local emulator builds the same
event and applies the same response rules (a plain JSON result becomes a 200 JSON response; a
dict with `statusCode` is a proxy response). Kept free of sockets so it is unit-testable.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mlops_cli.targets.local.spec import FAKE_ACCOUNT_ID

# The routes the aws target creates; anything else reaches the handler as `$default`.
ROUTES = frozenset({"POST /predict", "GET /health"})
API_ID = "local"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers the server computes itself; a handler's copy would corrupt the framing.
_HOP_BY_HOP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def new_request_id() -> str:
    """A UUID-shaped id. Not a secret: the PRNG is enough, and unlike os.urandom it makes no
    system call (each one hands the front's GIL to another thread)."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_clf_cache: tuple[int, str] = (-1, "")


def _clf_time(epoch: float) -> str:
    """requestContext.time, formatted once a second (it has second resolution)."""
    global _clf_cache
    second = int(epoch)
    if _clf_cache[0] != second:
        t = time.gmtime(second)
        _clf_cache = (second, f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
                              f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000")
    return _clf_cache[1]


def _split_target(target: str) -> tuple[str, str]:
    """`/p?q` → (`/p`, `q`); an absolute-form target (`http://h/p?q`) is reduced to its path."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path or "/", query


def build_event(
    *,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    protocol: str = "HTTP/1.1",
    request_id: str,
    now: float,
    routes: frozenset[str] = ROUTES,
) -> dict[str, Any]:
    """The payload 2.0 event API Gateway would send for this request.

    Repeated headers and query parameters are joined with commas and cookies move to `cookies`,
    as API Gateway does; a body that is not UTF-8 text travels base64-encoded.
    """
    raw_path, raw_query = _split_target(target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    host = merged.get("host", "127.0.0.1")
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-proto", "http")
    if ":" in host:
        merged.setdefault("x-forwarded-port", host.rsplit(":", 1)[1])
    route = f"{method} {raw_path}"
    route_key = route if route in routes else "$default"

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": FAKE_ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": _clf_time(now),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def json_response(
    status: int, payload: Any, request_id: str | None = None, close: bool = False
) -> HttpResponse:
    headers = [("Content-Type", "application/json")]
    if request_id:
        headers.append(("apigw-requestid", request_id))
    if close:
        headers.append(("Connection", "close"))
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return HttpResponse(status, tuple(headers), body)


def internal_error(request_id: str | None) -> HttpResponse:
    """What API Gateway answers when the integration's response cannot be used."""
    return json_response(500, {"message": "Internal Server Error"}, request_id)


def _header_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        text = str(value)
        return None if ("\r" in text or "\n" in text) else text
    return None


def map_result(result: Any, request_id: str | None = None) -> HttpResponse:
    """Apply API Gateway's payload 2.0 response rules to what the handler returned.

    A dict with `statusCode` is a proxy response; anything else valid JSON becomes a 200 whose
    body is that JSON (a string is sent as is). A malformed proxy response is a 500, as on AWS.
    """
    rid = (("apigw-requestid", request_id),) if request_id else ()
    if not (isinstance(result, dict) and "statusCode" in result):
        if isinstance(result, str):
            body = result.encode("utf-8")
        else:
            body = json.dumps(result, separators=(",", ":")).encode("utf-8")
        return HttpResponse(200, (("Content-Type", "application/json"), *rid), body)

    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return internal_error(request_id)

    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        return internal_error(request_id)
    headers: list[tuple[str, str]] = []
    for name, value in raw_headers.items():
        text = _header_text(value)
        if not isinstance(name, str) or not _TOKEN.match(name) or text is None:
            return internal_error(request_id)
        if name.lower() not in _HOP_BY_HOP:
            headers.append((name, text))
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        return internal_error(request_id)
    for cookie in cookies:
        text = _header_text(cookie)
        if not isinstance(cookie, str) or text is None:
            return internal_error(request_id)
        headers.append(("Set-Cookie", text))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.insert(0, ("Content-Type", "application/json"))

    raw_body = result.get("body")
    if raw_body is None:
        body = b""
    elif isinstance(raw_body, str):
        body = raw_body.encode("utf-8")
    else:
        body = json.dumps(raw_body, separators=(",", ":")).encode("utf-8")
    if result.get("isBase64Encoded") is True and body:
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return internal_error(request_id)
    return HttpResponse(status, (*headers, *rid), body)
