"""``s2kit stac RUN_DIR|L2A.SAFE --out DIR``: STAC Items for produced L2A, a Collection for the run.

One Item per L2A product (pystac; STAC 1.1.0), on par with stactools-sentinel2's Items for the
same ESA product (tests/test_stac_reference.py compares them), with the extensions

* ``eo`` v1.1.0: ``eo:cloud_cover``, ``eo:snow_cover``; ``eo:bands`` (common names) per band asset;
* ``projection`` v2.0.0: ``proj:code``, ``proj:bbox``, ``proj:centroid`` (of the data footprint);
  ``proj:shape`` / ``proj:transform`` per asset from MTD_TL.xml;
* ``raster`` v1.1.0: per band ``nodata`` 0, ``data_type``, ``scale`` = 1/BOA_QUANTIFICATION_VALUE,
  ``offset`` = BOA_ADD_OFFSET/BOA_QUANTIFICATION_VALUE (PB >= 04.00): reflectance = DN * scale + offset;
  AOT/WVP scaled by their own quantification values;
* ``sat`` v1.0.0: ``sat:relative_orbit``, ``sat:orbit_state``, ``sat:absolute_orbit``;
* ``view`` v1.0.0: mean sun and viewing angles of MTD_TL.xml;
* ``mgrs`` v1.0.0 and ``grid`` v1.1.0 (``grid:code`` = ``MGRS-<tile>``);
* ``processing`` v1.2.0: ``processing:software`` {Sen2Cor, s2kit versions}, level, lineage, datetime;
* ``sentinel-2`` v1.0.0: product URI, tile/datastrip/datatake ids, baseline, QI percentages, ...;
* ``classification`` v2.0.0: the SCL classes on the ``scl`` assets.

s2kit's own fields: ``s2kit:dem`` ("none: flat terrain" / "srtm" / a Copernicus DEM kind) on
products s2kit made, ``s2kit:sen2cor_route`` (why this Sen2Cor version: the plan's route line;
``processing:software`` names the version per item), ``s2kit:geometry`` only when the
footprint could not be used (the geometry is then the tile's),
and ``s2kit:provenance = "missing"`` on a product a run dir says s2kit made (state done) whose
provenance is missing or unreadable: never called ESA processing, its ``s2kit:dem`` taken from
the run dir's config.json snapshot, and ``stac_for`` returns a warning per such product plus a
summary (``s2kit stac`` prints them on stderr).

Geometry: the product's data footprint (s2kit.stac.geometry), not the tile's bounds; split at
the antimeridian per RFC 7946. Asset hrefs are absolute paths of the product files; Item and
Collection links are relative. Every Item and the Collection are validated offline against the
official schemas (s2kit.stac.schemas) before anything is written.
"""

from __future__ import annotations

from .collection import StacResult, item_assets, make_collection, stac_for
from .item import (
    CLASSIFICATION,
    EO,
    GRID,
    ITEM_ASSETS,
    ITEM_EXTENSIONS,
    LICENSE_URL,
    MGRS,
    PROCESSING,
    PROJ,
    RASTER,
    S2,
    S2_BANDS,
    SAT,
    VIEW,
    dem_label,
    make_item,
)
from .schemas import (
    EXTENSION_SCHEMAS,
    SCHEMAS_ENV,
    StacValidationFailed,
    schemas_dir_default,
    validate_documents,
    validate_stac,
)

EXTENSIONS = ITEM_EXTENSIONS

__all__ = [
    "CLASSIFICATION",
    "EO",
    "EXTENSIONS",
    "EXTENSION_SCHEMAS",
    "GRID",
    "ITEM_ASSETS",
    "LICENSE_URL",
    "MGRS",
    "PROCESSING",
    "PROJ",
    "RASTER",
    "S2",
    "S2_BANDS",
    "SAT",
    "SCHEMAS_ENV",
    "VIEW",
    "StacResult",
    "StacValidationFailed",
    "dem_label",
    "item_assets",
    "make_collection",
    "make_item",
    "schemas_dir_default",
    "stac_for",
    "validate_documents",
    "validate_stac",
]
