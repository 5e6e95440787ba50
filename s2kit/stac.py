"""``s2kit stac RUN_DIR|L2A.SAFE --out DIR``: STAC Items for produced L2A, a Collection for the run.

One Item per L2A product (pystac; STAC 1.1.0) with the extensions

* ``eo`` v1.1.0: ``eo:cloud_cover`` / ``eo:snow_cover`` (MTD_MSIL2A.xml), ``eo:bands`` per band asset;
* ``projection`` v2.0.0: ``proj:code``, ``proj:bbox`` of the tile, ``proj:shape``/``proj:transform``
  per resolution;
* ``raster`` v1.1.0: per band ``nodata`` 0, ``data_type``, ``scale`` = 1/BOA_QUANTIFICATION_VALUE,
  ``offset`` = BOA_ADD_OFFSET/BOA_QUANTIFICATION_VALUE: reflectance = DN * scale + offset;
* ``processing`` v1.2.0: ``processing:software`` {Sen2Cor, s2kit versions}, level, lineage, datetime;
* ``sentinel-2`` v1.0.0: ``s2:product_uri``, ``s2:tile_id``, ``s2:processing_baseline``, ...

Geometry and bbox are the MGRS tile's footprint (s2kit.tiles), not the valid-data outline.
Asset hrefs are absolute paths of the product files; Item and Collection links are relative.

Validation (always; nothing is written when an object fails):

* core: pystac's ``JsonSchemaSTACValidator`` against the OFFICIAL STAC 1.1.0 Item/Collection
  and GeoJSON schemas that the pystac wheel ships (no network);
* each extension: its OFFICIAL JSON schema when a local copy is found under ``schemas_dir``
  (``--schemas DIR`` or ``$S2KIT_STAC_SCHEMAS``; laid out like the URL:
  ``DIR/stac-extensions.github.io/eo/v1.1.0/schema.json``), else s2kit's own field schema
  (the types of every field s2kit writes, written from the extension's README), because no
  PyPI package ships the extension schemas and this machine cannot reach
  stac-extensions.github.io. :attr:`StacResult.validation` says which schema checked what.
  Any other schema a document would need is an error, never a download.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import InputError, S2kitError, display_path
from .fsutil import atomic_write_text, read_json_object
from .runs import PROVENANCE_SUFFIX, RunDir
from .safe import Product, iso_utc, open_product

if TYPE_CHECKING:
    import pystac

__all__ = [
    "EXTENSIONS",
    "StacResult",
    "StacValidationFailed",
    "make_item",
    "stac_for",
    "validate_stac",
]

STAC_VERSION = "1.1.0"
EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
PROJ = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
PROCESSING = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
S2 = "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json"
EXTENSIONS = (EO, PROJ, RASTER, PROCESSING, S2)
SCHEMAS_ENV = "S2KIT_STAC_SCHEMAS"
LICENSE_URL = "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"

# name, common name, centre wavelength and FWHM in micrometres (Sentinel-2A MSI)
S2_BANDS: Mapping[str, tuple[str, float, float]] = {
    "B01": ("coastal", 0.443, 0.027),
    "B02": ("blue", 0.490, 0.098),
    "B03": ("green", 0.560, 0.045),
    "B04": ("red", 0.665, 0.038),
    "B05": ("rededge", 0.704, 0.019),
    "B06": ("rededge", 0.740, 0.018),
    "B07": ("rededge", 0.783, 0.028),
    "B08": ("nir", 0.842, 0.145),
    "B8A": ("nir08", 0.865, 0.033),
    "B09": ("nir09", 0.945, 0.026),
    "B10": ("cirrus", 1.375, 0.075),
    "B11": ("swir16", 1.610, 0.143),
    "B12": ("swir22", 2.190, 0.242),
}
_RES_SHAPE = {10: 10980, 20: 5490, 60: 1830}
_IMG_RE = re.compile(r"^GRANULE/[^/]+/IMG_DATA/R(10|20|60)m/[^/]*_([A-Z0-9]{3})_(?:10|20|60)m\.jp2\Z", re.I)
_QI_RE = re.compile(r"^GRANULE/[^/]+/QI_DATA/(MSK_(?:CLDPRB|SNWPRB)_(?:20|60)m)\.jp2\Z", re.I)


class StacValidationFailed(S2kitError):
    """A generated STAC object does not validate; nothing was written."""


# --------------------------------------------------------------------------- s2kit field schemas
def _fields_schema(uri: str, fields: Mapping[str, Any], where: tuple[str, ...]) -> dict[str, Any]:
    """An Item schema checking the types of *fields* wherever they appear, and the URI's use."""
    props: dict[str, Any] = {
        "stac_extensions": {"type": "array", "contains": {"const": uri}},
    }
    fields_def = {"type": "object", "properties": dict(fields)}
    if "properties" in where:
        props["properties"] = {"$ref": "#/definitions/fields"}
    if "assets" in where:
        props["assets"] = {"type": "object", "additionalProperties": {"$ref": "#/definitions/fields"}}
    if "summaries" in where:
        props["summaries"] = {"type": "object"}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"s2kit field rules for {uri}",
        "type": "object",
        "required": ["stac_extensions"],
        "properties": props,
        "definitions": {"fields": fields_def},
    }


