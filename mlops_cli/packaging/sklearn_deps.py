"""The `sklearn` flavor's dependencies: manylinux wheels for the Lambda runtime, unpacked, slimmed.

The wheels must be the ones Lambda can load, not the ones this machine runs: pip resolves for
the runtime's Python (`--python-version`, `--abi cpXY`) and Lambda's glibc (`--platform`), binary
wheels only. Versions are pinned to those that trained the model (the manifest's `versions`),
because a scikit-learn or numpy skew can break unpickling or change predictions.

Lambda's Python runtimes up to 3.11 run on Amazon Linux 2 (glibc 2.26); 3.12 and later on Amazon
Linux 2023 (glibc 2.34). Current numpy/scipy/scikit-learn ship only `manylinux_2_28` wheels, so
they install on the AL2023 runtimes only; asking for `manylinux2014` alone silently resolves to
older releases, which is why every compatible manylinux tag is passed explicitly.

Wheels are cached per Python version and architecture in `cache_dir()/wheels/cpXY-<arch>`; a
rebuild resolves from that cache alone (`--no-index`) and only goes to the index when the cache
cannot satisfy the pins.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlops_cli.artifacts import cache_dir
from mlops_cli.console import Reporter
from mlops_cli.errors import IrisError, UsageError
from mlops_cli.interpreters import runtime_version
from mlops_cli.packaging.slim import RULES, slim_tree, strip_extensions

ARCH_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}
# Lambda runtimes on Amazon Linux 2023 (glibc 2.34); older python runtimes run on AL2 (2.26).
AL2023_FROM = (3, 12)
AL2023_GLIBC = 34
AL2_GLIBC = 26
MANYLINUX2014_GLIBC = 17
REQUIRED_PINS = ("scikit-learn", "numpy", "joblib")


@dataclass(frozen=True)
class WheelInfo:
    name: str
    version: str
    filename: str
    size_bytes: int


@dataclass
class StageReport:
    python_version: str  # "3.12"
    architecture: str  # Lambda's name: x86_64 | arm64
    platforms: list[str]
    wheel_cache: str
    resolved_offline: bool  # True when the wheel cache alone satisfied the pins
    wheels: list[WheelInfo] = field(default_factory=list)
    files_unpacked: int = 0
    bytes_unpacked: int = 0  # before slimming
    files_kept: int = 0
    bytes_kept: int = 0  # after slimming and strip
    removed: dict[str, tuple[int, int]] = field(default_factory=dict)  # rule -> (files, bytes)
    stripped_files: int = 0
    stripped_bytes: int = 0
    top_level: list[str] = field(default_factory=list)

    @property
    def versions(self) -> dict[str, str]:
        return {w.name: w.version for w in self.wheels}

    def to_dict(self) -> dict[str, Any]:
        reasons = {rule.name: rule.reason for rule in RULES}
        return {
            "python_version": self.python_version,
            "architecture": self.architecture,
            "platforms": list(self.platforms),
            "wheel_cache": self.wheel_cache,
            "resolved_offline": self.resolved_offline,
            "wheels": [
                {
                    "name": w.name,
                    "version": w.version,
                    "filename": w.filename,
                    "bytes": w.size_bytes,
                }
                for w in self.wheels
            ],
            "files_unpacked": self.files_unpacked,
            "bytes_unpacked": self.bytes_unpacked,
            "files_kept": self.files_kept,
            "bytes_kept": self.bytes_kept,
            "removed": {
                name: {"files": files, "bytes": nbytes, "reason": reasons.get(name, "")}
                for name, (files, nbytes) in sorted(self.removed.items())
            },
            "stripped": {"files": self.stripped_files, "bytes_saved": self.stripped_bytes},
            "top_level": list(self.top_level),
        }


# -- pure helpers ---------------------------------------------------------------------------


def python_tag(runtime: str) -> tuple[str, tuple[int, int]]:
    """`python3.12` → ("3.12", (3, 12)); anything else is a usage error."""
    version = runtime_version(runtime)
    match = re.fullmatch(r"3\.(\d+)", version)
    if not runtime.startswith("python") or match is None:
        raise UsageError(f"runtime {runtime!r} is not a Lambda Python runtime such as python3.12")
    return version, (3, int(match.group(1)))


def platform_tags(runtime: str, architecture: str) -> list[str]:
    """Every manylinux tag the runtime's glibc can load, newest first (pip's preference order)."""
    if architecture not in ARCH_MACHINE:
        raise UsageError(
            f"architecture {architecture!r} is not a Lambda architecture; choose x86_64 or arm64"
        )
    machine = ARCH_MACHINE[architecture]
    _, version = python_tag(runtime)
    glibc = AL2023_GLIBC if version >= AL2023_FROM else AL2_GLIBC
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(glibc, MANYLINUX2014_GLIBC, -1)]
    # manylinux2014 == manylinux_2_17; pip expands it to manylinux2010/manylinux1 as well.
    tags.append(f"manylinux2014_{machine}")
    return tags


def requirements(versions: dict[str, str]) -> list[str]:
    """`name==version` for every library the manifest pins (all but `python`)."""
    missing = [name for name in REQUIRED_PINS if not versions.get(name)]
    if missing:
        raise IrisError(
            f"the model manifest does not record the {', '.join(missing)} version(s) it was "
            "trained with, so the package cannot pin them; retrain with `iris-mlops train`"
        )
    return [f"{name}=={ver}" for name, ver in sorted(versions.items()) if name != "python" and ver]


def wheel_name_version(filename: str) -> tuple[str, str]:
    """Distribution name (normalized) and version from a wheel file name."""
    parts = filename[: -len(".whl")].split("-")
    return re.sub(r"[-_.]+", "-", parts[0]).lower(), parts[1]


def wheel_target(member: str) -> str | None:
    """Where a wheel member lands in the package root, or None when Lambda cannot use it.

    `<dist>.data/purelib|platlib/x` installs as `x`; scripts, headers and data do not import.
    """
    p = PurePosixPath(member)
    if p.is_absolute() or ".." in p.parts or member.endswith("/"):
        return None
    if p.parts[0].endswith(".data"):
        if len(p.parts) > 2 and p.parts[1] in ("purelib", "platlib"):
            return PurePosixPath(*p.parts[2:]).as_posix()
        return None
    return p.as_posix()


def key_pip_line(output: str) -> str:
    """The line of pip's output that says what went wrong."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    if errors:
        no_match = [line for line in errors if "Could not find a version" in line]
        return _shorten_versions((no_match or errors)[0])
    return lines[-1] if lines else "pip printed nothing"


