"""Load a stored model and check it against its manifest before anyone trusts it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_cli.artifacts import ArtifactError, ArtifactStore, read_json, sha256_file


@dataclass(frozen=True)
class StoredModel:
    model_id: str
    folder: Path
    manifest: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.folder / "model.joblib"

    def load_estimator(self) -> Any:
        import joblib

        try:
            return joblib.load(self.model_path)
        except Exception as exc:  # unpickling can raise almost anything on a damaged file
            raise ArtifactError(
                f"cannot load {self.model_path}: {type(exc).__name__}: {exc}; retrain with "
                "`iris-mlops train`"
            ) from None

    def evaluation(self) -> dict[str, Any] | None:
        path = self.folder / "evaluation.json"
        return read_json(path, "evaluation report") if path.exists() else None


REQUIRED_KEYS = ("model_id", "sha256", "kind", "class_names", "feature_names", "versions")


def open_model(store: ArtifactStore, model_id: str | None = None) -> StoredModel:
    """Resolve an id (default latest), read its manifest and verify the model file's sha256."""
    resolved = store.resolve_model_id(model_id)
    folder = store.model_dir(resolved)
    manifest = read_json(folder / "manifest.json", f"manifest of model {resolved}")
    if not isinstance(manifest, dict) or any(k not in manifest for k in REQUIRED_KEYS):
        raise ArtifactError(
            f"{folder / 'manifest.json'} is damaged: it lacks required keys "
            f"({', '.join(REQUIRED_KEYS)}); retrain with `iris-mlops train`"
        )
    model_path = folder / "model.joblib"
    if not model_path.is_file():
        raise ArtifactError(f"{model_path} is missing; retrain with `iris-mlops train`")
    actual = sha256_file(model_path)
    if actual != manifest["sha256"]:
        raise ArtifactError(
            f"{model_path} does not match its manifest: sha256 {actual[:16]}… but "
            f"manifest.json says {str(manifest['sha256'])[:16]}…; the file was changed or "
            "corrupted — retrain with `iris-mlops train`"
        )
    return StoredModel(resolved, folder, manifest)
