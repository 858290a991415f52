"""`iris-mlops metrics` on the local env, end to end: the real CLI deploys the zip, requests go
through the HTTP front, and the figures come back from the EMF records in the server log."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import RunCli, cli_env

pytestmark = pytest.mark.e2e


def _post(url: str, body: bytes) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", "/predict", body=body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_metrics_count_what_the_local_endpoint_served(
    run_cli: RunCli, project, trained_project: Path
) -> None:
    deployed = run_cli("deploy", "--env", "local", "--strategy", "canary", "--json")
    assert deployed.returncode == 0, deployed.stderr
    # canary is an AWS mechanism: said so, deployed at once
    assert "canary strategy applies to aws envs" in deployed.stderr
    url = json.loads(deployed.stdout)["url"]
    try:
        setosa, virginica = [5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]
        assert _post(url, json.dumps({"features": setosa}).encode()) == 200
        assert _post(url, json.dumps({"instances": [setosa, virginica, virginica]}).encode()) == 200
        assert _post(url, b'{"features": [1, 2]}') == 400

        result = run_cli("metrics", "--env", "local", "--since", "1h", "--json")
        assert result.returncode == 0, result.stderr
        figures = json.loads(result.stdout)
        assert figures["requests"] >= 3  # the deploy's own health check may count too
        assert figures["rows"] == 4
        assert figures["classes"] == {"setosa": 2, "versicolor": 0, "virginica": 2}
        assert figures["client_errors"] == 1
        assert figures["latency_ms"]["p50"] > 0 and figures["latency_ms"]["p99"] > 0
        shares = figures["training_class_shares"]
        assert shares and abs(sum(shares.values()) - 1) < 1e-3

        table = run_cli("metrics", "--env", "local")
        assert table.returncode == 0, table.stderr
        for word in ("requests", "rows", "setosa", "latency p99", "client errors"):
            assert word in table.stdout
        assert any(block in table.stdout for block in "▁▂▃▄▅▆▇█")

        bad = run_cli("metrics", "--env", "local", "--since", "soon")
        assert bad.returncode == 2 and "not a duration" in bad.stderr
    finally:
        run_cli("teardown", "--env", "local")


def test_metrics_never_imports_scikit_learn_or_numpy(project) -> None:
    code = (
        "import sys, runpy\n"
        "sys.argv = ['iris-mlops', 'metrics', '--env', 'local', '--json']\n"
        "try:\n"
        "    runpy.run_module('mlops_cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sklearn', 'numpy', 'scipy', 'joblib'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in proc.stderr, proc.stderr
