"""Fit the configured model and store it with a manifest that makes it reproducible and checkable.

`model_id` is derived from the model's bytes and the inputs that made it (never from the clock),
so the same seed and config give the same id on any machine with the same library versions.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import warnings
from datetime import UTC, datetime
from typing import Any

import joblib
import numpy
import scipy
import sklearn
import threadpoolctl
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from mlops_cli.artifacts import ArtifactStore, write_json_atomic
from mlops_cli.config import EnvConfig
from mlops_cli.console import Reporter
from mlops_cli.training.data import load_dataset, stratified_split
from mlops_cli.training.zoo import build_estimator, effective_params

MANIFEST_VERSION = 1


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
        "threadpoolctl": threadpoolctl.__version__,
    }


def serialize_model(estimator: BaseEstimator) -> bytes:
    """Pickle via joblib into memory; no compression, so the bytes depend only on the model."""
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer, protocol=5)
    return buffer.getvalue()


def train(cfg: EnvConfig, store: ArtifactStore, reporter: Reporter) -> dict[str, Any]:
    settings = cfg.settings
    seed = settings.training.seed
    data = load_dataset()
    split = stratified_split(data, settings.training.test_size, seed)
    estimator = build_estimator(
        settings.model.kind, dict(settings.model.params), settings.model.scale, seed
    )
    with reporter.step(
        f"Training {settings.model.kind}{' + scaler' if settings.model.scale else ''} "
        f"(seed {seed}, {len(split.y_train)} train / {len(split.y_test)} test rows)"
    ), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(split.X_train, split.y_train)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            reporter.warn(f"{warning.message} (raise model.params.max_iter)")

    blob = serialize_model(estimator)
    model_sha = hashlib.sha256(blob).hexdigest()
    identity = {
        "model_sha256": model_sha,
        "kind": settings.model.kind,
        "scale": settings.model.scale,
        "params": effective_params(estimator),
        "seed": seed,
        "test_size": settings.training.test_size,
        "data_sha256": data.sha256,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    model_id = f"{settings.model.kind}-{digest[:12]}"
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "model_id": model_id,
        "sha256": model_sha,
        "model_file": "model.joblib",
        "kind": settings.model.kind,
        "scale": settings.model.scale,
        "params": identity["params"],
        "seed": seed,
        "split": {
            "test_size": settings.training.test_size,
            "train_rows": len(split.y_train),
            "test_rows": len(split.y_test),
            "stratified": True,
            # the class mix `iris-mlops metrics` compares live traffic with
            "train_class_counts": {
                name: int((split.y_train == index).sum())
                for index, name in enumerate(data.class_names)
            },
        },
        "data": {"name": "iris", "source": "sklearn.datasets.load_iris", "sha256": data.sha256},
        "feature_names": data.feature_names,
        "class_names": data.class_names,
        "versions": library_versions(),
        "trained_with_env": cfg.env,
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    folder = store.model_dir(model_id)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "model.joblib"
    tmp = folder / ".model.joblib.tmp"
    tmp.write_bytes(blob)
    tmp.replace(model_path)
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        # Retraining the same model keeps its first creation time: the manifest stays stable.
        try:
            previous = json.loads(manifest_path.read_text(encoding="utf-8"))
            manifest["created_at"] = previous.get("created_at", manifest["created_at"])
        except (OSError, ValueError):
            pass
    write_json_atomic(manifest_path, manifest)
    store.set_latest(model_id)
    reporter.done(f"Saved model {model_id} to {folder}")
    return {
        "model_id": model_id,
        "sha256": model_sha,
        "path": str(model_path),
        "manifest": str(manifest_path),
        "kind": settings.model.kind,
        "seed": seed,
        "train_rows": len(split.y_train),
        "test_rows": len(split.y_test),
    }
