"""Sen2Cor GIPP management: render, check and diff the four GIPP files, version by version.

The pristine templates (and the XSDs Sen2Cor validates them against) are package data under
``s2kit/templates/gipp/<version>/``; their provenance is in the README there.

* :func:`render_gipp` is pure: :class:`GippSettings` -> ``{file name: XML bytes}``, every file
  validated against the version's XSD.  :func:`write_gipp_set` writes such a set atomically
  (nothing is written unless all four files validate).  A batch task renders its own set into
  its own ``SEN2COR_HOME/cfg`` and passes :func:`sen2cor_gipp_args` to ``L2A_Process``.
* :func:`check_gipp` detects the Sen2Cor version, validates against the XSD, compares the element
  structure with the pristine template and lints the values that make batch runs go wrong
  silently.  Findings carry stable codes (:data:`FINDING_CODES`).
* :func:`diff_gipp` lists element-level differences from the pristine template.

Every XML document is parsed with :func:`s2kit.xmlsafe.parse_xml` (no DOCTYPE, no entities).
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

from lxml import etree

from .errors import ConfigError, InputError, display_path
from .findings import Severity
from .fsutil import atomic_write_bytes
from .xmlsafe import parse_xml

__all__ = [
    "DEFAULT_BASELINE",
    "DEFAULT_VERSION",
    "FINDING_CODES",
    "KINDS",
    "SUPPORTED_VERSIONS",
    "Finding",
    "GippChange",
    "GippDiff",
    "GippReport",
    "GippSettings",
    "VersionGuess",
    "allocated_cores",
    "check_gipp",
    "dem_reference",
    "detect_version",
    "diff_gipp",
    "iter_diff_lines",
    "iter_report_lines",
    "load_xsd",
    "normalize_dem_dir",
    "normalize_version",
    "parse_set",
    "parse_threads",
    "render_gipp",
    "sen2cor_gipp_args",
    "template_bytes",
    "threads_domain",
    "threads_for_allocation",
    "write_gipp_set",
]

SUPPORTED_VERSIONS: tuple[str, ...] = ("2.9", "2.10", "2.11")
DEFAULT_VERSION = "2.9"
DEFAULT_BASELINE = "03.00"
# Sen2Cor 2.11 ships a GIPP byte-identical to 2.10.01: one stored template set serves both.
_TEMPLATE_DIR = {"2.9": "2.9", "2.10": "2.10", "2.11": "2.10"}

KINDS: tuple[str, ...] = ("L2A_GIPP", "L2A_PB_GIPP", "L2A_CAL_SC_GIPP", "L2A_CAL_AC_GIPP")
_ROOT_OF_KIND = {
    "L2A_GIPP": "Level-2A_Ground_Image_Processing_Parameter",
    "L2A_PB_GIPP": "GS2_PROCESSING_BASELINE_PARAMETERS",
    "L2A_CAL_SC_GIPP": "Level-2A_CAL_SC_Ground_Image_Processing_Parameter",
    "L2A_CAL_AC_GIPP": "Level-2A_CAL_AC_Ground_Image_Processing_Parameter",
}
_KIND_OF_ROOT = {root: kind for kind, root in _ROOT_OF_KIND.items()}
# L2A_Process options that point Sen2Cor at each file (without them, Sen2Cor 2.8.0 in TOOLBOX
# mode reads SC/AC/PB from its installation's cfg/ and only L2A_GIPP from SEN2COR_HOME/cfg/).
_PROCESS_OPTION = {
    "L2A_GIPP": "--GIP_L2A",
    "L2A_CAL_SC_GIPP": "--GIP_L2A_SC",
    "L2A_CAL_AC_GIPP": "--GIP_L2A_AC",
    "L2A_PB_GIPP": "--GIP_L2A_PB",
}
# Elements with a dedicated setting: ``--set`` must not fight it.
_OWNED = {
    "Nr_Threads": "threads (--threads)",
    "DEM_Directory": "dem_dir (--dem-dir)",
    "Force_Exit_On_DEM_Error": "force_exit_on_dem_error (--[no-]force-exit-on-dem-error)",
    "Baseline_Version": "baseline (--baseline)",
}
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
_MAX_GIPP_BYTES = 4 * 1024 * 1024
_XS = "{http://www.w3.org/2001/XMLSchema}"

GippSource = Union[str, "os.PathLike[str]", bytes]

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
    "baseline-9999": "error",
    "threads-auto": "warning",
    "threads-over-allocation": "warning",
    "aux-map-changed": "warning",
}


# --------------------------------------------------------------------------- versions & templates
_VERSION_RE = re.compile(r"^\s*0*([0-9]+)\.0*([0-9]+)(?:\.[0-9]+)*\s*\Z")


def _version_label(text: str) -> str | None:
    """``02.09.00`` / ``2.9.0`` / ``2.9`` -> ``2.9``; None when it is not a version."""
    match = _VERSION_RE.match(text)
    return f"{int(match[1])}.{int(match[2])}" if match else None


def normalize_version(text: str) -> str:
    """A supported Sen2Cor version as ``major.minor`` (accepts ``2.9``, ``2.9.0``, ``02.09.00``)."""
    label = _version_label(text)
    if label is None:
        raise ConfigError(f"expected a Sen2Cor version such as 2.9 or 02.09.00, found {text!r}")
    if label not in SUPPORTED_VERSIONS:
        raise ConfigError(
            f"expected a Sen2Cor version s2kit has GIPP templates for "
            f"({', '.join(SUPPORTED_VERSIONS)}), found {text!r}"
        )
    return label


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"expected a GIPP kind ({', '.join(KINDS)}), found {kind!r}")


@functools.cache
def template_bytes(version: str, kind: str, ext: Literal["xml", "xsd"] = "xml") -> bytes:
    """The pristine template (``xml``) or its XSD (``xsd``) for *version* and *kind*."""
    _check_kind(kind)
    folder = _TEMPLATE_DIR[normalize_version(version)]
    return (resources.files("s2kit") / "templates" / "gipp" / folder / f"{kind}.{ext}").read_bytes()


def _template_label(version: str, kind: str, ext: str = "xml") -> str:
    return f"<s2kit template {_TEMPLATE_DIR[version]}/{kind}.{ext}>"


def _template_root(version: str, kind: str) -> etree._Element:
    """A fresh, mutable tree of the pristine template."""
    return parse_xml(template_bytes(version, kind), _template_label(version, kind))


@functools.cache
def _xsd_root(version: str, kind: str) -> etree._Element:
    return parse_xml(template_bytes(version, kind, "xsd"), _template_label(version, kind, "xsd"))


@functools.cache
def load_xsd(version: str, kind: str) -> etree.XMLSchema:
    """The XSD Sen2Cor *version* validates *kind* against (parsed safely, cached)."""
    version = normalize_version(version)
    _check_kind(kind)
    try:
        return etree.XMLSchema(_xsd_root(version, kind))
    except etree.XMLSchemaParseError as exc:  # pragma: no cover - the shipped XSDs parse
        raise ConfigError(f"the s2kit {version} {kind}.xsd does not load: {exc}") from exc


@functools.cache
def _repeatable(version: str, kind: str) -> frozenset[str]:
    """Elements the XSD lets repeat (``maxOccurs="unbounded"``), e.g. PSD_Scheme, Idp_Sc_List."""
    names = set()
    for el in _xsd_root(version, kind).iter(f"{_XS}element"):
        if el.get("maxOccurs") == "unbounded":
            names.add(el.get("ref") or el.get("name") or "")
    return frozenset(names - {""})


@functools.cache
def threads_domain(version: str) -> tuple[frozenset[str], int, int]:
    """What ``Nr_Threads`` accepts in *version*, read from its XSD: (words, minimum, maximum)."""
    version = normalize_version(version)
    decl = _xsd_root(version, "L2A_GIPP").find(f"{_XS}element[@name='Nr_Threads']")
    if decl is None:  # pragma: no cover - every supported XSD declares it
        raise ConfigError(f"the s2kit {version} L2A_GIPP.xsd declares no Nr_Threads")
    words = frozenset(e.get("value", "") for e in decl.iter(f"{_XS}enumeration"))
    lows = [int(e.get("value", "0")) for e in decl.iter(f"{_XS}minInclusive")]
    highs = [int(e.get("value", "0")) for e in decl.iter(f"{_XS}maxInclusive")]
    return words, min(lows), max(highs)


def _equivalent(kind: str, versions: Sequence[str]) -> bool:
    """True when all *versions* ship the same template and XSD bytes for *kind*."""
    first = versions[0]
    return all(
        template_bytes(v, kind) == template_bytes(first, kind)
        and template_bytes(v, kind, "xsd") == template_bytes(first, kind, "xsd")
        for v in versions[1:]
    )


# --------------------------------------------------------------------------- settings
def parse_threads(value: int | str, version: str = DEFAULT_VERSION) -> int | str:
    """``AUTO`` (any case) or an int in the range the version's XSD allows (2.9: 1-8)."""
    words, low, high = threads_domain(version)
    allowed = " or ".join([*sorted(words), f"{low}-{high}"])
    text = str(value).strip()
    if text.upper() in words:
        return text.upper()
    try:
        number = int(text)
    except ValueError:
        number = None
    if isinstance(value, bool) or number is None or not low <= number <= high:
        raise ConfigError(
            f"Nr_Threads for Sen2Cor {normalize_version(version)} must be {allowed} "
            f"(its L2A_GIPP.xsd), found {value!r}"
        )
    return number


