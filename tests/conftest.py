"""Fixtures shared by every test layer: a throwaway project folder and ways to run the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig, load_env
from mlops_cli.console import NullReporter
from mlops_cli.packaging.result import PackageInfo
from tests.reliability import figures

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "iris-mlops"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project folder as a user has it after cloning: the shipped configs, no artifacts."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copytree(REPO / "configs", folder / "configs")
    return folder


@dataclass(frozen=True)
class Trained:
    """A project folder (configs/ + artifacts/) holding one evaluated model and its local zip."""

    root: Path
    store: ArtifactStore
    cfg: EnvConfig
    package: PackageInfo

    def copy_to(self, dest: Path) -> Path:
        """A private copy (configs and artifacts) for tests that damage things."""
        shutil.copytree(self.root / "configs", dest / "configs", dirs_exist_ok=True)
        shutil.copytree(self.root / "artifacts", dest / "artifacts", symlinks=True)
        return dest


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """`train --seed 42`, `evaluate` and `package --env local` once per run, in process.

    Training is deterministic and the artifacts hold no absolute path, so every test that only
    needs "a project with an evaluated model" copies this one instead of paying for scikit-learn
    in three more subprocesses. Tests about train, evaluate or package themselves still run them.
    """
    from mlops_cli.packaging.build import build_package
    from mlops_cli.training.evaluate import evaluate
    from mlops_cli.training.train import train

    root = tmp_path_factory.mktemp("trained")
    shutil.copytree(REPO / "configs", root / "configs")
    store = ArtifactStore(root / "artifacts")
    cfg = load_env("local", root / "configs")
    reporter = NullReporter()
    train(cfg, store, reporter)
    evaluate(cfg, store, reporter)
    package = build_package(cfg, store, reporter).info
    return Trained(root, store, cfg, package)


@pytest.fixture
def trained_project(project: Path, trained: Trained) -> Path:
    """`project` after `train --seed 42`, `evaluate` and `package --env local`."""
    return trained.copy_to(project)


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


# -- the reliability figures: gathered from pytest-xdist's workers, printed once at the end --------
_FIGURES_KEY = "reliability_figures"


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand its figures to the controller
        workeroutput[_FIGURES_KEY] = json.dumps(figures.snapshot())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's hook in the controller when a worker ends (unknown without xdist)."""
    figures.merge(json.loads(getattr(node, "workeroutput", {}).get(_FIGURES_KEY, "{}")))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    data = figures.snapshot()
    if not data:
        return
    terminalreporter.section("reliability figures")
    for item, values in data.items():
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        terminalreporter.write_line(f"{item}: {shown}")
    path = figures.save()
    if path is not None:
        terminalreporter.write_line(f"(saved to {path})")