_NUM = {"type": "number"}
_STR = {"type": "string"}
_PCT = {"type": "number", "minimum": 0, "maximum": 100}
_DATETIME = {"type": "string", "format": "date-time", "pattern": r"(\+00:00|Z)$"}
_COMMON_NAMES = [
    "pan", "coastal", "blue", "green", "yellow", "red", "rededge", "nir", "nir08", "nir09",
    "cirrus", "swir16", "swir22", "lwir", "lwir11", "lwir12",
]  # fmt: skip
_DATA_TYPES = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "cint16", "cint32", "cfloat32", "cfloat64", "other",
]  # fmt: skip
BUILTIN_SCHEMAS: Mapping[str, dict[str, Any]] = {
    EO: _fields_schema(
        EO,
        {
            "eo:cloud_cover": _PCT,
            "eo:snow_cover": _PCT,
            "eo:bands": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": _STR,
                        "common_name": {"enum": _COMMON_NAMES},
                        "center_wavelength": {"type": "number", "exclusiveMinimum": 0},
                        "full_width_half_max": {"type": "number", "exclusiveMinimum": 0},
                        "solar_illumination": {"type": "number", "minimum": 0},
                    },
                },
            },
        },
        ("properties", "assets"),
    ),
    PROJ: _fields_schema(
        PROJ,
        {
            "proj:code": {"type": ["string", "null"], "pattern": r"^[A-Za-z0-9]+:[A-Za-z0-9._-]+$"},
            "proj:bbox": {
                "type": "array",
                "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
                "items": _NUM,
            },
            "proj:shape": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {"type": "integer", "minimum": 0},
            },
            "proj:transform": {
                "type": "array",
                "oneOf": [{"minItems": 6, "maxItems": 6}, {"minItems": 9, "maxItems": 9}],
                "items": _NUM,
            },
            "proj:centroid": {
                "type": "object",
                "required": ["lat", "lon"],
                "properties": {"lat": _NUM, "lon": _NUM},
            },
        },
        ("properties", "assets"),
    ),
    RASTER: _fields_schema(
        RASTER,
        {
            "raster:bands": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "nodata": {"oneOf": [_NUM, {"enum": ["nan", "inf", "-inf"]}]},
                        "sampling": {"enum": ["area", "point"]},
                        "data_type": {"enum": _DATA_TYPES},
                        "bits_per_sample": {"type": "integer", "minimum": 1},
                        "spatial_resolution": {"type": "number", "exclusiveMinimum": 0},
                        "unit": _STR,
                        "scale": _NUM,
                        "offset": _NUM,
                    },
                },
            }
        },
        ("assets",),
    ),
    PROCESSING: _fields_schema(
        PROCESSING,
        {
            "processing:level": _STR,
            "processing:lineage": _STR,
            "processing:facility": _STR,
            "processing:version": _STR,
            "processing:datetime": _DATETIME,
            "processing:software": {"type": "object", "additionalProperties": _STR, "minProperties": 1},
        },
        ("properties", "summaries"),
    ),
    S2: _fields_schema(
        S2,
        {
            "s2:tile_id": _STR,
            "s2:granule_id": _STR,
            "s2:product_uri": _STR,
            "s2:product_type": _STR,
            "s2:processing_baseline": {"type": "string", "pattern": r"^\d{2}\.\d{2}$"},
            "s2:generation_time": _DATETIME,
            "s2:mgrs_tile": {"type": "string", "pattern": r"^\d{2}[C-X][A-Z]{2}$"},
            "s2:datatake_id": _STR,
            "s2:snow_ice_percentage": _PCT,
        },
        ("properties",),
    ),
}


