"""Structural and metadata validation of L2A products, returned as a report.

In the rio-cogeo style: nothing here prints or exits; :func:`validate_products`
returns a :class:`ValidationReport` whose findings carry stable codes, so CI
pipelines can key on them. The CLI turns the report into text/JSON and an exit
code (0 clean, 1 any error finding).

Finding codes (stable):

=========================  ========  ==============================================
code                       severity  meaning
=========================  ========  ==============================================
missing-metadata           error     no MTD_MSIL2A.xml / no GRANULE/*/MTD_TL.xml
unparseable-metadata       error     a metadata file exists but cannot be read (or exceeds 16 MiB)
unsupported-format         error     pre-2016 long-name (PSD 12/13) product
not-l2a                    error     the product is not a Level-2A product
missing-band               error     an expected band file is absent or empty
missing-qi                 error     QI_DATA or its cloud/snow probability masks absent
offset-mismatch            error     BOA_ADD_OFFSET present iff baseline >= 04.00 violated
sen2cor-version-mismatch   error     with ``expect_sen2cor``: other/unknown version
missing-manifest           warning   no manifest.safe
mixed-baseline             error     (consistency) several processing baselines in the set (with
                                     the config's routes: a baseline no route writes)
mixed-sen2cor-version      error     (consistency) several Sen2Cor versions in the set (with the
                                     config's routes: a version the config does not route to)
duplicate-product          error     (consistency) two or more L2A of one datatake and tile
                                     (same spacecraft, sensing start, orbit and tile in the
                                     product folder names): one L1C published twice
=========================  ========  ==============================================

With the config's routes (``routes``: ``s2kit validate --consistency --config/--run-dir``), a set
that mixes exactly the Sen2Cor versions the config asked for is not an error: the report gets an
info line (:attr:`ValidationReport.notes`) listing the groups, e.g. ``Sen2Cor 2.9: 180 (below
04.00), 2.12: 232 (every other baseline)``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import findings
from .errors import InputError, MetadataError, display_path
from .findings import Severity
from .safe import Product, ProductMetadata, baseline_key, open_product, parse_product_name
from .text import escaped
from .versions import L1C_BASELINE, version_label
from .versions import version_prefix as normalise_sen2cor_version

__all__ = [
    "Finding",
    "ProductFinding",
    "ProductReport",
    "ValidationReport",
    "EXPECTED_BANDS",
    "validate_product",
    "validate_products",
    "consistency_findings",
    "format_product",
    "format_summary",
    "normalise_sen2cor_version",
    "format_report",
    "RouteGroup",
]


# Band files of a Sen2Cor 2.9 / ESA L2A product, per resolution directory.
EXPECTED_BANDS: Mapping[str, tuple[str, ...]] = {
    "10": ("B02", "B03", "B04", "B08", "AOT", "WVP", "TCI"),
    "20": ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12", "AOT", "WVP", "SCL", "TCI"),
    "60": (
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12",
        "AOT", "WVP", "SCL", "TCI",
    ),
}  # fmt: skip
# From Sen2Cor 2.10 (processing baseline 04.00) R20m also holds B01; the PB 02.12/02.14
# products (Sen2Cor 2.8) in data/fixtures list 13 R20m files without it, as Sen2Cor 2.9 does.
EXTRA_BANDS_FROM_PB04: Mapping[str, tuple[str, ...]] = {"20": ("B01",)}
# Quality masks Sen2Cor writes into GRANULE/*/QI_DATA at 20 m and 60 m.
EXPECTED_QI = ("MSK_CLDPRB", "MSK_SNWPRB")

_IMG_RE = re.compile(r"^GRANULE/([^/]+)/IMG_DATA/R(10|20|60)m/[^/]*_([A-Z0-9]{3})_(10|20|60)m(\.jp2)?\Z")


@dataclass(frozen=True)
class ProductFinding(findings.Finding):
    """A finding about one product (``path``) or about the set (``"<set>"``)."""

    path: str


#: the name the library used before the shared :class:`s2kit.findings.Finding` base
Finding = ProductFinding


@dataclass
class ProductReport:
    path: str
    product_uri: str | None = None
    processing_baseline: str | None = None
    sen2cor_version: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def add(self, code: str, severity: Severity, message: str, where: str | os.PathLike[str]) -> None:
        self.findings.append(Finding(code, severity, message, display_path(where)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "product_uri": self.product_uri,
            "processing_baseline": self.processing_baseline,
            "sen2cor_version": self.sen2cor_version,
            "valid": self.valid,
            "findings": [asdict(f) for f in self.findings],
        }


#: one route of a config, as validate groups by it: (version label "2.9", output baseline, which
#: L1C baselines it takes in words): ``Sen2CorConfig.route_groups()``
RouteGroup = tuple[str, str, str]


@dataclass
class ValidationReport:
    products: list[ProductReport]
    set_findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # info lines: the version groups a route asked for

    @property
    def findings(self) -> list[Finding]:
        return [f for p in self.products for f in p.findings] + self.set_findings

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    @property
    def valid(self) -> bool:
        return self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "summary": {
                "products": len(self.products),
                "valid_products": sum(p.valid for p in self.products),
                "errors": self.errors,
                "warnings": self.warnings,
            },
            "products": [p.to_dict() for p in self.products],
            "set_findings": [asdict(f) for f in self.set_findings],
            **({"notes": list(self.notes)} if self.notes else {}),
        }


def _check_bands(product: Product, report: ProductReport) -> set[str]:
    """missing-band checks; returns the resolutions the product has (declared or on disk).

    Two sources of truth, each band reported once: every IMAGE_FILE the MTD lists
    must exist and be non-empty, and every resolution folder must hold the
    canonical band set (catches an MTD that lists too little).
    """
    md = product.metadata
    files = product.files
    reported: set[tuple[str, str]] = set()
    resolutions: set[str] = set()
    for entry in md.image_files:
        rel = entry if entry.endswith(".jp2") else entry + ".jp2"
        m = _IMG_RE.match(rel)
        if m:
            resolutions.add(m[2])
        size = files.get(rel)
        if size:
            continue
        found = "found none" if size is None else "found it with 0 bytes"
        report.add(
            "missing-band", "error",
            f"expected band file {rel} (listed in {product.metadata_path}), {found}",
            product.path / rel,
        )  # fmt: skip
        if m:
            reported.add((m[2], m[3]))
    on_disk: dict[str, set[str]] = {}
    for rel, size in files.items():
        m = _IMG_RE.match(rel)
        if m and size > 0:
            on_disk.setdefault(m[2], set()).add(m[3])
    resolutions |= set(on_disk)
    if not resolutions:
        report.add(
            "missing-band",
            "error",
            "expected band files under GRANULE/*/IMG_DATA/R10m|R20m|R60m, found none",
            product.path,
        )
    if md.sen2cor_version is not None:
        with_b01_20m = md.sen2cor_version >= "02.10"
    else:  # 99.99 is Sen2Cor's placeholder baseline, not a real >= 04.00 one
        with_b01_20m = (4, 0) <= baseline_key(md.processing_baseline) < (99, 99)
    for res in sorted(resolutions):
        expected = EXPECTED_BANDS[res] + (EXTRA_BANDS_FROM_PB04.get(res, ()) if with_b01_20m else ())
        for band in expected:
            if band in on_disk.get(res, set()) or (res, band) in reported:
                continue
            report.add(
                "missing-band",
                "error",
                f"expected a non-empty *_{band}_{res}m.jp2 in IMG_DATA/R{res}m, found none",
                product.path / "GRANULE" / "*" / "IMG_DATA" / f"R{res}m",
            )
    return resolutions


def _check_qi(product: Product, resolutions: set[str], report: ProductReport) -> None:
    granules = {
        rel.split("/")[1] for rel in product.files if rel.startswith("GRANULE/") and rel.count("/") >= 2
    }
    for granule in sorted(granules):
        qi_prefix = f"GRANULE/{granule}/QI_DATA/"
        qi = {rel[len(qi_prefix) :]: size for rel, size in product.files.items() if rel.startswith(qi_prefix)}
        if not qi:
            report.add(
                "missing-qi",
                "error",
                "expected a QI_DATA folder with quality masks, found none",
                product.path / qi_prefix,
            )
            continue
        for res in sorted(resolutions & {"20", "60"}):
            for mask in EXPECTED_QI:
                names = (f"{mask}_{res}m.jp2",)
                if not any(qi.get(n, 0) > 0 for n in names):
                    report.add(
                        "missing-qi",
                        "error",
                        f"expected a non-empty {names[0]} in QI_DATA, found none",
                        product.path / qi_prefix / names[0],
                    )


def _check_offsets(md: ProductMetadata, report: ProductReport, where: Path) -> None:
    needs_offset = baseline_key(md.processing_baseline) >= (4, 0)
    has_offset = md.radiometric_offsets is not None
    if needs_offset and not has_offset:
        hint = ""
        if md.processing_baseline == "99.99":
            hint = " (Baseline_Version 99.99 is Sen2Cor's placeholder: set it in L2A_PB_GIPP.xml, e.g. 03.00)"
        report.add(
            "offset-mismatch",
            "error",
            f"expected BOA_ADD_OFFSET values for processing baseline {md.processing_baseline} (>= 04.00), "
            f"found none{hint}",
            where,
        )
    elif has_offset and not needs_offset:
        report.add(
            "offset-mismatch",
            "error",
            f"expected no BOA_ADD_OFFSET for processing baseline {md.processing_baseline} (< 04.00), "
            f"found {len(md.radiometric_offsets or ())}",
            where,
        )


def validate_product(path: str | os.PathLike[str], expect_sen2cor: str | None = None) -> ProductReport:
    """Validate one L2A product (``.SAFE`` dir or ``.SAFE.zip``); never raises for bad products."""
    p = Path(path)
    report = ProductReport(path=display_path(p))
    # an empty --expect-sen2cor ("$UNSET_VAR") is refused, never a check silently turned off
    expected = normalise_sen2cor_version(expect_sen2cor) if expect_sen2cor is not None else None
    try:
        product = open_product(p)
    except MetadataError as exc:
        report.add("unparseable-metadata", "error", exc.message, exc.path or p)
        return report
    except InputError as exc:
        report.add("missing-metadata", "error", exc.message, exc.path or p)
        return report
    md = product.metadata
    mtd_path = p / product.metadata_path
    report.product_uri = md.product_uri
    report.processing_baseline = md.processing_baseline
    report.sen2cor_version = md.sen2cor_version
    if md.kind != "L2A":
        report.add(
            "not-l2a",
            "error",
            f"expected a Level-2A product, found {md.kind} ({md.product_type})",
            mtd_path,
        )
        return report
    if md.format == "legacy":
        report.add(
            "unsupported-format",
            "error",
            f"unsupported old format: PSD {md.psd_version or '?'}, baseline {md.processing_baseline}",
            mtd_path,
        )
        return report
    if not product.tiles:
        report.add("missing-metadata", "error", "expected GRANULE/*/MTD_TL.xml, found none", p / "GRANULE")
    if product.manifest is None:
        report.add("missing-manifest", "warning", "expected manifest.safe, found none", p / "manifest.safe")
    resolutions = _check_bands(product, report)
    _check_qi(product, resolutions, report)
    _check_offsets(md, report, mtd_path)
    if expected is not None:
        found = md.sen2cor_version
        if found is None or not found.startswith(expected):
            report.add(
                "sen2cor-version-mismatch",
                "error",
                f"expected Sen2Cor {expect_sen2cor} ({expected}), found "
                + (
                    found if found else "no recognisable Sen2Cor version in GIPP_FILENAME[@type='GIP_L2ACSC']"
                ),
                mtd_path,
            )
    return report


def _mixed(reports: list[ProductReport], attr: str, code: str, label: str) -> Finding | None:
    counts = Counter(getattr(r, attr) or "unknown" for r in reports if r.product_uri or getattr(r, attr))
    if len(counts) <= 1:
        return None
    shown = ", ".join(f"{value}: {n}" for value, n in sorted(counts.items()))
    return Finding(
        code,
        "error",
        f"expected one {label} across the set, found {len(counts)} ({shown})",
        "<set>",
    )


def _duplicates(reports: list[ProductReport]) -> list[Finding]:
    """One ``duplicate-product`` finding per datatake and tile with more than one L2A."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for r in reports:
        try:
            n = parse_product_name(Path(r.path).name)
        except (InputError, ValueError):
            continue  # not named as a product: nothing to group it by
        if n.level != "L2A" or n.mgrs_tile is None:
            continue
        groups.setdefault((n.spacecraft, n.sensing_start, n.relative_orbit, n.mgrs_tile), []).append(n.name)
    out = []
    for (_sc, sensing, orbit, tile), names in groups.items():
        if len(names) > 1:
            out.append(
                Finding(
                    "duplicate-product",
                    "error",
                    f"expected one L2A per datatake and tile, found {len(names)} of "
                    f"{sensing:%Y%m%dT%H%M%S} R{orbit:03d} T{tile}: {', '.join(sorted(names))}",
                    "<set>",
                )
            )
    return out


