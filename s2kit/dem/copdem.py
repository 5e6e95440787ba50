"""Copernicus DEM (GLO-30 / GLO-90) cells per Sentinel-2 tile, laid out as Sen2Cor 2.12 reads them.

Sen2Cor 2.12 no longer reads SRTM: its ``L2A_GIPP.xml`` documents the Copernicus DEM, either
pre-downloaded CDSE DGED cells in ``DEM_Directory`` with ``DEM_Reference`` ``CDSE-GLO-30`` /
``CDSE-GLO-90``, or the AWS-hosted COG cells with the bucket URL as ``DEM_Reference``. What
Sen2Cor does with them (Sen2Cor3's ``AuxImport.gdalDEM_copernicus`` / ``gdalDEM_aws``, the
public Telespazio code of that DEM step; 2.12's own source is not public - see
docs/guide/aux-data.md "Copernicus DEM" for sources and what is unverified):

* cells are 1°x1°, named after their south-west corner (``int(x)`` for a positive corner,
  ``int(x) - 1`` otherwise) of the tile's corner box; across the antimeridian the cells of
  both sides;
* CDSE mode looks for ``DEM_Directory/Copernicus_DSM_10_N50_00_E005_00_DEM.tif`` (``_30_`` for
  GLO-90; "GLO-30" in DEM_Reference picks 30 m), flat in the folder; a missing one is fetched
  as ``DEM_Reference + '<name>.tar'`` (useless offline) and its ``*DEM.tif`` member extracted
  into ``DEM_Directory``;
* cells listed in Sen2Cor's ``aux_data/CopernicusDEM_{30,90}_TIFF_missing_tiles.list`` (cells
  that do not exist: sea) are skipped; any other missing cell fails the DEM step (flat terrain,
  or an exit with ``Force_Exit_On_DEM_Error``).

This module stages exactly those files, per tile, so an offline node needs nothing else:

* the cells = every 1°x1° cell the footprint + margin touches, with Sen2Cor's rounding (a
  superset of the cells Sen2Cor asks for);
* each cell comes from the AWS bucket (default; ``Copernicus_DSM_COG_10_..._DEM/<same>.tif``),
  another base URL or ``s3://`` / ``gs://`` bucket of that layout, or a local mirror folder
  (CDSE names, CDSE DGED ``.tar`` products - only their ``DEM/<name>`` member is extracted -,
  AWS COG names, or the AWS layout); downloads are resumable
  (:mod:`s2kit.http`), size and SHA-256 recorded in the cache's ``manifest.json``;
* a cell the server answers 404 for is recorded as absent at the source (no Copernicus DEM cell
  there: sea, or a cell not released), never a network error; a cell a mirror folder lacks is an
  error unless ``allow_missing``;
* every cell is checked before use: a 1-band Float32 WGS 84 GeoTIFF of the cell's grid (rows per
  degree of the kind, columns per the latitude zone of the Copernicus DEM product handbook,
  origin on the cell's corner) whose every block decodes (a torn file is refused);
* ``<out>/<kind>/<tile>/`` holds each cell under its CDSE DGED name (hard links into the cache
  when possible) and ``dem.json`` (sources, sizes, SHA-256, absent cells); built in a staging
  folder and renamed into place. A second run finds it complete and downloads nothing.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tarfile
import tempfile
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from .. import __version__
from ..errors import InputError, display_path
from ..fsutil import atomic_write_text
from ..http import HttpClient, HttpError, HttpNotFound, SourceUnreachable, redact_url
from ..tiles import DEFAULT_MARGIN_M, TileError, normalize_tile, tile_footprint, utm_box_lonlat
from .base import DEM_JSON, FORMAT_VERSION, DemError
from .check import DemCheck, set_up_to_date
from .source import SrtmSource, _locked

__all__ = [
    "COPDEM_KINDS",
    "Cell",
    "CopDemSource",
    "CopDemSpec",
    "CopFootprint",
    "CopPrepareResult",
    "cells_for_bounds",
    "check_cell_raster",
    "copdem_footprint",
    "copdem_spec",
    "prepare_copdem",
]

COPDEM_KINDS = ("cop-dem-glo30", "cop-dem-glo90")


@dataclass(frozen=True)
class CopDemSpec:
    """One Copernicus DEM instance as Sen2Cor 2.12 and the AWS bucket name it."""

    kind: str
    code: str  # the resolution field of the names: "10" (1 arc-second) / "30" (3 arc-seconds)
    reference: str  # DEM_Reference for pre-downloaded CDSE DGED cells (L2A_GIPP.xml of 2.12)
    aws_url: str  # the public bucket (registry.opendata.aws/copernicus-dem)
    rows: int  # pixels per degree of latitude (and of longitude below 50°)
    max_bytes: int  # a cell file bigger than this is not a cell (Float32, uncompressed at most)


SPECS: dict[str, CopDemSpec] = {
    "cop-dem-glo30": CopDemSpec(
        "cop-dem-glo30", "10", "CDSE-GLO-30", "https://copernicus-dem-30m.s3.amazonaws.com/", 3600, 128 << 20
    ),
    "cop-dem-glo90": CopDemSpec(
        "cop-dem-glo90", "30", "CDSE-GLO-90", "https://copernicus-dem-90m.s3.amazonaws.com/", 1200, 16 << 20
    ),
}

#: Copernicus DEM product handbook: longitude spacing = latitude spacing x factor, by latitude zone
_LON_FACTORS: tuple[tuple[int, float], ...] = (
    (50, 1.0),
    (60, 1.5),
    (70, 2.0),
    (80, 3.0),
    (85, 5.0),
    (90, 10.0),
)
_CELL_RE = re.compile(r"^Copernicus_DSM_(?:COG_)?(10|30)_([NS])(\d{2})_00_([EW])(\d{3})_00_DEM\Z", re.ASCII)


def copdem_spec(kind: str) -> CopDemSpec:
    """The spec of ``cop-dem-glo30`` / ``cop-dem-glo90``; a one-line refusal for anything else."""
    spec = SPECS.get(kind)
    if spec is None:
        raise InputError(f"expected a Copernicus DEM kind ({', '.join(COPDEM_KINDS)}), found {kind!r}")
    return spec


# ----------------------------------------------------------------------------- cells
@dataclass(frozen=True, order=True)
class Cell:
    """A 1°x1° Copernicus DEM cell: ``lat``/``lon`` of its south-west corner (integers)."""

    lat: int
    lon: int

    @property
    def label(self) -> str:
        ns = "N" if self.lat >= 0 else "S"
        ew = "E" if self.lon >= 0 else "W"
        return f"{ns}{abs(self.lat):02d}_00_{ew}{abs(self.lon):03d}_00"

    def dged_name(self, spec: CopDemSpec) -> str:
        """The file Sen2Cor 2.12 reads in CDSE mode: ``Copernicus_DSM_10_N50_00_E005_00_DEM.tif``."""
        return f"Copernicus_DSM_{spec.code}_{self.label}_DEM.tif"

    def cog_stem(self, spec: CopDemSpec) -> str:
        """The AWS object name without ``.tif``: ``Copernicus_DSM_COG_10_N50_00_E005_00_DEM``."""
        return f"Copernicus_DSM_COG_{spec.code}_{self.label}_DEM"

    def width(self, spec: CopDemSpec) -> int:
        """Columns of the cell: fewer towards the poles (the handbook's latitude zones)."""
        zone = self.lat if self.lat >= 0 else -self.lat - 1  # |lat| of the edge nearer the equator
        factor = next(f for limit, f in _LON_FACTORS if zone < limit)
        return round(spec.rows / factor)


def parse_cell_name(name: str) -> tuple[str, Cell]:
    """``Copernicus_DSM_10_N50_00_E005_00_DEM(.tif)`` (or the ``COG`` form) -> ``("10", Cell(50, 5))``."""
    match = _CELL_RE.match(name.removesuffix(".tif"))
    if match is None:
        raise DemError(
            "expected a Copernicus DEM cell name like Copernicus_DSM_10_N50_00_E005_00_DEM.tif, "
            f"found {name!r}"
        )
    code, ns, lat, ew, lon = match.groups()
    return code, Cell(int(lat) * (1 if ns == "N" else -1), int(lon) * (1 if ew == "E" else -1))


def _sen2cor_floor(x: float) -> int:
    """Sen2Cor's corner rounding: ``int(x)`` when ``x > 0``, else ``int(x) - 1`` (= floor, one
    lower at 0 and at negative integers)."""
    return int(x) if x > 0 else int(x) - 1


def cells_for_bounds(west: float, south: float, east: float, north: float) -> tuple[Cell, ...]:
    """Every cell of the box with Sen2Cor's rounding; *east* may exceed 180 (antimeridian)."""
    if not (west < east and south < north) or not all(map(math.isfinite, (west, south, east, north))):
        raise TileError(
            f"expected a box with west < east and south < north, found {west, south, east, north}"
        )
    lats = range(max(_sen2cor_floor(south), -90), min(_sen2cor_floor(north), 89) + 1)
    lons = {(lon + 180) % 360 - 180 for lon in range(_sen2cor_floor(west), _sen2cor_floor(east) + 1)}
    return tuple(sorted(Cell(lat, lon) for lat in lats for lon in lons))


@dataclass(frozen=True)
class CopFootprint:
    """A Sentinel-2 tile's footprint and the Copernicus DEM cells it needs (with a margin)."""

    tile: str
    epsg: int
    margin_m: float
    footprint: tuple[float, float, float, float]
    lonlat_bounds: tuple[float, float, float, float]
    cells: tuple[Cell, ...]

    @property
    def crosses_antimeridian(self) -> bool:
        return self.lonlat_bounds[2] > 180.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tile": self.tile,
            "epsg": self.epsg,
            "margin_m": self.margin_m,
            "footprint_lonlat": [round(v, 9) for v in self.footprint],
            "bounds_lonlat": [round(v, 9) for v in self.lonlat_bounds],
            "crosses_antimeridian": self.crosses_antimeridian,
            "cells": [c.label for c in self.cells],
        }


