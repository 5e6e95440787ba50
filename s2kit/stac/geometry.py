"""Item geometry from the product's data footprint: simplified, antimeridian-safe (RFC 7946).

The footprint is ``Product_Footprint/.../Global_Footprint/EXT_POS_LIST`` of MTD_MSIL2A.xml
(latitude longitude pairs, sometimes with a third, zero, height value): the outline of the
valid data, not of the MGRS tile, so a swath-edge product that is 97 % nodata gets a
geometry 1/30 of the tile's. Steps:

1. unwrap longitudes so the ring is continuous (a ring that jumps by more than 180° between
   neighbours crosses the antimeridian: its western longitudes get +360);
2. Douglas-Peucker simplification in degrees (tolerance :data:`TOLERANCE_DEG`), only ever
   dropping vertices whose removal keeps the outline within the tolerance;
3. a ring that crosses 180° is split into two polygons at the antimeridian (MultiPolygon,
   RFC 7946 section 3.1.9) and its bbox has west > east (section 5.2);
4. ``proj:centroid``: the area-weighted centroid of the unwrapped ring, wrapped to [-180, 180].

No shapely (not a dependency): plain Python on rings of tens of vertices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "TOLERANCE_DEG",
    "Footprint",
    "footprint_from_poslist",
    "geodesic_area_m2",
    "lon_extent",
    "parse_poslist",
    "point_in_geometry",
    "simplify",
]

Point = tuple[float, float]  # (lon, lat)
TOLERANCE_DEG = 1e-4  # about 10 m: the simplification never moves the outline by more
ROUND = 7  # decimals of degrees written (~1 cm)


def parse_poslist(text: str) -> list[Point]:
    """(lon, lat) points of an EXT_POS_LIST ('lat lon lat lon ...' or 'lat lon h lat lon h ...')."""
    vals = [float(v) for v in text.split()]
    for dim in (2, 3):
        if len(vals) % dim or len(vals) < 4 * dim:
            continue
        pts = [(vals[i + 1], vals[i]) for i in range(0, len(vals), dim)]
        if dim == 3 and any(vals[i + 2] != 0.0 for i in range(0, len(vals), 3)):
            continue
        if pts[0] == pts[-1] and all(-90 <= lat <= 90 and -180 <= lon <= 360 for lon, lat in pts):
            return pts
    raise ValueError(f"expected a closed ring of latitude/longitude pairs, found {len(vals)} number(s)")


def _unwrap(ring: Sequence[Point]) -> list[Point]:
    """Shift longitudes so no edge jumps by more than 180 degrees (eastward across 180)."""
    lons = [p[0] for p in ring]
    crosses = any(abs(a - b) > 180 for a, b in zip(lons, lons[1:], strict=False))
    if not crosses:
        return list(ring)
    return [(lon + 360.0 if lon < 0 else lon, lat) for lon, lat in ring]


def _dedupe(ring: Sequence[Point]) -> list[Point]:
    out: list[Point] = []
    for p in ring:
        if not out or (abs(p[0] - out[-1][0]) > 1e-12 or abs(p[1] - out[-1][1]) > 1e-12):
            out.append(p)
    return out


def _seg_dist(p: Point, a: Point, b: Point) -> float:
    (x, y), (x1, y1), (x2, y2) = p, a, b
    dx, dy = x2 - x1, y2 - y1
    if dx == dy == 0:
        return math.hypot(x - x1, y - y1)
    t = max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)))
    return math.hypot(x - (x1 + t * dx), y - (y1 + t * dy))


def _dp(points: Sequence[Point], tol: float) -> list[Point]:
    if len(points) < 3:
        return list(points)
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        best, idx = -1.0, -1
        for k in range(i + 1, j):
            d = _seg_dist(points[k], points[i], points[j])
            if d > best:
                best, idx = d, k
        if idx >= 0 and best > tol:
            keep[idx] = True
            stack += [(i, idx), (idx, j)]
    return [p for p, k in zip(points, keep, strict=True) if k]


def simplify(ring: Sequence[Point], tol: float = TOLERANCE_DEG) -> list[Point]:
    """Douglas-Peucker on a closed ring (first == last), split at its farthest vertex; >= 4 points."""
    ring = _dedupe(ring)
    if len(ring) <= 4:
        return ring
    open_ring = ring[:-1]
    far = max(
        range(len(open_ring)),
        key=lambda k: math.hypot(open_ring[k][0] - ring[0][0], open_ring[k][1] - ring[0][1]),
    )
    first = _dp(ring[: far + 1], tol)
    second = _dp(ring[far:], tol)
    out = first[:-1] + second
    return out if len(out) >= 4 else ring


def _signed_area(ring: Sequence[Point]) -> float:
    return 0.5 * sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False))


def _centroid(ring: Sequence[Point]) -> Point:
    a = _signed_area(ring)
    if abs(a) < 1e-15:
        xs, ys = [p[0] for p in ring[:-1]], [p[1] for p in ring[:-1]]
        return sum(xs) / len(xs), sum(ys) / len(ys)
    cx = sum((x1 + x2) * (x1 * y2 - x2 * y1) for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False))
    cy = sum((y1 + y2) * (x1 * y2 - x2 * y1) for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False))
    return cx / (6 * a), cy / (6 * a)


def _clip(ring: Sequence[Point], x: float, keep_west: bool) -> list[Point]:
    """Sutherland-Hodgman clip of a closed ring by the half-plane lon <= x (or >= x)."""

    def inside(p: Point) -> bool:
        return p[0] <= x if keep_west else p[0] >= x

    out: list[Point] = []
    pts = list(ring[:-1])
    for i, cur in enumerate(pts):
        prev = pts[i - 1]
        if inside(cur):
            if not inside(prev):
                out.append(_cross(prev, cur, x))
            out.append(cur)
        elif inside(prev):
            out.append(_cross(prev, cur, x))
    out = _dedupe(out)
    if out and out[0] != out[-1]:
        out.append(out[0])
    return out


def _cross(a: Point, b: Point, x: float) -> Point:
    t = (x - a[0]) / (b[0] - a[0])
    return x, a[1] + t * (b[1] - a[1])


def _wrap(lon: float) -> float:
    return lon - 360.0 if lon > 180.0 else lon


def _rounded(ring: Sequence[Point], shift: float = 0.0) -> list[list[float]]:
    return [[round(x + shift, ROUND), round(y, ROUND)] for x, y in ring]


class Footprint:
    """A simplified data footprint and what STAC needs of it."""

    def __init__(self, ring: Sequence[Point], tol: float = TOLERANCE_DEG):
        unwrapped = _unwrap(_dedupe(ring))
        if unwrapped[0] != unwrapped[-1]:
            unwrapped.append(unwrapped[0])
        if len(unwrapped) < 4:
            raise ValueError("expected a footprint ring of at least 3 distinct vertices")
        simple = simplify(unwrapped, tol)
        if _signed_area(simple) < 0:  # RFC 7946: exterior rings counter-clockwise
            simple = simple[::-1]
        self.ring = simple  # unwrapped: longitudes may exceed 180

    @property
    def crosses_antimeridian(self) -> bool:
        return max(p[0] for p in self.ring) > 180.0

    def geometry(self) -> dict[str, Any]:
        if not self.crosses_antimeridian:
            return {"type": "Polygon", "coordinates": [_rounded(self.ring)]}
        west = _clip(self.ring, 180.0, keep_west=True)
        east = _clip(self.ring, 180.0, keep_west=False)
        polys = [[_rounded(west)], [_rounded(east, -360.0)]]
        return {"type": "MultiPolygon", "coordinates": [p for p in polys if len(p[0]) >= 4]}

    def bbox(self) -> list[float]:
        lons = [p[0] for p in self.ring]
        lats = [p[1] for p in self.ring]
        west, east = min(lons), max(lons)
        return [
            round(_wrap(west), ROUND),
            round(min(lats), ROUND),
            round(_wrap(east), ROUND),
            round(max(lats), ROUND),
        ]

    def centroid(self) -> dict[str, float]:
        x, y = _centroid(self.ring)
        return {"lat": round(y, 5), "lon": round(_wrap(x), 5)}


def footprint_from_poslist(text: str, tol: float = TOLERANCE_DEG) -> Footprint:
    return Footprint(parse_poslist(text), tol)


# --------------------------------------------------------------------------- measuring
def _polygons(geometry: dict[str, Any]) -> list[list[list[Point]]]:
    if geometry["type"] == "Polygon":
        polys = [geometry["coordinates"]]
    elif geometry["type"] == "MultiPolygon":
        polys = geometry["coordinates"]
    else:
        raise ValueError(f"expected a Polygon or MultiPolygon, found {geometry['type']}")
    return [[[(float(p[0]), float(p[1])) for p in ring] for ring in poly] for poly in polys]


def geodesic_area_m2(geometry: dict[str, Any]) -> float:
    """Area on the WGS84 ellipsoid of a GeoJSON (Multi)Polygon, holes subtracted (pyproj.Geod)."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    total = 0.0
    for poly in _polygons(geometry):
        for k, ring in enumerate(poly):
            area, _perimeter = geod.polygon_area_perimeter([p[0] for p in ring], [p[1] for p in ring])
            total += abs(area) if k == 0 else -abs(area)
    return total


