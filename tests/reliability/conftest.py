"""Print and save the reliability figures at the end of the run (see `figures.py`)."""

from __future__ import annotations

from typing import Any

from tests.reliability import figures


def pytest_terminal_summary(terminalreporter: Any) -> None:
    data = figures.snapshot()
    if not data:
        return
    terminalreporter.section("reliability figures")
    for item, values in data.items():
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        terminalreporter.write_line(f"{item}: {shown}")
    path = figures.save()
    if path is not None:
        terminalreporter.write_line(f"(saved to {path})")

