"""Slimming an unpacked dependency tree so scikit-learn fits Lambda's 262,144,000-byte limit.

Unslimmed, scikit-learn + numpy + scipy for Lambda is ~200-270 MB unzipped. Every rule here
removes something the interpreter never reads when it imports the libraries and predicts, and
each one is proven by the load-and-predict integration test (tests/integration/
test_sklearn_flavor.py). Rules are data (a name, a reason, a predicate on the relative POSIX
path) so the report can say what each one saved and a reviewer can judge each one alone.

Two things look safe and are not (measured; docs/architecture.md, "Two model flavors"):
- Some test directories hold modules imported at run time: numpy 2.2.x imports
  `numpy/_core/tests/_natype.py` through `numpy.testing`. Such files are listed in `KEEP`.
- `strip` on the vendored libraries in `numpy.libs/`, `scipy.libs/`, `scikit_learn.libs/`
  (patched by auditwheel) breaks loading ("ELF load command ... not page-aligned"), so only the
  packages' own extension modules are stripped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlops_cli.console import Reporter

# Files that a dropping rule would match but that libraries import at run time.
KEEP: frozenset[str] = frozenset(
    {
        "numpy/_core/tests/_natype.py",  # numpy 2.2.x: numpy.testing imports pd_NA from it
    }
)

_TEST_DIRS = frozenset({"tests", "test"})
_SOURCE_SUFFIXES = frozenset(
    {".pyx", ".pxd", ".pxi", ".c", ".h", ".cpp", ".hpp", ".cc", ".f", ".f90", ".pyf", ".tp", ".a"}
)
_BUILD_FILES = frozenset({"meson.build"})
_DOC_DIRS = frozenset({"doc", "docs", "examples", "_examples"})


def _in_dist_info(parts: tuple[str, ...]) -> bool:
    return bool(parts) and parts[0].endswith(".dist-info")


def _is_bytecode(p: PurePosixPath) -> bool:
    return "__pycache__" in p.parts or p.suffix in (".pyc", ".pyo")


def _is_test(p: PurePosixPath) -> bool:
    # Only directories inside a package (never a top-level package that happens to be called
    # `test`), and never the file name itself: `sklearn/utils/_testing.py` stays.
    return any(part in _TEST_DIRS for part in p.parts[1:-1])


def _is_build_source(p: PurePosixPath) -> bool:
    if _in_dist_info(p.parts):
        return False
    return p.suffix in _SOURCE_SUFFIXES or p.name in _BUILD_FILES or p.name.endswith(".pc")


def _is_stub(p: PurePosixPath) -> bool:
    return p.suffix == ".pyi"


def _is_record(p: PurePosixPath) -> bool:
    return _in_dist_info(p.parts) and p.name == "RECORD" and len(p.parts) == 2


def _is_doc(p: PurePosixPath) -> bool:
    return not _in_dist_info(p.parts) and any(part in _DOC_DIRS for part in p.parts[1:-1])


def _is_script(p: PurePosixPath) -> bool:
    return len(p.parts) > 1 and p.parts[0] == "bin"


@dataclass(frozen=True)
class SlimRule:
    name: str
    reason: str
    matches: Callable[[PurePosixPath], bool]


RULES: tuple[SlimRule, ...] = (
    SlimRule(
        "bytecode-cache",
        "__pycache__ and .pyc built for another interpreter; we compile our own for the runtime",
        _is_bytecode,
    ),
    SlimRule(
        "tests",
        "the libraries' own test suites and their data; never imported when predicting",
        _is_test,
    ),
    SlimRule(
        "build-sources",
        "Cython/C/C++/Fortran sources, headers, static libs and meson files: the compiled "
        "extension modules are what is loaded",
        _is_build_source,
    ),
    SlimRule("type-stubs", ".pyi stubs are read by type checkers only", _is_stub),
    SlimRule(
        "wheel-record",
        "dist-info RECORD lists installed files and hashes; it is wrong once slimmed and only "
        "pip reads it",
        _is_record,
    ),
    SlimRule("docs", "documentation and example directories inside packages", _is_doc),
    SlimRule("scripts", "console scripts in bin/; Lambda only imports", _is_script),
)


def rule_for(rel_path: str) -> SlimRule | None:
    """The rule that drops `rel_path` (a POSIX path relative to the tree root), or None to keep.

    `KEEP` wins over every rule except the bytecode one (stale .pyc are never needed).
    """
    p = PurePosixPath(rel_path)
    for rule in RULES:
        if rule.matches(p):
            if rel_path in KEEP and rule.name != "bytecode-cache":
                return None
            return rule
    return None


def should_drop(rel_path: str) -> bool:
    return rule_for(rel_path) is not None


def slim_tree(root: Path) -> dict[str, tuple[int, int]]:
    """Delete every file a rule drops; returns `{rule name: (files, bytes)}` for rules that hit.

    Directories left empty are removed too, so an emptied `tests/` does not linger.
    """
    removed: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            path = base / name
            rel = path.relative_to(root).as_posix()
            rule = rule_for(rel)
            if rule is None:
                continue
            size = path.lstat().st_size
            path.unlink()
            files, nbytes = removed.get(rule.name, (0, 0))
            removed[rule.name] = (files + 1, nbytes + size)
    _remove_empty_dirs(root)
    return removed


def _remove_empty_dirs(root: Path) -> None:
    for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
        path = Path(dirpath)
        if path != root and not any(path.iterdir()):
            path.rmdir()


# -- strip ------------------------------------------------------------------------------------


def is_vendored_lib(rel_path: str) -> bool:
    """auditwheel's vendored libraries (`numpy.libs/`, `sklearn/.libs/`): stripping breaks them."""
    return any(part.endswith(".libs") or part == ".libs" for part in PurePosixPath(rel_path).parts)


def is_extension_module(rel_path: str) -> bool:
    name = PurePosixPath(rel_path).name
    return (name.endswith(".so") or ".so." in name) and not is_vendored_lib(rel_path)


@dataclass(frozen=True)
class StripResult:
    files: int  # extension modules made smaller
    bytes_saved: int
    skipped: int  # files strip could not handle (another architecture, not ELF); kept as they were
    available: bool  # False when no `strip` is installed


def strip_extensions(root: Path, reporter: Reporter | None = None) -> StripResult:
    """`strip --strip-unneeded` each package extension module; never the vendored libraries.

    Strips into a temp file and replaces the original only on success, so a `strip` that does not
    know the target architecture (x86_64 binutils on an aarch64 wheel) leaves the file intact.
    """
    strip = shutil.which("strip")
    if strip is None:
        if reporter is not None:
            reporter.warn(
                "`strip` is not installed (binutils): extension modules stay unstripped, "
                "the package is ~10-20 MB larger"
            )
        return StripResult(0, 0, 0, available=False)
    files = saved = skipped = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or path.is_symlink() or not is_extension_module(rel):
            continue
        with path.open("rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
        before = path.stat().st_size
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".strip-")
        os.close(fd)
        proc = subprocess.run(
            [strip, "--strip-unneeded", "-o", tmp, str(path)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        after = Path(tmp).stat().st_size
        if proc.returncode != 0 or after == 0:
            os.unlink(tmp)
            skipped += 1
            continue
        if after < before:
            os.chmod(tmp, path.stat().st_mode)
            os.replace(tmp, path)
            files += 1
            saved += before - after
        else:
            os.unlink(tmp)
    if skipped and reporter is not None:
        reporter.warn(
            f"`strip` could not process {skipped} extension module(s) (probably another "
            "architecture's binutils); they are shipped unstripped"
        )
    return StripResult(files, saved, skipped, available=True)