def _in_ring(pt: Point, ring: Sequence[Point]) -> bool:
    x, y = pt
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def point_in_geometry(pt: Point, geometry: dict[str, Any]) -> bool:
    """Is (lon, lat) inside the (Multi)Polygon (even-odd rule per polygon, holes respected)?"""
    for poly in _polygons(geometry):
        if _in_ring(pt, poly[0]) and not any(_in_ring(pt, hole) for hole in poly[1:]):
            return True
    return False


def lon_extent(intervals: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(west, east) of the shortest longitude range covering every (west, east) interval.

    An interval with west > east crosses the antimeridian. The result crosses it (west > east)
    when the largest longitude gap between the intervals is not the one across 180 degrees.
    """
    spans = sorted((w, e + 360.0 if w > e else e) for w, e in intervals)
    if not spans:
        raise ValueError("expected at least one longitude interval")
    merged: list[list[float]] = []
    for w, e in spans:
        if merged and w <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([w, e])
    if merged[-1][1] - merged[0][0] >= 360.0:
        return -180.0, 180.0
    # gaps between consecutive merged spans, and the one around the circle
    best_gap, west, east = -1.0, merged[0][0], merged[-1][1]
    for k in range(len(merged)):
        end = merged[k][1]
        nxt = merged[k + 1][0] if k + 1 < len(merged) else merged[0][0] + 360.0
        if nxt - end > best_gap:
            best_gap = nxt - end
            east, west = end, nxt
    west_n = round(((west + 180.0) % 360.0) - 180.0, ROUND)
    east_n = round(((east + 180.0) % 360.0) - 180.0, ROUND)
    return west_n, (180.0 if east_n == -180.0 else east_n)
