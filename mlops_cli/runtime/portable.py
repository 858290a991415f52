"""Pure-Python evaluation of a portable model document (`model/model.json`).

The document is written by `mlops_cli.packaging.portable_export` and holds the fitted
parameters of an optional StandardScaler followed by one of: logistic regression, a decision
tree, a random forest (or extra trees) or gradient boosting. Everything that can be decided
once is decided here, at load, so that a warm request only runs the arithmetic:

- trees become nested tuples `(feature, threshold, left, right)`, leaves `(-1, payload, None,
  None)`, so a traversal step is one tuple unpack and one comparison;
- gradient-boosting leaves are pre-multiplied by the learning rate (the same product the
  library computes, so the result is bit-identical);
- the evaluation is composed into one closure, `predict_proba(row) -> list[float]`.

Parity with scikit-learn is a contract (checked by `package`): trees compare
`float32(x) <= threshold`, because scikit-learn casts inputs to float32 before walking trees,
and sums are accumulated in the library's order so that forests match bit for bit.
"""

from __future__ import annotations

import math
import struct

FORMAT = "iris-portable"
FORMAT_VERSION = 1


class PortableFormatError(ValueError):
    """The document is not a model this runtime can evaluate."""


class InputRangeError(ValueError):
    """A (scaled) input does not fit the float32 a tree compares; the caller's fault."""


def _build_tree(tree: dict, leaf_payload) -> tuple:
    """Column arrays (scikit-learn's `tree_` layout) → nested tuples, root first."""
    feature = tree["feature"]
    threshold = tree["threshold"]
    left = tree["left"]
    right = tree["right"]
    value = tree["value"]

    def node(i: int) -> tuple:
        if left[i] == -1:
            return (-1, leaf_payload(value[i]), None, None)
        if right[i] <= i or left[i] <= i:  # scikit-learn numbers children after parents
            raise PortableFormatError(f"tree node {i} has a child numbered before it")
        return (int(feature[i]), float(threshold[i]), node(left[i]), node(right[i]))

    return node(0)


def _f32_caster(n_features: int):
    """Round a row to float32 and back, as scikit-learn does before walking trees."""
    packer = struct.Struct(f"{n_features}f")
    pack = packer.pack
    unpack = packer.unpack

    def cast(row):
        try:
            return unpack(pack(*row))
        except OverflowError:
            raise InputRangeError("a feature is too large for the model's float32 input") from None

    return cast


def _softmax(raw: list) -> list:
    """scikit-learn's order of operations: subtract the max, exp, divide by the plain sum."""
    top = max(raw)
    exp = math.exp
    e = [exp(v - top) for v in raw]
    total = 0.0
    for v in e:
        total += v
    return [v / total for v in e]


def _expit(d: float) -> float:
    if d >= 0.0:
        return 1.0 / (1.0 + math.exp(-d))
    z = math.exp(d)
    return z / (1.0 + z)


def _linear(model: dict, n_features: int, n_classes: int):
    coef = [[float(c) for c in row] for row in model["coef"]]
    intercept = [float(b) for b in model["intercept"]]
    if any(len(row) != n_features for row in coef) or len(intercept) != len(coef):
        raise PortableFormatError("logistic regression coef/intercept shapes do not match")
    pairs = list(zip(coef, intercept, strict=True))
    if len(coef) == 1 and n_classes == 2:
        ((w, b),) = pairs

        def binary(x):
            d = 0.0
            for xi, wi in zip(x, w, strict=False):
                d += xi * wi
            p = _expit(d + b)
            return [1.0 - p, p]

        return binary
    if len(coef) != n_classes:
        raise PortableFormatError("logistic regression has a coef row per class")

    def multinomial(x):
        raw = []
        for w, b in pairs:
            d = 0.0
            for xi, wi in zip(x, w, strict=False):
                d += xi * wi
            raw.append(d + b)
        return _softmax(raw)

    return multinomial


def _leaf_probs(n_classes: int):
    def payload(value) -> tuple:
        if value is None or len(value) != n_classes:
            raise PortableFormatError(f"a leaf needs {n_classes} class values")
        return tuple(float(v) for v in value)

    return payload


def _decision_tree(model: dict, n_features: int, n_classes: int):
    root = _build_tree(model["tree"], _leaf_probs(n_classes))
    cast = _f32_caster(n_features)

    def proba(row):
        x = cast(row)
        f, t, left, right = root
        while f >= 0:
            f, t, left, right = left if x[f] <= t else right
        return list(t)

    return proba


