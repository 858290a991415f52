"""Turn an untrusted request body into rows of floats, or a `RequestError` that says what and where.

Nothing here raises anything but `RequestError`: a bad request is the caller's mistake and
gets a 4xx, never a 500. Error messages name the offending location (`instances[3][1]`) and
the kind of problem, never the submitted value (responses and logs stay free of feature data).

Bounds, and why:
- `MAX_ABS_VALUE = 1e6`: Iris features are centimetres. Far beyond that, models misbehave in
  ways the caller cannot see (scikit-learn's trees reject values above float32's maximum,
  logistic regression returns NaN near 1e308), so large magnitudes are refused up front.
- The body limit is 1 MiB, or more when `max_batch` rows need it (256 bytes per row).
"""

from __future__ import annotations

import json

MAX_ABS_VALUE = 1e6
MIN_BODY_LIMIT = 1024 * 1024
BYTES_PER_ROW = 256

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    type(None): "null",
    int: "a number",
    float: "a number",
}


class RequestError(Exception):
    """A client error: HTTP `status`, a stable `code` and a human `message`."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def body_limit(max_batch: int) -> int:
    return max(MIN_BODY_LIMIT, max_batch * BYTES_PER_ROW)


def _describe(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _b64decode(text: str | bytes) -> bytes:
    import binascii  # only base64 bodies pay for it

    try:
        try:
            return binascii.a2b_base64(text, strict_mode=True)
        except TypeError:  # Python < 3.11 has no strict_mode
            import base64

            return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(
            400, "invalid_base64", "request body is flagged isBase64Encoded but is not base64"
        ) from None


def decode_body(body: object, is_base64: bool, limit: int) -> str:
    """The body of an HTTP event as text: size-checked, base64- and UTF-8-decoded."""
    if body is None or body == "" or body == b"":
        raise RequestError(400, "empty_body", 'request body is empty; send {"features": [...]}')
    if isinstance(body, bytes):
        raw: bytes | None = body
    elif isinstance(body, str):
        raw = None
    else:
        raise RequestError(400, "invalid_body", "request body must be a string")
    if is_base64:
        if raw is None and len(body) > limit * 4 // 3 + 4:  # type: ignore[arg-type]
            raise RequestError(413, "body_too_large", f"request body exceeds {limit} bytes")
        raw = _b64decode(body)
    if raw is not None:
        if len(raw) > limit:
            raise RequestError(413, "body_too_large", f"request body exceeds {limit} bytes")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(
                400, "invalid_utf8", f"request body is not valid UTF-8 (byte {exc.start})"
            ) from None
    if len(body) > limit:  # type: ignore[arg-type]
        raise RequestError(413, "body_too_large", f"request body exceeds {limit} bytes")
    return body  # type: ignore[return-value]


def parse_json(text: str) -> object:
    """`json.loads`, with every failure (syntax, depth, giant integers) as a 400."""
    if not text.strip():
        raise RequestError(400, "empty_body", 'request body is empty; send {"features": [...]}')
    try:
        return json.loads(text)
    except RecursionError:
        raise RequestError(400, "invalid_json", "request body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    except ValueError:  # Python's limit on the digits of an integer
        raise RequestError(
            400, "invalid_json", "request body has an integer with too many digits"
        ) from None


def _where(index: int | None) -> str:
    return "features" if index is None else f"instances[{index}]"


def _row(values: object, index: int | None, n_features: int) -> list:
    """One row → a list of numbers, checked; floats and ints are passed on as they are.

    `index` is the row's position in `instances` (None for `features`); the location string is
    only built for an error, keeping the accepted path cheap.
    """
    if type(values) is list and len(values) == n_features:
        for v in values:
            t = type(v)
            if (t is float or t is int) and -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:
                continue
            break
        else:
            return values
    where = _where(index)
    if type(values) is not list:
        raise RequestError(
            400,
            "invalid_type",
            f"{where} must be an array of {n_features} numbers, got {_describe(values)}",
        )
    if index is None and values and type(values[0]) is list:
        raise RequestError(
            400,
            "invalid_type",
            f'features must be a flat array of {n_features} numbers; use "instances" for a batch',
        )
    if len(values) != n_features:
        raise RequestError(
            400, "wrong_length", f"{where} must have {n_features} numbers, got {len(values)}"
        )
    for j, v in enumerate(values):
        t = type(v)
        if t is float or t is int:
            if -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:
                continue
            if t is float and v != v:
                problem = "is not a finite number (NaN)"
            elif t is float and v in (float("inf"), float("-inf")):
                problem = "is not a finite number (infinity)"
            else:
                problem = f"is out of range (the magnitude must be at most {MAX_ABS_VALUE:g})"
            raise RequestError(400, "invalid_number", f"{where}[{j}] {problem}")
        hint = '; use "instances" for a batch' if t is list and index is None else ""
        raise RequestError(
            400, "invalid_type", f"{where}[{j}] must be a number, got {_describe(v)}{hint}"
        )
    return values


def parse_predict(payload: object, n_features: int, max_batch: int) -> tuple[list, bool]:
    """A decoded predict body → (rows, single) where `single` means `features` was used."""
    if type(payload) is not dict:
        raise RequestError(
            400, "invalid_body", f"request body must be a JSON object, got {_describe(payload)}"
        )
    has_features = "features" in payload
    has_instances = "instances" in payload
    extra = [k for k in payload if k != "features" and k != "instances"]
    if extra:
        names = ", ".join(repr(str(k)[:40]) for k in sorted(extra, key=str)[:5])
        raise RequestError(
            400,
            "unknown_field",
            f'unexpected field(s) {names}; send only "features" or "instances"',
        )
    if has_features and has_instances:
        raise RequestError(
            400, "conflicting_fields", 'send either "features" or "instances", not both'
        )
    if has_features:
        return [_row(payload["features"], None, n_features)], True
    if not has_instances:
        raise RequestError(
            400,
            "missing_field",
            f'request body needs "features" ({n_features} numbers) or "instances" (rows)',
        )
    rows = payload["instances"]
    if type(rows) is not list:
        raise RequestError(
            400, "invalid_type", f"instances must be an array of rows, got {_describe(rows)}"
        )
    if not rows:
        raise RequestError(400, "empty_batch", "instances is empty; send at least one row")
    if len(rows) > max_batch:
        raise RequestError(
            413, "batch_too_large", f"instances has {len(rows)} rows; the limit is {max_batch}"
        )
    return [_row(row, i, n_features) for i, row in enumerate(rows)], False
