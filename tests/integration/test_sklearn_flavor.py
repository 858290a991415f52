"""The sklearn flavor's dependency tree, built for real: download (or wheel cache), slim, compile,
then load the model and predict in an isolated interpreter that sees only that tree.

This is the proof behind every slimming rule: if a rule removed something scikit-learn, numpy,
scipy or joblib needs, a model would fail to load or a module would fail to import here.
Slow: the first run downloads ~60 MB of wheels from PyPI into the wheel cache.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy
import pytest
import sklearn

from mlops_cli.console import NullReporter
from mlops_cli.errors import IrisError
from mlops_cli.interpreters import Interpreter, current_interpreter, find_interpreter
from mlops_cli.packaging.pyc import compile_pyc
from mlops_cli.packaging.result import UNZIPPED_LIMIT
from mlops_cli.packaging.sklearn_deps import (
    StageReport,
    platform_tags,
    stage_sklearn_dependencies,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        sys.platform != "linux" or platform.machine() != "x86_64",
        reason="runs x86_64 manylinux wheels on this machine",
    ),
]

# What a model manifest records (`versions`): the libraries that trained the model.
TRAINED_WITH = {
    "python": platform.python_version(),
    "scikit-learn": sklearn.__version__,
    "numpy": numpy.__version__,
    "joblib": joblib.__version__,
}
SETOSA_ROW = [5.1, 3.5, 1.4, 0.2]
MODEL_KINDS = ("logistic", "tree", "forest", "boosting", "pipeline")


def _targets() -> list[Interpreter]:
    found = [current_interpreter()]
    other = find_interpreter("python3.12")
    if other is not None and other.version != found[0].version:
        found.append(other)
    return found


@dataclass(frozen=True)
class Staged:
    root: Path
    report: StageReport
    interpreter: Interpreter
    pyc_compiled: int


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    estimators = {
        "logistic": LogisticRegression(max_iter=500),
        "tree": DecisionTreeClassifier(random_state=0),
        "forest": RandomForestClassifier(n_estimators=10, random_state=0),
        "boosting": GradientBoostingClassifier(n_estimators=10, random_state=0),
        "pipeline": Pipeline(
            [("scale", StandardScaler()), ("model", LogisticRegression(max_iter=500))]
        ),
    }
    out = tmp_path_factory.mktemp("models")
    for name, estimator in estimators.items():
        joblib.dump(estimator.fit(x, y), out / f"{name}.joblib")
    return out


@pytest.fixture(scope="module", params=_targets(), ids=lambda i: f"py{i.version}")
def staged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Staged:
    interpreter: Interpreter = request.param
    root = tmp_path_factory.mktemp(f"py{interpreter.version}") / "root"
    # Lambda's python3.11 runs on glibc 2.26, for which scikit-learn 1.8+ has no wheels; this
    # machine's glibc is newer, so the 3.11 tree is built with the AL2023 tags to be runnable here.
    report = stage_sklearn_dependencies(
        TRAINED_WITH,
        f"python{interpreter.version}",
        "x86_64",
        root,
        NullReporter(),
        platforms=platform_tags("python3.12", "x86_64"),
    )
    compiled = compile_pyc(root, interpreter)
    return Staged(root, report, interpreter, compiled)


def _isolated(staged: Staged, code: str, *args: str, verbose: bool = False) -> str:
    """Run `code` with only the staged tree and the standard library importable, as on Lambda.

    `-B` because Lambda's code directory is read-only: nothing compiled at run time is kept.
    """
    flags = ["-I", "-S", "-B", *(["-v"] if verbose else [])]
    prelude = "import sys; sys.path.insert(0, sys.argv[1]); "
    proc = subprocess.run(
        [staged.interpreter.path, *flags, "-c", prelude + code, str(staged.root), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=staged.root.parent,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr if verbose else proc.stdout


PREDICT = """
import json, joblib, numpy, sklearn
out = {"sklearn_file": sklearn.__file__, "numpy": numpy.__version__, "sklearn": sklearn.__version__}
for path in sys.argv[2:]:
    model = joblib.load(path)
    out[path] = {"proba": model.predict_proba([[5.1, 3.5, 1.4, 0.2]])[0].tolist(),
                 "predict": int(model.predict([[6.7, 3.0, 5.2, 2.3]])[0])}
