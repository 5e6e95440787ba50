"""Check a GIPP file: XSD, structure against the pristine template, values that break batch runs."""

from __future__ import annotations

import difflib
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from .. import findings
from ..errors import display_path
from ..findings import Severity
from ..text import escaped
from ..versions import DEM_KINDS, SUPPORTED_VERSIONS, normalize_version
from .detect import GippAsVersion, _detect
from .settings import COPDEM_REFERENCES, allocated_cores
from .templates import (
    DEFAULT_BASELINE,
    GippSource,
    _equivalent,
    _kind_of,
    _load,
    _repeatable,
    _template_root,
    _validation_errors,
)
from .tree import _element_path, _kids, _line

# String values that are file or directory names: surrounding blanks break them silently.
_NAME_VALUES = frozenset(
    {
        "DEM_Directory",
        "DEM_Reference",
        "Snow_Map",
        "ESACCI_WaterBodies_Map",
        "ESACCI_LandCover_Map",
        "ESACCI_SnowCondition_Map_Dir",
        "Lib_Dir",
    }
)


#: Every finding code :func:`check_gipp` can emit, with its severity.  Codes are stable.
FINDING_CODES: dict[str, Severity] = {
    "version-unknown": "error",
    "version-unsupported": "error",
    "version-mismatch": "error",
    "version-ambiguous": "warning",
    "xsd-invalid": "error",
    "unknown-element": "error",
    "missing-element": "error",
    "duplicate-element": "error",
    "element-order": "error",
    "value-whitespace": "error",
    "dem-dir-no-trailing-slash": "error",
    "dem-ref-no-trailing-slash": "error",
    "dem-without-force-exit": "error",
    "dem-dir-relative": "warning",
    "dem-dir-missing": "warning",
    "dem-dir-no-srtm": "warning",
    "dem-reference-none": "warning",
    "dem-reference-remote": "warning",
    "dem-reference-not-copdem": "error",
    "dem-dir-srtm": "error",
    "baseline-9999": "error",
    "threads-auto": "warning",
    "threads-over-allocation": "warning",
    "aux-map-changed": "warning",
}


@dataclass(frozen=True)
class GippFinding(findings.Finding):
    """One problem in a GIPP file.  ``code`` is stable (see :data:`FINDING_CODES`)."""

    element: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "element": self.element,
            "line": self.line,
            "message": self.message,
        }


#: the name the library used before the shared :class:`s2kit.findings.Finding` base
Finding = GippFinding


def _finding(code: str, message: str, element: str | None = None, line: int | None = None) -> Finding:
    return Finding(code, FINDING_CODES[code], message, element, line)


@dataclass(frozen=True)
class GippReport(GippAsVersion):
    """Result of :func:`check_gipp` for one file."""

    detected: str | None
    evidence: str
    xsd_valid: bool | None
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    #: supported versions the document is equally consistent with (``version`` is the first)
    candidates: tuple[str, ...] = ()

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._head(),
            "detected": self.detected,
            "evidence": self.evidence,
            "candidates": list(self.candidates),
            "xsd": {True: "valid", False: "invalid", None: "not-checked"}[self.xsd_valid],
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        }


def _close_match(tag: str, options: Sequence[str]) -> str | None:
    lowered = {o.lower(): o for o in options}
    if tag.lower() in lowered:
        return lowered[tag.lower()]
    hits = difflib.get_close_matches(tag, list(options), n=1, cutoff=0.8)
    return hits[0] if hits else None


