"""HTTP ⇄ API Gateway payload 2.0 mapping of the local target: what the handler receives and
what the client gets back must be what API Gateway would produce."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from mlops_cli.targets.local.events import build_event, map_result

NOW = 1_700_000_000.123


def _event(**overrides):
    args = dict(
        method="POST",
        target="/predict",
        headers=[("Host", "127.0.0.1:8080"), ("Content-Type", "application/json"),
                 ("User-Agent", "curl/8")],
        body=b'{"features": [1, 2, 3, 4]}',
        source_ip="127.0.0.1",
        request_id="req-1",
        now=NOW,
    )
    args.update(overrides)
    return build_event(**args)


def test_event_has_the_payload_2_0_shape_api_gateway_sends():
    event = _event()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /predict"
    assert event["rawPath"] == "/predict"
    assert event["rawQueryString"] == ""
    assert event["body"] == '{"features": [1, 2, 3, 4]}'
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["http"] == {
        "method": "POST", "path": "/predict", "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1", "userAgent": "curl/8",
    }
    assert ctx["stage"] == "$default"
    assert ctx["requestId"] == "req-1"
    assert ctx["timeEpoch"] == 1_700_000_000_123
    assert ctx["time"] == "14/Nov/2023:22:13:20 +0000"
    assert ctx["accountId"].isdigit() and ctx["apiId"] and ctx["domainName"] == "127.0.0.1:8080"
    assert "queryStringParameters" not in event and "cookies" not in event


def test_headers_are_lower_cased_and_repeats_joined_with_commas():
    event = _event(headers=[("X-Thing", "a"), ("x-thing", "b"), ("ACCEPT", "*/*")])
    assert event["headers"]["x-thing"] == "a,b"
    assert event["headers"]["accept"] == "*/*"
    assert all(name == name.lower() for name in event["headers"])


def test_cookies_move_out_of_the_headers_into_the_cookies_list():
    event = _event(headers=[("Cookie", "a=1; b=2")])
    assert event["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in event["headers"]


def test_query_string_is_kept_raw_and_parsed_with_repeats_joined():
    event = _event(method="GET", target="/health?x=1&x=2&y=", body=b"")
    assert event["rawPath"] == "/health"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["routeKey"] == "GET /health"
    assert "body" not in event


def test_unknown_route_reaches_the_handler_as_default_route():
    assert _event(method="GET", target="/nope", body=b"")["routeKey"] == "$default"
    assert _event(method="GET", target="/predict", body=b"")["routeKey"] == "$default"


def test_absolute_form_request_target_is_reduced_to_its_path():
    event = _event(target="http://127.0.0.1:1/predict?a=b")
    assert event["rawPath"] == "/predict" and event["rawQueryString"] == "a=b"


def test_a_body_that_is_not_utf8_travels_base64_encoded():
    raw = bytes(range(256))
    event = _event(body=raw)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


@given(st.binary(max_size=300))
def test_any_body_round_trips_through_the_event(raw):
    event = _event(body=raw)
    if not raw:
        assert "body" not in event
    elif event["isBase64Encoded"]:
        assert base64.b64decode(event["body"]) == raw
    else:
        assert event["body"].encode("utf-8") == raw


def test_plain_dict_result_becomes_a_200_json_response():
    response = map_result({"prediction": 0}, "rid")
    assert response.status == 200
    assert ("Content-Type", "application/json") in response.headers
    assert ("apigw-requestid", "rid") in response.headers
    assert json.loads(response.body) == {"prediction": 0}


def test_plain_string_result_is_sent_as_is():
    assert map_result("hello").body == b"hello"


def test_proxy_response_keeps_status_headers_and_body():
    response = map_result({
        "statusCode": 400,
        "headers": {"content-type": "application/json", "X-Count": 3},
        "body": '{"error": {"code": "bad"}}',
    })
    assert response.status == 400
    assert ("content-type", "application/json") in response.headers
    assert ("X-Count", "3") in response.headers
    assert response.body == b'{"error": {"code": "bad"}}'


def test_proxy_response_base64_body_is_decoded_and_cookies_become_set_cookie():
    response = map_result({
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\xff").decode(),
        "isBase64Encoded": True,
        "cookies": ["a=1; Path=/"],
    })
    assert response.body == b"\x00\xff"
    assert ("Set-Cookie", "a=1; Path=/") in response.headers


def test_proxy_response_cannot_override_framing_headers():
    response = map_result({"statusCode": 200, "headers": {"Content-Length": "999"}, "body": "x"})
    assert all(name.lower() != "content-length" for name, _ in response.headers)


def test_malformed_proxy_responses_are_a_500_as_on_api_gateway():
    for bad in (
        {"statusCode": "abc"},
        {"statusCode": 99},
        {"statusCode": True},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "headers": {"X": "a\r\nInjected: 1"}},
        {"statusCode": 200, "headers": {"bad name": "x"}},
        {"statusCode": 200, "body": "!!!", "isBase64Encoded": True},
    ):
        response = map_result(bad)
        assert response.status == 500, bad
        assert json.loads(response.body) == {"message": "Internal Server Error"}
