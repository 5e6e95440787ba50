"""One metadata document of any kind: the kind is taken from its root element."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputError, display_path
from ..xmlsafe import localname, parse_xml, read_capped_file
from .manifest import Manifest, _read_manifest
from .names import Kind
from .product_mtd import ProductMetadata, _read_product
from .tile_mtd import TileMetadata, _read_tile

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