def _structure_findings(
    froot: etree._Element, troot: etree._Element, version: str, kind: str
) -> list[Finding]:
    """Unknown, missing, duplicated and misordered elements, compared with the pristine template."""
    repeatable = _repeatable(version, kind)
    out: list[Finding] = []

    def walk(fel: etree._Element, tel: etree._Element) -> None:
        f_kids, t_kids = _kids(fel), _kids(tel)
        t_order = list(dict.fromkeys(str(c.tag) for c in t_kids))
        t_first = {tag: next(c for c in t_kids if c.tag == tag) for tag in t_order}
        counts = Counter(str(c.tag) for c in f_kids)
        parent = _element_path(fel) if fel.getparent() is not None else str(fel.tag)
        missing = [tag for tag in t_order if tag not in counts]
        hinted: set[str] = set()
        for c in f_kids:
            tag = str(c.tag)
            if tag in t_first:
                continue
            hint = _close_match(tag, missing)
            if hint:
                hinted.add(hint)
                msg = f"unknown element <{tag}>: did you mean <{hint}>? (<{hint}> is missing)"
            else:
                msg = (
                    f"unknown element <{tag}>: the Sen2Cor {version} {kind} "
                    f"has no such element in <{fel.tag}>"
                )
            out.append(_finding("unknown-element", msg, _element_path(c), _line(c)))
        for tag in missing:
            if tag in hinted:
                continue
            pos = t_order.index(tag)
            where = f"after <{t_order[pos - 1]}>" if pos else "as its first element"
            anchor = next((c for c in f_kids if pos and c.tag == t_order[pos - 1]), fel)
            out.append(
                _finding(
                    "missing-element",
                    f"missing element <{tag}>: Sen2Cor {version} expects it in <{fel.tag}> {where}",
                    f"{parent}/{tag}" if fel.getparent() is not None else tag,
                    _line(anchor),
                )
            )
        for tag, n in counts.items():
            if n > 1 and tag in t_first and tag not in repeatable:
                second = [c for c in f_kids if c.tag == tag][1]
                out.append(
                    _finding(
                        "duplicate-element",
                        f"<{tag}> appears {n} times; Sen2Cor {version} allows it once",
                        _element_path(second),
                        _line(second),
                    )
                )
        runs: list[etree._Element] = []
        for c in f_kids:
            if c.tag in t_first and (not runs or runs[-1].tag != c.tag):
                runs.append(c)
        expected = [tag for tag in t_order if tag in counts]
        got = [str(c.tag) for c in runs]
        if got != expected:
            i = next(i for i, tag in enumerate(got) if i >= len(expected) or tag != expected[i])
            el = runs[i]
            want = expected[i] if i < len(expected) else None
            window = ", ".join(f"<{t}>" for t in expected[max(0, i - 1) : i + 2])
            msg = f"<{el.tag}> is out of order: Sen2Cor {version} expects " + (
                f"<{want}> at this position (order: {window})"
                if want
                else "nothing after the previous element"
            )
            out.append(_finding("element-order", msg, _element_path(el), _line(el)))
        for c in f_kids:
            tmpl = t_first.get(str(c.tag))
            if tmpl is not None:
                walk(c, tmpl)

    walk(froot, troot)
    return out


