"""The product metadata file: MTD_MSIL1C.xml / MTD_MSIL2A.xml (and their PSD 12/13 predecessors)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from lxml import etree

from ..errors import InputError, MetadataError
from ..versions import sen2cor_version_from_gipp
from .names import _TILE_IN_ID_RE, ProductName, parse_baseline, parse_product_name
from .values import _Fields, _int_value, _parse_time, _psd_version

# Of the ~140 GIPP_FILENAME entries of an ESA product, those that say how the L2A was made.
KEPT_GIPP_TYPES = frozenset({"GIP_L2ACSC", "GIP_L2ACAC", "GIP_L2ACFG", "GIP_PROBAS", "GIP_PROBA2"})


@dataclass(frozen=True)
class GippRef:
    type: str
    version: str | None
    name: str


@dataclass(frozen=True)
class ProductMetadata:
    """MTD_MSIL1C.xml / MTD_MSIL2A.xml (and their PSD 12/13 predecessors)."""

    source: str
    kind: Literal["L1C", "L2A"]
    format: Literal["compact", "legacy"]
    psd_version: str | None
    product_uri: str | None
    product_type: str
    processing_baseline: str
    spacecraft: str | None
    sensing_start: datetime
    generation_time: datetime | None
    relative_orbit: int | None
    mgrs_tile: str | None
    quantification_value: int | None
    boa_quantification_value: int | None
    radiometric_offsets: tuple[tuple[str, int], ...] | None
    gipps: tuple[GippRef, ...]
    image_files: tuple[str, ...]
    sen2cor_version: str | None
    l1c_processing_baseline: str | None
    local_sen2cor: bool

    def gipp(self, gipp_type: str) -> GippRef | None:
        return next((g for g in self.gipps if g.type == gipp_type), None)


_PRODUCT_FIELDS = [
    "PRODUCT_URI",
    "PRODUCT_URI_1C",
    "PRODUCT_URI_2A",
    "PRODUCT_TYPE",
    "PROCESSING_BASELINE",
    "PRODUCT_START_TIME",
    "DATATAKE_SENSING_START",
    "GENERATION_TIME",
    "SPACECRAFT_NAME",
    "SENSING_ORBIT_NUMBER",
    "PRODUCT_FORMAT",
    "QUANTIFICATION_VALUE",
    "BOA_QUANTIFICATION_VALUE",
    "L2A_BOA_QUANTIFICATION_VALUE",
    "RADIO_ADD_OFFSET",
    "BOA_ADD_OFFSET",
    "GIPP_FILENAME",
    "IMAGE_FILE",
    "IMAGE_ID",
    "IMAGE_FILE_2A",
    "Granule",
    "Granules",
]


def _read_product(root: etree._Element, kind: Literal["L1C", "L2A"], source: str) -> ProductMetadata:
    f = _Fields(root, _PRODUCT_FIELDS, source)
    psd = _psd_version(root)
    raw_baseline = f.required("PROCESSING_BASELINE")
    baseline = parse_baseline(raw_baseline, source)
    product_format = f.text("PRODUCT_FORMAT") or ""
    legacy = raw_baseline.startswith("N") or (psd is not None and int(psd) < 14) or product_format == "SAFE"

    uri_raw = f.text("PRODUCT_URI_2A" if kind == "L2A" else "PRODUCT_URI_1C", "PRODUCT_URI")
    name: ProductName | None = None
    if uri_raw:
        try:
            name = parse_product_name(uri_raw)
        except InputError:
            name = None  # e.g. "http://localhost" in PSD 12/13 samples
    product_uri = uri_raw if name is not None else None

    product_type = f.text("PRODUCT_TYPE") or ("S2MSI1C" if kind == "L1C" else "S2MSI2A")
    sensing_text = f.required("PRODUCT_START_TIME", "DATATAKE_SENSING_START")
    generation_text = f.text("GENERATION_TIME")
    orbit_text = f.text("SENSING_ORBIT_NUMBER")

    granule_ids = [el.get("granuleIdentifier", "") for el in f.elements("Granule") + f.elements("Granules")]
    tile = name.mgrs_tile if name else None
    if tile is None:
        for gid in granule_ids:
            m = _TILE_IN_ID_RE.search(gid)
            if m:
                tile = m[1]
                break

    def offsets(tag: str) -> tuple[tuple[str, int], ...] | None:
        els = f.elements(tag)
        if not els:
            return None
        return tuple(
            (el.get("band_id", str(i)), _int_value(el.text or "", source, tag)) for i, el in enumerate(els)
        )

    gipps = tuple(
        GippRef(type=el.get("type", ""), version=el.get("version"), name=(el.text or "").strip())
        for el in f.elements("GIPP_FILENAME")
        if el.get("type") in KEPT_GIPP_TYPES
    )
    images = tuple(
        (el.text or "").strip()
        for el in f.elements("IMAGE_FILE") + f.elements("IMAGE_FILE_2A") + f.elements("IMAGE_ID")
    )

    sen2cor_version = None
    l1c_baseline = None
    local = bool(name and name.local_sen2cor) or product_type.upper().endswith("P")
    if kind == "L2A":
        sc = next((g for g in gipps if g.type == "GIP_L2ACSC"), None)
        if sc is not None:
            sen2cor_version = sen2cor_version_from_gipp(sc.version)
            # NB: the GIPP *name* (L2A_CAL_SC_GIPP vs S2__OPER_GIP_L2ACSC_...) does not
            # tell local runs apart: ESA's ESRI-reprocessed archive also carries the
            # local cfg name. Only the name (_N9999_, S2MSI2Ap, USER) is trusted.
        uri_1c = f.text("PRODUCT_URI_1C")
        probas = next((g for g in gipps if g.type == "GIP_PROBAS"), None)
        if uri_1c:
            try:
                l1c_baseline = parse_product_name(uri_1c).processing_baseline
            except InputError:
                l1c_baseline = None
        if l1c_baseline is None and probas is not None and probas.version:
            try:
                l1c_baseline = parse_baseline(probas.version, source)
            except MetadataError:
                l1c_baseline = None
        if name is None and legacy:
            local = local or "_USER_" in Path(source).name

    quant = f.text("QUANTIFICATION_VALUE") if kind == "L1C" else None
    boa_quant = f.text("BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE") if kind == "L2A" else None

    return ProductMetadata(
        source=source,
        kind=kind,
        format="legacy" if legacy else "compact",
        psd_version=psd,
        product_uri=product_uri,
        product_type=product_type,
        processing_baseline=baseline,
        spacecraft=f.text("SPACECRAFT_NAME"),
        sensing_start=_parse_time(sensing_text, source, "PRODUCT_START_TIME"),
        generation_time=_parse_time(generation_text, source, "GENERATION_TIME") if generation_text else None,
        relative_orbit=_int_value(orbit_text, source, "SENSING_ORBIT_NUMBER") if orbit_text else None,
        mgrs_tile=tile,
        quantification_value=_int_value(quant, source, "QUANTIFICATION_VALUE") if quant else None,
        boa_quantification_value=(
            _int_value(boa_quant, source, "BOA_QUANTIFICATION_VALUE") if boa_quant else None
        ),
        radiometric_offsets=offsets("RADIO_ADD_OFFSET" if kind == "L1C" else "BOA_ADD_OFFSET"),
        gipps=gipps,
        image_files=images,
        sen2cor_version=sen2cor_version,
        l1c_processing_baseline=l1c_baseline,
        local_sen2cor=local,
    )
