"""Human-readable Rich views of the dicts that core functions return (`--json` prints the dicts)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mlops_cli.console import out
from mlops_cli.packaging.result import DIRECT_UPLOAD_LIMIT, S3_UPLOAD_THRESHOLD, UNZIPPED_LIMIT


def size_of(n: int | float) -> str:
    """Every size the CLI prints, in one style: `59.46 MB (59,457,645 B)`, `37.67 KB (37,671 B)`
    — decimal units as Lambda states its limits, and the exact bytes to compare with them."""
    n = int(n)
    if n >= 1_000_000:
        return f"{n / 1e6:,.2f} MB ({n:,} B)"
    if n >= 1_000:
        return f"{n / 1e3:,.2f} KB ({n:,} B)"
    return f"{n:,} B"


def readable(value: Any) -> str:
    """A value as a person reads it: no Python `None`, `True` or dict syntax."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={readable(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(v) for v in value)
    return str(value)


def _share(used: int, limit: int) -> str:
    """Percent of a limit, yellow from 80 % and red over it, so a near miss stands out."""
    pct = 100 * used / limit
    colour = "red" if pct > 100 else "yellow" if pct >= 80 else "green"
    return f"[{colour}]{pct:.2f}%[/{colour}]"


def train_result(result: dict[str, Any]) -> None:
    table = Table.grid(padding=(0, 2))
    for key in ("model_id", "kind", "seed", "sha256", "path"):
        table.add_row(f"[bold]{key}[/bold]", escape(str(result[key])))
    split = f"{result['train_rows']} train / {result['test_rows']} test"
    table.add_row("[bold]split[/bold]", split)
    out.print(Panel(table, title="Trained", expand=False))


def evaluation(report: dict[str, Any]) -> None:
    names = report["class_names"]
    summary = Table(title=f"Evaluation of {report['model_id']}", show_header=True)
    summary.add_column("class")
    for col in ("precision", "recall", "f1", "support"):
        summary.add_column(col, justify="right")
    for name in names:
        row = report["per_class"][name]
        summary.add_row(
            name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}",
            str(row["support"]),
        )
    out.print(summary)

    matrix = report["confusion_matrix"]
    peak = max(max(r) for r in matrix) or 1
    heat = Table(title="Confusion matrix (rows: true, columns: predicted)")
    heat.add_column("true \\ pred")
    for name in names:
        heat.add_column(name, justify="center")
    for i, name in enumerate(names):
        cells = []
        for j, count in enumerate(matrix[i]):
            shade = int(40 + 180 * count / peak)
            colour = f"rgb(0,{shade},0)" if i == j else f"rgb({shade},0,0)"
            style = f"bold white on {colour}" if count else "dim"
            cells.append(Text(f" {count} ", style=style))
        heat.add_row(name, *cells)
    out.print(heat)

    cv = report["cv"]
    gate = report["gate"]
    verdict = "[green]PASSED[/green]" if report["passed"] else "[red]FAILED[/red]"
    out.print(
        f"accuracy [bold]{report['accuracy']:.4f}[/bold]  macro F1 [bold]"
        f"{report['f1_macro']:.4f}[/bold]  CV accuracy {cv['mean_accuracy']:.4f} ± "
        f"{cv['std_accuracy']:.4f} ({cv['folds']} folds)"
    )
    out.print(
        f"quality gate of env {gate['env']!r} (accuracy ≥ {gate['min_accuracy']}, "
        f"F1 ≥ {gate['min_f1']}): {verdict}"
    )
    for failure in report["failures"]:
        out.print(f"  [red]✗[/red] {escape(failure)}")