def _xsd_findings(
    version: str, kind: str, root: etree._Element, explained: bool
) -> tuple[bool, list[Finding]]:
    errors = _validation_errors(version, kind, root)
    prefix = f"/{root.tag}/"
    out = []
    for entry in errors:
        if explained and entry.type_name == "SCHEMAV_ELEMENT_CONTENT":
            continue  # already reported precisely as unknown/missing/duplicate/order
        path = entry.path or ""
        element = path[len(prefix) :] if path.startswith(prefix) else (path.lstrip("/") or None)
        out.append(_finding("xsd-invalid", f"Sen2Cor {version} XSD: {entry.message}", element, entry.line))
    return not errors, out


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def _dem_findings(
    section: etree._Element, env: Mapping[str, str], version: str | None = None
) -> list[Finding]:
    out: list[Finding] = []
    # Sen2Cor 2.12 reads the Copernicus DEM: no srtm_XX_YY tiles, and DEM_Reference may be the
    # 'CDSE-GLO-30'/'CDSE-GLO-90' label of a downloaded DEM (its L2A_GIPP.xml comment)
    copdem = version is not None and "srtm" not in DEM_KINDS.get(version, ("srtm",))
    dem_el = section.find("DEM_Directory")
    ref_el = section.find("DEM_Reference")
    force_el = section.find("Force_Exit_On_DEM_Error")
    dem = dem_el.text or "" if dem_el is not None else ""
    if dem_el is None or dem.strip() == "NONE":
        return out
    where, line = "Common_Section/DEM_Directory", _line(dem_el)
    if not dem.rstrip().endswith("/"):
        out.append(
            _finding(
                "dem-dir-no-trailing-slash",
                f"DEM_Directory {dem!r} has no trailing '/' (the lab how-to requires one; "
                "render with --dem-dir to get it right)",
                where,
                line,
            )
        )
    path = dem.strip()
    home = env.get("SEN2COR_HOME", "").strip()
    resolved: Path | None = Path(path)
    if not os.path.isabs(path):
        out.append(
            _finding(
                "dem-dir-relative",
                f"DEM_Directory {dem!r} is relative: Sen2Cor joins it with SEN2COR_HOME"
                + (f" ({home})" if home else " (not set here)")
                + ", so every per-task SEN2COR_HOME needs its own copy; use an absolute path",
                where,
                line,
            )
        )
        resolved = Path(home, path) if home else None
    if resolved is not None:
        if not resolved.is_dir():
            out.append(
                _finding(
                    "dem-dir-missing",
                    f"DEM directory {display_path(resolved)!r} does not exist on this host",
                    where,
                    line,
                )
            )
        else:
            srtm = any(resolved.glob("srtm_*_*.zip")) or any(resolved.glob("srtm_*_*.tif"))
            if not copdem and not srtm:
                out.append(
                    _finding(
                        "dem-dir-no-srtm",
                        f"DEM directory {display_path(resolved)!r} holds no srtm_XX_YY.zip/.tif tiles",
                        where,
                        line,
                    )
                )
            elif copdem and srtm:
                out.append(
                    _finding(
                        "dem-dir-srtm",
                        f"DEM directory {display_path(resolved)!r} holds SRTM tiles (srtm_XX_YY): "
                        f"Sen2Cor {version} reads the Copernicus DEM, not SRTM",
                        where,
                        line,
                    )
                )
    if force_el is not None and (force_el.text or "").strip() != "TRUE":
        out.append(
            _finding(
                "dem-without-force-exit",
                f"a DEM is set but Force_Exit_On_DEM_Error is {(force_el.text or '').strip()!r}: "
                "on a DEM error Sen2Cor continues on a flat surface and exits 0",
                "Common_Section/Force_Exit_On_DEM_Error",
                _line(force_el),
            )
        )
    if ref_el is not None:
        ref = (ref_el.text or "").strip()
        rwhere, rline = "Common_Section/DEM_Reference", _line(ref_el)
        if ref in ("", "NONE"):
            out.append(
                _finding(
                    "dem-reference-none",
                    "DEM_Reference is NONE while a DEM is set: missing tiles cannot be found and the "
                    "product metadata records no DEM (lab practice: DEM_Reference = the DEM directory)",
                    rwhere,
                    rline,
                )
            )
        elif (
            copdem
            and ref not in COPDEM_REFERENCES.values()
            and (not _URL.match(ref) or "srtm" in ref.lower())
        ):
            # 2.12's own GIPP allows CDSE-GLO-30/90 (a downloaded DEM) or a Copernicus DEM URL;
            # a folder (the 2.9-2.11 lab practice) or an SRTM URL is not a DEM it reads
            labels = " or ".join(COPDEM_REFERENCES.values())
            out.append(
                _finding(
                    "dem-reference-not-copdem",
                    f"Sen2Cor {version} reads the Copernicus DEM: DEM_Reference must be {labels} "
                    f"(render with --dem cop-dem-glo30|cop-dem-glo90) or a Copernicus DEM URL, found {ref!r}",
                    rwhere,
                    rline,
                )
            )
        elif not (copdem and ref in COPDEM_REFERENCES.values()):
            if not ref.endswith("/"):
                out.append(
                    _finding(
                        "dem-ref-no-trailing-slash",
                        f"DEM_Reference {ref!r} has no trailing '/': Sen2Cor appends 'srtm_XX_YY.zip' "
                        "to it by plain string concatenation",
                        rwhere,
                        rline,
                    )
                )
            if _URL.match(ref) and not ref.startswith("file://"):
                practice = (
                    " or ".join(COPDEM_REFERENCES.values()) + " with the DEM in DEM_Directory"
                    if copdem
                    else "DEM_Reference = the DEM directory"
                )
                out.append(
                    _finding(
                        "dem-reference-remote",
                        f"DEM_Reference {ref!r} is remote: Sen2Cor downloads missing tiles at run time "
                        f"(compute nodes are often offline); lab practice: {practice}",
                        rwhere,
                        rline,
                    )
                )
    return out


