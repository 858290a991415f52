""".pyc for the runtime's Python: used on Lambda's read-only disk, byte-identical across builds."""

from __future__ import annotations

import marshal
import os
import subprocess
from pathlib import Path

import pytest

from mlops_cli.errors import IrisError
from mlops_cli.interpreters import Interpreter, current_interpreter, find_interpreter
from mlops_cli.packaging.pyc import compile_pyc

SOURCES = {
    "pkg/__init__.py": "from .mod import answer\n",
    "pkg/mod.py": (
        "KINDS = {'setosa', 'versicolor', 'virginica', 'a', 'b', 'c', 'd'}\n"
        "def answer(x):\n"
        "    if x in {'x', 'y', 'z', 'w'}:\n"
        "        return 1\n"
        "    return 42\n"
    ),
    "pkg/sub/deep.py": "VALUE = (1, 2.5, 'three', b'four', frozenset({'p', 'q', 'r'}))\n",
    "top.py": "import pkg\n",
    "pkg/data.txt": "not python\n",
}


def _tree(root: Path) -> Path:
    for rel, text in SOURCES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _pycs(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.pyc"))}


def _interpreters() -> list[Interpreter]:
    found = [current_interpreter()]
    other = find_interpreter("python3.12")
    if other is not None and other.version != found[0].version:
        found.append(other)
    return found


@pytest.fixture(params=_interpreters(), ids=lambda i: f"py{i.version}")
def interpreter(request: pytest.FixtureRequest) -> Interpreter:
    return request.param


def test_compiles_every_module_into_the_runtimes_cache_tag(
    tmp_path: Path, interpreter: Interpreter
) -> None:
    count = compile_pyc(_tree(tmp_path), interpreter)

    tag = f"cpython-{interpreter.version.replace('.', '')}"
    assert count == 4
    assert sorted(_pycs(tmp_path)) == [
        f"__pycache__/top.{tag}.pyc",
        f"pkg/__pycache__/__init__.{tag}.pyc",
        f"pkg/__pycache__/mod.{tag}.pyc",
        f"pkg/sub/__pycache__/deep.{tag}.pyc",
    ]


def test_same_sources_in_another_checkout_give_byte_identical_pyc(
    tmp_path: Path, interpreter: Interpreter
) -> None:
    first = _tree(tmp_path / "checkout-one" / "root")
    second = _tree(tmp_path / "elsewhere" / "deeper" / "root")
    os.utime(second / "pkg/mod.py", (1, 1))  # mtimes must not matter either

    compile_pyc(first, interpreter)
    compile_pyc(second, interpreter)
    again = _pycs(first)
    for pyc in first.rglob("*.pyc"):
        pyc.unlink()
    compile_pyc(first, interpreter)

    assert _pycs(first) == _pycs(second) == again


def test_pyc_are_unchecked_hash_based_and_name_sources_relative_to_the_zip_root(
    tmp_path: Path,
) -> None:
    compile_pyc(_tree(tmp_path), current_interpreter())
    data = next(tmp_path.glob("pkg/__pycache__/mod.*.pyc")).read_bytes()

    flags = int.from_bytes(data[4:8], "little")
    assert flags == 0b01  # hash-based, source never checked: zip timestamps cannot stale it
    assert marshal.loads(data[16:]).co_filename == "pkg/mod.py"


def test_python_imports_the_compiled_pyc_even_after_the_zip_rewrites_mtimes(
    tmp_path: Path, interpreter: Interpreter
) -> None:
    root = _tree(tmp_path)
    compile_pyc(root, interpreter)
    for path in root.rglob("*.py"):
        os.utime(path, (315532800, 315532800))  # what a reproducible zip stores: 1980-01-01

    proc = subprocess.run(
        [
            interpreter.path,
            *("-I", "-S", "-B", "-v", "-c"),
            "import sys; sys.path.insert(0, sys.argv[1]); import top, pkg.sub.deep",
            str(root),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )

    loaded = [line for line in proc.stderr.splitlines() if "code object from" in line]
    ours = [line for line in loaded if str(root) in line]
    assert len(ours) == 4
    assert all(".pyc" in line for line in ours), ours


def test_a_file_the_runtime_cannot_parse_is_an_error_naming_it(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "pkg" / "broken.py").write_text("def f(:\n")

    with pytest.raises(IrisError, match=r"pkg/broken\.py"):
        compile_pyc(tmp_path, current_interpreter())


def test_an_interpreter_that_does_not_run_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    missing = Interpreter(str(tmp_path / "no-python"), "3.12", "config")
    with pytest.raises(IrisError, match="could not run"):
        compile_pyc(_tree(tmp_path / "root"), missing)


def test_existing_pycache_dirs_are_not_descended(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    stray = root / "pkg" / "__pycache__" / "junk.py"
    stray.parent.mkdir()
    stray.write_text("x = 1\n")

    assert compile_pyc(root, current_interpreter()) == 4
    assert not (stray.parent / "__pycache__").exists()
