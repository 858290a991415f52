"""Staging AWS's runtime interface client: offline once staged, and a failure says what to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_cli.console import NullReporter
from mlops_cli.errors import IrisError
from mlops_cli.targets.local import ric


def test_a_client_that_cannot_be_fetched_names_the_package_and_the_prefetch_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_MLOPS_RUNTIME_CLIENTS", str(tmp_path / "clients"))
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))

    def offline(*args: object, **kwargs: object) -> None:
        raise IrisError("pip could not get the wheels: No matching distribution")

    monkeypatch.setattr(ric, "_download", offline)
    with pytest.raises(IrisError) as caught:
        ric.ensure_client("3.12", NullReporter())
    message = str(caught.value)
    assert "awslambdaric==4.0.1" in message and "Python 3.12" in message
    assert "python3 -m pip download --only-binary=:all: --python-version 3.12" in message
    assert "awslambdaric==4.0.1 simplejson==4.3.0 snapshot-restore-py==1.0.0" in message
    assert str(tmp_path / "cache" / "wheels" / "cp312-") in message


def test_a_staged_client_is_used_without_asking_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_MLOPS_RUNTIME_CLIENTS", str(tmp_path / "clients"))
    staged = ric.client_dir("3.12", ric.local_architecture())
    (staged / "awslambdaric").mkdir(parents=True)
    (staged / ".iris-staged").write_text("pins\n")

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run for a staged client")

    monkeypatch.setattr(ric, "_download", no_pip)
    assert ric.ensure_client("3.12", NullReporter()) == staged
