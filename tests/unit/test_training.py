from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_cli.artifacts import ArtifactError, ArtifactStore
from mlops_cli.config import load_env
from mlops_cli.console import NullReporter
from mlops_cli.errors import UsageError
from mlops_cli.training.evaluate import evaluate
from mlops_cli.training.gate import require_passed_gate
from mlops_cli.training.model_io import open_model
from mlops_cli.training.train import train
from mlops_cli.training.zoo import KINDS, build_estimator


def _train(tmp_path: Path, sub: str = "a", **overrides: object) -> dict:
    cfg = load_env("local", tmp_path / "no-configs", dict(overrides))
    return train(cfg, ArtifactStore(tmp_path / sub), NullReporter())


@pytest.mark.parametrize("kind", KINDS)
def test_every_zoo_kind_trains_byte_identically_in_two_fresh_stores(
    tmp_path: Path, kind: str
) -> None:
    first = _train(tmp_path, "one", **{"model.kind": kind})
    second = _train(tmp_path, "two", **{"model.kind": kind})
    assert first["model_id"] == second["model_id"]
    assert Path(first["path"]).read_bytes() == Path(second["path"]).read_bytes()


def test_a_different_seed_gives_a_different_model_id(tmp_path: Path) -> None:
    assert _train(tmp_path, seed_a := "a", **{"training.seed": 1})["model_id"] != _train(
        tmp_path, seed_a, **{"training.seed": 2}
    )["model_id"]


def test_manifest_records_what_reproduces_the_model(tmp_path: Path) -> None:
    result = _train(tmp_path, **{"model.scale": True})
    manifest = json.loads(Path(result["manifest"]).read_text())
    for key in ("model_id", "sha256", "kind", "params", "seed", "split", "data", "versions",
                "created_at"):
        assert key in manifest
    assert manifest["split"]["train_rows"] + manifest["split"]["test_rows"] == 150
    assert set(manifest["versions"]) >= {"python", "scikit-learn", "numpy", "joblib"}
    store = ArtifactStore(tmp_path / "a")
    assert store.latest_model_id() == result["model_id"]


def test_unknown_hyperparameter_is_a_usage_error_listing_valid_ones() -> None:
    with pytest.raises(UsageError, match="n_trees not accepted by RandomForestClassifier"):
        build_estimator("random_forest", {"n_trees": 3}, False, 0)


def test_evaluate_reports_metrics_and_passes_the_default_gate(tmp_path: Path) -> None:
    _train(tmp_path)
    cfg = load_env("dev", Path(__file__).resolve().parents[2] / "configs")
    report = evaluate(cfg, ArtifactStore(tmp_path / "a"), NullReporter())
    assert report["accuracy"] >= 0.9
    assert report["passed"] is True
    assert sum(map(sum, report["confusion_matrix"])) == report["test_rows"]
    assert Path(report["path"]).name == "evaluation.json"


def test_a_missed_gate_says_which_metric_and_by_how_much(tmp_path: Path) -> None:
    _train(tmp_path)
    store = ArtifactStore(tmp_path / "a")
    strict = load_env("local", tmp_path / "x", {"quality_gate.min_accuracy": 1.0})
    report = evaluate(strict, store, NullReporter())
    assert report["passed"] is False
    assert "accuracy" in report["failures"][0] and "short by" in report["failures"][0]
    from mlops_cli.errors import IrisError

    with pytest.raises(IrisError, match="fails the quality gate"):
        require_passed_gate(open_model(store), strict.settings.quality_gate, "local")


def test_a_corrupted_model_file_is_detected_and_named(tmp_path: Path) -> None:
    result = _train(tmp_path)
    Path(result["path"]).write_bytes(b"not a pickle")
    with pytest.raises(ArtifactError, match=r"model\.joblib does not match its manifest"):
        open_model(ArtifactStore(tmp_path / "a"))


def test_no_model_yet_tells_the_user_to_train(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="run `iris-mlops train` first"):
        open_model(ArtifactStore(tmp_path / "empty"))
