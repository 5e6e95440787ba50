"""MGRS tile geometry and SRTM tile names, checked against real tile metadata and pyproj."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from lxml import etree
from pyproj import Transformer

from s2kit.tiles import (
    TileError,
    normalize_tile,
    parse_srtm_name,
    srtm_name,
    srtm_names_for_bounds,
    srtm_tile_bounds,
    tile_geometry,
    tile_utm,
)

TILE_MTD = Path(__file__).resolve().parent.parent / "data" / "fixtures" / "tile_mtd"

# Real MGRS tiles and the SRTM tiles they touch (footprint + default 2 km margin).
TABLE = [
    ("17SQV", ("srtm_21_05",), "inside one SRTM tile (North Carolina)"),
    ("31UFS", ("srtm_37_02", "srtm_38_02"), "across the 5°E SRTM column edge"),
    ("31UGR", ("srtm_38_02", "srtm_38_03"), "across 50°N, and east of UTM zone 31's 6°E edge"),
    ("33TVM", ("srtm_39_03", "srtm_40_03"), "across 15°E (real MTD_TL fixture)"),
    ("19FDV", ("srtm_22_23", "srtm_22_24", "srtm_23_23", "srtm_23_24"), "across 70°W and 55°S: 4 tiles"),
    ("07HFE", ("srtm_09_19",), "southern hemisphere (real MTD_TL fixture)"),
    ("34KGD", ("srtm_41_16",), "southern hemisphere (real MTD_TL fixture)"),
    ("20MQE", ("srtm_24_12", "srtm_24_13"), "touching the equator"),
    ("01KAB", ("srtm_01_16", "srtm_72_16"), "across the antimeridian, zone 1 (real MTD_TL fixture)"),
    ("01LAC", ("srtm_01_16", "srtm_72_16"), "across the antimeridian, zone 1 (real MTD_TL fixture)"),
    ("60KZF", ("srtm_01_16", "srtm_72_16"), "across the antimeridian, zone 60"),
]


def real_tile_mtd() -> dict[str, tuple[int, float, float]]:
    """Tile -> (EPSG, ULX, ULY) of the 10 m grid, from the real ESA MTD_TL.xml fixtures."""
    out = {}
    for path in sorted(TILE_MTD.glob("*_MTD_TL.xml")):
        tile = path.name.split("_")[1].removeprefix("T")
        root = etree.parse(str(path)).getroot()
        code = root.findtext(".//HORIZONTAL_CS_CODE")
        geo = root.find(".//Geoposition[@resolution='10']")
        assert code is not None and geo is not None, path
        out[tile] = (
            int(code.split(":")[1]),
            float(geo.findtext("ULX") or "nan"),
            float(geo.findtext("ULY") or "nan"),
        )
    return out


def independent_names(epsg: int, bounds: tuple[float, float, float, float]) -> set[str]:
    """SRTM names of the corner and edge points of a UTM box, through pyproj, with the
    issue's formula XX = floor((lon+180)/5)+1, YY = floor((60-lat)/5)+1."""
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    xmin, ymin, xmax, ymax = bounds
    t = np.linspace(0.0, 1.0, 401)
    xs = np.concatenate([xmin + t * (xmax - xmin)] * 2 + [np.full_like(t, xmin), np.full_like(t, xmax)])
    ys = np.concatenate([np.full_like(t, ymin), np.full_like(t, ymax)] + [ymin + t * (ymax - ymin)] * 2)
    lon, lat = to_ll.transform(xs, ys)
    names = set()
    for lo, la in zip(lon, lat, strict=True):
        xx = math.floor(((lo + 180.0) % 360.0) / 5.0) + 1
        yy = math.floor((60.0 - la) / 5.0) + 1
        names.add(f"srtm_{xx:02d}_{yy:02d}")
    return names


def sen2cor_names(epsg: int, bounds: tuple[float, float, float, float]) -> set[str]:
    """What Sen2Cor 2.8.0 asks for (L2A_Tables.gdalDEM_srtm): lower-left and upper-right
    corners only, int() truncation, columns [1, 72] across the antimeridian."""
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    lon_min, lat_min = to_ll.transform(bounds[0], bounds[1])
    lon_max, lat_max = to_ll.transform(bounds[2], bounds[3])
    lon_min_id = int((-180 - lon_min) / (-360) * 72 + 1)
    lon_max_id = int((-180 - lon_max) / (-360) * 72 + 1)
    lat_min_id = int((60 - lat_max) / (120) * 24 + 1)
    lat_max_id = int((60 - lat_min) / (120) * 24 + 1)
    lons = range(lon_min_id, lon_max_id + 1) if lon_min_id <= lon_max_id else [1, 72]
    return {f"srtm_{i:02d}_{j:02d}" for i in lons for j in range(lat_min_id, lat_max_id + 1)}


def buffered(bounds: tuple[float, float, float, float], m: float) -> tuple[float, float, float, float]:
    return bounds[0] - m, bounds[1] - m, bounds[2] + m, bounds[3] + m


@pytest.mark.parametrize(("tile", "expected", "why"), TABLE, ids=[row[0] for row in TABLE])
def test_srtm_tiles_of_real_mgrs_tiles(tile: str, expected: tuple[str, ...], why: str) -> None:
    geometry = tile_geometry(tile)
    assert geometry.srtm_tiles == expected, why
    # an independent computation: corner and edge points through pyproj
    assert set(expected) == independent_names(geometry.epsg, buffered(geometry.utm_bounds, 2000.0))
    # Sen2Cor's own (two-corner) request is always served by the set
    assert sen2cor_names(geometry.epsg, geometry.utm_bounds) <= set(expected)


