"""Build the Lambda zip for an env: runtime code + model (+ dependencies for the sklearn flavor).

Only what is listed here goes into the zip — the runtime's `.py` files, the model document or
pickle, its manifest and (sklearn flavor) the staged wheels — never anything picked up from the
project directory, so `.env`, credentials or `.git` cannot leak into a package.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mlops_cli
from mlops_cli.artifacts import (
    ArtifactError,
    ArtifactStore,
    read_json,
    sha256_file,
    write_json_atomic,
)
from mlops_cli.config import EnvConfig
from mlops_cli.console import Reporter
from mlops_cli.errors import IrisError, UsageError
from mlops_cli.interpreters import find_interpreter
from mlops_cli.packaging.result import UNZIPPED_LIMIT, PackageInfo
from mlops_cli.packaging.zipfile_repro import top_level_sizes, write_reproducible_zip
from mlops_cli.training.gate import require_passed_gate
from mlops_cli.training.model_io import StoredModel, open_model

RUNTIME_SOURCE = Path(__file__).resolve().parent.parent / "runtime"
RUNTIME_PACKAGE = "iris_runtime"
BUILD_FORMAT = 2  # bump when what goes into a zip changes for the same inputs


class PackageTooLarge(IrisError):
    def __init__(self, message: str, breakdown: dict[str, int]) -> None:
        super().__init__(message)
        self.breakdown = breakdown


@dataclass
class BuildReport:
    info: PackageInfo
    reused: bool
    top_level: dict[str, int] = field(default_factory=dict)
    parity: dict[str, Any] | None = None
    pyc_compiled: int = 0
    pyc_python: str | None = None
    dependencies: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.info.to_dict(),
            "reused": self.reused,
            "top_level": self.top_level,
            "parity": self.parity,
            "pyc_compiled": self.pyc_compiled,
            "pyc_python": self.pyc_python,
            "dependencies": self.dependencies,
            "notes": self.notes,
        }


# Runtime modules only one flavor imports; the other flavor's zip leaves them out.
FLAVOR_ONLY_MODULES = {"sklearn_flavor.py": "sklearn"}


def runtime_sources(flavor: str | None = None) -> list[tuple[str, Path]]:
    if not (RUNTIME_SOURCE / "handler.py").is_file():
        raise IrisError(f"the Lambda runtime is missing from this install ({RUNTIME_SOURCE})")
    return sorted(
        (p.relative_to(RUNTIME_SOURCE).as_posix(), p)
        for p in RUNTIME_SOURCE.rglob("*.py")
        if "__pycache__" not in p.parts
        and FLAVOR_ONLY_MODULES.get(p.relative_to(RUNTIME_SOURCE).as_posix(), flavor) == flavor
    )


def package_name(model_id: str, flavor: str, runtime: str, architecture: str) -> str:
    return f"{model_id}-{flavor}-{runtime}-{architecture}"


def build_key(stored: StoredModel, cfg: EnvConfig, flavor: str, pyc_python: str | None) -> str:
    """Everything that determines the zip's bytes; equal keys let deploy reuse a built zip."""
    digest = hashlib.sha256()
    for rel, path in runtime_sources(flavor):
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    parts = [
        BUILD_FORMAT, mlops_cli.__version__, stored.manifest["sha256"], flavor,
        cfg.settings.package.runtime, cfg.settings.package.architecture,
        cfg.settings.package.max_batch, pyc_python or "",
    ]
    digest.update(json.dumps(parts).encode())
    return digest.hexdigest()


def build_package(
    cfg: EnvConfig,
    store: ArtifactStore,
    reporter: Reporter,
    model_id: str | None = None,
    flavor: str | None = None,
    force: bool = False,
) -> BuildReport:
    settings = cfg.settings
    flavor = flavor or settings.package.flavor
    if flavor not in ("portable", "sklearn"):
        raise UsageError(f"unknown flavor {flavor!r}; choose portable or sklearn")
    stored = open_model(store, model_id)
    require_passed_gate(stored, settings.quality_gate, cfg.env)
    runtime, arch = settings.package.runtime, settings.package.architecture
    interpreter = find_interpreter(runtime, settings.local.python)
    key = build_key(stored, cfg, flavor, interpreter.path if interpreter else None)

    out_dir = store.packages_dir(cfg.env)
    name = package_name(stored.model_id, flavor, runtime, arch)
    zip_path, sidecar = out_dir / f"{name}.zip", out_dir / f"{name}.json"
    if not force and zip_path.is_file() and sidecar.is_file():
        cached, info = _reusable(sidecar, zip_path, key)
        if info is not None:
            return BuildReport(
                info,
                reused=True,
                top_level=cached.get("top_level", {}),
                parity=cached.get("parity"),
                pyc_compiled=cached.get("pyc_compiled", 0),
                pyc_python=cached.get("pyc_python"),
                dependencies=cached.get("dependencies"),
                notes=cached.get("notes", []),
            )

    with tempfile.TemporaryDirectory(prefix="iris-mlops-pkg-") as tmp:
        staging = Path(tmp) / "root"
        report_extra: dict[str, Any] = {}
        _stage(staging, stored, cfg, flavor, reporter, report_extra)
        notes: list[str] = []
        compiled = 0
        if interpreter is None:
            notes.append(
                f"no {runtime} interpreter found: shipping sources without .pyc "
                "(the first import on Lambda compiles in memory, a slower cold start)"
            )
            reporter.warn(notes[-1])
        else:
            from mlops_cli.packaging.pyc import compile_pyc

            with reporter.step(f"Compiling .pyc with {interpreter.path}"):
                compiled = compile_pyc(staging, interpreter)
        top = top_level_sizes(staging)
        out_dir.mkdir(parents=True, exist_ok=True)
        with reporter.step(f"Writing {zip_path}"):
            _, unzipped = write_reproducible_zip(staging, zip_path)
    if unzipped > UNZIPPED_LIMIT:
        biggest = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in list(top.items())[:6])
        zip_path.unlink(missing_ok=True)
        raise PackageTooLarge(
            f"package is {unzipped:,} bytes unzipped, over Lambda's {UNZIPPED_LIMIT:,}-byte "
            f"limit by {unzipped - UNZIPPED_LIMIT:,}; largest entries: {biggest}",
            top,
        )
    info = PackageInfo(
        path=zip_path,
        sha256=sha256_file(zip_path),
        size_bytes=zip_path.stat().st_size,
        unzipped_bytes=unzipped,
        flavor=flavor,
        runtime=runtime,
        architecture=arch,
        model_id=stored.model_id,
    )
    report = BuildReport(
        info,
        reused=False,
        top_level=top,
        parity=report_extra.get("parity"),
        pyc_compiled=compiled,
        pyc_python=interpreter.path if interpreter else None,
        dependencies=report_extra.get("dependencies"),
        notes=notes,
    )
    write_json_atomic(sidecar, {**report.to_dict(), "build_key": key})
    return report