# --------------------------------------------------------------------------- offline validation
def schemas_dir_default() -> Path | None:
    text = os.environ.get(SCHEMAS_ENV, "").strip()
    return Path(text) if text else None


def _offline_validator(schemas_dir: Path | None, used: dict[str, str]) -> Any:
    from pystac.validation.stac_validator import JsonSchemaSTACValidator

    class OfflineValidator(JsonSchemaSTACValidator):
        """pystac's validator with every schema from disk: never a network request."""

        def _get_schema(self, schema_uri: str) -> dict[str, Any]:
            if schema_uri in self.schema_cache:
                used.setdefault(schema_uri, "official schema shipped in the pystac wheel")
                return dict(self.schema_cache[schema_uri])
            m = re.match(r"^https?://(.+)\Z", schema_uri)
            local = schemas_dir / m[1] if schemas_dir is not None and m else None
            if local is not None and local.is_file():
                try:
                    loaded = json.loads(local.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise InputError(f"expected a JSON schema, found: {exc}", local) from None
                if not isinstance(loaded, dict):
                    raise InputError("expected a JSON schema object, found another JSON value", local)
                doc: dict[str, Any] = loaded
                used[schema_uri] = f"official schema, local copy {display_path(local)}"
            elif schema_uri in BUILTIN_SCHEMAS:
                doc = BUILTIN_SCHEMAS[schema_uri]
                used[schema_uri] = "s2kit field rules (official schema not available offline)"
            else:
                raise InputError(
                    f"schema {schema_uri} is not available offline (no network is used); put a copy "
                    f"under --schemas DIR / ${SCHEMAS_ENV} as DIR/{m[1] if m else schema_uri}"
                )
            self.schema_cache[schema_uri] = doc
            return doc

    return OfflineValidator()


def validate_stac(objects: list[pystac.STACObject], schemas_dir: Path | None = None) -> dict[str, str]:
    """Validate every object offline; return {schema URI: what checked it}. Raises on failure."""
    import pystac
    import pystac.validation

    used: dict[str, str] = {}
    validator = _offline_validator(schemas_dir, used)
    for obj in objects:
        try:
            pystac.validation.validate(obj, validator=validator)
        except pystac.STACValidationError as exc:
            first = " | ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
            m = re.search(r"against schema at (\S+)", first)
            how = f" [that schema: {used[m[1]]}]" if m and m[1] in used else ""
            raise StacValidationFailed(
                f"{obj.STAC_OBJECT_TYPE} {obj.id} does not validate: {first[:600]}{how}"
            ) from None
    return used


# --------------------------------------------------------------------------- items
def _mtd_values(product: Product) -> dict[str, str]:
    from .xmlsafe import first_elements, parse_xml

    path = product.path / product.metadata_path
    try:
        root = parse_xml(path.read_bytes(), path)
    except OSError as exc:
        raise InputError(f"expected a readable metadata file, found: {exc.strerror}", path) from None
    names = ["Cloud_Coverage_Assessment", "SNOW_ICE_PERCENTAGE", "DATATAKE_IDENTIFIER", "Datatake"]
    found = first_elements(root, names)
    out: dict[str, str] = {}
    for name in names[:2]:
        els = found.get(name) or []
        if els and els[0].text and els[0].text.strip():
            out[name] = els[0].text.strip()
    dt = found.get("Datatake") or []
    if dt and dt[0].get("datatakeIdentifier"):
        out["datatake"] = str(dt[0].get("datatakeIdentifier"))
    return out


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _geometry(tile: str) -> tuple[dict[str, Any], list[float], int, tuple[float, float, float, float]]:
    from pyproj import Transformer

    from .tiles import tile_utm

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
    pts = [(round(x, 7), round(y, 7)) for x, y in zip(lon, lat, strict=True)]
    if max(p[0] for p in pts) - min(p[0] for p in pts) > 180:  # across the antimeridian: split
        east = [(x if x > 0 else x + 360.0, y) for x, y in pts]
        west = [(x - 360.0, y) for x, y in east]
        s, no = min(p[1] for p in pts), max(p[1] for p in pts)
        w_lo = min(p[0] for p in east)
        e_hi = max(p[0] for p in west)
        polys = [
            [[w_lo, s], [180.0, s], [180.0, no], [w_lo, no], [w_lo, s]],
            [[-180.0, s], [e_hi, s], [e_hi, no], [-180.0, no], [-180.0, s]],
        ]
        geom = {"type": "MultiPolygon", "coordinates": [[p] for p in polys]}
        bbox = [w_lo, s, e_hi, no]  # west > east: crosses the antimeridian (STAC convention)
    else:
        ring = [[x, y] for x, y in pts] + [[pts[0][0], pts[0][1]]]
        ring.reverse()  # counter-clockwise exterior (RFC 7946)
        geom = {"type": "Polygon", "coordinates": [ring]}
        bbox = [
            min(p[0] for p in pts),
            min(p[1] for p in pts),
            max(p[0] for p in pts),
            max(p[1] for p in pts),
        ]
    return geom, bbox, epsg, (xmin, ymin, xmax, ymax)


def _software(product: Product, provenance: Mapping[str, Any] | None) -> dict[str, str]:
    sw: dict[str, str] = {}
    sen2cor = provenance.get("sen2cor") if provenance else None
    if isinstance(sen2cor, dict) and sen2cor.get("version"):
        sw["Sen2Cor"] = str(sen2cor["version"])
    elif product.metadata.sen2cor_version:
        sw["Sen2Cor"] = product.metadata.sen2cor_version
    if provenance and provenance.get("s2kit_version"):
        sw["s2kit"] = str(provenance["s2kit_version"])
    elif provenance is not None:
        sw["s2kit"] = __version__
    return sw


def make_item(
    product_path: str | os.PathLike[str], provenance: Mapping[str, Any] | None = None
) -> pystac.Item:
    """The STAC Item of one L2A product (and its s2kit provenance, when there is one)."""
    import pystac
    from pystac.extensions.eo import Band, EOExtension
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import DataType, RasterBand, RasterExtension

    from .compare import band_scaling

    product = open_product(product_path)
    md = product.metadata
    if md.kind != "L2A":
        raise InputError(f"expected a Level-2A product, found {md.kind}", product.path)
    if product.path.is_file():
        raise InputError("expected an unzipped .SAFE folder, found a zip", product.path)
    if not md.mgrs_tile:
        raise InputError("expected an MGRS tile in the product metadata, found none", product.path)
    geom, bbox, epsg, utm = _geometry(md.mgrs_tile)
    extra = _mtd_values(product)
    item_id = product.name[:-5] if product.name.upper().endswith(".SAFE") else product.name
    item = pystac.Item(
        id=item_id,
        geometry=geom,
        bbox=bbox,
        datetime=md.sensing_start,
        properties={},
    )
    p = item.properties
    if md.spacecraft:
        p["platform"] = md.spacecraft.lower()
    p["constellation"] = "sentinel-2"
    p["instruments"] = ["msi"]
    p["gsd"] = min((int(m[1]) for m in map(_IMG_RE.match, product.files) if m), default=60)
    eo = EOExtension.ext(item, add_if_missing=True)
    cloud = _float(extra.get("Cloud_Coverage_Assessment"))
    if cloud is not None:
        eo.cloud_cover = cloud
    snow = _float(extra.get("SNOW_ICE_PERCENTAGE"))
    if snow is not None:
        eo.snow_cover = snow
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = f"EPSG:{epsg}"
    proj.bbox = list(utm)
    RasterExtension.add_to(item)

    tile = product.tiles[0] if product.tiles else None
    p["s2:product_uri"] = product.name
    p["s2:product_type"] = md.product_type
    p["s2:processing_baseline"] = md.processing_baseline
    p["s2:mgrs_tile"] = md.mgrs_tile
    if md.generation_time is not None:
        p["s2:generation_time"] = iso_utc(md.generation_time)
    if tile is not None:
        p["s2:tile_id"] = tile.tile_id
    if extra.get("datatake"):
        p["s2:datatake_id"] = extra["datatake"]
    item.stac_extensions.append(S2)

    sw = _software(product, provenance)
    p["processing:level"] = "L2A"
    if sw:
        p["processing:software"] = sw
    if md.generation_time is not None:
        p["processing:datetime"] = iso_utc(md.generation_time)
    l1c = provenance.get("l1c") if provenance else None
    if isinstance(l1c, dict) and l1c.get("scene"):
        p["processing:lineage"] = (
            f"Sen2Cor {sw.get('Sen2Cor', '?')} run by s2kit {sw.get('s2kit', '?')} on "
            f"{l1c['scene']} (L1C processing baseline {l1c.get('processing_baseline') or '?'})"
        )
        if provenance and provenance.get("host"):
            p["processing:facility"] = str(provenance["host"])
    elif not md.local_sen2cor:
        p["processing:lineage"] = "ESA processing (no s2kit provenance)"
    item.stac_extensions.append(PROCESSING)

    xmin, _ymin, _xmax, ymax = utm
    for rel in sorted(product.files):
        m = _IMG_RE.match(rel)
        qi = _QI_RE.match(rel)
        href = str((product.path / rel).absolute())
        if m:
            res, band = int(m[1]), m[2].upper()
            key = f"{band}_{res}m"
            roles = ["data"]
            if band in S2_BANDS:
                roles.append("reflectance")
            elif band == "TCI":
                roles = ["visual"]
            asset = pystac.Asset(
                href=href, media_type=pystac.MediaType.JPEG2000, roles=roles, title=f"{band} {res} m"
            )
            n = _RES_SHAPE[res]
            ProjectionExtension.ext(asset).shape = [n, n]
            ProjectionExtension.ext(asset).transform = [float(res), 0.0, xmin, 0.0, -float(res), ymax]
            if band in S2_BANDS:
                common, centre, fwhm = S2_BANDS[band]
                EOExtension.ext(asset).bands = [
                    Band.create(
                        name=band, common_name=common, center_wavelength=centre, full_width_half_max=fwhm
                    )
                ]
                offset, quant = band_scaling(product, band)
                RasterExtension.ext(asset).bands = [
                    RasterBand.create(
                        nodata=0,
                        data_type=DataType.UINT16,
                        spatial_resolution=float(res),
                        scale=1.0 / quant,
                        offset=offset / quant,
                    )
                ]
            elif band == "SCL":
                RasterExtension.ext(asset).bands = [
                    RasterBand.create(nodata=0, data_type=DataType.UINT8, spatial_resolution=float(res))
                ]
            item.add_asset(key, asset)
        elif qi:
            item.add_asset(
                qi[1],
                pystac.Asset(
                    href=href,
                    media_type=pystac.MediaType.JPEG2000,
                    roles=["cloud" if "CLD" in qi[1].upper() else "snow-ice"],
                ),
            )
    item.add_asset(
        "product_metadata",
        pystac.Asset(
            href=str((product.path / product.metadata_path).absolute()),
            media_type=pystac.MediaType.XML,
            roles=["metadata"],
            title="MTD_MSIL2A.xml",
        ),
    )
    if provenance is not None:
        sidecar = product.path.with_name(product.path.name + PROVENANCE_SUFFIX)
        if sidecar.is_file():
            item.add_asset(
                "s2kit_provenance",
                pystac.Asset(
                    href=str(sidecar.absolute()),
                    media_type=pystac.MediaType.JSON,
                    roles=["metadata"],
                    title="s2kit provenance (s2kit-provenance/1)",
                ),
            )
    item.stac_extensions = list(dict.fromkeys(item.stac_extensions))
    return item


# --------------------------------------------------------------------------- collection + writing
@dataclass
class StacResult:
    out: Path
    collection: Path
    items: list[Path] = field(default_factory=list)
    validation: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "collection": str(self.collection),
            "items": [str(p) for p in self.items],
            "validated_with": self.validation,
            "skipped": self.skipped,
        }

    def lines(self) -> list[str]:
        out = [
            f"stac: {len(self.items)} item(s) and 1 collection written to {display_path(self.out)}",
            f"  collection: {display_path(self.collection)}",
            "validated offline against:",
        ]
        out += [f"  {uri}: {how}" for uri, how in self.validation.items()]
        out += [f"skipped: {s}" for s in self.skipped]
        return out


