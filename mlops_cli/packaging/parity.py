"""Prove that the portable runtime computes what scikit-learn computes, before shipping it.

The probes are the 150 Iris rows plus random rows inside the data range, far outside it (up to
the runtime's accepted magnitude, ±1e6), and exactly at (and one float32 step around) the trees'
split thresholds, where a wrong float32 rounding would take the other branch. The evaluator is
`mlops_cli.runtime.portable.PortableModel`: the very code that ships in the zip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.datasets import load_iris

from mlops_cli.runtime.portable import PortableModel
from mlops_cli.runtime.validation import MAX_ABS_VALUE

TOLERANCE = 1e-9


@dataclass(frozen=True)
class ParityReport:
    rows_checked: int
    max_abs_diff: float
    argmax_mismatches: int
    worst_row: list[float]
    non_finite_rows: int = 0
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return (
            self.max_abs_diff <= self.tolerance
            and self.argmax_mismatches == 0
            and self.non_finite_rows == 0
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_checked": self.rows_checked,
            "max_abs_diff": self.max_abs_diff,
            "argmax_mismatches": self.argmax_mismatches,
            "worst_row": self.worst_row,
            "non_finite_rows": self.non_finite_rows,
            "tolerance": self.tolerance,
            "passed": self.passed,
        }


def _thresholds(doc: dict[str, Any]) -> list[tuple[int, float]]:
    """(feature, threshold) of every split, in the model's input space."""
    model = doc["model"]
    trees: list[dict[str, Any]] = []
    if model["kind"] == "decision_tree":
        trees = [model["tree"]]
    elif model["kind"] == "random_forest":
        trees = model["trees"]
    elif model["kind"] == "gradient_boosting":
        trees = [tree for stage in model["stages"] for tree in stage]
    out = []
    for tree in trees:
        for f, t, left in zip(tree["feature"], tree["threshold"], tree["left"], strict=True):
            if left != -1:
                out.append((int(f), float(t)))
    return sorted(set(out))


def _to_raw(doc: dict[str, Any], feature: int, value: float) -> float:
    """Undo the scaler (approximately) so a threshold can be probed from the raw input."""
    for step in doc.get("preprocess", []):
        scale = step.get("scale")
        mean = step.get("mean")
        value = value * (scale[feature] if scale else 1.0) + (mean[feature] if mean else 0.0)
    return value


def probe_rows(doc: dict[str, Any], probes: int = 1000, seed: int = 0) -> np.ndarray:
    """Iris rows + `probes` random rows (a third in range, a third wide, the rest at splits)."""
    rng = np.random.default_rng(seed)
    X = load_iris().data
    n_features = X.shape[1]
    lo, hi = X.min(axis=0), X.max(axis=0)
    n_in = max(probes // 3, 1)
    n_wide = max(probes // 3, 1)
    inside = rng.uniform(lo - 1.0, hi + 1.0, size=(n_in, n_features))
    magnitudes = 10.0 ** rng.uniform(-3, np.log10(MAX_ABS_VALUE), size=(n_wide, n_features))
    wide = magnitudes * rng.choice([-1.0, 1.0], size=(n_wide, n_features))
    edges = np.array(
        [[s * m] * n_features for m in (1e3, 1e5, MAX_ABS_VALUE) for s in (-1.0, 1.0)]
        + [[0.0] * n_features]
    )
    rows = [X, inside, wide, edges]
    splits = _thresholds(doc)
    n_split = max(probes - n_in - n_wide, 0)
    if splits and n_split:
        picks = rng.integers(0, len(splits), size=n_split)
        base = X[rng.integers(0, len(X), size=n_split)].copy()
        step = rng.integers(-1, 2, size=n_split)  # one float32 step below, at, above
        for i, (pick, direction) in enumerate(zip(picks, step, strict=True)):
            feature, threshold = splits[pick]
            value = np.float32(_to_raw(doc, feature, threshold))
            if direction:
                value = np.nextafter(value, np.float32(np.inf * direction), dtype=np.float32)
            base[i, feature] = float(value)
        rows.append(base)
    elif n_split:
        rows.append(rng.uniform(lo, hi, size=(n_split, n_features)))
    out = np.vstack(rows)
    return np.clip(out, -MAX_ABS_VALUE, MAX_ABS_VALUE)


def check_parity(
    estimator: Any, doc: dict[str, Any], *, probes: int = 1000, seed: int = 0
) -> ParityReport:
    """Compare `estimator.predict_proba` with the shipped evaluator of `doc` (after a JSON
    round trip, exactly as the runtime reads it) on Iris and `probes` probe rows."""
    model = PortableModel(json.loads(json.dumps(doc, allow_nan=False)))
    rows = probe_rows(doc, probes=probes, seed=seed)
    expected = np.asarray(estimator.predict_proba(rows), dtype=np.float64)
    got = np.array(model.predict_proba_many(rows.tolist()), dtype=np.float64)
    finite = np.isfinite(got).all(axis=1)
    diff = np.abs(np.where(np.isfinite(got), got, np.inf) - expected).max(axis=1)
    worst = int(np.argmax(diff))
    mismatches = int((expected.argmax(axis=1) != got.argmax(axis=1)).sum())
    return ParityReport(
        rows_checked=len(rows),
        max_abs_diff=float(diff[worst]),
        argmax_mismatches=mismatches,
        worst_row=[float(v) for v in rows[worst]],
        non_finite_rows=int((~finite).sum()),
    )
