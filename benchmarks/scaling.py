"""Figure 6 — scaling with work: warm handler latency for batches of 1, 10, 100, 1000 rows.

The per-request cost should grow about linearly with the rows (no quadratic step in parsing,
validation or encoding) while the per-row cost falls, as the fixed per-request work is shared.
Each row's median is µs per row; the per-request median is kept as an extra.
"""

from __future__ import annotations

from benchmarks.common import Figure, Row, Unavailable
from benchmarks.warm_latency import probe
from benchmarks.workspace import Workspace

BATCHES = [1, 10, 100, 1000]


def run(ws: Workspace) -> Figure:
    fig = Figure("scaling", "Scaling: warm handler latency per row vs batch size (`instances`)")
    python = ws.target_python()
    groups, min_group = (3, 0.002) if ws.smoke else (30, 0.02)
    for flavor in ("portable", "sklearn"):
        try:
            stats = probe(python, ws.unpacked(flavor), "handler", BATCHES, groups, min_group)
        except Unavailable as exc:
            status = str(exc) if str(exc).startswith("skipped") else f"unavailable: {exc}"
            fig.rows += [Row.missing(f"{flavor}, batch {b}", status, "µs/row") for b in BATCHES]
            continue
        one = stats[1].median
        for b in BATCHES:
            s = stats[b]
            row = Row(f"{flavor}, batch {b}", "µs/row", s.median / b, s.p10 / b, s.p90 / b, s.n,
                      extra={"per_request_us": s.median, "rows": b})
            row.compare("batch 1", one)
            if b > 1:
                row.check("per-row < batch 1's", row.median < one)
            fig.rows.append(row)
        if stats[100].median > 0:
            fig.notes.append(
                f"{flavor}: per-request time ×{stats[1000].median / stats[100].median:.1f} "
                "from 100 to 1000 rows (10 = linear)"
            )
    return fig
