"""Unpacking a package for the local target never writes outside the cache."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from mlops_cli.targets.local.unpack import UnsafePackageError, unpack, unsafe_reason


def _info(name: str, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


@pytest.mark.parametrize(
    "name",
    ["../evil.py", "a/../../evil.py", "/etc/passwd", "C:/evil", "..\\evil.py", "a\\..\\..\\x", ""],
)
def test_entries_that_escape_the_target_dir_are_refused(name):
    assert unsafe_reason(_info(name)) is not None


def test_symlink_and_device_entries_are_refused():
    assert "symbolic link" in unsafe_reason(_info("link", stat.S_IFLNK | 0o777))
    assert unsafe_reason(_info("fifo", stat.S_IFIFO | 0o644)) is not None


@pytest.mark.parametrize("name", ["iris_runtime/handler.py", "model/", "a..b/c", "x/.hidden"])
def test_ordinary_entries_are_accepted(name):
    assert unsafe_reason(_info(name)) is None
    assert unsafe_reason(zipfile.ZipInfo(name)) is None  # zips made on Windows carry no mode


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def test_unpack_extracts_once_per_hash_and_reuses_the_cache(tmp_path):
    zip_path = _zip(tmp_path / "ok.zip", [(_info("iris_runtime/handler.py"), b"x = 1\n")])
    cache = tmp_path / "cache"
    root = unpack(zip_path, "abc123", cache)
    assert root == cache / "abc123"
    assert (root / "iris_runtime" / "handler.py").read_text() == "x = 1\n"
    (root / "marker").write_text("kept")
    assert unpack(zip_path, "abc123", cache) == root
    assert (root / "marker").exists()
    assert [p.name for p in cache.iterdir()] == ["abc123"]  # no temp dirs left behind


def test_unpack_refuses_a_zip_slip_entry_and_leaves_nothing(tmp_path):
    zip_path = _zip(tmp_path / "evil.zip", [
        (_info("iris_runtime/handler.py"), b""),
        (_info("../../escaped.py"), b"boom"),
    ])
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(UnsafePackageError, match=r"escaped\.py"):
        unpack(zip_path, "evil", cache)
    assert not (tmp_path / "escaped.py").exists()
    assert not (tmp_path / "deep" / "escaped.py").exists()
    assert list(cache.iterdir()) == []


def test_unpack_refuses_a_symlink_entry(tmp_path):
    zip_path = _zip(tmp_path / "link.zip", [(_info("x", stat.S_IFLNK | 0o777), b"/etc/passwd")])
    with pytest.raises(UnsafePackageError, match="symbolic link"):
        unpack(zip_path, "link", tmp_path / "cache")


def test_a_damaged_zip_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(Exception, match="rebuild"):
        unpack(bad, "bad", tmp_path / "cache")
