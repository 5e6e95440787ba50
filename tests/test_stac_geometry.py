"""Footprint geometry: parsing, simplification, antimeridian split, fallbacks, hostile metadata."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from s2kit.errors import InputError
from s2kit.stac import facts as facts_mod
from s2kit.stac import make_item, stac_for, validate_stac
from s2kit.stac.geometry import (
    TOLERANCE_DEG,
    Footprint,
    geodesic_area_m2,
    lon_extent,
    parse_poslist,
    point_in_geometry,
    simplify,
)
from tests.support.safe_trees import build_l2a_tree

POSLIST_RE = re.compile(r"<EXT_POS_LIST>([^<]+)</EXT_POS_LIST>")


def _real_poslist(product: Path) -> str:
    m = POSLIST_RE.search((product / "MTD_MSIL2A.xml").read_text(encoding="utf-8"))
    assert m
    return m[1]


def _seg_dist(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy)))
    return math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy))


def test_poslist_with_zero_heights_reads_like_the_2d_one(tmp_path: Path) -> None:
    """Some ESA footprints carry a third value (0) per vertex; derived here from the real 07HFE list."""
    text = _real_poslist(build_l2a_tree(tmp_path, "07HFE"))
    vals = text.split()
    with_z = " ".join(f"{vals[i]} {vals[i + 1]} 0" for i in range(0, len(vals), 2))
    assert parse_poslist(with_z) == parse_poslist(text)
    lon, lat = parse_poslist(text)[0]
    assert (lat, lon) == (float(vals[0]), float(vals[1]))  # EXT_POS_LIST is latitude first


@pytest.mark.parametrize("bad", ["", "1 2 3", "10 20 11 21 12 22 13 23", "not numbers at all"])
def test_unusable_poslist_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_poslist(bad)


def test_simplify_drops_collinear_vertices_and_keeps_corners() -> None:
    corners = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    ring: list[tuple[float, float]] = []
    for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1], strict=True):
        ring += [(x1 + (x2 - x1) * k / 25, y1 + (y2 - y1) * k / 25) for k in range(25)]
    ring.append(ring[0])
    out = simplify(ring)
    assert sorted(set(out)) == sorted(corners) and out[0] == out[-1]
    # every original vertex stays within the tolerance of the simplified outline
    wavy = [(x + (TOLERANCE_DEG / 3) * math.sin(i), y) for i, (x, y) in enumerate(ring[:-1])] + [ring[0]]
    simple = simplify(wavy)
    for p in wavy:
        assert min(_seg_dist(p, a, b) for a, b in zip(simple, simple[1:], strict=False)) <= TOLERANCE_DEG


def test_ring_across_the_antimeridian_is_split_in_two() -> None:
    ring = [(179.0, -10.0), (-179.0, -10.0), (-179.0, -11.0), (179.0, -11.0), (179.0, -10.0)]
    fp = Footprint(ring)
    geom = fp.geometry()
    assert geom["type"] == "MultiPolygon" and len(geom["coordinates"]) == 2
    west, south, east, north = fp.bbox()
    assert (west, south, east, north) == (179.0, -11.0, -179.0, -10.0)
    assert point_in_geometry((179.5, -10.5), geom) and point_in_geometry((-179.5, -10.5), geom)
    assert not point_in_geometry((0.0, -10.5), geom)
    assert fp.centroid()["lon"] in (180.0, -180.0)
    # the two halves have the area of the whole (about 111 km x 219 km at 10.5 S)
    halves = geodesic_area_m2(geom)
    whole = geodesic_area_m2({"type": "Polygon", "coordinates": [[[x % 360, y] for x, y in ring]]})
    assert halves == pytest.approx(whole, rel=1e-3)


def test_ring_not_crossing_stays_one_counter_clockwise_polygon() -> None:
    clockwise = [(10.0, 0.0), (10.0, 1.0), (11.0, 1.0), (11.0, 0.0), (10.0, 0.0)]
    geom = Footprint(clockwise).geometry()
    assert geom["type"] == "Polygon"
    ring = geom["coordinates"][0]
    area2 = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False))
    assert area2 > 0  # RFC 7946: exterior ring counter-clockwise


def test_collection_longitude_extent_takes_the_short_way_round() -> None:
    assert lon_extent([(10.0, 20.0), (30.0, 40.0)]) == (10.0, 40.0)
    assert lon_extent([(179.2, -179.7), (-139.9, -139.6)]) == (179.2, -139.6)
    assert lon_extent([(15.0, 17.7), (0.0, 5.0), (-139.9, -139.6), (179.2, -179.7)]) == (179.2, 17.7)


def _with_poslist(product: Path, text: str) -> None:
    mtd = product / "MTD_MSIL2A.xml"
    mtd.write_text(POSLIST_RE.sub(f"<EXT_POS_LIST>{text}</EXT_POS_LIST>", mtd.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    ("poslist", "reason"),
    [
        ("garbage -- 1 2", "Product_Footprint unusable"),
        ("10 10 10 11 11 11 11 10 10 10", "Product_Footprint lies outside tile 07HFE"),
    ],
)
def test_unusable_footprint_falls_back_to_the_tile_and_says_so(
    hostile_dir: Path, poslist: str, reason: str
) -> None:
    """Derived from the real 07HFE MTD (footprint replaced in the test): tile bounds, and a note."""
    product = build_l2a_tree(hostile_dir, "07HFE")
    _with_poslist(product, poslist)
    item = make_item(product)
    assert (
        item.properties["s2kit:geometry"].startswith("MGRS tile bounds: ")
        and reason in item.properties["s2kit:geometry"]
    )
    assert geodesic_area_m2(item.geometry) == pytest.approx(109_800.0**2, rel=0.02)
    validate_stac([item])
    result = stac_for(product, hostile_dir / "out")
    assert result.items[0].is_file()


def test_oversized_tile_metadata_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    product = build_l2a_tree(tmp_path, "07HFE")
    monkeypatch.setattr(facts_mod, "MAX_MTD_BYTES", 1000)
    with pytest.raises(InputError, match=r"expected a metadata file under 1000 bytes, found \d+") as caught:
        make_item(product)
    assert "\n" not in str(caught.value)
