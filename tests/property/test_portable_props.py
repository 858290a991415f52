"""The shipped evaluator agrees with scikit-learn on arbitrary in-bounds rows, for every kind."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_cli.packaging.portable_export import dumps_portable, export_portable
from mlops_cli.runtime.portable import PortableModel
from mlops_cli.runtime.validation import MAX_ABS_VALUE
from tests.runtime_models import KINDS, fitted

MODELS = {
    (kind, scale): (est, PortableModel(json.loads(dumps_portable(export_portable(est)))))
    for kind in KINDS
    for scale in (False, True)
    for est in [fitted(kind, scale)]
}
values = (
    st.floats(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE, allow_nan=False)
    | st.floats(min_value=0.0, max_value=8.0)
    | st.sampled_from([0.1, 0.8, 1.75, 2.45, 4.95, 5.35, 1e3, -1e3, 1e5, -1e5])
)
rows = st.lists(values, min_size=4, max_size=4)


@given(st.sampled_from(sorted(MODELS)), st.lists(rows, min_size=1, max_size=20))
@settings(max_examples=150, deadline=None)
def test_portable_probabilities_match_scikit_learn(key, batch) -> None:
    estimator, model = MODELS[key]
    expected = estimator.predict_proba(np.array(batch, dtype=np.float64))
    got = np.array(model.predict_proba_many(batch))
    assert np.isfinite(got).all()
    assert np.abs(got - expected).max() <= 1e-9
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert np.abs(got.sum(axis=1) - 1.0).max() <= 1e-9