def _shorten_versions(line: str, keep: int = 4) -> str:
    """pip lists every release it saw; the newest few are what a user can act on."""
    match = re.search(r"\(from versions: ([^)]*)\)", line)
    if match is None or match.group(1).strip() == "none":
        return line
    found = [v.strip() for v in match.group(1).split(",") if v.strip()]
    if len(found) <= keep:
        return line
    newest = f"(newest available: {', '.join(found[-keep:])})"
    return line[: match.start()] + newest + line[match.end() :]


def failure_hint(line: str, runtime: str, architecture: str, wheel_dir: Path) -> str:
    _, version = python_tag(runtime)
    if "from versions: none" in line:
        return (
            "pip found no candidates at all: check network access to PyPI (pip's index and "
            f"proxy settings), or fill the wheel cache {wheel_dir} with the wheels beforehand"
        )
    if "Could not find a version" in line or "No matching distribution" in line:
        if version < AL2023_FROM:
            return (
                f"Lambda's {runtime} runs on Amazon Linux 2 (glibc 2.26) and recent numpy/scipy/"
                "scikit-learn publish only manylinux_2_28 wheels: use runtime python3.12 or "
                "later, or train with releases that still ship manylinux2014 wheels "
                "(e.g. scikit-learn 1.7.2, numpy 2.2.6)"
            )
        return (
            f"no binary wheel of that version exists for {runtime} on {architecture}: train with "
            "library versions that publish wheels for this runtime, or change the runtime"
        )
    if "No module named pip" in line:
        return f"install pip into the environment running iris-mlops ({sys.executable})"
    return "rerun with network access to PyPI; the full pip output is above"


# -- I/O ------------------------------------------------------------------------------------


def wheel_cache_dir(runtime: str, architecture: str) -> Path:
    version, _ = python_tag(runtime)
    return cache_dir() / "wheels" / f"cp{version.replace('.', '')}-{architecture}"


def _pip_download(
    reqs: list[str], runtime: str, platforms: list[str], dest: Path, cache: Path, offline: bool
) -> subprocess.CompletedProcess[str]:
    version, _ = python_tag(runtime)
    abi = f"cp{version.replace('.', '')}"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--python-version",
        version,
        "--implementation",
        "cp",
        "--abi",
        abi,
    ]
    for tag in platforms:
        cmd += ["--platform", tag]
    cmd += ["--dest", str(dest)]
    if offline:
        cmd += ["--no-index", "--find-links", str(cache)]
    cmd += reqs
    env = dict(os.environ)
    if offline:
        # Resolve from our cache alone: no pip.conf, no extra index or find-links.
        for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
            env.pop(name, None)
        env["PIP_CONFIG_FILE"] = os.devnull
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=1800
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return subprocess.CompletedProcess(cmd, 1, "", f"ERROR: {exc}")


class _CacheMiss(Exception):
    """The wheel cache cannot satisfy the pins; the index must be asked."""