def copdem_footprint(tile: str, margin_m: float = DEFAULT_MARGIN_M) -> CopFootprint:
    """The cells a tile needs: its footprint plus *margin_m* metres (no coverage limit: the
    Copernicus DEM covers the globe; cells that do not exist are found out at the source)."""
    name = normalize_tile(tile)
    if not (0 <= margin_m <= 50_000) or math.isnan(margin_m):
        raise TileError(f"expected a margin of 0-50000 m, found {margin_m}")
    epsg, utm_bounds, footprint = tile_footprint(name)
    buffered = (
        utm_bounds[0] - margin_m,
        utm_bounds[1] - margin_m,
        utm_bounds[2] + margin_m,
        utm_bounds[3] + margin_m,
    )
    w, s, e, n = utm_box_lonlat(epsg, buffered)
    bounds = (w, max(s, -90.0), e, min(n, 90.0))
    return CopFootprint(name, epsg, float(margin_m), footprint, bounds, cells_for_bounds(*bounds))


# ----------------------------------------------------------------------------- rasters
def check_cell_raster(path: Path, spec: CopDemSpec, cell: Cell, *, deep: bool = True) -> dict[str, Any]:
    """Refuse a file that is not the cell's GeoTIFF (one line); return its grid.

    *deep* reads every block (a torn or truncated file fails here, not in Sen2Cor).
    """
    import rasterio  # type: ignore[import-untyped]
    from rasterio.errors import NotGeoreferencedWarning, RasterioError  # type: ignore[import-untyped]

    from .merge import _is_wgs84_lonlat

    where = f"{cell.dged_name(spec)} ({display_path(path)})"
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DemError(f"{where}: expected a readable file, found {exc.strerror}") from None
    if size > spec.max_bytes:
        raise DemError(
            f"{where}: expected at most {spec.max_bytes} bytes for a {spec.kind} cell, found {size}"
        )

    def fail(expected: str, found: object) -> DemError:
        return DemError(f"{where}: expected {expected}, found {found}")

    width = cell.width(spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # refused below, in one line
            ds = rasterio.open(path)
        with ds:
            if ds.driver != "GTiff":
                raise fail("a GeoTIFF", f"a {ds.driver} raster")
            if ds.count != 1 or ds.dtypes[0] != "float32":
                raise fail("1 band of Float32 heights", f"{ds.count} band(s) of {ds.dtypes[0]}")
            if ds.crs is None or not _is_wgs84_lonlat(ds.crs.to_wkt()):
                raise fail("a WGS 84 lon/lat CRS", ds.crs.to_string() if ds.crs else "no CRS")
            if (ds.height, ds.width) != (spec.rows, width):
                raise fail(
                    f"{width}x{spec.rows} pixels (a {spec.kind} cell at {cell.label})",
                    f"{ds.width}x{ds.height}",
                )
            t = ds.transform
            xres, yres = 1.0 / width, 1.0 / spec.rows
            if (
                t.b != 0
                or t.d != 0
                or not math.isclose(t.a, xres, rel_tol=1e-6)
                or not math.isclose(-t.e, yres, rel_tol=1e-6)
                or abs(t.c - cell.lon) > 0.51 * xres
                or abs(t.f - (cell.lat + 1)) > 0.51 * yres
            ):
                raise fail(
                    f"the 1°x1° cell at lon {cell.lon}, lat {cell.lat} ({xres:.9g}° x {yres:.9g}° pixels)",
                    f"origin ({t.c:.6f}, {t.f:.6f}), pixels {t.a:.9g}° x {-t.e:.9g}°",
                )
            if deep:
                for _, window in ds.block_windows(1):
                    ds.read(1, window=window)
            return {"width": ds.width, "height": ds.height, "upper_left": [t.c, t.f]}
    except DemError:
        raise
    except (RasterioError, OSError) as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        problem = f"expected an intact GeoTIFF, found a torn or corrupt file ({detail})"
        raise DemError(f"{where}: {problem}") from None


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class CellFile:
    """One cell as found at the source; ``path`` is None when the source has none."""

    cell: Cell
    name: str  # the DGED name it is staged under
    origin: str
    path: Path | None
    size: int | None = None
    sha256: str | None = None
    absent: str = ""  # why the source has none (a 404, or a mirror without the file)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "cell": self.cell.label, "origin": self.origin}
        if self.path is None:
            out["reason"] = self.absent
        else:
            out.update(size=self.size, sha256=self.sha256)
        return out


def _bucket_url(text: str) -> str:
    """``s3://bucket/prefix`` / ``gs://bucket/prefix`` -> the bucket's public HTTPS address."""
    parts = urlsplit(text)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket:
        raise InputError(f"expected {parts.scheme}://BUCKET[/PREFIX], found {text!r}")
    base = (
        f"https://{bucket}.s3.amazonaws.com/"
        if parts.scheme.lower() == "s3"
        else f"https://storage.googleapis.com/{bucket}/"
    )
    return base + (prefix + "/" if prefix else "")


class CopDemSource(SrtmSource):
    """Where cells come from: a base URL of the AWS layout (default: the kind's public bucket),
    an ``s3://``/``gs://`` bucket of that layout (read over HTTPS, anonymously), or a folder."""

    _WHAT = "Copernicus DEM cells (Copernicus_DSM_*_DEM.tif)"
    _MANIFEST_KEY = "s2kit_copdem_cache"

    def __init__(
        self,
        spec: CopDemSpec,
        source: str | None,
        cache_dir: str | os.PathLike[str],
        client: HttpClient | None = None,
    ) -> None:
        self.spec = spec
        text = (source or "").strip() or spec.aws_url
        if urlsplit(text).scheme.lower() in ("s3", "gs"):
            text = _bucket_url(text)
        super().__init__(text, cache_dir, client)

    def get_cell(self, cell: Cell) -> CellFile:
        """The local, size-capped file of *cell* (downloaded if needed), or an absent marker."""
        spec, name = self.spec, cell.dged_name(self.spec)
        stem = cell.cog_stem(spec)
        if self.kind == "folder":
            tried = [self.folder / name, self.folder / f"{stem}.tif", self.folder / stem / f"{stem}.tif"]
            path = next((p for p in tried if p.is_file()), None)
            if path is None:
                tar = self.folder / f"{name.removesuffix('_DEM.tif')}.tar"  # the CDSE DGED product
                if tar.is_file():
                    return self._from_tar(tar, cell, name)
                return CellFile(cell, name, str(tried[0]), None, absent="not in the mirror folder")
            if path.stat().st_size > spec.max_bytes:  # before hashing it: not a cell
                raise DemError(
                    f"expected at most {spec.max_bytes} bytes for a {spec.kind} cell, found "
                    f"{path.stat().st_size}",
                    path,
                )
            size, digest = self._known_digest(f"folder:{path}", path, str(path))
            return CellFile(cell, name, str(path), path, size, digest)
        url = f"{self.base}{stem}/{stem}.tif"
        origin = redact_url(url)
        cached = self.cache_dir / f"{stem}.tif"
        with _locked(self.cache_dir, ".download.lock"):  # one download per cache at a time
            if cached.is_file():
                entry = self._manifest().get(cached.name)
                if isinstance(entry, dict) and entry.get("origin") == origin:
                    size, digest = self._known_digest(cached.name, cached, origin)
                    if entry.get("sha256") == digest:
                        return CellFile(cell, name, origin, cached, size, digest)
                cached.unlink()  # not ours, or changed behind our back: fetch again
            try:
                result = self.client.download(url, cached, sha256=True)
            except HttpNotFound:
                return CellFile(cell, name, origin, None, absent="HTTP 404 at the source")
            stat = cached.stat()
            self._record(
                cached.name,
                {
                    "origin": origin,
                    "size": result.size,
                    "sha256": result.sha256,
                    "mtime_ns": stat.st_mtime_ns,
                    "etag": result.etag,
                    "last_modified": result.last_modified,
                },
            )
            return CellFile(cell, name, origin, cached, result.size, result.sha256)

    def _from_tar(self, tar: Path, cell: Cell, name: str) -> CellFile:
        """The ``<name>`` member (``.../DEM/<name>``) of a CDSE DGED ``.tar``, extracted once into
        the cache: a regular file of at most the kind's size, the only member of that name."""
        stat = tar.stat()
        key, out = f"tar:{tar}", self.cache_dir / name
        entry = self._manifest().get(key)
        if (
            isinstance(entry, dict)
            and (entry.get("tar_size"), entry.get("tar_mtime_ns")) == (stat.st_size, stat.st_mtime_ns)
            and out.is_file()
        ):
            size, digest = self._known_digest(f"cache:{name}", out, str(out))
            if digest == entry.get("sha256"):
                return CellFile(cell, name, str(entry.get("origin")), out, size, digest)

        def refuse(found: str) -> DemError:
            return DemError(
                f"expected one regular member .../DEM/{name} of at most {self.spec.max_bytes} "
                f"bytes in {display_path(tar)}, found {found}"
            )

        try:
            with tarfile.open(tar, "r:*") as tf:
                hits = [m for m in tf.getmembers() if PurePosixPath(m.name).name == name]
                if len(hits) != 1:
                    raise refuse(f"{len(hits)} members of that name")
                member = hits[0]
                if not member.isfile() or member.size > self.spec.max_bytes:
                    raise refuse(
                        f"{'a link or special file' if not member.isfile() else member.size} ({member.name})"
                    )
                stream = tf.extractfile(member)
                if stream is None:  # pragma: no cover - isfile() members always have a stream
                    raise refuse(member.name)
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                part = self.cache_dir / f".{name}.{os.getpid()}.part"
                try:
                    with stream, open(part, "wb") as fh:
                        shutil.copyfileobj(stream, fh, 1 << 20)
                    os.replace(part, out)
                finally:
                    part.unlink(missing_ok=True)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise DemError(
                f"expected an intact tar archive, found a torn or corrupt file ({exc})", tar
            ) from None
        origin = f"{tar}:{member.name}"
        size, digest = self._known_digest(f"cache:{name}", out, str(out))
        self._record(
            key,
            {"origin": origin, "tar_size": stat.st_size, "tar_mtime_ns": stat.st_mtime_ns, "sha256": digest},
        )
        return CellFile(cell, name, origin, out, size, digest)


# ----------------------------------------------------------------------------- prepare
@dataclass(frozen=True)
class CopPrepareResult:
    tile: str
    kind: str
    path: Path
    action: Literal["written", "up-to-date"]
    cells: tuple[str, ...]
    absent: tuple[str, ...] = ()
    reason: str = ""
    size_bytes: int = 0

    def summary(self) -> str:
        where = display_path(self.path)
        if self.action == "up-to-date":
            return f"{self.tile}: up to date, nothing to do ({where})"
        absent = (
            f"; {len(self.absent)} absent at the source (sea, or not released): {' '.join(self.absent)}"
            if self.absent
            else ""
        )
        return (
            f"{self.tile}: wrote {where} ({self.kind}, {len(self.cells)} cell{'s' * (len(self.cells) != 1)}: "
            f"{' '.join(self.cells)}{absent}; {self.size_bytes / 1e6:.1f} MB)"
            f"{' - ' + self.reason if self.reason else ''}"
        )


def _params(fp: CopFootprint, kind: str, src: CopDemSource, allow_missing: bool) -> dict[str, Any]:
    return {
        "tile": fp.tile,
        "kind": kind,
        "margin_m": fp.margin_m,
        "source": src.description,
        "allow_missing": allow_missing,
    }


def prepare_copdem(
    tiles: Sequence[str],
    kind: str,
    out_dir: str | os.PathLike[str],
    *,
    source: str | None = None,
    margin_m: float = DEFAULT_MARGIN_M,
    cache_dir: str | os.PathLike[str] | None = None,
    allow_missing: bool = False,
    force: bool = False,
    client: HttpClient | None = None,
    log: Callable[[str], None] | None = None,
) -> list[CopPrepareResult]:
    """Stage ``<out_dir>/<kind>/<tile>/`` for each tile (see the module docstring).

    *out_dir* is ``paths.dem_dir``; *source* a base URL, ``s3://``/``gs://`` bucket or folder
    (default: the kind's public AWS bucket).
    """
    spec = copdem_spec(kind)
    if not tiles:
        raise InputError("expected at least one --tile, found none")
    footprints = [copdem_footprint(t, margin_m) for t in dict.fromkeys(normalize_tile(t) for t in tiles)]
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"expected a directory for --out, found a file at {display_path(out)}")
    kind_dir = out / kind
    cache = Path(cache_dir).expanduser().absolute() if cache_dir is not None else out / ".cache" / kind
    src = CopDemSource(spec, source, cache, client)
    say = log or (lambda _msg: None)
    results: list[CopPrepareResult] = []
    try:
        for fp in footprints:
            tile_dir = kind_dir / fp.tile
            params = _params(fp, kind, src, allow_missing)
            reason = "--force"
            if not force:
                fresh, reason = set_up_to_date(tile_dir, params)
                if fresh:
                    names = tuple(c.label for c in fp.cells)
                    results.append(CopPrepareResult(fp.tile, kind, tile_dir, "up-to-date", names))
                    continue
            results.append(
                _prepare_one(fp, spec, src, kind_dir, tile_dir, params, allow_missing, reason, say)
            )
    finally:
        src.close()
    return results


