"""One STAC Item per L2A product (:func:`make_item`)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import InputError, MetadataError
from ..provenance import Provenance, sidecar_path
from ..safe import Product, iso_utc, open_product
from ..versions import version_label
from .facts import ProductFacts, TileFacts, read_product_facts, read_tile_facts
from .geometry import Footprint, parse_poslist, point_in_geometry
from .schemas import EXTENSION_SCHEMAS

if TYPE_CHECKING:
    import pystac

_EXT = {s.name: s.uri for s in EXTENSION_SCHEMAS.values()}
EO = _EXT["eo"]
PROJ = _EXT["projection"]
RASTER = _EXT["raster"]
SAT = _EXT["sat"]
VIEW = _EXT["view"]
MGRS = _EXT["mgrs"]
GRID = _EXT["grid"]
PROCESSING = _EXT["processing"]
S2 = _EXT["sentinel-2"]
CLASSIFICATION = _EXT["classification"]
ITEM_ASSETS = _EXT["item-assets"]
ITEM_EXTENSIONS = (EO, PROJ, RASTER, SAT, VIEW, MGRS, GRID, PROCESSING, S2, CLASSIFICATION)
LICENSE_URL = "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"
ESA_URL = "https://earth.esa.int/eogateway/missions/sentinel-2"

# band -> (asset key, common name, centre wavelength um, FWHM um, native resolution m, title)
S2_BAND_TABLE: Mapping[str, tuple[str, str, float, float, int, str]] = {
    "B01": ("coastal", "coastal", 0.443, 0.027, 60, "Coastal aerosol (B01)"),
    "B02": ("blue", "blue", 0.490, 0.098, 10, "Blue (B02)"),
    "B03": ("green", "green", 0.560, 0.045, 10, "Green (B03)"),
    "B04": ("red", "red", 0.665, 0.038, 10, "Red (B04)"),
    "B05": ("rededge1", "rededge", 0.704, 0.019, 20, "Red edge 1 (B05)"),
    "B06": ("rededge2", "rededge", 0.740, 0.018, 20, "Red edge 2 (B06)"),
    "B07": ("rededge3", "rededge", 0.783, 0.028, 20, "Red edge 3 (B07)"),
    "B08": ("nir", "nir", 0.842, 0.145, 10, "NIR (B08)"),
    "B8A": ("nir08", "nir08", 0.865, 0.033, 20, "Narrow NIR (B8A)"),
    "B09": ("nir09", "nir09", 0.945, 0.026, 60, "Water vapour (B09)"),
    "B10": ("cirrus", "cirrus", 1.375, 0.075, 60, "Cirrus (B10)"),
    "B11": ("swir16", "swir16", 1.610, 0.143, 20, "SWIR 1.6 um (B11)"),
    "B12": ("swir22", "swir22", 2.190, 0.242, 20, "SWIR 2.2 um (B12)"),
}
# name, common name, centre wavelength and FWHM in micrometres (kept for callers of s2kit 0.1)
S2_BANDS: Mapping[str, tuple[str, float, float]] = {k: (v[1], v[2], v[3]) for k, v in S2_BAND_TABLE.items()}
# other L2A rasters -> (asset key, native resolution, title)
AUX_TABLE: Mapping[str, tuple[str, int, str]] = {
    "TCI": ("visual", 10, "True colour image (TCI)"),
    "AOT": ("aot", 20, "Aerosol optical thickness (AOT)"),
    "WVP": ("wvp", 20, "Water vapour (WVP)"),
    "SCL": ("scl", 20, "Scene classification map (SCL)"),
}
# Sen2Cor scene classification values (ESA L2A product definition), colour hints of ESA's legend
SCL_TABLE: tuple[tuple[int, str, str, str], ...] = (
    (0, "no_data", "No data", "000000"),
    (1, "saturated_or_defective", "Saturated or defective pixel", "FF0000"),
    (2, "dark_area_pixels", "Topographic casted shadows / dark area pixels", "2F2F2F"),
    (3, "cloud_shadows", "Cloud shadows", "643200"),
    (4, "vegetation", "Vegetation", "00A000"),
    (5, "not_vegetated", "Not vegetated", "FFE65A"),
    (6, "water", "Water", "0000FF"),
    (7, "unclassified", "Unclassified", "808080"),
    (8, "cloud_medium_probability", "Cloud, medium probability", "C0C0C0"),
    (9, "cloud_high_probability", "Cloud, high probability", "FFFFFF"),
    (10, "thin_cirrus", "Thin cirrus", "64C8FF"),
    (11, "snow", "Snow or ice", "FF96FF"),
)
_RES_SHAPE = {10: 10980, 20: 5490, 60: 1830}
_IMG_RE = re.compile(r"^GRANULE/[^/]+/IMG_DATA/R(10|20|60)m/[^/]*_([A-Z0-9]{3})_(?:10|20|60)m\.jp2\Z", re.I)
_QI_RE = re.compile(r"^GRANULE/[^/]+/QI_DATA/(MSK_(?:CLDPRB|SNWPRB)_(?:20|60)m)\.jp2\Z", re.I)
_PVI_RE = re.compile(r"^GRANULE/[^/]+/QI_DATA/[^/]*_PVI\.jp2\Z", re.I)
_DS_RE = re.compile(r"^DATASTRIP/[^/]+/MTD_DS\.xml\Z", re.I)


#: ``sen2cor.dem`` of a run dir's config.json snapshot -> ``s2kit:dem`` (provenance missing)
SNAPSHOT_DEM = {"none": "none: flat terrain", "srtm": "srtm"}


def dem_label(provenance: Mapping[str, Any] | None) -> str | None:
    """``s2kit:dem`` of an s2kit-made product: "none: flat terrain" or "srtm" (None for ESA's)."""
    if provenance is None:
        return None
    if not isinstance(provenance.get("dem"), Mapping):
        return None
    prov = Provenance.of(provenance)
    dem, mode = prov.dem, prov.dem_mode
    if mode == "none":
        return "none: flat terrain"
    if mode == "srtm":
        return "srtm"
    if mode is None:  # provenance written before the "mode" key: a DEM folder was used or not
        return "srtm" if dem.get("dir") else "none: flat terrain"
    return str(mode)


def _software(product: Product, provenance: Mapping[str, Any] | None) -> dict[str, str]:
    sw: dict[str, str] = {}
    prov = Provenance.of(provenance) if provenance is not None else None
    if prov is not None and prov.sen2cor.get("version"):
        sw["Sen2Cor"] = str(prov.sen2cor["version"])
        recorded = product.metadata.sen2cor_version  # what the product itself says made it
        if recorded and version_label(recorded) != version_label(sw["Sen2Cor"]):
            raise InputError(
                f"expected the Sen2Cor version of its provenance ({sw['Sen2Cor']}) in the product's "
                f"metadata, found {recorded} (provenance edited, or beside another product); "
                f"check it with `s2kit validate --expect-sen2cor {sw['Sen2Cor']} PRODUCT`",
                product.path,
            )
    elif product.metadata.sen2cor_version:
        sw["Sen2Cor"] = product.metadata.sen2cor_version
    if prov is not None and prov.s2kit_version:
        sw["s2kit"] = prov.s2kit_version
    elif provenance is not None:
        sw["s2kit"] = __version__
    return sw


def _tile_ring(tile: str) -> tuple[list[tuple[float, float]], int, tuple[float, float, float, float]]:
    from pyproj import Transformer

    from ..tiles import tile_utm

    epsg, (xmin, ymin, xmax, ymax) = tile_utm(tile)
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    n = 10
    ring_utm = (
        [(xmin + (xmax - xmin) * i / n, ymax) for i in range(n)]
        + [(xmax, ymax - (ymax - ymin) * i / n) for i in range(n)]
        + [(xmax - (xmax - xmin) * i / n, ymin) for i in range(n)]
        + [(xmin, ymin + (ymax - ymin) * i / n) for i in range(n)]
    )
    lon, lat = to_ll.transform([p[0] for p in ring_utm], [p[1] for p in ring_utm])
    ring = [(float(x), float(y)) for x, y in zip(lon, lat, strict=True)]
    return [*ring, ring[0]], epsg, (xmin, ymin, xmax, ymax)


def _footprint(
    facts: ProductFacts, tile: str, ring: list[tuple[float, float]]
) -> tuple[Footprint, str | None]:
    """The data footprint, or the tile's bounds (*ring*) with the reason the footprint was not used."""
    tile_fp = Footprint(ring)
    if not facts.footprint:
        return tile_fp, "MGRS tile bounds: the metadata has no Product_Footprint"
    try:
        fp = Footprint(parse_poslist(facts.footprint))
    except ValueError as exc:
        return tile_fp, f"MGRS tile bounds: Product_Footprint unusable ({exc})"
    c = fp.centroid()
    if not point_in_geometry((c["lon"], c["lat"]), tile_fp.geometry()):
        return tile_fp, f"MGRS tile bounds: Product_Footprint lies outside tile {tile}"
    return fp, None


def _band_asset(
    pystac_mod: Any,
    href: str,
    band: str,
    res: int,
    scaling: tuple[float, float],
) -> tuple[str, pystac.Asset]:
    key, common, centre, fwhm, native, title = S2_BAND_TABLE[band]
    asset = pystac_mod.Asset(
        href=href,
        media_type=pystac_mod.MediaType.JPEG2000,
        roles=["data", "reflectance"],
        title=f"{title} - {res} m",
    )
    offset, quant = scaling
    asset.extra_fields["eo:bands"] = [
        {"name": band, "common_name": common, "center_wavelength": centre, "full_width_half_max": fwhm}
    ]
    asset.extra_fields["raster:bands"] = [
        {
            "nodata": 0,
            "data_type": "uint16",
            "spatial_resolution": float(res),
            "scale": 1.0 / quant,
            "offset": offset / quant,
        }
    ]
    if res == native:
        asset.extra_fields["gsd"] = float(res)
    return (key if res == native else f"{key}_{res}m"), asset


def _aux_asset(
    pystac_mod: Any, href: str, kind: str, res: int, facts: ProductFacts
) -> tuple[str, pystac.Asset]:
    key, native, title = AUX_TABLE[kind]
    roles = ["visual"] if kind == "TCI" else ["data"]
    asset = pystac_mod.Asset(
        href=href, media_type=pystac_mod.MediaType.JPEG2000, roles=roles, title=f"{title} - {res} m"
    )
    band: dict[str, Any] = {"nodata": 0, "spatial_resolution": float(res)}
    if kind == "TCI":
        asset.extra_fields["eo:bands"] = [
            {"name": b, "common_name": S2_BAND_TABLE[b][1], "center_wavelength": S2_BAND_TABLE[b][2],
             "full_width_half_max": S2_BAND_TABLE[b][3]}
            for b in ("B04", "B03", "B02")
        ]  # fmt: skip
        asset.extra_fields["raster:bands"] = [{**band, "data_type": "uint8"} for _ in range(3)]
    elif kind == "SCL":
        asset.extra_fields["raster:bands"] = [
            {
                **band,
                "data_type": "uint8",
                "classification:classes": [
                    {
                        "value": v,
                        "name": n,
                        "description": d,
                        "color_hint": c,
                        **({"nodata": True} if v == 0 else {}),
                    }
                    for v, n, d, c in SCL_TABLE
                ],
            }
        ]
    else:
        quant = facts.aot_quantification if kind == "AOT" else facts.wvp_quantification
        b = {**band, "data_type": "uint16"}
        if quant:
            b["scale"] = 1.0 / quant
            b["offset"] = 0.0
        if kind == "WVP":
            b["unit"] = "cm"
        asset.extra_fields["raster:bands"] = [b]
    asset.extra_fields["gsd"] = float(res)  # a Sen2Cor product of its own at each resolution
    return (key if res == native else f"{key}_{res}m"), asset


def _metadata_asset(pystac_mod: Any, href: Path, title: str, media: str | None = None) -> pystac.Asset:
    asset: pystac.Asset = pystac_mod.Asset(
        href=str(href.absolute()),
        media_type=media or pystac_mod.MediaType.XML,
        roles=["metadata"],
        title=title,
    )
    return asset


def make_item(
    product_path: str | os.PathLike[str],
    provenance: Mapping[str, Any] | None = None,
    *,
    provenance_missing: bool = False,
    dem_mode: str | None = None,
) -> pystac.Item:
    """The STAC Item of one L2A product (and its s2kit provenance, when there is one).

    *provenance_missing*: a run dir says s2kit made the product but its provenance is missing or
    unreadable: the Item says ``s2kit:provenance = "missing"`` (never "ESA processing") and takes
    ``s2kit:dem`` from *dem_mode* (``sen2cor.dem`` of the run dir's config.json snapshot).
    """
    import pystac

    from ..compare import band_scaling

    product = open_product(product_path)
    md = product.metadata
    if md.kind != "L2A":
        raise InputError(f"expected a Level-2A product, found {md.kind}", product.path)
    if product.path.is_file():
        raise InputError("expected an unzipped .SAFE folder, found a zip", product.path)
    if not md.mgrs_tile:
        raise InputError("expected an MGRS tile in the product metadata, found none", product.path)
    pfacts = read_product_facts(product.path / product.metadata_path)
    tfacts = read_tile_facts(product.path / product.tile_paths[0]) if product.tile_paths else TileFacts()
    tile_ring, tile_epsg, utm = _tile_ring(md.mgrs_tile)
    fp, fallback = _footprint(pfacts, md.mgrs_tile, tile_ring)
    if tfacts.epsg is not None and tfacts.epsg != tile_epsg:  # MTD_TL of another tile: trust the name
        tfacts.ul, tfacts.shapes = {}, {}
    epsg = tile_epsg
    item_id = product.name[:-5] if product.name.upper().endswith(".SAFE") else product.name
    item = pystac.Item(
        id=item_id, geometry=fp.geometry(), bbox=fp.bbox(), datetime=md.sensing_start, properties={}
    )
    p = item.properties
    if md.spacecraft:
        p["platform"] = md.spacecraft.lower()
    p["constellation"] = "sentinel-2"
    p["instruments"] = ["msi"]
    p["gsd"] = min((int(m[1]) for m in map(_IMG_RE.match, product.files) if m), default=60)
    sw = _software(product, provenance)
    missing = provenance is None and provenance_missing
    made_here = provenance is not None or missing
    p["providers"] = _providers(sw, made_here)

    # eo
    if pfacts.cloud_cover is not None:
        p["eo:cloud_cover"] = pfacts.cloud_cover
    qi = {**pfacts.qi, **tfacts.qi}  # the tile's own values first (what the reference uses)
    if "s2:snow_ice_percentage" in qi:
        p["eo:snow_cover"] = qi["s2:snow_ice_percentage"]

    # projection
    ulx, uly = tfacts.ul.get(10) or (utm[0], utm[3])
    rows10, cols10 = tfacts.shapes.get(10) or (_RES_SHAPE[10], _RES_SHAPE[10])
    proj_bbox = [ulx, uly - 10.0 * rows10, ulx + 10.0 * cols10, uly]
    p["proj:code"] = f"EPSG:{epsg}"
    p["proj:bbox"] = proj_bbox
    p["proj:centroid"] = fp.centroid()

    # sat + view
    if pfacts.relative_orbit is not None:
        p["sat:relative_orbit"] = pfacts.relative_orbit
    elif md.relative_orbit is not None:
        p["sat:relative_orbit"] = md.relative_orbit
    if pfacts.orbit_direction in ("ascending", "descending"):
        p["sat:orbit_state"] = pfacts.orbit_direction
    abs_orbit = re.search(r"_A(\d{6})_", tfacts.tile_id or pfacts.granule_id or "")
    if abs_orbit:
        p["sat:absolute_orbit"] = int(abs_orbit[1])
    if tfacts.view_azimuth_mean is not None:
        p["view:azimuth"] = tfacts.view_azimuth_mean
    if tfacts.incidence_angle is not None and 0 <= tfacts.incidence_angle <= 90:
        p["view:incidence_angle"] = tfacts.incidence_angle
    if tfacts.sun_azimuth is not None and 0 <= tfacts.sun_azimuth <= 360:
        p["view:sun_azimuth"] = tfacts.sun_azimuth
    if tfacts.sun_zenith is not None and 0 <= tfacts.sun_zenith <= 180:
        p["view:sun_elevation"] = 90.0 - tfacts.sun_zenith

    # mgrs + grid
    tile = md.mgrs_tile
    p["mgrs:utm_zone"] = int(tile[:2])
    p["mgrs:latitude_band"] = tile[2]
    p["mgrs:grid_square"] = tile[3:]
    p["grid:code"] = f"MGRS-{tile}"

    # sentinel-2
    p["s2:product_uri"] = product.name
    p["s2:product_type"] = md.product_type
    p["s2:processing_baseline"] = md.processing_baseline
    p["s2:mgrs_tile"] = tile
    if md.generation_time is not None:
        p["s2:generation_time"] = iso_utc(md.generation_time)
    if tfacts.tile_id or product.tiles:
        p["s2:tile_id"] = tfacts.tile_id or product.tiles[0].tile_id
    if pfacts.datatake_id:
        p["s2:datatake_id"] = pfacts.datatake_id
    if pfacts.datatake_type:
        p["s2:datatake_type"] = pfacts.datatake_type
    if tfacts.datastrip_id or pfacts.datastrip_id:
        p["s2:datastrip_id"] = tfacts.datastrip_id or pfacts.datastrip_id
    if pfacts.reflectance_conversion is not None:
        p["s2:reflectance_conversion_factor"] = pfacts.reflectance_conversion
    for key in sorted(qi):
        p[key] = qi[key]

    # processing (+ s2kit's own fields)
    p["processing:level"] = "L2A"
    if sw:
        p["processing:software"] = sw
    if md.generation_time is not None:
        p["processing:datetime"] = iso_utc(md.generation_time)
    dem = dem_label(provenance) if not missing else SNAPSHOT_DEM.get(dem_mode or "")
    prov = Provenance.of(provenance) if provenance is not None else None
    if prov is not None and prov.scene:
        p["processing:lineage"] = (
            f"Sen2Cor {sw.get('Sen2Cor', '?')} run by s2kit {sw.get('s2kit', '?')} on "
            f"{prov.scene} (L1C processing baseline {prov.l1c.get('processing_baseline') or '?'})"
            + (f"; DEM: {dem}" if dem else "")
        )
        if prov.host:
            p["processing:facility"] = prov.host
    elif missing:
        p["processing:lineage"] = (
            f"Sen2Cor {sw.get('Sen2Cor', '?')} run by s2kit (s2kit provenance missing)"
            + (f"; DEM: {dem} (from the run dir's config.json)" if dem else "")
        )
        p["s2kit:provenance"] = "missing"
    elif not md.local_sen2cor:
        p["processing:lineage"] = "ESA processing (no s2kit provenance)"
    if dem:
        p["s2kit:dem"] = dem
    route = prov.sen2cor.get("route") if prov is not None else None
    if isinstance(route, str) and route:  # why this Sen2Cor version (a routed batch: sen2cor.route)
        p["s2kit:sen2cor_route"] = route
    if fallback:
        p["s2kit:geometry"] = fallback

    _add_assets(pystac, item, product, pfacts, tfacts, epsg, (ulx, uly), proj_bbox, band_scaling)
    if provenance is not None:
        sidecar = sidecar_path(product.path)
        if sidecar.is_file():
            item.add_asset(
                "s2kit_provenance",
                _metadata_asset(
                    pystac, sidecar, "s2kit provenance (s2kit-provenance/1)", pystac.MediaType.JSON
                ),
            )
    used = [EO, PROJ, RASTER, PROCESSING, S2, MGRS, GRID]
    if any(k.startswith("sat:") for k in p):
        used.append(SAT)
    if any(k.startswith("view:") for k in p):
        used.append(VIEW)
    if any(
        "classification:classes" in b
        for a in item.assets.values()
        for b in a.extra_fields.get("raster:bands", [])
    ):
        used.append(CLASSIFICATION)
    item.stac_extensions = [u for u in ITEM_EXTENSIONS if u in used]
    item.add_link(
        pystac.Link("license", LICENSE_URL, media_type="text/html", title="Sentinel data legal notice")
    )
    return item


def _providers(sw: Mapping[str, str], made_here: bool) -> list[dict[str, Any]]:
    if not made_here:
        return [{"name": "ESA", "roles": ["producer", "processor", "licensor"], "url": ESA_URL}]
    return [
        {"name": "ESA", "roles": ["producer", "licensor"], "url": ESA_URL},
        {
            "name": "s2kit (Sen2Cor run locally)",
            "roles": ["processor"],
            "description": "Level-2A made from ESA's Level-1C with ESA Sen2Cor, run by s2kit",
            "processing:level": "L2A",
            "processing:software": dict(sw),
        },
    ]


def _add_assets(
    pystac_mod: Any,
    item: pystac.Item,
    product: Product,
    pfacts: ProductFacts,
    tfacts: TileFacts,
    epsg: int,
    ul: tuple[float, float],
    proj_bbox: list[float],
    band_scaling: Any,
) -> None:
    ulx, uly = ul
    for rel in sorted(product.files):
        href = str((product.path / rel).absolute())
        m = _IMG_RE.match(rel)
        if m:
            res, band = int(m[1]), m[2].upper()
            if band in S2_BAND_TABLE:
                try:
                    scaling = band_scaling(product, band)
                except MetadataError as exc:
                    raise InputError(
                        f"expected radiometric scaling for {band}, found: {exc}", product.path
                    ) from None
                key, asset = _band_asset(pystac_mod, href, band, res, scaling)
            elif band in AUX_TABLE:
                key, asset = _aux_asset(pystac_mod, href, band, res, pfacts)
            else:
                continue
            rows, cols = tfacts.shapes.get(res) or (_RES_SHAPE[res], _RES_SHAPE[res])
            gx, gy = tfacts.ul.get(res) or (ulx, uly)
            asset.extra_fields["proj:shape"] = [rows, cols]
            asset.extra_fields["proj:transform"] = [float(res), 0.0, gx, 0.0, -float(res), gy]
            asset.extra_fields["proj:bbox"] = proj_bbox
            item.add_asset(key, asset)
            continue
        qi = _QI_RE.match(rel)
        if qi:
            item.add_asset(
                qi[1],
                pystac_mod.Asset(
                    href=href,
                    media_type=pystac_mod.MediaType.JPEG2000,
                    roles=["cloud" if "CLD" in qi[1].upper() else "snow-ice"],
                    title=("Cloud" if "CLD" in qi[1].upper() else "Snow/ice") + " probability " + qi[1][-3:],
                ),
            )
        elif _PVI_RE.match(rel):
            item.add_asset(
                "preview",
                pystac_mod.Asset(
                    href=href,
                    media_type=pystac_mod.MediaType.JPEG2000,
                    roles=["overview"],
                    title="True colour preview",
                ),
            )
        elif _DS_RE.match(rel):
            item.add_asset(
                "datastrip_metadata", _metadata_asset(pystac_mod, product.path / rel, "MTD_DS.xml")
            )
        elif rel.upper() == "INSPIRE.XML":
            item.add_asset("inspire_metadata", _metadata_asset(pystac_mod, product.path / rel, "INSPIRE.xml"))
        elif rel == "manifest.safe":
            item.add_asset("safe_manifest", _metadata_asset(pystac_mod, product.path / rel, "manifest.safe"))
    item.add_asset(
        "product_metadata",
        _metadata_asset(pystac_mod, product.path / product.metadata_path, "MTD_MSIL2A.xml"),
    )
    if product.tile_paths:
        item.add_asset(
            "granule_metadata",
            _metadata_asset(pystac_mod, product.path / product.tile_paths[0], "MTD_TL.xml"),
        )
