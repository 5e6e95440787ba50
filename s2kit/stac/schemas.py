"""Offline validation of STAC objects against the OFFICIAL JSON schemas.

* STAC 1.1.0 core (Item, Collection, their common/basics/... parts) and GeoJSON: the copies
  the pystac wheel ships in ``pystac/validation/jsonschemas``;
* every extension s2kit declares: the official ``json-schema/schema.json`` of the
  ``stac-extensions/<name>`` repository at its release tag, shipped as package data in
  ``s2kit/schemas/stac/<name>/<tag>/schema.json`` (sources and sha256 in ``SOURCES.md`` there);
* PROJJSON (referenced by the projection schema): the copy pyproj ships.

``jsonschema`` resolves every ``$ref`` through a ``referencing`` registry that holds only these
local files; its ``retrieve`` hook refuses any other URI, so validation never touches the
network. A ``schemas_dir`` (``--schemas DIR`` / ``$S2KIT_STAC_SCHEMAS``) may hold further local
copies laid out like their URLs (``DIR/stac-extensions.github.io/eo/v1.1.0/schema.json``); a copy
there is used instead of the shipped one for that URI.

On top of the schemas, s2kit checks what JSON schema cannot say or this machine cannot check
(no ``rfc3339-validator`` for ``format: date-time``): every datetime s2kit writes is RFC 3339
in UTC, and an Item's bbox crosses the antimeridian only when its geometry does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, S2kitError, display_path

if TYPE_CHECKING:
    import pystac

__all__ = [
    "EXTENSION_SCHEMAS",
    "SCHEMAS_ENV",
    "SHIPPED",
    "StacValidationFailed",
    "schemas_dir_default",
    "shipped_schema_path",
    "validate_documents",
    "validate_stac",
]

SCHEMAS_ENV = "S2KIT_STAC_SCHEMAS"
SCHEMA_ROOT = Path(__file__).resolve().parent.parent / "schemas" / "stac"
STAC_BASE = "https://schemas.stacspec.org/v1.1.0"
CORE_ITEM = f"{STAC_BASE}/item-spec/json-schema/item.json"
CORE_COLLECTION = f"{STAC_BASE}/collection-spec/json-schema/collection.json"
PYSTAC_WHEEL = "official schema shipped in the pystac wheel"


@dataclass(frozen=True)
class ShippedSchema:
    """One official extension schema s2kit ships: where it came from."""

    name: str  # stac-extensions/<name>
    tag: str  # release tag, e.g. v1.1.0

    @property
    def uri(self) -> str:
        return f"https://stac-extensions.github.io/{self.name}/{self.tag}/schema.json"

    @property
    def path(self) -> Path:
        return SCHEMA_ROOT / self.name / self.tag / "schema.json"


SHIPPED: tuple[ShippedSchema, ...] = tuple(
    ShippedSchema(n, t)
    for n, t in (
        ("eo", "v1.1.0"),
        ("projection", "v2.0.0"),
        ("raster", "v1.1.0"),
        ("sat", "v1.0.0"),
        ("view", "v1.0.0"),
        ("mgrs", "v1.0.0"),
        ("grid", "v1.1.0"),
        ("processing", "v1.2.0"),
        ("sentinel-2", "v1.0.0"),
        ("classification", "v2.0.0"),
        ("item-assets", "v1.0.0"),
    )
)
EXTENSION_SCHEMAS: Mapping[str, ShippedSchema] = {s.uri: s for s in SHIPPED}


class StacValidationFailed(S2kitError):
    """A generated STAC object does not validate; nothing was written."""


def schemas_dir_default() -> Path | None:
    text = os.environ.get(SCHEMAS_ENV, "").strip()
    return Path(text) if text else None


def shipped_schema_path(uri: str) -> Path | None:
    s = EXTENSION_SCHEMAS.get(uri.rstrip("#"))
    return s.path if s is not None else None


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the registry
_MAX_SCHEMA_BYTES = 4 * 1024 * 1024


def _load_json(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > _MAX_SCHEMA_BYTES:
            raise InputError(
                f"expected a JSON schema under {_MAX_SCHEMA_BYTES} bytes, found a bigger file", path
            )
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"expected a JSON schema, found: {exc}", path) from None
    if not isinstance(doc, dict):
        raise InputError("expected a JSON schema object, found another JSON value", path)
    return doc


def _pystac_schema_files() -> dict[str, Path]:
    """URI -> file of the core STAC 1.1.0 and GeoJSON schemas in the pystac wheel."""
    import pystac.validation.jsonschemas as js

    base = Path(js.__file__).resolve().parent
    out: dict[str, Path] = {}
    for f in sorted((base / "stac-spec" / "v1.1.0").glob("*.json")):
        spec = "item-spec" if f.stem not in ("collection", "catalog") else f"{f.stem}-spec"
        out[f"{STAC_BASE}/{spec}/json-schema/{f.name}"] = f
    for f in sorted((base / "geojson").glob("*.json")):
        out[f"https://geojson.org/schema/{f.name}"] = f
    return out


def _projjson_file() -> dict[str, Path]:
    try:
        import pyproj.datadir

        f = Path(pyproj.datadir.get_data_dir()) / "projjson.schema.json"
    except Exception:  # pragma: no cover - pyproj is a dependency  # noqa: BLE001
        return {}
    if not f.is_file():  # pragma: no cover
        return {}
    m = re.search(r'"\$id"\s*:\s*"([^"#]+)', f.read_text(encoding="utf-8")[:2000])
    return {m[1]: f} if m else {}


def _norm(uri: str) -> str:
    return uri.rstrip("#")


@dataclass
class _Sources:
    files: dict[str, Path]
    how: dict[str, str]


def _sources(schemas_dir: Path | None) -> _Sources:
    files: dict[str, Path] = {}
    how: dict[str, str] = {}
    for uri, f in _pystac_schema_files().items():
        files[uri], how[uri] = f, PYSTAC_WHEEL
    for uri, f in _projjson_file().items():
        files[uri], how[uri] = f, "official schema shipped in the pyproj wheel"
    for s in SHIPPED:
        files[s.uri] = s.path
        how[s.uri] = f"official schema shipped with s2kit (stac-extensions/{s.name} {s.tag})"
    return _Sources(files, how)


def _local_copy(schemas_dir: Path | None, uri: str) -> Path | None:
    m = re.match(r"^https?://(.+)\Z", uri)
    if schemas_dir is None or not m:
        return None
    local = schemas_dir / m[1]
    return local if local.is_file() else None


class _Offline:
    """A ``referencing`` registry of local schema files; any other URI is refused."""

    def __init__(self, schemas_dir: Path | None):
        self.schemas_dir = schemas_dir
        self.src = _sources(schemas_dir)
        self.used: dict[str, str] = {}
        self._docs: dict[str, dict[str, Any]] = {}
        self._registry: Any = None
        self._validators: dict[str, Any] = {}

    def document(self, uri: str) -> dict[str, Any]:
        uri = _norm(uri)
        if uri in self._docs:
            return self._docs[uri]
        local = _local_copy(self.schemas_dir, uri)
        if local is not None:
            doc = _load_json(local)
            self.used[uri] = f"official schema, local copy {display_path(local)}"
        elif uri in self.src.files:
            doc = _cached_json(str(self.src.files[uri]))
            self.used[uri] = self.src.how[uri]
        else:
            m = re.match(r"^https?://(.+)\Z", uri)
            raise InputError(
                f"schema {uri} is not available offline (no network is used); put a copy "
                f"under --schemas DIR / ${SCHEMAS_ENV} as DIR/{m[1] if m else uri}"
            )
        self._docs[uri] = doc
        return doc

    def registry(self) -> Any:
        """Every local schema registered up front (parsed once); anything else goes to retrieve."""
        if self._registry is not None:
            return self._registry
        from jsonschema_specifications import REGISTRY as METASCHEMAS  # type: ignore[import-untyped]
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7

        def retrieve(uri: str) -> Resource[Any]:
            return Resource.from_contents(self.document(uri), default_specification=DRAFT7)

        registry: Any = Registry(retrieve=retrieve)  # type: ignore[call-arg]
        local = [
            (u, Resource.from_contents(self.document(u), default_specification=DRAFT7))
            for u in self.src.files
        ]
        self._registry = registry.with_resources([*((u, METASCHEMAS[u]) for u in METASCHEMAS), *local])
        return self._registry

    def validator(self, uri: str) -> Any:
        import jsonschema  # type: ignore[import-untyped]

        uri = _norm(uri)
        if uri not in self._validators:
            schema = self.document(uri)
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            self._validators[uri] = cls(schema, registry=self.registry())
        return self._validators[uri]


@lru_cache(maxsize=64)
def _cached_json(path: str) -> dict[str, Any]:
    return _load_json(Path(path))


# --------------------------------------------------------------------------- validation
def _where(error: Any) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    return f"at /{path}" if path else "at the top level"


def _best(errors: Iterable[Any]) -> Any:
    """The most telling error: the deepest leaf in the document (into oneOf/anyOf branches)."""
    leaves: list[Any] = []
    stack = list(errors)
    while stack:
        e = stack.pop()
        if e.context:
            stack.extend(e.context)
        else:
            leaves.append(e)
    if not leaves:
        return None
    return max(leaves, key=lambda e: (len(e.absolute_path), -len(e.schema_path)))


def _utc_datetime(text: object) -> bool:
    if not isinstance(text, str) or not re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$", text
    ):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_DATETIME_KEYS = ("datetime", "start_datetime", "end_datetime", "created", "updated")


def _extra_checks(doc: Mapping[str, Any]) -> list[str]:
    """What the schemas cannot check here: UTC RFC 3339 datetimes; antimeridian bbox consistency."""
    problems: list[str] = []
    props = doc.get("properties") if doc.get("type") == "Feature" else None
    if isinstance(props, Mapping):
        for key, value in props.items():
            is_time = key in _DATETIME_KEYS or key.endswith(("_time", ":datetime"))
            if is_time and value is not None and not _utc_datetime(value):
                problems.append(f"properties/{key}: expected an RFC 3339 UTC datetime, found {value!r}")
        zone, band, square = (
            props.get("mgrs:utm_zone"),
            props.get("mgrs:latitude_band"),
            props.get("mgrs:grid_square"),
        )
        if zone is not None and not (isinstance(zone, int) and 1 <= zone <= 60):
            problems.append(f"properties/mgrs:utm_zone: expected a UTM zone 1..60, found {zone!r}")
        if band is not None and not (isinstance(band, str) and re.fullmatch(r"[C-HJ-NP-X]", band)):
            problems.append(
                f"properties/mgrs:latitude_band: expected one letter C..X (not I, O), found {band!r}"
            )
        grid = props.get("grid:code")
        if isinstance(zone, int) and isinstance(band, str) and isinstance(square, str) and grid is not None:
            want = f"MGRS-{zone:02d}{band}{square}"
            if grid != want:
                problems.append(f"properties/grid:code: expected {want} (the mgrs fields), found {grid!r}")
        bbox = doc.get("bbox")
        geom = doc.get("geometry")
        if isinstance(bbox, list) and len(bbox) == 4 and isinstance(geom, Mapping):
            crosses = bbox[0] > bbox[2]
            if crosses and geom.get("type") != "MultiPolygon":
                problems.append(
                    "bbox: expected west <= east for a geometry that does not cross the antimeridian, "
                    f"found west {bbox[0]} > east {bbox[2]}"
                )
    interval = (
        (doc.get("extent") or {}).get("temporal", {}).get("interval")
        if doc.get("type") == "Collection"
        else None
    )
    for pair in interval or []:
        for value in pair:
            if value is not None and not _utc_datetime(value):
                problems.append(f"extent/temporal: expected an RFC 3339 UTC datetime, found {value!r}")
    return problems


def _iter_errors(off: _Offline, uri: str, doc: Mapping[str, Any]) -> list[Any]:
    """All errors of *doc* against *uri*; a $ref to a schema that is not local is an InputError."""
    from referencing.exceptions import Unresolvable, Unretrievable

    try:
        return list(off.validator(uri).iter_errors(doc))
    except (Unretrievable, Unresolvable) as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, InputError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from None
        raise InputError(f"schema {uri}: expected every $ref to resolve offline, found: {exc}") from None


def validate_documents(docs: Iterable[Mapping[str, Any]], schemas_dir: Path | None = None) -> dict[str, str]:
    """Validate STAC JSON documents offline; return {schema URI: what checked it}. Raises on failure."""
    off = _Offline(schemas_dir)
    top: dict[str, str] = {}
    for doc in docs:
        kind = doc.get("type")
        core = CORE_ITEM if kind == "Feature" else CORE_COLLECTION if kind == "Collection" else None
        label = f"{'Item' if kind == 'Feature' else kind} {doc.get('id')}"
        if core is None:
            raise StacValidationFailed(f"{label}: expected an Item or a Collection, found type {kind!r}")
        uris = [core, *[str(u) for u in doc.get("stac_extensions") or []]]
        for uri in uris:
            error = _best(_iter_errors(off, uri, doc))
            top[_norm(uri)] = off.used.get(_norm(uri), "?")
            if error is not None:
                raise StacValidationFailed(
                    f"{label} does not validate against {uri} [{off.used.get(_norm(uri), '?')}]: "
                    f"{error.message[:300]} ({_where(error)})"
                )
        problems = _extra_checks(doc)
        if problems:
            raise StacValidationFailed(f"{label} does not pass s2kit's checks: {problems[0]}")
    return top


def validate_stac(objects: list[pystac.STACObject], schemas_dir: Path | None = None) -> dict[str, str]:
    """Validate pystac objects offline (as they would be written); return {schema URI: what checked it}."""
    docs = [o.to_dict(include_self_link=False, transform_hrefs=False) for o in objects]
    return validate_documents(docs, schemas_dir)
