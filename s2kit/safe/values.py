"""Typed, loud readers of metadata values (times, integers, first-occurrence fields)."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone

from lxml import etree

from ..errors import MetadataError
from ..xmlsafe import first_elements


def _parse_time(text: str, source: str | os.PathLike[str], what: str) -> datetime:
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1]
    # Python < 3.11 fromisoformat wants 0, 3 or 6 fraction digits
    if "." in t:
        head, frac = t.split(".", 1)
        t = f"{head}.{(frac + '000000')[:6]}"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError as exc:
        raise MetadataError(f"expected an ISO-8601 time in {what}, found {text!r}", source) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso_utc(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _int_value(text: str, source: str | os.PathLike[str], what: str) -> int:
    try:
        value = float(text.strip())
    except ValueError as exc:
        raise MetadataError(f"expected a number in {what}, found {text!r}", source) from exc
    if value != int(value):
        raise MetadataError(f"expected an integer in {what}, found {text!r}", source)
    return int(value)


class _Fields:
    """First-occurrence lookup of elements by local name, with typed, loud getters."""

    def __init__(self, root: etree._Element, names: list[str], source: str | os.PathLike[str]):
        self.source = source
        self.all = first_elements(root, names)

    def elements(self, name: str) -> list[etree._Element]:
        return self.all.get(name, [])

    def text(self, *names: str, required: bool = False) -> str | None:
        for name in names:
            for el in self.all.get(name, []):
                if el.text and el.text.strip():
                    return el.text.strip()
        if required:
            raise MetadataError(
                f"expected element {' or '.join(names)} with a value, found none", self.source
            )
        return None

    def required(self, *names: str) -> str:
        value = self.text(*names, required=True)
        assert value is not None
        return value


_PSD_RE = re.compile(r"psd-(\d+)", re.IGNORECASE)


def _psd_version(root: etree._Element) -> str | None:
    ns = etree.QName(root).namespace or ""
    m = _PSD_RE.search(ns)
    if m:
        return m[1]
    if "pdgs.s2.esa.int" in ns:  # PSD 12 era namespace
        return "12"
    return None
