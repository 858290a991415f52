"""`--since 10m`-style durations, shared by the logs of every target."""

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
