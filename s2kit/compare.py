"""``s2kit compare LOCAL_L2A OFFICIAL_L2A``: how far is our L2A from ESA's, band by band.

Both products are read as BOA reflectance the way each one's own metadata says::

    reflectance = (DN + BOA_ADD_OFFSET[band]) / BOA_QUANTIFICATION_VALUE

``BOA_ADD_OFFSET`` is -1000 from processing baseline 04.00 on and absent (0) before, so a
Sen2Cor 2.9 product (no offset) and an ESA PB 04.00+ product are put on one scale. DN 0 is
"no data" in L2A bands; a pixel that is no data in either product is left out.

Per band: statistics of ``local - official`` (count, mean, std, mean absolute, RMSE, min,
max, 5/50/95 percentiles, Pearson r) plus each product's mean reflectance. The percentiles
come from a histogram with bins of 1e-4 reflectance over [-1, 1] (exact for 1/10000
quantification), so any resolution is compared in row strips, never whole bands in memory.

SCL: agreement over the pixels that are classified (not 0) in both products, the 12 x 12
confusion matrix (rows local, columns official) and per class pixel counts and IoU.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, MetadataError, UsageError, display_path
from .safe import Product, iso_utc, open_product

__all__ = [
    "BAND_IDS",
    "COMPARE_SCHEMA",
    "SCL_CLASSES",
    "band_scaling",
    "compare_products",
    "format_comparison",
]

COMPARE_SCHEMA = "s2kit-compare/1"
# ESA's band_id order in MTD_MSIL2A.xml (Spectral_Information bandId -> physicalBand).
BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
SPECTRAL = frozenset(BAND_IDS)
SCL_CLASSES = (
    "NO_DATA",
    "SATURATED_OR_DEFECTIVE",
    "DARK_AREA_PIXELS",
    "CLOUD_SHADOWS",
    "VEGETATION",
    "NOT_VEGETATED",
    "WATER",
    "UNCLASSIFIED",
    "CLOUD_MEDIUM_PROBABILITY",
    "CLOUD_HIGH_PROBABILITY",
    "THIN_CIRRUS",
    "SNOW",
)
HIST_STEP = 1e-4
HIST_HALF = 10_000  # bins -1 .. +1
STRIP_ROWS = 1024
_IMG_RE = re.compile(r"^GRANULE/([^/]+)/IMG_DATA/R(10|20|60)m/[^/]*_([A-Z0-9]{3})_(?:10|20|60)m\.jp2\Z", re.I)


# --------------------------------------------------------------------------- metadata
def _band_of_id(band_id: str) -> str | None:
    text = band_id.strip().upper()
    if text.isdigit():
        i = int(text)
        return BAND_IDS[i] if 0 <= i < len(BAND_IDS) else None
    m = re.fullmatch(r"B0?(\d{1,2}A?)", text)
    if m:
        name = m[1]
        return f"B{name.zfill(3 if name.endswith('A') else 2)}"
    return None


def band_scaling(product: Product, band: str) -> tuple[float, float]:
    """(BOA_ADD_OFFSET, BOA_QUANTIFICATION_VALUE) of *band* from the product's own metadata."""
    md = product.metadata
    if md.kind != "L2A":
        raise InputError(f"expected a Level-2A product, found {md.kind}", product.path)
    if not md.boa_quantification_value:
        raise MetadataError(
            "expected BOA_QUANTIFICATION_VALUE in the product metadata, found none",
            product.path / product.metadata_path,
        )
    offset = 0.0
    if md.radiometric_offsets:
        by_band = {_band_of_id(k): v for k, v in md.radiometric_offsets}
        if band in SPECTRAL:
            if band not in by_band:
                raise MetadataError(
                    f"expected a BOA_ADD_OFFSET for {band} (the product lists offsets), found none",
                    product.path / product.metadata_path,
                )
            offset = float(by_band[band])
    return offset, float(md.boa_quantification_value)


def _band_files(product: Product) -> dict[tuple[int, str], str]:
    out: dict[tuple[int, str], str] = {}
    granules = set()
    for rel in product.files:
        m = _IMG_RE.match(rel)
        if m:
            granules.add(m[1])
            out[(int(m[2]), m[3].upper())] = rel
    if len(granules) > 1:
        raise InputError(f"expected one granule, found {len(granules)}", product.path)
    return out


