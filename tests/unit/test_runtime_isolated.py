"""The runtime as it ships: copied to `iris_runtime/`, run by a bare `python -I -S` (the Lambda
runtime's interpreter when installed) that sees only that folder and the standard library."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mlops_cli.runtime
from mlops_cli.interpreters import current_interpreter, find_interpreter
from tests import events
from tests.runtime_models import fitted, write_model_dir

SCRIPT = r"""
import json, sys
root = sys.argv[1]
sys.path.insert(0, root)
before = set(sys.modules)
import iris_runtime.handler as h
loaded = sorted(set(sys.modules) - before)
event = json.loads(sys.stdin.read())
response = h.lambda_handler(event, None)
stdlib = set(getattr(sys, "stdlib_module_names", ()))
print("RESULT " + json.dumps({
    "response": response,
    "loaded": loaded,
    "all_modules": sorted(sys.modules),
    "stdlib_names": sorted(stdlib),
}))
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zip")
    target = root / "iris_runtime"
    target.mkdir()
    for source in Path(mlops_cli.runtime.__file__).parent.glob("*.py"):
        shutil.copy2(source, target / source.name)
    write_model_dir(root / "model", fitted("random_forest", scale=True))
    return root


def _python() -> str:
    found = find_interpreter("python3.12")
    return (found or current_interpreter()).path


def test_the_shipped_runtime_predicts_setosa_in_an_isolated_interpreter(package: Path) -> None:
    event = events.http_api_v2(body={"features": [5.1, 3.5, 1.4, 0.2]})
    proc = subprocess.run(
        [_python(), "-I", "-S", "-c", SCRIPT, str(package)],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    assert proc.returncode == 0, proc.stderr
    result_line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(result_line.removeprefix("RESULT "))
    response = result["response"]
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["class_name"] == "setosa"

    stdlib = set(result["stdlib_names"])
    if not stdlib:  # Python < 3.10 cannot tell; nothing more to check
        return
    foreign = [
        name
        for name in result["all_modules"]
        if name.split(".")[0] not in stdlib | {"iris_runtime", "__main__"}
    ]
    assert foreign == [], f"modules outside the standard library: {foreign}"
    loaded_roots = {name.split(".")[0] for name in result["loaded"]}
    assert not loaded_roots & {"numpy", "sklearn", "joblib", "mlops_cli", "logging", "pathlib"}
    # One JSON log line went to stdout, before the result.
    log = json.loads(proc.stdout.splitlines()[0])
    assert log["status"] == 200 and log["route"] == "POST /predict"


def test_the_runtime_source_imports_nothing_from_outside(package: Path) -> None:
    """A static guard: no absolute import of project or third-party code in the runtime."""
    for source in (package / "iris_runtime").glob("*.py"):
        text = source.read_text()
        for banned in (
            "import mlops_cli",
            "from mlops_cli",
            "import typer",
            "import rich",
            "import boto3",
            "import pydantic",
            "import numpy",
        ):
            assert banned not in text, f"{source.name} contains {banned!r}"
    assert sys.version_info >= (3, 10)


def test_the_shipped_runtime_writes_a_valid_emf_record_in_an_isolated_interpreter(
    package: Path,
) -> None:
    from tests.emf_check import emf_metrics

    secret = [6.712345678, 3.012345678, 5.212345678, 2.312345678]
    event = events.http_api_v2(body={"instances": [[5.1, 3.5, 1.4, 0.2], secret]})
    proc = subprocess.run(
        [_python(), "-I", "-S", "-c", SCRIPT, str(package)],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "IRIS_MLOPS_ENV": "dev",
             "AWS_LAMBDA_FUNCTION_VERSION": "3"},
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.splitlines()[0]
    for value in secret:
        assert str(value) not in line
    record = json.loads(line)
    metrics = emf_metrics(record)
    env = (("env", "dev"),)
    model = record["model_id"]
    assert metrics[("rows", (("env", "dev"), ("model_id", model)))] == 2
    assert metrics[("setosa", env)] == 1 and metrics[("virginica", env)] == 1
    assert metrics[("server_errors", (("env", "dev"), ("version", "3")))] == 0
    result = json.loads(proc.stdout.splitlines()[-1].removeprefix("RESULT "))
    assert "iris_runtime.emf" in result["loaded"]
