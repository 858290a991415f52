"""Durations: `--since 10m` (logs, metrics) and `--bake 5m` (canary deploys)."""

from __future__ import annotations

import re

from mlops_cli.errors import UsageError

_SINCE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")


def parse_since(since: str) -> float:
    """'10m' → 600 seconds; a bare number is minutes."""
    m = _SINCE.match(since or "")
    if not m:
        raise UsageError(f"--since {since!r} is not a duration: use e.g. 30s, 10m, 2h or 1d")
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 60}[m.group(2)]
    return float(int(m.group(1)) * factor)


_DURATION = re.compile(r"^\s*(\d+)\s*([smh])\s*$")


def parse_duration(text: str, what: str = "duration") -> float:
    """'30s' / '5m' / '1h' → seconds; the unit is required (a bake of '5' is ambiguous)."""
    m = _DURATION.match(str(text or ""))
    if not m or int(m.group(1)) <= 0:
        raise UsageError(f"{what} {text!r} is not a duration: use e.g. 30s, 5m or 1h")
    return float(int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)])
