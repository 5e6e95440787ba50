"""Hardened lxml parsing shared by every module that reads XML.

ESA metadata never needs a DTD, entities or the network, so the parser turns
all of that off, and a document that declares a DOCTYPE is refused outright
(an entity bomb is never expanded, not even lazily).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from lxml import etree

from .errors import MetadataError, UnsafeXMLError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["parse_xml", "scan_xml", "safe_parser", "localname", "first_elements"]


def safe_parser() -> etree.XMLParser:
    """A parser that never resolves entities, never loads a DTD, never touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


_PARSER = safe_parser()


_ELEMENT_START = re.compile(rb"<[A-Za-z_]")


def _declares_dtd(data: bytes) -> bool:
    # A DOCTYPE can only stand in the prolog, before the first element.
    m = _ELEMENT_START.search(data)
    prolog = data[: m.start()] if m else data
    return b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog


def parse_xml(data: bytes, source: str | os.PathLike[str]) -> etree._Element:
    """Parse *data* (read from *source*, used in messages) and return the root element."""
    refused = UnsafeXMLError(
        "expected plain XML without a DOCTYPE, found a DOCTYPE/ENTITY declaration "
        "(refused: entities are never expanded)",
        source,
    )
    if _declares_dtd(data):
        raise refused
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MetadataError(f"expected well-formed XML, found a syntax error: {exc}", source) from exc
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise refused
    return root


def localname(el: etree._Element) -> str:
    """The tag of *el* without its namespace."""
    tag = el.tag
    if not isinstance(tag, str):  # comments / processing instructions
        return ""
    return tag.rpartition("}")[2]


def first_elements(root: etree._Element, names: Iterable[str]) -> dict[str, list[etree._Element]]:
    """All elements whose local name is one of *names*, in document order, in one C-level pass.

    Namespace-agnostic (``{*}name``): PSD 12/13/14/15 put the same elements in
    different namespaces, or in none.
    """
    wanted = list(names)
    found: dict[str, list[etree._Element]] = {n: [] for n in wanted}
    for el in root.iter(*(f"{{*}}{n}" for n in wanted)):
        found[localname(el)].append(el)
    return found


def scan_xml(
    data: bytes, source: str | os.PathLike[str], wanted: set[str], chunk: int = 16384
) -> tuple[str, dict[str, list[tuple[str, dict[str, str]]]]]:
    """Stream-parse *data* until every element named in *wanted* has been seen once.

    Returns the root's full tag (``{namespace}name``) and ``{name: [(text, attributes), ...]}``. Used
    for big documents whose facts sit at the top (a tile MTD_TL.xml is 0.1-0.6 MB,
    mostly angle grids): it stops early instead of building the whole tree.
    Same hardening as :func:`parse_xml`.
    """
    if _declares_dtd(data):
        raise UnsafeXMLError(
            "expected plain XML without a DOCTYPE, found a DOCTYPE/ENTITY declaration "
            "(refused: entities are never expanded)",
            source,
        )
    parser = etree.XMLPullParser(
        events=("start", "end"), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    found: dict[str, list[tuple[str, dict[str, str]]]] = {}
    root_name = ""
    missing = set(wanted)
    try:
        for offset in range(0, max(len(data), 1), chunk):
            parser.feed(data[offset : offset + chunk])
            for event, item in parser.read_events():
                if not isinstance(item, etree._Element):
                    continue
                if event == "start":
                    if not root_name:
                        root_name = str(item.tag)
                    continue
                name = localname(item)
                if name in wanted:
                    attrs = {str(k): str(v) for k, v in item.attrib.items()}
                    found.setdefault(name, []).append(((item.text or "").strip(), attrs))
                    missing.discard(name)
            if not missing:
                return root_name, found
        parser.close()
    except etree.XMLSyntaxError as exc:
        raise MetadataError(f"expected well-formed XML, found a syntax error: {exc}", source) from exc
    return root_name, found
