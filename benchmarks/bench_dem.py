"""Benchmark: `s2kit dem prepare` for one MGRS tile from 4 SRTM-sized tiles, vs GDAL + zip.

Inputs (built here, same run): the 4 CGIAR-shaped SRTM tiles 19FDV needs (srtm_22_23,
srtm_22_24, srtm_23_23, srtm_23_24), each 6000x6000 Int16, nodata -32768, in a DEFLATE zip
like CGIAR's. The terrain is synthetic (smooth relief + noise + sea): sizes depend on it.

Timed on the same inputs, best of N runs each (the slow lab how-to once):

* s2kit      ``prepare_dem(["19FDV"], folder, out, force=True)`` - hash the source zips
             (cache manifest), extract the 4 tifs, merge + crop to the tile footprint + 2 km,
             write the DEFLATE GeoTIFF, 4 zips and dem.json;
* gdal-crop  the same output with GDAL's tools: unzip the 4 tifs, ``gdal_merge.py -ul_lr
             ... -ps ... -n/-a_nodata/-init -32768 -co COMPRESS=DEFLATE -co PREDICTOR=2``, then
             4 zips (stored) under the 4 names - the comparison the issue asks for (<= 1.0x);
* lab-howto  the lab how-to literally: unzip, ``gdal_merge.py -o merged.tif`` of the whole
             4 tiles (12000x12000, uncompressed), 4 zips (DEFLATE, as ``zip`` does).

Then sizes: the per-tile set of s2kit vs the region mosaic set of the how-to. Prints
numbers and ratios, asserts nothing. Needs gdal_merge.py (Debian gdal-bin + python3-gdal).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from s2kit.dem import prepare_dem
from s2kit.tiles import srtm_tile_bounds, tile_geometry

TILE = "19FDV"
PER_TILE = 6000
NODATA = -32768
RUNS = int(os.environ.get("S2KIT_BENCH_RUNS", "3"))


def terrain(name: str) -> np.ndarray:
    i, j = (int(x) for x in name.removeprefix("srtm_").split("_"))
    rows = np.arange((j - 1) * PER_TILE, j * PER_TILE, dtype=np.float32)[:, None]
    cols = np.arange((i - 1) * PER_TILE, i * PER_TILE, dtype=np.float32)[None, :]
    relief = 900 + 650 * np.sin(cols / 700.0) * np.cos(rows / 900.0) + 280 * np.sin((cols + rows) / 240.0)
    rng = np.random.default_rng(i * 100 + j)
    relief = relief + rng.normal(0, 6, size=(PER_TILE, PER_TILE)).astype(np.float32)
    data = relief.astype(np.int16)
    data[relief < 350] = NODATA  # sea
    return data


def build_sources(folder: Path) -> list[str]:
    folder.mkdir(parents=True)
    names = list(tile_geometry(TILE).srtm_tiles)
    for name in names:
        west, _, _, north = srtm_tile_bounds(name)
        tif = folder / f"{name}.tif"
        res = 5.0 / PER_TILE
        profile = {
            "driver": "GTiff",
            "width": PER_TILE,
            "height": PER_TILE,
            "count": 1,
            "dtype": "int16",
            "crs": "EPSG:4326",
            "transform": Affine(res, 0.0, west, 0.0, -res, north),
            "nodata": NODATA,
        }
        with rasterio.open(tif, "w", **profile) as dst:  # uncompressed, like CGIAR's tifs
            dst.write(terrain(name), 1)
        with zipfile.ZipFile(folder / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(tif, f"{name}.tif")
            zf.writestr(f"{name}.hdr", b"header\n")
            zf.writestr(f"{name}.tfw", b"tfw\n")
        tif.unlink()
    return names


def unzip_all(src: Path, names: list[str], dest: Path) -> list[str]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        with zipfile.ZipFile(src / f"{name}.zip") as zf:
            zf.extract(f"{name}.tif", dest)
        out.append(str(dest / f"{name}.tif"))
    return out


def zip_copies(tif: Path, names: list[str], dest: Path, method: int) -> None:
    for name in names:
        with zipfile.ZipFile(dest / f"{name}.zip", "w", method) as zf:
            zf.write(tif, f"{name}.tif")


def run_s2kit(src: Path, work: Path, names: list[str]) -> Path:
    [result] = prepare_dem([TILE], str(src), work / "out", force=True)
    return result.path


def run_gdal_crop(src: Path, work: Path, names: list[str], grid: tuple[list[float], float]) -> Path:
    (west, south, east, north), res = grid
    tifs = unzip_all(src, names, work / "tifs")
    merged = work / "merged.tif"
    cmd = [
        "gdal_merge.py",
        "-q",
        "-o",
        str(merged),
        "-ot",
        "Int16",
        "-n",
        str(NODATA),
        "-a_nodata",
        str(NODATA),
    ]
    cmd += ["-init", str(NODATA), "-ul_lr", repr(west), repr(north), repr(east), repr(south)]
    cmd += ["-ps", repr(res), repr(res), "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=2", *tifs]
    subprocess.run(cmd, check=True)
    out = work / "set"
    out.mkdir()
    zip_copies(merged, names, out, zipfile.ZIP_STORED)
    return out


def run_lab_howto(src: Path, work: Path, names: list[str]) -> Path:
    tifs = unzip_all(src, names, work / "tifs")
    merged = work / "merged.tif"
    subprocess.run(["gdal_merge.py", "-q", "-o", str(merged), *tifs], check=True)
    out = work / "set"
    out.mkdir()
    zip_copies(merged, names, out, zipfile.ZIP_DEFLATED)
    return out


def best_of(
    label: str,
    fn: Callable[[Path, Path, list[str]], Path],
    src: Path,
    root: Path,
    names: list[str],
    runs: int = RUNS,
) -> tuple[float, Path]:
    times = []
    result = root
    for k in range(runs):
        work = root / label / (f"run{k}" if label != "s2kit" else "")
        if label != "s2kit":
            shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        result = fn(src, work, names)
        times.append(time.perf_counter() - t)
    print(f"{label:<10} best {min(times):6.2f} s   runs: {', '.join(f'{x:.2f}' for x in times)}")
    return min(times), result


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("srtm_*.zip"))


def main() -> int:
    if shutil.which("gdal_merge.py") is None:
        print("bench_dem: gdal_merge.py not found (apt-get install gdal-bin python3-gdal)", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="s2kit-bench-dem-"))
    try:
        t = time.perf_counter()
        src = root / "srtm"
        names = build_sources(src)
        src_mb = sum((src / f"{n}.zip").stat().st_size for n in names) / 1e6
        print(
            f"inputs: {len(names)} SRTM tiles {PER_TILE}x{PER_TILE} Int16 for {TILE} "
            f"({src_mb:.0f} MB of zips, built in {time.perf_counter() - t:.1f} s); best of {RUNS} runs"
        )
        ours, ours_dir = best_of("s2kit", run_s2kit, src, root, names)
        doc = json.loads((ours_dir / "dem.json").read_text())
        grid = (doc["dem"]["bounds"], doc["dem"]["res_deg"])  # the same window as s2kit's
        crop, crop_dir = best_of("gdal-crop", functools.partial(run_gdal_crop, grid=grid), src, root, names)
        lab, lab_dir = best_of("lab-howto", run_lab_howto, src, root, names, runs=1)  # ~30x slower: once
        print(f"ratio s2kit / gdal-crop (same output)  : {ours / crop:.2f}x  (target <= 1.0x)")
        print(f"ratio s2kit / lab-howto (region merge) : {ours / lab:.2f}x")
        with rasterio.open(f"/vsizip/{ours_dir / names[0]}.zip/{names[0]}.tif") as ds:
            shape = f"{ds.width}x{ds.height}"
        per_tile, region = folder_size(ours_dir), folder_size(lab_dir)
        print(
            f"size: per-tile set {per_tile / 1e6:.1f} MB ({len(names)} zips of a {shape} px crop) vs "
            f"region mosaic set {region / 1e6:.1f} MB (4 zips of 12000x12000 px): {per_tile / region:.3f}x"
        )
        print(f"size: gdal-crop set {folder_size(crop_dir) / 1e6:.1f} MB")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
