"""REAL raster files for L2A trees built from real metadata (tests/support/safe_trees.py).

``safe_trees.build_l2a_tree`` and the Sen2Cor test double write placeholder band files
that are not rasters. The helpers here replace the 60 m ones with real, lossless JPEG 2000
files (GDAL's JP2OpenJPEG driver in rasterio's wheel, ``QUALITY=100 REVERSIBLE=YES``),
georeferenced on the tile's UTM grid (EPSG and upper-left corner from s2kit.tiles), with
the DN each product's own metadata implies: ``DN = reflectance * BOA_QUANTIFICATION_VALUE
- BOA_ADD_OFFSET`` (DN 0 = no data). The pixel values are SYNTHETIC; grids are small
(default 64 x 64 pixels over the 109.8 km tile) unless a test asks for real size (1830).

``derive_metadata`` rewrites a tree's MTD_MSIL2A.xml to model another product kind (e.g.
a Sen2Cor 2.9 product without BOA_ADD_OFFSET made from real PB 04.00 metadata); tests
that use it say so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from s2kit.compare import band_scaling
from s2kit.safe import open_product
from s2kit.tiles import tile_utm

from .safe_trees import build_l2a_tree

TILE_M = 109_800.0
JP2_OPTIONS = {"QUALITY": "100", "REVERSIBLE": "YES"}


def r60_files(root: Path) -> dict[str, Path]:
    """band name -> 60 m band file of a tree."""
    out = {}
    for f in root.glob("GRANULE/*/IMG_DATA/R60m/*_60m.jp2"):
        m = re.search(r"_([A-Z0-9]{3})_60m\.jp2$", f.name)
        if m:
            out[m[1]] = f
    return out


def write_jp2(path: Path, data: np.ndarray, epsg: int, ulx: float, uly: float, pixel: float) -> Path:
    arr = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path,
        "w",
        driver="JP2OpenJPEG",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype=arr.dtype,
        crs=f"EPSG:{epsg}",
        transform=Affine(pixel, 0.0, ulx, 0.0, -pixel, uly),
        **JP2_OPTIONS,
    ) as dst:
        dst.write(arr)
    return path


def pattern(size: int, band: str, seed: int = 0) -> np.ndarray:
    """A smooth synthetic reflectance field in 0.02 .. 0.45, different per band."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / max(size - 1, 1)
    k = (sum(map(ord, band)) + seed) % 7 + 1
    return 0.02 + 0.2 * (1 + np.sin(2 * np.pi * (k * x + 0.5 * y))) * (0.5 + 0.5 * y) + 0.01 * k


