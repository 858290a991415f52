"""The request/response logic behind `lambda_handler`, for one loaded model.

Kept apart from `handler.py` (which loads the packaged model at import) so that tests, the local
emulator and benchmarks can build a `Service` around any model directory.

Contract of `Service.handle(event, context)`:
- HTTP events (API Gateway REST v1, HTTP API v2, function URLs) get a proxy response
  `{"statusCode", "headers": {"content-type": "application/json", ...}, "body": "<json>",
  "isBase64Encoded": false}`; direct invocations get the payload object itself.
- Success payloads: one row → `prediction`, `class_name`, `probabilities`, `latency_ms`,
  `model_id`; a batch → `predictions` (list of the first three), `latency_ms`, `model_id`;
  health → `status`, `model_id`, `flavor`, `versions` = `{"training": {...}, "runtime":
  {...}}`: the library versions that trained the model (from its manifest) apart from the ones
  this runtime runs (its Python, plus the libraries the sklearn flavor loaded), so a skew shows.
- Any client mistake → 4xx with `{"error": {"code", "message"}}`; 500 only for a bug here, with
  the traceback in the log and never in the response. No response contains NaN/Infinity.
- One JSON log line per request on stdout, without body or feature values; it is a CloudWatch
  Embedded Metric Format record (`emf.py`), so Lambda publishes the request's counts, latency and
  per-class rows as metrics with no API call.
"""

from __future__ import annotations

import json
import sys
import time

from .emf import MetricRecord
from .events import DIRECT, ROUTES, classify, request_id
from .validation import RequestError, body_limit, decode_body, parse_json, parse_predict

_JSON_HEADERS = {"content-type": "application/json"}
_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
_log_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
_RUNTIME = "{}.{}.{}".format(*sys.version_info[:3])
MALFORMED_HTTP = "malformed_http"


# Libraries the sklearn flavor loads, as the training manifest names them.
_LIBRARIES = (("scikit-learn", "sklearn"), ("numpy", "numpy"), ("scipy", "scipy"),
              ("joblib", "joblib"))


def _runtime_versions() -> dict:
    """What this process runs; a library is listed only when the model already loaded it."""
    versions = {"python": _RUNTIME}
    for name, module in _LIBRARIES:
        version = getattr(sys.modules.get(module), "__version__", None)
        if isinstance(version, str):
            versions[name] = version
    return versions


