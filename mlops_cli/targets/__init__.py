"""Deployment targets. Each target module offers the same functions (deploy, teardown, status,
endpoint, ...); the CLI picks the module from the env's `target` and never needs to know more."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the local server imports this package; keep pydantic out of its start-up
    from mlops_cli.config import EnvConfig


def target_module(cfg: EnvConfig) -> ModuleType:
    return importlib.import_module(f"mlops_cli.targets.{cfg.settings.target}")
