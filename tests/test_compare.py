"""s2kit compare: BOA reflectance differences and SCL agreement on SYNTHETIC pairs with known answers.

Trees come from REAL ESA metadata (tests/support/safe_trees.py); the 60 m rasters are real JPEG 2000
files with synthetic values (tests/support/l2a_rasters.py). The "local Sen2Cor 2.9" product of a
pair is DERIVED from the real PB 04.00 product's metadata (BOA_ADD_OFFSET list dropped,
GIP_L2ACSC version 0290), because no real Sen2Cor 2.9 output exists in data/fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2kit.compare import SCL_CLASSES, band_scaling, compare_products, format_comparison
from s2kit.errors import InputError, UsageError
from s2kit.safe import open_product
from tests.support.l2a_rasters import (
    BANDS_60,
    SIZE,
    esa_pb04,
    local_29,
    pattern,
    r60_files,
    write_jp2,
    write_l2a_rasters,
)
from tests.support.safe_trees import REAL_L2A_TILES, build_l1c_tree, build_l2a_tree


@pytest.mark.parametrize("tile,baseline", sorted(REAL_L2A_TILES.items()))
def test_band_scaling_of_real_esa_metadata(tmp_path: Path, tile: str, baseline: str) -> None:
    product = open_product(build_l2a_tree(tmp_path, tile))
    expected = -1000.0 if baseline >= "04.00" else 0.0
    for band in BANDS_60:
        assert band_scaling(product, band) == (expected, 10000.0)


def test_pb04_with_offset_vs_sen2cor29_without_gives_the_known_differences(tmp_path: Path) -> None:
    official, local = esa_pb04(tmp_path / "esa"), local_29(tmp_path / "local")
    shift = {b: round(0.001 * (i - 5), 4) for i, b in enumerate(BANDS_60)}  # -0.005 .. +0.005
    dn_off = write_l2a_rasters(official)
    dn_loc = write_l2a_rasters(local, {b: pattern(SIZE, b) + shift[b] for b in BANDS_60})
    # the files really hold different numbers: DN_official = 10000 r + 1000, DN_local = 10000 r
    b02 = dn_loc["B02"].astype(int) - dn_off["B02"].astype(int)
    assert np.all(b02 == 10000 * shift["B02"] - 1000)

    doc = compare_products(local, official)
    assert doc["resolution_m"] == 60 and list(doc["bands"]) == list(BANDS_60)
    assert doc["local"]["boa_add_offset"] is None
    assert doc["official"]["boa_add_offset"] == {b: -1000.0 for b in BANDS_60}
    for band, s in doc["bands"].items():
        assert s["pixels"] == SIZE * SIZE and s["nodata_pixels"] == 0
        assert s["mean"] == pytest.approx(shift[band], abs=1e-9)
        assert s["std"] == pytest.approx(0, abs=1e-6)
        assert s["p05"] == s["p50"] == s["p95"] == pytest.approx(shift[band], abs=1e-9)
        assert s["min"] == pytest.approx(shift[band], abs=1e-9) and s["max"] == pytest.approx(
            shift[band], abs=1e-9
        )
        assert s["rmse"] == pytest.approx(abs(shift[band]), abs=1e-9)
        assert s["pearson_r"] == pytest.approx(1.0, abs=1e-9)
        assert s["official_mean"] == pytest.approx(float(np.mean(pattern(SIZE, band))), abs=1e-4)
        assert s["scaling"]["official"] == {"offset": -1000.0, "quantification": 10000.0}
    assert doc["scl"]["agreement"] == 1.0
    assert doc["warnings"] == []


def test_quantification_is_applied(tmp_path: Path) -> None:
    """Local written with BOA_QUANTIFICATION_VALUE 20000 (derived): same reflectance, other DNs."""
    official, local = esa_pb04(tmp_path / "esa"), local_29(tmp_path / "local", quantification=20000)
    dn_off = write_l2a_rasters(official)
    dn = write_l2a_rasters(local)
    # really scaled by 20000: DN_local = 2 (DN_official - 1000), up to rounding
    assert np.abs(dn["B04"].astype(int) - 2 * (dn_off["B04"].astype(int) - 1000)).max() <= 1
    doc = compare_products(local, official, bands=["b04", "B8A"])
    assert list(doc["bands"]) == ["B04", "B8A"]
    for s in doc["bands"].values():
        assert abs(s["mean"]) <= 5e-5 and s["mean_abs"] <= 5e-5  # rounding of the DNs only
        assert s["scaling"]["local"] == {"offset": 0.0, "quantification": 20000.0}


def test_random_differences_statistics(tmp_path: Path) -> None:
    official, local = esa_pb04(tmp_path / "esa"), local_29(tmp_path / "local")
    rng = np.random.default_rng(9)
    noise = rng.integers(-30, 31, size=(SIZE, SIZE)) / 10000.0
    base = pattern(SIZE, "B03")
    write_l2a_rasters(official, {"B03": base})
    write_l2a_rasters(local, {"B03": base + noise})
    s = compare_products(local, official, bands=["B03"])["bands"]["B03"]
    d = np.rint((base + noise) * 10000) / 10000 - np.rint(base * 10000) / 10000
    assert s["mean"] == pytest.approx(d.mean(), abs=1e-6)
    assert s["std"] == pytest.approx(d.std(), abs=1e-6)
    assert s["rmse"] == pytest.approx(np.sqrt((d**2).mean()), abs=1e-6)
    assert s["mean_abs"] == pytest.approx(np.abs(d).mean(), abs=1e-6)
    assert s["min"] == pytest.approx(d.min(), abs=1e-9) and s["max"] == pytest.approx(d.max(), abs=1e-9)
    for q, key in ((5, "p05"), (50, "p50"), (95, "p95")):
        assert s[key] == pytest.approx(np.percentile(d, q, method="inverted_cdf"), abs=1e-4)


def test_nodata_in_either_product_is_left_out(tmp_path: Path) -> None:
    official, local = esa_pb04(tmp_path / "esa"), local_29(tmp_path / "local")
    hole = np.zeros((SIZE, SIZE), dtype=bool)
    hole[:10] = True
    edge = np.zeros((SIZE, SIZE), dtype=bool)
    edge[:, :4] = True
    write_l2a_rasters(official, nodata=edge)
    write_l2a_rasters(local, nodata=hole)
    doc = compare_products(local, official)
    expected = int((~(hole | edge)).sum())
    assert all(
        s["pixels"] == expected and s["nodata_pixels"] == SIZE * SIZE - expected
        for s in doc["bands"].values()
    )
    assert doc["scl"]["valid_pixels"] == expected


def test_scl_agreement_and_confusion(tmp_path: Path) -> None:
    official, local = esa_pb04(tmp_path / "esa"), local_29(tmp_path / "local")
    scl_off = np.full((SIZE, SIZE), 4, dtype=np.uint8)  # vegetation
    scl_off[:, 32:] = 6  # water
    scl_loc = scl_off.copy()
    scl_loc[:8, 32:] = 8  # 8 x 32 water pixels called medium-probability cloud
    write_l2a_rasters(official, scl=scl_off)
    write_l2a_rasters(local, scl=scl_loc)
    scl = compare_products(local, official)["scl"]
    n = SIZE * SIZE
    assert scl["valid_pixels"] == n
    assert scl["agreement"] == pytest.approx((n - 256) / n)
    assert scl["confusion"][8][6] == 256 and scl["confusion"][6][6] == 32 * SIZE - 256
    water = scl["classes"]["6"]
    assert water == {"name": "WATER", "local": 32 * SIZE - 256, "official": 32 * SIZE, "both": 32 * SIZE - 256,
                     "iou": pytest.approx((32 * SIZE - 256) / (32 * SIZE))}  # fmt: skip
    assert scl["classes"]["4"]["iou"] == 1.0
    assert scl["classes"]["11"]["iou"] is None  # no snow anywhere
    assert len(scl["confusion"]) == len(SCL_CLASSES)


def test_compare_output_is_stable(tmp_path: Path, data_regression: Any) -> None:
    """Golden file of the JSON (paths dropped): keys and numbers of a known pair."""
    official, local = esa_pb04(tmp_path / "esa"), local_29(tmp_path / "local")
    write_l2a_rasters(official)
    write_l2a_rasters(local, {b: pattern(SIZE, b, seed=1) for b in BANDS_60})
    doc = compare_products(local, official, bands=["B02", "B12"])
    for side in ("local", "official"):
        doc[side].pop("path")
    doc["scl"].pop("confusion")
    data_regression.check(doc)


def test_refuses_what_it_cannot_compare(tmp_path: Path) -> None:
    official = esa_pb04(tmp_path / "esa")
    write_l2a_rasters(official)
    other_tile = build_l2a_tree(tmp_path / "o", "07HFE")
    with pytest.raises(InputError, match="one tile"):
        compare_products(other_tile, official)
    l1c = build_l1c_tree(tmp_path / "l1c")
    (l1c / "manifest.safe").unlink()  # the helper's stub manifest is not a real one
    with pytest.raises(InputError, match="Level-2A"):
        compare_products(l1c, official)
    # another grid: 32 x 32 pixels instead of 64 x 64
    local = local_29(tmp_path / "local")
    write_l2a_rasters(local, size=32)
    with pytest.raises(InputError, match="same grid"):
        compare_products(local, official)
    with pytest.raises(UsageError, match="resolution"):
        compare_products(official, official, resolution=30)
    with pytest.raises(UsageError, match="band names"):
        compare_products(official, official, bands=["B99"])
    # a placeholder band file (the test double's kind) is a one-line error naming the file
    placeholder = local_29(tmp_path / "ph")
    with pytest.raises(InputError, match="readable raster"):
        compare_products(placeholder, official)


def test_shifted_geotransform_is_refused(tmp_path: Path) -> None:
    official, local = esa_pb04(tmp_path / "esa"), local_29(tmp_path / "local")
    write_l2a_rasters(official)
    write_l2a_rasters(local)
    f = r60_files(local)["B02"]
    write_jp2(f, np.ones((SIZE, SIZE), dtype=np.uint16), 32633, 500060.0, 8900040.0, 109800 / SIZE)
    with pytest.raises(InputError, match="geotransform|CRS"):
        compare_products(local, official, bands=["B02"])


def test_format_and_cli(tmp_path: Path, s2kit_exe: str) -> None:
    import subprocess

    official, local = esa_pb04(tmp_path / "esa"), local_29(tmp_path / "local")
    write_l2a_rasters(official)
    write_l2a_rasters(local, {b: pattern(SIZE, b) + 0.02 for b in BANDS_60})
    text = format_comparison(compare_products(local, official))
    assert (
        "offset -1000" in text and "offset none" in text and "B8A" in text and "SCL at 60 m: 100.00 %" in text
    )
    out = tmp_path / "run" / "compare" / "pair.json"
    r = subprocess.run([s2kit_exe, "compare", str(local), str(official), "--out", str(out), "--json"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == json.loads(out.read_text())
    assert doc["bands"]["B02"]["mean"] == pytest.approx(0.02)
    bad = subprocess.run(
        [s2kit_exe, "compare", str(local), str(tmp_path / "nope.SAFE")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("s2kit: error: ") and bad.stderr.count("\n") == 1
