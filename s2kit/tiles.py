"""Sentinel-2 (MGRS) tile geometry and the CGIAR SRTM 5°x5° tiles a tile needs.

A Sentinel-2 tile is the 100 km MGRS square extended to 109.8 km eastwards and southwards:
its upper-left corner is the north-west corner of the MGRS square (real tile metadata:
``ULX``/``ULY`` of ``MTD_TL.xml`` are within 40 m of it, checked in ``tests/test_tiles.py``
against the real files of ``data/fixtures/tile_mtd``). The MGRS square is resolved with the
``mgrs`` package (GeoTrans), the UTM -> lon/lat footprint with pyproj (densified edges,
antimeridian-aware ``transform_bounds``); no UTM maths is done here.

SRTM tile names follow Sen2Cor (2.8.0 source, ``L2A_Tables.gdalDEM_srtm``, mirrored in the
public repository c-core-labs/sen2cor): ``'srtm_{:0>2d}_{:0>2d}'.format(i, j)`` with
``i = int((lon + 180) / 5) + 1`` (01-72) and ``j = int((60 - lat) / 5) + 1`` (01-24); a tile
whose first index exceeds its last crosses the antimeridian (Sen2Cor then asks for columns
1 and 72). Sen2Cor computes the names from two corners only (lower-left and upper-right);
the set here comes from the whole footprint plus a margin, so it always contains Sen2Cor's.

CGIAR SRTM v4.1 covers 60°N-56°S (CGIAR-CSI SRTM v4.1 readme: "All GeoTiffs with 6000 x 6000
pixels", 5°x5° tiles); a tile reaching beyond it is refused (Sen2Cor would silently use a
flat surface there).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Literal

from .tile_names import TileError, normalize_tile

__all__ = [
    "DEFAULT_MARGIN_M",
    "S2_TILE_SIZE_M",
    "SRTM_NORTH",
    "SRTM_SOUTH",
    "SRTM_TILE_DEG",
    "TileError",
    "TileGeometry",
    "normalize_tile",
    "parse_srtm_name",
    "srtm_name",
    "srtm_names_for_bounds",
    "srtm_tile_bounds",
    "tile_footprint",
    "tile_geometry",
    "tile_utm",
    "utm_box_lonlat",
]

S2_TILE_SIZE_M = 109_800
MGRS_SQUARE_M = 100_000
DEFAULT_MARGIN_M = 2_000.0
SRTM_TILE_DEG = 5
SRTM_NORTH = 60.0  # northern edge of the SRTM grid and of its data
SRTM_SOUTH = -56.0  # southern edge of SRTM data (the 5° grid itself ends at 60°S)
SRTM_GRID_SOUTH = -60.0
SRTM_COLUMNS = 72
SRTM_ROWS = 24
DENSIFY_POINTS = 21

_SRTM_RE = re.compile(r"^srtm_(\d{2})_(\d{2})\Z", re.ASCII)


@dataclass(frozen=True)
class TileGeometry:
    """Where a Sentinel-2 tile is, and which SRTM tiles cover it (with a margin).

    ``lonlat_bounds`` is ``(west, south, east, north)`` of the footprint plus margin; across
    the antimeridian ``east`` is above 180 (continuous longitudes, e.g. 179.2 .. 180.8).
    """

    tile: str
    zone: int
    hemisphere: Literal["N", "S"]
    epsg: int
    utm_bounds: tuple[float, float, float, float]
    margin_m: float
    footprint: tuple[float, float, float, float]
    lonlat_bounds: tuple[float, float, float, float]
    crosses_antimeridian: bool
    srtm_tiles: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "tile": self.tile,
            "epsg": self.epsg,
            "utm_bounds": list(self.utm_bounds),
            "margin_m": self.margin_m,
            "footprint_lonlat": [round(v, 9) for v in self.footprint],
            "bounds_lonlat": [round(v, 9) for v in self.lonlat_bounds],
            "crosses_antimeridian": self.crosses_antimeridian,
            "srtm_tiles": list(self.srtm_tiles),
        }


def srtm_name(lon: float, lat: float) -> str:
    """The SRTM 5°x5° tile holding (lon, lat), Sen2Cor's naming (longitude wrapped to -180..180)."""
    lon = (lon + 180.0) % 360.0 - 180.0
    i = math.floor((lon + 180.0) / SRTM_TILE_DEG) + 1
    j = math.floor((SRTM_NORTH - lat) / SRTM_TILE_DEG) + 1
    if not (1 <= j <= SRTM_ROWS):
        raise TileError(f"expected a latitude within the SRTM grid (60°N to 60°S), found {lat:.6f}")
    return f"srtm_{i:02d}_{j:02d}"


