"""The facts an Item needs that :mod:`s2kit.safe` does not keep: from MTD_MSIL2A.xml and MTD_TL.xml.

Both files are read size-capped and parsed with :mod:`s2kit.xmlsafe` (no entities, no network);
lookups are by local name, so PSD 14 and PSD 15 namespaces read the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, MetadataError

if TYPE_CHECKING:
    from lxml import etree

__all__ = ["MAX_MTD_BYTES", "ProductFacts", "TileFacts", "read_product_facts", "read_tile_facts"]

MAX_MTD_BYTES = 32 * 1024 * 1024  # a real MTD_TL.xml is 0.1-0.7 MB, MTD_MSIL2A.xml < 0.2 MB

# Image_Content_QI element -> s2: property (sentinel-2 extension v1.0.0)
QI_FIELDS = {
    "NODATA_PIXEL_PERCENTAGE": "s2:nodata_pixel_percentage",
    "SATURATED_DEFECTIVE_PIXEL_PERCENTAGE": "s2:saturated_defective_pixel_percentage",
    "DARK_FEATURES_PERCENTAGE": "s2:dark_features_percentage",
    "CLOUD_SHADOW_PERCENTAGE": "s2:cloud_shadow_percentage",
    "VEGETATION_PERCENTAGE": "s2:vegetation_percentage",
    "NOT_VEGETATED_PERCENTAGE": "s2:not_vegetated_percentage",
    "WATER_PERCENTAGE": "s2:water_percentage",
    "UNCLASSIFIED_PERCENTAGE": "s2:unclassified_percentage",
    "MEDIUM_PROBA_CLOUDS_PERCENTAGE": "s2:medium_proba_clouds_percentage",
    "HIGH_PROBA_CLOUDS_PERCENTAGE": "s2:high_proba_clouds_percentage",
    "THIN_CIRRUS_PERCENTAGE": "s2:thin_cirrus_percentage",
    "SNOW_ICE_PERCENTAGE": "s2:snow_ice_percentage",
    "DEGRADED_MSI_DATA_PERCENTAGE": "s2:degraded_msi_data_percentage",
}


def _read_xml(path: Path) -> etree._Element:
    from ..xmlsafe import parse_xml

    try:
        size = path.stat().st_size
        if size > MAX_MTD_BYTES:
            raise InputError(f"expected a metadata file under {MAX_MTD_BYTES} bytes, found {size}", path)
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"expected a readable metadata file, found: {exc.strerror}", path) from None
    return parse_xml(data, path)


def _local(el: etree._Element) -> str:
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _first(root: etree._Element, name: str) -> etree._Element | None:
    return next(iter(root.iter(f"{{*}}{name}", name)), None)


def _text(root: etree._Element | None, name: str) -> str | None:
    if root is None:
        return None
    el = _first(root, name)
    text = el.text.strip() if el is not None and el.text else ""
    return text or None


def _num(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _qi(root: etree._Element) -> dict[str, float]:
    node = _first(root, "Image_Content_QI")
    out: dict[str, float] = {}
    if node is None:
        return out
    for el in node:
        name = _local(el)
        value = _num(el.text.strip() if el.text else None)
        if name in QI_FIELDS and value is not None and 0 <= value <= 100:
            out[QI_FIELDS[name]] = value
    return out


@dataclass
class ProductFacts:
    footprint: str | None = None  # EXT_POS_LIST text
    orbit_direction: str | None = None
    relative_orbit: int | None = None
    datatake_type: str | None = None
    datatake_id: str | None = None
    datastrip_id: str | None = None
    granule_id: str | None = None
    cloud_cover: float | None = None
    reflectance_conversion: float | None = None
    aot_quantification: float | None = None
    wvp_quantification: float | None = None
    qi: dict[str, float] = field(default_factory=dict)


def read_product_facts(path: Path) -> ProductFacts:
    root = _read_xml(path)
    facts = ProductFacts()
    fp = _first(root, "Global_Footprint")
    facts.footprint = _text(fp, "EXT_POS_LIST") if fp is not None else None
    direction = _text(root, "SENSING_ORBIT_DIRECTION")
    facts.orbit_direction = direction.lower() if direction else None
    orbit = _text(root, "SENSING_ORBIT_NUMBER")
    facts.relative_orbit = int(orbit) if orbit and orbit.isdigit() else None
    facts.datatake_type = _text(root, "DATATAKE_TYPE")
    dt = _first(root, "Datatake")
    if dt is not None and dt.get("datatakeIdentifier"):
        facts.datatake_id = str(dt.get("datatakeIdentifier"))
    gr = _first(root, "Granule")
    if gr is not None:
        facts.datastrip_id = str(gr.get("datastripIdentifier") or "") or None
        facts.granule_id = str(gr.get("granuleIdentifier") or "") or None
    cloud = _num(_text(root, "Cloud_Coverage_Assessment"))
    facts.cloud_cover = cloud if cloud is not None and 0 <= cloud <= 100 else None
    rc = _first(root, "Reflectance_Conversion")
    facts.reflectance_conversion = _num(_text(rc, "U")) if rc is not None else None
    facts.aot_quantification = _num(_text(root, "AOT_QUANTIFICATION_VALUE"))
    facts.wvp_quantification = _num(_text(root, "WVP_QUANTIFICATION_VALUE"))
    facts.qi = _qi(root)
    return facts


@dataclass
class TileFacts:
    tile_id: str | None = None
    datastrip_id: str | None = None
    epsg: int | None = None
    shapes: dict[int, tuple[int, int]] = field(default_factory=dict)  # resolution -> (rows, cols)
    ul: dict[int, tuple[float, float]] = field(default_factory=dict)  # resolution -> (ULX, ULY)
    sun_zenith: float | None = None
    sun_azimuth: float | None = None
    view_zenith: list[float] = field(default_factory=list)  # one mean per band
    view_azimuth: list[float] = field(default_factory=list)
    qi: dict[str, float] = field(default_factory=dict)

    @property
    def incidence_angle(self) -> float | None:
        return sum(self.view_zenith) / len(self.view_zenith) if self.view_zenith else None

    @property
    def view_azimuth_mean(self) -> float | None:
        """Circular mean of the per-band mean viewing azimuths, degrees in [0, 360)."""
        if not self.view_azimuth:
            return None
        s = sum(math.sin(math.radians(a)) for a in self.view_azimuth)
        c = sum(math.cos(math.radians(a)) for a in self.view_azimuth)
        return math.degrees(math.atan2(s, c)) % 360.0


def read_tile_facts(path: Path) -> TileFacts:
    root = _read_xml(path)
    facts = TileFacts(tile_id=_text(root, "TILE_ID"), datastrip_id=_text(root, "DATASTRIP_ID"))
    code = _text(root, "HORIZONTAL_CS_CODE")
    if code and code.upper().startswith("EPSG:") and code[5:].isdigit():
        facts.epsg = int(code[5:])
    for el in root.iter("{*}Size", "Size"):
        res, rows, cols = el.get("resolution"), _text(el, "NROWS"), _text(el, "NCOLS")
        if res and res.isdigit() and rows and rows.isdigit() and cols and cols.isdigit():
            facts.shapes[int(res)] = (int(rows), int(cols))
    for el in root.iter("{*}Geoposition", "Geoposition"):
        res, ulx, uly = el.get("resolution"), _num(_text(el, "ULX")), _num(_text(el, "ULY"))
        if res and res.isdigit() and ulx is not None and uly is not None:
            facts.ul[int(res)] = (ulx, uly)
    sun = _first(root, "Mean_Sun_Angle")
    if sun is not None:
        facts.sun_zenith = _num(_text(sun, "ZENITH_ANGLE"))
        facts.sun_azimuth = _num(_text(sun, "AZIMUTH_ANGLE"))
    for el in root.iter("{*}Mean_Viewing_Incidence_Angle", "Mean_Viewing_Incidence_Angle"):
        z, a = _num(_text(el, "ZENITH_ANGLE")), _num(_text(el, "AZIMUTH_ANGLE"))
        if z is not None and a is not None:
            facts.view_zenith.append(z)
            facts.view_azimuth.append(a)
    facts.qi = _qi(root)
    if facts.tile_id is None:
        raise MetadataError("expected a TILE_ID in the tile metadata, found none", path)
    return facts