def _products(source: Path) -> tuple[str, list[tuple[Path, dict[str, Any] | None]], list[str]]:
    """(collection id, [(product, provenance)], skipped notes) of a run dir or one L2A product."""
    if (source / "plan.jsonl").is_file():
        rd = RunDir(source)
        out: list[tuple[Path, dict[str, Any] | None]] = []
        skipped: list[str] = []
        for scene, st in sorted(rd.read_states().items()):
            if st.state != "done":
                continue
            if not st.l2a or not Path(st.l2a).is_dir():
                skipped.append(f"{scene}: done, but its L2A {st.l2a or '?'} is gone")
                continue
            prov = read_json_object(rd.provenance_file(scene)) or read_json_object(
                Path(st.l2a).with_name(Path(st.l2a).name + PROVENANCE_SUFFIX)
            )
            out.append((Path(st.l2a), prov))
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", source.absolute().name).strip("-") or "run"
        return f"s2kit-{name}", out, skipped
    if source.is_dir() and source.name.upper().endswith(".SAFE"):
        prov = read_json_object(source.with_name(source.name + PROVENANCE_SUFFIX))
        return f"s2kit-{source.name[:-5]}", [(source, prov)], []
    raise InputError(
        "expected a run directory (with plan.jsonl) or an L2A .SAFE folder, found neither", source
    )


