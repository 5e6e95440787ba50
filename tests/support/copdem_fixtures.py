"""Copernicus-DEM-shaped test cells (NOT Copernicus DEM data), with the real names and grids.

A cell is a 1-band Float32 EPSG:4326 GeoTIFF of the 1°x1° cell at its south-west corner
(lat, lon), ``spec.rows`` rows and the columns of its latitude zone (Copernicus DEM product
handbook), origin half a pixel north-west of the corner like the AWS COG cells. Every pixel's
height is a function of its global position; cells south of the equator in the west are
"sea" only in the sense that the test server lacks them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from s2kit.dem.copdem import SPECS, Cell, CopDemSpec


def cell_array(spec: CopDemSpec, cell: Cell) -> np.ndarray:
    """Known heights in metres: smooth in the cell, distinct between cells."""
    rows = np.arange(spec.rows, dtype=np.int32)[:, None]
    cols = np.arange(cell.width(spec), dtype=np.int32)[None, :]
    return ((rows * 3 + cols * 5) % 700 + 10 * (cell.lat + 90) + (cell.lon + 180)).astype(np.float32)


def cell_bytes(spec: CopDemSpec, cell: Cell, **overrides: Any) -> bytes:
    """The GeoTIFF bytes of *cell* (``overrides`` change the profile, e.g. ``height``/``transform``)."""
    width = cell.width(spec)
    xres, yres = 1.0 / width, 1.0 / spec.rows
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": spec.rows,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": Affine(xres, 0.0, cell.lon - xres / 2, 0.0, -yres, cell.lat + 1 + yres / 2),
        "compress": "deflate",
        "zlevel": 1,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    profile.update(overrides)
    data = cell_array(spec, cell)[: profile["height"], : profile["width"]].astype(profile["dtype"])
    with rasterio.MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(data, 1)
        return bytes(mem.read())


def write_cell(path: Path, spec: CopDemSpec, cell: Cell, **overrides: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cell_bytes(spec, cell, **overrides))
    return path


def aws_files(kind: str, cells: list[Cell] | tuple[Cell, ...]) -> dict[str, bytes]:
    """``/<COG stem>/<COG stem>.tif`` -> bytes, the layout of the public AWS buckets."""
    spec = SPECS[kind]
    out = {}
    for cell in cells:
        stem = cell.cog_stem(spec)
        out[f"/{stem}/{stem}.tif"] = cell_bytes(spec, cell)
    return out


def mirror_folder(
    folder: Path, kind: str, cells: list[Cell] | tuple[Cell, ...], layout: str = "dged"
) -> Path:
    """A local mirror: ``dged`` (CDSE names, flat), ``cog`` (AWS names, flat) or ``aws`` (bucket layout)."""
    spec = SPECS[kind]
    for cell in cells:
        if layout == "dged":
            write_cell(folder / cell.dged_name(spec), spec, cell)
        elif layout == "cog":
            write_cell(folder / f"{cell.cog_stem(spec)}.tif", spec, cell)
        else:
            stem = cell.cog_stem(spec)
            write_cell(folder / stem / f"{stem}.tif", spec, cell)
    return folder


def dged_tar(folder: Path, spec: CopDemSpec, cell: Cell, *, extra: dict[str, bytes] | None = None) -> Path:
    """A CDSE DGED product as a tar: ``<stem>/DEM/<stem>_DEM.tif`` beside other members."""
    import tarfile

    stem = cell.dged_name(spec).removesuffix("_DEM.tif")
    members = {f"{stem}/DEM/{stem}_DEM.tif": cell_bytes(spec, cell), f"{stem}/INFO/{stem}.xml": b"<info/>"}
    members.update(extra or {})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.tar"
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path