def allocated_cores(env: Mapping[str, str] | None = None) -> tuple[int, str] | None:
    """Cores the batch system gave this job: (count, variable) from LSF or Slurm, else None."""
    from .schedulers.env import allocated_cores as scheduler_cores  # the schedulers own the variables

    return scheduler_cores(env)


def threads_for_allocation(version: str = DEFAULT_VERSION, env: Mapping[str, str] | None = None) -> int:
    """Default Nr_Threads: the allocated cores, capped to what the version allows; 1 outside a job."""
    _, low, high = threads_domain(version)
    alloc = allocated_cores(env)
    return max(low, min(alloc[0], high)) if alloc else low


def normalize_dem_dir(path: str) -> str:
    """The DEM directory with exactly one trailing ``/`` (as the lab how-to requires)."""
    if not path:
        raise ConfigError("expected a DEM directory, found an empty string")
    if path != path.strip():
        raise ConfigError(f"DEM directory {path!r} has leading/trailing blanks")
    if path.upper() == "NONE":
        raise ConfigError("DEM directory NONE: omit the DEM directory to run without a DEM")
    return path.rstrip("/") + "/"


# Characters with a meaning in a URI reference (RFC 3986): '%' starts an escape, '?' a query,
# '#' a fragment, '[' and ']' only delimit an IP-literal host.
_URI_ESCAPES = {c: f"%{ord(c):02X}" for c in "%?#[]"}


