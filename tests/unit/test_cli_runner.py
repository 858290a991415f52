"""The CLI through Typer's runner: exit codes, --json purity and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_cli.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    monkeypatch.delenv("IRIS_MLOPS_ARTIFACTS", raising=False)
    monkeypatch.delenv("IRIS_MLOPS_CONFIG_DIR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


def test_version_and_help_on_every_command() -> None:
    assert "iris-mlops" in runner.invoke(app, ["--version"]).stdout
    for command in ("train", "evaluate", "package", "deploy", "invoke", "teardown", "status",
                    "logs", "rollback", "serve", "up"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, command
        assert "--json" in result.stdout or command == "serve"
    assert runner.invoke(app, ["config", "show", "--help"]).exit_code == 0


def test_train_json_prints_one_object_with_the_contract_fields() -> None:
    result = runner.invoke(app, ["train", "--seed", "42", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"model_id", "sha256", "path"} <= set(data)


def test_evaluate_json_has_the_contract_fields() -> None:
    runner.invoke(app, ["train", "--json"])
    result = runner.invoke(app, ["evaluate", "--env", "dev", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {"model_id", "accuracy", "f1_macro", "passed"} <= set(data)
    assert data["passed"] is True


def test_broken_config_exits_2_naming_the_field(project: Path) -> None:
    (project / "configs" / "dev.yaml").write_text("lambda: {memory_mb: 99999}\n")
    result = runner.invoke(app, ["config", "show", "--env", "dev"])
    assert result.exit_code == 2
    assert "lambda.memory_mb" in result.output
    assert "Traceback" not in result.output


def test_unknown_env_exits_2() -> None:
    result = runner.invoke(app, ["train", "--env", "nosuch"])
    assert result.exit_code == 2
    assert "unknown env 'nosuch'" in result.output


def test_evaluate_without_a_model_exits_1_and_says_to_train() -> None:
    result = runner.invoke(app, ["evaluate"])
    assert result.exit_code == 1
    assert "iris-mlops train" in result.output


def test_gate_miss_exits_1(project: Path) -> None:
    (project / "configs" / "strict.yaml").write_text("quality_gate: {min_accuracy: 1.0}\n")
    runner.invoke(app, ["train", "--seed", "42"])
    result = runner.invoke(app, ["evaluate", "--env", "strict"])
    assert result.exit_code == 1
    assert "short by" in result.output


def test_config_show_json_is_the_resolved_config() -> None:
    result = runner.invoke(app, ["config", "show", "--env", "prod", "--json"])
    data = json.loads(result.stdout)
    assert data["protected"] is True and data["lambda"]["memory_mb"] == 1024


def test_invoke_with_bad_arguments_is_a_usage_error() -> None:
    result = runner.invoke(app, ["invoke", "5.1", "abc", "1", "2", "--env", "local"])
    assert result.exit_code == 2
    assert "'abc', which is not a number" in result.output
    result = runner.invoke(app, ["invoke", "1", "2", "--env", "local"])
    assert result.exit_code == 2
    assert "exactly 4 numbers" in result.output


def test_deploy_over_lambdas_limits_exits_2_before_building_or_calling_aws(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No credentials and an unroutable endpoint: reaching AWS (or packaging) would fail otherwise.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    (project / "configs" / "limits.yaml").write_text(
        "target: aws\naws: {region: eu-west-1}\n"
        f"lambda: {{environment: {{BIG: {'x' * 5000}}}}}\n"
        f"tags: {{'aws:owner': me, team: {'v' * 300}}}\n"
    )
    result = runner.invoke(app, ["deploy", "--env", "limits", "--json"])
    assert result.exit_code == 2, result.output
    message = json.loads(result.stdout)["error"]["message"]
    assert len(message.splitlines()) == 3
    assert "4 KB" in message and "reserved for AWS" in message and "256" in message
    assert not list(project.glob("artifacts/packages/**/*.zip"))
