"""The processes ``benchmarks/run.py`` times that are not an ``s2kit`` command.

``python benchmarks/procs.py KIND ARGS...``; each is a whole process, like the s2kit side:

* ``lxml-parse LIST``   reference for metadata: bare ``lxml.etree.parse`` of every file in LIST
  (one path a line) with the parser settings s2kit uses (no entities, no DTD, no network),
  each tree dropped at once (parse and discard: no tree is kept alive);
* ``s2kit-read LIST``   s2kit's metadata reader (``s2kit.safe.read_metadata_file``) on the same
  files, each result dropped (s2kit has no command that reads a bare metadata file in bulk);
* ``s2kit-inspect-loop LIST``  reference for ``inspect``: the library loop in one process, one
  JSON line per product, as ``s2kit inspect --json PATH...`` prints them;
* ``warp-crop OUT W S E N RES SRC...``  reference for ``dem prepare`` when the gdalwarp CLI is
  not installed: GDAL's warper through rasterio (``rasterio.warp.reproject``, nearest, nodata
  -32768), the crop of the SRTM tiles SRC to the window W S E N at RES degrees, written as a
  DEFLATE (predictor 2) Int16 GeoTIFF, as ``gdalwarp -te W S E N -tr RES RES -ot Int16
  -srcnodata -32768 -dstnodata -32768 -co COMPRESS=DEFLATE -co PREDICTOR=2 SRC... OUT`` does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _paths(listing: str) -> list[str]:
    return [line for line in Path(listing).read_text(encoding="utf-8").splitlines() if line]


def lxml_parse(listing: str) -> None:
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    for path in _paths(listing):
        etree.parse(path, parser)  # dropped at once


def s2kit_read(listing: str) -> None:
    from s2kit.safe import read_metadata_file

    for path in _paths(listing):
        read_metadata_file(path)  # dropped at once


def s2kit_inspect_loop(listing: str) -> None:
    from s2kit.safe import inspect_path

    out = sys.stdout
    for path in _paths(listing):
        out.write(json.dumps(inspect_path(path), ensure_ascii=False, default=str) + "\n")


def warp_crop(out: str, west: str, south: str, east: str, north: str, res: str, *sources: str) -> None:
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    w, s, e, n, r = (float(v) for v in (west, south, east, north, res))
    width, height = round((e - w) / r), round((n - s) / r)
    transform = Affine(r, 0.0, w, 0.0, -r, n)
    dst = np.full((height, width), -32768, dtype=np.int16)
    for path in sources:
        with rasterio.open(path) as src:
            reproject(
                rasterio.band(src, 1),
                dst,
                dst_transform=transform,
                dst_crs="EPSG:4326",
                src_nodata=-32768,
                dst_nodata=-32768,
                init_dest_nodata=False,
                resampling=Resampling.nearest,
            )
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "int16",
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": -32768,
        "compress": "deflate",
        "predictor": 2,
    }
    with rasterio.open(out, "w", **profile) as ds:
        ds.write(dst, 1)


KINDS = {
    "lxml-parse": lxml_parse,
    "s2kit-read": s2kit_read,
    "s2kit-inspect-loop": s2kit_inspect_loop,
    "warp-crop": warp_crop,
}

if __name__ == "__main__":
    KINDS[sys.argv[1]](*sys.argv[2:])
