"""The benchmark suite keeps running: `python -m benchmarks --smoke` in a subprocess produces the
JSON with every figure and well-formed rows. Never asserts on a timing — only on structure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIGURES = {"cold_start", "warm_latency", "package_size", "deploy_calls", "local_endpoint",
           "scaling", "cli_latency"}
ROW_KEYS = {"label", "unit", "median", "p10", "p90", "n", "baseline_label", "baseline", "ratio",
            "target", "verdict", "status", "extra"}


def test_smoke_run_writes_every_figure_with_well_formed_rows(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    report = json.loads((tmp_path / "smoke.json").read_text(encoding="utf-8"))
    assert report["mode"] == "smoke"
    assert set(report["figures"]) == FIGURES
    assert report["machine"]["cpu_count"] >= 1
    for key, figure in report["figures"].items():
        assert figure["rows"], f"{key} has no rows"
        for row in figure["rows"]:
            assert set(row) == ROW_KEYS, key
            if row["status"] == "ok":
                assert row["median"] is not None, (key, row["label"])
                assert row["verdict"] in (None, "PASS", "MISS"), (key, row["label"])
            else:
                assert row["status"] == "skipped in smoke" or row["status"].startswith(
                    "unavailable: "), (key, row)
    # the floors and the portable flavor need nothing downloaded, so smoke always measures them
    cold = {r["label"]: r for r in report["figures"]["cold_start"]["rows"]}
    assert cold["bare interpreter (floor)"]["status"] == "ok"
    assert report["figures"]["package_size"]["rows"][0]["status"] == "ok"
    # the CLI latency figure measures whole commands next to `import boto3` even in smoke
    cli = {r["label"]: r for r in report["figures"]["cli_latency"]["rows"]}
    assert cli["--version"]["status"] == "ok"
    assert cli["--version"]["baseline_label"] == 'python -c "import boto3"'
    assert cli["--version"]["extra"]["imports"] == []
    # wall time moves with the machine's load: each command's own CPU time is reported beside it
    assert cli["--version"]["extra"]["cpu_ms"] > 0
    assert cli['python -c "import boto3"']["extra"]["cpu_ms"] > 0

    table = (tmp_path / "smoke.md").read_text(encoding="utf-8")
    assert "| measure | median |" in table
    assert "Cold start" in table


def test_unknown_figure_is_a_usage_error_naming_the_choices() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nope"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "cold_start" in proc.stderr
