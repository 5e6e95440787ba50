"""SRTM-shaped test data, GDAL reference tools and a loopback HTTP file server.

The GeoTIFFs have the geometry of CGIAR SRTM v4.1 tiles (5°x5° from the tile's north-west
corner, Int16, nodata -32768, one band, EPSG:4326) scaled down from 6000x6000 to
``per_tile`` x ``per_tile`` pixels. Every pixel's value is a function of its *global* SRTM
grid position, so a merged raster can be checked pixel for pixel; a block of each tile is
nodata (sea). The zips hold ``srtm_XX_YY.tif`` plus ``.hdr``/``.tfw``/readme members like the
real ones.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2kit.tiles import srtm_tile_bounds

NODATA = -32768


def elevation(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Known, position-dependent elevations in metres (global SRTM pixel row/column)."""
    return ((rows * 7 + cols * 13) % 9000 - 400).astype(np.int16)


def srtm_array(name: str, per_tile: int, sea: bool = True) -> np.ndarray:
    i, j = (int(x) for x in name.removeprefix("srtm_").split("_"))
    r0, c0 = (j - 1) * per_tile, (i - 1) * per_tile
    rows, cols = np.mgrid[r0 : r0 + per_tile, c0 : c0 + per_tile]
    data = elevation(rows, cols)
    if sea:  # a nodata block in the south-east quarter of every tile
        q = per_tile // 4
        data[-q:, -q:] = NODATA
    return data


def write_srtm_tif(path: Path, name: str, per_tile: int = 60, **overrides: Any) -> Path:
    west, _, _, north = srtm_tile_bounds(name)
    res = 5.0 / per_tile
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": per_tile,
        "height": per_tile,
        "count": 1,
        "dtype": "int16",
        "crs": "EPSG:4326",
        "transform": Affine(res, 0.0, west, 0.0, -res, north),
        "nodata": NODATA,
    }
    data = overrides.pop("data", None)
    profile.update(overrides)
    if data is None:
        data = srtm_array(name, per_tile).astype(profile["dtype"])
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