def _describe(product: Product, bands: list[str]) -> dict[str, Any]:
    md = product.metadata
    return {
        "path": display_path(product.path),
        "product_uri": md.product_uri,
        "processing_baseline": md.processing_baseline,
        "sen2cor_version": md.sen2cor_version,
        "sensing_start": iso_utc(md.sensing_start),
        "mgrs_tile": md.mgrs_tile,
        "boa_quantification_value": md.boa_quantification_value,
        "boa_add_offset": {b: band_scaling(product, b)[0] for b in bands} if md.radiometric_offsets else None,
    }


# --------------------------------------------------------------------------- raster reading
@dataclass
class _Pair:
    local: Any
    official: Any
    rel: tuple[str, str]

    def strips(self) -> Iterator[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
        from rasterio.windows import Window  # type: ignore[import-untyped]

        height, width = self.local.height, self.local.width
        for row in range(0, height, STRIP_ROWS):
            win = Window(0, row, width, min(STRIP_ROWS, height - row))
            yield self.local.read(1, window=win), self.official.read(1, window=win)


def _open(path: Path, rel: str) -> Any:
    import rasterio  # type: ignore[import-untyped]
    from rasterio.errors import RasterioError  # type: ignore[import-untyped]

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return rasterio.open(path)
    except RasterioError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"expected a readable raster, found: {first}", path) from None


