"""The Collection of a run (or of one product) and writing it with its Items (:func:`stac_for`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import InputError, display_path
from ..fsutil import atomic_write_text
from ..provenance import Provenance, sidecar_path
from ..runs import RunDir
from .geometry import lon_extent
from .item import (
    CLASSIFICATION,
    EO,
    ESA_URL,
    ITEM_ASSETS,
    LICENSE_URL,
    PROCESSING,
    RASTER,
    S2_BAND_TABLE,
    make_item,
)
from .schemas import schemas_dir_default, validate_documents

if TYPE_CHECKING:
    import pystac

REPORT_NAME = "report.html"


@dataclass
class StacResult:
    out: Path
    collection: Path
    items: list[Path] = field(default_factory=list)
    validation: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: one line per run-dir product without readable provenance, then a summary (for stderr)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "collection": str(self.collection),
            "items": [str(p) for p in self.items],
            "validated_with": self.validation,
            "skipped": self.skipped,
            "notes": self.notes,
            "warnings": self.warnings,
        }

    def lines(self) -> list[str]:
        out = [
            f"stac: {len(self.items)} item(s) and 1 collection written to {display_path(self.out)}",
            f"  collection: {display_path(self.collection)}",
            "validated offline against:",
        ]
        out += [f"  {uri}: {how}" for uri, how in self.validation.items()]
        out += [f"skipped: {s}" for s in self.skipped]
        out += [f"note: {s}" for s in self.notes]
        return out


@dataclass
class _Source:
    """What a run dir (or one L2A) holds: the products, what was skipped, what is missing."""

    coll_id: str
    products: list[tuple[Path, Provenance | None]]
    skipped: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    #: products the run dir says s2kit made (state done) whose provenance is missing or unreadable
    no_provenance: set[Path] = field(default_factory=set)
    dem_mode: str | None = None  # sen2cor.dem of the run dir's config.json snapshot
    warnings: list[str] = field(default_factory=list)


def _products(source: Path) -> _Source:
    """The products of a run dir (state done) or of one L2A, with their provenance."""
    from ..report import snapshot_dem_mode

    if (source / "plan.jsonl").is_file():
        rd = RunDir(source)
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", source.absolute().name).strip("-") or "run"
        src = _Source(f"s2kit-{name}", [], run_dir=source)
        for scene, st in sorted(rd.read_states().items()):
            if st.state != "done":
                continue
            if not st.l2a or not Path(st.l2a).is_dir():
                src.skipped.append(f"{scene}: done, but its L2A {st.l2a or '?'} is gone")
                continue
            prov = Provenance.read(rd.provenance_file(scene)) or Provenance.read_sidecar(st.l2a)
            if prov is None:
                src.no_provenance.add(Path(st.l2a))
                src.warnings.append(
                    f"{scene}: done in the run dir, but no readable s2kit provenance "
                    f"({display_path(rd.provenance_file(scene))}, {display_path(sidecar_path(st.l2a))}): "
                    'its Item says s2kit:provenance "missing"'
                )
            src.products.append((Path(st.l2a), prov))
        if src.no_provenance:
            src.dem_mode = snapshot_dem_mode(rd)
            dem = f'sen2cor.dem = "{src.dem_mode}"' if src.dem_mode else "unknown: no readable sen2cor.dem"
            src.warnings.append(
                f"{len(src.no_provenance)} of {len(src.products)} product(s) without readable s2kit "
                f'provenance: marked s2kit:provenance "missing"; DEM from {display_path(rd.config_file)}: '
                f"{dem}"
            )
        return src
    if source.is_dir() and source.name.upper().endswith(".SAFE"):
        prov = Provenance.read_sidecar(source)
        return _Source(f"s2kit-{source.name[:-5]}", [(source, prov)])
    raise InputError(
        "expected a run directory (with plan.jsonl) or an L2A .SAFE folder, found neither", source
    )


def _common(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields whose value is the same in every dict (compared as JSON)."""
    first = dicts[0]
    return {
        k: v
        for k, v in first.items()
        if all(
            k in d and json.dumps(d[k], sort_keys=True) == json.dumps(v, sort_keys=True) for d in dicts[1:]
        )
    }