def _label(version: str | None) -> str:
    return (version_label(version) if version else None) or "unknown"


def _routed_groups(
    readable: list[ProductReport], routes: Sequence[RouteGroup], report: ValidationReport
) -> None:
    """Consistency of a set made under a route: mixing the versions (and output baselines) the
    config routes to is expected (an info line lists the groups); anything else is flagged."""
    routed = {v: (baseline, takes) for v, baseline, takes in routes}
    groups = Counter(_label(r.sen2cor_version) for r in readable if r.product_uri or r.sen2cor_version)
    extra = sorted(v for v in groups if v not in routed)
    if len(groups) > 1 and extra:
        shown = ", ".join(f"{v}: {n}" for v, n in sorted(groups.items()))
        report.set_findings.append(
            Finding(
                "mixed-sen2cor-version",
                "error",
                f"expected the Sen2Cor versions the config routes to ({', '.join(routed)}), found "
                f"{len(groups)} versions ({shown}): {', '.join(extra)} not routed",
                "<set>",
            )
        )
    elif groups:
        shown = ", ".join(
            f"{v}: {groups[v]} ({routed[v][1]})" if v in routed else f"{v}: {groups[v]}"
            for v in sorted(groups, key=_vkey)
        )
        report.notes.append(f"sen2cor-version-groups: Sen2Cor {shown}; as the config routes them")
    baselines = Counter(r.processing_baseline or "unknown" for r in readable)
    allowed = {baseline for baseline, _ in routed.values()}
    if L1C_BASELINE in allowed:  # the L2A keep their L1C's baseline: mixing them is by design
        report.notes.append("processing baselines follow each L1C's own (sen2cor.baseline = 'l1c')")
    elif len(baselines) > 1 and not set(baselines) <= allowed:
        shown = ", ".join(f"{b}: {n}" for b, n in sorted(baselines.items()))
        report.set_findings.append(
            Finding(
                "mixed-baseline",
                "error",
                f"expected the processing baselines the config's routes write "
                f"({', '.join(sorted(allowed))}), found {len(baselines)} ({shown})",
                "<set>",
            )
        )