def _reusable(sidecar: Path, zip_path: Path, key: str) -> tuple[dict[str, Any], PackageInfo | None]:
    """The sidecar and the zip's info when that zip is this exact build; a damaged sidecar just
    means building again. The info names the zip found here, not the path recorded at build
    time: a project folder that was moved or copied must never deploy another folder's zip."""
    try:
        cached = read_json(sidecar, "package record")
        if not isinstance(cached, dict) or cached.get("build_key") != key:
            return {}, None
        if cached.get("sha256") != sha256_file(zip_path):
            return {}, None
        return cached, replace(_info_from_dict(cached), path=zip_path)
    except (ArtifactError, KeyError, TypeError, ValueError):
        return {}, None


def _info_from_dict(data: dict[str, Any]) -> PackageInfo:
    return PackageInfo(
        path=Path(data["path"]),
        sha256=data["sha256"],
        size_bytes=int(data["size_bytes"]),
        unzipped_bytes=int(data["unzipped_bytes"]),
        flavor=data["flavor"],
        runtime=data["runtime"],
        architecture=data["architecture"],
        model_id=data["model_id"],
        handler=data.get("handler", PackageInfo.handler),
    )


def _stage(
    staging: Path,
    stored: StoredModel,
    cfg: EnvConfig,
    flavor: str,
    reporter: Reporter,
    extra: dict[str, Any],
) -> None:
    settings = cfg.settings
    for rel, src in runtime_sources(flavor):
        dest = staging / RUNTIME_PACKAGE / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    model_dir = staging / "model"
    model_dir.mkdir(parents=True)
    if flavor == "portable":
        from mlops_cli.packaging.parity import check_parity
        from mlops_cli.packaging.portable_export import dumps_portable, export_portable

        estimator = stored.load_estimator()
        with reporter.step("Exporting the model to the portable format"):
            doc = export_portable(estimator)
        with reporter.step("Checking parity with scikit-learn's predict_proba"):
            parity = check_parity(estimator, doc)
        extra["parity"] = {
            "rows_checked": parity.rows_checked,
            "max_abs_diff": parity.max_abs_diff,
            "argmax_mismatches": parity.argmax_mismatches,
            "passed": parity.passed,
        }
        if not parity.passed:
            raise IrisError(
                f"the portable export of {stored.model_id} does not match scikit-learn: max abs "
                f"difference {parity.max_abs_diff:.3g} (allowed 1e-9), "
                f"{parity.argmax_mismatches} of {parity.rows_checked} rows predict another "
                "class; package with `--flavor sklearn` instead"
            )
        model_bytes = dumps_portable(doc)
        model_file = "model.json"
    else:
        from mlops_cli.packaging.sklearn_deps import stage_sklearn_dependencies

        model_bytes = stored.model_path.read_bytes()
        model_file = "model.joblib"
        stage = stage_sklearn_dependencies(
            stored.manifest["versions"], settings.package.runtime,
            settings.package.architecture, staging, reporter,
        )
        extra["dependencies"] = stage.to_dict() if hasattr(stage, "to_dict") else None
    (model_dir / model_file).write_bytes(model_bytes)
    manifest = {
        "model_id": stored.model_id,
        "flavor": flavor,
        "model_file": model_file,
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "class_names": stored.manifest["class_names"],
        "feature_names": stored.manifest["feature_names"],
        "max_batch": settings.package.max_batch,
        "runtime": settings.package.runtime,
        "architecture": settings.package.architecture,
        "versions": stored.manifest["versions"],
        "kind": stored.manifest.get("kind"),
    }
    (model_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
