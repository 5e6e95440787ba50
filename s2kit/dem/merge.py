"""SRTM zips checked and read in memory, windows merged into one DEM for a tile."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tiles import (
    SRTM_COLUMNS,
    SRTM_NORTH,
    SRTM_TILE_DEG,
    TileGeometry,
    parse_srtm_name,
    srtm_tile_bounds,
)
from .base import (
    _GTIFF_OPTIONS,
    SRTM_NODATA,
    DemError,
)
from .source import SourceTile, _read_member


# ----------------------------------------------------------------------------- rasters
@dataclass(frozen=True)
class _Grid:
    res: float  # degrees per pixel
    per_tile: int  # pixels per 5° tile
    dx: float  # origin offset from the 5° lines, degrees (0 for CGIAR v4.1)
    dy: float


def _is_wgs84_lonlat(wkt: str) -> bool:
    from pyproj import CRS

    crs = CRS.from_wkt(wkt)
    if crs.to_epsg() == 4326:
        return True
    datum = crs.datum.name if crs.datum is not None else ""
    return crs.is_geographic and "WGS" in datum and "84" in datum


def _check_source_raster(ds: Any, name: str, origin: str) -> _Grid:
    where = f"{name}.tif from {origin}"

    def fail(expected: str, found: object) -> DemError:
        return DemError(f"{where}: expected {expected}, found {found}")

    if ds.driver != "GTiff":
        raise fail("a GeoTIFF", f"a {ds.driver} raster")
    if ds.count != 1:
        raise fail("1 band", f"{ds.count} bands")
    if ds.dtypes[0] != "int16":
        raise fail("Int16 elevations", ds.dtypes[0])
    if ds.crs is None:
        raise fail("a WGS 84 lon/lat CRS", "no CRS")
    if not _is_wgs84_lonlat(ds.crs.to_wkt()):
        raise fail("a WGS 84 lon/lat CRS (EPSG:4326)", ds.crs.to_string())
    t = ds.transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0 or not math.isclose(t.a, -t.e, rel_tol=1e-9):
        raise fail("square north-up pixels", f"transform {tuple(t)[:6]}")
    per_tile_f = SRTM_TILE_DEG / t.a
    per_tile = round(per_tile_f)
    if per_tile < 2 or abs(per_tile_f - per_tile) > 1e-6 * per_tile:
        raise fail("a pixel size dividing 5° (CGIAR: 1/1200°, 6000x6000)", f"{t.a!r}°")
    if ds.width != per_tile or ds.height != per_tile:
        raise fail(f"{per_tile}x{per_tile} pixels (5°x5° at {t.a:.9g}°)", f"{ds.width}x{ds.height}")
    west, _, _, north = srtm_tile_bounds(name)
    dx, dy = t.c - west, t.f - north
    if abs(dx) > 0.51 * t.a or abs(dy) > 0.51 * t.a:
        raise fail(f"the 5°x5° tile at ({west:g}, {north:g})", f"origin ({t.c:.6f}, {t.f:.6f})")
    if ds.nodata is not None and ds.nodata != SRTM_NODATA:
        raise fail(f"nodata {SRTM_NODATA} (CGIAR SRTM)", ds.nodata)
    return _Grid(res=t.a, per_tile=per_tile, dx=dx, dy=dy)


def _snap(value: float, how: Callable[[float], int]) -> int:
    nearest = round(value)
    return int(nearest) if abs(value - nearest) < 1e-6 else how(value)


@dataclass(frozen=True)
class _Window:
    col0: int
    col1: int
    row0: int
    row1: int
    grid: _Grid

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        g = self.grid
        west = -180.0 + g.dx + self.col0 * g.res
        north = SRTM_NORTH + g.dy - self.row0 * g.res
        return west, north - (self.row1 - self.row0) * g.res, west + (self.col1 - self.col0) * g.res, north

    def names(self) -> tuple[str, ...]:
        n = self.grid.per_tile
        out = set()
        for row in range(self.row0 // n, (self.row1 - 1) // n + 1):
            for col in range(self.col0 // n, (self.col1 - 1) // n + 1):
                out.add(f"srtm_{col % SRTM_COLUMNS + 1:02d}_{row + 1:02d}")
        return tuple(sorted(out))


def _window(bounds: tuple[float, float, float, float], grid: _Grid) -> _Window:
    west, south, east, north = bounds
    x0, y0 = -180.0 + grid.dx, SRTM_NORTH + grid.dy
    col0 = _snap((west - x0) / grid.res, math.floor)
    col1 = _snap((east - x0) / grid.res, math.ceil)
    row0 = max(_snap((y0 - north) / grid.res, math.floor), 0)
    row1 = _snap((y0 - south) / grid.res, math.ceil)
    return _Window(col0, col1, row0, row1, grid)


@dataclass(frozen=True)
class MergedDem:
    path: Path
    bounds: tuple[float, float, float, float]
    width: int
    height: int
    res: float
    names: tuple[str, ...]
    stats: dict[str, Any]


@dataclass(frozen=True)
class _Part:
    """The pixels of one SRTM tile inside a Sentinel-2 tile's window (a copy, on the SRTM grid)."""

    name: str
    grid: _Grid
    window: _Window
    data: Any  # int16 array, None when the tile does not reach into the window
    transform: Any  # of *data*; moved by +360° for a tile east of the antimeridian
    crs: Any
    nodata: float | None
    layout: dict[str, Any]  # the source's GeoTIFF block layout (the merged file follows the first)


