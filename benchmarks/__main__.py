"""`python -m benchmarks [--smoke] [--only a,b] [--out DIR]`: run, print, write JSON + markdown."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import FIGURE_KEYS, HEADERS, SCHEMA, Figure, Row, cells, machine_info
from benchmarks.workspace import Workspace

RESULTS = Path(__file__).resolve().parent / "results"
# Cheapest first; the sklearn zip and the naive package are built by whichever figure asks first.
ORDER = ("package_size", "warm_latency", "scaling", "cold_start", "deploy_calls",
         "local_endpoint", "cli_latency")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny counts, no sklearn/naive builds, no downloads (seconds)")
    parser.add_argument("--only", default="",
                        help=f"comma-separated figures to run (of {', '.join(FIGURE_KEYS)})")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="directory for latest.json/latest.md (smoke.json/smoke.md)")
    args = parser.parse_args(argv)
    chosen = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in FIGURE_KEYS]
    if unknown:
        parser.error(
            f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURE_KEYS)}"
        )
    args.figures = [k for k in ORDER if not chosen or k in chosen]
    return args


def run_figure(key: str, ws: Workspace) -> Figure:
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.{key}")
        fig: Figure = module.run(ws)
    except Exception as exc:  # a figure must never take the others down
        fig = Figure(key, key.replace("_", " "), status=f"unavailable: {type(exc).__name__}: {exc}")
    fig.seconds = time.perf_counter() - start
    return fig


def table(fig: Figure) -> Table:
    t = Table(title=f"{fig.title}  [dim]({fig.seconds:.1f} s)[/dim]", title_justify="left")
    for h in HEADERS:
        t.add_column(h, justify="right" if h in ("median", "n", "ratio") else "left")
    for row in fig.rows:
        line = cells(row)
        verdict = line[-1]
        style = {"PASS": "green", "MISS": "red"}.get(verdict, "yellow" if row.status != "ok"
                                                      else "")
        line[-1] = f"[{style}]{verdict}[/{style}]" if style else verdict
        t.add_row(*line)
    if fig.status != "ok":
        t.caption = fig.status
    return t


def markdown(report: dict[str, Any], figures: list[Figure]) -> str:
    m = report["machine"]
    out = [
        "# iris-mlops benchmarks",
        "",
        f"Run {m['date']} ({report['mode']} mode, {report['duration_s']:.0f} s) on "
        f"{m['cpu_count']} CPUs ({m.get('cpu_model') or 'unknown CPU'}), shared with other "
        f"work (load average at start {m.get('load_average_at_start')}); harness Python "
        f"{m['harness_python']}, target interpreter {m['target_python']} "
        f"({m['target_python_version']}). Regenerate with `make bench`; how each figure is "
        "measured: [benchmarks/README.md](../README.md).",
        "",
    ]
    for fig in figures:
        out += [f"## {fig.title}", ""]
        if fig.status != "ok":
            out += [f"_{fig.status}_", ""]
        out.append("| " + " | ".join(HEADERS) + " |")
        out.append("|" + "|".join("---" for _ in HEADERS) + "|")
        for row in fig.rows:
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |")
        out.append("")
        out += [f"- {note}" for note in fig.notes]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def summary(figures: list[Figure]) -> dict[str, int]:
    rows: list[Row] = [r for f in figures for r in f.rows]
    return {
        "pass": sum(r.verdict == "PASS" for r in rows),
        "miss": sum(r.verdict == "MISS" for r in rows),
        "not_measured": sum(r.status != "ok" for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    started = time.perf_counter()
    ws = Workspace(smoke=args.smoke)
    figures: list[Figure] = []
    try:
        try:
            python = ws.target_python()
        except Exception:
            python = sys.executable
        machine = machine_info(python)
        for key in args.figures:
            console.print(f"[dim]running {key}…[/dim]")
            fig = run_figure(key, ws)
            figures.append(fig)
            console.print(table(fig))
            for note in fig.notes:
                console.print(f"  [dim]• {note}[/dim]")
    finally:
        ws.close()
    figures.sort(key=lambda f: FIGURE_KEYS.index(f.key) if f.key in FIGURE_KEYS else 99)
    report = {
        "schema": SCHEMA,
        "mode": "smoke" if args.smoke else "full",
        "duration_s": round(time.perf_counter() - started, 1),
        "machine": machine,
        "notes": ws.notes,
        "summary": summary(figures),
        "figures": {f.key: f.to_dict() for f in figures},
    }
    name = "smoke" if args.smoke else "latest"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / f"{name}.md").write_text(markdown(report, figures), encoding="utf-8")
    s = report["summary"]
    console.print(
        f"{s['pass']} PASS, {s['miss']} MISS, {s['not_measured']} not measured — "
        f"wrote {args.out / (name + '.json')} and {name}.md ({report['duration_s']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
