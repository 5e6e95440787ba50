"""Checks of a prepared DEM set: the full one (`s2kit dem check`) and the cheap one of plan and worker."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, S2kitError, display_path
from ..findings import Finding, Severity
from ..fsutil import sha256_file
from ..tiles import (
    TileGeometry,
    normalize_tile,
    tile_geometry,
)
from .base import (
    DEM_JSON,
    FORMAT_VERSION,
    SRTM_NODATA,
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
    kind: str = "srtm"  # or a Copernicus DEM kind: then ``names`` are cells (N50_00_E005_00)

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
        out: dict[str, Any] = {"path": str(self.path), "tile": self.tile, "ok": self.ok}
        if self.kind == "srtm":
            out["zips"] = list(self.names)
        else:
            out.update(kind=self.kind, cells=list(self.names))
        return {**out, "dem": self.dem, "findings": [f.to_dict() for f in self.findings]}

    def lines(self) -> Iterator[str]:
        where = display_path(self.path)
        if self.ok and self.kind != "srtm":
            extra = f"; {len(self.warnings)} warning(s)" if self.warnings else ""
            absent = self.dem.get("absent") or []
            sea = f"; absent at the source (sea, or not released): {' '.join(absent)}" if absent else ""
            yield (
                f"{where}: {self.kind} set for {self.tile} OK ({len(self.names)} cell"
                f"{'s' * (len(self.names) != 1)}: {' '.join(self.names)}{sea}; DEM_Reference "
                f"{self.dem.get('dem_reference')}{extra})"
            )
        elif self.ok:
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


def kind_dir(dem_dir: Path, kind: str = "srtm") -> Path:
    """Where a kind's tile folders live: ``dem_dir`` for SRTM, ``dem_dir/<kind>`` for the
    Copernicus DEM (``cop-dem-glo30`` / ``cop-dem-glo90``)."""
    if kind == "srtm":
        return dem_dir
    if kind not in ("cop-dem-glo30", "cop-dem-glo90"):
        raise InputError(f"expected a DEM kind srtm, cop-dem-glo30 or cop-dem-glo90, found {kind!r}")
    return dem_dir / kind


def tile_dem_dir(dem_dir: Path | None, tile: str | None, kind: str = "srtm") -> Path | None:
    """The DEM folder of *tile*: ``dem_dir/<tile>/`` (or ``dem_dir/T<tile>/``) for SRTM,
    ``dem_dir/<kind>/<tile>/`` for the Copernicus DEM, when it is a folder, else None. Never
    ``dem_dir`` itself nor another tile's (or another kind's) folder."""
    if dem_dir is None or not tile:
        return None
    base = kind_dir(dem_dir, kind)
    for name in (tile, f"T{tile}"):
        if (base / name).is_dir():
            return base / name
    return None


def dem_problem(dem_dir: Path | None, tile: str | None, kind: str = "srtm") -> str | None:
    """Why *tile* has no usable DEM of *kind* under *dem_dir* (one line), or None when it has one.

    Cheap (stat only, nothing is hashed, so the planner can ask once per tile): for SRTM the
    folder ``dem_dir/<tile>/`` must hold ``srtm_XX_YY.zip`` (or ``.tif``) for every SRTM tile
    the tile's footprint touches (the names Sen2Cor derives, :func:`s2kit.tiles.tile_geometry`
    without margin); when s2kit's ``dem.json`` is there, every zip it records must be present
    with its recorded size. For the Copernicus DEM, ``dem_dir/<kind>/<tile>/`` must hold every
    cell the footprint touches (:func:`s2kit.dem.copdem.copdem_footprint`), or s2kit's
    ``dem.json`` must record it as absent at the source. ``s2kit dem check`` verifies the
    checksums and the rasters.
    """
    if dem_dir is None:
        return "expected paths.dem_dir, found none configured"
    if not tile:
        return "expected the MGRS tile of the scene, found none"
    try:
        base = kind_dir(dem_dir, kind)
    except InputError as exc:
        return exc.message
    folder = tile_dem_dir(dem_dir, tile, kind)
    if folder is None:
        what = "a DEM folder" if kind == "srtm" else f"a {kind} DEM folder"
        return f"expected {what} {display_path(base / tile)}/, found none"
    if kind != "srtm":
        from .copdem import copdem_problem

        return copdem_problem(folder, tile, kind)
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
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
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
        if isinstance(doc, dict) and doc.get("kind") in ("cop-dem-glo30", "cop-dem-glo90"):
            from .copdem import check_copdem

            return check_copdem(folder, doc)
        if not isinstance(doc, dict) or doc.get("s2kit_dem") != FORMAT_VERSION:
            raise ValueError(f"not an s2kit dem.json version {FORMAT_VERSION}")
        params, zips, dem = doc["parameters"], doc["zips"], doc["dem"]
        report.tile = normalize_tile(str(params["tile"]))
        margin = float(params["margin_m"])
    except FileNotFoundError:
        if not any(folder.glob("srtm_*")) and not any(folder.glob("Copernicus_DSM_*")):
            raise InputError(  # not a DEM set at all: refuse, no report of "?" (issue 15)
                f"expected a prepared DEM set (<out>/<tile> with {DEM_JSON} and srtm_XX_YY.zip, or "
                f"<out>/<kind>/<tile> with Copernicus DEM cells, written by s2kit dem prepare --tile TILE "
                f"--out DIR), found neither in {display_path(folder)}"
            ) from None
        report.add("error", "no-dem-json", f"expected {DEM_JSON} (written by s2kit dem prepare), found none")
        return report
    except (OSError, ValueError, KeyError, TypeError, S2kitError, RecursionError) as exc:
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
    import rasterio  # type: ignore[import-untyped]

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


def set_up_to_date(tile_dir: Path, params: dict[str, Any]) -> tuple[bool, str]:
    """Whether ``dem prepare`` may keep the set in *tile_dir*: its dem.json records exactly
    *params* and :func:`check_dem` finds it whole (SRTM and Copernicus sets alike); else
    ``(False, why)`` (``""`` when there is no folder yet)."""
    doc_path = tile_dir / DEM_JSON
    if not doc_path.is_file():
        return False, "" if not tile_dir.exists() else "no dem.json"
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False, "dem.json unreadable"
    recorded = doc.get("parameters") if isinstance(doc, dict) else None
    if recorded != params:
        return False, "parameters changed"
    report = check_dem(tile_dir)
    if not report.ok:
        return False, f"existing set invalid ({report.errors[0].message})"
    return True, ""
