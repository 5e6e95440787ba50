"""SRTM DEM sets per Sentinel-2 tile, with the lab's fix for Sen2Cor 2.9's SRTM merging.

What Sen2Cor does with a DEM (2.8.0 source, ``L2A_Tables.gdalDEM_srtm`` and ``SIIMPC_577``,
mirrored in the public repository c-core-labs/sen2cor; 2.9's source is not public):

* it derives the SRTM tile names ``srtm_XX_YY`` from the tile corners (see :mod:`s2kit.tiles`);
* for each name, if ``DEM_Directory/srtm_XX_YY.tif`` is missing it fetches
  ``DEM_Reference + 'srtm_XX_YY.zip'`` (plain string concatenation - hence the trailing ``/``;
  with ``DEM_Reference`` = the DEM directory it reads the local zip), checks it with
  ``ZipFile.testzip()`` and extracts the member ``srtm_XX_YY.tif`` *into the DEM directory*,
  then moves that tif's geotransform half a pixel west and south (SIIMPC-577);
* it mosaics the tifs with ``gdalwarp -ot Int16`` (with ``--config CENTER_LONG 180`` across
  the antimeridian), sets ``-32768`` (``NODATA_DEM``) to 0 and warps to the tile's UTM grid.

Sen2Cor 2.9 merges neighbouring SRTM tiles wrongly (seams in L2A; STEP forum thread
"question about geometric relict in L2A converted images", 2021). The lab's fix (SEAL lab
how-to "Manual Batch S2 L2A sen2cor conversion", 2021): merge the needed tiles once and put a
copy of the merged DEM in a zip under *each* original name. Sen2Cor then mosaics N identical
copies of a correct DEM. This module does that per Sentinel-2 tile:

* needed names = every SRTM tile the footprint + margin touches (a superset of Sen2Cor's);
* each ``srtm_XX_YY.zip`` comes from a local folder (or mirror) or a base URL (default: the
  CGIAR address in Sen2Cor 2.9's own ``L2A_GIPP.xml`` comment), downloads resumable
  (:mod:`s2kit.http`), size and SHA-256 recorded in ``<cache>/manifest.json``;
* zips are checked (no member with an absolute or ``..`` path; exactly ``srtm_XX_YY.tif``; CRC)
  and only that member is extracted, to a name s2kit chooses (zip-slip-safe);
* rasters are checked (GeoTIFF, 1 band, Int16, WGS 84, square pixels, 5°x5°, nodata -32768 or
  unset: CGIAR v4.1 tiles are 6000x6000 Int16 with nodata -32768);
* ``rasterio.merge`` copies them (no resampling: the window is snapped outward to the SRTM
  pixel grid) into one Int16 GeoTIFF with nodata -32768 kept as such - Sen2Cor maps it to 0
  itself after its mosaic; tiles missing at the source (CGIAR has no all-ocean tiles) are
  refused unless ``allow_missing``, then filled with -32768;
* ``<out>/<tile>/srtm_XX_YY.zip`` for every needed name, each holding ``srtm_XX_YY.tif`` = the
  merged DEM (the GeoTIFF is DEFLATE-compressed once; the zips store it, so each zip is a
  byte copy of the same DEM), and ``dem.json`` recording source tiles, checksums and bounds.
  The set is built in a staging folder and renamed into place: never half-written.

A second run with the same tile, margin and source finds ``dem.json`` and a valid set and does
nothing. :func:`check_dem` verifies a prepared set.

Modules: ``source`` (where zips come from, zip checks), ``merge`` (read, window, merge),
``prepare`` (the set per tile), ``check`` (full and cheap checks), ``task`` (a task's DEM folder
and its per-task staging), ``base`` (constants, :class:`DemError`), ``copdem`` (the Copernicus
DEM cells Sen2Cor 2.12 reads, per tile: ``<dem_dir>/<kind>/<tile>/``).

Sen2Cor writes into the DEM directory at run time (the extracted ``.tif``, shifted in place),
so the directory must be writable by the job, and a ``.tif`` left there takes precedence over
the zip.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "CGIAR_SRTM_URL",
    "COPDEM_KINDS",
    "CGIAR_SRTM_URL_SEN2COR_28",
    "DEM_JSON",
    "SRTM_NODATA",
    "CopDemSource",
    "CopFootprint",
    "CopPrepareResult",
    "DemCheck",
    "DemError",
    "DemFinding",
    "MergedDem",
    "PrepareResult",
    "SourceTile",
    "SrtmSource",
    "check_dem",
    "copdem_footprint",
    "dem_files",
    "dem_for_tile",
    "dem_problem",
    "kind_dir",
    "merge_srtm",
    "prepare_copdem",
    "prepare_dem",
    "srtm_zip_member",
    "stage_dem",
    "tile_dem_dir",
]

from .base import (
    _GTIFF_OPTIONS as _GTIFF_OPTIONS,  # the GeoTIFF options (tests compare against them)
)
from .base import (
    CGIAR_SRTM_URL,
    CGIAR_SRTM_URL_SEN2COR_28,
    DEM_JSON,
    SRTM_NODATA,
    DemError,
)
from .check import DemCheck, DemFinding, check_dem, dem_problem, kind_dir, tile_dem_dir
from .task import dem_files, dem_for_tile, stage_dem

if TYPE_CHECKING:
    from .copdem import (
        COPDEM_KINDS,
        CopDemSource,
        CopFootprint,
        CopPrepareResult,
        copdem_footprint,
        prepare_copdem,
    )
    from .merge import MergedDem, merge_srtm
    from .prepare import PrepareResult, prepare_dem
    from .source import SourceTile, SrtmSource, srtm_zip_member

#: Names of the modules that build a DEM set (HTTP, rasterio), loaded on first use (PEP 562): a
#: worker needs only ``check`` and ``task``, and must not import requests at start-up (issue 17).
_LAZY = {
    "COPDEM_KINDS": "copdem",
    "CopDemSource": "copdem",
    "CopFootprint": "copdem",
    "CopPrepareResult": "copdem",
    "copdem_footprint": "copdem",
    "prepare_copdem": "copdem",
    "MergedDem": "merge",
    "merge_srtm": "merge",
    "PrepareResult": "prepare",
    "prepare_dem": "prepare",
    "SourceTile": "source",
    "SrtmSource": "source",
    "srtm_zip_member": "source",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
