"""`metrics --env local` reads the handler's EMF records out of the local server log, among the
access, START/END/REPORT and print lines that share it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import load_env
from mlops_cli.errors import IrisError
from mlops_cli.runtime.model import load_model
from mlops_cli.runtime.service import Service
from mlops_cli.targets.local.metrics import metrics
from tests import events
from tests.runtime_models import fitted, write_model_dir

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


@pytest.fixture
def served_log(tmp_path: Path, monkeypatch, capsys) -> tuple[ArtifactStore, Path]:
    monkeypatch.setenv("IRIS_MLOPS_ENV", "local")
    service = Service(load_model(str(write_model_dir(
        tmp_path / "model", fitted("logistic_regression", scale=True), max_batch=8))))
    service.handle(events.http_api_v2(body={"features": SETOSA}), None)
    service.handle(events.http_api_v2(body={"instances": [SETOSA, VIRGINICA, VIRGINICA]}), None)
    service.handle(events.http_api_v2(body={"features": [1, 2]}), None)
    emf_lines = capsys.readouterr().out.splitlines()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log = tmp_path / "local.log"
    log.write_text("\n".join([
        f"{stamp} 2 worker(s) ready: Python 3.12.3 pids 1, 2",
        "START RequestId: abc Version: $LATEST",
        emf_lines[0],
        "END RequestId: abc",
        "REPORT RequestId: abc Duration: 1.00 ms",
        f'{stamp} 127.0.0.1 "POST /predict" 200',
        emf_lines[1],
        '{"not": "an emf record"}',
        "{broken json",
        emf_lines[2],
    ]) + "\n")
    store = ArtifactStore(tmp_path / "artifacts")
    store.write_record("local", {"env": "local", "log": str(log), "model_id": None})
    return store, log


def test_local_metrics_add_up_the_requests_in_the_log(served_log, tmp_path) -> None:
    store, log = served_log
    result = metrics(load_env("local", tmp_path / "configs"), store, "1h")
    assert result["requests"] == 3 and result["rows"] == 4
    assert result["classes"] == {"setosa": 2, "versicolor": 0, "virginica": 2}
    assert result["client_errors"] == 1 and result["server_errors"] == 0
    latency = result["latency_ms"]
    assert latency["p50"] > 0 and latency["p99"] >= latency["p50"]
    assert result["source"] == str(log) and "lambda" not in result
    assert sum(result["series"]["rows"]) == 4
    json.dumps(result, allow_nan=False)


def test_requests_older_than_the_window_are_left_out(served_log, tmp_path) -> None:
    store, _ = served_log
    later = time.time() + 3 * 3600
    result = metrics(load_env("local", tmp_path / "configs"), store, "1h", now=later)
    assert (result["requests"], result["rows"]) == (0, 0)
    assert result["latency_ms"] == {"p50": None, "p99": None}


def test_no_log_means_nothing_was_deployed(tmp_path) -> None:
    with pytest.raises(IrisError, match="deploy it first"):
        metrics(load_env("local", tmp_path / "configs"), ArtifactStore(tmp_path / "a"), "1h")
