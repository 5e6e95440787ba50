"""Sentinel-2 SAFE products and metadata: names, MTD files, tile MTD, manifest.

A thin lxml layer (stactools-sentinel2 style) that returns typed, frozen values
and fails loudly, naming file and element, when a required value is missing.
It reads a ``.SAFE`` directory, a ``.SAFE.zip`` (only the metadata members are
read, nothing is extracted) or a bare metadata file.

Formats handled (all seen in real ESA files, see ``data/fixtures/README.md``):

* compact naming (Dec 2016 on), PSD 14/15 metadata, processing baselines 02.04 - 05.11;
* the old long naming (``S2A_OPER_PRD_MSIL1C_PDMC_...``), PSD 12/13, ``N01.01``
  baselines - parsed and flagged ``format = "legacy"`` (s2kit does not process them);
* local Sen2Cor output: ``_N9999_`` names, ``S2MSI2Ap`` products that write
  ``PRODUCT_URI_1C``/``PRODUCT_URI_2A``, and the Sen2Cor version recorded in
  ``GIPP_FILENAME[@type='GIP_L2ACSC']/@version``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

from lxml import etree

from .errors import InputError, MetadataError, display_path
from .xmlsafe import (
    check_declared_size,
    first_elements,
    localname,
    parse_xml,
    read_capped,
    read_capped_file,
    scan_xml,
)

__all__ = [
    "Kind",
    "ProductName",
    "ProductMetadata",
    "TileMetadata",
    "Manifest",
    "DataObject",
    "Product",
    "parse_product_name",
    "sen2cor_version_from_gipp",
    "parse_baseline",
    "read_metadata_bytes",
    "read_metadata_file",
    "open_product",
    "inspect_path",
    "to_record",
    "record_table",
    "RECORD_KEYS",
]

Kind = Literal["L1C", "L2A", "L1C_TILE", "L2A_TILE", "MANIFEST"]

# ----------------------------------------------------------------------------- product names

_COMPACT_RE = re.compile(
    r"^(?P<mission>S2[A-D_])_MSI(?P<level>L1C|L2A|L2AP)_(?P<sensing>\d{8}T\d{6})"
    r"_N(?P<baseline>\d{4})_R(?P<orbit>\d{3})_T(?P<tile>\d{2}[A-Z]{3})"
    r"_(?P<discriminator>\d{8}T\d{6})\Z",
    re.IGNORECASE,
)
# Pre-December-2016 long names, e.g.
# S2A_OPER_PRD_MSIL1C_PDMC_20161213T013539_R065_V20161212T084402_20161212T084403
# S2A_USER_MTD_SAFL2A_PDMC_20130621T120000_R065_V20091211T165928_20091211T170025
_LEGACY_RE = re.compile(
    r"^(?P<mission>S2[A-D_])_(?P<file_class>OPER|USER|TEST)_(?P<file_type>PRD|MTD)_"
    r"(?:MSI|SAF)(?P<level>L1C|L2A|L2AP)_(?P<site>\w{4})_(?P<generation>\d{8}T\d{6})"
    r"_R(?P<orbit>\d{3})_V(?P<sensing>\d{8}T\d{6})_(?P<sensing_stop>\d{8}T\d{6})\Z",
    re.IGNORECASE,
)
_SAFE_NS = "http://www.esa.int/safe/sentinel/1.1"
_MANIFEST_TILE_RE = re.compile(r"GRANULE/L[12][AC]_T(\d{2}[A-Z]{3})_")
_TILE_IN_ID_RE = re.compile(r"_T(\d{2}[A-Z]{3})(?:_|\Z)")
_BASELINE_IN_ID_RE = re.compile(r"_N(\d{2})\.?(\d{2})(?:\.SAFE)?\Z")
_SPACECRAFT = {
    "S2A": "Sentinel-2A",
    "S2B": "Sentinel-2B",
    "S2C": "Sentinel-2C",
    "S2D": "Sentinel-2D",
}


def _compact_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class ProductName:
    """What a product name says (the metadata inside the product has the last word)."""

    name: str  # without .SAFE / .zip
    naming: Literal["compact", "legacy"]
    spacecraft: str | None
    level: Literal["L1C", "L2A"]
    sensing_start: datetime
    processing_baseline: str | None  # "03.01"; None for legacy names
    relative_orbit: int
    mgrs_tile: str | None  # None for legacy names (multi-tile products)
    discriminator: datetime  # product generation time
    local_sen2cor: bool


def strip_product_suffix(name: str) -> str:
    for suffix in (".zip", ".SAFE", ".safe"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def parse_product_name(name: str) -> ProductName:
    """Parse a Sentinel-2 product name (compact or legacy), with or without ``.SAFE``/``.zip``."""
    stem = strip_product_suffix(PurePosixPath(name).name)
    m = _COMPACT_RE.match(stem)
    if m:
        baseline = m["baseline"]
        return ProductName(
            name=stem,
            naming="compact",
            spacecraft=_SPACECRAFT.get(m["mission"].upper()),
            level="L1C" if m["level"].upper() == "L1C" else "L2A",
            sensing_start=_compact_time(m["sensing"]),
            processing_baseline=f"{baseline[:2]}.{baseline[2:]}",
            relative_orbit=int(m["orbit"]),
            mgrs_tile=m["tile"].upper(),
            discriminator=_compact_time(m["discriminator"]),
            local_sen2cor=baseline == "9999" or m["level"].upper() == "L2AP",
        )
    m = _LEGACY_RE.match(stem)
    if m:
        return ProductName(
            name=stem,
            naming="legacy",
            spacecraft=_SPACECRAFT.get(m["mission"].upper()),
            level="L1C" if m["level"].upper() == "L1C" else "L2A",
            sensing_start=_compact_time(m["sensing"]),
            processing_baseline=None,
            relative_orbit=int(m["orbit"]),
            mgrs_tile=None,
            discriminator=_compact_time(m["generation"]),
            local_sen2cor=m["file_class"].upper() == "USER",
        )
    raise InputError(
        "expected a Sentinel-2 product name such as "
        "S2A_MSIL1C_20210815T160829_N0301_R140_T17SQV_20210815T203111.SAFE, "
        f"found {stem!r}"
    )


# ----------------------------------------------------------------------------- value parsing

_BASELINE_RE = re.compile(r"^N?(\d{2})\.(\d{2})\Z")


def parse_baseline(text: str, source: str | os.PathLike[str] = "<value>") -> str:
    """Normalise a processing baseline.

    ``"03.01"`` stays, ``"N01.01"`` -> ``"01.01"``, ``"0301"`` -> ``"03.01"``.
    """
    t = text.strip()
    m = _BASELINE_RE.match(t)
    if m:
        return f"{m[1]}.{m[2]}"
    if re.fullmatch(r"N?\d{4}", t):
        digits = t.lstrip("N")
        return f"{digits[:2]}.{digits[2:]}"
    raise MetadataError(f"expected a processing baseline like '03.01', found {text!r}", source)


def baseline_key(baseline: str) -> tuple[int, int]:
    """Sortable form of a normalised baseline (``"04.00"`` -> ``(4, 0)``)."""
    major, _, minor = baseline.partition(".")
    return int(major), int(minor)


# Sen2Cor writes GIPP_FILENAME[@type='GIP_L2ACSC']/@version as
# '%04d' % int(processorVersion.replace('.', '')) (L2A_ProcessDataStrip in the 2.8
# sources): 2.8.0 -> "0280", 2.9.0 -> "0290", 2.10.01 -> "21001", 2.12.02 -> "21202".
# ESA's PB 04.00 products wrote a 7-digit zero-padded variant ("0021001").
# Only forms seen in real products (see data/fixtures) or produced by that rule
# for a released Sen2Cor version are listed; anything else maps to None.
SEN2COR_VERSION_FORMS: Mapping[str, str] = {
    "0255": "02.05.05",
    "0280": "02.08.00",  # real: PB 02.12 ESA L2A
    "0282": "02.08.02",  # real: PB 02.14 ESA L2A
    "0290": "02.09.00",  # Sen2Cor 2.9.0 local output, by the rule above
    "2100": "02.10.00",
    "21001": "02.10.01",
    "0021001": "02.10.01",  # real: PB 04.00 ESA L2A
    "21003": "02.10.03",  # real: PB 05.09/05.10 ESA L2A
    "21100": "02.11.00",
    "21200": "02.12.00",
    "21202": "02.12.02",  # real: PB 05.11 ESA L2A
    "21203": "02.12.03",
}
_DOTTED_VERSION_RE = re.compile(r"^0?(\d)\.(\d{1,2})\.(\d{1,2})\Z")


def sen2cor_version_from_gipp(version_attr: str | None) -> str | None:
    """Map the GIP_L2ACSC ``version`` attribute to ``"02.09.00"`` style; None if unknown."""
    if not version_attr:
        return None
    v = version_attr.strip()
    if v in SEN2COR_VERSION_FORMS:
        return SEN2COR_VERSION_FORMS[v]
    m = _DOTTED_VERSION_RE.match(v)
    if m:
        return f"{int(m[1]):02d}.{int(m[2]):02d}.{int(m[3]):02d}"
    return None


def _parse_time(text: str, source: str | os.PathLike[str], what: str) -> datetime:
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1]
    # Python < 3.11 fromisoformat wants 0, 3 or 6 fraction digits
    if "." in t:
        head, frac = t.split(".", 1)
        t = f"{head}.{(frac + '000000')[:6]}"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError as exc:
        raise MetadataError(f"expected an ISO-8601 time in {what}, found {text!r}", source) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso_utc(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _int_value(text: str, source: str | os.PathLike[str], what: str) -> int:
    try:
        value = float(text.strip())
    except ValueError as exc:
        raise MetadataError(f"expected a number in {what}, found {text!r}", source) from exc
    if value != int(value):
        raise MetadataError(f"expected an integer in {what}, found {text!r}", source)
    return int(value)


class _Fields:
    """First-occurrence lookup of elements by local name, with typed, loud getters."""

    def __init__(self, root: etree._Element, names: list[str], source: str | os.PathLike[str]):
        self.source = source
        self.all = first_elements(root, names)

    def elements(self, name: str) -> list[etree._Element]:
        return self.all.get(name, [])

    def text(self, *names: str, required: bool = False) -> str | None:
        for name in names:
            for el in self.all.get(name, []):
                if el.text and el.text.strip():
                    return el.text.strip()
        if required:
            raise MetadataError(
                f"expected element {' or '.join(names)} with a value, found none", self.source
            )
        return None

    def required(self, *names: str) -> str:
        value = self.text(*names, required=True)
        assert value is not None
        return value


# ----------------------------------------------------------------------------- metadata models


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


@dataclass(frozen=True)
class TileMetadata:
    """GRANULE/*/MTD_TL.xml."""

    source: str
    kind: Literal["L1C_TILE", "L2A_TILE"]
    psd_version: str | None
    tile_id: str
    processing_baseline: str
    l1c_tile_id: str | None
    l1c_processing_baseline: str | None
    mgrs_tile: str | None
    spacecraft: str | None
    sensing_time: datetime
    epsg: int | None


@dataclass(frozen=True)
class DataObject:
    href: str
    size: int | None
    checksum_name: str | None
    checksum: str | None


@dataclass(frozen=True)
class Manifest:
    """manifest.safe (XFDU)."""

    source: str
    level: Literal["L1C", "L2A"] | None
    spacecraft: str | None
    sensing_start: datetime | None
    relative_orbit: int | None
    mgrs_tile: str | None
    data_objects: tuple[DataObject, ...] = field(repr=False)

    @property
    def checksum_algorithms(self) -> tuple[str, ...]:
        return tuple(sorted({d.checksum_name for d in self.data_objects if d.checksum_name}))


_PSD_RE = re.compile(r"psd-(\d+)", re.IGNORECASE)
# first element start tag (after the prolog): <prefix:Name or <Name
_ROOT_RE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s>/]")
_ROOTS: Mapping[str, Kind] = {
    "Level-1C_User_Product": "L1C",
    "Level-2A_User_Product": "L2A",
    "Level-2Ap_User_Product": "L2A",
    "Level-1C_Tile_ID": "L1C_TILE",
    "Level-2A_Tile_ID": "L2A_TILE",
    "Level-2Ap_Tile_ID": "L2A_TILE",
    "XFDU": "MANIFEST",
}


def _psd_version(root: etree._Element) -> str | None:
    ns = etree.QName(root).namespace or ""
    m = _PSD_RE.search(ns)
    if m:
        return m[1]
    if "pdgs.s2.esa.int" in ns:  # PSD 12 era namespace
        return "12"
    return None


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


def _baseline_of_id(identifier: str, source: str, what: str) -> str:
    m = _BASELINE_IN_ID_RE.search(identifier)
    if not m:
        raise MetadataError(f"expected {what} ending in _Nxx.yy, found {identifier!r}", source)
    return f"{m[1]}.{m[2]}"


_TILE_FIELDS = {
    "L1C_TILE": {"TILE_ID", "SENSING_TIME", "HORIZONTAL_CS_CODE"},
    "L2A_TILE": {"TILE_ID", "L1C_TILE_ID", "SENSING_TIME", "HORIZONTAL_CS_CODE"},
}


def _read_tile(
    data: bytes, source: str | os.PathLike[str], kind: Literal["L1C_TILE", "L2A_TILE"]
) -> TileMetadata:
    """Tile metadata, stream-parsed: its facts are at the top of a 0.1-0.6 MB file."""
    src = display_path(source)
    root_tag, values = scan_xml(data, source, _TILE_FIELDS[kind])

    def text(name: str, required: bool = False) -> str | None:
        for value, _attrs in values.get(name, []):
            if value:
                return value
        if required:
            raise MetadataError(f"expected element {name} with a value, found none", src)
        return None

    tile_id = text("TILE_ID", required=True) or ""
    l1c_tile_id = text("L1C_TILE_ID")
    tile_m = _TILE_IN_ID_RE.search(tile_id)
    epsg_text = text("HORIZONTAL_CS_CODE")
    epsg = None
    if epsg_text and epsg_text.upper().startswith("EPSG:"):
        epsg = _int_value(epsg_text[5:], src, "HORIZONTAL_CS_CODE")
    namespace = root_tag[1:].partition("}")[0] if root_tag.startswith("{") else ""
    psd = _PSD_RE.search(namespace)
    return TileMetadata(
        source=src,
        kind=kind,
        psd_version=psd[1] if psd else None,
        tile_id=tile_id,
        processing_baseline=_baseline_of_id(tile_id, src, "TILE_ID"),
        l1c_tile_id=l1c_tile_id,
        l1c_processing_baseline=(_baseline_of_id(l1c_tile_id, src, "L1C_TILE_ID") if l1c_tile_id else None),
        mgrs_tile=tile_m[1] if tile_m else None,
        spacecraft=_SPACECRAFT.get(tile_id[:3].upper()),
        sensing_time=_parse_time(text("SENSING_TIME", required=True) or "", src, "SENSING_TIME"),
        epsg=epsg,
    )


def _read_manifest(root: etree._Element, source: str) -> Manifest:
    version = root.get("version", "").lower()
    level: Literal["L1C", "L2A"] | None = "L1C" if "l1c" in version else "L2A" if "l2a" in version else None
    number = start = orbit = None
    objects: list[DataObject] = []
    tile = None
    href: str | None = None
    size: int | None = None
    # One C-level pass in document order: each dataObject holds
    # byteStream(size) > fileLocation(href) > checksum(checksumName).
    names = ("startTime", "relativeOrbitNumber", "number", "byteStream", "fileLocation", "checksum")
    # Real manifests put dataObject children in no namespace and the rest in SAFE 1.1's:
    # exact tags take lxml's C fast path; anything else falls back to a wildcard pass.
    exact = ("byteStream", "fileLocation", "checksum", *(f"{{{_SAFE_NS}}}{n}" for n in names[:3]))
    has_exact = root.find(".//fileLocation") is not None
    for el in root.iter(*(exact if has_exact else tuple(f"{{*}}{n}" for n in names))):
        name = el.tag.rpartition("}")[2]
        if name == "byteStream":
            size_text = el.get("size")
            size = int(size_text) if size_text and size_text.isdigit() else None
        elif name == "fileLocation":
            if href is not None:  # previous object had no checksum
                objects.append(DataObject(href, size, None, None))
            raw = el.get("href", "")
            href = raw[2:] if raw.startswith("./") else raw
            if tile is None and "GRANULE/" in href:
                m = _MANIFEST_TILE_RE.search(href)
                tile = m[1] if m else None
        elif name == "checksum" and href is not None:
            objects.append(DataObject(href, size, el.get("checksumName"), (el.text or "").strip().lower()))
            href, size = None, None
        elif name == "startTime" and start is None:
            start = (el.text or "").strip()
        elif name == "relativeOrbitNumber" and orbit is None:
            orbit = (el.text or "").strip()
        elif name == "number" and number is None:
            parent = el.getparent()
            if parent is not None and localname(parent) == "platform":
                number = (el.text or "").strip()
    if href is not None:
        objects.append(DataObject(href, size, None, None))
    if not objects:
        raise MetadataError("expected dataObject entries with fileLocation, found none", source)
    return Manifest(
        source=source,
        level=level,
        spacecraft=f"Sentinel-{number}" if number else None,
        sensing_start=_parse_time(start, source, "safe:startTime") if start else None,
        relative_orbit=_int_value(orbit, source, "safe:relativeOrbitNumber") if orbit else None,
        mgrs_tile=tile,
        data_objects=tuple(objects),
    )


def read_metadata_bytes(
    data: bytes, source: str | os.PathLike[str]
) -> ProductMetadata | TileMetadata | Manifest:
    """Parse one metadata document; the kind is taken from its root element."""
    src = display_path(source)
    sniffed = _ROOT_RE.search(data[:8192])
    sniffed_kind = _ROOTS.get(sniffed[1].decode("ascii", "replace")) if sniffed else None
    if sniffed_kind in ("L1C_TILE", "L2A_TILE"):
        return _read_tile(data, source, sniffed_kind)
    root = parse_xml(data, source)
    root_name = localname(root)
    kind = _ROOTS.get(root_name)
    if kind is None:
        raise InputError(
            "expected a Sentinel-2 metadata document (Level-1C/2A_User_Product, "
            f"Level-1C/2A_Tile_ID or XFDU manifest), found root element <{root_name}>",
            source,
        )
    if kind in ("L1C", "L2A"):
        return _read_product(root, kind, src)
    if kind in ("L1C_TILE", "L2A_TILE"):
        return _read_tile(data, source, kind)
    return _read_manifest(root, src)


def read_metadata_file(path: str | os.PathLike[str]) -> ProductMetadata | TileMetadata | Manifest:
    p = Path(path)
    try:
        data = read_capped_file(p)
    except OSError as exc:
        raise InputError(f"expected a readable metadata file, found: {exc.strerror}", p) from exc
    return read_metadata_bytes(data, p)


# ----------------------------------------------------------------------------- product containers


class ProductSource(Protocol):
    """A product's files, wherever they are (directory or zip)."""

    path: Path
    name: str

    def files(self) -> dict[str, int]:
        """Relative POSIX path -> size in bytes, for every regular file."""
        ...

    def read(self, relpath: str) -> bytes: ...


class DirSource:
    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        self._files: dict[str, int] | None = None

    def files(self) -> dict[str, int]:
        if self._files is None:
            out: dict[str, int] = {}
            base = str(self.path)
            for dirpath, _dirs, names in os.walk(base):
                rel_dir = os.path.relpath(dirpath, base)
                for n in names:
                    full = os.path.join(dirpath, n)
                    try:
                        st = os.stat(full)
                    except OSError:
                        continue  # dangling link
                    rel = n if rel_dir == "." else f"{rel_dir}/{n}".replace(os.sep, "/")
                    out[rel] = st.st_size
            self._files = out
        return self._files

    def read(self, relpath: str) -> bytes:
        try:
            return read_capped_file(self.path / relpath)
        except OSError as exc:
            raise InputError(f"expected a readable file, found: {exc.strerror}", self.path / relpath) from exc


class ZipSource:
    """A ``.SAFE.zip``: members are read on demand, nothing is extracted."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputError(
                f"expected a readable .SAFE.zip, found a truncated or corrupt zip ({exc})", path
            ) from exc
        tops = {i.filename.split("/", 1)[0] for i in infos if i.filename}
        safe_tops = [t for t in tops if t.upper().endswith(".SAFE")]
        self._prefix = f"{safe_tops[0]}/" if len(safe_tops) == 1 else ""
        self.name = safe_tops[0] if len(safe_tops) == 1 else strip_product_suffix(path.name) + ".SAFE"
        self._infos = {
            i.filename[len(self._prefix) :]: i
            for i in infos
            if not i.is_dir() and i.filename.startswith(self._prefix)
        }

    def files(self) -> dict[str, int]:
        return {k: v.file_size for k, v in self._infos.items()}

    def read(self, relpath: str) -> bytes:
        info = self._infos.get(relpath)
        if info is None:
            raise InputError(f"expected member {relpath} in the zip, found none", self.path)
        where = self.path / relpath
        check_declared_size(info.file_size, where)  # cheap refusal of an honest giant
        try:
            with self._zip.open(info) as fh:  # the declared size may lie: cap the stream itself
                return read_capped(fh, where)
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            EOFError,
            zlib.error,
            NotImplementedError,  # unsupported compression method
            RuntimeError,  # encrypted member
        ) as exc:
            raise InputError(
                f"expected a readable zip member {relpath}, found a corrupt one ({exc})", self.path
            ) from exc

    def close(self) -> None:
        self._zip.close()


_PRODUCT_MTD_PATTERNS = (
    "MTD_MSIL1C.xml",
    "MTD_MSIL2A.xml",
    "MTD_MSIL2AP.xml",
    "S2?_*_MTD_SAF*.xml",
)
_TILE_MTD_PATTERNS = ("GRANULE/*/MTD_TL.xml", "GRANULE/*/S2?_*_MTD_L*_TL_*.xml")


def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # case-insensitive: real products ship MTD_MSIL2a.xml; '*' never crosses '/'
    parts = [fnmatch.translate(p).replace(".*", "[^/]*") for p in patterns]
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)


_PRODUCT_MTD_RE = _compile(_PRODUCT_MTD_PATTERNS)
_TILE_MTD_RE = _compile(_TILE_MTD_PATTERNS)


def _match(files: Mapping[str, int], pattern: re.Pattern[str]) -> list[str]:
    return sorted(rel for rel in files if rel.count("/") <= 2 and pattern.match(rel))


@dataclass(frozen=True)
class Product:
    """A product on disk: its source, its metadata, and the files it holds."""

    path: Path
    name: str
    metadata: ProductMetadata
    metadata_path: str
    tiles: tuple[TileMetadata, ...]
    tile_paths: tuple[str, ...]
    manifest: Manifest | None
    files: Mapping[str, int] = field(repr=False)


def _open_source(path: Path) -> ProductSource:
    if path.is_dir():
        return DirSource(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        return ZipSource(path)
    raise InputError("expected a .SAFE directory or a .SAFE.zip, found neither", path)


def open_product(path: str | os.PathLike[str]) -> Product:
    """Open a ``.SAFE`` directory or ``.SAFE.zip`` and read its metadata (not its rasters)."""
    p = Path(path)
    if not p.exists():
        raise InputError("expected an existing path, found nothing there", p)
    src = _open_source(p)
    try:
        return _read_source(p, src)
    finally:
        if isinstance(src, ZipSource):
            src.close()


def _read_source(p: Path, src: ProductSource) -> Product:
    files = src.files()
    mtds = _match(files, _PRODUCT_MTD_RE)
    if not mtds:
        raise InputError(
            "not a Sentinel-2 product: expected MTD_MSIL1C.xml or MTD_MSIL2A.xml at its top level, "
            f"found {len(files)} file(s) and none of them",
            p,
        )
    if len(mtds) > 1:
        raise InputError(
            f"expected one product metadata file at the top level, found {len(mtds)} "
            f"({', '.join(mtds[:3])}{', ...' if len(mtds) > 3 else ''}): a folder of metadata, not a product",
            p,
        )
    mtd_rel = mtds[0]
    md = read_metadata_bytes(src.read(mtd_rel), p / mtd_rel)
    if not isinstance(md, ProductMetadata):
        raise InputError(f"expected product metadata in {mtd_rel}, found {md.__class__.__name__}", p)
    tile_rels = _match(files, _TILE_MTD_RE)
    tiles = []
    for rel in tile_rels:
        t = read_metadata_bytes(src.read(rel), p / rel)
        if isinstance(t, TileMetadata):
            tiles.append(t)
    manifest = None
    man_rel = next((r for r in files if r.lower() == "manifest.safe"), None)
    if man_rel is not None:
        m = read_metadata_bytes(src.read(man_rel), p / man_rel)
        manifest = m if isinstance(m, Manifest) else None
    return Product(
        path=p,
        name=src.name,
        metadata=md,
        metadata_path=mtd_rel,
        tiles=tuple(tiles),
        tile_paths=tuple(tile_rels),
        manifest=manifest,
        files=files,
    )


# ----------------------------------------------------------------------------- JSON record

RECORD_KEYS = (
    "kind",
    "product_uri",
    "spacecraft",
    "sensing_start",
    "processing_baseline",
    "mgrs_tile",
    "relative_orbit",
    "boa_quantification_value",
    "quantification_value",
    "radiometric_offsets",
    "sen2cor_version",
    "l1c_processing_baseline",
    "local_sen2cor",
)


def to_record(md: ProductMetadata | TileMetadata | Manifest) -> dict[str, Any]:
    """The stable ``s2kit inspect --json`` contract for one metadata document."""
    if isinstance(md, ProductMetadata):
        rec: dict[str, Any] = {
            "kind": md.kind,
            "product_uri": md.product_uri,
            "spacecraft": md.spacecraft,
            "sensing_start": iso_utc(md.sensing_start),
            "processing_baseline": md.processing_baseline,
            "mgrs_tile": md.mgrs_tile,
            "relative_orbit": md.relative_orbit,
            "boa_quantification_value": md.boa_quantification_value,
            "quantification_value": md.quantification_value,
            "radiometric_offsets": dict(md.radiometric_offsets) if md.radiometric_offsets else None,
            "sen2cor_version": md.sen2cor_version,
            "l1c_processing_baseline": md.l1c_processing_baseline,
            "local_sen2cor": md.local_sen2cor,
            "format": md.format,
            "psd_version": md.psd_version,
            "product_type": md.product_type,
            "generation_time": iso_utc(md.generation_time),
        }
    elif isinstance(md, TileMetadata):
        rec = {
            "kind": md.kind,
            "product_uri": None,
            "spacecraft": md.spacecraft,
            "sensing_start": iso_utc(md.sensing_time),
            "processing_baseline": md.processing_baseline,
            "mgrs_tile": md.mgrs_tile,
            "relative_orbit": None,
            "boa_quantification_value": None,
            "quantification_value": None,
            "radiometric_offsets": None,
            "sen2cor_version": None,
            "l1c_processing_baseline": md.l1c_processing_baseline,
            "local_sen2cor": False,
            "tile_id": md.tile_id,
            "l1c_tile_id": md.l1c_tile_id,
            "epsg": md.epsg,
            "psd_version": md.psd_version,
        }
    else:
        rec = {
            "kind": "MANIFEST",
            "product_uri": None,
            "spacecraft": md.spacecraft,
            "sensing_start": iso_utc(md.sensing_start),
            "processing_baseline": None,
            "mgrs_tile": md.mgrs_tile,
            "relative_orbit": md.relative_orbit,
            "boa_quantification_value": None,
            "quantification_value": None,
            "radiometric_offsets": None,
            "sen2cor_version": None,
            "l1c_processing_baseline": None,
            "local_sen2cor": False,
            "level": md.level,
            "data_objects": len(md.data_objects),
            "checksum_algorithms": list(md.checksum_algorithms),
        }
    return rec


def product_record(product: Product) -> dict[str, Any]:
    """Record of a whole product: its MTD, completed from its tile metadata."""
    rec = to_record(product.metadata)
    if product.metadata.kind == "L2A" and product.tiles:
        # the tile's L1C_TILE_ID is the authoritative L1C baseline of an L2A
        l1c = {t.l1c_processing_baseline for t in product.tiles if t.l1c_processing_baseline}
        if len(l1c) == 1:
            rec["l1c_processing_baseline"] = l1c.pop()
    if rec["mgrs_tile"] is None and product.tiles:
        rec["mgrs_tile"] = product.tiles[0].mgrs_tile
    rec["path"] = display_path(product.path)
    rec["granules"] = len(product.tiles)
    rec["manifest"] = product.manifest is not None
    return rec


def _looks_like_metadata_file(path: Path) -> bool:
    return path.suffix.lower() in (".xml", ".safe")


def inspect_path(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``s2kit inspect`` prints: a record for a product or a bare metadata file."""
    p = Path(path)
    if not p.exists():
        raise InputError("expected an existing product or metadata file, found nothing there", p)
    if p.is_dir() or p.suffix.lower() == ".zip":
        return product_record(open_product(p))
    if p.is_file():
        head = b""
        try:
            with open(p, "rb") as fh:
                head = fh.read(512)
        except OSError as exc:
            raise InputError(f"expected a readable file, found: {exc.strerror}", p) from exc
        if not _looks_like_metadata_file(p) and not head.lstrip().startswith(b"<"):
            raise InputError(
                "expected a .SAFE directory, a .SAFE.zip, MTD_MSIL1C/2A.xml, MTD_TL.xml or "
                "manifest.safe, found a file of another kind",
                p,
            )
        rec = to_record(read_metadata_file(p))
        rec["path"] = display_path(p)
        return rec
    raise InputError("expected a regular file or directory, found something else", p)


def record_table(rec: Mapping[str, Any]) -> str:
    """A short human-readable table of a record (what ``s2kit inspect`` prints)."""
    rows = []
    width = max(len(k) for k in rec)
    for key, value in rec.items():
        if key == "radiometric_offsets" and isinstance(value, dict):
            vals = set(value.values())
            shown = f"{len(value)} bands, {vals.pop()}" if len(vals) == 1 else str(value)
        elif value is None:
            shown = "-"
        else:
            shown = str(value)
        rows.append(f"{key:<{width}}  {shown}")
    return "\n".join(rows)