_PER_ITEM = {"href", "proj:transform", "proj:bbox", "proj:shape"}


def item_assets(items: list[pystac.Item]) -> dict[str, dict[str, Any]]:
    """item_assets: per asset key, what every Item's asset of that key has in common (no hrefs)."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        for key, asset in item.assets.items():
            d = {k: v for k, v in asset.to_dict().items() if k not in _PER_ITEM}
            by_key.setdefault(key, []).append(d)
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(by_key):
        common = _common(by_key[key])
        if "raster:bands" not in common and all("raster:bands" in d for d in by_key[key]):
            # scale/offset differ across processing baselines: keep what all bands share
            bands = [d["raster:bands"] for d in by_key[key]]
            if len({len(b) for b in bands}) == 1:
                common["raster:bands"] = [_common([b[i] for b in bands]) for i in range(len(bands[0]))]
        if common.get("title") or common.get("type"):
            out[key] = common
    return out


def make_collection(
    coll_id: str, items: list[pystac.Item], source: Path, run_dir: Path | None
) -> tuple[pystac.Collection, list[str]]:
    import pystac

    notes: list[str] = []
    times = [i.datetime for i in items if i.datetime is not None]
    bboxes = [i.bbox for i in items if i.bbox]
    west, east = lon_extent([(b[0], b[2]) for b in bboxes])  # across the antimeridian when shorter
    south, north = min(b[1] for b in bboxes), max(b[3] for b in bboxes)
    softwares = sorted(
        {json.dumps(i.properties.get("processing:software", {}), sort_keys=True) for i in items} - {"{}"}
    )
    made_here = any("s2kit" in json.loads(s) for s in softwares) or any(
        i.properties.get("s2kit:provenance") == "missing" for i in items
    )
    providers = [
        pystac.Provider(
            "ESA", roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.LICENSOR], url=ESA_URL
        )
    ]
    if made_here:
        sen2cor = sorted({json.loads(s).get("Sen2Cor", "?") for s in softwares})
        providers.append(
            pystac.Provider(
                "s2kit (Sen2Cor run locally)",
                roles=[pystac.ProviderRole.PROCESSOR],
                description=f"Level-2A made with ESA Sen2Cor {', '.join(sen2cor)} by s2kit {__version__}",
                extra_fields={"processing:software": {"s2kit": __version__}, "processing:level": "L2A"},
            )
        )
    else:
        providers[0].roles = [
            pystac.ProviderRole.PRODUCER,
            pystac.ProviderRole.PROCESSOR,
            pystac.ProviderRole.LICENSOR,
        ]
        providers[0].extra_fields = {"processing:level": "L2A"}
    collection = pystac.Collection(
        id=coll_id,
        description=(
            f"Sentinel-2 L2A made with ESA Sen2Cor by s2kit from {display_path(source.absolute())} "
            f"({len(items)} product(s))."
        ),
        extent=pystac.Extent(
            pystac.SpatialExtent([[west, south, east, north]]),
            pystac.TemporalExtent([[min(times), max(times)]]),
        ),
        license="other",
        title=f"s2kit L2A: {source.absolute().name}",
        providers=providers,
        stac_extensions=[EO, RASTER, PROCESSING, CLASSIFICATION, ITEM_ASSETS],
    )
    collection.add_link(
        pystac.Link("license", LICENSE_URL, media_type="text/html", title="Sentinel data legal notice")
    )
    if run_dir is not None:
        report = run_dir / REPORT_NAME
        if report.is_file():
            collection.add_link(
                pystac.Link(
                    "related", str(report.absolute()), media_type="text/html", title="s2kit run report"
                )
            )
        else:
            notes.append(f"no {REPORT_NAME} in the run directory yet (s2kit report RUN_DIR): not linked")
    summaries: dict[str, list[Any]] = {
        "platform": sorted({str(i.properties["platform"]) for i in items if i.properties.get("platform")}),
        "constellation": ["sentinel-2"],
        "instruments": ["msi"],
        "s2:processing_baseline": sorted({str(i.properties["s2:processing_baseline"]) for i in items}),
        "processing:software": [json.loads(s) for s in softwares],
        "s2kit:sen2cor_version": sorted(
            {str(i.properties["processing:software"]["Sen2Cor"]) for i in items
             if "Sen2Cor" in i.properties.get("processing:software", {})}
        ),
        "s2kit:dem": sorted({str(i.properties["s2kit:dem"]) for i in items if i.properties.get("s2kit:dem")}),
        "s2kit:provenance": sorted(
            {str(i.properties["s2kit:provenance"]) for i in items if i.properties.get("s2kit:provenance")}
        ),
    }  # fmt: skip
    bands: dict[str, dict[str, Any]] = {}
    for item in items:
        for asset in item.assets.values():
            for b in asset.extra_fields.get("eo:bands", []):
                bands.setdefault(b["name"], b)
    order = list(S2_BAND_TABLE)
    summaries["eo:bands"] = [
        bands[k] for k in sorted(bands, key=lambda b: (order.index(b) if b in order else 99, b))
    ]
    for key, values in summaries.items():
        if values:
            collection.summaries.add(key, values)
    collection.extra_fields["item_assets"] = item_assets(items)
    return collection, notes


def _check_out(out: Path) -> Path:
    out_dir = Path(os.path.abspath(out))
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("expected --out to be a folder (or nothing yet), found a file", out_dir)
    return out_dir


def stac_for(
    source: str | os.PathLike[str], out: str | os.PathLike[str], schemas_dir: Path | None = None
) -> StacResult:
    """Write a Collection and its Items for a run dir's L2A products (or one product) into *out*.

    *out* is always the folder named, whatever its name ends in (``x.SAFE`` too):
    ``out/collection.json`` and ``out/<item id>/<item id>.json``. Everything is validated
    offline before anything is written.
    """
    import pystac

    src = Path(source)
    if not src.exists():
        raise InputError("expected a run directory or an L2A product, found nothing there", src)
    schemas_dir = schemas_dir if schemas_dir is not None else schemas_dir_default()
    if schemas_dir is not None and not schemas_dir.is_dir():
        raise InputError("expected a folder of local STAC schema copies, found none", schemas_dir)
    out_dir = _check_out(Path(out))
    found = _products(src)
    coll_id, products, skipped, run_dir = found.coll_id, found.products, found.skipped, found.run_dir
    if not products:
        raise InputError("expected at least one produced L2A product (state done), found none", src)
    items = [
        make_item(p, prov, provenance_missing=p in found.no_provenance, dem_mode=found.dem_mode)
        for p, prov in products
    ]
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise InputError("expected one product per L2A name, found the same product name twice", src)
    collection, notes = make_collection(coll_id, items, src, run_dir)
    # hrefs set explicitly (pystac's normalize_hrefs takes a folder named *.SAFE for a file)
    collection.set_self_href(str(out_dir / "collection.json"))
    collection.catalog_type = pystac.CatalogType.SELF_CONTAINED
    for item in items:
        collection.add_item(item)
        item.set_self_href(str(out_dir / item.id / f"{item.id}.json"))
    for link in collection.links:
        if link.rel == "related" and os.path.isabs(link.href):
            link.target = os.path.relpath(link.href, out_dir)
    docs = {
        Path(str(item.get_self_href())): item.to_dict(include_self_link=False, transform_hrefs=True)
        for item in items
    }
    coll_doc = collection.to_dict(include_self_link=False, transform_hrefs=True)
    validation = validate_documents([coll_doc, *docs.values()], schemas_dir)
    for path, doc in docs.items():
        atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    coll_path = out_dir / "collection.json"
    atomic_write_text(coll_path, json.dumps(coll_doc, indent=1) + "\n")
    return StacResult(
        out=out_dir,
        collection=coll_path,
        items=list(docs),
        validation=validation,
        skipped=skipped,
        notes=notes,
        warnings=found.warnings,
    )