def _threads_findings(section: etree._Element, env: Mapping[str, str]) -> list[Finding]:
    el = section.find("Nr_Threads")
    if el is None:
        return []
    text = (el.text or "").strip()
    alloc = allocated_cores(env)
    where, line = "Common_Section/Nr_Threads", _line(el)
    if text.upper() == "AUTO":
        cores = f"the {alloc[0]} allocated ({alloc[1]})" if alloc else "the cores allocated to the job"
        return [
            _finding(
                "threads-auto",
                f"Nr_Threads AUTO: Sen2Cor takes cpu_count() = every core of the node, not {cores}; "
                "set the allocated cores",
                where,
                line,
            )
        ]
    if alloc and re.fullmatch(r"[0-9]+", text) and int(text) > alloc[0]:
        return [
            _finding(
                "threads-over-allocation",
                f"Nr_Threads {text} is more than the {alloc[0]} cores allocated ({alloc[1]}={alloc[0]})",
                where,
                line,
            )
        ]
    return []


def _whitespace_findings(root: etree._Element) -> list[Finding]:
    out = []
    for el in root.iter(*_NAME_VALUES):
        text = el.text or ""
        if text != text.strip():
            out.append(
                _finding(
                    "value-whitespace",
                    f"<{el.tag}> value {text!r} has leading/trailing blanks: Sen2Cor uses the text as is",
                    _element_path(el),
                    _line(el),
                )
            )
    return out


def _value_findings(
    kind: str, root: etree._Element, env: Mapping[str, str], version: str | None = None
) -> list[Finding]:
    out = _whitespace_findings(root)
    if kind == "L2A_GIPP":
        section = root.find("Common_Section")
        if section is not None:
            out += _threads_findings(section, env)
            out += _dem_findings(section, env, version)
    elif kind == "L2A_PB_GIPP":
        el = root.find("DATA/Baseline_Version")
        if el is not None:
            try:
                placeholder = float((el.text or "").strip()) == 99.99
            except ValueError:
                placeholder = False
            if placeholder:
                out.append(
                    _finding(
                        "baseline-9999",
                        f"Baseline_Version {(el.text or '').strip()} is Sen2Cor's placeholder: products get "
                        f"_N9999_ (lab practice: {DEFAULT_BASELINE})",
                        "DATA/Baseline_Version",
                        _line(el),
                    )
                )
    return out


def _aux_map_findings(root: etree._Element, version: str) -> list[Finding]:
    troot = _template_root(version, "L2A_CAL_SC_GIPP")
    out: list[Finding] = []
    refs = root.find("Scene_Classification/References")
    if refs is None:
        return out
    for el in _kids(refs):
        want = troot.findtext(f"Scene_Classification/References/{el.tag}")
        if want is not None and (el.text or "").strip() != want.strip():
            out.append(
                _finding(
                    "aux-map-changed",
                    f"<{el.tag}> is {(el.text or '').strip()!r}, Sen2Cor {version} ships {want.strip()!r} "
                    "in its aux_data: the file must exist there",
                    _element_path(el),
                    _line(el),
                )
            )
    return out