class Service:
    def __init__(self, model) -> None:
        self.model = model
        self.model_id = model.model_id
        self._predict = model.predictor.predict_proba
        self._predict_many = model.predictor.predict_proba_many
        self._labels = list(zip(model.classes, model.class_names, strict=True))
        self._metrics = MetricRecord(list(model.class_names))
        self._n_features = model.n_features
        self._max_batch = model.max_batch
        self._body_limit = body_limit(model.max_batch)
        self._health = {
            "status": "ok",
            "model_id": model.model_id,
            "flavor": model.flavor,
            "versions": {"training": model.versions, "runtime": _runtime_versions()},
        }

    # -- routing -----------------------------------------------------------------------------

    def _direct(self, event: object) -> tuple[str, dict, dict | None]:
        if type(event) is dict and "action" in event:
            action = event["action"]
            if action == "health":
                return "direct health", self._health, None
            if action != "predict":
                raise RequestError(400, "unknown_action", 'action must be "predict" or "health"')
            event = {k: v for k, v in event.items() if k != "action"}
        elif type(event) is not dict:
            kind = "an array" if type(event) is list else "not an object"
            raise RequestError(
                400,
                "invalid_body",
                f'event must be a JSON object like {{"features": [...]}}, got {kind}',
            )
        return "direct predict", *self._predict_payload(event)

    def _http(
        self, method: str, path: str, body: object, is_b64: bool
    ) -> tuple[dict, dict | None]:
        allowed = ROUTES.get(path)
        if allowed is None:
            raise RequestError(404, "not_found", "no such route; use POST /predict or GET /health")
        if method != allowed:
            raise RequestError(
                405,
                "method_not_allowed",
                f"{path} accepts {allowed} only",
                headers={"allow": allowed},
            )
        if path == "/health":
            return self._health, None
        text = decode_body(body, is_b64, self._body_limit)
        return self._predict_payload(parse_json(text))

    # -- prediction --------------------------------------------------------------------------

    def _predict_payload(self, payload: object) -> tuple[dict, dict]:
        """The response payload and the rows predicted per class name (for the metrics)."""
        rows, single = parse_predict(payload, self._n_features, self._max_batch)
        labels = self._labels
        if single:
            probs = self._predict(rows[0])
            label, name = labels[probs.index(max(probs))]
            return {
                "prediction": label,
                "class_name": name,
                "probabilities": probs,
                "model_id": self.model_id,
            }, {name: 1}
        out = []
        per_class: dict = {}
        for probs in self._predict_many(rows):
            label, name = labels[probs.index(max(probs))]
            out.append({"prediction": label, "class_name": name, "probabilities": probs})
            per_class[name] = per_class.get(name, 0) + 1
        return {"predictions": out, "model_id": self.model_id}, per_class

    # -- the handler -------------------------------------------------------------------------

    def handle(self, event: object, context: object = None) -> dict:
        start = time.perf_counter()
        source = DIRECT
        route = "direct"
        per_class = None
        error = None
        headers = _JSON_HEADERS
        try:
            try:
                source, method, path, body, is_b64 = classify(event)
            except RequestError:
                # It came with HTTP fields (too broken to route): answer in proxy shape, since a
                # REST API turns a reply without statusCode into a 502.
                source = MALFORMED_HTTP
                raise
            if source == DIRECT:
                route, payload, per_class = self._direct(body)
            else:
                route = f"{method} {path[:100]}"
                payload, per_class = self._http(method, path, body, is_b64)
            status = 200
            if payload is not self._health:
                payload["latency_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
            text = _encode(payload)
        except RequestError as exc:
            status = exc.status
            error = exc.code
            payload = {"error": {"code": exc.code, "message": exc.message}}
            if exc.headers:
                headers = {**_JSON_HEADERS, **exc.headers}
            text = _encode(payload)
        except Exception:  # our own bug: say so in the log, not in the response
            status = 500
            error = "internal_error"
            rid = request_id(event, context)
            payload = {
                "error": {
                    "code": "internal_error",
                    "message": f"internal error (request id {rid}); see the function log",
                }
            }
            text = _encode(payload)
            import traceback

            trace = traceback.format_exc()
            self._log(event, context, source, route, status, start, per_class, error, trace)
            return self._respond(source, status, headers, payload, text)
        self._log(event, context, source, route, status, start, per_class, error, None)
        return self._respond(source, status, headers, payload, text)

    @staticmethod
    def _respond(source: str, status: int, headers: dict, payload: dict, text: str) -> dict:
        if source == DIRECT:
            return payload
        return {"statusCode": status, "headers": headers, "body": text, "isBase64Encoded": False}

    def _log(self, event, context, source, route, status, start, per_class, error, trace) -> None:
        if status != 200:
            per_class = None  # nothing was served: no rows to count
        rows = sum(per_class.values()) if per_class else 0
        record = {
            "level": "ERROR" if status >= 500 else ("WARN" if status >= 400 else "INFO"),
            "msg": "request",
            "request_id": request_id(event, context),
            "source": source,
            "route": route,
            "status": status,
            "latency_ms": round((time.perf_counter() - start) * 1000.0, 3),
            "model_id": self.model_id,
            "rows": rows,
            "error": error,
        }
        if trace is not None:
            record["msg"] = "internal error (a bug in iris_runtime)"
            record["traceback"] = trace
        self._metrics.fill(record, status, per_class)
        try:
            out = sys.stdout
            out.write(self._metrics.line(_log_encode(record), time.time()) + "\n")
            out.flush()
        except (OSError, ValueError):  # a closed or broken stdout must not fail the request
            pass
