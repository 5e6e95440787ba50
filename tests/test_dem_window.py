"""SRTM members are inflated in memory and only the tile's window is kept (issue 17, item 5).

The reference for "pixel-identical" is the way s2kit merged before: every ``srtm_XX_YY.tif``
extracted whole to disk, a tile east of the antimeridian moved by +360°, ``rasterio.merge`` of
the whole tiles with the same bounds, resolution and GeoTIFF options. Pixels, transform and
nodata must be identical, and so must the file's bytes: the merged GeoTIFF takes the first
source tile's block layout, as before (except across the antimeridian, where s2kit used to move
the eastern tile through a VRT whose strip layout then leaked into the output; the pixels were
the same). The comparisons with GDAL's own tools are in test_dem.py (they need its CLI tools).
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.merge import merge

from s2kit.dem import _GTIFF_OPTIONS, DemError, SourceTile, merge_srtm, prepare_dem
from s2kit.tiles import tile_geometry
from tests.support.srtm_fixtures import NODATA, srtm_folder

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

PER_TILE = 60
TILES = ["19FDV", "31UFS", "31UGR", "17SQV", "01KAB"]


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = sorted({n for t in TILES for n in tile_geometry(t).srtm_tiles})
    return srtm_folder(tmp_path_factory.mktemp("srtm") / "mirror", names, PER_TILE)


def sources_of(src: Path, tile: str) -> dict[str, SourceTile]:
    return {n: SourceTile(n, str(src / f"{n}.zip"), src / f"{n}.zip") for n in tile_geometry(tile).srtm_tiles}


def whole_tile_merge(src: Path, tile: str, bounds: tuple[float, ...], res: float, work: Path) -> Path:
    """The previous merge: whole tifs extracted, shifted across 180° where needed, merged."""
    work.mkdir()
    out = work / "reference.tif"
    with contextlib.ExitStack() as stack:
        datasets = []
        for name in sorted(tile_geometry(tile).srtm_tiles):
            with zipfile.ZipFile(src / f"{name}.zip") as zf:
                tif = Path(zf.extract(f"{name}.tif", work))
            ds = stack.enter_context(rasterio.open(tif))
            if ds.bounds.right <= bounds[0]:  # east of the antimeridian: move it by +360°
                t = ds.transform
                mem = stack.enter_context(MemoryFile())
                profile = {**ds.profile, "transform": Affine(t.a, t.b, t.c + 360.0, t.d, t.e, t.f)}
                with mem.open(**profile) as dst:
                    dst.write(ds.read())
                ds = stack.enter_context(mem.open())
            datasets.append(ds)
        merge(
            datasets,
            bounds=bounds,
            res=(res, res),
            nodata=NODATA,
            dtype="int16",
            method="first",
            dst_path=out,
            dst_kwds={"driver": "GTiff", **_GTIFF_OPTIONS},
        )
    return out


@pytest.mark.parametrize("tile", TILES, ids=["4-tiles", "lon-edge", "lat-edge", "single", "antimeridian"])
def test_window_merge_is_pixel_identical_to_merging_whole_extracted_tiles(
    src: Path, tmp_path: Path, tile: str
) -> None:
    out = tmp_path / "merged.tif"
    work = tmp_path / "work"
    work.mkdir()
    result = merge_srtm(tile_geometry(tile), sources_of(src, tile), work, out)
    reference = whole_tile_merge(src, tile, result.bounds, result.res, tmp_path / "ref")
    with rasterio.open(out) as ours, rasterio.open(reference) as ref:
        assert ours.shape == ref.shape
        assert ours.transform.almost_equals(ref.transform, precision=1e-12)
        a, b = ours.read(1), ref.read(1)
        assert np.array_equal(a, b), f"{int((a != b).sum())} pixels differ"
        assert ours.nodata == ref.nodata == NODATA
    assert out.read_bytes() == reference.read_bytes()  # the same GeoTIFF, byte for byte
    if tile == "01KAB":
        assert result.bounds[0] < 180.0 < result.bounds[2]


def test_srtm_members_are_not_extracted_to_disk(src: Path, tmp_path: Path) -> None:
    """Defect: every whole SRTM GeoTIFF (72 MB at CGIAR size) was extracted into the work folder
    and read back, to use a window of it; now nothing is written there."""
    work = tmp_path / "work"
    work.mkdir()
    merge_srtm(tile_geometry("19FDV"), sources_of(src, "19FDV"), work, tmp_path / "merged.tif")
    assert sorted(p.name for p in work.iterdir()) == []


def test_member_with_a_wrong_crc_is_refused_though_it_inflates(tmp_path: Path) -> None:
    """A member whose DEFLATE stream is valid but whose CRC-32 does not match is refused (the
    whole member is inflated and checked, not only the window's rows)."""
    folder = srtm_folder(tmp_path / "mirror", ["srtm_21_05"], PER_TILE)
    target = folder / "srtm_21_05.zip"
    with zipfile.ZipFile(target) as zf:
        info = zf.getinfo("srtm_21_05.tif")
    good = info.CRC.to_bytes(4, "little")
    raw = target.read_bytes()
    assert raw.count(good) == 2  # the local header and the central directory
    target.write_bytes(raw.replace(good, (info.CRC ^ 0x1).to_bytes(4, "little")))
    out = tmp_path / "dem"
    with pytest.raises(DemError) as err:
        prepare_dem(["17SQV"], str(folder), out)
    assert "expected an intact srtm_21_05.tif in the zip, found a corrupt member" in str(err.value)
    assert "\n" not in str(err.value)
    assert not (out / "17SQV").exists()
