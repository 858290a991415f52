"""What every figure shares: statistics, the result rows, verdicts, machine facts, rendering.

A figure is a list of rows; each row is one measured thing next to the baseline it is compared
with (measured in the same run, on the same machine), the ratio, the target and a verdict. A row
that could not be measured carries a `status` ("skipped in smoke", "unavailable: <reason>")
instead of numbers, so a missing piece never makes the whole suite fail.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = 1
FIGURE_KEYS = (
    "cold_start",
    "warm_latency",
    "package_size",
    "deploy_calls",
    "local_endpoint",
    "scaling",
    "cli_latency",
)


class Unavailable(Exception):
    """A piece this figure measures is missing or broken; the message says which and why."""


@dataclass
class Stats:
    median: float
    p10: float
    p90: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        data = sorted(float(v) for v in values)
        if not data:
            raise ValueError("no samples")
        if len(data) == 1:
            return cls(data[0], data[0], data[0], 1)
        deciles = statistics.quantiles(data, n=10, method="inclusive")
        return cls(statistics.median(data), deciles[0], deciles[-1], len(data))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): what a p99 of latencies conventionally means."""
    data = sorted(values)
    if not data:
        raise ValueError("no samples")
    rank = max(1, -(-len(data) * q // 100))  # ceil(n*q/100), at least 1
    return float(data[int(rank) - 1])


@dataclass
class Row:
    label: str
    unit: str = ""
    median: float | None = None
    p10: float | None = None
    p90: float | None = None
    n: int | None = None
    baseline_label: str | None = None
    baseline: float | None = None
    ratio: float | None = None
    target: str | None = None
    verdict: str | None = None  # PASS | MISS | None (no target)
    status: str = "ok"  # ok | "skipped in smoke" | "unavailable: ..."
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def measured(cls, label: str, unit: str, stats: Stats, **kw: Any) -> Row:
        return cls(label, unit, stats.median, stats.p10, stats.p90, stats.n, **kw)

    @classmethod
    def missing(cls, label: str, status: str, unit: str = "") -> Row:
        return cls(label, unit, status=status)

    def compare(self, baseline_label: str, baseline: float | None) -> Row:
        """Attach a baseline and the ratio median / baseline."""
        self.baseline_label = baseline_label
        self.baseline = baseline
        if baseline and self.median is not None:
            self.ratio = self.median / baseline
        return self

    def check(self, target: str, ok: bool | None) -> Row:
        self.target = target
        self.verdict = None if ok is None else ("PASS" if ok else "MISS")
        return self


@dataclass
class Figure:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: str = "ok"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "rows": [asdict(r) for r in self.rows],
            "notes": list(self.notes),
        }


def interpreter_version(path: str) -> str | None:
    try:
        out = subprocess.run(
            [path, "-I", "-S", "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True, text=True, timeout=20, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info(target_python: str | None) -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "harness_python": sys.version.split()[0],
        "target_python": target_python,
        "target_python_version": interpreter_version(target_python) if target_python else None,
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "B":
        return _bytes(value)
    if unit in ("calls", "req"):
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _bytes(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:,.1f} MB"
    if value >= 1e3:
        return f"{value / 1e3:,.1f} KB"
    return f"{value:,.0f} B"


def spread(row: Row) -> str:
    if row.p10 is None or row.p90 is None or row.n is None or row.n < 2:
        return "—"
    return f"{fmt(row.p10, row.unit)} – {fmt(row.p90, row.unit)}"


def cells(row: Row) -> list[str]:
    """One table line: measure, median, spread, n, baseline, ratio, target, result."""
    if row.status != "ok":
        return [row.label, "—", "—", "—", row.baseline_label or "—", "—", row.target or "—",
                row.status]
    baseline = "—"
    if row.baseline_label:
        baseline = f"{row.baseline_label}: {fmt(row.baseline, row.unit)}"
    ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "—"
    return [
        row.label, fmt(row.median, row.unit), spread(row),
        str(row.n) if row.n is not None else "—", baseline, ratio, row.target or "—",
        row.verdict or "—",
    ]


HEADERS = ["measure", "median", "spread (p10–p90)", "n", "baseline", "ratio", "target", "result"]