print(json.dumps(out))
"""


def test_every_model_kind_loads_and_predicts_with_only_the_staged_tree(
    staged: Staged, models: Path
) -> None:
    paths = [str(models / f"{kind}.joblib") for kind in MODEL_KINDS]

    result = json.loads(_isolated(staged, PREDICT, *paths))

    assert result["sklearn_file"].startswith(str(staged.root))
    assert result["sklearn"] == TRAINED_WITH["scikit-learn"]
    assert result["numpy"] == TRAINED_WITH["numpy"]
    for path in paths:
        proba = result[path]["proba"]
        assert max(range(3), key=proba.__getitem__) == 0, (path, proba)  # setosa
        assert abs(sum(proba) - 1.0) < 1e-9
        assert result[path]["predict"] == 2  # virginica


def test_slimmed_tree_fits_well_inside_lambdas_unzipped_limit(staged: Staged) -> None:
    on_disk = sum(p.stat().st_size for p in staged.root.rglob("*") if p.is_file())
    report = staged.report

    assert on_disk < 200_000_000 < UNZIPPED_LIMIT
    assert report.bytes_kept < report.bytes_unpacked
    assert report.removed["tests"][1] > 10_000_000
    assert report.stripped_files > 0 and report.stripped_bytes > 0
    assert {"scikit-learn", "numpy", "scipy", "joblib", "threadpoolctl"} <= set(report.versions)
    assert report.versions["scikit-learn"] == TRAINED_WITH["scikit-learn"]


def test_library_modules_load_from_the_compiled_pyc(staged: Staged, models: Path) -> None:
    code = "import joblib; joblib.load(sys.argv[2]).predict_proba([[5.1, 3.5, 1.4, 0.2]])"

    log = _isolated(staged, code, str(models / "pipeline.joblib"), verbose=True)

    ours = [
        line for line in log.splitlines() if "code object from" in line and str(staged.root) in line
    ]
    from_source = [line for line in ours if ".pyc" not in line]
    assert staged.pyc_compiled > 1000
    assert len(ours) > 300
    assert from_source == []


IMPORT_EVERYTHING = """
import contextlib, importlib, io, json, pkgutil, warnings
warnings.simplefilter("ignore")
quiet = contextlib.redirect_stdout(io.StringIO())  # some modules print when imported
quiet.__enter__()
import numpy.testing  # numpy 2.2.x imported numpy/_core/tests/_natype.py from here
problems = []
for top in ("sklearn", "scipy", "numpy", "joblib"):
    package = importlib.import_module(top)
    for module in pkgutil.walk_packages(package.__path__, top + "."):
        if module.name.endswith(".__main__"):
            continue  # command-line entry points (numpy.f2py) run and exit when imported
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as exc:
            problems.append([module.name, exc.name or "", str(exc)])
        except (Exception, SystemExit) as exc:
            problems.append([module.name, "", repr(exc)])
import threadpoolctl
quiet.__exit__(None, None, None)
print(json.dumps(problems))
"""
# Modules that fail to import in the unslimmed wheels too: test helpers and array-API shims for
# optional third-party packages, build tools, Windows-only backends.
OPTIONAL = {
    "pytest",
    "_pytest",
    "hypothesis",
    "Cython",
    "cupy",
    "dask",
    "torch",
    "jax",
    "sparse",
    "numba",
    "mpmath",
    "matplotlib",
    "PyInstaller",
    "msvcrt",
    "code_generators",
    "numpy.distutils",
}
# Maintainer scripts that regenerate scipy's tables (they need pytest and mpmath anyway).
SCRIPTS = ("scipy.special._precompute.",)
WINDOWS_ONLY = {"joblib.externals.loky.backend._win_reduction"}


def test_every_library_module_still_imports_after_slimming(staged: Staged) -> None:
    if staged.interpreter.version != _targets()[-1].version:
        pytest.skip("checked once, with the newest interpreter")

    problems = json.loads(_isolated(staged, IMPORT_EVERYTHING))

    unexpected = [
        (module, message)
        for module, missing, message in problems
        if not (
            missing in OPTIONAL
            or missing.split(".")[0] in OPTIONAL
            or module.startswith(SCRIPTS)
            or module in WINDOWS_ONLY
        )
    ]
    assert unexpected == []


def test_restaging_resolves_from_the_wheel_cache_without_the_network(
    staged: Staged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any attempt to reach an index now fails fast on a closed loopback port.
    for name in ("PIP_INDEX_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9/")

    again = stage_sklearn_dependencies(
        TRAINED_WITH,
        f"python{staged.interpreter.version}",
        "x86_64",
        tmp_path / "root",
        NullReporter(),
        platforms=staged.report.platforms,
    )

    assert again.resolved_offline
    assert again.versions == staged.report.versions
    assert again.bytes_kept == staged.report.bytes_kept


@pytest.mark.skipif(
    tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 8),
    reason="scikit-learn < 1.8 still ships manylinux2014 wheels",
)
def test_python311_lambda_runtime_is_refused_with_the_glibc_explanation(tmp_path: Path) -> None:
    with pytest.raises(IrisError) as excinfo:
        stage_sklearn_dependencies(
            TRAINED_WITH, "python3.11", "x86_64", tmp_path / "root", NullReporter()
        )

    message = str(excinfo.value)
    assert "Amazon Linux 2" in message and "python3.12" in message
