"""`iris-mlops metrics --env local`: the same figures CloudWatch would extract, from the local log.

The local server's log holds the handler's EMF records verbatim (one JSON object per line, as
Lambda ships them to CloudWatch Logs); every other line (access log, START/END/REPORT, prints)
is skipped. Each record carries its own `_aws.Timestamp`, so the window needs no clock from the
surrounding lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig
from mlops_cli.durations import parse_since
from mlops_cli.errors import IrisError
from mlops_cli.metrics.model_info import IRIS_CLASSES, manifest_classes, model_manifest
from mlops_cli.metrics.summary import header, summarize_records, training_shares, window
from mlops_cli.runtime.emf import BASE_METRICS, NAMESPACE
from mlops_cli.targets.local.logs import log_path

_BASE = {name for name, _ in BASE_METRICS}


def emf_records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("{") or '"_aws"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("_aws"), dict):
                yield record


def class_names(manifest: dict[str, Any] | None, records: list[dict[str, Any]]) -> list[str]:
    """The model's classes; else the ones the records count; else Iris's."""
    names = manifest_classes(manifest)
    if names:
        return names
    seen: list[str] = []
    for record in records:
        for directive in record["_aws"].get("CloudWatchMetrics") or []:
            if directive.get("Namespace") != NAMESPACE:
                continue
            for metric in directive.get("Metrics") or []:
                name = str(metric.get("Name", "")).removeprefix("class_")
                if metric.get("Name") not in _BASE and name not in seen:
                    seen.append(name)
    return seen or list(IRIS_CLASSES)


def metrics(
    cfg: EnvConfig, store: ArtifactStore, since: str, *, now: float | None = None
) -> dict[str, Any]:
    seconds = parse_since(since)
    win = window(time.time() if now is None else now, seconds)
    path = log_path(cfg, store)
    if not path.exists():
        raise IrisError(f"no log for env {cfg.env!r} at {path}: deploy it first")
    records = list(emf_records(path))
    model_id = (store.read_record(cfg.env) or {}).get("model_id")
    manifest = model_manifest(store, model_id)
    result = summarize_records(records, win, class_names(manifest, records))
    return {
        **header(cfg.env, "local", since, win),
        "model_id": model_id,
        "source": str(path),
        **result,
        "training_class_shares": training_shares(manifest),
    }

