"""Element-tree helpers shared by render, detect, check and diff: paths, lines, element-level comparison."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from lxml import etree


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


def _line(el: etree._Element) -> int | None:
    line = el.sourceline
    return line if isinstance(line, int) else None


def _kids(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


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
