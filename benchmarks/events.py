"""The API Gateway HTTP API (payload 2.0) event every figure sends, as AWS documents it."""

from __future__ import annotations

import json
from typing import Any

SETOSA = [5.1, 3.5, 1.4, 0.2]


def http_api_v2(body: Any, path: str = "/predict", method: str = "POST") -> dict[str, Any]:
    text = json.dumps(body)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "content-length": str(len(text)),
            "host": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
            "user-agent": "iris-bench",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "iris-bench",
            },
            "requestId": "bench-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2024:00:00:00 +0000",
            "timeEpoch": 1704067200000,
        },
        "body": text,
        "isBase64Encoded": False,
    }


def predict_event(rows: int = 1) -> dict[str, Any]:
    """One row as `features`, several as `instances` (cycling over a few Iris-like rows)."""
    if rows == 1:
        return http_api_v2({"features": SETOSA})
    samples = [SETOSA, [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]
    return http_api_v2({"instances": [samples[i % len(samples)] for i in range(rows)]})
