"""Builders of Lambda events as AWS documents them, for tests of the runtime and the emulator.

- API Gateway HTTP API, payload format 2.0:
  https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
- API Gateway REST API, Lambda proxy integration (payload 1.0):
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
- Lambda function URL (payload 2.0 with a `lambda-url` domain):
  https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html
- Direct invocation: the payload itself is the event.

`body` may be a str (sent as is), bytes (sent base64-encoded, as API Gateway does for binary
bodies), None (no body), or any other value (sent as JSON text). `base64=True` encodes a text
body too, as API Gateway does for some content types.
"""

from __future__ import annotations

import base64 as _b64
import json
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
API_ID = "a1b2c3d4e5"
URL_ID = "abcdefghijklmnopqrstuvwxyz012345"


@dataclass
class LambdaContext:
    """The attributes of the context object the Python runtime passes to a handler."""

    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    function_name: str = "iris-mlops-dev"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:iris-mlops-dev"
    log_group_name: str = "/aws/lambda/iris-mlops-dev"
    log_stream_name: str = "2024/01/01/[$LATEST]abcdef"
    remaining_ms: int = 30_000
    client_context: Any = None
    identity: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def encode_body(body: Any, base64: bool = False) -> tuple[str | None, bool]:
    """(body string, isBase64Encoded) as API Gateway would put them in the event."""
    if body is None:
        return None, False
    if isinstance(body, bytes):
        return _b64.b64encode(body).decode("ascii"), True
    text = body if isinstance(body, str) else json.dumps(body)
    if base64:
        return _b64.b64encode(text.encode("utf-8")).decode("ascii"), True
    return text, False


def _headers(body: str | None) -> dict[str, str]:
    headers = {
        "accept": "*/*",
        "host": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        "user-agent": "curl/8.5.0",
        "x-forwarded-for": "192.0.2.1",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        headers["content-type"] = "application/json"
        headers["content-length"] = str(len(body))
    return headers


def http_api_v2(
    method: str = "POST",
    path: str = "/predict",
    body: Any = None,
    *,
    stage: str = "$default",
    base64: bool = False,
    domain: str | None = None,
    route_key: str | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event; `rawPath` carries `/<stage>` for a named stage."""
    text, is_b64 = encode_body(body, base64)
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    route = route_key or f"{method} {path}"
    domain = domain or f"{API_ID}.execute-api.{REGION}.amazonaws.com"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": _headers(text),
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": route,
            "stage": stage,
            "time": "10/Mar/2024:12:00:00 +0000",
            "timeEpoch": 1710072000000,
        },
        "isBase64Encoded": is_b64,
    }
    if text is not None:
        event["body"] = text
    return event


def function_url(
    method: str = "POST", path: str = "/predict", body: Any = None, *, base64: bool = False
) -> dict[str, Any]:
    """A Lambda function URL event: payload 2.0, `$default` route and stage, lambda-url domain."""
    event = http_api_v2(
        method,
        path,
        body,
        base64=base64,
        domain=f"{URL_ID}.lambda-url.{REGION}.on.aws",
        route_key="$default",
    )
    event["requestContext"]["apiId"] = URL_ID
    event["headers"]["host"] = f"{URL_ID}.lambda-url.{REGION}.on.aws"
    return event


def rest_v1(
    method: str = "POST",
    path: str = "/predict",
    body: Any = None,
    *,
    stage: str = "dev",
    base64: bool = False,
    path_includes_stage: bool = False,
) -> dict[str, Any]:
    """A REST API proxy (payload 1.0) event. `path` excludes the stage on the execute-api domain
    (`requestContext.path` includes it); `path_includes_stage=True` mimics a custom domain
    whose base path mapping leaves the stage in `path`."""
    text, is_b64 = encode_body(body, base64)
    headers = _headers(text)
    event_path = f"/{stage}{path}" if path_includes_stage else path
    return {
        "resource": path,
        "path": event_path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "httpMethod": method,
            "identity": {"sourceIp": "192.0.2.1", "userAgent": "curl/8.5.0"},
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTimeEpoch": 1710072000000,
            "resourceId": "abc123",
            "resourcePath": path,
            "stage": stage,
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


def direct(payload: Any) -> Any:
    """A direct invocation (`aws lambda invoke --payload ...`): the payload is the event."""
    return payload


HTTP_SHAPES = {
    "http_api_v2": http_api_v2,
    "function_url": function_url,
    "rest_v1": rest_v1,
}


def response_json(response: dict[str, Any]) -> Any:
    """The decoded body of a proxy response (asserting the envelope is well-formed)."""
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}, response
    assert response["isBase64Encoded"] is False
    assert response["headers"]["content-type"] == "application/json"
    return json.loads(response["body"], parse_constant=_reject_constant)


def _reject_constant(token: str) -> Any:
    raise AssertionError(f"response body contains the non-JSON token {token}")
