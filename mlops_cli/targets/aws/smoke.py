"""Verified rollout: a freshly published version must predict what the local model predicts.

`live` moves only after this check passes, so a package that loads the wrong model, or cannot
load at all, never receives traffic. The comparison is pure (testable without AWS); the invoke
is injected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.errors import IrisError

# Two rows of each class from the Iris data plus two near the versicolor/virginica boundary,
# where a wrong or mis-exported model is most likely to disagree.
SMOKE_ROWS: tuple[tuple[float, float, float, float], ...] = (
    (5.1, 3.5, 1.4, 0.2),
    (4.9, 3.0, 1.4, 0.2),
    (7.0, 3.2, 4.7, 1.4),
    (5.7, 2.8, 4.5, 1.3),
    (6.3, 3.3, 6.0, 2.5),
    (6.5, 3.0, 5.8, 2.2),
    (6.0, 2.2, 5.0, 1.5),
    (6.3, 2.8, 5.1, 1.5),
)

Invoker = Callable[[dict[str, Any]], Any]


def smoke_event(rows: Sequence[Sequence[float]] = SMOKE_ROWS) -> dict[str, Any]:
    return {"instances": [list(r) for r in rows]}


def local_predictions(
    store: ArtifactStore, model_id: str, rows: Sequence[Sequence[float]]
) -> list[Any]:
    import joblib

    path = store.model_dir(model_id) / "model.joblib"
    if not path.is_file():
        raise IrisError(
            f"cannot run the smoke test: the local model {path} is missing "
            "(train it again or deploy with the smoke test off)"
        )
    model = joblib.load(path)
    return [p.item() if hasattr(p, "item") else p for p in model.predict([list(r) for r in rows])]


def remote_predictions(response: Any, expected: int) -> list[Any]:
    """Predictions from a direct-invocation answer (or an API-style proxy answer, unwrapped)."""
    if isinstance(response, dict) and "body" in response and "statusCode" in response:
        body = response["body"]
        response = json.loads(body) if isinstance(body, str) else body
    if not isinstance(response, dict) or not isinstance(response.get("predictions"), list):
        shown = json.dumps(response)[:300] if _jsonable(response) else repr(response)[:300]
        raise IrisError(f"smoke test: the new version did not answer with predictions: {shown}")
    items = response["predictions"]
    if len(items) != expected:
        raise IrisError(
            f"smoke test: sent {expected} rows, the new version answered {len(items)} predictions"
        )
    return [i.get("prediction") if isinstance(i, dict) else i for i in items]


def differing_rows(
    rows: Sequence[Sequence[float]], local: Sequence[Any], remote: Sequence[Any]
) -> list[str]:
    out = []
    for row, want, got in zip(rows, local, remote, strict=True):
        if _same(want, got):
            continue
        out.append(f"{list(row)}: local {want!r}, deployed {got!r}")
    return out


def check(
    invoke: Invoker,
    local: Sequence[Any],
    rows: Sequence[Sequence[float]] = SMOKE_ROWS,
    version: str = "?",
) -> None:
    remote = remote_predictions(invoke(smoke_event(rows)), len(rows))
    diffs = differing_rows(rows, local, remote)
    if diffs:
        raise IrisError(
            f"smoke test failed: version {version} disagrees with the local model on "
            f"{len(diffs)} of {len(rows)} rows, so `live` was not moved: " + "; ".join(diffs)
        )


def _same(a: Any, b: Any) -> bool:
    a, b = (v.item() if hasattr(v, "item") else v for v in (a, b))  # numpy scalars
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return str(a) == str(b)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