def dem_reference(dem_dir: str) -> str:
    """``DEM_Reference`` (``xs:anyURI``) for the local DEM folder *dem_dir* (``DEM_Directory``).

    Sen2Cor reads ``DEM_Directory`` as a plain path (it looks for ``srtm_XX_YY.tif`` there and
    extracts into it), but fetches a missing tile as ``urlopen(DEM_Reference + 'srtm_XX_YY.zip')``
    (2.8.0 source, ``L2A_Tables.gdalDEM_srtm``), which percent-decodes a local path. So the folder
    is written as a URI reference: ``%``, ``?``, ``#``, ``[`` and ``]`` percent-encoded, every other
    character as it is. A path without those characters is unchanged; with them the reference is
    a valid ``xs:anyURI`` that decodes (``urllib.request.url2pathname``) to exactly *dem_dir*, where
    the raw path would fail the XSD (``%zz``, ``[1]``) or name another folder (``%41`` -> ``A``).
    """
    return "".join(_URI_ESCAPES.get(c, c) for c in dem_dir)


def _split_assignment(text: str) -> tuple[str, str] | None:
    """Split NAME=VALUE at the first ``=`` outside XPath brackets and quotes."""
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "=" and depth == 0:
            return text[:i], text[i + 1 :]
    return None


def parse_set(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` (NAME: an element tag or an XPath) -> (NAME, VALUE)."""
    parts = _split_assignment(text)
    if parts is None or not parts[0].strip():
        raise ConfigError(f"--set expects NAME=VALUE (NAME: element tag or XPath), found {text!r}")
    return parts[0].strip(), parts[1]


@dataclass(frozen=True)
class GippSettings:
    """Everything a GIPP set is rendered from.  Validated and normalised on construction.

    ``threads`` becomes an int or ``"AUTO"``; ``sen2cor`` becomes ``major.minor``.
    ``force_exit_on_dem_error=None`` means TRUE with a DEM and the template's FALSE without.
    ``overrides`` are (element tag or XPath, value) pairs applied last.
    """

    sen2cor: str = DEFAULT_VERSION
    dem_dir: str | None = None
    threads: int | str = 1
    baseline: str = DEFAULT_BASELINE
    force_exit_on_dem_error: bool | None = None
    overrides: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        version = normalize_version(self.sen2cor)
        object.__setattr__(self, "sen2cor", version)
        object.__setattr__(self, "threads", parse_threads(self.threads, version))
        if self.dem_dir is not None:
            normalize_dem_dir(self.dem_dir)
        if not re.fullmatch(r"[0-9]{2}\.[0-9]{2}", self.baseline):
            raise ConfigError(f"Baseline_Version must look like 03.00 (dd.dd), found {self.baseline!r}")
        if self.baseline == "99.99":
            raise ConfigError(
                "Baseline_Version 99.99 is Sen2Cor's placeholder (products get _N9999_); "
                "give the real processing baseline, e.g. 03.00"
            )
        pairs = tuple((str(name), str(value)) for name, value in self.overrides)
        for name, _ in pairs:
            if not name.strip():
                raise ConfigError("--set expects NAME=VALUE, found an empty NAME")
        object.__setattr__(self, "overrides", pairs)

    @property
    def force_exit(self) -> bool:
        if self.force_exit_on_dem_error is None:
            return self.dem_dir is not None
        return self.force_exit_on_dem_error


# --------------------------------------------------------------------------- render
def _serialize(root: etree._Element, original: bytes) -> bytes:
    """*root* as bytes, keeping the original prolog, root start tag and epilog byte for byte."""
    tag = str(root.tag).encode()
    start = re.search(rb"<" + re.escape(tag) + rb"[\s>/]", original)
    close = original.rfind(b"</" + tag + b">")
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=False, with_tail=False)
    if start is None or close < 0:  # pragma: no cover - templates always have both
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"
    start_tag = original[start.start() : original.index(b">", start.start()) + 1]
    epilog = original[close + len(tag) + 3 :]
    return original[: start.start()] + start_tag + body[body.index(b">") + 1 :] + epilog


def _set_text(root: etree._Element, path: str, value: str, label: str) -> None:
    el = root.find(path)
    if el is None:  # pragma: no cover - the shipped templates have these elements
        raise ConfigError(f"the template {label} has no {path}")
    try:
        el.text = value
    except ValueError as exc:  # control characters, invalid surrogates, ...
        raise ConfigError(
            f"{path.rpartition('/')[2]}: value {value!r} cannot be written to XML: {exc}"
        ) from exc


_NCNAME = re.compile(r"^[A-Za-z_][\w.\-]*\Z")
_BOOL_WORDS = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}


def _element_path(el: etree._Element) -> str:
    """Path of *el* below the root (``Common_Section/PSD_Scheme[2]/UP_Scheme_1C``)."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None and node.getparent() is not None:
        parent = node.getparent()
        assert parent is not None
        same = [c for c in parent if c.tag == node.tag]
        name = str(node.tag)
        if len(same) > 1:
            name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/".join(reversed(parts)) or str(el.tag)


def _resolve_override(
    docs: Mapping[str, etree._Element], name: str, version: str
) -> tuple[str, etree._Element]:
    matches: list[tuple[str, etree._Element]] = []
    if _NCNAME.match(name):
        for kind, root in docs.items():
            matches.extend((kind, el) for el in root.iter(name))
    else:
        for kind, root in docs.items():
            try:
                result = root.getroottree().xpath(name)
            except etree.XPathError as exc:
                raise ConfigError(
                    f"--set {name}: expected an element tag or an XPath, found an XPath error: {exc}"
                ) from exc
            if not isinstance(result, list):
                raise ConfigError(f"--set {name}: the XPath must select elements, it yields {result!r}")
            for item in result:
                if not isinstance(item, etree._Element) or not isinstance(item.tag, str):
                    raise ConfigError(f"--set {name}: the XPath must select elements, it selects {item!r}")
                matches.append((kind, item))
    if not matches:
        raise ConfigError(f"--set {name}: matches no element in the Sen2Cor {version} GIPP files")
    if len(matches) > 1:
        shown = ", ".join(f"{kind}.xml:{_element_path(el)}" for kind, el in matches[:4])
        more = f" and {len(matches) - 4} more" if len(matches) > 4 else ""
        example = matches[0][1].getroottree().getpath(matches[0][1])
        raise ConfigError(
            f"--set {name}: matches {len(matches)} elements ({shown}{more}); "
            f"address exactly one with an XPath, e.g. {example}"
        )
    return matches[0]


def _apply_override(docs: Mapping[str, etree._Element], name: str, value: str, version: str) -> None:
    kind, el = _resolve_override(docs, name, version)
    tag = str(el.tag)
    if tag in _OWNED:
        raise ConfigError(f"--set {name}: {tag} is rendered from the {_OWNED[tag]} setting; use that instead")
    if len(el):
        raise ConfigError(
            f"--set {name}: {kind}.xml:{_element_path(el)} has child elements; address a leaf element"
        )
    current = (el.text or "").strip()
    word = _BOOL_WORDS.get(value.strip().lower())
    if word is not None and current in ("TRUE", "FALSE"):
        value = "TRUE" if word else "FALSE"  # Sen2Cor's GIPP booleans are upper-case words
    elif word is not None and current in ("true", "false"):
        value = "true" if word else "false"  # ... except xs:boolean ones in the AC GIPP
    try:
        el.text = value
    except ValueError as exc:
        raise ConfigError(f"--set {name}: value {value!r} cannot be written to XML: {exc}") from exc


def _validation_errors(version: str, kind: str, root: etree._Element) -> list[Any]:
    schema = load_xsd(version, kind)
    if schema.validate(root):
        return []
    log: Iterable[Any] = schema.error_log  # type: ignore[assignment]
    return [*log]


def render_gipp(settings: GippSettings) -> dict[str, bytes]:
    """Pure: *settings* -> ``{"L2A_GIPP.xml": bytes, ...}`` for all four files, each XSD-valid.

    Raises :class:`~s2kit.errors.ConfigError` (nothing rendered) if an override matches no or
    several elements, or if any resulting file fails the version's XSD.
    """
    version = settings.sen2cor
    docs = {kind: _template_root(version, kind) for kind in KINDS}
    l2a = docs["L2A_GIPP"]
    _set_text(l2a, "Common_Section/Nr_Threads", str(settings.threads), "L2A_GIPP.xml")
    if settings.dem_dir is not None:
        dem = normalize_dem_dir(settings.dem_dir)
        _set_text(l2a, "Common_Section/DEM_Directory", dem, "L2A_GIPP.xml")
        _set_text(l2a, "Common_Section/DEM_Reference", dem_reference(dem), "L2A_GIPP.xml")
    _set_text(
        l2a,
        "Common_Section/Force_Exit_On_DEM_Error",
        "TRUE" if settings.force_exit else "FALSE",
        "L2A_GIPP.xml",
    )
    _set_text(docs["L2A_PB_GIPP"], "DATA/Baseline_Version", settings.baseline, "L2A_PB_GIPP.xml")
    for name, value in settings.overrides:
        _apply_override(docs, name, value, version)

    rendered: dict[str, bytes] = {}
    for kind in KINDS:
        data = _serialize(docs[kind], template_bytes(version, kind))
        reparsed = parse_xml(data, f"<rendered {kind}.xml>")
        problems = _validation_errors(version, kind, reparsed)
        if problems:
            first = problems[0]
            hint = ""
            if "DEM_Reference" in first.message and "anyURI" in first.message:
                hint = " (DEM_Reference must be a URI: write %, ?, #, [ and ] as %25, %3F, %23, %5B and %5D)"
            raise ConfigError(
                f"rendered {kind}.xml fails the Sen2Cor {version} XSD "
                f"({len(problems)} error{'s' if len(problems) > 1 else ''}): line {first.line}: "
                f"{first.message}{hint}"
            )
        rendered[f"{kind}.xml"] = data
    return rendered


def write_gipp_set(settings: GippSettings, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Render, validate all four files, then write each atomically into *out_dir*.

    Nothing is written if rendering or validation fails.  Returns the written paths.
    """
    target = Path(out_dir)
    if target.exists() and not target.is_dir():
        raise InputError("expected an output directory, found a file", target)
    files = render_gipp(settings)
    written = []
    for name, data in files.items():
        written.append(atomic_write_bytes(target / name, data))
    return written


def sen2cor_gipp_args(cfg_dir: str | os.PathLike[str]) -> list[str]:
    """``L2A_Process`` options that make Sen2Cor read all four GIPPs from *cfg_dir*.

    Without them only ``L2A_GIPP.xml`` is taken from ``$SEN2COR_HOME/cfg``; SC, AC and PB come
    from the installation tree (Sen2Cor 2.8.0 source, ``L2A_Config.init_home_directory``).
    """
    cfg = Path(cfg_dir).absolute()
    args: list[str] = []
    for kind in KINDS:
        args += [_PROCESS_OPTION[kind], str(cfg / f"{kind}.xml")]
    return args


# --------------------------------------------------------------------------- reading & detection
def _load(source: GippSource | etree._Element, name: str | None) -> tuple[etree._Element, str]:
    if isinstance(source, etree._Element):
        return source, name or "<element>"
    if isinstance(source, bytes):
        label = name or "<bytes>"
        return parse_xml(source, label), label
    path = Path(source)
    label = name or display_path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise InputError("expected a GIPP XML file, found a directory", label)
        if size > _MAX_GIPP_BYTES:
            raise InputError(f"expected a GIPP XML file (a few kB), found {size} bytes", label)
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("expected a GIPP XML file, found no such file", label) from None
    except OSError as exc:
        raise InputError(f"expected a readable GIPP XML file: {exc.strerror}", label) from None
    return parse_xml(data, label), label


def _kind_of(root: etree._Element, label: str) -> str:
    kind = _KIND_OF_ROOT.get(str(root.tag))
    if kind is None:
        raise InputError(
            f"expected a Sen2Cor GIPP (root element {', '.join(_ROOT_OF_KIND.values())}), "
            f"found root element <{root.tag}>",
            label,
        )
    return kind


@dataclass(frozen=True)
class VersionGuess:
    """What the document says about its Sen2Cor version.

    ``version`` is the detected version label (may be unsupported, e.g. ``2.8``, ``pre-2.8``);
    ``candidates`` the versions it is consistent with (supported ones first); ``evidence`` why.
    """

    kind: str
    version: str | None
    candidates: tuple[str, ...]
    evidence: str


_L2A_210_MARKERS = ("Product_DOI", "Product_Generator", "Handle_L1C_QLT_Mask", "PSD_Version", "QI_Scheme")
_L2A_29_MARKERS = ("Region_Of_Interest", "Force_Exit_On_DEM_Error")


def _detect_l2a(root: etree._Element) -> VersionGuess:
    section = root.find("Common_Section")
    if section is None:
        return VersionGuess("L2A_GIPP", None, (), "no Common_Section")
    tags = {str(c.tag) for c in section if isinstance(c.tag, str)}
    found_210 = [t for t in _L2A_210_MARKERS if t in tags]
    found_29 = [t for t in _L2A_29_MARKERS if t in tags]
    if found_210:
        psd = []
        for scheme in section.iter("PSD_Scheme"):
            try:
                psd.append(float(scheme.get("PSD_Version", "0")))
            except ValueError:
                continue
        if psd and max(psd) >= 15.0:
            return VersionGuess(
                "L2A_GIPP",
                "2.12",
                ("2.12",),
                f"{', '.join(found_210)} and a PSD_Scheme {max(psd):.1f} (Sen2Cor 2.12)",
            )
        return VersionGuess(
            "L2A_GIPP",
            "2.10",
            ("2.10", "2.11"),
            f"{', '.join(found_210)} (2.10 layout; 2.11 ships the same file)",
        )
    if found_29:
        return VersionGuess("L2A_GIPP", "2.9", ("2.9",), f"{', '.join(found_29)} without the 2.10 elements")
    if "Nr_Threads" in tags:
        return VersionGuess(
            "L2A_GIPP", "2.8", ("2.8",), "Nr_Threads without Region_Of_Interest/Force_Exit_On_DEM_Error"
        )
    if tags & {"Operation_Mode", "Nr_Processes"}:
        return VersionGuess("L2A_GIPP", "pre-2.8", ("pre-2.8",), "Operation_Mode/Nr_Processes, no Nr_Threads")
    return VersionGuess("L2A_GIPP", None, (), "none of the elements that tell Sen2Cor versions apart")


def _detect_pb(root: etree._Element) -> VersionGuess:
    text = (root.findtext("DATA/Idp_Sc_List/Idp_Sc_Version") or "").strip()
    label = _version_label(text) if text else None
    if label is None:
        return VersionGuess("L2A_PB_GIPP", None, (), f"Idp_Sc_Version {text!r} is not a version")
    same = tuple(
        v
        for v in SUPPORTED_VERSIONS
        if _template_root(v, "L2A_PB_GIPP").findtext("DATA/Idp_Sc_List/Idp_Sc_Version") == text
    )
    candidates = same or (label,)
    note = f" (the s2kit {'/'.join(same)} template carries it)" if same and same != (label,) else ""
    return VersionGuess("L2A_PB_GIPP", label, candidates, f"Idp_Sc_Version {text}{note}")


def _detect_by_template(root: etree._Element, kind: str) -> VersionGuess:
    """SC/AC carry no version: the supported versions whose template differs least."""
    counts = {v: len(_diff_changes(root, _template_root(v, kind))) for v in SUPPORTED_VERSIONS}
    best = min(counts.values())
    candidates = tuple(v for v in SUPPORTED_VERSIONS if counts[v] == best)
    if len(candidates) == len(SUPPORTED_VERSIONS) and _equivalent(kind, candidates):
        evidence = f"identical {kind} in Sen2Cor {', '.join(candidates)}"
    elif best == 0:
        evidence = f"equal to the Sen2Cor {'/'.join(candidates)} template"
    else:
        evidence = f"closest to the Sen2Cor {'/'.join(candidates)} template ({best} differences)"
    return VersionGuess(kind, candidates[0] if len(candidates) == 1 else None, candidates, evidence)


def _detect(root: etree._Element, kind: str) -> VersionGuess:
    if kind == "L2A_GIPP":
        return _detect_l2a(root)
    if kind == "L2A_PB_GIPP":
        return _detect_pb(root)
    return _detect_by_template(root, kind)


def detect_version(source: GippSource | etree._Element, *, name: str | None = None) -> VersionGuess:
    """Detect which Sen2Cor version a GIPP file belongs to (from the document alone)."""
    root, label = _load(source, name)
    return _detect(root, _kind_of(root, label))


# --------------------------------------------------------------------------- check
@dataclass(frozen=True)
class Finding:
    """One problem in a GIPP file.  ``code`` is stable (see :data:`FINDING_CODES`)."""

    code: str
    severity: Severity
    message: str
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


def _finding(code: str, message: str, element: str | None = None, line: int | None = None) -> Finding:
    return Finding(code, FINDING_CODES[code], message, element, line)


@dataclass(frozen=True)
class GippReport:
    """Result of :func:`check_gipp` for one file."""

    source: str
    kind: str
    version: str | None
    version_source: Literal["flag", "document"] | None
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
            "file": self.source,
            "kind": self.kind,
            "version": self.version,
            "version_source": self.version_source,
            "detected": self.detected,
            "evidence": self.evidence,
            "candidates": list(self.candidates),
            "xsd": {True: "valid", False: "invalid", None: "not-checked"}[self.xsd_valid],
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        }


def _line(el: etree._Element) -> int | None:
    line = el.sourceline
    return line if isinstance(line, int) else None


def _kids(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


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


def _dem_findings(section: etree._Element, env: Mapping[str, str]) -> list[Finding]:
    out: list[Finding] = []
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
        elif not any(resolved.glob("srtm_*_*.zip")) and not any(resolved.glob("srtm_*_*.tif")):
            out.append(
                _finding(
                    "dem-dir-no-srtm",
                    f"DEM directory {display_path(resolved)!r} holds no srtm_XX_YY.zip/.tif tiles",
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
        else:
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
                out.append(
                    _finding(
                        "dem-reference-remote",
                        f"DEM_Reference {ref!r} is remote: Sen2Cor downloads missing tiles at run time "
                        "(compute nodes are often offline); lab practice: DEM_Reference = the DEM directory",
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


def _value_findings(kind: str, root: etree._Element, env: Mapping[str, str]) -> list[Finding]:
    out = _whitespace_findings(root)
    if kind == "L2A_GIPP":
        section = root.find("Common_Section")
        if section is not None:
            out += _threads_findings(section, env)
            out += _dem_findings(section, env)
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
    findings += _value_findings(kind, root, env)
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


# --------------------------------------------------------------------------- diff
ChangeKind = Literal["changed", "added", "removed", "moved"]


@dataclass(frozen=True)
class GippChange:
    """One element-level difference: ``template`` / ``file`` are None where the element is absent."""

    element: str
    change: ChangeKind
    template: str | None
    file: str | None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "element": self.element,
            "change": self.change,
            "template": self.template,
            "file": self.file,
            "line": self.line,
        }


@dataclass(frozen=True)
class GippDiff:
    """Result of :func:`diff_gipp`: the changes against the pristine Sen2Cor template."""

    source: str
    kind: str
    version: str
    version_source: Literal["flag", "document"]
    changes: tuple[GippChange, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "kind": self.kind,
            "version": self.version,
            "version_source": self.version_source,
            "changes": [c.to_dict() for c in self.changes],
        }


def _value(el: etree._Element) -> str:
    kids = _kids(el)
    if kids:
        return f"({len(kids)} elements)"
    return el.text or ""


def _keyed(kids: list[etree._Element]) -> dict[tuple[str, int], etree._Element]:
    seen: Counter[str] = Counter()
    out = {}
    for c in kids:
        tag = str(c.tag)
        seen[tag] += 1
        out[(tag, seen[tag])] = c
    return out


def _diff_changes(froot: etree._Element, troot: etree._Element) -> list[GippChange]:
    out: list[GippChange] = []

    def label(path: str, tag: str, n: int, multi: bool) -> str:
        name = f"{tag}[{n}]" if multi else tag
        return f"{path}/{name}" if path else name

    def walk(fel: etree._Element, tel: etree._Element, path: str) -> None:
        for attr in sorted({str(a) for a in fel.attrib} | {str(a) for a in tel.attrib}):
            fv, tv = fel.get(attr), tel.get(attr)
            if fv != tv:
                change: ChangeKind = (
                    "changed" if fv is not None and tv is not None else ("added" if tv is None else "removed")
                )
                out.append(GippChange(f"{path or str(fel.tag)}/@{attr}", change, tv, fv, _line(fel)))
        f_kids, t_kids = _kids(fel), _kids(tel)
        if not f_kids and not t_kids:
            if (fel.text or "") != (tel.text or ""):
                out.append(
                    GippChange(path or str(fel.tag), "changed", tel.text or "", fel.text or "", _line(fel))
                )
            return
        f_map, t_map = _keyed(f_kids), _keyed(t_kids)
        multi = {tag for tag, n in list(f_map) + list(t_map) if n > 1}
        for key, tchild in t_map.items():
            name = label(path, key[0], key[1], key[0] in multi)
            fchild = f_map.get(key)
            if fchild is None:
                out.append(GippChange(name, "removed", _value(tchild), None, _line(fel)))
            else:
                walk(fchild, tchild, name)
        for key, fchild in f_map.items():
            if key not in t_map:
                name = label(path, key[0], key[1], key[0] in multi)
                out.append(GippChange(name, "added", None, _value(fchild), _line(fchild)))
        # relative order of the elements both have
        common_t = [k for k in t_map if k in f_map]
        common_f = [k for k in f_map if k in t_map]
        if common_t != common_f:
            matcher = difflib.SequenceMatcher(a=common_t, b=common_f, autojunk=False)
            kept = {common_f[b + i] for a, b, size in matcher.get_matching_blocks() for i in range(size)}
            for key in common_f:
                if key in kept:
                    continue
                ti, fi = common_t.index(key), common_f.index(key)
                before_t = f"after <{common_t[ti - 1][0]}>" if ti else "first"
                before_f = f"after <{common_f[fi - 1][0]}>" if fi else "first"
                out.append(
                    GippChange(
                        label(path, key[0], key[1], key[0] in multi),
                        "moved",
                        before_t,
                        before_f,
                        _line(f_map[key]),
                    )
                )

    walk(froot, troot, "")
    return out


def diff_gipp(source: GippSource, version: str | None = None, *, name: str | None = None) -> GippDiff:
    """Element-level differences of a GIPP file from the pristine template of its Sen2Cor version."""
    forced = normalize_version(version) if version is not None else None
    root, label = _load(source, name)
    kind = _kind_of(root, label)
    if forced is not None:
        used, used_source = forced, "flag"
    else:
        guess = _detect(root, kind)
        supported = [c for c in guess.candidates if c in SUPPORTED_VERSIONS]
        if not supported:
            what = f"Sen2Cor {guess.version}" if guess.version else "an unknown Sen2Cor version"
            raise ConfigError(
                f"expected a GIPP of Sen2Cor {', '.join(SUPPORTED_VERSIONS)}, found {what} "
                f"({guess.evidence}); pass --sen2cor to diff against one of those templates",
                label,
            )
        used, used_source = supported[0], "document"
    changes = _diff_changes(root, _template_root(used, kind))
    return GippDiff(label, kind, used, used_source, tuple(changes))  # type: ignore[arg-type]


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
    yield f"{report.source}: {report.kind}, {version}, {xsd}, {counts}"
    for f in report.findings:
        where = " ".join(x for x in (f"line {f.line}" if f.line else "", f.element or "") if x)
        yield f"  {f.severity:<7} {f.code:<26} {where + ': ' if where else ''}{f.message}"


def iter_diff_lines(diff: GippDiff) -> Iterator[str]:
    """Human-readable lines for one diff (used by the CLI)."""
    how = "from --sen2cor" if diff.version_source == "flag" else "detected"
    n = len(diff.changes)
    yield (
        f"{diff.source}: {diff.kind} vs pristine Sen2Cor {diff.version} template ({how}): "
        f"{n} difference{'s' * (n != 1)}"
    )
    if not diff.changes:
        return
    width = max(len(c.element) for c in diff.changes)
    for c in diff.changes:
        yield f"  {c.change:<8} {c.element:<{width}}  {_show(c.template)} -> {_show(c.file)}"


def _show(value: str | None) -> str:
    if value is None:
        return "-"
    return repr(value) if value != value.strip() or not value else value
