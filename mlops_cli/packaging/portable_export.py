"""Export a fitted scikit-learn model to the portable JSON document the runtime evaluates.

The document holds only parameters (lists of floats and ints), so the Lambda package needs no
numpy or scikit-learn and one zip serves every Python 3 runtime and both architectures. Floats
are written with `repr`, which round-trips float64 exactly. Whatever cannot be represented
faithfully is refused with an `ExportError` that points at the `sklearn` flavor; a silent
approximation would defeat the parity check that `package` runs next.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import sklearn
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlops_cli.errors import IrisError
from mlops_cli.runtime.portable import FORMAT, FORMAT_VERSION

_WAY_OUT = "set `package.flavor: sklearn` in the env config to ship the model with scikit-learn"


class ExportError(IrisError):
    """The model cannot be evaluated by the portable runtime."""


def _unsupported(what: str) -> ExportError:
    return ExportError(f"the portable flavor cannot export {what}; {_WAY_OUT}")


def _floats(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _tree(estimator: Any) -> dict[str, Any]:
    """scikit-learn's `tree_` arrays; `value` only at leaves, where the runtime reads it."""
    t = estimator.tree_
    if t.n_outputs != 1:
        raise _unsupported("multi-output trees")
    left = t.children_left.tolist()
    values = [_floats(t.value[i][0]) if left[i] == -1 else None for i in range(t.node_count)]
    return {
        "feature": t.feature.tolist(),
        "threshold": [float(v) for v in t.threshold],
        "left": left,
        "right": t.children_right.tolist(),
        "value": values,
    }


def _logistic(model: LogisticRegression) -> dict[str, Any]:
    coef = np.asarray(model.coef_, dtype=np.float64)
    n_classes = len(model.classes_)
    if n_classes > 2 and coef.shape[0] != n_classes:
        raise _unsupported("this logistic regression layout")
    if n_classes > 2 and getattr(model, "multi_class", "auto") == "ovr":
        raise _unsupported("one-vs-rest logistic regression (multi_class='ovr')")
    return {
        "kind": "logistic_regression",
        "coef": [_floats(row) for row in coef],
        "intercept": _floats(np.broadcast_to(model.intercept_, (coef.shape[0],))),
    }


def _gradient_boosting(model: GradientBoostingClassifier) -> dict[str, Any]:
    n_classes = len(model.classes_)
    if n_classes < 3:
        raise _unsupported("binary gradient boosting (only multiclass is exported)")
    init = model.init_
    if not (init == "zero" or (isinstance(init, DummyClassifier) and init.strategy == "prior")):
        raise _unsupported(f"gradient boosting with init={init!r}")
    # The prior init is constant in X: ask the library for it rather than re-deriving it.
    probe = np.zeros((1, model.n_features_in_), dtype=np.float64)
    raw_init = model._raw_predict_init(probe)[0]
    return {
        "kind": "gradient_boosting",
        "learning_rate": float(model.learning_rate),
        "init": _floats(raw_init),
        "stages": [[_tree(tree) for tree in stage] for stage in model.estimators_],
    }


def _model(model: Any) -> dict[str, Any]:
    if type(model) is LogisticRegression:
        return _logistic(model)
    if type(model) is DecisionTreeClassifier:
        return {"kind": "decision_tree", "tree": _tree(model)}
    if type(model) in (RandomForestClassifier, ExtraTreesClassifier):
        return {"kind": "random_forest", "trees": [_tree(t) for t in model.estimators_]}
    if type(model) is GradientBoostingClassifier:
        return _gradient_boosting(model)
    raise _unsupported(f"a {type(model).__name__}")


def _scaler(step: StandardScaler) -> dict[str, Any]:
    return {
        "kind": "standard_scaler",
        "mean": None if step.mean_ is None or not step.with_mean else _floats(step.mean_),
        "scale": None if step.scale_ is None or not step.with_std else _floats(step.scale_),
    }


def _split(estimator: Any) -> tuple[list[StandardScaler], Any]:
    if not isinstance(estimator, Pipeline):
        return [], estimator
    steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
    if not steps:
        raise _unsupported("an empty pipeline")
    *pre, final = steps
    for step in pre:
        if type(step) is not StandardScaler:
            raise _unsupported(f"a pipeline step {type(step).__name__}")
    if len(pre) > 1:
        raise _unsupported("a pipeline with more than one scaler")
    return pre, final


def export_portable(estimator: Any) -> dict[str, Any]:
    """The fitted `estimator` (bare or scaler pipeline) as a JSON-able portable document."""
    pre, model = _split(estimator)
    if not hasattr(model, "classes_"):
        raise ExportError(f"the {type(model).__name__} is not fitted; train it first")
    n_features = int(getattr(estimator, "n_features_in_", model.n_features_in_))
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "n_features": n_features,
        "classes": np.asarray(model.classes_).tolist(),
        "preprocess": [_scaler(step) for step in pre],
        "model": _model(model),
        "source": {"estimator": type(model).__name__, "scikit-learn": sklearn.__version__},
    }
    return doc


def dumps_portable(doc: dict[str, Any]) -> bytes:
    """Canonical bytes for `model.json`: same document → same bytes → same sha256 and zip."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
