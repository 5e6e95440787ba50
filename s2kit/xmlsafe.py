"""Hardened lxml parsing shared by every module that reads XML.

ESA metadata never needs a DTD, entities or the network, so the parser turns
all of that off, and a document that declares a DOCTYPE is refused outright
(an entity bomb is never expanded, not even lazily).

Every metadata read is size-capped at :data:`MAX_METADATA_BYTES` *before* it is
parsed: a bare file is stat'ed then read with a bound, a zip member's declared
size is checked and its decompressed stream is cut after ``cap + 1`` bytes (the
declared size lies in a hostile zip), so a zip bomb costs at most the cap in
memory and time.
"""

from __future__ import annotations

import os
import re
import stat
from typing import IO, TYPE_CHECKING

from lxml import etree

from .errors import MetadataError, MetadataTooLargeError, UnsafeXMLError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "MAX_METADATA_BYTES",
    "parse_xml",
    "scan_xml",
    "safe_parser",
    "localname",
    "first_elements",
    "read_capped",
    "read_capped_file",
    "check_declared_size",
]

# The largest metadata document s2kit reads. Real files are far below it:
# MTD_MSIL1C/2A.xml < 1 MB, MTD_TL.xml 0.1-0.6 MB (angle grids), manifest.safe a few
# hundred kB (data/fixtures). 16 MiB leaves > 25x headroom for future PSD growth
# while bounding what a hostile product can make us allocate and parse (lxml needs
# a few times the document size in memory).
MAX_METADATA_BYTES = 16 * 1024 * 1024


def _cap_text(limit: int) -> str:
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    if limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"


def _size_text(n: int) -> str:
    if n >= 1024**3:
        return f"{n} bytes ({n / 1024**3:.1f} GiB)"
    return f"{n} bytes"


def too_large(
    found: int,
    source: str | os.PathLike[str],
    how: str = "",
    *,
    limit: int | None = None,
    what: str = "metadata",
) -> MetadataTooLargeError:
    """The one-line refusal for a document above the cap (*found* is a lower bound)."""
    limit = MAX_METADATA_BYTES if limit is None else limit
    return MetadataTooLargeError(
        f"expected {what} ≤ {_cap_text(limit)}, found ≥ {_size_text(found)}{how}", source
    )


def check_declared_size(size: int, source: str | os.PathLike[str]) -> None:
    """Refuse a document whose size (stat, or a zip member's declared size) is above the cap."""
    if size > MAX_METADATA_BYTES:
        raise too_large(size, source)


def read_capped(
    fh: IO[bytes],
    source: str | os.PathLike[str],
    *,
    limit: int | None = None,
    what: str = "metadata",
) -> bytes:
    """Read *fh* to its end, but never more than ``limit + 1`` bytes (default: the metadata cap).

    Works on a decompressing stream (``ZipFile.open``): at most the cap is ever
    decompressed and held, whatever the member header claims.
    """
    limit = MAX_METADATA_BYTES if limit is None else limit
    chunks: list[bytes] = []
    got = 0
    while got <= limit:
        chunk = fh.read(min(1024 * 1024, limit + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > limit:
        raise too_large(got, source, " when read", limit=limit, what=what)
    return b"".join(chunks)


def read_capped_file(
    path: str | os.PathLike[str],
    source: str | os.PathLike[str] | None = None,
    *,
    limit: int | None = None,
    what: str = "metadata file",
) -> bytes:
    """The bytes of the regular file *path*, refused above *limit* before anything is read.

    Opens without blocking (a FIFO named like a metadata file never hangs the
    caller) and refuses anything that is not a regular file (a device such as
    ``/dev/zero`` has size 0 in stat and never ends). *what* names the file in
    the refusals ("expected a regular <what>, found a FIFO ..."). OS errors
    propagate as :class:`OSError` for the caller to word. Every read s2kit makes
    whole from a user path goes through here (issue 12, finding 3).
    """
    where = path if source is None else source
    limit = MAX_METADATA_BYTES if limit is None else limit
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO, socket or device"
            raise MetadataError(f"expected a regular {what}, found {kind}", where)
        if st.st_size > limit:
            raise too_large(st.st_size, where, limit=limit, what=what.removesuffix(" file"))
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        return read_capped(fh, where, limit=limit, what=what.removesuffix(" file"))


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
    check_declared_size(len(data), source)
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
    check_declared_size(len(data), source)
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
