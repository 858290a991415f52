"""Staging the sklearn flavor's wheels, with pip replaced by a fake: no network, fast."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from mlops_cli.console import NullReporter
from mlops_cli.errors import IrisError, UsageError
from mlops_cli.packaging import sklearn_deps
from mlops_cli.packaging.sklearn_deps import (
    key_pip_line,
    platform_tags,
    requirements,
    stage_sklearn_dependencies,
    wheel_name_version,
    wheel_target,
)

VERSIONS = {"python": "3.11.7", "scikit-learn": "1.9.1", "numpy": "2.4.6", "joblib": "1.6.0"}


def test_al2023_runtimes_accept_manylinux_2_28_and_older_tags() -> None:
    tags = platform_tags("python3.12", "x86_64")
    assert tags[0] == "manylinux_2_34_x86_64"
    assert "manylinux_2_28_x86_64" in tags
    assert tags[-1] == "manylinux2014_x86_64"


def test_al2_runtimes_never_accept_wheels_needing_a_newer_glibc() -> None:
    tags = platform_tags("python3.11", "arm64")
    assert tags[0] == "manylinux_2_26_aarch64"
    assert "manylinux_2_28_aarch64" not in tags
    assert tags[-1] == "manylinux2014_aarch64"


@pytest.mark.parametrize(("runtime", "arch"), [("python3.12", "amd64"), ("nodejs20.x", "x86_64")])
def test_unknown_runtime_or_architecture_is_a_usage_error(runtime: str, arch: str) -> None:
    with pytest.raises(UsageError):
        platform_tags(runtime, arch)


def test_requirements_pin_every_trained_library_but_not_python() -> None:
    extra = {**VERSIONS, "scipy": "1.17.1"}
    assert requirements(extra) == [
        "joblib==1.6.0",
        "numpy==2.4.6",
        "scikit-learn==1.9.1",
        "scipy==1.17.1",
    ]


def test_a_manifest_without_library_versions_asks_for_a_retrain() -> None:
    with pytest.raises(IrisError, match=r"numpy.*retrain"):
        requirements({"scikit-learn": "1.9.1", "joblib": "1.6.0"})


@pytest.mark.parametrize(
    ("member", "target"),
    [
        ("sklearn/__init__.py", "sklearn/__init__.py"),
        ("pkg-1.0.data/purelib/extra.py", "extra.py"),
        ("pkg-1.0.data/platlib/pkg/_c.so", "pkg/_c.so"),
        ("pkg-1.0.data/scripts/tool", None),
        ("pkg-1.0.data/headers/x.h", None),
        ("../escape.py", None),
        ("/abs.py", None),
        ("pkg/", None),
    ],
)
def test_wheel_members_land_where_an_installer_would_put_them(
    member: str, target: str | None
) -> None:
    assert wheel_target(member) == target


def test_wheel_file_names_give_normalized_name_and_version() -> None:
    assert wheel_name_version(
        "scikit_learn-1.9.1-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
    ) == ("scikit-learn", "1.9.1")


def test_key_pip_line_is_the_error_with_only_the_newest_versions() -> None:
    output = (
        "Looking in indexes: https://pypi.org/simple\n"
        "ERROR: Could not find a version that satisfies the requirement numpy==2.4.6 "
        "(from versions: 1.23.2, 1.24.0, 2.0.0, 2.1.0, 2.2.5, 2.2.6)\n"
        "ERROR: No matching distribution found for numpy==2.4.6\n"
    )
    line = key_pip_line(output)
    assert line.startswith("ERROR: Could not find a version")
    assert "(newest available: 2.0.0, 2.1.0, 2.2.5, 2.2.6)" in line
    assert "1.23.2" not in line


# -- the whole stage, with a fake pip --------------------------------------------------------


def _wheel(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _fake_wheels(dest: Path) -> None:
    _wheel(
        dest / "demo-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        {
            "demo/__init__.py": b"VALUE = 1\n",
            "demo/tests/test_demo.py": b"x" * 1000,
            "demo/_core.pyi": b"y" * 10,
            "demo-1.0.data/purelib/demo_extra.py": b"EXTRA = 2\n",
            "demo-1.0.data/scripts/demo-tool": b"#!/bin/sh\n",
            "demo-1.0.dist-info/METADATA": b"Name: demo\nVersion: 1.0\n",
            "demo-1.0.dist-info/RECORD": b"z" * 50,
        },
    )
    _wheel(
        dest / "helper_lib-2.0-py3-none-any.whl",
        {"helper_lib.py": b"H = 3\n", "helper_lib-2.0.dist-info/METADATA": b"Name: helper-lib\n"},
    )


class FakePip:
    """Stands in for `_pip_download`: records calls, succeeds or fails as told."""

    def __init__(self, offline_ok: bool = True, online_output: str | None = None) -> None:
        self.calls: list[bool] = []
        self.offline_ok = offline_ok
        self.online_output = online_output

    def __call__(
        self,
        reqs: list[str],
        runtime: str,
        platforms: list[str],
        dest: Path,
        cache: Path,
        offline: bool,
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append(offline)
        if offline and not self.offline_ok:
            return subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution\n")
        if not offline and self.online_output is not None:
            return subprocess.CompletedProcess([], 1, self.online_output, "")
        _fake_wheels(dest)
        return subprocess.CompletedProcess([], 0, "", "")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(root))
    return root


def test_stage_unpacks_slims_and_reports_without_touching_existing_files(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePip()
    monkeypatch.setattr(sklearn_deps, "_pip_download", fake)
    dest = tmp_path / "root"
    ours = dest / "iris_runtime" / "__pycache__" / "handler.cpython-312.pyc"
    ours.parent.mkdir(parents=True)
    ours.write_bytes(b"compiled by the zip builder")

    report = stage_sklearn_dependencies(VERSIONS, "python3.12", "x86_64", dest, NullReporter())

    assert fake.calls == [False]  # empty cache: straight to the index
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == [
        "demo-1.0.dist-info/METADATA",
        "demo/__init__.py",
        "demo_extra.py",
        "helper_lib-2.0.dist-info/METADATA",
        "helper_lib.py",
        "iris_runtime/__pycache__/handler.cpython-312.pyc",
    ]
    assert report.versions == {"demo": "1.0", "helper-lib": "2.0"}
    assert report.removed == {"tests": (1, 1000), "type-stubs": (1, 10), "wheel-record": (1, 50)}
    assert report.bytes_unpacked - report.bytes_kept == 1060
    assert report.to_dict()["removed"]["tests"]["reason"]
    assert sorted((cache / "wheels" / "cp312-x86_64").glob("*.whl"))  # cached for next time
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_second_stage_resolves_from_the_wheel_cache_only(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePip()
    monkeypatch.setattr(sklearn_deps, "_pip_download", fake)
    stage_sklearn_dependencies(VERSIONS, "python3.12", "x86_64", tmp_path / "a", NullReporter())
    report = stage_sklearn_dependencies(
        VERSIONS, "python3.12", "x86_64", tmp_path / "b", NullReporter()
    )

    assert fake.calls == [False, True]
    assert report.resolved_offline


def test_cache_that_cannot_satisfy_the_pins_falls_back_to_the_index(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = cache / "wheels" / "cp312-x86_64"
    wheels.mkdir(parents=True)
    _wheel(wheels / "old-0.1-py3-none-any.whl", {"old.py": b""})
    fake = FakePip(offline_ok=False)
    monkeypatch.setattr(sklearn_deps, "_pip_download", fake)

    report = stage_sklearn_dependencies(
        VERSIONS, "python3.12", "x86_64", tmp_path / "root", NullReporter()
    )

    assert fake.calls == [True, False]
    assert not report.resolved_offline
    assert (tmp_path / "root" / "demo" / "__init__.py").is_file()


def test_al2_runtime_without_matching_wheels_explains_the_glibc_gap(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = (
        "ERROR: Could not find a version that satisfies the requirement numpy==2.4.6 "
        "(from versions: 2.2.5, 2.2.6)\nERROR: No matching distribution found for numpy==2.4.6\n"
    )
    monkeypatch.setattr(sklearn_deps, "_pip_download", FakePip(online_output=output))

    with pytest.raises(IrisError) as excinfo:
        stage_sklearn_dependencies(VERSIONS, "python3.11", "x86_64", tmp_path / "r", NullReporter())

    message = str(excinfo.value)
    assert "numpy==2.4.6" in message and "Amazon Linux 2" in message and "python3.12" in message
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_no_network_says_to_check_access_to_pypi(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = (
        "WARNING: Retrying ... NewConnectionError\n"
        "ERROR: Could not find a version that satisfies the requirement joblib==1.6.0 "
        "(from versions: none)\n"
    )
    monkeypatch.setattr(sklearn_deps, "_pip_download", FakePip(online_output=output))

    with pytest.raises(IrisError, match="network access to PyPI"):
        stage_sklearn_dependencies(VERSIONS, "python3.12", "arm64", tmp_path / "r", NullReporter())


def test_a_corrupt_cached_wheel_names_itself(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def corrupt(*args: object, **_kw: object) -> subprocess.CompletedProcess[str]:
        dest = args[3]
        assert isinstance(dest, Path)
        (dest / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(sklearn_deps, "_pip_download", corrupt)

    with pytest.raises(IrisError, match=r"broken-1\.0-py3-none-any\.whl.*delete it"):
        stage_sklearn_dependencies(VERSIONS, "python3.12", "x86_64", tmp_path / "r", NullReporter())
