"""Fixtures shared by every test layer: a throwaway project folder and ways to run the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "iris-mlops"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project folder as a user has it after cloning: the shipped configs, no artifacts."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copytree(REPO / "configs", folder / "configs")
    return folder


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IRIS_MLOPS_", "AWS_"))}
    env.update({"NO_COLOR": "1", "COLUMNS": "120", "IRIS_MLOPS_CACHE": str(_cache_dir())})
    env.update(extra or {})
    return env


def _cache_dir() -> Path:
    # Shared across tests (and runs) so wheels and unpacked packages are not fetched twice.
    return Path(os.environ.get("IRIS_MLOPS_TEST_CACHE", REPO / ".cache" / "test"))


RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(project: Path) -> RunCli:
    """Run the installed `iris-mlops` binary in the project folder, as a user would."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *args], cwd=cwd or project, env=cli_env(env), capture_output=True,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )

    return run


@pytest.fixture(autouse=True, scope="session")
def _shared_runtime_client() -> None:
    """Tests sandbox IRIS_MLOPS_CACHE; the pinned awslambdaric tree is immutable, so one staged
    copy (under the shared test cache) serves them all instead of one pip run per sandbox."""
    os.environ.setdefault("IRIS_MLOPS_RUNTIME_CLIENTS", str(_cache_dir() / "runtime-client"))
