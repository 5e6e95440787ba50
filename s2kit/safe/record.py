"""The stable ``s2kit inspect --json`` record of a product or a metadata file, and its table."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError, display_path
from ..text import printable
from .manifest import Manifest
from .metadata import read_metadata_file
from .product import Product, open_product
from .product_mtd import ProductMetadata
from .tile_mtd import TileMetadata
from .values import iso_utc

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
        # product text is untrusted: no escape sequence or line break reaches the terminal (issue 12)
        rows.append(f"{printable(key):<{width}}  {printable(shown)}")
    return "\n".join(rows)