def _download(
    reqs: list[str], runtime: str, architecture: str, platforms: list[str], reporter: Reporter
) -> tuple[list[Path], bool, Path]:
    """The closure's wheel files in a fresh dir (under the cache), and whether it was offline."""
    cache = wheel_cache_dir(runtime, architecture)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".resolve-", dir=cache))
    offline = any(cache.glob("*.whl"))
    if offline:
        try:
            with reporter.step(f"Resolving {', '.join(reqs)} from the wheel cache"):
                proc = _pip_download(reqs, runtime, platforms, work, cache, offline=True)
                if proc.returncode != 0:
                    raise _CacheMiss  # no tick for a step that did not do its job
        except _CacheMiss:
            offline = False
            for stale in work.iterdir():
                stale.unlink()
    if not offline:
        with reporter.step(f"Downloading wheels for {runtime} ({architecture}) from PyPI"):
            proc = _pip_download(reqs, runtime, platforms, work, cache, offline=False)
            if proc.returncode != 0:
                shutil.rmtree(work, ignore_errors=True)
                line = key_pip_line(proc.stdout + "\n" + proc.stderr)
                raise IrisError(
                    f"pip could not get the wheels for {', '.join(reqs)} ({runtime}, "
                    f"{architecture}): {line} — {failure_hint(line, runtime, architecture, cache)}"
                )
    wheels = sorted(work.glob("*.whl"))
    if not wheels:
        shutil.rmtree(work, ignore_errors=True)
        raise IrisError(f"pip reported success but left no wheels in {work}; rerun `package`")
    # Publish new wheels to the cache atomically (same filesystem), so a concurrent build
    # never sees half a file.
    for wheel in wheels:
        target = cache / wheel.name
        if not target.exists():
            shutil.copy2(wheel, work / f".{wheel.name}.part")
            os.replace(work / f".{wheel.name}.part", target)
    return wheels, offline, work


def _unpack(wheels: list[Path], root: Path, cache: Path) -> None:
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as zf:
                for info in zf.infolist():
                    target = wheel_target(info.filename)
                    if target is None:
                        continue
                    out = root / target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    mode = (info.external_attr >> 16) & 0o777
                    if mode & 0o111:
                        out.chmod(0o755)
        except (zipfile.BadZipFile, OSError) as exc:
            raise IrisError(
                f"cannot unpack {wheel.name}: {exc}; delete it from {cache} and "
                "rerun `package` to download it again"
            ) from None


def _tree_size(root: Path) -> tuple[int, int]:
    files = nbytes = 0
    for dirpath, _dirs, filenames in os.walk(root):
        for name in filenames:
            files += 1
            nbytes += os.lstat(os.path.join(dirpath, name)).st_size
    return files, nbytes


def stage_sklearn_dependencies(
    versions: dict[str, str],
    runtime: str,
    architecture: str,
    dest: Path,
    reporter: Reporter,
    *,
    platforms: list[str] | None = None,
) -> StageReport:
    """Put scikit-learn and its closure, for `runtime`/`architecture`, slimmed, into `dest`.

    Only what comes from the wheels is slimmed: anything already in `dest` (the runtime code)
    is left alone, except top-level entries the wheels replace. `platforms` overrides the
    manylinux tags derived from the runtime (for tests and local-only trees, never for Lambda).
    """
    version, _ = python_tag(runtime)
    platforms = list(platforms) if platforms else platform_tags(runtime, architecture)
    reqs = requirements(versions)
    wheels, offline, work = _download(reqs, runtime, architecture, platforms, reporter)
    report = StageReport(
        python_version=version,
        architecture=architecture,
        platforms=platforms,
        wheel_cache=str(wheel_cache_dir(runtime, architecture)),
        resolved_offline=offline,
        wheels=[WheelInfo(*wheel_name_version(w.name), w.name, w.stat().st_size) for w in wheels],
    )
    dest.mkdir(parents=True, exist_ok=True)
    unpacked = Path(tempfile.mkdtemp(prefix=f".{dest.name}-wheels-", dir=dest.parent))
    try:
        with reporter.step(f"Unpacking {len(wheels)} wheels"):
            _unpack(wheels, unpacked, wheel_cache_dir(runtime, architecture))
        shutil.rmtree(work, ignore_errors=True)
        report.files_unpacked, report.bytes_unpacked = _tree_size(unpacked)
        with reporter.step("Slimming the dependencies (tests, sources, stubs, caches)"):
            report.removed = slim_tree(unpacked)
            stripped = strip_extensions(unpacked, reporter)
        report.stripped_files, report.stripped_bytes = stripped.files, stripped.bytes_saved
        report.files_kept, report.bytes_kept = _tree_size(unpacked)
        for entry in sorted(unpacked.iterdir()):
            target = dest / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
            report.top_level.append(entry.name)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    reporter.done(
        f"Dependencies: {', '.join(f'{w.name} {w.version}' for w in report.wheels)} — "
        f"{report.bytes_unpacked / 1e6:.1f} MB unpacked, {report.bytes_kept / 1e6:.1f} MB "
        "after slimming"
    )
    return report
