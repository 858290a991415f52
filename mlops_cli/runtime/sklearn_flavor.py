"""The `sklearn` flavor: the pickled estimator, evaluated by scikit-learn itself.

joblib (and through it numpy and scikit-learn) is imported here, lazily, so the portable flavor
never pays for it. The package pins the exact library versions that trained the model, because
unpickling across versions is not supported by scikit-learn.
"""

from __future__ import annotations


class SklearnModel:
    flavor = "sklearn"
    kind = "sklearn"

    def __init__(self, path: str) -> None:
        import joblib

        estimator = joblib.load(path)
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(f"{type(estimator).__name__} has no predict_proba")
        self._estimator = estimator
        self.classes = list(estimator.classes_.tolist())
        self.n_classes = len(self.classes)
        self.n_features = int(estimator.n_features_in_)

    def predict_proba(self, row: list) -> list:
        return self._estimator.predict_proba([row])[0].tolist()

    def predict_proba_many(self, rows: list) -> list:
        return self._estimator.predict_proba(rows).tolist()
