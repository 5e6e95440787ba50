"""The L1C input of one task, staged in scratch: Sen2Cor never gets the user's L1C store.

A ``.SAFE`` folder becomes a symlink tree (:func:`symlink_tree`: folders recreated, files
symlinked), a ``.zip`` is extracted (:func:`extract_zip`: members that would land outside the
target are refused). Whatever Sen2Cor writes next to its input lands in scratch.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

from .errors import InputError

__all__ = ["extract_zip", "symlink_tree"]


def extract_zip(zip_path: Path, dest: Path, scene: str) -> Path:
    """Extract an L1C zip into *dest*; return the ``.SAFE`` folder. Zip-slip safe.

    ESA zips hold one top folder ``X.SAFE/``; a zip without it is extracted into
    ``dest/<scene>.SAFE``. Absolute names, ``..``, and symlink members are refused, and the
    uncompressed size must fit in the free space of *dest*.
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"expected a readable zip, found: {exc}", zip_path) from exc
    with zf:
        infos = zf.infolist()
        tops = {i.filename.replace("\\", "/").lstrip("/").split("/", 1)[0] for i in infos}
        single = next(iter(tops)) if len(tops) == 1 else None
        if single and single.upper().endswith(".SAFE") and any("/" in i.filename for i in infos):
            root, product = dest, dest / single
        else:
            root = product = dest / f"{scene}.SAFE"
        root_real = os.path.realpath(root)
        need = sum(i.file_size for i in infos)
        free = shutil.disk_usage(dest).free
        if need > free:
            raise InputError(
                f"expected {need / 1024**3:.1f} GB free in scratch to extract, found {free / 1024**3:.1f} GB",
                dest,
            )
        for info in infos:
            name = info.filename
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise InputError(f"zip member {name!r} is a symbolic link: refused", zip_path)
            if name.startswith(("/", "\\")) or "\\" in name or ".." in name.split("/") or ":" in name[:2]:
                raise InputError(
                    f"zip member {name!r} would be written outside the product: refused", zip_path
                )
            target = os.path.realpath(os.path.join(root, name))
            if target != root_real and not target.startswith(root_real + os.sep):
                raise InputError(
                    f"zip member {name!r} would be written outside the product: refused", zip_path
                )
        try:
            for info in infos:
                zf.extract(info, root)
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise InputError(f"expected an intact zip, extraction failed: {exc}", zip_path) from exc
    if not product.is_dir():
        raise InputError("expected a .SAFE folder in the zip, found none", zip_path)
    return product


def symlink_tree(src: Path, dst: Path) -> None:
    """Same folders as *src* (recreated, so new files land in *dst*), each file a symlink to
    the original (cheap, read-only data); a symlinked folder stays a symlink."""
    for dirpath, dirs, files in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        target = dst / rel if rel != "." else dst
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.symlink(os.path.join(os.path.abspath(dirpath), name), target / name)
        for name in [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            os.symlink(os.path.join(os.path.abspath(dirpath), name), target / name)
            dirs.remove(name)
        dirs.sort()
