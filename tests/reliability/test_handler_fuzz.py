"""Fuzz the Lambda handler with well over 10,000 generated events across all four event shapes.

Invariant, for every event: `handle` returns (never raises); an HTTP shape answers 2xx or 4xx
(never 5xx) with a JSON body holding a prediction, a health report or an `error` object; a
direct invocation answers such an object itself; no NaN/Infinity token anywhere; a valid row
sent to POST /predict (or directly) always predicts.

`tests/property/test_handler_props.py` checks probabilities against scikit-learn on a few
hundred examples; this module is about volume and hostility: headers, methods, paths, base64,
truncated and invalid UTF-8, deep nesting, giant numbers and strings, oversized bodies, and
events whose own structure is broken. Every example run is counted (`RUN`), so the figure in
docs/reliability.md is what actually ran.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_cli.runtime.model import load_model
from mlops_cli.runtime.service import Service
from mlops_cli.runtime.validation import MAX_ABS_VALUE, MIN_BODY_LIMIT
from tests import events
from tests.reliability import figures
from tests.runtime_models import fitted, write_model_dir

SHAPES = ("http_api_v2", "rest_v1", "function_url", "direct")
RUN: Counter[str] = Counter()  # examples actually executed, per shape
STATUSES: Counter[int] = Counter()
ERROR_CODES: Counter[str] = Counter()
MIN_EVENTS = 10_000
MAX_BATCH = 16

def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,  # no replay of old failures: each CI run is fresh volume
    )

# -- strategies ----------------------------------------------------------------------------------
KEYS = st.sampled_from(["features", "instances", "action", "body", ""]) | st.text(max_size=8)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
json_values = st.recursive(
    LEAVES,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(KEYS, kids, max_size=3),
    max_leaves=6,
)
finite = st.floats(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE, allow_nan=False)
valid_row = st.lists(finite | st.integers(-1000, 1000), min_size=4, max_size=4)
valid_request = st.one_of(
    st.builds(lambda r: {"features": r}, valid_row),
    st.builds(lambda rs: {"instances": rs}, st.lists(valid_row, min_size=1, max_size=MAX_BATCH)),
)
HUGE = MIN_BODY_LIMIT + 1


def _special_bodies() -> st.SearchStrategy[str | bytes]:
    """Bodies that are hostile by construction rather than by chance."""
    depth = st.integers(min_value=1, max_value=200_000)
    return st.one_of(
        depth.map(lambda n: "[" * n + "]" * n),  # nesting past the recursion limit
        depth.map(lambda n: '{"features":' + "[" * n),  # deep and unterminated
        st.integers(1, 20_000).map(lambda n: '{"features": [' + "9" * n + ", 1, 2, 3]}"),
        st.sampled_from(["1e999", "-1e999", "1e-999", "NaN", "Infinity", "-Infinity"]).map(
            lambda tok: '{"features": [' + tok + ', 1, 2, 3]}'
        ),
        st.integers(0, 3).map(lambda extra: "x" * (HUGE + extra)),  # oversized
        st.integers(0, 3).map(
            lambda extra: '{"features": [1,2,3,4], "pad": "' + "y" * (HUGE + extra) + '"}'
        ),
        st.integers(1, 100_000).map(lambda n: '{"features": "' + "s" * n + '"}'),
        st.binary(max_size=64).map(lambda b: b"\xff\xfe" + b + b"\xc3"),  # invalid UTF-8
        st.binary(min_size=1, max_size=64),
        st.text(max_size=64).map(lambda t: t + "\ud800"),  # a lone surrogate
        st.just(""),
        st.just("   \n\t "),
        st.just("null"),
    )


def _truncated(value: Any) -> st.SearchStrategy[str]:
    text = json.dumps(value)
    return st.integers(0, max(0, len(text) - 1)).map(lambda cut: text[:cut])


bodies: st.SearchStrategy[Any] = st.one_of(
    json_values.map(json.dumps),  # may hold NaN/Infinity tokens, as Python writes them
    valid_request.map(json.dumps),
    valid_request.flatmap(_truncated),
    json_values.flatmap(_truncated),
    st.text(max_size=100),
    st.binary(max_size=100),
    _special_bodies(),
    st.none(),
    json_values,  # not even a string: a malformed event
)
# Half the events are POSTs to /predict (so their bodies are parsed), the rest anything at all.
METHODS = st.one_of(
    st.just("POST"),
    st.just("post"),
    st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    st.text(max_size=10),
)
PATHS = st.one_of(
    st.just("/predict"),
    st.just("/predict/"),
    st.sampled_from(["/health", "/dev/predict", "/", "", "/predict/x"]),
    st.text(max_size=30),
)
HEADERS = st.dictionaries(st.text(max_size=12), st.text(max_size=24), max_size=3)


def _encode(body: Any, b64: str) -> tuple[Any, bool]:
    """`b64`: "no" (send as is), "yes" (valid base64 of the body), "lie" (flag set, raw body)."""
    if b64 == "yes" and isinstance(body, str | bytes):
        raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        return base64.b64encode(raw).decode("ascii"), True
    if isinstance(body, bytes):
        return body.decode("latin-1"), b64 == "lie"
    return body, b64 == "lie"


@st.composite
def http_events(draw: st.DrawFn, shape: str) -> tuple[dict[str, Any], Any]:
    method, path, body = draw(METHODS), draw(PATHS), draw(bodies)
    event = events.HTTP_SHAPES[shape](method, "/predict", None)
    if shape == "rest_v1":
        event["path"] = path
        event["resource"] = path
    else:
        event["rawPath"] = path
        event["requestContext"]["http"]["path"] = path
    event["headers"].update(draw(HEADERS))
    b64 = draw(st.sampled_from(["no", "yes", "lie"]))
    event["body"], event["isBase64Encoded"] = _encode(body, b64)
    return event, (method, path, body if b64 != "lie" else None)


@st.composite
def broken_events(draw: st.DrawFn) -> Any:
    """A well-formed event of some shape with one field replaced by any JSON value, or removed."""
    shape = draw(st.sampled_from(sorted(events.HTTP_SHAPES)))
    event = events.HTTP_SHAPES[shape]("POST", "/predict", draw(valid_request))
    field = draw(
        st.sampled_from(
            ["httpMethod", "path", "rawPath", "requestContext", "body", "isBase64Encoded",
             "version", "headers", "resource"]
        )
    )
    if draw(st.booleans()):
        event.pop(field, None)
    else:
        event[field] = draw(json_values)
    if draw(st.booleans()) and isinstance(event.get("requestContext"), dict):
        ctx = dict(event["requestContext"])
        ctx[draw(st.sampled_from(["http", "stage", "domainName", "requestId"]))] = draw(json_values)
        event["requestContext"] = ctx
    return event


# -- the service and the invariant ----------------------------------------------------------------
@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Service:
    folder = tmp_path_factory.mktemp("fuzz") / "model"
    write_model_dir(folder, fitted("logistic_regression", scale=True), max_batch=MAX_BATCH)
    return Service(load_model(str(folder)))


def _no_constants(token: str) -> Any:
    raise AssertionError(f"response contains the non-JSON token {token}")


def _check_payload(payload: Any) -> str:
    """'predicted' | 'health' | 'error' — or an assertion that names what is wrong."""
    assert isinstance(payload, dict), payload
    json.loads(json.dumps(payload), parse_constant=_no_constants)  # serialisable, no NaN
    if "error" in payload:
        assert set(payload) == {"error"}, payload
        err = payload["error"]
        assert isinstance(err["code"], str) and err["code"]
        assert isinstance(err["message"], str) and err["message"]
        assert "Traceback" not in err["message"]
        ERROR_CODES[err["code"]] += 1
        return "error"
    if "prediction" in payload:
        assert payload["class_name"] in ("setosa", "versicolor", "virginica")
        assert abs(sum(payload["probabilities"]) - 1.0) < 1e-9
        return "predicted"
    if "predictions" in payload:
        assert payload["predictions"] and all("class_name" in p for p in payload["predictions"])
        return "predicted"
    assert payload.get("status") == "ok", payload
    return "health"


def handle(service: Service, shape: str, event: Any) -> tuple[int, str]:
    """Run one event; the invariant holds or this fails. Returns (status, kind)."""
    RUN[shape] += 1
    response = service.handle(event, events.LambdaContext())  # must not raise
    if shape == "direct" and not (isinstance(response, dict) and "statusCode" in response):
        kind = _check_payload(response)
        status = 400 if kind == "error" else 200
    else:
        assert isinstance(response, dict) and set(response) == {
            "statusCode", "headers", "body", "isBase64Encoded"
        }, response
        status = response["statusCode"]
        assert 200 <= status < 500, response
        assert response["headers"]["content-type"] == "application/json"
        kind = _check_payload(json.loads(response["body"], parse_constant=_no_constants))
        assert (status < 400) == (kind != "error"), response
    STATUSES[status] += 1
    return status, kind


def _is_valid_predict(method: str, path: str, body: Any) -> bool:
    if method.upper() != "POST" or path.rstrip("/") not in ("/predict", "/dev/predict"):
        return False
    try:
        payload = json.loads(body) if isinstance(body, str) else None
    except (ValueError, RecursionError):
        return False
    if not isinstance(payload, dict) or len(payload) != 1:
        return False
    rows = [payload["features"]] if "features" in payload else payload.get("instances")
    return (
        isinstance(rows, list)
        and 0 < len(rows) <= MAX_BATCH
        and all(
            isinstance(r, list)
            and len(r) == 4
            and all(type(v) in (int, float) and abs(v) <= MAX_ABS_VALUE for v in r)
            for r in rows
        )
    )


# -- the fuzz tests: max_examples sum to 10,400 ---------------------------------------------------
@pytest.mark.parametrize("shape", sorted(events.HTTP_SHAPES))
@given(data=st.data())
@fuzz(2000)
def test_any_http_event_gets_a_2xx_or_4xx_json_answer(service: Service, shape: str, data) -> None:
    event, (method, path, body) = data.draw(http_events(shape))
    status, kind = handle(service, shape, event)
    stage_ok = shape == "rest_v1" or path.rstrip("/") != "/dev/predict"  # only v1 has stage dev
    if _is_valid_predict(method, path, body) and stage_ok:
        assert (status, kind) == (200, "predicted"), event


@fuzz(1000)
@given(st.sampled_from(sorted(events.HTTP_SHAPES)), _special_bodies(),
       st.sampled_from(["no", "yes", "lie"]), st.just("POST"))
def test_hostile_bodies_get_a_4xx_in_every_http_shape(service, shape, body, b64, method) -> None:
    """Deep nesting, giant numbers and strings, oversized, invalid UTF-8, in bulk."""
    event = events.HTTP_SHAPES[shape](method, "/predict", None)
    event["body"], event["isBase64Encoded"] = _encode(body, b64)
    status, kind = handle(service, shape, event)
    if b64 != "lie" and _is_valid_predict(method, "/predict", body):  # e.g. [9, 1, 2, 3]
        assert (status, kind) == (200, "predicted")
    else:
        assert 400 <= status < 500 and kind == "error", (status, str(body)[:80])


@given(
    st.one_of(
        json_values,
        valid_request,
        valid_request.map(lambda r: {**r, "action": "predict"}),
        st.lists(valid_row),  # an array, not an object
    )
)
@fuzz(1800)
def test_any_direct_invocation_gets_a_prediction_or_an_error_object(service, payload) -> None:
    _, kind = handle(service, "direct", payload)
    if isinstance(payload, dict) and payload.get("action", "predict") == "predict":
        request = json.dumps({k: v for k, v in payload.items() if k != "action"})
        if _is_valid_predict("POST", "/predict", request):
            assert kind == "predicted", payload


@given(broken_events())
@fuzz(1000)
def test_events_with_broken_structure_never_raise_or_5xx(service, event) -> None:
    shape = "rest_v1" if "httpMethod" in event else "http_api_v2"
    if not ({"httpMethod", "requestContext"} & set(event)) and event.get("version") != "2.0":
        shape = "direct"  # nothing left that makes it an HTTP event
    handle(service, shape, event)


@pytest.mark.parametrize("shape", SHAPES)
@given(valid_request, st.booleans())
@fuzz(150)
def test_valid_rows_always_predict_in_every_shape(service, shape, request_body, b64) -> None:
    if shape == "direct":
        event: Any = request_body
    else:
        event = events.HTTP_SHAPES[shape]("POST", "/predict", request_body, base64=b64)
    status, kind = handle(service, shape, event)
    assert (status, kind) == (200, "predicted")


def test_the_fuzz_volume_is_at_least_ten_thousand_events() -> None:
    """Runs last in this module: the figure is the count of examples that actually ran."""
    total = sum(RUN.values())
    if total == 0:
        pytest.skip("the fuzz tests did not run (deselected)")
    figures.record(
        "handler fuzz",
        events=total,
        **{f"events_{shape}": RUN[shape] for shape in SHAPES},
        status_2xx=sum(n for s, n in STATUSES.items() if s < 300),
        status_4xx=sum(n for s, n in STATUSES.items() if 400 <= s < 500),
        status_5xx=sum(n for s, n in STATUSES.items() if s >= 500),
        exceptions=0,
        error_codes=" ".join(f"{code}x{n}" for code, n in ERROR_CODES.most_common()),
        oversized_413=ERROR_CODES["body_too_large"] + ERROR_CODES["batch_too_large"],
        too_deep_or_invalid_json=ERROR_CODES["invalid_json"],
        invalid_utf8=ERROR_CODES["invalid_utf8"],
        invalid_base64=ERROR_CODES["invalid_base64"],
    )
    assert all(RUN[shape] > 0 for shape in SHAPES), RUN
    assert total >= MIN_EVENTS, f"only {total} events ran: {dict(RUN)}"