def check_gipp(
    source: GippSource,
    version: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    name: str | None = None,
) -> GippReport:
    """Check one GIPP file (path or bytes) and return its :class:`GippReport`.

    *version* forces the Sen2Cor version (else it is detected from the document); *env* is
    where allocated cores and ``SEN2COR_HOME`` are read (default: ``os.environ``).
    Raises :class:`~s2kit.errors.S2kitError` for input that is no GIPP at all (unreadable,
    not XML, DOCTYPE/entities, wrong root element, unsupported *version*).
    """
    env = os.environ if env is None else env
    forced = normalize_version(version) if version is not None else None
    root, label = _load(source, name)
    kind = _kind_of(root, label)
    guess = _detect(root, kind)
    findings: list[Finding] = []
    used: str | None
    supported = [c for c in guess.candidates if c in SUPPORTED_VERSIONS]
    if forced is not None:
        used, used_source = forced, "flag"
        if guess.candidates and forced not in guess.candidates:
            findings.append(
                _finding(
                    "version-mismatch",
                    f"checked as Sen2Cor {forced}, but the document is a Sen2Cor "
                    f"{guess.version or '/'.join(guess.candidates)} {kind} ({guess.evidence}): "
                    "a stale file from another install?",
                )
            )
    elif not guess.candidates:
        used, used_source = None, None
        findings.append(
            _finding("version-unknown", f"cannot tell the Sen2Cor version ({guess.evidence}); pass --sen2cor")
        )
    elif not supported:
        used, used_source = None, None
        findings.append(
            _finding(
                "version-unsupported",
                f"a Sen2Cor {guess.version} {kind} ({guess.evidence}); s2kit has templates and XSDs for "
                f"{', '.join(SUPPORTED_VERSIONS)} only: not validated",
            )
        )
    else:
        used, used_source = supported[0], "document"
        if len(supported) > 1 and not _equivalent(kind, supported) and guess.version is None:
            findings.append(
                _finding(
                    "version-ambiguous",
                    f"could be Sen2Cor {', '.join(supported)} ({guess.evidence}); checked as {used}, "
                    "pass --sen2cor to choose",
                )
            )

    xsd_valid: bool | None = None
    if used is not None:
        structure = _structure_findings(root, _template_root(used, kind), used, kind)
        xsd_valid, xsd = _xsd_findings(used, kind, root, explained=bool(structure))
        findings += structure + xsd
        if kind == "L2A_CAL_SC_GIPP":
            findings += _aux_map_findings(root, used)
    findings += _value_findings(kind, root, env, used)
    order = {id(f): i for i, f in enumerate(findings)}
    findings.sort(key=lambda f: (f.line or 0, order[id(f)]))
    return GippReport(
        source=label,
        kind=kind,
        version=used,
        version_source=used_source,  # type: ignore[arg-type]
        detected=guess.version,
        evidence=guess.evidence,
        xsd_valid=xsd_valid,
        findings=tuple(findings),
        candidates=tuple(supported) if used_source == "document" else (),
    )


def iter_report_lines(report: GippReport) -> Iterator[str]:
    """Human-readable lines for one report (used by the CLI)."""
    if report.version_source == "flag":
        version = f"Sen2Cor {report.version} (from --sen2cor)"
    elif report.version:
        version = f"Sen2Cor {'/'.join(report.candidates or (report.version,))} (detected)"
    else:
        version = f"Sen2Cor {report.detected or 'unknown'} (not checked)"
    xsd = {True: "XSD valid", False: "XSD INVALID", None: "XSD not checked"}[report.xsd_valid]
    e, w = len(report.errors), len(report.warnings)
    counts = f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"
    # control characters of a file name or value escaped: one line each, nothing for the terminal
    yield escaped(f"{report.source}: {report.kind}, {version}, {xsd}, {counts}")
    for f in report.findings:
        where = " ".join(x for x in (f"line {f.line}" if f.line else "", f.element or "") if x)
        yield escaped(f"  {f.severity:<7} {f.code:<26} {where + ': ' if where else ''}{f.message}")
