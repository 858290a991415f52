"""Throughput and per-request overhead of the local endpoint, measured, never asserted on.

8 concurrent keep-alive clients × 500 requests against the probe handler's `/predict` (an
echo-like handler that does no model work), so the figures are the emulator's own cost: HTTP
parsing, event building, the pipe round trip to a worker, response mapping. Run with `-s` to see
them; the test only asserts that no request failed.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
from pathlib import Path

import pytest

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig, Settings
from mlops_cli.console import NullReporter
from mlops_cli.targets import local
from mlops_cli.targets.local.fixtures import build_zip

CLIENTS = 8
REQUESTS = 500


def _client(port: int, count: int, latencies: list[float], errors: list[str]) -> None:
    body = json.dumps({"features": [5.1, 3.5, 1.4, 0.2]}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(count):
            started = time.perf_counter()
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "text/json"})
            response = conn.getresponse()
            data = response.read()
            latencies.append(time.perf_counter() - started)
            if response.status != 200 or b"setosa" not in data:
                errors.append(f"{response.status} {data[:80]!r}")
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        conn.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def test_eight_keep_alive_clients_measure_throughput_and_latency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))
    store = ArtifactStore(tmp_path / "artifacts")
    workers = int(os.environ.get("IRIS_BENCH_WORKERS", "2"))
    cfg = EnvConfig(
        env="bench",
        path=None,
        settings=Settings.model_validate({"local": {"port": 0, "workers": workers}}),
    )
    result = local.deploy(cfg, store, build_zip(tmp_path / "zips"), NullReporter())
    port = int(result["url"].rsplit(":", 1)[1])
    try:
        # sequential: one client, so latency is the per-request overhead of the emulator
        sequential: list[float] = []
        errors: list[str] = []
        _client(port, 300, sequential, errors)

        latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
        threads = [
            threading.Thread(target=_client, args=(port, REQUESTS, latencies[i], errors))
            for i in range(CLIENTS)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        local.teardown(cfg, store, NullReporter())

    assert errors == []
    merged = [x for per_client in latencies for x in per_client]
    assert len(merged) == CLIENTS * REQUESTS
    with capsys.disabled():
        print(
            f"\nlocal endpoint, {workers} workers, Python {result['python_version']}: "
            f"{CLIENTS}x{REQUESTS} keep-alive requests in {elapsed:.2f} s = "
            f"{len(merged) / elapsed:.0f} req/s; p50 {_pct(merged, 0.5):.2f} ms, "
            f"p99 {_pct(merged, 0.99):.2f} ms, max {max(merged) * 1000:.2f} ms\n"
            f"per-request overhead (1 client, sequential): p50 {_pct(sequential, 0.5):.3f} ms, "
            f"mean {statistics.mean(sequential) * 1000:.3f} ms, p99 {_pct(sequential, 0.99):.3f} ms"
        )