@pytest.mark.parametrize("tile", ["17SQV", "31UFS", "31UGR", "33TVM", "19FDV", "07HFE", "01KAB", "60KZF"])
def test_without_margin_matches_independent_points(tile: str) -> None:
    geometry = tile_geometry(tile, margin_m=0)
    assert set(geometry.srtm_tiles) == independent_names(geometry.epsg, geometry.utm_bounds)


def test_tile_corner_and_crs_match_real_tile_metadata() -> None:
    real = real_tile_mtd()
    assert {"01KAB", "01LAC", "07HFE", "33TVM", "34KGD", "33XWJ"} <= set(real)
    for tile, (epsg, ulx, uly) in real.items():
        got_epsg, (xmin, ymin, xmax, ymax) = tile_utm(tile)
        assert got_epsg == epsg, tile
        assert abs(xmin - ulx) <= 40 and abs(ymax - uly) <= 40, (tile, xmin, ymax, ulx, uly)
        assert (xmax - xmin, ymax - ymin) == (109_800, 109_800)


def test_utm_zone_edge_tile_reaches_past_its_zone() -> None:
    g = tile_geometry("31UGR", margin_m=0)
    assert g.epsg == 32631
    assert g.footprint[2] > 6.0  # zone 31 ends at 6°E; S2 tiles overlap into zone 32
    assert "srtm_38_02" in g.srtm_tiles and "srtm_39_02" not in g.srtm_tiles  # 5°E..10°E is column 38


def test_antimeridian_bounds_are_continuous() -> None:
    for tile in ("01KAB", "60KZF"):
        g = tile_geometry(tile)
        w, _, e, _ = g.lonlat_bounds
        assert g.crosses_antimeridian
        assert 179.0 < w < 180.0 < e < 181.0
    assert not tile_geometry("17SQV").crosses_antimeridian


def test_margin_grows_the_box() -> None:
    small = tile_geometry("17SQV", margin_m=0).lonlat_bounds
    large = tile_geometry("17SQV", margin_m=10_000).lonlat_bounds
    assert large[0] < small[0] and large[1] < small[1] and large[2] > small[2] and large[3] > small[3]
    # ~10 km is ~0.09° of latitude
    assert 0.08 < small[1] - large[1] < 0.1


@pytest.mark.parametrize(
    ("tile", "where"),
    [("33XWJ", "79.1"), ("32VNM", "60.4"), ("01CCV", "-72.0")],
    ids=["svalbard", "straddles-60N", "antarctica"],
)
def test_outside_srtm_coverage_is_a_clear_error(tile: str, where: str) -> None:
    with pytest.raises(TileError) as info:
        tile_geometry(tile)
    message = str(info.value)
    assert f"tile {tile}" in message and "SRTM coverage (60°N to 56°S)" in message
    assert "user DEM" in message and where in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("17SQV", "17SQV"), ("T17SQV", "17SQV"), (" t17sqv ", "17SQV"), ("7HFE", "07HFE"), ("T01KAB", "01KAB")],
)
def test_normalize_tile(text: str, expected: str) -> None:
    assert normalize_tile(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("17SQW", "MGRS tile like 17SQV"),  # W is no row letter
        ("17AQV", "MGRS tile like 17SQV"),  # A is no latitude band
        ("17SIV", "MGRS tile like 17SQV"),
        ("61SQV", "UTM zone 01-60"),
        ("00SQV", "UTM zone 01-60"),
        ("17SAV", "column letter of J-R in zone 17"),
        ("", "MGRS tile like 17SQV"),
        ("17SQV1", "MGRS tile like 17SQV"),
    ],
)
def test_bad_tile_names(text: str, match: str) -> None:
    with pytest.raises(TileError, match=match):
        tile_geometry(text)


def test_srtm_name_formula_and_edges() -> None:
    assert srtm_name(-78.5, 35.5) == "srtm_21_05"
    assert srtm_name(-180.0, 59.999) == "srtm_01_01"
    assert srtm_name(179.999, -59.9) == "srtm_72_24"
    assert srtm_name(180.2, -16.5) == "srtm_01_16"  # wrapped
    assert srtm_name(5.0, 55.0) == "srtm_38_02"  # lines belong to the east/south tile (the formula)
    with pytest.raises(TileError):
        srtm_name(0.0, 60.5)
    assert srtm_tile_bounds("srtm_21_05") == (-80.0, 35.0, -75.0, 40.0)
    assert parse_srtm_name("srtm_72_24.zip") == (72, 24)
    for bad in ("srtm_73_01", "srtm_00_01", "srtm_01_25", "srtm_1_1", "SRTM_01_01"):
        with pytest.raises(TileError):
            parse_srtm_name(bad)


def test_box_edges_are_half_open() -> None:
    assert srtm_names_for_bounds(-80.0, 35.0, -75.0, 40.0) == ("srtm_21_05",)
    assert srtm_names_for_bounds(-80.0, 35.0, -74.999, 40.0) == ("srtm_21_05", "srtm_22_05")
    assert srtm_names_for_bounds(179.0, -17.0, 181.0, -16.0) == ("srtm_01_16", "srtm_72_16")


def test_geometry_golden(data_regression) -> None:  # type: ignore[no-untyped-def]
    """Footprints of the table's tiles (rounded to 1e-6°): a change here changes every DEM set."""

    def rounded(values: object) -> object:
        if isinstance(values, float):
            return round(values, 6)
        if isinstance(values, list):
            return [rounded(v) for v in values]
        return values

    data_regression.check(
        {row[0]: {k: rounded(v) for k, v in tile_geometry(row[0]).to_dict().items()} for row in TABLE}
    )