def parse_srtm_name(name: str) -> tuple[int, int]:
    """``'srtm_21_05'`` (or ``srtm_21_05.zip``/``.tif``) -> ``(21, 5)``."""
    stem = name[:-4] if name.endswith((".zip", ".tif")) else name
    match = _SRTM_RE.match(stem)
    if match is None:
        raise TileError(f"expected an SRTM tile name like srtm_21_05, found {name!r}")
    i, j = int(match.group(1)), int(match.group(2))
    if not (1 <= i <= SRTM_COLUMNS and 1 <= j <= SRTM_ROWS):
        raise TileError(f"expected SRTM tile indices 01-72 / 01-24, found {name!r}")
    return i, j


def srtm_tile_bounds(name: str) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of an SRTM 5°x5° tile."""
    i, j = parse_srtm_name(name)
    west = -180.0 + SRTM_TILE_DEG * (i - 1)
    north = SRTM_NORTH - SRTM_TILE_DEG * (j - 1)
    return west, north - SRTM_TILE_DEG, west + SRTM_TILE_DEG, north


def srtm_names_for_bounds(west: float, south: float, east: float, north: float) -> tuple[str, ...]:
    """Every SRTM tile that the box touches (east may exceed 180 across the antimeridian).

    Edges are half-open: a box ending exactly on a 5° line does not need the next tile.
    """
    if not west < east or not south < north:
        raise TileError(
            f"expected a box with west < east and south < north, found {west, south, east, north}"
        )
    first_col = math.floor((west + 180.0) / SRTM_TILE_DEG)
    last_col = math.ceil((east + 180.0) / SRTM_TILE_DEG) - 1
    first_row = math.floor((SRTM_NORTH - north) / SRTM_TILE_DEG)
    last_row = math.ceil((SRTM_NORTH - south) / SRTM_TILE_DEG) - 1
    names = []
    for row in range(max(first_row, 0), min(last_row, SRTM_ROWS - 1) + 1):
        for col in range(first_col, last_col + 1):
            names.append(f"srtm_{col % SRTM_COLUMNS + 1:02d}_{row + 1:02d}")
    return tuple(sorted(set(names)))


def _band_range(band: str) -> tuple[float, float]:
    letters = "CDEFGHJKLMNPQRSTUVWX"
    south = -80.0 + 8.0 * letters.index(band)
    return south, (84.0 if band == "X" else south + 8.0)


def _mgrs_square(tile: str) -> tuple[int, Literal["N", "S"], float, float]:
    """UTM zone, hemisphere and the south-west corner of the tile's MGRS 100 km square."""
    import mgrs  # type: ignore[import-untyped]  # here, not at import: the worker's start-up (issue 17)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # band checks are done below, with a clear message
        try:
            zone, hemisphere, easting, northing = mgrs.MGRS().MGRSToUTM(tile)
        except Exception as exc:  # the C library's own error text, e.g. an invalid letter combination
            raise TileError(f"MGRS tile {tile}: not a valid 100 km square ({exc})") from None
    # with no digits the library returns the centre of the 100 km square
    return (
        int(zone),
        "N" if hemisphere == "N" else "S",
        easting - MGRS_SQUARE_M / 2,
        northing - MGRS_SQUARE_M / 2,
    )


