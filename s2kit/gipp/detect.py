"""Which Sen2Cor version a GIPP document belongs to, from the document alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lxml import etree

from ..versions import SUPPORTED_VERSIONS
from ..versions import version_label as _version_label
from .templates import GippSource, _equivalent, _kind_of, _load, _template_root
from .tree import _diff_changes


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


@dataclass(frozen=True)
class GippAsVersion:
    """A GIPP file (``source``, ``kind``) taken as Sen2Cor ``version``, chosen by ``version_source``
    (``flag``: --sen2cor, ``document``: detected); what :class:`~s2kit.gipp.GippReport` and
    :class:`~s2kit.gipp.GippDiff` start with."""

    source: str
    kind: str
    version: str | None
    version_source: Literal["flag", "document"] | None

    def _head(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "kind": self.kind,
            "version": self.version,
            "version_source": self.version_source,
        }


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
