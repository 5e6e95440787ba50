"""SRTM DEM sets per Sentinel-2 tile, with the lab's fix for Sen2Cor 2.9's SRTM merging.

What Sen2Cor does with a DEM (2.8.0 source, ``L2A_Tables.gdalDEM_srtm`` and ``SIIMPC_577``,
mirrored in the public repository c-core-labs/sen2cor; 2.9's source is not public):

* it derives the SRTM tile names ``srtm_XX_YY`` from the tile corners (see :mod:`s2kit.tiles`);
* for each name, if ``DEM_Directory/srtm_XX_YY.tif`` is missing it fetches
  ``DEM_Reference + 'srtm_XX_YY.zip'`` (plain string concatenation - hence the trailing ``/``;
  with ``DEM_Reference`` = the DEM directory it reads the local zip), checks it with
  ``ZipFile.testzip()`` and extracts the member ``srtm_XX_YY.tif`` *into the DEM directory*,
  then moves that tif's geotransform half a pixel west and south (SIIMPC-577);
* it mosaics the tifs with ``gdalwarp -ot Int16`` (with ``--config CENTER_LONG 180`` across
  the antimeridian), sets ``-32768`` (``NODATA_DEM``) to 0 and warps to the tile's UTM grid.

Sen2Cor 2.9 merges neighbouring SRTM tiles wrongly (seams in L2A; STEP forum thread
"question about geometric relict in L2A converted images", 2021). The lab's fix (SEAL lab
how-to "Manual Batch S2 L2A sen2cor conversion", 2021): merge the needed tiles once and put a
copy of the merged DEM in a zip under *each* original name. Sen2Cor then mosaics N identical
copies of a correct DEM. This module does that per Sentinel-2 tile:

* needed names = every SRTM tile the footprint + margin touches (a superset of Sen2Cor's);
* each ``srtm_XX_YY.zip`` comes from a local folder (or mirror) or a base URL (default: the
  CGIAR address in Sen2Cor 2.9's own ``L2A_GIPP.xml`` comment), downloads resumable
  (:mod:`s2kit.http`), size and SHA-256 recorded in ``<cache>/manifest.json``;
* zips are checked (no member with an absolute or ``..`` path; exactly ``srtm_XX_YY.tif``; CRC)
  and only that member is extracted, to a name s2kit chooses (zip-slip-safe);
* rasters are checked (GeoTIFF, 1 band, Int16, WGS 84, square pixels, 5°x5°, nodata -32768 or
  unset: CGIAR v4.1 tiles are 6000x6000 Int16 with nodata -32768);
* ``rasterio.merge`` copies them (no resampling: the window is snapped outward to the SRTM
  pixel grid) into one Int16 GeoTIFF with nodata -32768 kept as such - Sen2Cor maps it to 0
  itself after its mosaic; tiles missing at the source (CGIAR has no all-ocean tiles) are
  refused unless ``allow_missing``, then filled with -32768;
* ``<out>/<tile>/srtm_XX_YY.zip`` for every needed name, each holding ``srtm_XX_YY.tif`` = the
  merged DEM (the GeoTIFF is DEFLATE-compressed once; the zips store it, so each zip is a
  byte copy of the same DEM), and ``dem.json`` recording source tiles, checksums and bounds.
  The set is built in a staging folder and renamed into place: never half-written.

A second run with the same tile, margin and source finds ``dem.json`` and a valid set and does
nothing. :func:`check_dem` verifies a prepared set.

Sen2Cor writes into the DEM directory at run time (the extracted ``.tif``, shifted in place),
so the directory must be writable by the job, and a ``.tif`` left there takes precedence over
the zip.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from . import __version__
from .errors import InputError, S2kitError, display_path
from .findings import Finding, Severity
from .fsutil import atomic_write_text, flocked
from .http import HttpClient, HttpError, HttpNotFound, SourceUnreachable, is_url, redact_url, sha256_file
from .tiles import (
    DEFAULT_MARGIN_M,
    SRTM_COLUMNS,
    SRTM_NORTH,
    SRTM_SOUTH,
    SRTM_TILE_DEG,
    TileGeometry,
    normalize_tile,
    parse_srtm_name,
    srtm_tile_bounds,
    tile_geometry,
)

__all__ = [
    "CGIAR_SRTM_URL",
    "CGIAR_SRTM_URL_SEN2COR_28",
    "DEM_JSON",
    "SRTM_NODATA",
    "DemCheck",
    "DemError",
    "DemFinding",
    "PrepareResult",
    "SrtmSource",
    "check_dem",
    "dem_files",
    "dem_for_tile",
    "dem_problem",
    "prepare_dem",
    "stage_dem",
    "tile_dem_dir",
]

#: DEM_Reference in the comment of Sen2Cor 2.9.0's pristine L2A_GIPP.xml (s2kit/templates/gipp/2.9)
CGIAR_SRTM_URL = "http://srtm.csi.cgiar.org/wp-content/uploads/files/srtm_5x5/TIFF/"
#: the one of Sen2Cor 2.8.0's L2A_GIPP.xml (public credentials; still accepted as --source)
CGIAR_SRTM_URL_SEN2COR_28 = "http://data_public:GDdci@data.cgiar-csi.org/srtm/tiles/GeoTIFF/"
SRTM_NODATA = -32768
DEM_JSON = "dem.json"
FORMAT_VERSION = 1
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so a set is byte-reproducible
_GTIFF_OPTIONS = {"compress": "deflate", "predictor": 2, "zlevel": 6, "num_threads": "ALL_CPUS"}


class DemError(S2kitError):
    """A DEM source, raster or prepared set is not what Sen2Cor needs."""


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class SourceTile:
    """One ``srtm_XX_YY.zip`` as found at the source (``path`` is None when it is missing)."""

    name: str
    origin: str
    path: Path | None
    size: int | None = None
    sha256: str | None = None

    @property
    def missing(self) -> bool:
        return self.path is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": self.origin,
            "missing": self.missing,
            "size": self.size,
            "sha256": self.sha256,
        }


def _locked(folder: Path, name: str = ".lock") -> contextlib.AbstractContextManager[int]:
    """An advisory lock in *folder* (best effort: file systems without flock just proceed)."""
    return flocked(folder / name, best_effort=True, mode=0o666)


class SrtmSource:
    """Where ``srtm_XX_YY.zip`` files come from: a folder (or ``file://`` URL) or a base URL.

    URL downloads go to *cache_dir* (resumable ``.part``); every file's size and SHA-256 are
    kept in ``<cache_dir>/manifest.json`` and reused while size and mtime are unchanged.
    """

    def __init__(
        self, source: str, cache_dir: str | os.PathLike[str], client: HttpClient | None = None
    ) -> None:
        text = source.strip()
        if not text:
            raise InputError("expected --source to be a folder or a URL, found an empty string")
        self.cache_dir = Path(cache_dir)
        self._client = client
        self._own_client = False
        scheme = urlsplit(text).scheme.lower()
        if is_url(text):
            self.kind: Literal["url", "folder"] = "url"
            self.base = text if text.endswith("/") else text + "/"
            self.description = redact_url(self.base)
        elif scheme == "file":
            self.kind, self.folder = "folder", Path(unquote(urlsplit(text).path))
        elif scheme and len(scheme) > 1:
            raise InputError(
                f"expected --source to be a folder or an http(s) URL, found a {scheme}:// address ({text}); "
                "fetch the files with another client and pass their folder"
            )
        else:
            self.kind, self.folder = "folder", Path(text)
        if self.kind == "folder":
            self.folder = self.folder.expanduser().resolve()
            if not self.folder.is_dir():
                raise InputError(
                    "expected a folder of srtm_XX_YY.zip files or a URL, found no folder at "
                    f"{display_path(self.folder)}"
                )
            self.description = str(self.folder)

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient()
            self._own_client = True
        return self._client

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()

    # manifest -------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.cache_dir / "manifest.json"

    def _manifest(self) -> dict[str, Any]:
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise DemError(
                f"expected a JSON cache manifest, found an unreadable file ({exc})", self.manifest_path
            ) from None
        files = data.get("files") if isinstance(data, dict) else None
        return files if isinstance(files, dict) else {}

    def _record(self, key: str, entry: dict[str, Any]) -> None:
        with _locked(self.cache_dir):
            files = self._manifest()
            files[key] = entry
            document = {"s2kit_srtm_cache": FORMAT_VERSION, "files": dict(sorted(files.items()))}
            atomic_write_text(self.manifest_path, json.dumps(document, indent=2) + "\n")

    def _known_digest(self, key: str, path: Path, origin: str) -> tuple[int, str]:
        """Size and SHA-256 of *path*, from the manifest when size and mtime still match."""
        stat = path.stat()
        entry = self._manifest().get(key)
        if (
            isinstance(entry, dict)
            and entry.get("origin") == origin
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
            and isinstance(entry.get("sha256"), str)
        ):
            return stat.st_size, str(entry["sha256"])
        digest = sha256_file(path)
        self._record(
            key, {"origin": origin, "size": stat.st_size, "sha256": digest, "mtime_ns": stat.st_mtime_ns}
        )
        return stat.st_size, digest

    # fetch ----------------------------------------------------------------------------------
    def get(self, name: str) -> SourceTile:
        """The local, validated ``<name>.zip`` (downloaded if needed), or a missing marker."""
        parse_srtm_name(name)
        zip_name = f"{name}.zip"
        if self.kind == "folder":
            path = self.folder / zip_name
            if not path.is_file():
                return SourceTile(name, str(path), None)
            size, digest = self._known_digest(f"folder:{path}", path, str(path))
            srtm_zip_member(path, name)
            return SourceTile(name, str(path), path, size, digest)
        with _locked(self.cache_dir, ".download.lock"):  # one download per cache at a time
            return self._get_url(name, zip_name)

    def _get_url(self, name: str, zip_name: str) -> SourceTile:
        url = self.base + zip_name
        origin = redact_url(url)
        cached = self.cache_dir / zip_name
        if cached.is_file():
            entry = self._manifest().get(zip_name)
            if isinstance(entry, dict) and entry.get("origin") == origin:
                size, digest = self._known_digest(zip_name, cached, origin)
                if entry.get("sha256") == digest:
                    return SourceTile(name, origin, cached, size, digest)
            cached.unlink()  # not ours, or changed behind our back: fetch again
        try:
            result = self.client.download(url, cached)
        except HttpNotFound:
            return SourceTile(name, origin, None)
        try:
            srtm_zip_member(cached, name)
        except DemError:
            cached.unlink()
            raise
        stat = cached.stat()
        self._record(
            zip_name,
            {
                "origin": origin,
                "size": result.size,
                "sha256": result.sha256,
                "mtime_ns": stat.st_mtime_ns,
                "etag": result.etag,
                "last_modified": result.last_modified,
            },
        )
        return SourceTile(name, origin, cached, result.size, result.sha256)


# ----------------------------------------------------------------------------- zips
def _unsafe_member(member: str) -> bool:
    if "\\" in member or member.startswith("/") or (len(member) > 1 and member[1] == ":"):
        return True
    return any(part == ".." for part in PurePosixPath(member).parts)


def srtm_zip_member(path: Path, name: str) -> zipfile.ZipInfo:
    """The ``<name>.tif`` member of an SRTM zip, after refusing unsafe or corrupt archives."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DemError(
            f"expected a zip archive holding {name}.tif, found a truncated or corrupt file ({exc})", path
        ) from None
    unsafe = [i.filename for i in infos if _unsafe_member(i.filename)]
    if unsafe:
        raise DemError(
            f"expected plain member names, found unsafe path {unsafe[0]!r} in the zip (refused)", path
        )
    wanted = f"{name}.tif"
    hits = [i for i in infos if i.filename == wanted]
    if len(hits) != 1:
        tifs = [i.filename for i in infos if i.filename.lower().endswith((".tif", ".tiff"))]
        raise DemError(f"expected one member {wanted}, found {tifs or [i.filename for i in infos][:5]}", path)
    return hits[0]


