"""The `metrics` table: one row per metric with its total and a sparkline across the window."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from mlops_cli.console import out

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One block per bucket, scaled to the window's largest value; an empty bucket is a dot, so
    "no traffic" never looks like "a little traffic"."""
    top = max(values, default=0)
    if top <= 0:
        return "·" * len(values)
    last = len(BLOCKS) - 1
    return "".join(
        "·" if v <= 0 else BLOCKS[min(last, max(0, round(v / top * last)))] for v in values
    )


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}{unit}"
    return f"{int(value):,}{unit}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def render(result: dict[str, Any]) -> None:
    series = result["series"]
    minutes = result["period_s"] // 60
    table = Table(
        title=f"Metrics of env {escape(result['env'])} — last {escape(result['since'])} "
        f"({result['start']} → {result['end']}, {minutes} min per bar)",
        show_header=True,
    )
    for name in ("metric", "value", "mix", "training", f"per {minutes} min"):
        table.add_column(name, justify="right" if name in {"value", "mix", "training"} else "left")

    def row(label: str, value: str, key: str | None, mix: str = "", trained: str = "") -> None:
        table.add_row(label, value, mix, trained, sparkline(series[key]) if key else "")

    row("requests", _fmt(result["requests"]), "requests")
    row("rows", _fmt(result["rows"]), "rows")
    shares = result.get("training_class_shares") or {}
    for name, rows in result["classes"].items():
        row(f"  {escape(name)}", _fmt(rows), f"class:{name}",
            _share(result["class_mix"].get(name)), _share(shares.get(name)))
    latency = result["latency_ms"]
    row("latency p50", _fmt(latency["p50"], " ms"), None)
    row("latency p99", _fmt(latency["p99"], " ms"), "latency_p99_ms")
    row("client errors (4xx)", _fmt(result["client_errors"]), "client_errors")
    row("server errors (5xx)", _fmt(result["server_errors"]), "server_errors")
    lam = result.get("lambda")
    if lam:
        row("lambda invocations", _fmt(lam["invocations"]), "lambda:invocations")
        row("lambda errors", _fmt(lam["errors"]), "lambda:errors")
        row("lambda throttles", _fmt(lam["throttles"]), "lambda:throttles")
        row("lambda duration p99", _fmt(lam["duration_p99_ms"], " ms"), None)
    api = result.get("api")
    if api:
        row("http api requests", _fmt(api["requests"]), "api:count")
        row("http api 4xx", _fmt(api["4xx"]), "api:4xx")
        row("http api 5xx", _fmt(api["5xx"]), "api:5xx")
        row("http api latency p99", _fmt(api["latency_p99_ms"], " ms"), None)
    out.print(table)
    if not result["requests"]:
        out.print(f"[dim]no requests in the last {escape(result['since'])}[/dim]")
