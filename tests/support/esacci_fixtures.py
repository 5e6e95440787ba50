"""A STAND-IN for ESACCI-LC-L4-ALL-FOR-SEN2COR.zip with the real layout and tiny rasters.

The real archive (UCLouvain, several GB) cannot be fetched here. Its layout is public (see
the docstring of s2kit/esacci.py): a zip holding ``CCI4SEN2COR/ESACCI-LC-L4-ALL-FOR-SEN2COR.tar``
and ``CCI4SEN2COR/ESACCI-LC-L4-LCCS-WB-FOR-SEN2COR.tar`` (plus macOS ``._*`` files); the
stand-in puts the weekly snow-condition files in the first tar and the two maps in the second.
Rasters are global, 8-bit, EPSG:4326, a few pixels each - NOT real data.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.io import MemoryFile

from s2kit.esacci import LCCS_MAP, SNOW_DIR, WB_MAP

STANDIN_NAME = "standin-ESACCI-LC-L4-ALL-FOR-SEN2COR.zip"


def snow_names(count: int = 52) -> list[str]:
    first = date(2000, 1, 1)
    return [
        f"ESACCI-LC-L4-Snow-Cond-AggOcc-500m-P13Y7D-2000-2012-{(first + timedelta(days=7 * k)):%Y%m%d}-v2.0.tif"
        for k in range(count)
    ]


def global_tif(width: int, height: int, seed: int, dtype: str = "uint8", **overrides: Any) -> bytes:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 220, size=(height, width)).astype(dtype)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": dtype,
        "crs": "EPSG:4326",
        "transform": Affine(360.0 / width, 0.0, -180.0, 0.0, -180.0 / height, 90.0),
    }
    profile.update(overrides)
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data, 1)
        return bytes(mem.read())


def tar_bytes(members: dict[str, bytes | None], links: dict[str, str] | None = None) -> bytes:
    """A tar; a member whose value is None is a directory; *links* adds symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_543_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def standard_members(snow_count: int = 52) -> tuple[dict[str, bytes | None], dict[str, bytes | None]]:
    """(members of the ALL tar, members of the LCCS-WB tar)."""
    snow: dict[str, bytes | None] = {f"{SNOW_DIR}/": None}
    for k, name in enumerate(snow_names(snow_count)):
        snow[f"{SNOW_DIR}/{name}"] = global_tif(8, 4, seed=k)
    maps: dict[str, bytes | None] = {
        LCCS_MAP: global_tif(36, 18, seed=100),
        WB_MAP: global_tif(72, 36, seed=101),
    }
    return snow, maps


def write_standin_zip(
    path: Path,
    *,
    all_tar: dict[str, bytes | None] | None = None,
    lccs_wb_tar: dict[str, bytes | None] | None = None,
    all_links: dict[str, str] | None = None,
    extra_zip_members: dict[str, bytes] | None = None,
    raw_tars: dict[str, bytes] | None = None,
    snow_count: int = 52,
) -> Path:
    snow, maps = standard_members(snow_count)
    tars = {
        "CCI4SEN2COR/ESACCI-LC-L4-ALL-FOR-SEN2COR.tar": tar_bytes(
            all_tar if all_tar is not None else snow, all_links
        ),
        "CCI4SEN2COR/ESACCI-LC-L4-LCCS-WB-FOR-SEN2COR.tar": tar_bytes(
            lccs_wb_tar if lccs_wb_tar is not None else maps
        ),
    }
    tars.update(raw_tars or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("CCI4SEN2COR/", b"")
        for name, data in tars.items():
            zf.writestr(name, data)
        # macOS resource forks, as in the real archive's listing
        zf.writestr("CCI4SEN2COR/._ESACCI-LC-L4-ALL-FOR-SEN2COR.tar", b"\x00\x05\x16\x07AppleDouble")
        zf.writestr("__MACOSX/CCI4SEN2COR/._ESACCI-LC-L4-LCCS-WB-FOR-SEN2COR.tar", b"\x00\x05\x16\x07")
        for name, data in (extra_zip_members or {}).items():
            zf.writestr(name, data)
    return path


def tree(folder: Path) -> dict[str, int]:
    """Relative path -> size of every file below *folder* (to prove nothing changed)."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def read_first_pixel(path: Path) -> int:
    with rasterio.open(path) as ds:
        return int(ds.read(1)[0, 0])
