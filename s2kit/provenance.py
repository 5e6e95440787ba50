"""The provenance record: what made a published L2A product (schema ``s2kit-provenance/1``).

This module is the one owner of the format: the worker builds a :class:`Provenance` and
writes it here (into ``RUN_DIR/provenance/<scene>.json`` and as the sidecar
``<l2a_dir>/<name>.SAFE.provenance.json``); the planner, the worker's takeover, ``s2kit
report`` and ``s2kit stac`` read it here. The JSON document itself is unchanged: a
:class:`Provenance` wraps it (and is a read-only mapping of it, so code that took the raw
dict keeps working) and adds the accessors its readers need.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fsutil import atomic_write_text, read_json_object

__all__ = [
    "PROVENANCE_SUFFIX",
    "SCHEMA",
    "Provenance",
    "published_product",
    "published_provenance",
    "sidecar_path",
]

SCHEMA = "s2kit-provenance/1"
#: ``<name>.SAFE`` + this = the sidecar beside a published product.
PROVENANCE_SUFFIX = ".provenance.json"


def sidecar_path(product: str | os.PathLike[str]) -> Path:
    """``<l2a_dir>/<name>.SAFE.provenance.json``: the provenance beside a published product."""
    p = Path(product)
    return p.with_name(p.name + PROVENANCE_SUFFIX)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, eq=False)
class Provenance(Mapping[str, Any]):
    """One provenance document (a mapping of its JSON object) with typed accessors."""

    doc: dict[str, Any]

    # ----------------------------------------------------------------- mapping
    def __getitem__(self, key: str) -> Any:
        return self.doc[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.doc)

    def __len__(self) -> int:
        return len(self.doc)

    # ----------------------------------------------------------------- read / write
    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Provenance:
        """*doc* as a Provenance (itself when it already is one)."""
        return doc if isinstance(doc, Provenance) else cls(dict(doc))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Provenance | None:
        """The provenance in *path*, or None when it is missing, unreadable or not a JSON object."""
        doc = read_json_object(path)
        return None if doc is None else cls(doc)

    @classmethod
    def read_sidecar(cls, product: str | os.PathLike[str]) -> Provenance | None:
        """The sidecar provenance beside the published *product* (None: none readable)."""
        return cls.read(sidecar_path(product))

    def to_json(self) -> str:
        return json.dumps(self.doc, indent=1, ensure_ascii=False, sort_keys=True) + "\n"

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically to *path* (readers see the old file or the whole new one)."""
        return atomic_write_text(path, self.to_json())

    # ----------------------------------------------------------------- validity
    def is_valid_for(self, scene: str | None = None) -> bool:
        """Written by a worker after validation, for *scene* (any scene when None)."""
        l1c = self.doc.get("l1c")
        if not isinstance(l1c, dict) or self.doc.get("validated") is not True:
            return False
        return bool(l1c.get("scene")) if scene is None else l1c.get("scene") == scene

    # ----------------------------------------------------------------- accessors
    @property
    def scene(self) -> str | None:
        """The L1C scene the product was made from (``l1c.scene``)."""
        value = _dict(self.doc.get("l1c")).get("scene")
        return str(value) if value else None

    @property
    def l1c(self) -> dict[str, Any]:
        return _dict(self.doc.get("l1c"))

    @property
    def sen2cor(self) -> dict[str, Any]:
        return _dict(self.doc.get("sen2cor"))

    @property
    def gipp(self) -> dict[str, Any]:
        return _dict(self.doc.get("gipp"))

    @property
    def dem(self) -> dict[str, Any]:
        return _dict(self.doc.get("dem"))

    @property
    def dem_mode(self) -> str | None:
        """``dem.mode``: ``"srtm"``, ``"none"`` (flat terrain) or None (an older s2kit)."""
        mode = self.dem.get("mode")
        return None if mode is None else str(mode)

    @property
    def settings_sha256(self) -> str | None:
        """``gipp.settings_sha256`` (None in provenance of an older s2kit)."""
        digest = self.gipp.get("settings_sha256")
        return digest if isinstance(digest, str) else None

    @property
    def settings(self) -> dict[str, Any] | None:
        """``gipp.settings``: the normalised science settings the digest is made of."""
        values = self.gipp.get("settings")
        return values if isinstance(values, dict) else None

    @property
    def sen2cor_seconds(self) -> float | None:
        """Sen2Cor's own run time (``sen2cor.seconds``)."""
        value = self.sen2cor.get("seconds")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def resources(self) -> dict[str, Any] | None:
        """``resources`` (s2kit.accounting: wall_s, cpu_s, peak_rss_mb, ...); None in old
        provenance."""
        value = self.doc.get("resources")
        return value if isinstance(value, dict) else None

    @property
    def container(self) -> dict[str, Any] | None:
        """The container record (None: native runtime)."""
        value = self.doc.get("container")
        return value if isinstance(value, dict) else None

    @property
    def s2kit_version(self) -> str | None:
        value = self.doc.get("s2kit_version")
        return str(value) if value else None

    @property
    def host(self) -> str | None:
        value = self.doc.get("host")
        return str(value) if value else None


def published_provenance(l2a_dir: Path) -> dict[str, Path]:
    """scene -> published L2A product, from the ``*.SAFE.provenance.json`` files of *l2a_dir*."""
    out: dict[str, Path] = {}
    if not l2a_dir.is_dir():
        return out
    with os.scandir(l2a_dir) as it:
        for e in it:
            if not e.name.endswith(PROVENANCE_SUFFIX):
                continue
            product = l2a_dir / e.name[: -len(PROVENANCE_SUFFIX)]
            prov = Provenance.read(e.path)
            if prov is not None and prov.is_valid_for() and product.is_dir():
                assert prov.scene is not None
                out[prov.scene] = product
    return out


def _datatake_key(name: str) -> tuple[Any, ...] | None:
    """(spacecraft, sensing start, relative orbit, tile) of a product name; None: not a name."""
    from .errors import InputError
    from .safe import parse_product_name

    try:
        n = parse_product_name(name)
    except (InputError, ValueError):
        return None
    return (n.spacecraft, n.sensing_start, n.relative_orbit, n.mgrs_tile)


def published_product(l2a_dir: Path, scene: str) -> Path | None:
    """The L2A of *scene* already published in *l2a_dir*, or None.

    Published = a product folder with a sidecar provenance valid for *scene*
    (:meth:`Provenance.is_valid_for`). Only the sidecars of the scene's datatake and tile
    are read (an L2A name keeps the L1C's spacecraft, sensing time, orbit and tile).
    """
    if not l2a_dir.is_dir():
        return None
    key = _datatake_key(scene)
    found: list[Path] = []
    with os.scandir(l2a_dir) as it:
        for e in it:
            if not e.name.endswith(PROVENANCE_SUFFIX) or e.name.startswith("."):
                continue
            name = e.name[: -len(PROVENANCE_SUFFIX)]
            if key is not None and _datatake_key(name) != key:
                continue
            product = l2a_dir / name
            prov = Provenance.read(e.path)
            if prov is not None and prov.is_valid_for(scene) and product.is_dir():
                found.append(product)
    return min(found, key=lambda p: p.name) if found else None
