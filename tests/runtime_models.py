"""Fitted Iris models and packaged model directories (manifest + model file) for runtime tests.

Fitting is cached per (kind, scale, params) for the whole test session: the tests only read the
estimators, and refitting a 100-tree forest per test would dominate the run time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlops_cli.packaging.portable_export import dumps_portable, export_portable

CLASS_NAMES = ["setosa", "versicolor", "virginica"]
FEATURE_NAMES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
KINDS = ("logistic_regression", "decision_tree", "random_forest", "gradient_boosting")

# Small ensembles keep the suite fast; the default sizes get one dedicated test.
SMALL = {
    "logistic_regression": {"max_iter": 1000},
    "decision_tree": {"random_state": 0},
    "random_forest": {"n_estimators": 20, "random_state": 0, "n_jobs": 1},
    "gradient_boosting": {"n_estimators": 20, "random_state": 0},
}
_CLASSES = {
    "logistic_regression": LogisticRegression,
    "decision_tree": DecisionTreeClassifier,
    "random_forest": RandomForestClassifier,
    "gradient_boosting": GradientBoostingClassifier,
}


@functools.cache
def iris() -> tuple[np.ndarray, np.ndarray]:
    data = load_iris()
    return data.data, data.target


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


@functools.cache
def _fit(kind: str, scale: bool, params: tuple) -> Any:
    estimator = _CLASSES[kind](**dict(params))
    if scale:
        estimator = Pipeline([("scale", StandardScaler()), ("model", estimator)])
    X, y = iris()
    return estimator.fit(X, y)


def fitted(kind: str, scale: bool = False, **params: Any) -> Any:
    """A fitted estimator (shared, do not mutate): the small defaults above unless overridden."""
    return _fit(kind, scale, _key({**SMALL[kind], **params}))


def write_model_dir(
    directory: Path,
    estimator: Any,
    *,
    flavor: str = "portable",
    model_id: str = "iris-test-0001",
    max_batch: int = 100,
    doc: dict[str, Any] | None = None,
) -> Path:
    """A `model/` directory as the zip contract describes it; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    if flavor == "portable":
        name = "model.json"
        (directory / name).write_bytes(dumps_portable(doc or export_portable(estimator)))
    else:
        name = "model.joblib"
        joblib.dump(estimator, directory / name)
    digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    manifest = {
        "model_id": model_id,
        "flavor": flavor,
        "model_file": name,
        "sha256": digest,
        "class_names": CLASS_NAMES,
        "feature_names": FEATURE_NAMES,
        "max_batch": max_batch,
        "runtime": "python3.12",
        "architecture": "x86_64",
        "versions": {
            "python": "{}.{}.{}".format(*sys.version_info[:3]),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "joblib": joblib.__version__,
        },
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return directory