def _load_part(name: str, src: SourceTile, lonlat_bounds: tuple[float, float, float, float]) -> _Part:
    """Inflate ``<name>.tif`` in memory (CRC-checked), check it, keep only the window's pixels."""
    import rasterio  # type: ignore[import-untyped]
    from affine import Affine
    from rasterio.io import MemoryFile  # type: ignore[import-untyped]
    from rasterio.windows import Window  # type: ignore[import-untyped]

    assert src.path is not None
    raw = _read_member(src.path, name)
    try:
        with MemoryFile(raw) as mem, mem.open() as ds:
            grid = _check_source_raster(ds, name, src.origin)
            window = _window(lonlat_bounds, grid)
            n = grid.per_tile
            col, row = parse_srtm_name(name)
            c_origin, r_origin, shift = (col - 1) * n, (row - 1) * n, 0.0
            if c_origin + n <= window.col0:
                # the window runs past 180°: this tile lies east of the antimeridian, move it by +360°
                c_origin, shift = c_origin + SRTM_COLUMNS * n, 360.0
            c0, c1 = max(window.col0 - c_origin, 0), min(window.col1 - c_origin, n)
            r0, r1 = max(window.row0 - r_origin, 0), min(window.row1 - r_origin, n)
            data = transform = None
            if c0 < c1 and r0 < r1:
                win = Window(c0, r0, c1 - c0, r1 - r0)
                data = ds.read(1, window=win)
                t = ds.window_transform(win)
                transform = Affine(t.a, t.b, t.c + shift, t.d, t.e, t.f)
            profile = ds.profile
            layout = (
                {"tiled": True, "blockxsize": profile["blockxsize"], "blockysize": profile["blockysize"]}
                if profile.get("tiled")
                else {"blockysize": profile["blockysize"]}
            )
            return _Part(name, grid, window, data, transform, ds.crs, ds.nodata, layout)
    except rasterio.errors.RasterioIOError as exc:
        found = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DemError(f"{name}.tif from {src.origin}: expected a readable GeoTIFF, found {found}") from None


def merge_srtm(
    geometry: TileGeometry, sources: dict[str, SourceTile], workdir: Path, out_tif: Path
) -> MergedDem:
    """Merge the source tiles into *out_tif*: the tile footprint + margin, on the SRTM grid.

    Each member is inflated in memory (CRC-checked; the source tiles in parallel threads: zlib
    and GDAL release the GIL) and only the pixels inside the window are kept; nothing is
    extracted to disk. *workdir* is kept for callers; it is not written to.
    """
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.merge import merge  # type: ignore[import-untyped]

    present = {n: s for n, s in sources.items() if s.path is not None}
    if not present:
        raise DemError(
            f"tile {geometry.tile}: expected at least one SRTM tile at the source, found none of "
            f"{', '.join(sorted(sources))}"
        )
    order = sorted(present)
    workers = max(1, min(len(order), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s2kit-srtm") as pool:
        futures = [pool.submit(_load_part, name, present[name], geometry.lonlat_bounds) for name in order]
        parts = {name: future.result() for name, future in zip(order, futures, strict=True)}
    first = parts[order[0]].grid
    for name, part in parts.items():
        grid = part.grid
        if (
            not math.isclose(grid.res, first.res, rel_tol=1e-9)
            or abs(grid.dx - first.dx) > 1e-6 * first.res * first.per_tile
            or abs(grid.dy - first.dy) > 1e-6 * first.res * first.per_tile
        ):
            raise DemError(
                f"{name}.tif: expected the pixel grid of the other SRTM tiles "
                f"({first.res:.9g}°, origin offset {first.dx:.3g}/{first.dy:.3g}°), found "
                f"{grid.res:.9g}°, offset {grid.dx:.3g}/{grid.dy:.3g}°"
            )
    window = parts[order[0]].window
    names = tuple(sorted(set(window.names()) | set(geometry.srtm_tiles)))
    missing = [n for n in names if n not in present]
    unknown = [n for n in missing if n not in sources]
    if unknown:  # only on a shifted grid: a pixel row/column of a neighbour tile
        raise DemError(
            f"tile {geometry.tile}: the snapped window also touches {', '.join(unknown)}; "
            "expected the source grid to be aligned to the 5° lines"
        )
    bounds = window.bounds
    # rasterio.merge gives the output the first source's profile: its block layout is the whole
    # tile's (as when whole tiles were merged), not that of the window copy
    layout = parts[next(n for n in names if n in parts)].layout
    with contextlib.ExitStack() as stack:
        datasets = []
        for name in names:
            piece = parts.get(name)
            if piece is None or piece.data is None:
                continue
            mem = stack.enter_context(MemoryFile())
            height, width = piece.data.shape
            profile: dict[str, Any] = {
                "driver": "GTiff",
                "width": width,
                "height": height,
                "count": 1,
                "dtype": "int16",
            }
            profile.update(piece.layout, crs=piece.crs, transform=piece.transform, nodata=piece.nodata)
            with mem.open(**profile) as dst:
                dst.write(piece.data, 1)
            datasets.append(stack.enter_context(mem.open()))
        parts.clear()  # the windows' pixels now live in the in-memory datasets only
        merge(
            datasets,
            bounds=bounds,
            res=(first.res, first.res),
            nodata=SRTM_NODATA,
            dtype="int16",
            method="first",
            dst_path=out_tif,
            dst_kwds={"driver": "GTiff", **layout, **_GTIFF_OPTIONS},
        )
    with rasterio.open(out_tif) as out:
        data = out.read(1)
        valid = data != SRTM_NODATA
        stats = {
            "nodata_pixels": int(data.size - int(np.count_nonzero(valid))),
            "min": int(data[valid].min()) if valid.any() else None,
            "max": int(data[valid].max()) if valid.any() else None,
        }
        width, height = out.width, out.height
    return MergedDem(out_tif, bounds, width, height, first.res, names, stats)
