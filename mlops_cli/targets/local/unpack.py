"""Unpack a Lambda zip into the cache, once per content hash, refusing anything unsafe.

A zip is untrusted input as far as the file system is concerned: an entry named `../x` or `/x`
(zip-slip) or a symlink entry would write outside the cache. Lambda itself refuses packages over
its unzipped limit, so the emulator does too rather than succeed where AWS would fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path

from mlops_cli.errors import IrisError
from mlops_cli.packaging.result import UNZIPPED_LIMIT


class UnsafePackageError(IrisError):
    pass


def unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Why this entry must not be extracted, or None when it is a plain file or directory."""
    name = info.filename
    if not name or "\0" in name:
        return "has an empty or NUL-containing name"
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return "is an absolute path"
    if any(part == ".." for part in normalized.split("/")):
        return "climbs out of the package with '..'"
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is not a regular file or directory"
    return None


def check_members(infos: list[zipfile.ZipInfo], zip_name: str) -> None:
    for info in infos:
        reason = unsafe_reason(info)
        if reason:
            raise UnsafePackageError(
                f"{zip_name}: refusing to unpack entry {info.filename!r}: it {reason}. "
                "Rebuild the package with `iris-mlops package`."
            )
    total = sum(info.file_size for info in infos)
    if total > UNZIPPED_LIMIT:
        raise UnsafePackageError(
            f"{zip_name}: unzipped size {total:,} bytes is over Lambda's limit of "
            f"{UNZIPPED_LIMIT:,} bytes; Lambda would refuse it too (slim the package)."
        )


def _extract(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dest: Path) -> None:
    base = dest.resolve()
    for info in infos:
        target = (dest / info.filename.replace("\\", "/")).resolve()
        if target != base and base not in target.parents:
            raise UnsafePackageError(f"refusing to unpack {info.filename!r} outside {dest}")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(target, (mode | 0o400) if mode else 0o644)


def unpack(zip_path: Path, sha256: str, cache: Path) -> Path:
    """`cache/<sha256>/`, extracted atomically (temp dir, then rename) on first use."""
    dest = cache / sha256
    if dest.is_dir():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise IrisError(f"cannot read the package {zip_path}: {exc}; rebuild it") from None
    with archive:
        infos = archive.infolist()
        check_members(infos, str(zip_path))
        tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f".{sha256[:12]}."))
        try:
            _extract(archive, infos, tmp)
            try:
                os.rename(tmp, dest)
            except OSError:
                if not dest.is_dir():  # anything but "another deploy unpacked it first"
                    raise
        except (OSError, zipfile.BadZipFile) as exc:
            raise IrisError(f"cannot unpack {zip_path} into {cache}: {exc}") from None
        finally:
            with contextlib.suppress(OSError):
                if tmp.exists():
                    shutil.rmtree(tmp)
    return dest
