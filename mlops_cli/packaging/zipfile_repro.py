"""Byte-for-byte reproducible zips: sorted entries, fixed timestamps and permissions.

Lambda compares `CodeSha256`, so a zip that changed only because of file times would make every
deploy look like a code change.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--
EXEC_MODE = 0o100755 << 16


def tree_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file below root as (posix arcname, path), sorted; links are refused."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                raise ValueError(f"refusing to package a symbolic link: {path}")
            found.append((path.relative_to(root).as_posix(), path))
    found.sort(key=lambda item: item[0])
    return found


def write_reproducible_zip(root: Path, destination: Path, level: int = 9) -> tuple[int, int]:
    """Zip `root` into `destination`; returns (file count, unzipped bytes)."""
    files = tree_files(root)
    unzipped = 0
    tmp = destination.with_name(destination.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for arcname, path in files:
            info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = EXEC_MODE if os.access(path, os.X_OK) and path.suffix == ".so" \
                else FILE_MODE
            info.create_system = 3  # unix, so the mode bits are honoured when unpacked
            data = path.read_bytes()
            unzipped += len(data)
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=level)
    os.replace(tmp, destination)
    return len(files), unzipped


def top_level_sizes(root: Path) -> dict[str, int]:
    """Unzipped bytes per top-level entry, for the size report."""
    sizes: dict[str, int] = {}
    for arcname, path in tree_files(root):
        head = arcname.split("/", 1)[0]
        sizes[head] = sizes.get(head, 0) + path.stat().st_size
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))
