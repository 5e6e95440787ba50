"""The SAFE manifest: manifest.safe (XFDU), its data objects and checksums."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from lxml import etree

from ..errors import MetadataError
from ..xmlsafe import localname
from .names import _MANIFEST_TILE_RE, _SAFE_NS
from .values import _int_value, _parse_time


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
