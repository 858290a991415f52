"""The things the figures measure, made once per run in a temporary directory.

A model is trained and evaluated with the project's own code, then packaged as the `portable`
and (full runs) `sklearn` flavors. The two baselines the project's code does not make are built
here: a stdlib-only "hello" handler, the least any Python Lambda does, and the "naive" package
most tutorials produce (`pip install --target` scikit-learn + joblib, no slimming, no .pyc, a
handler that unpickles at import).

Smoke runs never download: the sklearn flavor and the naive package are skipped there, because
they cost tens of seconds even from a warm cache and the test suite runs the smoke mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from benchmarks.common import Unavailable

REPO = Path(__file__).resolve().parent.parent
RUNTIME = "python3.12"
SKIPPED_IN_SMOKE = "skipped in smoke"

HELLO_HANDLER = '''\
"""The least a Python Lambda handler does: decode the JSON body, answer JSON."""
import json


def lambda_handler(event, context):
    body = json.loads(event.get("body") or "{}")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"ok": True, "echo": body}),
    }
'''

NAIVE_HANDLER = '''\
"""The tutorial way: scikit-learn pip-installed next to this file, the model unpickled at import."""
import json
import os

import joblib

MODEL = joblib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.joblib"))
CLASSES = ["setosa", "versicolor", "virginica"]


def lambda_handler(event, context):
    features = json.loads(event["body"])["features"]
    proba = MODEL.predict_proba([features])[0].tolist()
    best = max(range(len(proba)), key=proba.__getitem__)
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"prediction": best, "class_name": CLASSES[best],
                            "probabilities": proba}),
    }
'''


def tree_bytes(root: Path) -> tuple[int, int]:
    """(files, bytes) of every regular file under `root`."""
    files = total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                files += 1
                total += os.path.getsize(path)
    return files, total


class Workspace:
    """Lazily builds and caches every artifact a figure asks for; `Unavailable` says why not."""

    def __init__(self, smoke: bool, root: Path | None = None) -> None:
        self.smoke = smoke
        self.root = root or Path(tempfile.mkdtemp(prefix="iris-bench-"))
        self.configs = self.root / "configs"
        shutil.copytree(REPO / "configs", self.configs)
        self._cache: dict[str, Any] = {}
        self.notes: list[str] = []

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _once(self, key: str, make: Any) -> Any:
        """Memoise successes and failures alike, so a broken piece is reported, not rebuilt."""
        if key not in self._cache:
            try:
                self._cache[key] = ("ok", make())
            except Unavailable as exc:
                self._cache[key] = ("err", exc)
            except Exception as exc:  # a missing or broken piece of the project under test
                self._cache[key] = ("err", Unavailable(f"{type(exc).__name__}: {exc}"))
        state, value = self._cache[key]
        if state == "err":
            raise value
        return value

    # the project's own pieces -------------------------------------------------------------
    @property
    def store(self) -> Any:
        from mlops_cli.artifacts import ArtifactStore

        return ArtifactStore(self.root / "artifacts")

    def cfg(self, env: str = "local", overrides: dict[str, Any] | None = None) -> Any:
        from mlops_cli.config import load_env

        return load_env(env, self.configs, overrides)

    @staticmethod
    def reporter() -> Any:
        from mlops_cli.console import NullReporter

        return NullReporter()

    def target_python(self) -> str:
        """The runtime's own interpreter (not a pyenv shim); the harness's when it is missing."""

        def make() -> str:
            from mlops_cli.interpreters import find_interpreter

            found = find_interpreter(RUNTIME)
            if found is not None:
                return found.path
            self.notes.append(
                f"no {RUNTIME} interpreter found: timings use {sys.executable} instead"
            )
            return sys.executable

        return self._once("python", make)

    def model(self) -> dict[str, Any]:
        """Train + evaluate with the local env's config; the model every package is built from."""

        def make() -> dict[str, Any]:
            from mlops_cli.training.evaluate import evaluate
            from mlops_cli.training.train import train

            cfg = self.cfg("local")
            trained = train(cfg, self.store, self.reporter())
            report = evaluate(cfg, self.store, self.reporter())
            if not report.get("passed"):
                raise Unavailable(f"the trained model misses the quality gate: {report}")
            return trained

        return self._once("model", make)

    def stored_model(self) -> Any:
        """The trained model as the project's store opens it (manifest, model_path)."""
        from mlops_cli.training.model_io import open_model

        return open_model(self.store, self.model()["model_id"])

    def package(self, flavor: str, env: str = "local") -> Any:
        """The project's BuildReport for `flavor` (its `.info` is the PackageInfo)."""
        if flavor == "sklearn" and self.smoke:
            raise Unavailable(SKIPPED_IN_SMOKE)

        def make() -> Any:
            from mlops_cli.packaging.build import build_package

            self.model()
            return build_package(self.cfg(env), self.store, self.reporter(), flavor=flavor)

        return self._once(f"package:{env}:{flavor}", make)

    def unpacked(self, flavor: str) -> Path:
        """The flavor's zip extracted, as Lambda extracts it into /var/task."""

        def make() -> Path:
            info = self.package(flavor).info
            dest = self.root / "unpacked" / flavor
            with zipfile.ZipFile(info.path) as zf:
                zf.extractall(dest)
            return dest

        return self._once(f"unpacked:{flavor}", make)

    # the baselines --------------------------------------------------------------------------
    def hello(self) -> Path:
        """The stdlib-only handler, with a .pyc for the target Python (the tightest floor)."""

        def make() -> Path:
            dest = self.root / "hello"
            dest.mkdir()
            (dest / "hello_handler.py").write_text(HELLO_HANDLER, encoding="utf-8")
            code = (
                "import py_compile, sys; py_compile.compile(sys.argv[1], doraise=True, "
                "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)"
            )
            subprocess.run(
                [self.target_python(), "-I", "-S", "-c", code, str(dest / "hello_handler.py")],
                check=True, capture_output=True, timeout=60,
            )
            return dest

        return self._once("hello", make)

    def naive(self) -> Path:
        """`pip install --target` of the training versions, no slimming and no .pyc."""
        if self.smoke:
            raise Unavailable(SKIPPED_IN_SMOKE)

        def make() -> Path:
            stored = self.stored_model()
            versions = stored.manifest["versions"]
            dest = self.root / "naive"
            dest.mkdir()
            pins = [f"scikit-learn=={versions['scikit-learn']}", f"numpy=={versions['numpy']}",
                    f"joblib=={versions['joblib']}"]
            base = [self.target_python(), "-m", "pip", "install", "--target", str(dest),
                    "--no-compile", "--only-binary=:all:", "--disable-pip-version-check",
                    "--no-input", "--quiet"]
            wheels = self._wheel_cache()
            attempts = []
            if wheels is not None:
                attempts.append([*base, "--no-index", "--find-links", str(wheels), *pins])
            attempts.append([*base, *pins])  # PyPI (pip's own cache may answer)
            err = ""
            for cmd in attempts:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
                if proc.returncode == 0:
                    break
                err = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
                shutil.rmtree(dest)
                dest.mkdir()
            else:
                raise Unavailable(f"could not pip-install the naive package: {err}")
            for cache in dest.rglob("__pycache__"):
                shutil.rmtree(cache, ignore_errors=True)
            (dest / "lambda_function.py").write_text(NAIVE_HANDLER, encoding="utf-8")
            shutil.copyfile(stored.model_path, dest / "model.joblib")
            return dest

        return self._once("naive", make)

    def naive_zip(self) -> Path:
        def make() -> Path:
            src = self.naive()
            out = self.root / "naive.zip"
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
                for dirpath, dirs, names in os.walk(src):
                    dirs.sort()
                    for name in sorted(names):
                        path = Path(dirpath) / name
                        zf.write(path, path.relative_to(src).as_posix())
            return out

        return self._once("naive_zip", make)

    def _wheel_cache(self) -> Path | None:
        try:
            from mlops_cli.packaging.sklearn_deps import wheel_cache_dir

            path = wheel_cache_dir(RUNTIME, "x86_64")
        except Exception:
            return None
        return path if path.is_dir() and any(path.glob("*.whl")) else None
