"""Whatever arrives, the handler answers 2xx or 4xx with valid JSON, and never raises."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_cli.runtime.model import load_model
from mlops_cli.runtime.service import Service
from mlops_cli.runtime.validation import MAX_ABS_VALUE
from tests import events
from tests.runtime_models import fitted, write_model_dir

KEYS = st.sampled_from(["features", "instances", "action", "x"]) | st.text(max_size=6)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=30,
)
finite = st.floats(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE, allow_nan=False)
in_range_rows = st.lists(finite | st.integers(-1000, 1000), min_size=4, max_size=4)
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Service, object]]:
    out = {}
    for kind in ("logistic_regression", "random_forest", "gradient_boosting"):
        estimator = fitted(kind, scale=True)
        folder = write_model_dir(tmp_path_factory.mktemp(kind) / "model", estimator)
        out[kind] = (Service(load_model(str(folder))), estimator)
    return out


def _check_proxy(response: dict) -> tuple[int, object]:
    assert 200 <= response["statusCode"] < 500, response
    body = events.response_json(response)  # fails on NaN/Infinity tokens
    if response["statusCode"] >= 400:
        assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    return response["statusCode"], body


@given(json_values)
@SETTINGS
def test_any_json_value_as_body_gets_2xx_or_4xx(services, value: object) -> None:
    service, _ = services["logistic_regression"]
    text = json.dumps(value)  # Python writes NaN/Infinity tokens: the runtime must cope
    for build in events.HTTP_SHAPES.values():
        _check_proxy(service.handle(build("POST", "/predict", text), None))


@given(json_values)
@SETTINGS
def test_any_json_value_as_direct_event_gets_an_answer(services, value: object) -> None:
    service, _ = services["random_forest"]
    body = service.handle(value, None)
    json.dumps(body, allow_nan=False)
    assert "error" in body or "prediction" in body or "predictions" in body or "status" in body


@given(st.binary(max_size=200) | st.text(max_size=200), st.booleans())
@SETTINGS
def test_any_bytes_or_text_body_gets_2xx_or_4xx(services, body, b64: bool) -> None:
    service, _ = services["logistic_regression"]
    event = events.http_api_v2(body=body, base64=b64)
    _check_proxy(service.handle(event, None))
    raw = events.http_api_v2(body="x")
    raw["body"] = body if isinstance(body, str) else body.decode("latin-1")
    raw["isBase64Encoded"] = b64
    _check_proxy(service.handle(raw, None))


@given(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]), st.text(max_size=20))
@SETTINGS
def test_any_method_and_path_gets_2xx_or_4xx(services, method: str, path: str) -> None:
    service, _ = services["logistic_regression"]
    for build in events.HTTP_SHAPES.values():
        _check_proxy(service.handle(build(method, "/" + path, {"features": [1, 2, 3, 4]}), None))


@given(
    st.sampled_from(["logistic_regression", "random_forest", "gradient_boosting"]), in_range_rows
)
@SETTINGS
def test_any_finite_row_in_bounds_gets_scikit_learns_probabilities(services, kind, row) -> None:
    service, estimator = services[kind]
    status, body = _check_proxy(service.handle(events.http_api_v2(body={"features": row}), None))
    assert status == 200
    probabilities = body["probabilities"]
    assert abs(sum(probabilities) - 1.0) <= 1e-9
    expected = estimator.predict_proba([row])[0]
    assert max(abs(a - b) for a, b in zip(probabilities, expected, strict=True)) <= 1e-9
    assert body["prediction"] == int(expected.argmax())


@given(st.lists(in_range_rows, min_size=1, max_size=5))
@SETTINGS
def test_a_batch_answers_each_row_as_a_single_request_would(services, rows) -> None:
    service, _ = services["random_forest"]
    batch = service.handle({"instances": rows}, None)
    singles = [service.handle({"features": row}, None) for row in rows]
    assert [p["probabilities"] for p in batch["predictions"]] == [
        s["probabilities"] for s in singles
    ]
