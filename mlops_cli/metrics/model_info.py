"""What `metrics` needs to know of the deployed model: its class names and training shares."""

from __future__ import annotations

import json
from typing import Any

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.errors import IrisError

IRIS_CLASSES = ["setosa", "versicolor", "virginica"]


def model_manifest(store: ArtifactStore, model_id: str | None) -> dict[str, Any] | None:
    """The deployed model's manifest, or None when it is not in this artifacts folder."""
    if not model_id:
        return None
    try:
        return json.loads((store.model_dir(model_id) / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError, IrisError):
        return None


def manifest_classes(manifest: dict[str, Any] | None) -> list[str] | None:
    names = (manifest or {}).get("class_names")
    return [str(n) for n in names] if isinstance(names, list) and names else None
