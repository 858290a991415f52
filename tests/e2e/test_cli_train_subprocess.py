"""The real `iris-mlops` binary in a fresh project folder, as a new user runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import RunCli

pytestmark = pytest.mark.e2e


def test_train_twice_in_two_fresh_copies_gives_the_same_sha256(
    project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    other = tmp_path / "copy"
    shutil.copytree(project, other)
    first = run_cli("train", "--seed", "42", "--json")
    second = run_cli("train", "--seed", "42", "--json", cwd=other)
    assert first.returncode == 0, first.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["sha256"] == b["sha256"] and a["model_id"] == b["model_id"]
    assert (project / "artifacts" / "models" / a["model_id"] / "model.joblib").is_file()


def test_evaluate_after_train_passes_devs_gate_with_accuracy_over_0_9(run_cli: RunCli) -> None:
    assert run_cli("train").returncode == 0
    result = run_cli("evaluate", "--env", "dev")
    assert result.returncode == 0, result.stderr
    assert "PASSED" in result.stdout
    report = json.loads(run_cli("evaluate", "--env", "dev", "--json").stdout)
    assert report["accuracy"] >= 0.9


def test_broken_config_gives_exit_2_and_no_traceback(project: Path, run_cli: RunCli) -> None:
    (project / "configs" / "dev.yaml").write_text("lambda:\n  timeout_s: 5000\n")
    result = run_cli("train", "--env", "dev")
    assert result.returncode == 2
    assert "dev.yaml: lambda.timeout_s" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_python_dash_m_works(project: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "mlops_cli", "--version"], cwd=project,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "iris-mlops" in result.stdout
