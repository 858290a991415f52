"""The figures the reliability suite measures, gathered for `docs/reliability.md`.

Each test records what it tried and what held under one item name; the conftest prints them at
the end of the run and writes them to `.cache/reliability/figures.json` (the last run's numbers).
Counts are taken from what actually ran (e.g. how many examples hypothesis generated), never
from the configured targets.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIGURES_FILE = REPO / ".cache" / "reliability" / "figures.json"

_lock = threading.Lock()
_figures: dict[str, dict[str, Any]] = defaultdict(dict)


def record(item: str, **numbers: Any) -> None:
    """Merge `numbers` into the item; integers add up across calls, other values replace."""
    with _lock:
        entry = _figures[item]
        for key, value in numbers.items():
            if isinstance(value, int) and not isinstance(value, bool):
                entry[key] = entry.get(key, 0) + value
            else:
                entry[key] = value


def merge(other: dict[str, dict[str, Any]]) -> None:
    """Add another process's figures (a pytest-xdist worker's) as if recorded here."""
    for item, numbers in other.items():
        record(item, **numbers)


def snapshot() -> dict[str, dict[str, Any]]:
    with _lock:
        return {item: dict(values) for item, values in sorted(_figures.items())}


def save() -> Path | None:
    data = snapshot()
    if not data:
        return None
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads(FIGURES_FILE.read_text(encoding="utf-8"))
    previous.update(data)  # a partial run (-k) keeps the other items' last figures
    FIGURES_FILE.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    return FIGURES_FILE
