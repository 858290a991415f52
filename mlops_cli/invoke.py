"""Send rows to a deployed endpoint over HTTP and time the round trip."""

from __future__ import annotations

import csv
import json
import math
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import IrisError, UsageError

if TYPE_CHECKING:
    from mlops_cli.signing import Signer

FEATURES = 4


def parse_features(values: list[str]) -> list[float]:
    if len(values) != FEATURES:
        raise UsageError(
            f"invoke needs exactly {FEATURES} numbers (sepal length, sepal width, petal length, "
            f"petal width), got {len(values)}; e.g. `iris-mlops invoke 5.1 3.5 1.4 0.2`"
        )
    return [_number(v, f"argument {i + 1}") for i, v in enumerate(values)]


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where} is {text!r}, which is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{where} is {text!r}: features must be finite numbers")
    return value


def read_rows(path: Path) -> list[list[float]]:
    """Rows of 4 numbers from a CSV file; a header line of names is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    rows: list[list[float]] = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells:
            continue
        if lineno == 1 and not _looks_numeric(cells[0]):
            continue
        if len(cells) != FEATURES:
            raise UsageError(f"{path}:{lineno}: expected {FEATURES} values, found {len(cells)}")
        rows.append([_number(c, f"{path}:{lineno}") for c in cells])
    if not rows:
        raise UsageError(f"{path} holds no rows")
    return rows


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def post_json(
    url: str, payload: dict[str, Any], timeout: float = 30.0, sign: Signer | None = None
) -> tuple[int, Any, float]:
    """POST; return (status, decoded body, round-trip ms). HTTP errors are results, not raised.
    With `sign` (api.auth: iam) the request carries a SigV4 signature for execute-api."""
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    if sign is not None:
        headers = sign("POST", url, body, headers)
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise IrisError(
            f"cannot reach {url}: {reason}. Is it deployed? Check with `iris-mlops status`"
        ) from None
    elapsed = (time.perf_counter() - started) * 1000
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = {"error": {"code": "not_json", "message": raw[:200].decode("utf-8", "replace")}}
    return status, decoded, elapsed


class EndpointRefused(UsageError):
    """The endpoint refused the input (4xx): bad usage, exit 2 — as when the CLI refuses it."""


def require_prediction(status: int, body: Any) -> None:
    """Raise unless the answer carries a prediction. A 4xx is the caller's input (exit 2); a
    5xx, a non-object or an answer without a prediction is a failed operation (exit 1). The
    error keeps the endpoint's status and answer for `--json`."""
    details = {"status": status, "response": body}
    if not isinstance(body, dict) or status >= 400 or "error" in body:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        message = err.get("message", str(body)) if isinstance(err, dict) else str(err)
        if isinstance(err, dict) and err.get("code"):
            details["code"] = err["code"]
        kind = EndpointRefused if 400 <= status < 500 else IrisError
        raise kind(f"the endpoint answered {status}: {message}", **details)
    if "prediction" not in body and "predictions" not in body:
        raise IrisError(
            f"the endpoint answered without a prediction: {str(body)[:200]} (is it running "
            "this project's runtime? moto's Lambda, for one, runs no code and echoes the event)",
            **details,
        )
