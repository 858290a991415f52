"""`iris-mlops logs --env local`: the local server's log file, filtered by age, optionally followed.

The file mixes the server's lines (ISO timestamp first: access lines and Lambda's START/END/REPORT)
with the worker's own output (the handler's lines, awslambdaric's `[ERROR]` lines), as CloudWatch
mixes platform and function lines. An event's message is the line without our timestamp; a line
without one inherits the previous line's time, so `--since` keeps a request's lines together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig
from mlops_cli.durations import parse_since
from mlops_cli.errors import IrisError

POLL_SECONDS = 0.5


def _stamp(line: str) -> float | None:
    head = line.split(" ", 1)[0]
    if len(head) < 20 or not head[:4].isdigit():
        return None
    try:
        return datetime.fromisoformat(head.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def log_path(cfg: EnvConfig, store: ArtifactStore) -> Path:
    record = store.read_record(cfg.env) or {}
    return Path(record.get("log") or store.deployments_dir / f"{cfg.env}.log")


def logs(
    cfg: EnvConfig,
    store: ArtifactStore,
    since: str,
    follow: bool,
    sink: Callable[[dict[str, Any]], None],
    *,
    max_polls: int | None = None,
) -> None:
    cutoff = time.time() - parse_since(since)
    path = log_path(cfg, store)
    if not path.exists():
        raise IrisError(f"no log for env {cfg.env!r} at {path}: deploy it first")
    current: float | None = None
    polls = 0
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        try:
            while True:
                line = fh.readline()
                if line:
                    stamp = _stamp(line)
                    current = stamp if stamp is not None else current
                    if current is None or current >= cutoff:
                        # the time goes into `timestamp`, as CloudWatch keeps it apart
                        text = line.split(" ", 1)[1] if stamp is not None else line
                        sink({"timestamp": int((current or time.time()) * 1000),
                              "stream": path.name, "message": text.rstrip("\n")})
                    continue
                polls += 1
                if not follow or (max_polls is not None and polls >= max_polls):
                    return
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            return