def _vkey(label: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in label.split("."))


def add_consistency(report: ValidationReport, routes: Sequence[RouteGroup] | None = None) -> None:
    """The set findings of ``--consistency`` (and the notes of a routed set) added to *report*:
    mixed baselines or Sen2Cor versions (only those the config's *routes* do not name),
    duplicates."""
    readable = [r for r in report.products if r.processing_baseline is not None]
    if routes:
        _routed_groups(readable, routes, report)
    else:
        for attr, code, label in (
            ("processing_baseline", "mixed-baseline", "processing baseline"),
            ("sen2cor_version", "mixed-sen2cor-version", "Sen2Cor version"),
        ):
            finding = _mixed(readable, attr, code, label)
            if finding:
                report.set_findings.append(finding)
    report.set_findings.extend(_duplicates(report.products))


def consistency_findings(reports: list[ProductReport]) -> list[Finding]:
    """The set findings of ``--consistency`` without routes: mixed baselines or versions, duplicates."""
    report = ValidationReport(products=list(reports))
    add_consistency(report)
    return report.set_findings


def validate_products(
    paths: Iterable[str | os.PathLike[str]],
    expect_sen2cor: str | None = None,
    consistency: bool = False,
    routes: Sequence[RouteGroup] | None = None,
) -> ValidationReport:
    """Validate many products; with *consistency*, also check the set is homogeneous.

    *routes* (the config's :meth:`~s2kit.config.Sen2CorConfig.route_groups`): the set may mix
    exactly those versions and output baselines (grouped in :attr:`ValidationReport.notes`);
    without it one version and one baseline are expected."""
    if expect_sen2cor is not None:
        normalise_sen2cor_version(expect_sen2cor)  # usage error before any work
    reports = [validate_product(p, expect_sen2cor) for p in paths]
    report = ValidationReport(products=reports)
    if consistency:
        add_consistency(report, routes)
    return report


