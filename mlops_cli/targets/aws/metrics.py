"""`iris-mlops metrics --env <aws env>`: the handler's EMF metrics, Lambda's and the HTTP API's,
read back with CloudWatch GetMetricData.

Contract:
- One paginated GetMetricData batch per command (read-only; at most a few dozen queries, well
  under its 500-query limit): sums per bucket for the series and totals, and percentiles over
  the whole window (percentiles of buckets cannot be combined into one).
- Our metrics are read on the `[env]` dimension set the handler publishes (runtime/emf.py), so
  every model served in the window counts; Lambda's on `FunctionName`; the HTTP API's on `ApiId`.
- A statistic CloudWatch has no data for is `null` (percentiles) or 0 (sums), never an error:
  a quiet endpoint is a valid answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig
from mlops_cli.durations import parse_since
from mlops_cli.metrics.model_info import IRIS_CLASSES, manifest_classes, model_manifest
from mlops_cli.metrics.summary import Window, assemble, header, training_shares, window
from mlops_cli.runtime.emf import NAMESPACE, class_metric_name
from mlops_cli.targets.aws.session import AwsContext, aws_errors, connect

SUMS = ("requests", "rows", "client_errors", "server_errors")


@dataclass(frozen=True)
class Query:
    id: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    stat: str
    period: int

    def to_api(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
                },
                "Period": self.period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


def build_queries(
    env: str, function_name: str, api_id: str | None, classes: list[str], win: Window
) -> list[Query]:
    whole = int(win.end - win.start)
    ours = {"env": env}
    queries = [Query(f"s_{m}", NAMESPACE, m, ours, "Sum", win.period) for m in SUMS]
    queries += [
        Query(f"c_{i}", NAMESPACE, class_metric_name(name), ours, "Sum", win.period)
        for i, name in enumerate(classes)
    ]
    queries += [
        Query("lat_series", NAMESPACE, "latency_ms", ours, "p99", win.period),
        Query("lat_p50", NAMESPACE, "latency_ms", ours, "p50", whole),
        Query("lat_p99", NAMESPACE, "latency_ms", ours, "p99", whole),
    ]
    fn = {"FunctionName": function_name}
    queries += [
        Query(f"l_{m.lower()}", "AWS/Lambda", m, fn, "Sum", win.period)
        for m in ("Invocations", "Errors", "Throttles")
    ]
    queries.append(Query("l_duration", "AWS/Lambda", "Duration", fn, "p99", whole))
    if api_id:
        api = {"ApiId": api_id}
        queries += [
            Query(f"a_{i}", "AWS/ApiGateway", m, api, "Sum", win.period)
            for i, m in (("count", "Count"), ("4xx", "4xx"), ("5xx", "5xx"))
        ]
        queries.append(Query("a_latency", "AWS/ApiGateway", "Latency", api, "p99", whole))
    return queries


def fetch(cw: Any, queries: list[Query], win: Window) -> dict[str, list[tuple[float, float]]]:
    """{query id: [(epoch seconds, value), ...]} over every page of GetMetricData."""
    request: dict[str, Any] = {
        "MetricDataQueries": [q.to_api() for q in queries],
        "StartTime": win.start,
        "EndTime": win.end,
        "ScanBy": "TimestampAscending",
    }
    found: dict[str, list[tuple[float, float]]] = {q.id: [] for q in queries}
    while True:
        page = cw.get_metric_data(**request)
        for result in page.get("MetricDataResults", []):
            points = found.setdefault(result["Id"], [])
            for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []),
                                    strict=False):
                if value is not None:
                    points.append((stamp.timestamp(), float(value)))
        token = page.get("NextToken")
        if not token:
            return found
        request["NextToken"] = token


def series_of(points: list[tuple[float, float]], win: Window) -> list[float]:
    values: list[float] = [0] * win.buckets
    for stamp, value in points:
        index = win.bucket(stamp)
        if index is not None:
            values[index] += value
    return values


def _whole(points: list[tuple[float, float]], worst: bool) -> float | None:
    """A whole-window statistic: one point normally; when the window straddles two periods,
    the worst (p99) or the mean (p50) of them."""
    if not points:
        return None
    values = [v for _, v in points]
    return max(values) if worst else sum(values) / len(values)


def summarize(
    found: dict[str, list[tuple[float, float]]], classes: list[str], win: Window, with_api: bool
) -> dict[str, Any]:
    series = {m: series_of(found[f"s_{m}"], win) for m in SUMS}
    series["latency_p99_ms"] = series_of(found["lat_series"], win)
    per_class = {name: series_of(found[f"c_{i}"], win) for i, name in enumerate(classes)}
    for name, values in per_class.items():
        series[f"class:{name}"] = values
    result = assemble(
        {m: sum(series[m]) for m in SUMS},
        {name: sum(values) for name, values in per_class.items()},
        {"p50": _whole(found["lat_p50"], False), "p99": _whole(found["lat_p99"], True)},
        series,
    )
    lam = {m: series_of(found[f"l_{m}"], win) for m in ("invocations", "errors", "throttles")}
    for m, values in lam.items():
        series[f"lambda:{m}"] = values
    result["lambda"] = {
        **{m: int(sum(values)) for m, values in lam.items()},
        "duration_p99_ms": _round(_whole(found["l_duration"], True)),
    }
    if with_api:
        api = {m: series_of(found[f"a_{m}"], win) for m in ("count", "4xx", "5xx")}
        for m, values in api.items():
            series[f"api:{m}"] = values
        result["api"] = {
            "requests": int(sum(api["count"])),
            "4xx": int(sum(api["4xx"])),
            "5xx": int(sum(api["5xx"])),
            "latency_p99_ms": _round(_whole(found["a_latency"], True)),
        }
    else:
        result["api"] = None
    return result


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def metrics(
    cfg: EnvConfig,
    store: ArtifactStore,
    since: str,
    *,
    ctx: AwsContext | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    seconds = parse_since(since)
    ctx = ctx or connect(cfg)
    win = window(time.time() if now is None else now, seconds)
    record = store.read_record(cfg.env) or {}
    manifest = model_manifest(store, record.get("model_id"))
    classes = manifest_classes(manifest) or list(IRIS_CLASSES)
    api_id = record.get("api_id")
    queries = build_queries(cfg.env, cfg.function_name, api_id, classes, win)
    with aws_errors(f"read CloudWatch metrics of env {cfg.env}", ctx):
        found = fetch(ctx.client("cloudwatch"), queries, win)
    return {
        **header(cfg.env, "aws", since, win),
        "model_id": record.get("model_id"),
        "function_name": cfg.function_name,
        **summarize(found, classes, win, bool(api_id)),
        "training_class_shares": training_shares(manifest),
    }