def write_srtm_zip(
    zip_path: Path,
    name: str,
    per_tile: int = 60,
    *,
    tif_bytes: bytes | None = None,
    extra_members: dict[str, bytes] | None = None,
    **overrides: Any,
) -> Path:
    """``srtm_XX_YY.zip`` as CGIAR ships it (tif + hdr + tfw + readme), DEFLATE-compressed."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    if tif_bytes is None:
        tmp = zip_path.with_suffix(".build.tif")
        write_srtm_tif(tmp, name, per_tile, **overrides)
        tif_bytes = tmp.read_bytes()
        tmp.unlink()
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}.tif", tif_bytes)
        zf.writestr(f"{name}.hdr", b"ENVI-like header written by tests/srtm_fixtures.py\n")
        zf.writestr(f"{name}.tfw", b"0.0833333\n0\n0\n-0.0833333\n0\n0\n")
        zf.writestr("readme.txt", b"stand-in for the CGIAR-CSI readme\n")
        for member, data in (extra_members or {}).items():
            zf.writestr(member, data)
    return zip_path


def srtm_folder(folder: Path, names: list[str] | tuple[str, ...], per_tile: int = 60) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_srtm_zip(folder / f"{name}.zip", name, per_tile)
    return folder


def read_tif(path: str | Path) -> tuple[np.ndarray, Any, Any]:
    with rasterio.open(path) as ds:
        return ds.read(1), ds.transform, ds.nodata


# ----------------------------------------------------------------------------- GDAL tools
def require_gdal_tools() -> dict[str, str]:
    """gdal_merge.py and gdalwarp from Debian gdal-bin/python3-gdal: required in CI."""
    tools = {name: shutil.which(name) for name in ("gdal_merge.py", "gdalwarp", "gdal_translate")}
    missing = [n for n, p in tools.items() if p is None]
    if missing:
        msg = f"GDAL command-line tools missing: {missing} (apt-get install gdal-bin python3-gdal)"
        if os.environ.get("S2KIT_CI") == "1":
            pytest.fail(f"required in CI: {msg}")
        pytest.skip(msg)
    return {n: p for n, p in tools.items() if p is not None}


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[:2000]}")


def gdal_merge(out: Path, inputs: list[str], bounds: tuple[float, float, float, float], res: float) -> Path:
    west, south, east, north = bounds
    cmd = ["gdal_merge.py", "-q", "-o", str(out), "-of", "GTiff", "-ot", "Int16"]
    cmd += ["-n", str(NODATA), "-a_nodata", str(NODATA), "-init", str(NODATA)]
    cmd += ["-ul_lr", repr(west), repr(north), repr(east), repr(south), "-ps", repr(res), repr(res)]
    _run(cmd + inputs)
    return out


def gdalwarp(
    out: Path,
    inputs: list[str],
    bounds: tuple[float, float, float, float],
    res: float,
    extra: list[str] | None = None,
) -> Path:
    cmd = ["gdalwarp", "-q", "-overwrite", "-of", "GTiff", "-ot", "Int16", "-r", "near", *(extra or [])]
    cmd += ["-srcnodata", str(NODATA), "-dstnodata", str(NODATA)]
    cmd += ["-te", *(repr(v) for v in bounds), "-tr", repr(res), repr(res)]
    _run(cmd + inputs + [str(out)])
    return out


def gdal_shift(src: str, out: Path, dx: float) -> Path:
    """A copy of *src* moved by *dx* degrees (gdal_translate -a_ullr), for antimeridian merges."""
    with rasterio.open(src) as ds:
        w, s, e, n = ds.bounds
    _run(["gdal_translate", "-q", "-a_ullr", repr(w + dx), repr(n), repr(e + dx), repr(s), src, str(out)])
    return out


# ----------------------------------------------------------------------------- HTTP
@dataclass
class FileServer:
    """Serves bytes at paths of a pytest-httpserver, with Range support and injected faults.

    ``faults[path]`` is a list consumed one entry per request: ``("status", 500)``,
    ``("truncate", nbytes)`` (send Content-Length of the whole but only *nbytes*, then drop
    the connection), ``("slow", seconds)`` or ``("ignore-range", None)``.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    if_ranges: list[str | None] = field(default_factory=list)
    accept_ranges: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0

    def wait_done(self, count: int, timeout: float = 10.0) -> None:
        """Wait until *count* requests were answered (abandoned ones included): the server is
        shared between tests, and a request still queued must not reach the next test."""
        deadline = time.monotonic() + timeout
        while self.done < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.05)

    def handler(self, request: Any) -> Any:
        try:
            return self._handle(request)
        finally:
            with self.lock:
                self.done += 1

    def _handle(self, request: Any) -> Any:
        from werkzeug import Response

        path = request.path
        rng = request.headers.get("Range")
        with self.lock:
            self.requests.append((path, rng))
            self.if_ranges.append(request.headers.get("If-Range"))
            queue = self.faults.get(path) or []
            fault = queue.pop(0) if queue else None
        if fault and fault[0] == "status":
            return Response(f"injected {fault[1]}", status=fault[1])
        if fault and fault[0] == "slow":
            time.sleep(float(fault[1]))
        data = self.files.get(path)
        if data is None:
            return Response("not found", status=404)
        headers = {"Accept-Ranges": "bytes"} if self.accept_ranges else {}
        headers["ETag"] = f'"{len(data)}-{hash(data) & 0xFFFFFF:x}"'
        start = 0
        if rng and self.accept_ranges and not (fault and fault[0] == "ignore-range"):
            spec = rng.removeprefix("bytes=").split("-")[0]
            start = int(spec)
            if start >= len(data):
                return Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        status = 206 if start else 200
        if fault and fault[0] == "truncate":
            cut = int(fault[1])

            def broken() -> Iterator[bytes]:
                yield body[:cut]
                raise ConnectionAbortedError("injected: connection dropped")

            headers["Content-Length"] = str(len(body))
            return Response(broken(), status=status, headers=headers, direct_passthrough=True)
        return Response(body, status=status, headers=headers, content_type="application/octet-stream")


def serve_files(httpserver: Any, files: dict[str, bytes], **kwargs: Any) -> FileServer:
    import re

    server = FileServer(files=dict(files), **kwargs)
    httpserver.expect_request(re.compile(".*")).respond_with_handler(server.handler)
    return server


def no_sleep() -> Callable[[float], None]:
    return lambda _s: None


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
