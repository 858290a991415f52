"""Recognise the shape of a Lambda event and reduce it to (source, method, path, body).

Shapes, as AWS documents them:
- `http_api_v2`: API Gateway HTTP API, payload format 2.0 — `version: "2.0"`,
  `requestContext.http.method`, `rawPath` (includes `/<stage>` for a named stage).
- `function_url`: the same 2.0 shape; `requestContext.domainName` contains `.lambda-url.`.
- `rest_v1`: API Gateway REST API proxy integration (and HTTP API payload 1.0) — `httpMethod`,
  `path` (without the stage on the default domain, with a base path on custom domains).
- `direct`: anything else, e.g. `aws lambda invoke --payload '{"features": [...]}'`. The event
  *is* the request body: a predict request. `{"action": "health"}` asks for the health report;
  `{"action": "predict", ...}` is an explicit predict. Non-HTTP responses are plain objects.

A path that is not a route is retried without a leading `/<stage>` segment, so `/dev/predict`
works whichever way the stage reached us; trailing slashes are ignored.
"""

from __future__ import annotations

from .validation import RequestError

ROUTES = {"/predict": "POST", "/health": "GET"}
DIRECT = "direct"


def _route_path(path: object, stage: object) -> str:
    if type(path) is not str or not path:
        return "/"
    path = path.rstrip("/") or "/"
    if path in ROUTES:
        return path
    if type(stage) is str and stage and stage != "$default":
        prefix = "/" + stage
        if path.startswith(prefix + "/"):
            stripped = path[len(prefix) :]
            if stripped in ROUTES:
                return stripped
    return path


def classify(event: object) -> tuple[str, str | None, str | None, object, bool]:
    """(source, method, path, body, is_base64); for `direct` the body is the event itself.

    Raises RequestError for an HTTP event too malformed to route.
    """
    if type(event) is not dict:
        return DIRECT, None, None, event, False
    if "httpMethod" in event:
        context = event.get("requestContext")
        stage = context.get("stage") if type(context) is dict else None
        path = event.get("path") or event.get("resource")
        method = event["httpMethod"]
        source = "rest_v1"
    elif "requestContext" in event or event.get("version") == "2.0":
        context = event.get("requestContext")
        http = context.get("http") if type(context) is dict else None
        if type(http) is not dict or type(http.get("method")) is not str:
            raise RequestError(
                400,
                "invalid_event",
                "event has a requestContext but no requestContext.http.method; send an API "
                'Gateway/function URL event, or a plain {"features": [...]} object',
            )
        method = http["method"]
        path = event.get("rawPath") or http.get("path")
        stage = context.get("stage")
        domain = context.get("domainName")
        is_url = type(domain) is str and ".lambda-url." in domain
        source = "function_url" if is_url else "http_api_v2"
    else:
        return DIRECT, None, None, event, False
    if type(method) is not str:
        raise RequestError(400, "invalid_event", "event httpMethod is not a string")
    return (
        source,
        method.upper(),
        _route_path(path, stage),
        event.get("body"),
        event.get("isBase64Encoded") is True,
    )


def request_id(event: object, context: object) -> str | None:
    rid = getattr(context, "aws_request_id", None)
    if type(rid) is str:
        return rid
    if type(event) is dict:
        ctx = event.get("requestContext")
        if type(ctx) is dict and type(ctx.get("requestId")) is str:
            return ctx["requestId"]
    return None
