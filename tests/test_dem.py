"""SRTM DEM sets: merge vs GDAL's own tools, sources (folder, loopback HTTP), bad input, check, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from s2kit.dem import DEM_JSON, SRTM_NODATA, DemError, check_dem, prepare_dem
from s2kit.errors import InputError
from s2kit.http import HttpClient, SourceUnreachable, sha256_file
from s2kit.tiles import TileError, tile_geometry
from tests.support.fake_bucket import closed_port
from tests.support.srtm_fixtures import (
    NODATA,
    elevation,
    gdal_merge,
    gdal_shift,
    gdalwarp,
    no_sleep,
    read_tif,
    require_gdal_tools,
    serve_files,
    srtm_array,
    srtm_folder,
    write_srtm_tif,
    write_srtm_zip,
    zip_bytes,
)

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

PER_TILE = 60  # 6000x6000 scaled down 100x: 5°/60 = 1/12° pixels
ALL_NAMES = sorted(
    {n for t in ("19FDV", "31UFS", "31UGR", "01KAB", "17SQV", "33TVM") for n in tile_geometry(t).srtm_tiles}
)


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return srtm_folder(tmp_path_factory.mktemp("srtm") / "mirror", ALL_NAMES, PER_TILE)


def set_members(tile_dir: Path) -> dict[str, bytes]:
    out = {}
    for z in sorted(tile_dir.glob("srtm_*.zip")):
        with zipfile.ZipFile(z) as zf:
            assert zf.testzip() is None
            [info] = zf.infolist()
            assert info.filename == z.stem + ".tif"
            out[z.name] = zf.read(info)
    return out


def merged(tile_dir: Path) -> tuple[np.ndarray, object, dict[str, object]]:
    doc = json.loads((tile_dir / DEM_JSON).read_text())
    first = doc["zips"][0]["name"]
    data, transform, nodata = read_tif(f"/vsizip/{tile_dir / first}/{first.removesuffix('.zip')}.tif")
    assert nodata == SRTM_NODATA
    return data, transform, doc


def expected_values(doc: dict[str, object], shape: tuple[int, int]) -> np.ndarray:
    dem = doc["dem"]
    assert isinstance(dem, dict)
    res = dem["res_deg"]
    west, _, _, north = dem["bounds"]
    c0, r0 = round((west + 180) / res), round((60 - north) / res)
    rows, cols = np.mgrid[r0 : r0 + shape[0], c0 : c0 + shape[1]]
    return elevation(rows, cols % (72 * PER_TILE))


# ----------------------------------------------------------------------------- the set
def test_four_srtm_tiles_merged_into_every_zip(src: Path, tmp_path: Path) -> None:
    [result] = prepare_dem(["T19FDV"], str(src), tmp_path / "dem")
    tile_dir = tmp_path / "dem" / "19FDV"
    assert result.action == "written" and result.path == tile_dir
    names = ("srtm_22_23", "srtm_22_24", "srtm_23_23", "srtm_23_24")
    assert result.names == names
    assert sorted(p.name for p in tile_dir.iterdir()) == sorted([f"{n}.zip" for n in names] + [DEM_JSON])
    members = set_members(tile_dir)
    assert len(set(members.values())) == 1  # one merged DEM under every name
    zips = [(tile_dir / f"{n}.zip").read_bytes() for n in names]
    assert len({len(z) for z in zips}) == 1  # stored, so the zips differ only in the member name
    data, _, doc = merged(tile_dir)
    valid = data != NODATA
    assert np.array_equal(data[valid], expected_values(doc, data.shape)[valid])
    assert 0 < (~valid).sum() < data.size  # the sea blocks of the fixtures stay nodata
    # covers the footprint, on the SRTM pixel grid
    w, s, e, n = doc["dem"]["bounds"]
    fw, fs, fe, fn = tile_geometry("19FDV").footprint
    assert w <= fw and s <= fs and e >= fe and n >= fn
    res = doc["dem"]["res_deg"]
    for edge in (w, n):
        assert abs(edge / res - round(edge / res)) < 1e-6
    # dem.json records sources with their checksums
    assert [s["name"] for s in doc["sources"]] == list(names)
    for entry in doc["sources"]:
        assert entry["sha256"] == sha256_file(src / f"{entry['name']}.zip")
        assert entry["size"] == (src / f"{entry['name']}.zip").stat().st_size
    assert doc["zips"][0]["sha256"] == sha256_file(tile_dir / "srtm_22_23.zip")
    assert doc["dem"]["member_sha256"] == sha256_file_bytes(members["srtm_22_23.zip"])
    assert check_dem(tile_dir).ok
    mode = tile_dir.stat().st_mode & 0o777
    assert mode == 0o777 & ~current_umask()


def sha256_file_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_dem_json_golden(src: Path, tmp_path: Path, data_regression) -> None:  # type: ignore[no-untyped-def]
    """dem.json of a 4-tile set, with paths and checksums (GDAL-version dependent) masked."""
    prepare_dem(["19FDV"], str(src), tmp_path / "dem")
    doc = json.loads((tmp_path / "dem" / "19FDV" / DEM_JSON).read_text())
    doc["s2kit_version"] = "<version>"
    doc["parameters"]["source"] = "<mirror>"
    for entry in doc["sources"]:
        entry["origin"] = entry["origin"].replace(str(src), "<mirror>")
        entry["sha256"] = entry["size"] = "<masked>"
    for entry in doc["zips"]:
        entry["sha256"] = entry["size"] = "<masked>"
    doc["dem"]["member_sha256"] = doc["dem"]["member_size"] = "<masked>"
    doc["geometry"] = {k: v for k, v in doc["geometry"].items() if k in ("tile", "epsg", "srtm_tiles")}
    doc["dem"]["bounds"] = [round(v, 9) for v in doc["dem"]["bounds"]]
    data_regression.check(doc)


# ----------------------------------------------------------------------------- vs GDAL
def extracted(src: Path, names: tuple[str, ...], dest: Path) -> list[str]:
    dest.mkdir(exist_ok=True)
    out = []
    for name in names:
        with zipfile.ZipFile(src / f"{name}.zip") as zf:
            zf.extract(f"{name}.tif", dest)
        out.append(str(dest / f"{name}.tif"))
    return out


@pytest.mark.parametrize(
    "tile",
    ["19FDV", "31UFS", "31UGR", "33TVM", "17SQV"],
    ids=["4-tiles", "lon-edge", "lat-edge+utm-edge", "lon-edge-2", "single"],
)
def test_merge_equals_gdal_merge_and_gdalwarp(src: Path, tmp_path: Path, tile: str) -> None:
    require_gdal_tools()
    prepare_dem([tile], str(src), tmp_path / "dem")
    ours, transform, doc = merged(tmp_path / "dem" / tile)
    bounds, res = tuple(doc["dem"]["bounds"]), doc["dem"]["res_deg"]  # type: ignore[index]
    inputs = extracted(src, tile_geometry(tile).srtm_tiles, tmp_path / "tifs")
    for name, out in (("gdal_merge.py", gdal_merge), ("gdalwarp", gdalwarp)):
        ref, ref_transform, ref_nodata = read_tif(out(tmp_path / f"{name}.tif", inputs, bounds, res))
        assert ref.shape == ours.shape, name
        assert np.array_equal(ref, ours), f"{name}: {(ref != ours).sum()} pixels differ"
        assert ref_transform.almost_equals(transform, precision=1e-9), name  # type: ignore[attr-defined]
        assert ref_nodata == NODATA


def test_antimeridian_merge_equals_gdal(src: Path, tmp_path: Path) -> None:
    """Across 180°: srtm_01_16 is moved east of srtm_72_16. GDAL reference 1: Sen2Cor's own
    gdalwarp flags (-t_srs EPSG:4326 --config CENTER_LONG 180) on the tiles as they are;
    reference 2: gdal_merge.py on a copy of srtm_01_16 shifted by +360° (gdal_translate)."""
    require_gdal_tools()
    prepare_dem(["01KAB"], str(src), tmp_path / "dem")
    ours, transform, doc = merged(tmp_path / "dem" / "01KAB")
    bounds, res = tuple(doc["dem"]["bounds"]), doc["dem"]["res_deg"]  # type: ignore[index]
    assert bounds[0] < 180.0 < bounds[2]
    inputs = extracted(src, ("srtm_01_16", "srtm_72_16"), tmp_path / "tifs")
    sen2cor = ["-t_srs", "EPSG:4326", "--config", "CENTER_LONG", "180"]
    ref, ref_transform, _ = read_tif(gdalwarp(tmp_path / "warp.tif", inputs, bounds, res, extra=sen2cor))
    assert np.array_equal(ref, ours)
    assert ref_transform.almost_equals(transform, precision=1e-9)  # type: ignore[attr-defined]
    shifted = [str(gdal_shift(inputs[0], tmp_path / "shifted.tif", 360.0)), inputs[1]]
    ref2, _, _ = read_tif(gdal_merge(tmp_path / "merge.tif", shifted, bounds, res))
    assert np.array_equal(ref2, ours)
    valid = ours != NODATA
    assert valid.all() and np.array_equal(ours, expected_values(doc, ours.shape))


def sen2cor_dem_step(dem_dir: Path, names: list[str], work: Path) -> tuple[np.ndarray, object]:
    """Sen2Cor 2.8.0's SRTM step (L2A_Tables.gdalDEM_srtm) replayed: testzip + extract each
    srtm_XX_YY.tif, shift it by half a pixel (SIIMPC-577), mosaic with ``gdalwarp -ot Int16``."""
    import rasterio

    work.mkdir()
    tifs = []
    for name in names:
        with zipfile.ZipFile(dem_dir / f"{name}.zip") as zf:
            assert zf.testzip() is None
            zf.extract(f"{name}.tif", work)
        tif = work / f"{name}.tif"
        with rasterio.open(tif, "r+") as ds:
            t = ds.transform
            ds.transform = Affine(t.a, t.b, t.c - t.a / 2, t.d, t.e, t.f + t.e / 2)
        tifs.append(str(tif))
    subprocess.run(["gdalwarp", "-q", "-ot", "Int16", *tifs, str(work / "src.tif")], check=True)
    data, transform, _ = read_tif(work / "src.tif")
    return data, transform


def test_sen2cor_dem_step_on_the_set_equals_it_on_the_original_tiles(src: Path, tmp_path: Path) -> None:
    """The fix: whatever Sen2Cor mosaics from the set is the merged DEM; and that equals Sen2Cor's
    mosaic of the original tiles, on the set's window."""
    require_gdal_tools()
    prepare_dem(["19FDV"], str(src), tmp_path / "dem")
    ours, transform, _ = merged(tmp_path / "dem" / "19FDV")
    names = list(tile_geometry("19FDV").srtm_tiles)
    from_set, set_transform = sen2cor_dem_step(tmp_path / "dem" / "19FDV", names, tmp_path / "from-set")
    assert np.array_equal(from_set, ours)
    t = transform
    # Sen2Cor's SIIMPC-577: origin - gt[1]/2, origin + gt[5]/2 (half a pixel west and south)
    shifted = Affine(t.a, 0.0, t.c - t.a / 2, 0.0, t.e, t.f + t.e / 2)  # type: ignore[attr-defined]
    assert set_transform.almost_equals(shifted, precision=1e-9)  # type: ignore[attr-defined]
    from_tiles, tiles_transform = sen2cor_dem_step(src, names, tmp_path / "from-tiles")
    col = round((set_transform.c - tiles_transform.c) / set_transform.a)  # type: ignore[attr-defined]
    row = round((set_transform.f - tiles_transform.f) / set_transform.e)  # type: ignore[attr-defined]
    window = from_tiles[row : row + ours.shape[0], col : col + ours.shape[1]]
    assert np.array_equal(window, ours)