def stac_for(
    source: str | os.PathLike[str], out: str | os.PathLike[str], schemas_dir: Path | None = None
) -> StacResult:
    """Write a Collection and its Items for a run dir's L2A products (or one product) into *out*."""
    import pystac

    src = Path(source)
    if not src.exists():
        raise InputError("expected a run directory or an L2A product, found nothing there", src)
    schemas_dir = schemas_dir if schemas_dir is not None else schemas_dir_default()
    if schemas_dir is not None and not schemas_dir.is_dir():
        raise InputError("expected a folder of local STAC schema copies, found none", schemas_dir)
    coll_id, products, skipped = _products(src)
    if not products:
        raise InputError("expected at least one produced L2A product (state done), found none", src)
    items = [make_item(p, prov) for p, prov in products]
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise InputError("expected one product per L2A name, found the same product name twice", src)
    times = [i.datetime for i in items if i.datetime is not None]
    west = min(i.bbox[0] for i in items if i.bbox)
    east = max(i.bbox[2] for i in items if i.bbox)
    south = min(i.bbox[1] for i in items if i.bbox)
    north = max(i.bbox[3] for i in items if i.bbox)
    collection = pystac.Collection(
        id=coll_id,
        description=(
            f"Sentinel-2 L2A made with ESA Sen2Cor by s2kit from {display_path(src.absolute())} "
            f"({len(items)} product(s))."
        ),
        extent=pystac.Extent(
            pystac.SpatialExtent([[west, south, east, north]]),
            pystac.TemporalExtent([[min(times), max(times)]]),
        ),
        license="other",
        title=f"s2kit L2A: {src.absolute().name}",
        providers=[
            pystac.Provider("ESA", roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.LICENSOR]),
            pystac.Provider("s2kit (Sen2Cor run locally)", roles=[pystac.ProviderRole.PROCESSOR]),
        ],
        stac_extensions=[PROCESSING],
    )
    collection.add_link(
        pystac.Link("license", LICENSE_URL, media_type="text/html", title="Sentinel data legal notice")
    )
    collection.summaries.add(
        "platform", sorted({str(i.properties.get("platform")) for i in items if i.properties.get("platform")})
    )
    collection.summaries.add("constellation", ["sentinel-2"])
    collection.summaries.add("instruments", ["msi"])
    softwares = {json.dumps(i.properties.get("processing:software", {}), sort_keys=True) for i in items}
    collection.summaries.add("processing:software", [json.loads(s) for s in sorted(softwares) if s != "{}"])
    collection.summaries.add(
        "s2:processing_baseline", sorted({str(i.properties["s2:processing_baseline"]) for i in items})
    )
    for item in items:
        collection.add_item(item)
    out_dir = Path(out).absolute()
    collection.normalize_hrefs(str(out_dir))
    collection.catalog_type = pystac.CatalogType.SELF_CONTAINED
    validation = validate_stac([collection, *items], schemas_dir)
    written: list[Path] = []
    for item in items:
        href = item.get_self_href()
        assert href is not None
        atomic_write_text(
            href, json.dumps(item.to_dict(include_self_link=False, transform_hrefs=True), indent=1) + "\n"
        )
        written.append(Path(href))
    coll_href = collection.get_self_href()
    assert coll_href is not None
    atomic_write_text(
        coll_href,
        json.dumps(collection.to_dict(include_self_link=False, transform_hrefs=True), indent=1) + "\n",
    )
    return StacResult(
        out=out_dir, collection=Path(coll_href), items=written, validation=validation, skipped=skipped
    )
