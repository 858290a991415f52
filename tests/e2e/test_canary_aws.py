"""Canary deploys end to end: the real CLI against a moto server. Errors are injected into
AWS/Lambda the way Lambda would publish them; a deploy is SIGKILLed in the middle of its bake."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import BIN, RunCli, cli_env

pytestmark = pytest.mark.e2e

FN = "iris-mlops-dev"


def _two_models_and_v1_live(run_cli: RunCli, aws_env: dict[str, str]) -> None:
    """Deploy the shared trained model (trained_project) as v1, then train a second one."""
    first = run_cli("deploy", "--env", "dev", "--no-smoke-test", "--strategy", "canary",
                    env=aws_env)
    assert first.returncode == 0, first.stderr
    assert "first deploy of this env" in first.stderr  # no old version: all at once
    assert run_cli("train", "--model", "decision_tree").returncode == 0
    assert run_cli("evaluate").returncode == 0


def _alias(boto) -> dict:
    return boto("lambda").get_alias(FunctionName=FN, Name="live")


def test_killed_canary_shows_in_status_rollback_resolves_it_and_errors_roll_back(
    project: Path, run_cli: RunCli, aws_env: dict[str, str], boto, trained_project: Path
) -> None:
    """One env through both stories (each needs two trained, packaged models: the slow part)."""
    _two_models_and_v1_live(run_cli, aws_env)
    proc = subprocess.Popen(
        [str(BIN), "deploy", "--env", "dev", "--no-smoke-test", "--strategy", "canary",
         "--bake", "1h"],
        cwd=project, env=cli_env(aws_env), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            weights = (_alias(boto).get("RoutingConfig") or {}).get("AdditionalVersionWeights")
            if weights:
                break
            assert proc.poll() is None, "deploy ended before its canary started"
            time.sleep(0.5)
        assert weights == {"2": 0.1}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    shown = run_cli("status", "--env", "dev", "--json", env=aws_env)
    assert shown.returncode == 0, shown.stderr
    canary = json.loads(shown.stdout)["canary"]
    assert (canary["stable_version"], canary["canary_version"], canary["weight_percent"]) == (
        "1", "2", 10)
    assert canary["since"]
    table = run_cli("status", "--env", "dev", env=aws_env)
    assert "canary in place" in table.stdout

    resolved = run_cli("rollback", "--env", "dev", env=aws_env)
    assert resolved.returncode == 0, resolved.stderr
    assert "canary of version 2 cleared" in resolved.stdout
    alias = _alias(boto)
    assert alias["FunctionVersion"] == "1"
    assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert json.loads(run_cli("status", "--env", "dev", "--json", env=aws_env).stdout)[
        "canary"] is None

    # Now the new version fails: errors for it land in AWS/Lambda, the next canary rolls back.
    _inject_errors(boto, ["2", "3"])
    result = run_cli("deploy", "--env", "dev", "--no-smoke-test", "--strategy", "canary",
                     "--canary-percent", "25", "--bake", "30s", env=aws_env)
    assert result.returncode == 1, result.stderr
    assert "rolled back" in result.stderr
    assert "8 errors + 0 server errors in 40 invocations = 20.00%" in result.stderr
    alias = _alias(boto)
    assert alias["FunctionVersion"] == "1"
    assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")


def _inject_errors(boto, versions: list[str]) -> None:
    """What Lambda publishes for a failing version (moto: whichever number PublishVersion gave
    the unchanged code again)."""
    now = datetime.now(UTC)
    for version in versions:
        dims = [{"Name": "FunctionName", "Value": FN},
                {"Name": "Resource", "Value": f"{FN}:live"},
                {"Name": "ExecutedVersion", "Value": version}]
        boto("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now, "Value": 40.0},
            {"MetricName": "Errors", "Dimensions": dims, "Timestamp": now, "Value": 8.0},
        ])
