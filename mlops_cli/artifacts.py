"""Where iris-mlops keeps what it makes: models, packages, deployment records, caches.

Layout under the artifacts root (`./artifacts`, `--artifacts-dir` or `IRIS_MLOPS_ARTIFACTS`):

    models/<model_id>/model.joblib, manifest.json, evaluation.json
    models/latest                  symlink (or a file holding the id where links are unavailable)
    packages/<env>/<name>.zip
    deployments/<env>.json         a cache of outputs (URL, pid, version); never the source of truth
    deployments/last-env           the env of the most recent deploy, for bare `invoke`/`status`
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_cli.errors import IrisError


class ArtifactError(IrisError):
    """A missing or damaged artifact; the message says what to run to fix it."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write via a temp file + rename so a crash never leaves half a JSON file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{what} is damaged ({path}): {exc}") from None


def cache_dir() -> Path:
    """Per-user cache (wheels, unpacked packages), shared by every checkout on the machine."""
    explicit = os.environ.get("IRIS_MLOPS_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "iris-mlops"


class ArtifactStore:
    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        chosen = root or os.environ.get("IRIS_MLOPS_ARTIFACTS") or "artifacts"
        self.root = Path(chosen)

    # models -----------------------------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model_dir(self, model_id: str) -> Path:
        if not model_id or "/" in model_id or model_id.startswith("."):
            raise ArtifactError(f"{model_id!r} is not a model id")
        return self.models_dir / model_id

    def set_latest(self, model_id: str) -> None:
        link = self.models_dir / "latest"
        tmp = self.models_dir / ".latest.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            tmp.symlink_to(model_id, target_is_directory=True)
        except OSError:
            tmp.write_text(model_id + "\n", encoding="utf-8")
        if link.is_dir() and not link.is_symlink():
            raise ArtifactError(f"{link} is a directory; remove it so it can point at a model")
        os.replace(tmp, link)

    def latest_model_id(self) -> str | None:
        link = self.models_dir / "latest"
        if link.is_symlink():
            return os.readlink(link).rstrip("/").split("/")[-1]
        if link.is_file():
            return link.read_text(encoding="utf-8").strip() or None
        return None

    def resolve_model_id(self, model_id: str | None) -> str:
        """`None` means latest; a unique prefix of an id is accepted, as git accepts short SHAs."""
        if model_id is None:
            latest = self.latest_model_id()
            if latest is None:
                raise ArtifactError(
                    f"no trained model in {self.models_dir}: run `iris-mlops train` first"
                )
            model_id = latest
        if self.model_dir(model_id).is_dir():
            return model_id
        candidates = self.models_dir.glob(f"{model_id}*") if self.models_dir.is_dir() else []
        matches = [p.name for p in candidates if p.is_dir() and not p.is_symlink()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ArtifactError(f"model id {model_id!r} is ambiguous: {', '.join(sorted(matches))}")
        raise ArtifactError(
            f"model {model_id!r} not found in {self.models_dir}: "
            "run `iris-mlops train` or list models with `ls artifacts/models`"
        )

    # packages ---------------------------------------------------------------------------------
    def packages_dir(self, env: str) -> Path:
        return self.root / "packages" / env

    # deployments ------------------------------------------------------------------------------
    @property
    def deployments_dir(self) -> Path:
        return self.root / "deployments"

    def record_path(self, env: str) -> Path:
        return self.deployments_dir / f"{env}.json"

    def read_record(self, env: str) -> dict[str, Any] | None:
        path = self.record_path(env)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # a cache: a damaged one is as good as none, and is rewritten on deploy
        return data if isinstance(data, dict) else None

    def write_record(self, env: str, record: dict[str, Any]) -> None:
        write_json_atomic(self.record_path(env), record)
        self.set_last_env(env)

    def delete_record(self, env: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.record_path(env).unlink()

    def set_last_env(self, env: str) -> None:
        self.deployments_dir.mkdir(parents=True, exist_ok=True)
        (self.deployments_dir / "last-env").write_text(env + "\n", encoding="utf-8")

    def last_env(self) -> str | None:
        path = self.deployments_dir / "last-env"
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return value or None

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock so two deploys of one env never interleave their calls."""
        import fcntl

        self.deployments_dir.mkdir(parents=True, exist_ok=True)
        path = self.deployments_dir / f".{name}.lock"
        with path.open("w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ArtifactError(
                    f"another iris-mlops command is working on env {name!r} (lock {path})"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
