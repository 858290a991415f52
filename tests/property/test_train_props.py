"""Training with any seed is reproducible: the same seed always gives the same bytes and id."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import load_env
from mlops_cli.console import NullReporter
from mlops_cli.training.train import train


@given(seed=st.integers(min_value=0, max_value=2**32 - 1),
       kind=st.sampled_from(["logistic_regression", "decision_tree"]))
@settings(max_examples=15, deadline=None)
def test_any_seed_trains_reproducibly(tmp_path_factory, seed: int, kind: str) -> None:
    root: Path = tmp_path_factory.mktemp("store")
    cfg = load_env("local", root / "none", {"training.seed": seed, "model.kind": kind})
    first = train(cfg, ArtifactStore(root / "a"), NullReporter())
    second = train(cfg, ArtifactStore(root / "b"), NullReporter())
    assert first["model_id"] == second["model_id"]
    assert Path(first["path"]).read_bytes() == Path(second["path"]).read_bytes()
