"""The pristine Sen2Cor GIPP templates and XSDs (package data), and reading a GIPP document."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

from lxml import etree

from ..errors import ConfigError, InputError, MetadataError, display_path
from ..versions import normalize_version
from ..xmlsafe import parse_xml, read_capped_file

DEFAULT_BASELINE = "03.00"


# Sen2Cor 2.11 ships a GIPP byte-identical to 2.10.01: one stored template set serves both.
_TEMPLATE_DIR = {"2.9": "2.9", "2.10": "2.10", "2.11": "2.10", "2.12": "2.12"}


KINDS: tuple[str, ...] = ("L2A_GIPP", "L2A_PB_GIPP", "L2A_CAL_SC_GIPP", "L2A_CAL_AC_GIPP")


_ROOT_OF_KIND = {
    "L2A_GIPP": "Level-2A_Ground_Image_Processing_Parameter",
    "L2A_PB_GIPP": "GS2_PROCESSING_BASELINE_PARAMETERS",
    "L2A_CAL_SC_GIPP": "Level-2A_CAL_SC_Ground_Image_Processing_Parameter",
    "L2A_CAL_AC_GIPP": "Level-2A_CAL_AC_Ground_Image_Processing_Parameter",
}


_KIND_OF_ROOT = {root: kind for kind, root in _ROOT_OF_KIND.items()}


_MAX_GIPP_BYTES = 4 * 1024 * 1024


_XS = "{http://www.w3.org/2001/XMLSchema}"


GippSource = Union[str, "os.PathLike[str]", bytes]


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


def _validation_errors(version: str, kind: str, root: etree._Element) -> list[Any]:
    schema = load_xsd(version, kind)
    if schema.validate(root):
        return []
    log: Iterable[Any] = schema.error_log  # type: ignore[assignment]
    return [*log]


def _load(source: GippSource | etree._Element, name: str | None) -> tuple[etree._Element, str]:
    if isinstance(source, etree._Element):
        return source, name or "<element>"
    if isinstance(source, bytes):
        label = name or "<bytes>"
        return parse_xml(source, label), label
    if not os.fspath(source):  # Path("") is "." (a folder): say what was given
        raise InputError("expected a GIPP XML file, found an empty path (not the current directory)")
    path = Path(source)
    label = name or display_path(path)
    try:
        # non-blocking and regular files only: a FIFO never hangs, /dev/zero is never read (issue 12)
        data = read_capped_file(path, label, limit=_MAX_GIPP_BYTES, what="GIPP XML file")
    except MetadataError as exc:
        raise InputError(exc.message, label) from None
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
