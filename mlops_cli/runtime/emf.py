"""The per-request log line as a CloudWatch Embedded Metric Format (EMF) record.

Contract:
- Every request writes exactly one JSON object; its `_aws` member tells CloudWatch Logs to
  extract metrics from it (`_aws.Timestamp` in epoch milliseconds, `_aws.CloudWatchMetrics`
  = directives of `Namespace`, `Dimensions` (lists of member names) and `Metrics` (`Name`,
  `Unit`)). Lambda ships the line to the log group; CloudWatch turns it into metrics with no API
  call, no dependency and no cost to the request beyond one `json` encode.
- Namespace `iris-mlops`. Directive 1, dimension sets `[env, model_id]` and `[env]`:
  `requests`, `rows`, `latency_ms` (Milliseconds), `client_errors`, `server_errors` and one
  count per class name holding the rows predicted as that class in this request. Directive 2,
  dimension set `[env, version]` (the executed Lambda version): `requests` and `server_errors`,
  so a canary can be judged on its own errors.
- Every metric a directive names is present on the record (zeros included): the specification
  requires the referenced members at the root. Values are counts and times only: never a feature
  value, never a body.
- The directives are built and JSON-encoded once per loaded model (the cold start pays for them
  once); a request only fills numbers in and appends the pre-encoded `_aws` member.
"""

from __future__ import annotations

import json
import os

NAMESPACE = "iris-mlops"
ENV_VARIABLE = "IRIS_MLOPS_ENV"
COUNT = "Count"
MILLISECONDS = "Milliseconds"
# Members of the record that are not metrics; a class named like one gets a `class_` prefix.
_RESERVED = frozenset(
    {"level", "msg", "request_id", "source", "route", "status", "latency_ms", "model_id",
     "rows", "error", "traceback", "env", "version", "requests", "client_errors",
     "server_errors", "_aws"}
)
BASE_METRICS = (
    ("requests", COUNT),
    ("rows", COUNT),
    ("latency_ms", MILLISECONDS),
    ("client_errors", COUNT),
    ("server_errors", COUNT),
)


def class_metric_name(class_name: str) -> str:
    name = str(class_name)
    return f"class_{name}" if name in _RESERVED or not name.strip() else name


def env_name() -> str:
    """The env the deploy set, else the function's name (still unique per env and region)."""
    return (
        os.environ.get(ENV_VARIABLE)
        or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        or "unknown"
    )


def directives(class_metrics: list[str]) -> list[dict]:
    metrics = [{"Name": name, "Unit": unit} for name, unit in BASE_METRICS]
    metrics += [{"Name": name, "Unit": COUNT} for name in class_metrics]
    return [
        {"Namespace": NAMESPACE, "Dimensions": [["env", "model_id"], ["env"]], "Metrics": metrics},
        {
            "Namespace": NAMESPACE,
            "Dimensions": [["env", "version"]],
            "Metrics": [
                {"Name": "requests", "Unit": COUNT},
                {"Name": "server_errors", "Unit": COUNT},
            ],
        },
    ]


class MetricRecord:
    """Fills the EMF members into one request's log record."""

    def __init__(self, class_names: list[str]) -> None:
        self.class_metrics = {name: class_metric_name(name) for name in class_names}
        self._zeros = dict.fromkeys(self.class_metrics.values(), 0)
        self._directives = json.dumps(
            directives(list(self.class_metrics.values())), separators=(",", ":")
        )
        self._dimensions = {
            "env": env_name(),
            "version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        }

    def fill(self, record: dict, status: int, per_class: dict[str, int] | None) -> None:
        """The metric and dimension members (everything but `_aws`)."""
        record.update(self._dimensions)
        record["requests"] = 1
        record["client_errors"] = 1 if 400 <= status < 500 else 0
        record["server_errors"] = 1 if status >= 500 else 0
        record.update(self._zeros)
        if per_class:
            names = self.class_metrics
            for name, count in per_class.items():
                record[names[name]] = count

    def line(self, encoded_record: str, now_s: float) -> str:
        """The record's JSON object (`{...}`) with the `_aws` member appended."""
        return (
            f'{encoded_record[:-1]},"_aws":{{"Timestamp":{int(now_s * 1000)},'
            f'"CloudWatchMetrics":{self._directives}}}}}'
        )
