"""The real thing: a trained model, packaged by the real builder, served by the local target.

Proves the runtime and the emulator agree on the contract (payload 2.0 in, proxy response out)
and measures the real handler's throughput through the emulator (run with `-s` to see it).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path

import pytest

import mlops_cli
from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig, Settings
from mlops_cli.console import NullReporter
from mlops_cli.targets import local

if not (Path(mlops_cli.__file__).parent / "runtime" / "handler.py").is_file():
    pytest.skip("the Lambda runtime is not in this checkout yet", allow_module_level=True)
build = pytest.importorskip("mlops_cli.packaging.build")
training = pytest.importorskip("mlops_cli.training.train")
evaluation = pytest.importorskip("mlops_cli.training.evaluate")


def _post(conn: http.client.HTTPConnection, path: str, payload: object) -> tuple[int, dict]:
    conn.request("POST", path, body=json.dumps(payload).encode(),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_the_real_runtime_predicts_through_the_local_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))
    store = ArtifactStore(tmp_path / "artifacts")
    cfg = EnvConfig(env="rt", path=None, settings=Settings.model_validate(
        {"model": {"params": {"max_iter": 1000}}, "local": {"port": 0, "workers": 2}}
    ))
    reporter = NullReporter()
    training.train(cfg, store, reporter)
    evaluation.evaluate(cfg, store, reporter)
    package = build.build_package(cfg, store, reporter).info

    result = local.deploy(cfg, store, package, reporter)
    port = int(result["url"].rsplit(":", 1)[1])
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health")
        health = conn.getresponse()
        assert health.status == 200
        assert json.loads(health.read())["model_id"] == package.model_id

        status, body = _post(conn, "/predict", {"features": [5.1, 3.5, 1.4, 0.2]})
        assert status == 200
        assert body["class_name"] == "setosa" and body["model_id"] == package.model_id
        assert abs(sum(body["probabilities"]) - 1) < 1e-9

        status, body = _post(conn, "/predict", {"features": [1, 2, 3]})
        assert status == 400 and body["error"]["code"]

        conn.request("POST", "/predict", body=b"{not json",
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 400 and "error" in json.loads(response.read())
        conn.close()

        errors: list[str] = []
        latencies: list[float] = []

        def client() -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                for _ in range(250):
                    started = time.perf_counter()
                    code, payload = _post(c, "/predict", {"features": [6.7, 3.0, 5.2, 2.3]})
                    latencies.append(time.perf_counter() - started)
                    if code != 200 or payload.get("class_name") != "virginica":
                        errors.append(f"{code} {payload}")
            except Exception as exc:
                errors.append(repr(exc))
            finally:
                c.close()

        threads = [threading.Thread(target=client) for _ in range(8)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        assert errors == []
    finally:
        local.teardown(cfg, store, reporter)
    ordered = sorted(latencies)
    with capsys.disabled():
        print(
            f"\nreal runtime ({package.flavor}, {package.size_bytes} B zip) via local endpoint: "
            f"{len(ordered) / elapsed:.0f} req/s with 8 clients, p50 "
            f"{ordered[len(ordered) // 2] * 1000:.2f} ms, "
            f"p99 {ordered[int(len(ordered) * 0.99)] * 1000:.2f} ms"
        )
