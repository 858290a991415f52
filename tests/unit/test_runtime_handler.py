"""The Lambda handler as a caller sees it: every event shape, every route, every bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.runtime.model import load_model
from mlops_cli.runtime.service import Service
from mlops_cli.runtime.validation import MIN_BODY_LIMIT
from tests import events
from tests.runtime_models import CLASS_NAMES, fitted, iris, write_model_dir

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
CTX = events.LambdaContext()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    estimator = fitted("logistic_regression", scale=True)
    return write_model_dir(tmp_path_factory.mktemp("m") / "model", estimator, max_batch=8)


@pytest.fixture(scope="module")
def service(model_dir: Path) -> Service:
    return Service(load_model(str(model_dir)))


def call(service: Service, event: Any) -> tuple[int, Any]:
    """(status, decoded payload) for any event shape."""
    response = service.handle(event, CTX)
    if isinstance(response, dict) and "statusCode" in response:
        return response["statusCode"], events.response_json(response)
    json.dumps(response, allow_nan=False)  # a direct response must be valid JSON, too
    return (400 if "error" in response else 200), response


@pytest.mark.parametrize("shape", sorted(events.HTTP_SHAPES))
def test_every_http_shape_predicts_setosa_for_a_setosa_row(service: Service, shape: str) -> None:
    status, body = call(
        service, events.HTTP_SHAPES[shape]("POST", "/predict", {"features": SETOSA})
    )
    assert status == 200
    assert body["prediction"] == 0
    assert body["class_name"] == "setosa"
    assert len(body["probabilities"]) == 3
    assert abs(sum(body["probabilities"]) - 1.0) < 1e-9
    assert body["model_id"] == "iris-test-0001"
    assert isinstance(body["latency_ms"], float) and body["latency_ms"] >= 0


def test_probabilities_equal_scikit_learns(service: Service) -> None:
    estimator = fitted("logistic_regression", scale=True)
    status, body = call(service, events.http_api_v2(body={"features": VIRGINICA}))
    expected = estimator.predict_proba([VIRGINICA])[0]
    assert status == 200 and body["class_name"] == "virginica"
    assert max(abs(a - b) for a, b in zip(body["probabilities"], expected, strict=True)) < 1e-12


def test_direct_invocation_returns_the_plain_object(service: Service) -> None:
    body = service.handle({"features": SETOSA}, CTX)
    assert body["class_name"] == "setosa" and "statusCode" not in body


def test_direct_invocation_with_explicit_predict_action(service: Service) -> None:
    body = service.handle({"action": "predict", "features": VIRGINICA}, CTX)
    assert body["class_name"] == "virginica"


def test_batch_returns_one_prediction_per_row_in_order(service: Service) -> None:
    X, y = iris()
    rows = [X[0].tolist(), X[60].tolist(), X[120].tolist()]
    status, body = call(service, events.rest_v1(body={"instances": rows}))
    assert status == 200
    assert [p["class_name"] for p in body["predictions"]] == [
        CLASS_NAMES[y[i]] for i in (0, 60, 120)
    ]
    assert set(body) == {"predictions", "latency_ms", "model_id"}
    assert set(body["predictions"][0]) == {"prediction", "class_name", "probabilities"}


def test_integers_are_accepted_as_numbers(service: Service) -> None:
    status, body = call(service, events.http_api_v2(body={"features": [5, 3, 1, 0]}))
    assert status == 200 and body["class_name"] == "setosa"


@pytest.mark.parametrize("shape", sorted(events.HTTP_SHAPES))
def test_base64_encoded_bodies_are_decoded(service: Service, shape: str) -> None:
    event = events.HTTP_SHAPES[shape]("POST", "/predict", {"features": SETOSA}, base64=True)
    assert event["isBase64Encoded"] is True
    status, body = call(service, event)
    assert status == 200 and body["class_name"] == "setosa"


@pytest.mark.parametrize("shape", sorted(events.HTTP_SHAPES))
def test_health_reports_model_flavor_and_versions(service: Service, shape: str) -> None:
    status, body = call(service, events.HTTP_SHAPES[shape]("GET", "/health"))
    assert status == 200
    assert body["status"] == "ok" and body["model_id"] == "iris-test-0001"
    assert body["flavor"] == "portable"
    assert body["versions"]["training"]["scikit-learn"]
    runtime = body["versions"]["runtime"]
    assert runtime["python"].count(".") == 2


def test_direct_health_action(service: Service) -> None:
    assert service.handle({"action": "health"}, CTX)["status"] == "ok"


@pytest.mark.parametrize(
    "event",
    [
        events.http_api_v2(body={"features": SETOSA}, stage="dev"),  # rawPath /dev/predict
        events.rest_v1(body={"features": SETOSA}, path_includes_stage=True),  # /dev/predict
        events.http_api_v2("POST", "/predict/", {"features": SETOSA}),  # trailing slash
    ],
    ids=["v2-named-stage", "v1-stage-in-path", "trailing-slash"],
)
def test_stage_prefixes_and_trailing_slashes_reach_the_route(service: Service, event) -> None:
    status, body = call(service, event)
    assert status == 200 and body["class_name"] == "setosa"


def _error(service: Service, event: Any) -> tuple[int, str, str]:
    status, body = call(service, event)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}
    return status, body["error"]["code"], body["error"]["message"]


def _huge_body() -> str:
    return json.dumps({"features": SETOSA, "pad": "x" * MIN_BODY_LIMIT})


BAD_BODIES = [
    # (id, raw body text, status, code, words the message must contain)
    ("invalid-json", '{"features": [1, 2', 400, "invalid_json", "not valid JSON"),
    ("not-an-object", "[5.1, 3.5, 1.4, 0.2]", 400, "invalid_body", "JSON object"),
    ("a-string", '"hello"', 400, "invalid_body", "got a string"),
    ("missing-keys", "{}", 400, "missing_field", "features"),
    ("extra-key", '{"features": [1, 2, 3, 4], "x": 1}', 400, "unknown_field", "'x'"),
    (
        "both",
        '{"features": [1,2,3,4], "instances": [[1,2,3,4]]}',
        400,
        "conflicting_fields",
        "not both",
    ),
    ("three-features", '{"features": [1, 2, 3]}', 400, "wrong_length", "4 numbers, got 3"),
    ("five-features", '{"features": [1, 2, 3, 4, 5]}', 400, "wrong_length", "got 5"),
    (
        "string-feature",
        '{"features": [1, "2", 3, 4]}',
        400,
        "invalid_type",
        "features[1] must be a number, got a string",
    ),
    (
        "bool-feature",
        '{"features": [1, 2, true, 4]}',
        400,
        "invalid_type",
        "features[2] must be a number, got a boolean",
    ),
    (
        "null-feature",
        '{"features": [null, 2, 3, 4]}',
        400,
        "invalid_type",
        "features[0] must be a number, got null",
    ),
    (
        "nan",
        '{"features": [1, NaN, 3, 4]}',
        400,
        "invalid_number",
        "features[1] is not a finite number",
    ),
    (
        "infinity",
        '{"features": [1, 2, Infinity, 4]}',
        400,
        "invalid_number",
        "features[2] is not a finite number",
    ),
    ("minus-infinity", '{"features": [1, 2, 3, -Infinity]}', 400, "invalid_number", "features[3]"),
    (
        "overflowing-literal",
        '{"features": [1e999, 2, 3, 4]}',
        400,
        "invalid_number",
        "features[0] is not a finite",
    ),
    (
        "too-big",
        '{"features": [1, 2, 3, 1e7]}',
        400,
        "invalid_number",
        "features[3] is out of range",
    ),
    (
        "too-big-int",
        '{"features": [1, 2, 3, 10000000000000000000000]}',
        400,
        "invalid_number",
        "out of range",
    ),
    (
        "huge-digits",
        '{"features": [' + "9" * 5000 + ", 2, 3, 4]}",
        400,
        "invalid_json",
        "too many digits",
    ),
    ("features-not-list", '{"features": 5}', 400, "invalid_type", "features must be an array"),
    ("nested-features", '{"features": [[1, 2, 3, 4]]}', 400, "invalid_type", 'use "instances"'),
    (
        "nested-instance",
        '{"instances": [[1, 2, 3, 4], [[1], 2, 3, 4]]}',
        400,
        "invalid_type",
        "instances[1][0] must be a number, got an array",
    ),
    (
        "instance-nan",
        '{"instances": [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [1, NaN, 3, 4]]}',
        400,
        "invalid_number",
        "instances[3][1] is not a finite number",
    ),
    (
        "instance-not-list",
        '{"instances": [{"a": 1}]}',
        400,
        "invalid_type",
        "instances[0] must be an array",
    ),
    (
        "instances-not-list",
        '{"instances": "rows"}',
        400,
        "invalid_type",
        "instances must be an array",
    ),
    ("empty-batch", '{"instances": []}', 400, "empty_batch", "at least one row"),
    (
        "batch-too-large",
        json.dumps({"instances": [SETOSA] * 9}),
        413,
        "batch_too_large",
        "limit is 8",
    ),
    ("deeply-nested", "[" * 100_000 + "]" * 100_000, 400, "invalid_json", "nested too deeply"),
    ("whitespace-body", "   \n ", 400, "empty_body", "empty"),
    ("body-too-large", _huge_body(), 413, "body_too_large", "exceeds"),
]


@pytest.mark.parametrize(
    ("text", "status", "code", "words"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
@pytest.mark.parametrize("shape", sorted(events.HTTP_SHAPES))
def test_bad_bodies_get_a_4xx_that_says_what_and_where(
    service: Service, shape: str, text: str, status: int, code: str, words: str
) -> None:
    got = _error(service, events.HTTP_SHAPES[shape]("POST", "/predict", text))
    assert got[:2] == (status, code)
    assert words in got[2]


def test_missing_body_is_an_empty_body_error(service: Service) -> None:
    assert _error(service, events.http_api_v2(body=None))[:2] == (400, "empty_body")


def test_undecodable_base64_is_rejected(service: Service) -> None:
    event = events.http_api_v2(body="eyJmZWF0dXJlcyI6!!!")
    event["isBase64Encoded"] = True
    assert _error(service, event)[:2] == (400, "invalid_base64")


def test_invalid_utf8_is_rejected(service: Service) -> None:
    event = events.rest_v1(body=b'{"features": [1, 2, 3, 4], "x": "\xff"}')
    status, code, message = _error(service, event)
    assert (status, code) == (400, "invalid_utf8") and "UTF-8" in message


def test_oversized_base64_body_is_rejected_before_decoding(service: Service) -> None:
    event = events.http_api_v2(body=b"{" * (MIN_BODY_LIMIT + 10))
    assert _error(service, event)[:2] == (413, "body_too_large")


def test_unknown_path_is_404(service: Service) -> None:
    status, code, message = _error(service, events.http_api_v2("POST", "/predictions", "{}"))
    assert (status, code) == (404, "not_found") and "POST /predict" in message


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("GET", "/predict", "POST"), ("PUT", "/predict", "POST"), ("POST", "/health", "GET")],
)
@pytest.mark.parametrize("shape", sorted(events.HTTP_SHAPES))
def test_wrong_method_is_405_with_allow_header(
    service: Service, shape: str, method: str, path: str, allow: str
) -> None:
    response = service.handle(events.HTTP_SHAPES[shape](method, path), CTX)
    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == allow
    assert events.response_json(response)["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ([5.1, 3.5, 1.4, 0.2], "invalid_body"),
        ("features", "invalid_body"),
        (None, "invalid_body"),
        ({}, "missing_field"),
        ({"action": "dance"}, "unknown_action"),
        ({"features": [1, 2, 3, float("nan")]}, "invalid_number"),
        ({"features": [1, 2, 3, float("inf")]}, "invalid_number"),
    ],
)
def test_bad_direct_events_get_an_error_object(service: Service, event: Any, code: str) -> None:
    body = service.handle(event, CTX)
    assert set(body) == {"error"} and body["error"]["code"] == code


@pytest.mark.parametrize(
    "event",
    [
        {"version": "2.0", "requestContext": {}},
        {**events.rest_v1(body={"features": SETOSA}), "httpMethod": None},
        {**events.http_api_v2(body={"features": SETOSA}), "requestContext": []},
    ],
    ids=["v2-without-http", "v1-method-null", "v2-context-not-object"],
)
def test_http_events_too_broken_to_route_get_a_proxy_400(service: Service, event: Any) -> None:
    # A REST API turns a Lambda reply without statusCode into a 502: answer in proxy shape.
    status, code, _ = _error(service, event)
    assert (status, code) == (400, "invalid_event")


def test_an_internal_bug_is_a_500_with_the_traceback_only_in_the_log(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = Service(load_model(str(model_dir)))

    def explode(row: list[float]) -> list[float]:
        raise ZeroDivisionError("boom")

    broken._predict = explode
    response = broken.handle(events.http_api_v2(body={"features": SETOSA}), CTX)
    assert response["statusCode"] == 500
    body = events.response_json(response)
    assert body["error"]["code"] == "internal_error"
    assert "Traceback" not in response["body"] and "boom" not in response["body"]
    assert CTX.aws_request_id in body["error"]["message"]
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["status"] == 500 and record["level"] == "ERROR"
    assert "ZeroDivisionError: boom" in record["traceback"]


def test_a_non_finite_probability_never_reaches_the_response(model_dir: Path) -> None:
    broken = Service(load_model(str(model_dir)))
    broken._predict = lambda row: [float("nan"), 0.5, 0.5]
    response = broken.handle(events.http_api_v2(body={"features": SETOSA}), CTX)
    assert response["statusCode"] == 500
    assert "NaN" not in response["body"]
    direct = broken.handle({"features": SETOSA}, CTX)
    assert direct["error"]["code"] == "internal_error"


def test_one_json_log_line_per_request_without_feature_values(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = [5.123456789, 3.987654321, 1.4567891234, 0.2345678912]
    service.handle(events.http_api_v2(body={"features": secret}), CTX)
    service.handle(events.http_api_v2(body={"features": [*secret[:3], "nope"]}), CTX)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    ok, bad = (json.loads(line) for line in lines)
    assert ok["request_id"] == CTX.aws_request_id
    assert (ok["route"], ok["status"], ok["model_id"], ok["error"]) == (
        "POST /predict",
        200,
        "iris-test-0001",
        None,
    )
    assert isinstance(ok["latency_ms"], float)
    assert (bad["status"], bad["error"]) == (400, "invalid_type")
    for line in lines:
        for value in secret:
            assert str(value) not in line
        assert "nope" not in line


def test_request_id_falls_back_to_the_event(service: Service, capsys) -> None:
    service.handle(events.rest_v1("GET", "/health"), None)
    record = json.loads(capsys.readouterr().out)
    assert record["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def test_max_batch_env_var_overrides_the_manifest(model_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("IRIS_MAX_BATCH", "2")
    small = Service(load_model(str(model_dir)))
    status, code, message = _error(small, events.http_api_v2(body={"instances": [SETOSA] * 3}))
    assert (status, code) == (413, "batch_too_large") and "limit is 2" in message
