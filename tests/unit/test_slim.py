"""Slimming rules: what a sklearn package may lose, and what it must keep to load and predict."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_cli.console import Reporter
from mlops_cli.packaging import slim
from mlops_cli.packaging.slim import (
    KEEP,
    RULES,
    is_extension_module,
    rule_for,
    slim_tree,
    strip_extensions,
)


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("numpy/__pycache__/version.cpython-311.pyc", "bytecode-cache"),
        ("numpy/_core/tests/__pycache__/_natype.cpython-311.pyc", "bytecode-cache"),
        ("sklearn/tests/test_base.py", "tests"),
        ("scipy/sparse/linalg/_eigen/arpack/tests/test_arpack.py", "tests"),
        ("numpy/_core/tests/data/astype_copy.pkl", "tests"),
        ("joblib/test/data/joblib_0.9.2_pickle_py27_np16.pkl", "tests"),
        ("sklearn/_loss/_loss.pyx.tp", "build-sources"),
        ("sklearn/tree/_tree.pxd", "build-sources"),
        ("sklearn/svm/_libsvm.pxi", "build-sources"),
        ("numpy/_core/include/numpy/ndarraytypes.h", "build-sources"),
        ("numpy/_core/lib/libnpymath.a", "build-sources"),
        ("numpy/_core/lib/pkgconfig/numpy.pc", "build-sources"),
        ("sklearn/meson.build", "build-sources"),
        ("numpy/__init__.pyi", "type-stubs"),
        ("numpy-2.4.6.dist-info/RECORD", "wheel-record"),
        ("numpy/random/_examples/cython/extending.pyx", "build-sources"),
        ("numpy/random/_examples/numba/extending.py", "docs"),
        ("bin/f2py", "scripts"),
    ],
)
def test_rule_drops_files_never_read_when_predicting(path: str, rule: str) -> None:
    found = rule_for(path)
    assert found is not None and found.name == rule


@pytest.mark.parametrize(
    "path",
    [
        "numpy/_core/tests/_natype.py",  # numpy 2.2.x imports it through numpy.testing
        "numpy/testing/_private/utils.py",
        "sklearn/utils/_testing.py",
        "narwhals/testing/__init__.py",
        "sklearn/externals/array_api_extra/testing.py",
        "test/__init__.py",  # a top-level package called `test` is not a test directory
        "sklearn/datasets/descr/iris.rst",  # load_iris() reads it for DESCR
        "sklearn/datasets/data/iris.csv",
        "numpy-2.4.6.dist-info/METADATA",  # importlib.metadata.version() reads it
        "numpy-2.4.6.dist-info/licenses/LICENSE.txt",
        "numpy-2.4.6.dist-info/licenses/numpy/_core/include/numpy/libdivide/LICENSE.txt",
        "numpy.libs/libscipy_openblas64_-32a4b2a6.so",
        "numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so",
        "threadpoolctl.py",
        "sklearn/tree/_tree.cpython-312-x86_64-linux-gnu.so",
        "sklearn/utils/_repr_html/estimator.css",
    ],
)
def test_rule_keeps_what_libraries_load(path: str) -> None:
    assert rule_for(path) is None


def test_keep_list_only_names_files_a_rule_would_otherwise_drop() -> None:
    # A KEEP entry nothing would drop is dead weight that hides a real rule change.
    for path in KEEP:
        assert any(rule.matches(PurePosixPath(path)) for rule in RULES), path


def test_every_rule_explains_itself() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert all(rule.reason for rule in RULES)


_component = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)


@given(
    dirs=st.lists(_component, max_size=5),
    stem=_component,
    suffix=st.sampled_from([".py", ".so"]),
)
def test_modules_outside_test_doc_and_cache_dirs_are_always_kept(
    dirs: list[str], stem: str, suffix: str
) -> None:
    excluded = {"tests", "test", "doc", "docs", "examples", "_examples", "__pycache__", "bin"}
    if excluded & set(dirs):
        return
    assert rule_for("/".join([*dirs, stem + suffix])) is None


def _write(root: Path, rel: str, size: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_slim_tree_reports_files_and_bytes_per_rule_and_prunes_emptied_dirs(tmp_path: Path) -> None:
    _write(tmp_path, "pkg/__init__.py", 10)
    _write(tmp_path, "pkg/tests/test_a.py", 100)
    _write(tmp_path, "pkg/tests/data/blob.bin", 1000)
    _write(tmp_path, "pkg/__pycache__/__init__.cpython-311.pyc", 7)
    _write(tmp_path, "pkg/mod.pyi", 5)
    _write(tmp_path, "pkg-1.0.dist-info/RECORD", 3)
    _write(tmp_path, "pkg-1.0.dist-info/METADATA", 3)
    _write(tmp_path, "numpy/_core/tests/_natype.py", 50)
    _write(tmp_path, "numpy/_core/tests/test_x.py", 60)

    removed = slim_tree(tmp_path)

    assert removed == {
        "tests": (3, 1160),
        "bytecode-cache": (1, 7),
        "type-stubs": (1, 5),
        "wheel-record": (1, 3),
    }
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "numpy/_core/tests/_natype.py",
        "pkg-1.0.dist-info/METADATA",
        "pkg/__init__.py",
    ]
    assert not (tmp_path / "pkg/tests").exists()
    assert not (tmp_path / "pkg/__pycache__").exists()


def test_vendored_libraries_are_never_stripped() -> None:
    assert not is_extension_module("numpy.libs/libgfortran-040039e1-0352e75f.so.5.0.0")
    assert not is_extension_module("scikit_learn.libs/libgomp-e985bcbb.so.1.0.0")
    assert not is_extension_module("sklearn/.libs/vcomp140.so")
    assert is_extension_module("scipy/linalg/_fblas.cpython-312-x86_64-linux-gnu.so")


def _a_real_extension_module() -> Path:
    import numpy

    candidates = sorted(Path(numpy.__file__).parent.rglob("*.so"), key=lambda p: p.stat().st_size)
    return candidates[0]


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip not installed")
def test_strip_shrinks_package_extensions_and_leaves_vendored_libs_byte_identical(
    tmp_path: Path,
) -> None:
    ext = _a_real_extension_module()
    own = tmp_path / "pkg" / ext.name
    vendored = tmp_path / "pkg.libs" / "libvendored.so.1.0.0"
    not_elf = tmp_path / "pkg" / "fake.so"
    for target in (own, vendored):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ext, target)
    not_elf.write_bytes(b"not an ELF file")

    result = strip_extensions(tmp_path)

    assert result.available
    assert vendored.read_bytes() == ext.read_bytes()
    assert not_elf.read_bytes() == b"not an ELF file"
    assert own.read_bytes()[:4] == b"\x7fELF"
    assert own.stat().st_size + result.bytes_saved == ext.stat().st_size
    assert not list(tmp_path.rglob(".strip-*"))


def test_strip_missing_is_a_warning_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ext = _a_real_extension_module()
    shutil.copyfile(ext, tmp_path / ext.name)
    monkeypatch.setattr(slim.shutil, "which", lambda _name: None)
    warnings: list[str] = []

    class Capture(Reporter):
        def warn(self, message: str) -> None:
            warnings.append(message)

    result = strip_extensions(tmp_path, Capture(quiet=True))

    assert not result.available and result.files == 0
    assert (tmp_path / ext.name).read_bytes() == ext.read_bytes()
    assert warnings and "strip" in warnings[0]


def test_strip_failure_keeps_the_original(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ext = _a_real_extension_module()
    target = tmp_path / "pkg" / ext.name
    target.parent.mkdir()
    shutil.copyfile(ext, target)
    failing = tmp_path / "strip"
    failing.write_text("#!/bin/sh\necho 'Unable to recognise the format' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setattr(slim.shutil, "which", lambda _name: str(failing))

    result = strip_extensions(tmp_path)

    assert (result.files, result.skipped) == (0, 1)
    assert target.read_bytes() == ext.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == [ext.name]