def write_l2a_rasters(
    root: Path,
    reflectance: Mapping[str, np.ndarray] | None = None,
    *,
    size: int = 64,
    scl: np.ndarray | None = None,
    tci: bool = True,
    nodata: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Write real 60 m rasters into an L2A tree; returns the DN written per band.

    ``reflectance`` maps band -> float array (default :func:`pattern`); ``nodata`` marks
    pixels written as DN 0 in every band (and SCL 0).
    """
    product = open_product(root)
    tile = product.metadata.mgrs_tile
    assert tile, root
    epsg, (xmin, _ymin, _xmax, ymax) = tile_utm(tile)
    pixel = TILE_M / size
    files = r60_files(root)
    written: dict[str, np.ndarray] = {}
    for band, path in files.items():
        if band in ("AOT", "WVP"):
            dn = np.full((size, size), 100, dtype=np.uint16)
        elif band == "SCL":
            dn = (scl if scl is not None else (np.arange(size * size).reshape(size, size) % 11 + 1)).astype(
                np.uint8
            )
        elif band == "TCI":
            continue
        else:
            refl = (
                reflectance[band] if reflectance is not None and band in reflectance else pattern(size, band)
            )
            offset, quant = band_scaling(product, band)
            dn = np.clip(np.rint(refl * quant - offset), 1, 65535).astype(np.uint16)
        if nodata is not None:
            dn = np.where(nodata, 0, dn).astype(dn.dtype)
        write_jp2(path, dn, epsg, xmin, ymax, pixel)
        written[band] = dn
    if tci and "TCI" in files:
        rgb = []
        for band in ("B04", "B03", "B02"):
            offset, quant = band_scaling(product, band)
            refl = (written[band].astype(np.float64) + offset) / quant
            rgb.append(np.clip(refl / 0.3 * 255, 1, 255))
        arr = np.stack(rgb).astype(np.uint8)
        if nodata is not None:
            arr = np.where(nodata[None], 0, arr).astype(np.uint8)
        write_jp2(files["TCI"], arr, epsg, xmin, ymax, pixel)
        written["TCI"] = arr
    return written


def derive_metadata(
    root: Path,
    *,
    drop_offsets: bool = False,
    quantification: int | None = None,
    sen2cor_gipp_version: str | None = None,
) -> Path:
    """Rewrite MTD_MSIL2A.xml of a test tree (a DERIVED product kind, test-only)."""
    mtd = root / "MTD_MSIL2A.xml"
    text = mtd.read_text(encoding="utf-8")
    if drop_offsets:
        text, n = re.subn(
            r"\s*<BOA_ADD_OFFSET_VALUES_LIST>.*?</BOA_ADD_OFFSET_VALUES_LIST>", "", text, flags=re.S
        )
        assert n == 1, "no BOA_ADD_OFFSET_VALUES_LIST to drop"
    if quantification is not None:
        text, n = re.subn(r"(<BOA_QUANTIFICATION_VALUE[^>]*>)[^<]+(<)", rf"\g<1>{quantification}\g<2>", text)
        assert n == 1
    if sen2cor_gipp_version is not None:
        text, n = re.subn(r'(type="GIP_L2ACSC" version=")[^"]*"', rf'\g<1>{sen2cor_gipp_version}"', text)
        assert n == 1
    mtd.write_text(text, encoding="utf-8")
    return root


# ----------------------------------------------------------------------------- a whole run
def make_demo_run(root: Path, n: int = 3, crash: int | None = 2, real_rasters: int = 1) -> dict[str, object]:
    """A local batch of *n* scenes run by the Sen2Cor TEST DOUBLE (tests/sen2cor_double), the
    scene *crash* set to crash; the first *real_rasters* published L2A get real 60 m rasters
    (synthetic values), the others keep the double's placeholders.

    Returns {"run": run dir, "l2a": [published products], "cfg": config}.
    """
    from s2kit.batch import submit
    from s2kit.plan import make_plan
    from s2kit.runs import RunDir

    from .configs import batch_config

    cfg = batch_config(root, n, {crash: "crash"} if crash is not None else None)
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    submit(cfg, rd)
    products = sorted(p for p in cfg.paths.l2a_dir.iterdir() if p.name.endswith(".SAFE"))
    for p in products[:real_rasters]:
        write_l2a_rasters(p)
    return {"run": rd.path, "l2a": products, "cfg": cfg}


# ----------------------------------------------------------------------------- the compare pair
# (one real ESA L2A and the same product as a local Sen2Cor 2.9 run writes it; test_compare and
# the docs transcripts use them)
SIZE = 64
BANDS_60 = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12")


def esa_pb04(parent: Path) -> Path:
    """REAL ESA PB 04.00 metadata (BOA_ADD_OFFSET -1000, quantification 10000)."""
    return build_l2a_tree(parent, "33XWJ")


def local_29(parent: Path, **derive: Any) -> Path:
    """DERIVED: the same product as Sen2Cor 2.9 writes it (no BOA_ADD_OFFSET)."""
    return derive_metadata(
        build_l2a_tree(parent, "33XWJ"), drop_offsets=True, sen2cor_gipp_version="0290", **derive
    )
