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

Layout: :mod:`.templates` (templates, XSDs, reading a document), :mod:`.settings`
(:class:`GippSettings`), :mod:`.render`, :mod:`.detect`, :mod:`.check`, :mod:`.diff`, and
:mod:`.tree` (element paths, lines and the element-level comparison they share).
"""

from __future__ import annotations

from ..versions import DEFAULT_VERSION, SUPPORTED_VERSIONS, normalize_version
from .check import FINDING_CODES, Finding, GippFinding, GippReport, check_gipp, iter_report_lines
from .detect import VersionGuess, detect_version
from .diff import GippDiff, diff_gipp, iter_diff_lines
from .render import WrittenGippSet, render_gipp, sen2cor_gipp_args, write_gipp_dir, write_gipp_set
from .settings import (
    COPDEM_REFERENCES,
    GippSettings,
    allocated_cores,
    check_dem_kind,
    dem_reference,
    gipp_dem_reference,
    normalize_dem_dir,
    parse_set,
    parse_threads,
    threads_for_allocation,
)
from .templates import DEFAULT_BASELINE, KINDS, GippSource, load_xsd, template_bytes, threads_domain
from .tree import GippChange

__all__ = [
    "COPDEM_REFERENCES",
    "DEFAULT_BASELINE",
    "DEFAULT_VERSION",
    "FINDING_CODES",
    "KINDS",
    "SUPPORTED_VERSIONS",
    "Finding",
    "GippFinding",
    "GippChange",
    "GippSource",
    "WrittenGippSet",
    "GippDiff",
    "GippReport",
    "GippSettings",
    "VersionGuess",
    "allocated_cores",
    "check_dem_kind",
    "check_gipp",
    "dem_reference",
    "detect_version",
    "diff_gipp",
    "gipp_dem_reference",
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
    "write_gipp_dir",
    "write_gipp_set",
]
