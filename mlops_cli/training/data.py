"""The Iris data set, from scikit-learn's bundled copy (no download), and its fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class Dataset:
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    class_names: list[str]

    @property
    def sha256(self) -> str:
        """Fingerprint of the exact numbers trained on, so a manifest proves which data it saw."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.X, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(self.y, dtype="<i8").tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class Split:
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def load_dataset() -> Dataset:
    bunch = load_iris()
    return Dataset(
        X=np.asarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target, dtype=np.int64),
        feature_names=[str(n) for n in bunch.feature_names],
        class_names=[str(n) for n in bunch.target_names],
    )


def stratified_split(data: Dataset, test_size: float, seed: int) -> Split:
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=test_size, random_state=seed, stratify=data.y
    )
    return Split(X_train, X_test, y_train, y_test)