def _read_member(path: Path, name: str) -> bytes:
    """The bytes of ``<name>.tif``, inflated in memory (never written out); zipfile checks the
    member's CRC-32 at the end, so a corrupt member is refused here."""
    info = srtm_zip_member(path, name)
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.read(info)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise DemError(
            f"expected an intact {name}.tif in the zip, found a corrupt member ({exc})", path
        ) from None


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


# ----------------------------------------------------------------------------- prepare
@dataclass(frozen=True)
class PrepareResult:
    tile: str
    path: Path
    action: Literal["written", "up-to-date"]
    names: tuple[str, ...]
    reason: str = ""
    missing: tuple[str, ...] = ()
    size_bytes: int = 0
    shape: tuple[int, int] = (0, 0)

    def summary(self) -> str:
        where = display_path(self.path)
        if self.action == "up-to-date":
            return f"{self.tile}: up to date, nothing to do ({where})"
        miss = f", {len(self.missing)} missing at the source filled with nodata" if self.missing else ""
        return (
            f"{self.tile}: wrote {where} ({len(self.names)} zip{'s' * (len(self.names) != 1)}: "
            f"{' '.join(self.names)}; merged DEM {self.shape[1]}x{self.shape[0]} px, "
            f"{self.size_bytes / 1e6:.1f} MB per zip{miss}){' - ' + self.reason if self.reason else ''}"
        )


