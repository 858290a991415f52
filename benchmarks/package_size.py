"""Figure 3 — package size: zipped and unzipped bytes per flavor, against Lambda's limits and
against the naive package (`pip install --target` scikit-learn + joblib, zipped at level 6)."""

from __future__ import annotations

from benchmarks.common import Figure, Row, Unavailable
from benchmarks.workspace import Workspace, tree_bytes

DIRECT_UPLOAD = 50 * 1024 * 1024
UNZIPPED = 262_144_000


def _size_row(label: str, value: int) -> Row:
    return Row(label, "B", float(value), n=1)


def run(ws: Workspace) -> Figure:
    fig = Figure("package_size", "Package size: zipped / unzipped bytes vs Lambda limits")
    fig.notes.append(
        f"Lambda limits: {DIRECT_UPLOAD:,} B zipped for direct upload (larger goes through S3), "
        f"{UNZIPPED:,} B unzipped"
    )
    naive_zip = naive_unzipped = None
    naive_status = ""
    try:
        naive_unzipped = tree_bytes(ws.naive())[1]
        naive_zip = ws.naive_zip().stat().st_size
    except Unavailable as exc:
        naive_status = str(exc)

    def status_of(exc: Exception) -> str:
        return str(exc) if str(exc).startswith("skipped") else f"unavailable: {exc}"

    rows: list[Row] = []
    for flavor in ("portable", "sklearn"):
        try:
            info = ws.package(flavor).info
        except Unavailable as exc:
            rows += [Row.missing(f"{flavor} zipped", status_of(exc), "B"),
                     Row.missing(f"{flavor} unzipped", status_of(exc), "B")]
            continue
        zipped = _size_row(f"{flavor} zipped", info.size_bytes).compare("naive", naive_zip)
        unzipped = _size_row(f"{flavor} unzipped", info.unzipped_bytes).compare(
            "naive", naive_unzipped)
        if flavor == "portable":
            zipped.check("≤ 32 KB", info.size_bytes <= 32 * 1024)
            unzipped.check("≤ Lambda limit", info.unzipped_bytes <= UNZIPPED)
        else:
            zipped.target = "direct upload ≤ 48 MiB, else S3"
            zipped.extra["needs_s3_upload"] = info.needs_s3_upload
            unzipped.check("≤ 200 MB", info.unzipped_bytes <= 200_000_000)
        rows += [zipped, unzipped]
    if naive_zip is not None and naive_unzipped is not None:
        rows.append(_size_row("naive zipped", naive_zip).check(
            "≤ 50 MiB direct upload", naive_zip <= DIRECT_UPLOAD))
        rows.append(_size_row("naive unzipped", naive_unzipped).check(
            "≤ Lambda limit", naive_unzipped <= UNZIPPED))
    else:
        status = naive_status if naive_status.startswith("skipped") else (
            f"unavailable: {naive_status}")
        rows += [Row.missing("naive zipped", status, "B"),
                 Row.missing("naive unzipped", status, "B")]
    fig.rows = rows
    return fig
