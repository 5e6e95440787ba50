"""Render a GIPP set (pure, XSD-validated), write it atomically, and the L2A_Process options that use it."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from ..errors import ConfigError, InputError
from ..fsutil import written_beside
from ..versions import DEFAULT_VERSION, normalize_version
from ..xmlsafe import parse_xml
from .check import Finding, check_gipp
from .settings import (
    COPDEM_REFERENCES,
    GippSettings,
    allocated_cores,
    check_dem_kind,
    gipp_dem_reference,
    normalize_dem_dir,
    parse_set,
    threads_for_allocation,
)
from .templates import DEFAULT_BASELINE, KINDS, _template_root, _validation_errors, template_bytes
from .tree import _element_path

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


def _apply_override(
    docs: Mapping[str, etree._Element],
    name: str,
    value: str,
    version: str,
    owned: Mapping[str, str] = _OWNED,
) -> None:
    kind, el = _resolve_override(docs, name, version)
    tag = str(el.tag)
    if tag in owned:
        raise ConfigError(f"--set {name}: {tag} is rendered from the {owned[tag]} setting; use that instead")
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
        assert settings.dem_kind is not None  # GippSettings resolves it
        _set_text(
            l2a, "Common_Section/DEM_Reference", gipp_dem_reference(settings.dem_kind, dem), "L2A_GIPP.xml"
        )
    _set_text(
        l2a,
        "Common_Section/Force_Exit_On_DEM_Error",
        "TRUE" if settings.force_exit else "FALSE",
        "L2A_GIPP.xml",
    )
    _set_text(docs["L2A_PB_GIPP"], "DATA/Baseline_Version", settings.baseline, "L2A_PB_GIPP.xml")
    owned = dict(_OWNED)
    if settings.dem_dir is not None and settings.dem_kind in COPDEM_REFERENCES:
        # 2.12: DEM_Reference names the Copernicus DEM (CDSE-GLO-30/90) of --dem, which the
        # summary line reports; a --set would make the file say another DEM than that line
        owned["DEM_Reference"] = "dem (--dem)"
    for name, value in settings.overrides:
        _apply_override(docs, name, value, version, owned)

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
    current = target
    try:
        # all four written beside their names first, then renamed: a full or read-only folder
        # fails before any rename, never leaving a new L2A_GIPP.xml beside an old PB GIPP
        with contextlib.ExitStack() as stack:
            temps = []
            for name, data in files.items():
                current = target / name
                temps.append((stack.enter_context(written_beside(current, data)), current))
            for tmp, path in temps:
                current = path
                os.replace(tmp, path)
                written.append(path)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise InputError(f"expected to write the GIPP file, found {why}", current) from exc
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


@dataclass(frozen=True)
class WrittenGippSet:
    """What :func:`write_gipp_dir` wrote, and the findings :func:`check_gipp` notes on it."""

    out: Path
    settings: GippSettings
    paths: tuple[Path, ...]
    #: where Nr_Threads came from when it was not given (" (from LSB_DJOB_NUMPROC=4)"), else ""
    threads_note: str
    notes: tuple[tuple[str, Finding], ...]

    def lines(self) -> list[str]:
        """The files written, the settings, and the ``L2A_Process`` options that use them."""
        return [
            *(f"wrote {path}" for path in self.paths),
            self.settings.describe(self.threads_note),
            f"L2A_Process options: {shlex.join(sen2cor_gipp_args(self.out))}",
        ]


def write_gipp_dir(
    out: str | os.PathLike[str],
    *,
    sen2cor: str = DEFAULT_VERSION,
    dem_dir: str | None = None,
    threads: int | str | None = None,
    baseline: str = DEFAULT_BASELINE,
    force_exit_on_dem_error: bool | None = None,
    sets: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    dem_kind: str | None = None,
) -> WrittenGippSet:
    """Render and write the four GIPP files into *out*, then check them.

    *threads* None: the cores the batch system allocated (read from *env*, default
    ``os.environ``), capped to the version's maximum, 1 outside a job. *sets* are ``NAME=VALUE``
    overrides (:func:`parse_set`). *dem_kind*: the DEM in *dem_dir* (None: the version's default).
    """
    version = normalize_version(sen2cor)
    if dem_kind is not None and check_dem_kind(version, dem_kind) != "none" and dem_dir is None:
        # a DEM asked for by name and no folder to find it in: never rendered as "no DEM"
        raise ConfigError(
            f"dem: expected a DEM directory (--dem-dir) with the {dem_kind!r} DEM, found none; "
            "give --dem-dir, or --dem none to run without a DEM"
        )
    threads_note = ""
    if threads is None:
        chosen: int | str = threads_for_allocation(version, env)
        alloc = allocated_cores(env)
        threads_note = f" (from {alloc[1]}={alloc[0]})" if alloc else " (no LSF/Slurm allocation seen)"
    else:
        chosen = threads
    settings = GippSettings(
        sen2cor=version,
        dem_dir=dem_dir,
        threads=chosen,
        baseline=baseline,
        force_exit_on_dem_error=force_exit_on_dem_error,
        overrides=tuple(parse_set(item) for item in sets),
        dem_kind=dem_kind,
    )
    written = write_gipp_set(settings, out)
    notes = tuple(
        (path.name, f) for path in written for f in check_gipp(path, version=version, env=env).findings
    )
    return WrittenGippSet(Path(out), settings, tuple(written), threads_note, notes)