def _write_zip(tif: Path, name: str, dest: Path) -> None:
    info = zipfile.ZipInfo(f"{name}.tif", date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED  # the GeoTIFF is already DEFLATE-compressed
    info.external_attr = 0o644 << 16
    info.create_system = 3
    info.file_size = tif.stat().st_size
    with zipfile.ZipFile(dest, "w") as zf, open(tif, "rb") as src, zf.open(info, "w") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _replace_dir(staging: Path, target: Path) -> None:
    """Put *staging* at *target*; an old *target* is moved aside first and then deleted."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _params(geometry: TileGeometry, source: SrtmSource, allow_missing: bool) -> dict[str, Any]:
    return {
        "tile": geometry.tile,
        "margin_m": geometry.margin_m,
        "source": source.description,
        "allow_missing": allow_missing,
    }


def _up_to_date(tile_dir: Path, params: dict[str, Any]) -> tuple[bool, str]:
    doc_path = tile_dir / DEM_JSON
    if not doc_path.is_file():
        return False, "" if not tile_dir.exists() else "no dem.json"
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, "dem.json unreadable"
    recorded = doc.get("parameters") if isinstance(doc, dict) else None
    if recorded != params:
        return False, "parameters changed"
    report = check_dem(tile_dir)
    if not report.ok:
        return False, f"existing set invalid ({report.errors[0].message})"
    return True, ""


def prepare_dem(
    tiles: Sequence[str],
    source: str,
    out_dir: str | os.PathLike[str],
    *,
    margin_m: float = DEFAULT_MARGIN_M,
    cache_dir: str | os.PathLike[str] | None = None,
    allow_missing: bool = False,
    force: bool = False,
    client: HttpClient | None = None,
    log: Callable[[str], None] | None = None,
) -> list[PrepareResult]:
    """Prepare ``<out_dir>/<tile>/`` for each tile (see the module docstring)."""
    if not tiles:
        raise InputError("expected at least one --tile, found none")
    geometries = [tile_geometry(t, margin_m) for t in dict.fromkeys(normalize_tile(t) for t in tiles)]
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"expected a directory for --out, found a file at {display_path(out)}")
    cache = Path(cache_dir).expanduser().absolute() if cache_dir is not None else out / ".cache" / "srtm"
    src = SrtmSource(source, cache, client)
    say = log or (lambda _msg: None)
    results: list[PrepareResult] = []
    try:
        for geometry in geometries:
            tile_dir = out / geometry.tile
            params = _params(geometry, src, allow_missing)
            reason = ""
            if not force:
                fresh, reason = _up_to_date(tile_dir, params)
                if fresh:
                    results.append(PrepareResult(geometry.tile, tile_dir, "up-to-date", geometry.srtm_tiles))
                    continue
            else:
                reason = "--force"
            results.append(_prepare_one(geometry, src, out, tile_dir, params, allow_missing, reason, say))
    finally:
        src.close()
    return results


def _missing_message(tile: str, src: SrtmSource, missing: Sequence[str]) -> str:
    """Why SRTM files are missing, and the next step: ``--allow-missing`` is suggested only where
    a file may well not exist (beyond SRTM coverage, or a server that says it has none)."""

    def zips(names: Sequence[str]) -> str:
        return ", ".join(f"{n}.zip" for n in names)

    beyond = [n for n in missing if srtm_tile_bounds(n)[1] < SRTM_SOUTH]  # the 60°S-55°S row
    inside = [n for n in missing if n not in beyond]
    parts: list[str] = []
    if inside and src.kind == "url":
        parts.append(
            f"{zips(inside)}: the server has no such file (CGIAR has none for all-ocean SRTM tiles): "
            "if the footprint there is all ocean, pass --allow-missing to fill them with nodata"
        )
    elif inside:
        parts.append(
            f"{zips(inside)}: not found in the source ({tile} lies inside SRTM coverage, 60°N to 56°S): "
            "add them to that folder, or leave out --source to download them from CGIAR"
        )
    if beyond:
        parts.append(
            f"{zips(beyond)}: beyond SRTM coverage (60°N to 56°S), where CGIAR has little or no data: "
            "pass --allow-missing to fill them with nodata"
        )
    return f"tile {tile}: expected {zips(missing)} at {src.description}, found none; {'; '.join(parts)}"


def _prepare_one(
    geometry: TileGeometry,
    src: SrtmSource,
    out: Path,
    tile_dir: Path,
    params: dict[str, Any],
    allow_missing: bool,
    reason: str,
    say: Callable[[str], None],
) -> PrepareResult:
    sources: dict[str, SourceTile] = {}
    for name in geometry.srtm_tiles:
        say(f"{geometry.tile}: {name}.zip from {src.description}")
        try:
            sources[name] = src.get(name)
        except SourceUnreachable:
            raise  # no connection at all: its own message and exit code, no other tile is tried
        except HttpError as exc:
            raise DemError(f"tile {geometry.tile}: {name}.zip: {exc}") from None
    missing = tuple(n for n, s in sources.items() if s.missing)
    if missing and not allow_missing:
        raise DemError(_missing_message(geometry.tile, src, missing))
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{geometry.tile}.tmp-", dir=out))
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the set becomes <out>/<tile>
        work = staging / ".work"
        work.mkdir()
        merged = merge_srtm(geometry, sources, work, work / "merged.tif")
        if set(merged.names) != set(sources):
            extra = sorted(set(merged.names) - set(sources))
            raise DemError(
                f"tile {geometry.tile}: expected the SRTM tiles {sorted(sources)}, found {extra} too"
            )
        tif_sha = sha256_file(merged.path)
        tif_size = merged.path.stat().st_size
        zips: list[dict[str, Any]] = []
        for name in merged.names:
            dest = staging / f"{name}.zip"
            _write_zip(merged.path, name, dest)
            zips.append(
                {
                    "name": dest.name,
                    "member": f"{name}.tif",
                    "size": dest.stat().st_size,
                    "sha256": sha256_file(dest),
                }
            )
        doc = {
            "s2kit_dem": FORMAT_VERSION,
            "s2kit_version": __version__,
            "parameters": params,
            "geometry": geometry.to_dict(),
            "sources": [sources[n].to_dict() for n in sorted(sources)],
            "dem": {
                "member_sha256": tif_sha,
                "member_size": tif_size,
                "bounds": [round(v, 12) for v in merged.bounds],
                "width": merged.width,
                "height": merged.height,
                "res_deg": merged.res,
                "crs": "EPSG:4326",
                "dtype": "int16",
                "nodata": SRTM_NODATA,
                **merged.stats,
            },
            "zips": zips,
        }
        shutil.rmtree(work)
        atomic_write_text(staging / DEM_JSON, json.dumps(doc, indent=2) + "\n")
        _replace_dir(staging, tile_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PrepareResult(
        geometry.tile,
        tile_dir,
        "written",
        merged.names,
        reason=reason,
        missing=missing,
        size_bytes=int(zips[0]["size"]) if zips else 0,
        shape=(merged.height, merged.width),
    )


# ----------------------------------------------------------------------------- check
DemFinding = Finding  # the shared record of s2kit.findings


@dataclass
class DemCheck:
    path: Path
    tile: str | None = None
    names: tuple[str, ...] = ()
    findings: list[DemFinding] = field(default_factory=list)
    dem: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[DemFinding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[DemFinding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, severity: Severity, code: str, message: str) -> None:
        self.findings.append(DemFinding(code=code, severity=severity, message=message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "tile": self.tile,
            "ok": self.ok,
            "zips": list(self.names),
            "dem": self.dem,
            "findings": [f.to_dict() for f in self.findings],
        }

    def lines(self) -> Iterator[str]:
        where = display_path(self.path)
        if self.ok:
            w = self.dem.get("width")
            h = self.dem.get("height")
            extra = f"; {len(self.warnings)} warning(s)" if self.warnings else ""
            yield (
                f"{where}: DEM set for {self.tile} OK ({len(self.names)} zip{'s' * (len(self.names) != 1)}: "
                f"{' '.join(self.names)}; merged DEM {w}x{h} px{extra})"
            )
        else:
            yield (
                f"{where}: DEM set for {self.tile or 'an unknown tile'}: {len(self.errors)} error(s), "
                f"{len(self.warnings)} warning(s)"
            )
        for f in self.findings:
            yield f"  {f.severity:<7} {f.code:<18} {f.message}"


_DEM_JSON_CAP = 4 * 1024 * 1024  # a dem.json is a few KB; a bigger one is not s2kit's


def tile_dem_dir(dem_dir: Path | None, tile: str | None) -> Path | None:
    """The DEM folder of *tile*: ``dem_dir/<tile>/`` (or ``dem_dir/T<tile>/``) when it is a
    folder, else None. Never ``dem_dir`` itself nor another tile's folder."""
    if dem_dir is None or not tile:
        return None
    for name in (tile, f"T{tile}"):
        if (dem_dir / name).is_dir():
            return dem_dir / name
    return None


# ----------------------------------------------------------------------------- a task's DEM
def dem_for_tile(dem_dir: Path | None, tile: str | None) -> Path | None:
    """``dem_dir/<tile>/`` (or ``dem_dir/T<tile>/``) when it is a folder, else None.

    Never ``dem_dir`` itself nor another tile's folder: a scene without its tile's DEM is
    not processed (``sen2cor.dem = "srtm"``) unless flat terrain was asked for explicitly
    (``sen2cor.dem = "none"``).
    """
    return tile_dem_dir(dem_dir, tile)


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


def stage_dem(dem: Path, dest: Path) -> Path:
    """A private, writable DEM folder for one task: symlinks to the files of *dem*.

    Sen2Cor extracts ``srtm_XX_YY.tif`` from the zip INTO ``DEM_Directory`` and shifts it in
    place, so the shared DEM folder would need to be writable (it is bound read-only in the
    container) and concurrent tasks of one tile would race on the same ``.tif``. A ``.tif``
    with a ``.zip`` of the same name beside it is left out: Sen2Cor would prefer a stale
    leftover to the prepared zip.
    """
    dest.mkdir(parents=True, exist_ok=True)
    names = sorted(os.listdir(dem))
    zips = {n[:-4].lower() for n in names if n.lower().endswith(".zip")}
    for name in names:
        src = dem / name
        if name.lower().endswith(".tif") and name[:-4].lower() in zips:
            continue
        if src.is_file():
            os.symlink(src.absolute(), dest / name)
    return dest


def dem_problem(dem_dir: Path | None, tile: str | None) -> str | None:
    """Why *tile* has no usable DEM under *dem_dir* (one line), or None when it has one.

    Cheap (stat only, nothing is hashed, so the planner can ask once per tile): the folder
    ``dem_dir/<tile>/`` must hold ``srtm_XX_YY.zip`` (or ``.tif``) for every SRTM tile the
    tile's footprint touches (the names Sen2Cor derives, :func:`s2kit.tiles.tile_geometry`
    without margin); when s2kit's ``dem.json`` is there, every zip it records must be present
    with its recorded size. ``s2kit dem check`` verifies the checksums and the raster.
    """
    if dem_dir is None:
        return "expected paths.dem_dir, found none configured"
    if not tile:
        return "expected the MGRS tile of the scene, found none"
    folder = tile_dem_dir(dem_dir, tile)
    if folder is None:
        return f"expected a DEM folder {display_path(dem_dir / tile)}/, found none"
    try:
        needed = tile_geometry(tile, 0.0).srtm_tiles
    except S2kitError as exc:
        return str(exc)
    try:
        names = set(os.listdir(folder))
    except OSError as exc:
        return f"expected a readable DEM folder {display_path(folder)}/, found: {exc.strerror}"
    missing = [n for n in needed if f"{n}.zip" not in names and f"{n}.tif" not in names]
    if missing:
        want = ", ".join(f"{n}.zip" for n in missing)
        return f"expected {want} in {display_path(folder)}/ (the tile's footprint needs it), found none"
    if DEM_JSON in names:
        try:
            with open(folder / DEM_JSON, "rb") as fh:
                doc = json.loads(fh.read(_DEM_JSON_CAP))
            ours = isinstance(doc, dict) and doc.get("s2kit_dem") == FORMAT_VERSION  # else a user's file
            recorded = [(str(z["name"]), int(z["size"])) for z in doc["zips"]] if ours else []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"expected a valid {DEM_JSON} in {display_path(folder)}/, found {exc}"
        for name, size in recorded:
            try:
                found = (folder / name).stat().st_size
            except OSError:
                return f"expected {name} in {display_path(folder)}/ (listed in {DEM_JSON}), found none"
            if found != size:
                return (
                    f"expected {name} of {size} bytes in {display_path(folder)}/ ({DEM_JSON}), found {found}"
                )
    return None


def _member_sha256(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.sha256()
    with zf.open(info) as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_dem(tile_dir: str | os.PathLike[str]) -> DemCheck:
    """Verify a prepared set ``<out>/<tile>/``: every finding is collected, nothing is raised
    for a broken set (only for a path that is no folder at all)."""
    folder = Path(tile_dir)
    report = DemCheck(folder)
    if not folder.is_dir():
        raise InputError(
            f"expected a prepared DEM folder (<out>/<tile>), found no folder at {display_path(folder)}"
        )
    doc_path = folder / DEM_JSON
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("s2kit_dem") != FORMAT_VERSION:
            raise ValueError(f"not an s2kit dem.json version {FORMAT_VERSION}")
        params, zips, dem = doc["parameters"], doc["zips"], doc["dem"]
        report.tile = normalize_tile(str(params["tile"]))
        margin = float(params["margin_m"])
    except FileNotFoundError:
        if not any(folder.glob("srtm_*")):  # not a DEM set at all: refuse, no report of "?" (issue 15)
            raise InputError(
                f"expected a prepared DEM set (<out>/<tile> with {DEM_JSON} and srtm_XX_YY.zip, written by "
                f"s2kit dem prepare --tile TILE --out DIR), found neither in {display_path(folder)}"
            ) from None
        report.add("error", "no-dem-json", f"expected {DEM_JSON} (written by s2kit dem prepare), found none")
        return report
    except (OSError, ValueError, KeyError, TypeError, S2kitError) as exc:
        report.add("error", "bad-dem-json", f"expected a valid {DEM_JSON}, found {exc}")
        return report
    report.dem = {k: dem.get(k) for k in ("width", "height", "bounds", "res_deg", "nodata_pixels")}
    report.names = tuple(sorted(str(z.get("name", "?")).removesuffix(".zip") for z in zips))
    try:
        geometry = tile_geometry(report.tile, margin)
    except S2kitError as exc:
        report.add("error", "bad-tile", str(exc))
        return report
    wanted = set(geometry.srtm_tiles)
    have = set(report.names)
    for name in sorted(wanted - have):
        report.add(
            "error",
            "missing-name",
            f"{name}.zip: expected (tile {report.tile} needs it), found no entry in dem.json",
        )
    member_sha = str(dem.get("member_sha256"))
    intact = [entry for entry in zips if _check_zip_entry(folder, entry, member_sha, report)]
    if intact:
        _check_dem_raster(folder / str(intact[0]["name"]), dem, geometry, report)
    recorded = {str(z.get("name")) for z in zips}
    for extra in sorted(folder.glob("srtm_*")):
        if extra.suffix == ".zip" and extra.name not in recorded:
            report.add(
                "warning", "unexpected-zip", f"{extra.name}: not written by s2kit dem prepare for this tile"
            )
        elif extra.suffix == ".tif":
            report.add(
                "warning",
                "extracted-tif",
                f"{extra.name}: extracted by Sen2Cor at run time; it takes precedence over the zip "
                "(delete it if the set was prepared again)",
            )
    return report


def _check_zip_entry(folder: Path, entry: dict[str, Any], member_sha: str, report: DemCheck) -> bool:
    name = str(entry.get("name", ""))
    path = folder / name
    stem = name.removesuffix(".zip")
    if not path.is_file():
        report.add("error", "missing-zip", f"{name}: expected (listed in dem.json), found no file")
        return False
    size = path.stat().st_size
    if size != entry.get("size"):
        report.add("error", "zip-size", f"{name}: expected {entry.get('size')} bytes, found {size}")
        return False
    digest = sha256_file(path)
    if digest != entry.get("sha256"):
        report.add("error", "zip-checksum", f"{name}: expected SHA-256 {entry.get('sha256')}, found {digest}")
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if [i.filename for i in infos] != [f"{stem}.tif"]:
                report.add(
                    "error",
                    "zip-members",
                    f"{name}: expected one member {stem}.tif, found {[i.filename for i in infos]}",
                )
                return False
            if _member_sha256(zf, infos[0]) != member_sha:
                report.add(
                    "error",
                    "member-checksum",
                    f"{name}: expected the merged DEM (SHA-256 {member_sha}), found another file",
                )
                return False
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        report.add("error", "zip-corrupt", f"{name}: expected an intact zip, found {exc}")
        return False
    return True


def _check_dem_raster(zip_path: Path, dem: dict[str, Any], geometry: TileGeometry, report: DemCheck) -> None:
    import rasterio

    member = zip_path.name.removesuffix(".zip") + ".tif"
    try:
        with rasterio.open(f"/vsizip/{zip_path}/{member}") as ds:
            problems = []
            if ds.count != 1 or ds.dtypes[0] != "int16":
                problems.append(f"{ds.count} band(s) of {ds.dtypes[0]} (expected 1 Int16)")
            if ds.nodata != SRTM_NODATA:
                problems.append(f"nodata {ds.nodata} (expected {SRTM_NODATA})")
            if ds.crs is None or ds.crs.to_epsg() != 4326:
                problems.append(f"CRS {ds.crs} (expected EPSG:4326)")
            bounds = tuple(ds.bounds)
    except rasterio.errors.RasterioIOError as exc:
        report.add("error", "dem-unreadable", f"{zip_path.name}: expected a GeoTIFF member, found {exc}")
        return
    for p in problems:
        report.add("error", "dem-raster", f"{member}: {p}")
    recorded = dem.get("bounds") or []
    if len(recorded) != 4 or any(abs(a - b) > 1e-7 for a, b in zip(bounds, recorded, strict=True)):
        report.add(
            "error", "dem-bounds", f"{member}: expected bounds {recorded} (dem.json), found {list(bounds)}"
        )
    w, s, e, n = geometry.footprint
    if not (bounds[0] <= w and bounds[1] <= s and bounds[2] >= e and bounds[3] >= n):
        report.add(
            "error",
            "dem-coverage",
            f"{member}: expected to cover the tile footprint {[round(v, 4) for v in geometry.footprint]}, "
            f"found {[round(v, 4) for v in bounds]}",
        )
