"""The handler's log line is an Embedded Metric Format record: the metrics CloudWatch extracts
from it are what `iris-mlops metrics` reports, and no feature value ever leaves in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_cli.runtime.emf import class_metric_name
from mlops_cli.runtime.model import load_model
from mlops_cli.runtime.service import Service
from tests import events
from tests.emf_check import emf_metrics
from tests.runtime_models import fitted, write_model_dir

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
CTX = events.LambdaContext()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(
        tmp_path_factory.mktemp("m") / "model", fitted("logistic_regression", scale=True),
        max_batch=8,
    )


@pytest.fixture
def service(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv("IRIS_MLOPS_ENV", "dev")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "7")
    return Service(load_model(str(model_dir)))


def _records(service: Service, capsys, *requests) -> list[dict]:
    for event in requests:
        service.handle(event, CTX)
    return [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]


def test_a_batch_counts_rows_per_predicted_class_under_env_and_model(service, capsys) -> None:
    event = events.http_api_v2(body={"instances": [SETOSA, VIRGINICA, SETOSA]})
    (record,) = _records(service, capsys, event)
    metrics = emf_metrics(record)
    by_model = (("env", "dev"), ("model_id", "iris-test-0001"))
    assert metrics[("requests", by_model)] == 1
    assert metrics[("rows", by_model)] == 3
    assert metrics[("setosa", by_model)] == 2
    assert metrics[("virginica", by_model)] == 1
    assert metrics[("versicolor", by_model)] == 0
    assert metrics[("client_errors", (("env", "dev"),))] == 0
    assert metrics[("latency_ms", (("env", "dev"),))] == record["latency_ms"] > 0
    # the canary judges a version on its own server errors
    assert metrics[("server_errors", (("env", "dev"), ("version", "7")))] == 0
    directives = record["_aws"]["CloudWatchMetrics"]
    units = {m["Name"]: m["Unit"] for d in directives for m in d["Metrics"]}
    assert units["latency_ms"] == "Milliseconds" and units["setosa"] == "Count"


def test_a_client_error_counts_as_one_and_predicts_nothing(service, capsys) -> None:
    secret = [5.123456789, 3.987654321, 1.4567891234, 0.2345678912]
    good = events.http_api_v2(body={"features": secret})
    bad = events.http_api_v2(body={"features": [*secret[:3], "nope"]})
    ok, wrong = _records(service, capsys, good, bad)
    env = (("env", "dev"),)
    assert emf_metrics(ok)[("client_errors", env)] == 0
    assert emf_metrics(ok)[("rows", env)] == 1
    counts = emf_metrics(wrong)
    assert counts[("client_errors", env)] == 1 and counts[("requests", env)] == 1
    assert counts[("rows", env)] == 0
    assert all(counts[(name, env)] == 0 for name in ("setosa", "versicolor", "virginica"))
    for record in (ok, wrong):
        text = json.dumps(record)
        assert "nope" not in text
        assert not any(str(value) in text for value in secret)


def test_an_internal_bug_is_a_server_error_of_the_version_that_served_it(
    model_dir, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("IRIS_MLOPS_ENV", "prod")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "12")
    broken = Service(load_model(str(model_dir)))

    def explode(row):
        raise ZeroDivisionError("boom")

    broken._predict = explode
    (record,) = _records(broken, capsys, events.http_api_v2(body={"features": SETOSA}))
    metrics = emf_metrics(record)
    assert metrics[("server_errors", (("env", "prod"), ("version", "12")))] == 1
    assert metrics[("rows", (("env", "prod"),))] == 0


def test_health_checks_are_requests_without_rows(service, capsys) -> None:
    (record,) = _records(service, capsys, events.http_api_v2("GET", "/health"))
    metrics = emf_metrics(record)
    assert metrics[("requests", (("env", "dev"),))] == 1
    assert metrics[("rows", (("env", "dev"),))] == 0


def test_without_a_deploy_set_env_the_function_name_stands_in(model_dir, monkeypatch, capsys):
    monkeypatch.delenv("IRIS_MLOPS_ENV", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "iris-mlops-qa")
    (record,) = _records(Service(load_model(str(model_dir))), capsys, {"features": SETOSA})
    assert record["env"] == "iris-mlops-qa"


def test_a_class_named_like_a_record_field_gets_a_prefix() -> None:
    assert class_metric_name("setosa") == "setosa"
    assert class_metric_name("status") == "class_status"
    assert class_metric_name("rows") == "class_rows"
