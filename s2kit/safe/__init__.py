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

Layout (one module per metadata file kind): :mod:`.names` (product names, baselines, the
empty folders), :mod:`.product_mtd` (MTD_MSIL1C/2A.xml), :mod:`.tile_mtd` (MTD_TL.xml),
:mod:`.manifest` (manifest.safe), :mod:`.metadata` (any one document, by its root),
:mod:`.product` (directory and zip sources), :mod:`.record` (the ``inspect`` record).
"""

from __future__ import annotations

from ..versions import SEN2COR_VERSION_FORMS, sen2cor_version_from_gipp
from .manifest import DataObject, Manifest
from .metadata import read_metadata_bytes, read_metadata_file
from .names import (
    DATASTRIP_EMPTY_DIRS,
    EMPTY_DIRS,
    GRANULE_EMPTY_DIRS,
    Kind,
    ProductName,
    baseline_key,
    parse_baseline,
    parse_product_name,
    repair_empty_dirs,
    strip_product_suffix,
)
from .product import DirSource, Product, ProductSource, ZipSource, open_product
from .product_mtd import KEPT_GIPP_TYPES, GippRef, ProductMetadata
from .record import RECORD_KEYS, inspect_path, product_record, record_table, to_record
from .tile_mtd import TileMetadata
from .values import iso_utc

__all__ = [
    "Kind",
    "ProductName",
    "ProductMetadata",
    "TileMetadata",
    "Manifest",
    "DataObject",
    "GippRef",
    "Product",
    "ProductSource",
    "DirSource",
    "ZipSource",
    "KEPT_GIPP_TYPES",
    "SEN2COR_VERSION_FORMS",
    "EMPTY_DIRS",
    "GRANULE_EMPTY_DIRS",
    "DATASTRIP_EMPTY_DIRS",
    "parse_product_name",
    "strip_product_suffix",
    "sen2cor_version_from_gipp",
    "parse_baseline",
    "baseline_key",
    "iso_utc",
    "read_metadata_bytes",
    "read_metadata_file",
    "open_product",
    "inspect_path",
    "product_record",
    "repair_empty_dirs",
    "to_record",
    "record_table",
    "RECORD_KEYS",
]
