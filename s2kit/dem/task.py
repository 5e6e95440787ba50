"""A task's DEM: the tile's folder (never another tile's) and its private per-task staging."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .check import tile_dem_dir


# ----------------------------------------------------------------------------- a task's DEM
def dem_for_tile(dem_dir: Path | None, tile: str | None, kind: str = "srtm") -> Path | None:
    """``dem_dir/<tile>/`` (or ``dem_dir/T<tile>/``) for SRTM, ``dem_dir/<kind>/<tile>/`` for
    the Copernicus DEM, when it is a folder, else None.

    Never ``dem_dir`` itself nor another tile's (or kind's) folder: a scene without its tile's
    DEM is not processed unless flat terrain was asked for explicitly (``sen2cor.dem = "none"``,
    for which this returns None).
    """
    if kind == "none":
        return None
    return tile_dem_dir(dem_dir, tile, kind)


def dem_files(dem: Path | None, limit: int = 2000) -> list[dict[str, object]]:
    """Name (relative) and size of each DEM file: enough to tell DEM sets apart cheaply."""
    if dem is None:
        return []
    out: list[dict[str, object]] = []
    for dirpath, dirs, files in os.walk(dem):
        dirs.sort()
        for name in sorted(files):
            p = Path(dirpath) / name
            with contextlib.suppress(OSError):
                out.append({"name": p.relative_to(dem).as_posix(), "size": p.stat().st_size})
            if len(out) >= limit:
                return out
    return out


def stage_dem(dem: Path, dest: Path, kind: str = "srtm") -> Path:
    """A private, writable DEM folder for one task: symlinks to the files of *dem*.

    Sen2Cor extracts ``srtm_XX_YY.tif`` from the zip INTO ``DEM_Directory`` and shifts it in
    place, so the shared DEM folder would need to be writable (it is bound read-only in the
    container) and concurrent tasks of one tile would race on the same ``.tif``. A ``.tif``
    with a ``.zip`` of the same name beside it is left out: Sen2Cor would prefer a stale
    leftover to the prepared zip. Sen2Cor 2.12 (Copernicus DEM kinds) only reads the cells,
    but a cell it misses it tries to fetch and unpack into ``DEM_Directory``: private too.
    """
    dest.mkdir(parents=True, exist_ok=True)
    names = sorted(os.listdir(dem))
    zips = {n[:-4].lower() for n in names if n.lower().endswith(".zip")} if kind == "srtm" else set()
    for name in names:
        src = dem / name
        if name.lower().endswith(".tif") and name[:-4].lower() in zips:
            continue
        if src.is_file():
            os.symlink(src.absolute(), dest / name)
    return dest