def package_report(report: dict[str, Any]) -> None:
    zipped, unzipped = report["size_bytes"], report["unzipped_bytes"]
    title = "Package (reused, inputs unchanged)" if report.get("reused") else "Package"
    table = Table.grid(padding=(0, 2))
    table.add_row("[bold]path[/bold]", escape(report["path"]))
    table.add_row("[bold]sha256[/bold]", report["sha256"])
    table.add_row("[bold]flavor[/bold]", f"{report['flavor']} ({report['runtime']}, "
                  f"{report['architecture']})")
    table.add_row("[bold]handler[/bold]", report["handler"])
    if report.get("parity"):
        p = report["parity"]
        table.add_row("[bold]parity[/bold]", f"max |Δp| {p['max_abs_diff']:.2e} over "
                      f"{p['rows_checked']} rows, {p['argmax_mismatches']} class mismatches")
    pyc = f"{report['pyc_compiled']} files" if report.get("pyc_python") else "none"
    table.add_row("[bold].pyc[/bold]", pyc)
    out.print(Panel(table, title=title, expand=False))

    limits = Table(title="Size against Lambda's limits")
    limits.add_column("measure")
    limits.add_column("size", justify="right")
    limits.add_column("limit", justify="right")
    limits.add_column("used", justify="right")
    limits.add_row("zipped (direct upload)", size_of(zipped), size_of(DIRECT_UPLOAD_LIMIT),
                   _share(zipped, DIRECT_UPLOAD_LIMIT))
    limits.add_row("unzipped", size_of(unzipped), size_of(UNZIPPED_LIMIT),
                   _share(unzipped, UNZIPPED_LIMIT))
    out.print(limits)
    top = list(report.get("top_level", {}).items())[:8]
    if top:
        entries = Table(title="Largest top-level entries (unzipped)")
        entries.add_column("entry")
        entries.add_column("size", justify="right")
        for name, nbytes in top:
            entries.add_row(escape(name), size_of(nbytes))
        out.print(entries)
    if zipped > S3_UPLOAD_THRESHOLD:
        out.print("[yellow]note:[/yellow] over 48 MiB zipped: deploy uploads it through S3.")
    for note in report.get("notes", []):
        out.print(f"[yellow]note:[/yellow] {escape(note)}")


def prediction(body: dict[str, Any], round_trip_ms: float, url: str) -> None:
    rows = body.get("predictions", [body])
    names = ["setosa", "versicolor", "virginica"]
    for index, row in enumerate(rows):
        probs = row.get("probabilities", [])
        label = row.get("class_name", str(row.get("prediction")))
        prefix = f"[{index}] " if len(rows) > 1 else ""
        cls = row.get("prediction")
        out.print(f"{prefix}[bold green]{escape(label)}[/bold green] (class {cls})")
        for i, p in enumerate(probs):
            name = names[i] if i < len(names) else str(i)
            bar = "█" * round(p * 30)
            out.print(f"   {name:<11} {bar:<30} {p:6.1%}")
    server = body.get("latency_ms")
    server_txt = f", handler {server:.2f} ms" if isinstance(server, (int, float)) else ""
    out.print(
        f"[dim]{escape(url)} · round trip {round_trip_ms:.1f} ms{server_txt} · model "
        f"{escape(str(body.get('model_id')))}[/dim]"
    )


def key_values(title: str, data: dict[str, Any]) -> None:
    table = Table.grid(padding=(0, 2))
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            continue
        table.add_row(f"[bold]{escape(str(key))}[/bold]", escape(readable(value)))
    out.print(Panel(table, title=title, expand=False))


def plan(calls: list[dict[str, Any]], title: str) -> None:
    if not calls:
        out.print(f"{title}: [green]nothing to do[/green]")
        return
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("action")
    table.add_column("resource")
    table.add_column("why")
    for i, call in enumerate(calls, start=1):
        resource = " ".join(str(call[k]) for k in ("resource", "name") if call.get(k))
        table.add_row(
            str(i), escape(str(call.get("action", ""))), escape(resource),
            escape(readable(call.get("reason"))),
        )
    out.print(table)


def plan_line(call: dict[str, Any]) -> str:
    """One planned or drifted call as a sentence: `action resource (reason)`."""
    resource = " ".join(str(call[k]) for k in ("resource", "name") if call.get(k))
    reason = f" ({call['reason']})" if call.get("reason") else ""
    return f"{call.get('action', '')} {resource}{reason}".strip()


def resources(rows: list[dict[str, Any]], title: str) -> None:
    if not rows:
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(escape(str(row.get(c, ""))) for c in columns))
    out.print(table)


def resource_states(rows: list[dict[str, Any]]) -> None:
    """One line per resource: what it is, found/missing/foreign, and its other facts."""
    colours = {"found": "green", "missing": "red", "foreign": "yellow", "bystander": "yellow"}
    table = Table(title="Resources")
    table.add_column("resource")
    table.add_column("state")
    table.add_column("details")
    for row in rows:
        state = str(row.get("state", ""))
        details = ", ".join(
            f"{k}={readable(v)}" for k, v in row.items() if k not in ("resource", "state")
            and v not in (None, "", [], {})
        )
        colour = colours.get(state, "white")
        table.add_row(escape(str(row.get("resource", ""))), f"[{colour}]{escape(state)}[/{colour}]",
                      escape(details))
    out.print(table)
