"""`metrics` on an aws env reads back, with GetMetricData, what the handler's EMF records and
Lambda and API Gateway published — here into moto's CloudWatch."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops_cli.runtime.model import load_model
from mlops_cli.runtime.service import Service
from mlops_cli.targets.aws.metrics import metrics
from tests import events
from tests.aws.conftest import make_cfg
from tests.aws.emf_sink import model_percentiles, publish_emf
from tests.runtime_models import fitted, write_model_dir

SETOSA = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(autouse=True)
def _percentiles(monkeypatch) -> None:
    model_percentiles(monkeypatch)

VIRGINICA = [6.7, 3.0, 5.2, 2.3]


def _served_records(tmp_path: Path, monkeypatch, capsys, env: str) -> list[dict]:
    monkeypatch.setenv("IRIS_MLOPS_ENV", env)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "4")
    service = Service(load_model(str(write_model_dir(
        tmp_path / f"model-{env}", fitted("logistic_regression", scale=True), max_batch=8))))
    capsys.readouterr()
    service.handle(events.http_api_v2(body={"features": SETOSA}), None)
    service.handle(events.http_api_v2(body={"instances": [VIRGINICA, VIRGINICA]}), None)
    service.handle(events.http_api_v2(body={"features": "x"}), None)
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_aws_metrics_report_our_lambdas_and_the_apis_figures(
    ctx, store, tmp_path, monkeypatch, capsys, calls
) -> None:
    cw = ctx.client("cloudwatch")
    dev_records = _served_records(tmp_path, monkeypatch, capsys, "dev")
    for record in dev_records:
        publish_emf(cw, record)
    for record in _served_records(tmp_path, monkeypatch, capsys, "prod"):
        publish_emf(cw, record)  # another env's traffic is not ours
    now = datetime.now(UTC)
    fn = [{"Name": "FunctionName", "Value": "iris-mlops-dev"}]
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": fn, "Timestamp": now, "Value": 3.0},
        {"MetricName": "Errors", "Dimensions": fn, "Timestamp": now, "Value": 1.0},
        {"MetricName": "Throttles", "Dimensions": fn, "Timestamp": now, "Value": 0.0},
    ])
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Duration", "Dimensions": fn, "Timestamp": now, "Value": v}
        for v in (3.0, 250.0, 12.0)
    ])
    api = [{"Name": "ApiId", "Value": "abc123"}]
    cw.put_metric_data(Namespace="AWS/ApiGateway", MetricData=[
        {"MetricName": "Count", "Dimensions": api, "Timestamp": now, "Value": 3.0},
        {"MetricName": "4xx", "Dimensions": api, "Timestamp": now, "Value": 1.0},
        {"MetricName": "5xx", "Dimensions": api, "Timestamp": now, "Value": 0.0},
    ])
    store.write_record("dev", {"env": "dev", "api_id": "abc123", "model_id": None})
    calls.reset()

    result = metrics(make_cfg(), store, "1h", ctx=ctx)

    assert (result["requests"], result["rows"], result["client_errors"]) == (3, 3, 1)
    assert result["classes"] == {"setosa": 1, "versicolor": 0, "virginica": 2}
    assert result["class_mix"]["virginica"] == pytest.approx(2 / 3, abs=1e-3)
    assert result["lambda"] == {"invocations": 3, "errors": 1, "throttles": 0,
                                "duration_p99_ms": 250.0}
    assert result["api"] == {"requests": 3, "4xx": 1, "5xx": 0,
                             "latency_p99_ms": result["api"]["latency_p99_ms"]}
    assert sum(result["series"]["requests"]) == 3
    served = sorted(r["latency_ms"] for r in dev_records)
    assert result["latency_ms"] == {"p50": served[1], "p99": served[2]}
    # one read-only call: everything in one GetMetricData batch
    assert calls.calls == [("cloudwatch", "GetMetricData")]
    json.dumps(result, allow_nan=False)


def test_a_quiet_env_has_zeros_not_errors(ctx, store) -> None:
    result = metrics(make_cfg(), store, "30m", ctx=ctx)
    assert (result["requests"], result["rows"], result["client_errors"]) == (0, 0, 0)
    assert result["lambda"]["invocations"] == 0 and result["api"] is None
    assert result["latency_ms"] == {"p50": None, "p99": None}
