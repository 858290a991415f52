"""Held-out metrics, cross-validation and the env's quality gate for a stored model.

The gate is checked again by `package` against the target env's own thresholds, so the report
records the raw metrics as well as the verdict for the env it was evaluated with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.model_selection import StratifiedKFold, cross_val_score

from mlops_cli.artifacts import ArtifactStore, write_json_atomic
from mlops_cli.config import EnvConfig
from mlops_cli.console import Reporter
from mlops_cli.training.data import load_dataset, stratified_split
from mlops_cli.training.gate import gate_failures
from mlops_cli.training.model_io import open_model


def evaluate(
    cfg: EnvConfig, store: ArtifactStore, reporter: Reporter, model_id: str | None = None
) -> dict[str, Any]:
    stored = open_model(store, model_id)
    estimator = stored.load_estimator()
    manifest = stored.manifest
    seed = int(manifest["seed"])
    test_size = float(manifest.get("split", {}).get("test_size", cfg.settings.training.test_size))
    data = load_dataset()
    split = stratified_split(data, test_size, seed)
    with reporter.step(f"Scoring {stored.model_id} on {len(split.y_test)} held-out rows"):
        predicted = estimator.predict(split.X_test)
    labels = list(range(len(data.class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        split.y_test, predicted, labels=labels, zero_division=0
    )
    folds = cfg.settings.training.cv_folds
    with reporter.step(f"Cross-validating ({folds} stratified folds on all {len(data.y)} rows)"):
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        scores = cross_val_score(clone(estimator), data.X, data.y, cv=cv, scoring="accuracy")
    metrics = {
        "accuracy": float(accuracy_score(split.y_test, predicted)),
        "f1_macro": float(f1_score(split.y_test, predicted, average="macro", zero_division=0)),
    }
    gate = cfg.settings.quality_gate
    failures = gate_failures(metrics, gate)
    report = {
        "model_id": stored.model_id,
        **metrics,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(data.class_names)
        },
        "confusion_matrix": confusion_matrix(split.y_test, predicted, labels=labels).tolist(),
        "class_names": data.class_names,
        "cv": {
            "folds": folds,
            "mean_accuracy": float(np.mean(scores)),
            "std_accuracy": float(np.std(scores)),
            "scores": [float(s) for s in scores],
        },
        "gate": {"env": cfg.env, "min_accuracy": gate.min_accuracy, "min_f1": gate.min_f1},
        "passed": not failures,
        "failures": failures,
        "test_rows": len(split.y_test),
        "evaluated_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    path = stored.folder / "evaluation.json"
    write_json_atomic(path, report)
    report["path"] = str(path)
    return report