def tile_utm(tile: str) -> tuple[int, tuple[float, float, float, float]]:
    """EPSG code and UTM bounds ``(xmin, ymin, xmax, ymax)`` of a Sentinel-2 tile (no coverage check)."""
    name = normalize_tile(tile)
    zone, hemisphere, east0, north0 = _mgrs_square(name)
    top = north0 + MGRS_SQUARE_M  # S2 tile: upper-left = NW corner of the square, 109.8 km east and south
    return (32600 if hemisphere == "N" else 32700) + zone, (
        east0,
        top - S2_TILE_SIZE_M,
        east0 + S2_TILE_SIZE_M,
        top,
    )


def utm_box_lonlat(epsg: int, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a UTM box (densified edges); across the antimeridian
    ``east`` exceeds 180 (continuous longitudes, ``west`` in [-180, 180))."""
    from pyproj import Transformer  # here, not at import: the worker's start-up (issue 17)

    to_lonlat = Transformer.from_crs(epsg, 4326, always_xy=True)
    w, s, e, n = to_lonlat.transform_bounds(*box, densify_pts=DENSIFY_POINTS)
    if w > e:  # pyproj reports a box across the antimeridian as west > east
        e += 360.0
    if w < -180.0:  # keep west in [-180, 180): continuous longitudes, east may exceed 180
        w, e = w + 360.0, e + 360.0
    return w, s, e, n


def tile_footprint(
    tile: str,
) -> tuple[int, tuple[float, float, float, float], tuple[float, float, float, float]]:
    """EPSG code, UTM bounds and lon/lat footprint of a Sentinel-2 tile (no margin, no SRTM
    coverage check; a square outside its latitude band is refused)."""
    name = normalize_tile(tile)
    epsg, utm_bounds = tile_utm(name)
    footprint = utm_box_lonlat(epsg, utm_bounds)
    band_south, band_north = _band_range(name[2])
    if footprint[3] <= band_south or footprint[1] >= band_north:
        raise TileError(
            f"MGRS tile {name}: expected the 100 km square to overlap latitude band {name[2]} "
            f"({band_south:g}° to {band_north:g}°), found {footprint[1]:.3f}° to {footprint[3]:.3f}°"
        )
    return epsg, utm_bounds, footprint


def tile_geometry(tile: str, margin_m: float = DEFAULT_MARGIN_M) -> TileGeometry:
    """Footprint of a Sentinel-2 tile (plus *margin_m* metres in UTM) and its SRTM tiles.

    Raises :class:`TileError` for an invalid name, a tile outside its latitude band, or a
    tile reaching beyond SRTM coverage (60°N-56°S).
    """
    name = normalize_tile(tile)
    if not (0 <= margin_m <= 50_000) or math.isnan(margin_m):
        raise TileError(f"expected a margin of 0-50000 m, found {margin_m}")
    epsg, utm_bounds, footprint = tile_footprint(name)
    zone = epsg % 100
    hemisphere: Literal["N", "S"] = "N" if epsg < 32700 else "S"
    if footprint[3] > SRTM_NORTH or footprint[1] < SRTM_SOUTH:
        raise TileError(
            f"tile {name} spans {footprint[1]:.3f}° to {footprint[3]:.3f}° latitude: expected it within "
            f"SRTM coverage (60°N to 56°S), found it outside; Sen2Cor would use a flat surface there - "
            "use a user DEM (e.g. Copernicus DEM GLO-90 in DEM_Directory) for this tile"
        )
    buffered = (
        utm_bounds[0] - margin_m,
        utm_bounds[1] - margin_m,
        utm_bounds[2] + margin_m,
        utm_bounds[3] + margin_m,
    )
    w, s, e, n = utm_box_lonlat(epsg, buffered)
    bounds = (w, max(s, SRTM_GRID_SOUTH), e, min(n, SRTM_NORTH))
    return TileGeometry(
        tile=name,
        zone=zone,
        hemisphere=hemisphere,
        epsg=epsg,
        utm_bounds=utm_bounds,
        margin_m=float(margin_m),
        footprint=footprint,
        lonlat_bounds=bounds,
        crosses_antimeridian=bounds[2] > 180.0,
        srtm_tiles=srtm_names_for_bounds(*bounds),
    )