def _forest(model: dict, n_features: int, n_classes: int):
    roots = [_build_tree(tree, _leaf_probs(n_classes)) for tree in model["trees"]]
    if not roots:
        raise PortableFormatError("a forest needs at least one tree")
    n_trees = float(len(roots))
    cast = _f32_caster(n_features)

    if n_classes == 3:  # Iris: unrolled accumulation, the hot path

        def proba3(row):
            x = cast(row)
            a = b = c = 0.0
            for f, t, left, right in roots:
                while f >= 0:
                    f, t, left, right = left if x[f] <= t else right
                a += t[0]
                b += t[1]
                c += t[2]
            return [a / n_trees, b / n_trees, c / n_trees]

        return proba3

    classes = range(n_classes)

    def proba(row):
        x = cast(row)
        acc = [0.0] * n_classes
        for f, t, left, right in roots:
            while f >= 0:
                f, t, left, right = left if x[f] <= t else right
            for k in classes:
                acc[k] += t[k]
        return [v / n_trees for v in acc]

    return proba


def _gradient_boosting(model: dict, n_features: int, n_classes: int):
    rate = float(model["learning_rate"])
    init = [float(v) for v in model["init"]]
    stages = model["stages"]
    if n_classes < 3 or len(init) != n_classes or any(len(s) != n_classes for s in stages):
        raise PortableFormatError("gradient boosting needs one tree per class per stage")

    def scaled(value) -> float:
        if value is None or len(value) != 1:
            raise PortableFormatError("a boosting leaf holds one value")
        return rate * float(value[0])

    per_class = [[_build_tree(stage[k], scaled) for stage in stages] for k in range(n_classes)]
    plan = list(zip(init, per_class, strict=True))
    cast = _f32_caster(n_features)

    def proba(row):
        x = cast(row)
        raw = []
        for total, roots in plan:
            for f, t, left, right in roots:
                while f >= 0:
                    f, t, left, right = left if x[f] <= t else right
                total += t
            raw.append(total)
        return _softmax(raw)

    return proba


_KINDS = {
    "logistic_regression": _linear,
    "decision_tree": _decision_tree,
    "random_forest": _forest,
    "gradient_boosting": _gradient_boosting,
}


def _scaler(step: dict, n_features: int):
    mean = step.get("mean") or [0.0] * n_features
    scale = step.get("scale") or [1.0] * n_features
    if len(mean) != n_features or len(scale) != n_features:
        raise PortableFormatError("scaler mean/scale length differs from n_features")
    pairs = [(float(m), float(s)) for m, s in zip(mean, scale, strict=True)]
    return pairs


class PortableModel:
    """A loaded portable document: `predict_proba(row)` for one row of `n_features` numbers."""

    flavor = "portable"
    __slots__ = ("classes", "kind", "n_classes", "n_features", "predict_proba")

    def __init__(self, doc: dict) -> None:
        try:
            self._load(doc)
        except PortableFormatError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, RecursionError, AttributeError) as exc:
            raise PortableFormatError(f"malformed document ({type(exc).__name__}: {exc})") from None

    def _load(self, doc: dict) -> None:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise PortableFormatError(f"not an {FORMAT!r} document")
        if doc.get("format_version") != FORMAT_VERSION:
            raise PortableFormatError(
                f"format_version {doc.get('format_version')!r} is not supported by this runtime "
                f"(it reads version {FORMAT_VERSION}); rebuild the package"
            )
        n_features = int(doc["n_features"])
        classes = list(doc["classes"])
        n_classes = len(classes)
        model = doc["model"]
        kind = model["kind"]
        if kind not in _KINDS:
            raise PortableFormatError(f"unknown model kind {kind!r}")
        core = _KINDS[kind](model, n_features, n_classes)
        steps = [
            _scaler(s, n_features)
            for s in doc.get("preprocess", [])
            if s["kind"] == "standard_scaler"
        ]
        if len(steps) != len(doc.get("preprocess", [])):
            raise PortableFormatError("only standard_scaler preprocessing is supported")
        if len(steps) > 1:
            raise PortableFormatError("at most one scaler is supported")
        if steps:
            pairs = steps[0]

            def predict_proba(row):
                return core([(x - m) / s for x, (m, s) in zip(row, pairs, strict=False)])

        else:
            predict_proba = core
        self.kind = kind
        self.classes = classes
        self.n_classes = n_classes
        self.n_features = n_features
        self.predict_proba = predict_proba

    def predict_proba_many(self, rows: list) -> list:
        predict = self.predict_proba
        return [predict(row) for row in rows]
