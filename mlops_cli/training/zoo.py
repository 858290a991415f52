"""The model zoo: config (`model.kind`, `model.scale`, `model.params`) → an unfitted estimator.

Every estimator gets `random_state=seed` and single-threaded fitting, because reproducibility
(byte-identical model for the same seed and config) is a promise of `train`.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlops_cli.errors import UsageError

_DEFAULTS: dict[str, tuple[type[BaseEstimator], dict[str, Any]]] = {
    "logistic_regression": (LogisticRegression, {"max_iter": 1000}),
    "decision_tree": (DecisionTreeClassifier, {"max_depth": 5}),
    "random_forest": (RandomForestClassifier, {"n_estimators": 100, "n_jobs": 1}),
    "gradient_boosting": (GradientBoostingClassifier, {"n_estimators": 100}),
}
KINDS = tuple(_DEFAULTS)


def build_estimator(kind: str, params: dict[str, Any], scale: bool, seed: int) -> BaseEstimator:
    if kind not in _DEFAULTS:
        raise UsageError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    cls, defaults = _DEFAULTS[kind]
    allowed = set(cls().get_params())
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise UsageError(
            f"model.params: {', '.join(unknown)} not accepted by {cls.__name__}; "
            f"valid parameters: {', '.join(sorted(allowed))}"
        )
    merged = {**defaults, **params}
    if "random_state" in allowed:
        merged["random_state"] = seed
    try:
        estimator = cls(**merged)
        estimator._validate_params()  # fail now with sklearn's message, not mid-fit
    except (TypeError, ValueError) as exc:
        raise UsageError(f"model.params for {kind}: {exc}") from None
    if scale:
        return Pipeline([("scale", StandardScaler()), ("model", estimator)])
    return estimator


def effective_params(estimator: BaseEstimator) -> dict[str, Any]:
    """The final model's parameters as JSON-able values, for the manifest."""
    model = estimator.named_steps["model"] if isinstance(estimator, Pipeline) else estimator
    out: dict[str, Any] = {}
    for key, value in sorted(model.get_params(deep=False).items()):
        out[key] = value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)
    return out