# ----------------------------------------------------------------------------- idempotence
def test_second_run_does_nothing(src: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(src, mirror)
    out = tmp_path / "dem"
    prepare_dem(["31UFS", "17SQV"], str(mirror), out)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*") if ".cache" not in p.parts}
    shutil.rmtree(mirror)  # a second run must not even look at the source
    mirror.mkdir()
    again = prepare_dem(["31UFS", "17SQV"], str(mirror), out)
    assert [r.action for r in again] == ["up-to-date", "up-to-date"]
    assert "nothing to do" in again[0].summary()
    after = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*") if ".cache" not in p.parts}
    assert after == before


def test_changed_parameters_or_force_rebuild(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "dem"
    prepare_dem(["17SQV"], str(src), out)
    small = merged(out / "17SQV")[0].shape
    [wider] = prepare_dem(["17SQV"], str(src), out, margin_m=5_000)
    assert wider.action == "written" and wider.reason == "parameters changed"
    assert merged(out / "17SQV")[0].shape > small
    [forced] = prepare_dem(["17SQV"], str(src), out, margin_m=5_000, force=True)
    assert forced.action == "written" and forced.reason == "--force"
    assert sorted(p.name for p in out.iterdir()) == [".cache", "17SQV"]  # no staging left


def test_repairs_a_damaged_set(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "dem"
    prepare_dem(["31UFS"], str(src), out)
    (out / "31UFS" / "srtm_37_02.zip").write_bytes(b"damaged")
    [again] = prepare_dem(["31UFS"], str(src), out)
    assert again.action == "written" and "existing set invalid" in again.reason
    assert check_dem(out / "31UFS").ok


def test_output_is_byte_reproducible(src: Path, tmp_path: Path) -> None:
    prepare_dem(["31UFS"], str(src), tmp_path / "a")
    prepare_dem(["31UFS"], str(src), tmp_path / "b")
    for name in ("srtm_37_02.zip", "srtm_38_02.zip"):
        assert (tmp_path / "a" / "31UFS" / name).read_bytes() == (
            tmp_path / "b" / "31UFS" / name
        ).read_bytes()


# ----------------------------------------------------------------------------- HTTP source
def served(httpserver, folder: Path, names: list[str] | tuple[str, ...]) -> object:  # type: ignore[no-untyped-def]
    return serve_files(httpserver, {f"/srtm/{n}.zip": (folder / f"{n}.zip").read_bytes() for n in names})


def http_client(**kw: object) -> HttpClient:
    kw.setdefault("retries", 1)
    return HttpClient(backoff=0.0, sleep=no_sleep(), timeout=(2.0, 5.0), **kw)  # type: ignore[arg-type]


def test_from_loopback_http_with_cache_manifest(httpserver, src: Path, tmp_path: Path) -> None:
    server = served(httpserver, src, ALL_NAMES)
    out = tmp_path / "dem"
    base = httpserver.url_for("/srtm/")
    with http_client() as http:
        prepare_dem(["31UFS"], base, out, client=http)
        prepare_dem(["31UGR"], base, out, client=http)  # shares srtm_38_02: taken from the cache
    fetched = [p for p, _ in server.requests]  # type: ignore[attr-defined]
    assert sorted(fetched) == ["/srtm/srtm_37_02.zip", "/srtm/srtm_38_02.zip", "/srtm/srtm_38_03.zip"]
    manifest = json.loads((out / ".cache" / "srtm" / "manifest.json").read_text())["files"]
    assert sorted(manifest) == ["srtm_37_02.zip", "srtm_38_02.zip", "srtm_38_03.zip"]
    for name, entry in manifest.items():
        assert entry["sha256"] == sha256_file(src / name) and entry["size"] == (src / name).stat().st_size
        assert entry["origin"] == base + name
    doc = json.loads((out / "31UGR" / DEM_JSON).read_text())
    assert {s["origin"] for s in doc["sources"]} == {base + "srtm_38_02.zip", base + "srtm_38_03.zip"}
    ours = merged(out / "31UGR")[0]
    prepare_dem(["31UGR"], str(src), tmp_path / "from-folder")
    assert np.array_equal(ours, merged(tmp_path / "from-folder" / "31UGR")[0])


def test_http_interrupted_download_is_resumed(httpserver, src: Path, tmp_path: Path) -> None:
    server = served(httpserver, src, ALL_NAMES)
    size = (src / "srtm_21_05.zip").stat().st_size
    server.faults["/srtm/srtm_21_05.zip"] = [("truncate", size // 2)]  # type: ignore[attr-defined]
    with http_client() as http:
        [result] = prepare_dem(["17SQV"], httpserver.url_for("/srtm/"), tmp_path / "dem", client=http)
    assert result.action == "written"
    assert server.requests[1][1] is not None  # type: ignore[attr-defined]
    assert check_dem(tmp_path / "dem" / "17SQV").ok


def test_http_404_missing_tile(httpserver, src: Path, tmp_path: Path) -> None:
    served(httpserver, src, ["srtm_37_02"])  # srtm_38_02 is "all ocean": not on the server
    out = tmp_path / "dem"
    with http_client() as http, pytest.raises(DemError) as info:
        prepare_dem(["31UFS"], httpserver.url_for("/srtm/"), out, client=http)
    assert "expected srtm_38_02.zip at" in str(info.value) and "--allow-missing" in str(info.value)
    assert not (out / "31UFS").exists()
    with http_client() as http:
        [result] = prepare_dem(["31UFS"], httpserver.url_for("/srtm/"), out, client=http, allow_missing=True)
    assert result.missing == ("srtm_38_02",) and result.names == ("srtm_37_02", "srtm_38_02")
    data, _, doc = merged(out / "31UFS")
    res = doc["dem"]["res_deg"]
    west = doc["dem"]["bounds"][0]
    east_col = round((5.0 - west) / res)  # 5°E: where srtm_38_02 begins
    assert (data[:, east_col:] == NODATA).all() and (data[:, :east_col] != NODATA).any()
    assert [s["missing"] for s in doc["sources"]] == [False, True]
    assert check_dem(out / "31UFS").ok


def subset(src: Path, folder: Path, names: list[str]) -> Path:
    folder.mkdir()
    for name in names:
        shutil.copy(src / f"{name}.zip", folder / f"{name}.zip")
    return folder


def test_missing_tile_inside_srtm_coverage_is_not_found_in_the_source_not_all_ocean(
    src: Path, tmp_path: Path
) -> None:
    folder = subset(src, tmp_path / "partial", ["srtm_37_02"])  # 31UFS (Belgium) needs 37_02 and 38_02
    with pytest.raises(DemError) as info:
        prepare_dem(["31UFS"], str(folder), tmp_path / "dem")
    message = str(info.value)
    assert message == (
        f"tile 31UFS: expected srtm_38_02.zip at {folder}, found none; srtm_38_02.zip: not found in the "
        "source (31UFS lies inside SRTM coverage, 60°N to 56°S): add them to that folder, or leave out "
        "--source to download them from CGIAR"
    )
    assert "--allow-missing" not in message and "ocean" not in message
    assert not (tmp_path / "dem" / "31UFS").exists()


def test_missing_tile_beyond_srtm_coverage_suggests_allow_missing(src: Path, tmp_path: Path) -> None:
    names = [n for n in tile_geometry("19FDV").srtm_tiles if n != "srtm_22_24"]
    folder = subset(src, tmp_path / "partial", names)  # 19FDV (Tierra del Fuego) reaches the 55-60°S row
    with pytest.raises(DemError) as info:
        prepare_dem(["19FDV"], str(folder), tmp_path / "dem")
    assert str(info.value).endswith(
        "srtm_22_24.zip: beyond SRTM coverage (60°N to 56°S), where CGIAR has little or no data: pass "
        "--allow-missing to fill them with nodata"
    )
    [result] = prepare_dem(["19FDV"], str(folder), tmp_path / "dem", allow_missing=True)
    assert result.missing == ("srtm_22_24",)


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "nonexistent.invalid"])
def test_unreachable_source_fails_at_once_without_retries(
    tmp_path: Path, connects: list[str], host: str
) -> None:
    host = host.format(port=closed_port())
    sleeps: list[float] = []
    with (
        HttpClient(retries=5, backoff=10.0, sleep=sleeps.append) as http,
        pytest.raises(SourceUnreachable) as info,
    ):
        prepare_dem(["31UFS", "17SQV"], f"http://{host}/srtm/", tmp_path / "dem", client=http)
    assert len(connects) == 1 and sleeps == []  # the first zip of the first tile, once
    assert str(info.value).startswith(
        f"expected to reach {host} (what was tried: http://{host}/srtm/srtm_37_02.zip), found no connection: "
    )
    assert info.value.exit_code == 3
    assert not (tmp_path / "dem" / "31UFS").exists()


@pytest.mark.parametrize(
    ("fault", "message"),
    [(("status", 500), "found HTTP 500"), (("slow", 0.6), "expected data within 0.2 s")],
    ids=["500", "slow"],
)
def test_http_server_errors(
    httpserver, src: Path, tmp_path: Path, fault: tuple[str, object], message: str
) -> None:
    server = served(httpserver, src, ALL_NAMES)
    server.faults["/srtm/srtm_21_05.zip"] = [fault] * 2  # type: ignore[attr-defined]
    out = tmp_path / "dem"
    with (
        HttpClient(retries=1, backoff=0, timeout=(2.0, 0.2), sleep=no_sleep()) as http,
        pytest.raises(DemError) as e,
    ):
        prepare_dem(["17SQV"], httpserver.url_for("/srtm/"), out, client=http)
    assert message in str(e.value) and "tile 17SQV: srtm_21_05.zip" in str(e.value)
    assert not (out / "17SQV").exists()
    assert not list((out / ".cache" / "srtm").glob("srtm_21_05.zip"))
    server.wait_done(2)  # type: ignore[attr-defined]


def test_http_corrupt_download_is_not_cached(httpserver, src: Path, tmp_path: Path) -> None:
    data = (src / "srtm_21_05.zip").read_bytes()
    # a complete response, of a bad file
    serve_files(httpserver, {"/srtm/srtm_21_05.zip": data[: len(data) // 2]})
    out = tmp_path / "dem"
    with http_client() as http, pytest.raises(DemError, match="truncated or corrupt"):
        prepare_dem(["17SQV"], httpserver.url_for("/srtm/"), out, client=http)
    cache = out / ".cache" / "srtm"
    assert not (cache / "srtm_21_05.zip").exists()
    assert not (cache / "manifest.json").exists()


# ----------------------------------------------------------------------------- bad input
def bad_source(folder: Path, kind: str) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    srtm_folder(folder, ["srtm_21_05"], PER_TILE)
    target = folder / "srtm_21_05.zip"
    if kind == "truncated-zip":
        target.write_bytes(target.read_bytes()[:700])
    elif kind == "zip-slip":
        write_srtm_zip(target, "srtm_21_05", PER_TILE, extra_members={"../../escape.txt": b"x"})
    elif kind == "no-tif":
        target.write_bytes(zip_bytes({"srtm_21_05.hdr": b"x", "readme.txt": b"y"}))
    elif kind == "not-a-raster":
        write_srtm_zip(target, "srtm_21_05", tif_bytes=b"II*\x00 this is not a TIFF")
    elif kind == "float32":
        write_srtm_zip(target, "srtm_21_05", PER_TILE, dtype="float32")
    elif kind == "wrong-size":
        tif = write_srtm_tif(
            folder / "x.tif", "srtm_21_05", PER_TILE, height=50, data=srtm_array("srtm_21_05", PER_TILE)[:50]
        )
        write_srtm_zip(target, "srtm_21_05", tif_bytes=tif.read_bytes())
        tif.unlink()
    elif kind == "other-tile":
        # srtm_22_05's raster under srtm_21_05's name
        tif = write_srtm_tif(folder / "x.tif", "srtm_22_05", PER_TILE)
        write_srtm_zip(target, "srtm_21_05", tif_bytes=tif.read_bytes())
        tif.unlink()
    elif kind == "wrong-nodata":
        write_srtm_zip(target, "srtm_21_05", PER_TILE, nodata=-9999)
    elif kind == "utm-crs":
        write_srtm_zip(target, "srtm_21_05", PER_TILE, crs="EPSG:32617")
    elif kind == "bad-crc":
        raw = bytearray(target.read_bytes())
        with zipfile.ZipFile(target) as zf:
            info = zf.getinfo("srtm_21_05.tif")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        raw[start + info.compress_size // 2] ^= 0x55
        target.write_bytes(bytes(raw))
    else:  # pragma: no cover
        raise AssertionError(kind)
    return folder


BAD = [
    ("truncated-zip", "expected a zip archive holding srtm_21_05.tif, found a truncated or corrupt file"),
    ("zip-slip", "found unsafe path '../../escape.txt' in the zip (refused)"),
    ("no-tif", "expected one member srtm_21_05.tif, found"),
    ("not-a-raster", "expected a readable GeoTIFF"),
    ("float32", "expected Int16 elevations, found float32"),
    ("wrong-size", "expected 60x60 pixels"),
    ("other-tile", "expected the 5°x5° tile at (-80, 40)"),
    ("wrong-nodata", "expected nodata -32768 (CGIAR SRTM), found -9999"),
    ("utm-crs", "expected a WGS 84 lon/lat CRS (EPSG:4326), found EPSG:32617"),
    ("bad-crc", "expected an intact srtm_21_05.tif in the zip, found a corrupt member"),
]


@pytest.mark.parametrize(("kind", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_source_is_a_clear_error_and_nothing_is_written(tmp_path: Path, kind: str, message: str) -> None:
    folder = bad_source(tmp_path / "mirror", kind)
    out = tmp_path / "dem"
    with pytest.raises(DemError) as info:
        prepare_dem(["17SQV"], str(folder), out)
    text = str(info.value)
    assert message in text, text
    assert "\n" not in text
    assert not (out / "17SQV").exists()
    assert [p.name for p in out.iterdir()] in ([], [".cache"])  # no staging folder left behind
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()


def test_failed_rebuild_keeps_the_good_set(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "dem"
    prepare_dem(["17SQV"], str(src), out)
    good = {p.name: p.read_bytes() for p in (out / "17SQV").iterdir()}
    broken = bad_source(tmp_path / "broken", "float32")
    with pytest.raises(DemError):
        prepare_dem(["17SQV"], str(broken), out, force=True)
    assert {p.name: p.read_bytes() for p in (out / "17SQV").iterdir()} == good


def test_mixed_grids_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "mirror"
    write_srtm_zip(folder / "srtm_37_02.zip", "srtm_37_02", 60)
    write_srtm_zip(folder / "srtm_38_02.zip", "srtm_38_02", 120)
    with pytest.raises(DemError, match="expected the pixel grid of the other SRTM tiles"):
        prepare_dem(["31UFS"], str(folder), tmp_path / "dem")


def test_bad_arguments(src: Path, tmp_path: Path) -> None:
    with pytest.raises(TileError, match="SRTM coverage"):
        prepare_dem(["33XWJ"], str(src), tmp_path / "dem")
    with pytest.raises(InputError, match="found no folder at"):
        prepare_dem(["17SQV"], str(tmp_path / "nope"), tmp_path / "dem")
    with pytest.raises(InputError, match="ftp:// address"):
        prepare_dem(["17SQV"], "ftp://example.org/srtm/", tmp_path / "dem")
    with pytest.raises(InputError, match="at least one --tile"):
        prepare_dem([], str(src), tmp_path / "dem")
    assert not (tmp_path / "dem").exists()


# ----------------------------------------------------------------------------- check
def test_check_reports_each_problem(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "dem"
    prepare_dem(["19FDV"], str(src), out)
    d = out / "19FDV"
    (d / "srtm_22_23.zip").unlink()
    raw = bytearray((d / "srtm_22_24.zip").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (d / "srtm_22_24.zip").write_bytes(bytes(raw))
    with zipfile.ZipFile(d / "srtm_23_23.zip", "w") as zf:  # a wrong member, with matching dem.json
        zf.writestr("srtm_99_99.tif", b"x")
    doc = json.loads((d / DEM_JSON).read_text())
    for z in doc["zips"]:
        if z["name"] == "srtm_23_23.zip":
            z["size"], z["sha256"] = (d / z["name"]).stat().st_size, sha256_file(d / z["name"])
    (d / DEM_JSON).write_text(json.dumps(doc))
    (d / "srtm_23_24.tif").write_bytes(b"left by Sen2Cor")
    (d / "srtm_01_01.zip").write_bytes(b"stray")
    report = check_dem(d)
    codes = sorted(f.code for f in report.findings)
    assert codes == ["extracted-tif", "missing-zip", "unexpected-zip", "zip-checksum", "zip-members"]
    assert not report.ok
    lines = list(report.lines())
    assert lines[0].endswith("DEM set for 19FDV: 3 error(s), 2 warning(s)")


def test_check_geometry_and_raster(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "dem"
    prepare_dem(["31UFS"], str(src), out)
    d = out / "31UFS"
    doc = json.loads((d / DEM_JSON).read_text())
    doc["zips"] = [z for z in doc["zips"] if z["name"] != "srtm_38_02.zip"]
    doc["dem"]["bounds"][0] += 1.0
    (d / DEM_JSON).write_text(json.dumps(doc))
    report = check_dem(d)
    assert sorted(f.code for f in report.findings) == ["dem-bounds", "missing-name", "unexpected-zip"]
    (d / DEM_JSON).unlink()
    assert [f.code for f in check_dem(d).findings] == ["no-dem-json"]
    with pytest.raises(InputError):
        check_dem(tmp_path / "nope")


# ----------------------------------------------------------------------------- CLI
def run(exe: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})


def test_cli(s2kit_exe: str, src: Path, tmp_path: Path) -> None:
    out = tmp_path / "dem"
    done = run(
        s2kit_exe,
        "dem",
        "prepare",
        "--tile",
        "19FDV",
        "--tile",
        "T17SQV",
        "--source",
        str(src),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        f"19FDV: wrote {out / '19FDV'} (4 zips: srtm_22_23 srtm_22_24 srtm_23_23 srtm_23_24;"
    )
    assert lines[1].startswith(f"17SQV: wrote {out / '17SQV'} (1 zip: srtm_21_05;")
    assert lines[2] == f"GIPP: s2kit gipp render --dem-dir {out / '19FDV'} (one DEM_Directory per tile)"
    again = run(s2kit_exe, "dem", "prepare", "--tile", "19FDV", "--source", str(src), "--out", str(out))
    assert again.stdout.splitlines()[0] == f"19FDV: up to date, nothing to do ({out / '19FDV'})"
    checked = run(s2kit_exe, "dem", "check", str(out / "19FDV"), str(out / "17SQV"))
    assert checked.returncode == 0 and checked.stdout.count(" OK (") == 2
    (out / "17SQV" / "srtm_21_05.zip").write_bytes(b"x")
    failed = run(s2kit_exe, "dem", "check", "--json", str(out / "17SQV"))
    assert failed.returncode == 1 and json.loads(failed.stdout)["ok"] is False
    fp = run(s2kit_exe, "dem", "footprint", "01KAB")
    assert "(crosses the antimeridian)  srtm_01_16 srtm_72_16" in fp.stdout
    for args, message in [
        (("--tile", "33XWJ"), "s2kit: error: tile 33XWJ spans 79.137° to 80.165° latitude"),
        (("--tile", "17SQW"), "s2kit: error: expected an MGRS tile like 17SQV"),
    ]:
        bad = run(s2kit_exe, "dem", "prepare", *args, "--source", str(src), "--out", str(out))
        assert bad.returncode == 1
        assert len(bad.stderr.strip().splitlines()) == 1 and bad.stderr.startswith(message), bad.stderr
    offline = run(
        s2kit_exe,
        "dem",
        "prepare",
        "--tile",
        "31UFS",
        "--out",
        str(out),
        "--source",
        "http://nonexistent.invalid/srtm/",
    )
    assert offline.returncode == 3 and offline.stderr.count("\n") == 1, offline.stderr
    assert offline.stderr.startswith("s2kit: error: expected to reach nonexistent.invalid (what was tried: ")
    assert "3 source unreachable" in " ".join(run(s2kit_exe, "dem", "prepare", "--help").stdout.split())


@pytest.mark.parametrize("kind", ["srtm", "cop-dem-glo90"])
def test_dem_json_nested_past_the_stack_was_an_internal_error(tmp_path: Path, kind: str) -> None:
    """review2: a dem.json of "[[[[..." (deeper than Python's stack) raised RecursionError out of
    `s2kit dem check` and the planner's DEM check: "internal error", exit 70. Now the usual
    bad-dem-json finding / one-line problem."""
    from s2kit.dem import check_dem, dem_problem
    from s2kit.tiles import tile_geometry

    dem_dir = tmp_path / "dem"
    folder = dem_dir / "34UDD" if kind == "srtm" else dem_dir / kind / "34UDD"
    folder.mkdir(parents=True)
    if kind == "srtm":
        for name in tile_geometry("34UDD", 0.0).srtm_tiles:
            (folder / f"{name}.zip").write_bytes(b"PK placeholder")
    (folder / "dem.json").write_text("[" * 100_000, encoding="utf-8")
    report = check_dem(folder)
    assert [f.code for f in report.findings if f.severity == "error"] == ["bad-dem-json"]
    problem = dem_problem(dem_dir, "34UDD", kind)
    assert problem is not None and "\n" not in problem and "dem.json" in problem
