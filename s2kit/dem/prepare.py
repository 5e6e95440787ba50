"""A prepared DEM set per tile: ``<out>/<tile>/srtm_XX_YY.zip`` (each the merged DEM) + ``dem.json``."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .. import __version__
from ..errors import InputError, display_path
from ..fsutil import atomic_write_text
from ..http import HttpClient, HttpError, SourceUnreachable, sha256_file
from ..tiles import (
    DEFAULT_MARGIN_M,
    SRTM_SOUTH,
    TileGeometry,
    normalize_tile,
    srtm_tile_bounds,
    tile_geometry,
)
from .base import (
    _ZIP_DATE,
    DEM_JSON,
    FORMAT_VERSION,
    SRTM_NODATA,
    DemError,
)
from .check import set_up_to_date
from .merge import merge_srtm
from .source import SourceTile, SrtmSource


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
                fresh, reason = set_up_to_date(tile_dir, params)
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
