from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_cli.config import ConfigError, load_env

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write(folder: Path, env: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{env}.yaml").write_text(text)
    return folder


def test_shipped_envs_load_with_the_documented_targets_and_regions() -> None:
    local = load_env("local", REPO_CONFIGS)
    dev = load_env("dev", REPO_CONFIGS)
    prod = load_env("prod", REPO_CONFIGS)
    assert local.settings.target == "local"
    for cfg in (dev, prod):
        assert cfg.settings.target == "aws"
        assert cfg.settings.aws.region == "eu-west-1"
        assert cfg.settings.package.runtime == "python3.12"
    assert prod.settings.protected is True
    assert dev.function_name == "iris-mlops-dev"


def test_local_env_works_without_any_config_file(tmp_path: Path) -> None:
    cfg = load_env("local", tmp_path / "nowhere")
    assert cfg.settings.target == "local"
    assert cfg.path is None


def test_empty_file_gives_all_defaults(tmp_path: Path) -> None:
    cfg = load_env("staging", write(tmp_path, "staging", ""))
    assert cfg.settings.model.kind == "logistic_regression"
    assert cfg.settings.lambda_.memory_mb == 512


def test_unknown_env_names_the_missing_file_and_lists_known_envs(tmp_path: Path) -> None:
    write(tmp_path, "dev", "target: aws\n")
    with pytest.raises(ConfigError, match=r"unknown env 'qa'.*qa\.yaml.*dev"):
        load_env("qa", tmp_path)


@pytest.mark.parametrize(
    ("text", "field", "allowed"),
    [
        ("lambda: {memory_mb: 64}\n", "lambda.memory_mb", ">= 128"),
        ("lambda: {memory_mb: 20000}\n", "lambda.memory_mb", "<= 10240"),
        ("lambda: {timeout_s: 0}\n", "lambda.timeout_s", ">= 1"),
        ("lambda: {timeout_s: 901}\n", "lambda.timeout_s", "<= 900"),
        ("package: {runtime: python2.7}\n", "package.runtime", "python3.12"),
        ("package: {architecture: sparc}\n", "package.architecture", "arm64"),
        ("target: gcp\n", "target", "'aws'"),
        ("model: {kind: svm}\n", "model.kind", "random_forest"),
        ("lambda: {memroy_mb: 256}\n", "lambda.memroy_mb", "unknown key"),
        ("colour: blue\n", "colour", "unknown key"),
        ("lambda: {memory_mb: lots}\n", "lambda.memory_mb", "integer"),
        ("lambda: {log_retention_days: 10}\n", "lambda.log_retention_days", "14"),
        ("tags: {'iris-mlops:env': x}\n", "tags", "reserved"),
    ],
)
def test_bad_values_name_the_file_the_field_and_what_is_allowed(
    tmp_path: Path, text: str, field: str, allowed: str
) -> None:
    write(tmp_path, "bad", text)
    with pytest.raises(ConfigError) as info:
        load_env("bad", tmp_path)
    message = str(info.value)
    assert "bad.yaml" in message
    assert field in message
    assert allowed in message


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    write(tmp_path, "broken", "lambda:\n  memory_mb: [1, 2\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: YAML syntax error at line \d+"):
        load_env("broken", tmp_path)


def test_a_file_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, "list", "- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_env("list", tmp_path)


def test_cli_overrides_win_over_the_file(tmp_path: Path) -> None:
    write(tmp_path, "dev", "training: {seed: 1}\n")
    cfg = load_env("dev", tmp_path, {"training.seed": 99, "model.kind": None})
    assert cfg.settings.training.seed == 99


def test_invalid_env_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid"):
        load_env("../etc/passwd", tmp_path)


def test_resolved_config_uses_the_file_keys(tmp_path: Path) -> None:
    data = load_env("dev", REPO_CONFIGS).to_dict()
    assert set(data) == {
        "target", "project", "protected", "aws", "model", "training", "quality_gate", "package",
        "lambda", "api", "local", "deploy", "tags",
    }
    assert data["lambda"]["memory_mb"] == 512


def test_deploy_strategy_settings_are_validated_with_clear_messages() -> None:
    from mlops_cli.config import validate_settings

    ok = validate_settings(
        {"deploy": {"strategy": "canary", "canary_percent": 25, "bake": "30s",
                    "max_error_rate": 0.02}}, "dev.yaml"
    )
    assert (ok.deploy.strategy, ok.deploy.canary_percent, ok.deploy.bake_seconds) == (
        "canary", 25, 30.0)
    assert validate_settings({}, "x").deploy.strategy == "all_at_once"
    assert validate_settings({"deploy": {"bake": "1h"}}, "x").deploy.bake_seconds == 3600
    for bad, words in (
        ({"bake": "5"}, "deploy.bake: bake '5' is not a duration: use e.g. 30s, 5m or 1h"),
        ({"bake": "2d"}, "deploy.bake"),
        ({"canary_percent": 100}, "deploy.canary_percent: 100 is out of range"),
        ({"strategy": "blue_green"}, "expected one of 'all_at_once' or 'canary'"),
        ({"max_error_rate": 2}, "deploy.max_error_rate"),
    ):
        with pytest.raises(ConfigError) as exc:
            validate_settings({"deploy": bad}, "dev.yaml")
        assert words in str(exc.value)


def test_building_the_config_models_skips_pydantic_plugins_and_restores_the_caller_setting():
    """Each command's start does not scan every installed distribution for pydantic plugins,
    and the caller's PYDANTIC_DISABLE_PLUGINS is as it was afterwards (unset, or its value)."""
    probe = (
        "import os, mlops_cli.config as c, pydantic.plugin._loader as loader; "
        "c.validate_settings({'target': 'aws'}, 'probe'); "
        "print(loader._plugins is None, os.environ.get('PYDANTIC_DISABLE_PLUGINS'))"
    )
    for caller, expected in ((None, "True None"), ("some-plugin", "True some-plugin")):
        env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
        if caller:
            env["PYDANTIC_DISABLE_PLUGINS"] = caller
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.stdout.strip() == expected, done.stderr
