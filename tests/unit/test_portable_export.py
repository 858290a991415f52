"""Portable export: every zoo model matches scikit-learn; what cannot be exported says so."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import SVC

from mlops_cli.errors import IrisError
from mlops_cli.packaging.parity import check_parity, probe_rows
from mlops_cli.packaging.portable_export import ExportError, dumps_portable, export_portable
from mlops_cli.runtime.portable import PortableModel
from tests.runtime_models import KINDS, fitted, iris


@pytest.mark.parametrize("scale", [False, True], ids=["bare", "scaled"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_zoo_model_passes_parity(kind: str, scale: bool) -> None:
    estimator = fitted(kind, scale)
    report = check_parity(estimator, export_portable(estimator))
    assert report.passed, report
    assert report.rows_checked >= 150 + 1000
    assert report.argmax_mismatches == 0


def test_default_size_forest_and_boosting_pass_parity() -> None:
    for kind in ("random_forest", "gradient_boosting"):
        estimator = fitted(kind, True, n_estimators=100)
        report = check_parity(estimator, export_portable(estimator))
        assert report.passed, (kind, report)


def test_trees_are_bit_identical_to_scikit_learn() -> None:
    estimator = fitted("random_forest")
    report = check_parity(estimator, export_portable(estimator), probes=300)
    assert report.max_abs_diff == 0.0


def test_a_tampered_document_fails_parity() -> None:
    estimator = fitted("logistic_regression", True)
    doc = export_portable(estimator)
    doc["model"]["intercept"][0] += 1e-3
    report = check_parity(estimator, doc, probes=200)
    assert not report.passed
    assert report.max_abs_diff > 1e-9
    assert len(report.worst_row) == 4


def test_probes_reach_far_outside_the_data_and_sit_on_split_thresholds() -> None:
    doc = export_portable(fitted("decision_tree"))
    rows = probe_rows(doc, probes=1000, seed=0)
    assert np.abs(rows).max() >= 1e5
    tree = doc["model"]["tree"]
    splits = {
        (f, t)
        for f, t, left in zip(tree["feature"], tree["threshold"], tree["left"], strict=True)
        if left != -1
    }
    at_split = sum(
        1 for row in rows for f, t in splits if float(np.float32(row[f])) == float(np.float32(t))
    )
    assert at_split > 50


def test_trees_compare_the_float32_rounded_input() -> None:
    """0.1 rounds *up* in float32, so a split at 0.1 sends x=0.1 right, as scikit-learn does."""
    doc = {
        "format": "iris-portable",
        "format_version": 1,
        "n_features": 1,
        "classes": [0, 1],
        "preprocess": [],
        "model": {
            "kind": "decision_tree",
            "tree": {
                "feature": [0, -2, -2],
                "threshold": [0.1, -2.0, -2.0],
                "left": [1, -1, -1],
                "right": [2, -1, -1],
                "value": [None, [1.0, 0.0], [0.0, 1.0]],
            },
        },
    }
    model = PortableModel(doc)
    assert model.predict_proba([0.1]) == [0.0, 1.0]
    assert model.predict_proba([0.09]) == [1.0, 0.0]


def test_binary_logistic_regression_matches_scikit_learn() -> None:
    X, y = iris()
    mask = y < 2
    estimator = LogisticRegression(max_iter=1000).fit(X[mask], y[mask])
    model = PortableModel(json.loads(dumps_portable(export_portable(estimator))))
    rows = np.vstack([X, -X * 100])
    got = np.array(model.predict_proba_many(rows.tolist()))
    assert np.abs(got - estimator.predict_proba(rows)).max() < 1e-12


def test_the_document_is_canonical_json() -> None:
    estimator = fitted("gradient_boosting", True)
    first = dumps_portable(export_portable(estimator))
    assert first == dumps_portable(export_portable(estimator))
    doc = json.loads(first)
    assert doc["format"] == "iris-portable" and doc["format_version"] == 1
    assert doc["classes"] == [0, 1, 2] and doc["n_features"] == 4
    assert b"NaN" not in first and b"Infinity" not in first


@pytest.mark.parametrize(
    "estimator",
    [
        SVC(),
        HistGradientBoostingClassifier(max_iter=5),
        Pipeline([("mm", MinMaxScaler()), ("model", LogisticRegression(max_iter=1000))]),
    ],
    ids=["svc", "hist-gradient-boosting", "minmax-pipeline"],
)
def test_unsupported_models_name_the_sklearn_flavor(estimator) -> None:
    X, y = iris()
    estimator.fit(X, y)
    with pytest.raises(ExportError) as info:
        export_portable(estimator)
    assert isinstance(info.value, IrisError)
    assert "sklearn" in str(info.value) and "flavor" in str(info.value)


def test_binary_gradient_boosting_is_refused_clearly() -> None:
    X, y = iris()
    estimator = GradientBoostingClassifier(n_estimators=5).fit(X[y < 2], y[y < 2])
    with pytest.raises(ExportError, match="binary gradient boosting"):
        export_portable(estimator)


def test_an_unfitted_model_is_refused() -> None:
    with pytest.raises(ExportError, match="not fitted"):
        export_portable(LogisticRegression())
