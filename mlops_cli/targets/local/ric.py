"""AWS's runtime interface client (`awslambdaric`), staged for the local target's workers.

Lambda's managed Python runtimes run the function under `awslambdaric`; the local target runs the
very same client so that init errors, function errors and the event/response marshalling come
from AWS's code, not ours. What holds:
- The client and its closure are pinned (`PINS`), so a local run is reproducible and a new
  release never changes behaviour under a user's feet.
- The wheels are manylinux wheels for the *worker interpreter's* Python and this machine's
  architecture (the client has a C extension), fetched with the same pip invocation and into the
  same wheel cache as the sklearn flavor's dependencies; once cached, staging is offline.
- The unpacked tree is immutable and keyed by version, Python tag and architecture, so it is
  staged once (atomically: a concurrent deploy never sees half a tree) and shared by every deploy.
- When it cannot be fetched, the error names the package and the command that prefetches it.

`IRIS_MLOPS_RUNTIME_CLIENTS` moves the staged trees elsewhere (default: the cache dir), e.g. to
share one copy between test sandboxes.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import tempfile
from pathlib import Path

from mlops_cli.artifacts import cache_dir
from mlops_cli.console import Reporter
from mlops_cli.errors import IrisError
from mlops_cli.packaging.sklearn_deps import (
    ARCH_MACHINE,
    _download,
    _unpack,
    platform_tags,
    wheel_cache_dir,
)

# awslambdaric 4.0.1 requires simplejson and snapshot-restore-py; pinning the closure too keeps
# the staged tree the same on every machine.
PINS = {"awslambdaric": "4.0.1", "simplejson": "4.3.0", "snapshot-restore-py": "1.0.0"}
CLIENT_MODULE = "awslambdaric"
_MARKER = ".iris-staged"


def requirements() -> list[str]:
    return [f"{name}=={version}" for name, version in PINS.items()]


def local_architecture() -> str:
    """Lambda's name for this machine's architecture (the workers run here, not on Lambda)."""
    machine = platform.machine().lower()
    for lambda_name, uname in ARCH_MACHINE.items():
        if machine in (uname, lambda_name, "amd64" if uname == "x86_64" else uname):
            return lambda_name
    raise IrisError(
        f"the local target runs awslambdaric, which publishes wheels for x86_64 and aarch64 "
        f"only; this machine is {machine}"
    )


def clients_dir() -> Path:
    explicit = os.environ.get("IRIS_MLOPS_RUNTIME_CLIENTS")
    return Path(explicit) if explicit else cache_dir() / "runtime-client"


def client_dir(python_version: str, architecture: str) -> Path:
    tag = f"cp{python_version.replace('.', '')}"
    return clients_dir() / f"awslambdaric-{PINS['awslambdaric']}-{tag}-{architecture}"


def prefetch_command(python_version: str, architecture: str) -> str:
    """The pip command that fills the wheel cache, for a machine that is offline at deploy."""
    runtime = f"python{python_version}"
    tag = f"cp{python_version.replace('.', '')}"
    cmd = [
        "python3", "-m", "pip", "download", "--only-binary=:all:",
        "--python-version", python_version, "--implementation", "cp", "--abi", tag,
    ]
    for platform_tag in platform_tags(runtime, architecture):
        cmd += ["--platform", platform_tag]
    cmd += ["--dest", str(wheel_cache_dir(runtime, architecture)), *requirements()]
    return shlex.join(cmd)


def ensure_client(python_version: str, reporter: Reporter) -> Path:
    """The directory holding `awslambdaric` for Python `python_version` (staged on first use)."""
    architecture = local_architecture()
    target = client_dir(python_version, architecture)
    if (target / _MARKER).is_file():
        return target
    runtime = f"python{python_version}"
    try:
        wheels, _offline, work = _download(
            requirements(), runtime, architecture, platform_tags(runtime, architecture), reporter
        )
    except IrisError as exc:
        raise IrisError(
            f"cannot get the Lambda runtime interface client awslambdaric=="
            f"{PINS['awslambdaric']} for Python {python_version} ({architecture}), which the "
            f"local target runs its workers under: {exc}\nPrefetch it where PyPI is reachable "
            f"with:\n  {prefetch_command(python_version, architecture)}"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with reporter.step(f"Staging awslambdaric {PINS['awslambdaric']} for Python "
                           f"{python_version}"):
            _unpack(wheels, staging, wheel_cache_dir(runtime, architecture))
            if not (staging / CLIENT_MODULE / "__main__.py").is_file():
                raise IrisError(f"the awslambdaric wheel in {work} holds no {CLIENT_MODULE} "
                                "package; delete it from the wheel cache and deploy again")
            (staging / _MARKER).write_text(" ".join(requirements()) + "\n")
            try:
                os.rename(staging, target)
            except OSError:
                if not (target / _MARKER).is_file():
                    raise  # not a concurrent stager winning the race: a real failure
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return target
