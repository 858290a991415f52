"""Find a Python interpreter that matches a Lambda runtime (`python3.12` → a real 3.12).

Used by packaging (to compile `.pyc` for the target version) and by the local target (to run the
zip under the runtime's Python). A pyenv shim on PATH is not proof: it answers "command not found"
when that version is not selected, so every candidate is run once and must report the version.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # "3.12"
    source: str  # "config", "PATH", "pyenv", "current"

    @property
    def matches_current(self) -> bool:
        return self.version == f"{sys.version_info[0]}.{sys.version_info[1]}"


def runtime_version(runtime: str) -> str:
    """`python3.12` → `3.12`."""
    return runtime.removeprefix("python")


def _probe(path: str) -> str | None:
    """The `X.Y` an interpreter reports when it actually runs in isolated mode, else None.

    A real (ELF) interpreter's answer is cached by its path, size and mtime: the probe costs a
    process start (0.3–1 s on a busy machine) on every package and deploy otherwise. A script
    such as a pyenv shim answers differently as versions are selected, so it is always run.
    """
    key = _binary_key(path)
    cache = _probe_cache()
    if key is not None and key in cache:
        return cache[key]
    version = _run_probe(path)
    if key is not None and version is not None:
        cache[key] = version
        _save_probe_cache(cache)
    return version


def _binary_key(path: str) -> str | None:
    try:
        real = os.path.realpath(path)
        with open(real, "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                return None
        st = os.stat(real)
    except OSError:
        return None
    return f"{real}|{st.st_size}|{st.st_mtime_ns}"


def _probe_cache_path() -> Path:
    from mlops_cli.artifacts import cache_dir

    return cache_dir() / "interpreters.json"


def _probe_cache() -> dict[str, str]:
    try:
        data = json.loads(_probe_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _save_probe_cache(cache: dict[str, str]) -> None:
    from mlops_cli.artifacts import write_json_atomic

    with contextlib.suppress(OSError):
        write_json_atomic(_probe_cache_path(), cache)


def _run_probe(path: str) -> str | None:
    try:
        proc = subprocess.run(
            [path, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version = proc.stdout.strip()
    return version if proc.returncode == 0 and version.count(".") == 1 else None


def _pyenv_root() -> Path | None:
    explicit = os.environ.get("PYENV_ROOT")
    if explicit:
        return Path(explicit)
    default = Path.home() / ".pyenv"
    if default.is_dir():  # what `pyenv root` answers without PYENV_ROOT, without a process
        return default
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                return Path(out)
        except (OSError, subprocess.SubprocessError):
            pass
    return None


def _candidates(version: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    root = _pyenv_root()
    on_path = shutil.which(f"python{version}")
    # A pyenv shim runs one of pyenv's versions, listed below anyway: probing it costs a slow
    # shell script (and fails when the version is not selected), so it is skipped.
    if on_path and not (root and Path(on_path).parent == root / "shims"):
        found.append((on_path, "PATH"))
    if root and (root / "versions").is_dir():
        for entry in sorted((root / "versions").iterdir(), reverse=True):
            name = entry.name
            if name == version or name.startswith(version + "."):
                exe = entry / "bin" / f"python{version}"
                if exe.exists():
                    found.append((str(exe), "pyenv"))
    return found


@functools.lru_cache(maxsize=32)
def find_interpreter(runtime: str, configured: str | None = None) -> Interpreter | None:
    """The interpreter for `runtime`: the configured path, then PATH, then pyenv's versions.

    Returns None when nothing that really runs that version is installed; callers then fall back
    to the current interpreter and say so.
    """
    version = runtime_version(runtime)
    if configured:
        resolved = shutil.which(configured) or configured
        got = _probe(resolved)
        if got == version:
            return Interpreter(resolved, version, "config")
        return None
    for path, source in _candidates(version):
        if _probe(path) == version:
            return Interpreter(path, version, source)
    return None


def current_interpreter() -> Interpreter:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return Interpreter(sys.executable, version, "current")