def format_product(p: ProductReport) -> list[str]:
    """The text lines of one product: ``OK``/``FAIL``, then one line per finding (streamed by the CLI)."""
    status = "OK  " if p.valid else "FAIL"
    facts = f"PB {p.processing_baseline or '?'}, Sen2Cor {p.sen2cor_version or '?'}"
    lines = [f"{status} {p.path} ({facts})"]
    for f in p.findings:
        lines.append(f"     {f.severity:<7} {f.code}: {f.message} [{f.path}]")
    # a path or message with a newline stays one line per finding (issue 12, finding 11)
    return [escaped(line) for line in lines]


def format_summary(report: ValidationReport) -> list[str]:
    """The text lines after the products: set findings, then the counts."""
    lines = [f"SET  {f.severity:<7} {f.code}: {f.message}" for f in report.set_findings]
    lines += [f"SET  info    {note}" for note in report.notes]
    lines.append(
        f"{len(report.products)} product(s), {sum(p.valid for p in report.products)} valid, "
        f"{report.errors} error(s), {report.warnings} warning(s)"
    )
    return [escaped(line) for line in lines]


def format_report(report: ValidationReport) -> str:
    """Human-readable text of a report."""
    lines = [line for p in report.products for line in format_product(p)]
    return "\n".join(lines + format_summary(report))
