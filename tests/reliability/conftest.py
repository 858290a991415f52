"""Print and save the reliability figures at the end of the run (see `figures.py`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig, load_env
from mlops_cli.console import NullReporter
from mlops_cli.packaging.result import PackageInfo
from tests.reliability import figures


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


# -- a trained model and its portable package, shared by the whole reliability set -------------

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Trained:
    """A project folder (configs/ + artifacts/) holding one evaluated model and its local zip."""

    root: Path
    store: ArtifactStore
    cfg: EnvConfig
    package: PackageInfo

    def copy_to(self, dest: Path) -> Path:
        """A private copy (configs and artifacts) for tests that damage things."""
        shutil.copytree(self.root / "configs", dest / "configs")
        shutil.copytree(self.root / "artifacts", dest / "artifacts", symlinks=True)
        return dest


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
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
