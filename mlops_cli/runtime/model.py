"""Load the model directory of the package once, at cold start, and refuse anything doubtful.

A model that does not match its manifest's sha256, a manifest that does not match the model,
or a bad `IRIS_MAX_BATCH` fails the cold start with a `ModelLoadError` naming the file and
what to do: an endpoint that answers with the wrong model is worse than one that does not
start (the deploy's smoke test catches a failed start before `live` moves).
"""

from __future__ import annotations

import json
import os

DEFAULT_MAX_BATCH = 100
FLAVORS = ("portable", "sklearn")


class ModelLoadError(Exception):
    """The packaged model cannot be served; the message says which file and why.

    The message is ASCII whatever it quotes (paths, values): AWS's runtime interface client on
    python3.12+ posts an init error with `http.client`, which encodes the body as Latin-1, so one
    character outside it loses the error and Lambda shows a bare runtime exit instead.
    """

    def __init__(self, message: str) -> None:
        super().__init__(ascii_text(message))


def ascii_text(text: str) -> str:
    """`text` with every non-ASCII character as a backslash escape (readable, never lost)."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _sha256():
    """The cheapest sha256 constructor: the builtin module avoids loading OpenSSL."""
    try:
        from _sha2 import sha256  # Python 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # Python 3.11 and older
        except ImportError:
            from hashlib import sha256
    return sha256


def default_model_dir() -> str:
    """`$IRIS_MODEL_DIR`, else `model/` next to the runtime package (the zip's layout)."""
    explicit = os.environ.get("IRIS_MODEL_DIR")
    if explicit:
        return explicit
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(here), "model")


class LoadedModel:
    """The manifest's facts plus a predictor with `predict_proba(row)` and `classes`."""

    __slots__ = (
        "class_names",
        "classes",
        "feature_names",
        "flavor",
        "manifest",
        "max_batch",
        "model_id",
        "n_features",
        "predictor",
        "versions",
    )

    def __init__(self, manifest: dict, predictor, max_batch: int) -> None:
        self.manifest = manifest
        self.predictor = predictor
        self.model_id = str(manifest["model_id"])
        self.flavor = predictor.flavor
        self.class_names = list(manifest["class_names"])
        self.feature_names = list(manifest.get("feature_names") or [])
        self.classes = list(predictor.classes)
        self.n_features = predictor.n_features
        self.max_batch = max_batch
        self.versions = dict(manifest.get("versions") or {})


def _read_manifest(model_dir: str) -> dict:
    path = os.path.join(model_dir, "manifest.json")
    try:
        with open(path, "rb") as fh:
            manifest = json.loads(fh.read())
    except FileNotFoundError:
        raise ModelLoadError(
            f"model manifest {path} not found; the package has no model "
            "(rebuild it with `iris-mlops package`, or set IRIS_MODEL_DIR)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model manifest {path} is unreadable: {exc}") from None
    if type(manifest) is not dict:
        raise ModelLoadError(f"model manifest {path} is not a JSON object")
    missing = [
        k
        for k in ("model_id", "flavor", "model_file", "sha256", "class_names")
        if k not in manifest
    ]
    if missing:
        raise ModelLoadError(f"model manifest {path} lacks {', '.join(missing)}")
    if manifest["flavor"] not in FLAVORS:
        raise ModelLoadError(
            f"model manifest {path}: flavor {manifest['flavor']!r} is not one of {FLAVORS}"
        )
    return manifest


def _max_batch(manifest: dict) -> int:
    raw = os.environ.get("IRIS_MAX_BATCH")
    if raw is None or raw == "":
        value = manifest.get("max_batch", DEFAULT_MAX_BATCH)
        source = "manifest max_batch"
    else:
        value = raw
        source = "IRIS_MAX_BATCH"
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or type(value) is bool:
        raise ModelLoadError(f"{source} must be a positive integer, got {value!r}")
    return number


def _verify(path: str, expected: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ModelLoadError(f"model file {path} is unreadable: {exc}") from None
    actual = _sha256()(data).hexdigest()
    if actual != str(expected).lower():
        raise ModelLoadError(
            f"model file {path} has sha256 {actual} but the manifest expects {expected}; "
            "the package is corrupt or was modified; rebuild it with `iris-mlops package`"
        )
    return data


def load_model(model_dir: str) -> LoadedModel:
    """Read, verify and load `model_dir` (manifest.json + the model file it names)."""
    manifest = _read_manifest(model_dir)
    name = str(manifest["model_file"])
    if os.path.basename(name) != name:
        raise ModelLoadError(f"manifest model_file {name!r} must be a plain file name")
    path = os.path.join(model_dir, name)
    data = _verify(path, manifest["sha256"])
    if manifest["flavor"] == "portable":
        from .portable import PortableFormatError, PortableModel

        try:
            predictor = PortableModel(json.loads(data))
        except (ValueError, RecursionError) as exc:  # PortableFormatError, bad JSON
            kind = "model" if isinstance(exc, PortableFormatError) else "JSON"
            raise ModelLoadError(
                f"model file {path} is not a valid portable {kind}: {exc}"
            ) from None
    else:
        from .sklearn_flavor import SklearnModel

        try:
            predictor = SklearnModel(path)
        except ImportError as exc:
            raise ModelLoadError(
                f"model file {path} needs scikit-learn, which the package lacks ({exc}); "
                "rebuild it with the sklearn flavor's dependencies"
            ) from None
        except Exception as exc:
            raise ModelLoadError(
                f"model file {path} could not be unpickled ({type(exc).__name__}: {exc}); "
                "the package must pin the library versions that trained the model"
            ) from None
    names = manifest["class_names"]
    if type(names) is not list or len(names) != predictor.n_classes:
        raise ModelLoadError(
            f"manifest class_names has {len(names) if type(names) is list else 'no'} entries "
            f"but the model in {path} has {predictor.n_classes} classes"
        )
    features = manifest.get("feature_names")
    if features is not None and len(features) != predictor.n_features:
        raise ModelLoadError(
            f"manifest feature_names has {len(features)} entries but the model in {path} "
            f"takes {predictor.n_features} features"
        )
    return LoadedModel(manifest, predictor, _max_batch(manifest))