def _missing_message(fp: CopFootprint, spec: CopDemSpec, src: CopDemSource, missing: list[CellFile]) -> str:
    names = ", ".join(m.name for m in missing)
    if src.kind == "folder":
        hint = (
            "add them to that folder (CDSE names or .tar products, AWS COG names or the AWS layout), or "
            f"leave out --from to download them from {spec.aws_url}; if they are sea (no Copernicus DEM "
            "cell exists there), "
            "pass --allow-missing"
        )
    else:
        hint = (
            f"the server has none of the {len(fp.cells)} cells: check --from and that it holds {spec.kind} "
            "(Copernicus_DSM_COG_"
            + spec.code
            + "_..._DEM/...tif); if the tile is all sea, pass --allow-missing"
        )
    return f"tile {fp.tile}: expected {names} at {src.description}, found none; {hint}"


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system, or no hard links there
        shutil.copyfile(src, dest)


def _prepare_one(
    fp: CopFootprint,
    spec: CopDemSpec,
    src: CopDemSource,
    kind_dir: Path,
    tile_dir: Path,
    params: dict[str, Any],
    allow_missing: bool,
    reason: str,
    say: Callable[[str], None],
) -> CopPrepareResult:
    from .prepare import _replace_dir, _umask

    found: list[CellFile] = []
    for cell in fp.cells:
        say(f"{fp.tile}: {cell.dged_name(spec)} from {src.description}")
        try:
            found.append(src.get_cell(cell))
        except SourceUnreachable:
            raise  # no connection at all: its own message and exit code, no other tile is tried
        except HttpError as exc:
            raise DemError(f"tile {fp.tile}: {cell.dged_name(spec)}: {exc}") from None
    present = [f for f in found if f.path is not None]
    absent = [f for f in found if f.path is None]
    # a 404 is the server saying "no such cell" (sea); a folder without the file says nothing
    unexplained = absent if src.kind == "folder" else (absent if not present else [])
    if unexplained and not allow_missing:
        raise DemError(_missing_message(fp, spec, src, unexplained))
    if src.kind == "folder":
        absent = [
            CellFile(f.cell, f.name, f.origin, None, absent="not in the mirror folder (--allow-missing)")
            for f in absent
        ]
    grids = {}
    for f in present:
        assert f.path is not None
        try:
            grids[f.name] = check_cell_raster(f.path, spec, f.cell)
        except DemError:
            if src.kind == "url":
                f.path.unlink(missing_ok=True)  # our download, not a cell: fetch it again next time
            raise
    kind_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{fp.tile}.tmp-", dir=kind_dir))
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the set becomes <kind>/<tile>
        for f in present:
            assert f.path is not None
            _link_or_copy(f.path, staging / f.name)
        doc = {
            "s2kit_dem": FORMAT_VERSION,
            "kind": spec.kind,
            "s2kit_version": __version__,
            "dem_reference": spec.reference,
            "parameters": params,
            "geometry": fp.to_dict(),
            "cells": [{**f.to_dict(), **grids[f.name]} for f in present],
            "absent": [f.to_dict() for f in absent],
        }
        atomic_write_text(staging / DEM_JSON, json.dumps(doc, indent=2) + "\n")
        _replace_dir(staging, tile_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return CopPrepareResult(
        fp.tile,
        spec.kind,
        tile_dir,
        "written",
        tuple(f.cell.label for f in present),
        absent=tuple(f.cell.label for f in absent),
        reason=reason,
        size_bytes=sum(int(f.size or 0) for f in present),
    )


# ----------------------------------------------------------------------------- checks
def missing_list_problem(install_dir: Path, kind: str) -> str | None:
    """Why a native Sen2Cor install may not skip cells that do not exist (one line), or None.

    Sen2Cor 3 skips the cells named in ``aux_data/CopernicusDEM_{30,90}_TIFF_missing_tiles.list``
    and, without that list, uses no DEM at all (a flat surface). Whether 2.12 does the same is
    unverified, so this is a warning, and only where the install's ``aux_data`` can be found.
    """
    name = f"CopernicusDEM_{'30' if copdem_spec(kind).code == '10' else '90'}_TIFF_missing_tiles.list"
    aux = sorted(install_dir.glob("lib/python*/site-packages/sen2cor/aux_data"))
    if not aux or any((d / name).is_file() for d in aux):
        return None
    return (
        f"expected {name} in {display_path(aux[0])} (Sen2Cor 3 reads it to skip Copernicus DEM cells "
        "that do not exist and uses no DEM without it; unverified for 2.12), found none"
    )


def _read_doc(folder: Path) -> dict[str, Any] | None:
    """s2kit's ``dem.json`` of a Copernicus DEM set (capped read), None when there is none."""
    from .check import _DEM_JSON_CAP

    try:
        with open(folder / DEM_JSON, "rb") as fh:
            doc = json.loads(fh.read(_DEM_JSON_CAP))
    except FileNotFoundError:
        return None
    except RecursionError:  # "[[[[..." nested past the stack: what callers report as a bad dem.json
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(doc, dict) or doc.get("s2kit_dem") != FORMAT_VERSION:
        raise ValueError(f"not an s2kit dem.json version {FORMAT_VERSION}")
    return doc


def copdem_problem(folder: Path, tile: str, kind: str) -> str | None:
    """:func:`s2kit.dem.dem_problem` for a Copernicus DEM folder (stat only, nothing hashed)."""
    spec = copdem_spec(kind)
    try:
        needed = copdem_footprint(tile, 0.0).cells
    except TileError as exc:
        return str(exc)
    try:
        names = set(os.listdir(folder))
        doc = _read_doc(folder) if DEM_JSON in names else None
        if doc is not None and doc.get("kind") != kind:
            return f"expected a {kind} set in {display_path(folder)}/ ({DEM_JSON}), found {doc.get('kind')!r}"
        recorded = [(str(c["name"]), int(c["size"])) for c in doc["cells"]] if doc else []
        absent = {str(a["name"]) for a in doc["absent"]} if doc else set()
    except OSError as exc:
        return f"expected a readable DEM folder {display_path(folder)}/, found: {exc.strerror}"
    except (ValueError, KeyError, TypeError) as exc:
        return f"expected a valid {DEM_JSON} in {display_path(folder)}/, found {exc}"
    missing = [c.dged_name(spec) for c in needed if c.dged_name(spec) not in names | absent]
    if missing:
        return (
            f"expected {', '.join(missing)} in {display_path(folder)}/ (the tile's footprint needs "
            f"{'them' if len(missing) > 1 else 'it'}), found none"
        )
    for name, size in recorded:
        try:
            found = (folder / name).stat().st_size
        except OSError:
            return f"expected {name} in {display_path(folder)}/ (listed in {DEM_JSON}), found none"
        if found != size:
            return f"expected {name} of {size} bytes in {display_path(folder)}/ ({DEM_JSON}), found {found}"
    return None


def check_copdem(folder: Path, doc: dict[str, Any]) -> DemCheck:
    """Verify a prepared Copernicus DEM set: every cell the tile needs is there (or recorded
    absent at the source), each file has its recorded size and SHA-256 and is the cell's
    GeoTIFF; unrecorded cell files are reported. Findings are collected, nothing is raised."""
    from ..http import sha256_file

    report = DemCheck(folder, kind=str(doc.get("kind")))
    try:
        spec = copdem_spec(report.kind)
        params, cells, absent = doc["parameters"], doc["cells"], doc["absent"]
        report.tile = normalize_tile(str(params["tile"]))
        fp = copdem_footprint(report.tile, float(params["margin_m"]))
        recorded = {str(c["name"]): c for c in cells}
        absent_names = {str(a["name"]) for a in absent}
    except (KeyError, TypeError, ValueError, InputError, TileError) as exc:
        report.add("error", "bad-dem-json", f"expected a valid {DEM_JSON}, found {exc}")
        return report
    report.names = tuple(sorted(parse_cell_name(n)[1].label for n in recorded if _CELL_RE.match(n[:-4])))
    report.dem = {
        "dem_reference": spec.reference,
        "absent": sorted(str(a.get("cell", a["name"])) for a in absent),
        "cells": len(recorded),
    }
    for cell in fp.cells:
        name = cell.dged_name(spec)
        if name not in recorded and name not in absent_names:
            report.add(
                "error",
                "missing-cell",
                f"{name}: expected (tile {report.tile} needs it), found no entry in dem.json",
            )
    for name, entry in sorted(recorded.items()):
        path = folder / name
        try:
            _, cell = parse_cell_name(name)
            size = path.stat().st_size
        except DemError as exc:
            report.add("error", "bad-dem-json", str(exc))
            continue
        except OSError:
            report.add("error", "missing-cell", f"{name}: expected (listed in dem.json), found no file")
            continue
        if size != entry.get("size"):
            report.add("error", "cell-size", f"{name}: expected {entry.get('size')} bytes, found {size}")
            continue
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            report.add(
                "error", "cell-checksum", f"{name}: expected SHA-256 {entry.get('sha256')}, found {digest}"
            )
            continue
        try:
            check_cell_raster(path, spec, cell, deep=False)  # the checksum vouches for the blocks
        except DemError as exc:
            report.add("error", "cell-raster", exc.message)
    for extra in sorted(folder.glob("Copernicus_DSM_*")):
        if extra.name not in recorded:
            report.add(
                "warning", "unexpected-cell", f"{extra.name}: not written by s2kit dem prepare for this set"
            )
    return report
