"""What a GIPP set is rendered from: :class:`GippSettings` and the parsing of its values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError
from ..versions import DEFAULT_VERSION, DEM_KINDS, default_dem_kind, normalize_version
from .templates import DEFAULT_BASELINE, threads_domain


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
    from ..schedulers.env import allocated_cores as scheduler_cores  # the schedulers own the variables

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
    A leading ``//`` (the same folder as ``/`` on Linux) is written as one ``/``: as a URI
    reference ``//`` starts an authority (``//:/`` is no valid ``xs:anyURI``).
    """
    if dem_dir.startswith("//"):
        dem_dir = "/" + dem_dir.lstrip("/")
    return "".join(_URI_ESCAPES.get(c, c) for c in dem_dir)


#: DEM kind -> the DEM_Reference Sen2Cor 2.12 expects for a previously downloaded Copernicus
#: DEM: "set <DEM_Reference> to 'CDSE-GLO-30' or 'CDSE-GLO-90' (resolution, 30/90, is
#: mandatory)" (the real 2.12 L2A_GIPP.xml, s2kit/templates/gipp/2.12/)
COPDEM_REFERENCES: Mapping[str, str] = {"cop-dem-glo30": "CDSE-GLO-30", "cop-dem-glo90": "CDSE-GLO-90"}


def check_dem_kind(version: str, kind: str | None, key: str = "dem") -> str:
    """*kind* (None: the version's default) checked against :data:`~s2kit.versions.DEM_KINDS`.

    One line naming *key* when the version cannot use it (SRTM for 2.12, Copernicus DEM up to 2.11).
    """
    version = normalize_version(version)
    if kind is None:
        return default_dem_kind(version)
    allowed = DEM_KINDS[version]
    if kind not in allowed:
        raise ConfigError(
            f"{key}: expected a DEM Sen2Cor {version} can use ({', '.join(allowed)}), found {kind!r}"
        )
    return kind


def gipp_dem_reference(kind: str, dem_dir: str) -> str:
    """``DEM_Reference`` for a DEM of *kind* staged in *dem_dir*: ``CDSE-GLO-30``/``CDSE-GLO-90``
    for the Copernicus DEM (Sen2Cor 2.12), else the folder as a URI (:func:`dem_reference`)."""
    return COPDEM_REFERENCES.get(kind) or dem_reference(dem_dir)


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
    ``dem_kind`` is the DEM in ``dem_dir`` (:data:`~s2kit.versions.DEM_KINDS`; None: the
    version's default, ``srtm`` up to 2.11, ``cop-dem-glo30`` for 2.12); it sets DEM_Reference.
    """

    sen2cor: str = DEFAULT_VERSION
    dem_dir: str | None = None
    threads: int | str = 1
    baseline: str = DEFAULT_BASELINE
    force_exit_on_dem_error: bool | None = None
    overrides: tuple[tuple[str, str], ...] = ()
    dem_kind: str | None = None

    def __post_init__(self) -> None:
        version = normalize_version(self.sen2cor)
        object.__setattr__(self, "sen2cor", version)
        object.__setattr__(self, "threads", parse_threads(self.threads, version))
        kind = check_dem_kind(version, self.dem_kind)
        object.__setattr__(self, "dem_kind", kind)
        if self.dem_dir is not None:
            normalize_dem_dir(self.dem_dir)
            if kind == "none":
                raise ConfigError(
                    f"dem: 'none' runs Sen2Cor {version} without a DEM, found a DEM directory "
                    f"{self.dem_dir!r} as well; give one or the other"
                )
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

    def describe(self, threads_note: str = "") -> str:
        """One line naming every rendered setting (what ``s2kit gipp render`` prints)."""
        dem = (
            f"DEM_Directory {self.dem_dir.rstrip('/')}/" if self.dem_dir is not None else "DEM_Directory NONE"
        )
        reference = COPDEM_REFERENCES.get(self.dem_kind or "")
        if self.dem_dir is not None and reference:
            dem += f", DEM_Reference {reference}"
        return (
            f"Sen2Cor {self.sen2cor}: Nr_Threads {self.threads}{threads_note}, {dem}, "
            f"Force_Exit_On_DEM_Error {'TRUE' if self.force_exit else 'FALSE'}, "
            f"Baseline_Version {self.baseline}" + (f", {len(self.overrides)} --set" if self.overrides else "")
        )