class _Opened:
    def __init__(self, local: Product, official: Product, rel_l: str, rel_o: str, what: str) -> None:
        self.pair = _Pair(_open(local.path / rel_l, rel_l), None, (rel_l, rel_o))
        try:
            self.pair.official = _open(official.path / rel_o, rel_o)
        except BaseException:
            self.pair.local.close()
            raise
        a, b = self.pair.local, self.pair.official
        if (a.height, a.width) != (b.height, b.width):
            self.close()
            raise InputError(
                f"{what}: expected the same grid in both products, found {a.width}x{a.height} (local) "
                f"and {b.width}x{b.height} (official)"
            )
        if a.crs is not None and b.crs is not None and a.crs != b.crs:
            self.close()
            raise InputError(f"{what}: expected the same CRS, found {a.crs} (local) and {b.crs} (official)")
        if not a.transform.almost_equals(b.transform):
            self.close()
            raise InputError(
                f"{what}: expected the same geotransform in both products, found "
                f"{tuple(a.transform)[:6]} (local) and {tuple(b.transform)[:6]} (official)"
            )

    def close(self) -> None:
        for ds in (self.pair.local, self.pair.official):
            if ds is not None:
                ds.close()

    def __enter__(self) -> _Pair:
        return self.pair

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- statistics
class _DiffStats:
    def __init__(self) -> None:
        self.n = 0
        self.s = self.ss = self.sa = 0.0
        self.sx = self.sy = self.sxx = self.syy = self.sxy = 0.0
        self.lo = math.inf
        self.hi = -math.inf
        self.hist = np.zeros(2 * HIST_HALF + 1, dtype=np.int64)

    def add(self, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> None:
        if x.size == 0:
            return
        x = x.astype(np.float64)
        y = y.astype(np.float64)
        d = x - y
        self.n += int(d.size)
        self.s += float(d.sum())
        self.ss += float(np.dot(d, d))
        self.sa += float(np.abs(d).sum())
        self.sx += float(x.sum())
        self.sy += float(y.sum())
        self.sxx += float(np.dot(x, x))
        self.syy += float(np.dot(y, y))
        self.sxy += float(np.dot(x, y))
        self.lo = min(self.lo, float(d.min()))
        self.hi = max(self.hi, float(d.max()))
        idx = np.clip(np.rint(d / HIST_STEP).astype(np.int64) + HIST_HALF, 0, 2 * HIST_HALF)
        self.hist += np.bincount(idx, minlength=self.hist.size)

    def percentile(self, q: float) -> float:
        cum = np.cumsum(self.hist)
        i = int(np.searchsorted(cum, q * self.n, side="left"))
        return round((i - HIST_HALF) * HIST_STEP, 6)

    def result(self) -> dict[str, Any]:
        if self.n == 0:
            return {"pixels": 0}
        n = self.n
        mean = self.s / n
        var = max(self.ss / n - mean * mean, 0.0)
        vx = self.sxx / n - (self.sx / n) ** 2
        vy = self.syy / n - (self.sy / n) ** 2
        cov = self.sxy / n - (self.sx / n) * (self.sy / n)
        r = cov / math.sqrt(vx * vy) if vx > 0 and vy > 0 else None
        return {
            "pixels": n,
            "mean": round(mean, 6),
            "std": round(math.sqrt(var), 6),
            "mean_abs": round(self.sa / n, 6),
            "rmse": round(math.sqrt(self.ss / n), 6),
            "min": round(self.lo, 6),
            "max": round(self.hi, 6),
            "p05": self.percentile(0.05),
            "p50": self.percentile(0.50),
            "p95": self.percentile(0.95),
            "pearson_r": round(r, 6) if r is not None else None,
            "local_mean": round(self.sx / n, 6),
            "official_mean": round(self.sy / n, 6),
        }


def _compare_band(local: Product, official: Product, band: str, rel_l: str, rel_o: str) -> dict[str, Any]:
    off_l, q_l = band_scaling(local, band)
    off_o, q_o = band_scaling(official, band)
    stats = _DiffStats()
    total = 0
    with _Opened(local, official, rel_l, rel_o, band) as pair:
        for a, b in pair.strips():
            total += a.size
            ok = (a != 0) & (b != 0)
            x = (a[ok].astype(np.float64) + off_l) / q_l
            y = (b[ok].astype(np.float64) + off_o) / q_o
            stats.add(x, y)
    out = stats.result()
    out["nodata_pixels"] = total - stats.n
    out["scaling"] = {
        "local": {"offset": off_l, "quantification": q_l},
        "official": {"offset": off_o, "quantification": q_o},
    }
    return out


def _compare_scl(local: Product, official: Product, rel_l: str, rel_o: str, res: int) -> dict[str, Any]:
    k = len(SCL_CLASSES)
    matrix = np.zeros(k * k, dtype=np.int64)
    outside = 0
    with _Opened(local, official, rel_l, rel_o, "SCL") as pair:
        for a, b in pair.strips():
            bad = (a >= k) | (b >= k)
            outside += int(bad.sum())
            a, b = a[~bad].astype(np.int64), b[~bad].astype(np.int64)
            matrix += np.bincount(a * k + b, minlength=k * k)
    m = matrix.reshape(k, k)
    valid = m[1:, 1:]
    n_valid = int(valid.sum())
    classes = {}
    for c in range(1, k):
        both = int(m[c, c])
        loc = int(valid[c - 1].sum())
        off = int(valid[:, c - 1].sum())
        union = loc + off - both
        classes[str(c)] = {
            "name": SCL_CLASSES[c],
            "local": loc,
            "official": off,
            "both": both,
            "iou": round(both / union, 6) if union else None,
        }
    return {
        "resolution_m": res,
        "valid_pixels": n_valid,
        "nodata_in_either": int(m.sum()) - n_valid,
        "values_out_of_range": outside,
        "agreement": round(int(np.trace(valid)) / n_valid, 6) if n_valid else None,
        "classes": classes,
        "confusion": m.tolist(),
    }


# --------------------------------------------------------------------------- entry point
def _as_product(path: str | os.PathLike[str] | Product, role: str) -> Product:
    prod = path if isinstance(path, Product) else open_product(path)
    if prod.metadata.kind != "L2A":
        raise InputError(f"expected a Level-2A product as {role}, found {prod.metadata.kind}", prod.path)
    if prod.path.is_file():
        raise InputError(f"expected an unzipped .SAFE folder as {role}, found a zip", prod.path)
    return prod


def compare_products(
    local: str | os.PathLike[str] | Product,
    official: str | os.PathLike[str] | Product,
    resolution: int | None = None,
    bands: list[str] | None = None,
) -> dict[str, Any]:
    """Compare two L2A products of one tile; returns the ``s2kit-compare/1`` JSON document."""
    lp, op = _as_product(local, "LOCAL_L2A"), _as_product(official, "OFFICIAL_L2A")
    if lp.metadata.mgrs_tile and op.metadata.mgrs_tile and lp.metadata.mgrs_tile != op.metadata.mgrs_tile:
        raise InputError(
            f"expected two products of one tile, found {lp.metadata.mgrs_tile} (local) "
            f"and {op.metadata.mgrs_tile} (official)"
        )
    warn: list[str] = []
    if lp.metadata.sensing_start.date() != op.metadata.sensing_start.date():
        warn.append(
            f"different acquisitions: sensing {iso_utc(lp.metadata.sensing_start)} (local) vs "
            f"{iso_utc(op.metadata.sensing_start)} (official)"
        )
    fl, fo = _band_files(lp), _band_files(op)
    common_res = sorted({r for r, _ in fl} & {r for r, _ in fo}, reverse=True)
    if resolution is None:
        if not common_res:
            raise InputError("expected band files at one resolution in both products, found none in common")
        resolution = common_res[0]
    elif resolution not in (10, 20, 60):
        raise UsageError(f"expected --resolution 10, 20 or 60, found {resolution}")
    at_l = {b for r, b in fl if r == resolution} & SPECTRAL
    at_o = {b for r, b in fo if r == resolution} & SPECTRAL
    if bands:
        wanted = [b.strip().upper() for b in bands]
        bad = [b for b in wanted if b not in SPECTRAL]
        if bad:
            raise UsageError(f"expected band names like B02 or B8A, found {', '.join(bad)}")
        missing = [b for b in wanted if b not in at_l or b not in at_o]
        if missing:
            raise InputError(
                f"expected {', '.join(missing)} at {resolution} m in both products, found it missing"
            )
        chosen = wanted
    else:
        chosen = [b for b in BAND_IDS if b in at_l and b in at_o]
        only = sorted(at_l ^ at_o)
        if only:
            warn.append(f"bands in one product only at {resolution} m, not compared: {', '.join(only)}")
    if not chosen:
        raise InputError(f"expected spectral bands at {resolution} m in both products, found none in common")
    result: dict[str, Any] = {
        "schema": COMPARE_SCHEMA,
        "local": _describe(lp, chosen),
        "official": _describe(op, chosen),
        "resolution_m": resolution,
        "reflectance": "(DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE of each product; "
        "pixels with DN 0 in either product left out",
        "difference": "local - official (reflectance)",
        "bands": {b: _compare_band(lp, op, b, fl[(resolution, b)], fo[(resolution, b)]) for b in chosen},
        "scl": None,
        "warnings": warn,
    }
    scl_res = next((r for r in (max(resolution, 20), 60) if (r, "SCL") in fl and (r, "SCL") in fo), None)
    if scl_res is None:
        warn.append("no SCL at a common resolution (20 or 60 m): classes not compared")
    else:
        result["scl"] = _compare_scl(lp, op, fl[(scl_res, "SCL")], fo[(scl_res, "SCL")], scl_res)
    return result


def format_comparison(doc: Mapping[str, Any]) -> str:
    """A short text table of a comparison (what ``s2kit compare`` prints without --json)."""
    loc, off = doc["local"], doc["official"]
    lines = [
        f"local:    {loc['product_uri'] or loc['path']} (PB {loc['processing_baseline']}, "
        f"quantification {loc['boa_quantification_value']}, offset {_offsets(loc)})",
        f"official: {off['product_uri'] or off['path']} (PB {off['processing_baseline']}, "
        f"quantification {off['boa_quantification_value']}, offset {_offsets(off)})",
        f"BOA reflectance difference local - official at {doc['resolution_m']} m:",
        f"  {'band':<5} {'pixels':>10} {'mean':>9} {'std':>9} {'mean|d|':>9} {'rmse':>9} "
        f"{'p05':>9} {'p95':>9} {'r':>7}",
    ]
    for band, s in doc["bands"].items():
        if not s.get("pixels"):
            lines.append(f"  {band:<5} {0:>10} (no pixel with data in both)")
            continue
        r = f"{s['pearson_r']:.4f}" if s["pearson_r"] is not None else "-"
        lines.append(
            f"  {band:<5} {s['pixels']:>10} {s['mean']:>9.4f} {s['std']:>9.4f} {s['mean_abs']:>9.4f} "
            f"{s['rmse']:>9.4f} {s['p05']:>9.4f} {s['p95']:>9.4f} {r:>7}"
        )
    scl = doc.get("scl")
    if scl:
        agree = f"{scl['agreement'] * 100:.2f} %" if scl["agreement"] is not None else "-"
        lines.append(
            f"SCL at {scl['resolution_m']} m: {agree} of {scl['valid_pixels']} classified pixels agree"
        )
    for w in doc.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _offsets(d: Mapping[str, Any]) -> str:
    offs = d.get("boa_add_offset")
    if not offs:
        return "none"
    vals = set(offs.values())
    return f"{vals.pop():g}" if len(vals) == 1 else ", ".join(f"{k} {v:g}" for k, v in offs.items())
