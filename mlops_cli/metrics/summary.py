"""The figures `iris-mlops metrics` reports, computed from plain numbers.

Contract:
- A window is `[start, end)` split into `BUCKETS` equal periods of whole minutes (CloudWatch's
  standard resolution), so the local log and CloudWatch give the same series for the same data.
- The result always holds the issue's `--json` fields: `requests`, `rows`, `classes` (class name
  → rows), `latency_ms` (`p50`, `p99`), `client_errors`; plus `server_errors`, the class mix
  beside the training set's shares, and `series` (one list per metric, one value per bucket) for
  the sparklines. A window with no traffic gives zeros and `null` percentiles, never an error.
- Percentiles are nearest-rank: a value some request really took, never an interpolation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

BUCKETS = 30
MINUTE = 60


@dataclass(frozen=True)
class Window:
    start: float  # epoch seconds, inclusive
    end: float  # epoch seconds, exclusive
    period: int  # seconds per bucket, a multiple of 60

    @property
    def buckets(self) -> int:
        return max(1, math.ceil((self.end - self.start) / self.period))

    def bucket(self, when: float) -> int | None:
        if not self.start <= when < self.end:
            return None
        return min(int((when - self.start) // self.period), self.buckets - 1)


def window(now: float, seconds: float) -> Window:
    """At least the last `seconds`, up to the end of the current minute, in whole-minute
    buckets (one more bucket than `BUCKETS` when `now` is not on a bucket boundary)."""
    period = max(MINUTE, math.ceil(seconds / BUCKETS / MINUTE) * MINUTE)
    end = (math.floor(now / MINUTE) + 1) * MINUTE
    count = max(1, math.ceil((end - (now - seconds)) / period))
    return Window(start=end - count * period, end=end, period=period)


def percentile(values: Iterable[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def class_mix(classes: dict[str, float]) -> dict[str, float | None]:
    total = sum(classes.values())
    return {name: (round(n / total, 4) if total else None) for name, n in classes.items()}


def training_shares(manifest: dict[str, Any] | None) -> dict[str, float] | None:
    """Class shares of the training split, from the model's manifest (None for older models)."""
    counts = ((manifest or {}).get("split") or {}).get("train_class_counts")
    if not isinstance(counts, dict) or not counts:
        return None
    total = sum(counts.values())
    return {name: round(n / total, 4) for name, n in counts.items()} if total else None


def summarize_records(
    records: Iterable[dict[str, Any]], win: Window, class_names: list[str]
) -> dict[str, Any]:
    """Totals, percentiles and per-bucket series from the handler's EMF records."""
    n = win.buckets
    series: dict[str, list[float]] = {
        key: [0] * n for key in ("requests", "rows", "client_errors", "server_errors")
    }
    per_class = {name: [0] * n for name in class_names}
    latencies: list[float] = []
    bucket_latencies: list[list[float]] = [[] for _ in range(n)]
    for record in records:
        stamp = (record.get("_aws") or {}).get("Timestamp")
        if not isinstance(stamp, (int, float)):
            continue
        index = win.bucket(stamp / 1000.0)
        if index is None:
            continue
        for key, values in series.items():
            values[index] += _number(record.get(key))
        for name in list(per_class):
            per_class[name][index] += _number(record.get(_metric_name(record, name)))
        latency = record.get("latency_ms")
        if isinstance(latency, (int, float)):
            latencies.append(float(latency))
            bucket_latencies[index].append(float(latency))
    series["latency_p99_ms"] = [percentile(b, 99) or 0 for b in bucket_latencies]
    for name, values in per_class.items():
        series[f"class:{name}"] = values
    return assemble(
        {key: sum(series[key]) for key in ("requests", "rows", "client_errors", "server_errors")},
        {name: sum(values) for name, values in per_class.items()},
        {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
        series,
    )


def _metric_name(record: dict[str, Any], class_name: str) -> str:
    """The record's member for a class (a class named like a field is `class_<name>`)."""
    for directive in (record.get("_aws") or {}).get("CloudWatchMetrics") or []:
        for metric in directive.get("Metrics") or []:
            if metric.get("Name") == f"class_{class_name}":
                return f"class_{class_name}"
    return class_name


def _number(value: Any) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def assemble(
    totals: dict[str, float],
    classes: dict[str, float],
    latency: dict[str, float | None],
    series: dict[str, list[float]],
) -> dict[str, Any]:
    def whole(x: float) -> float:
        return int(x) if float(x).is_integer() else x

    return {
        "requests": whole(totals.get("requests", 0)),
        "rows": whole(totals.get("rows", 0)),
        "classes": {name: whole(v) for name, v in classes.items()},
        "class_mix": class_mix(classes),
        "latency_ms": {k: (None if v is None else round(v, 3)) for k, v in latency.items()},
        "client_errors": whole(totals.get("client_errors", 0)),
        "server_errors": whole(totals.get("server_errors", 0)),
        "series": series,
    }


def header(env: str, target: str, since: str, win: Window) -> dict[str, Any]:
    """The fields that say which window a result covers."""
    return {
        "env": env,
        "target": target,
        "since": since,
        "start": _iso(win.start),
        "end": _iso(win.end),
        "period_s": win.period,
    }


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
