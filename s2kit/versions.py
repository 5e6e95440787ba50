"""Sen2Cor versions: the ones s2kit supports, how a version is written, and what a version implies.

One owner for every fact about Sen2Cor versions:

* :data:`SUPPORTED_VERSIONS` / :data:`DEFAULT_VERSION` and :func:`normalize_version`
  (``2.9``, ``2.9.0``, ``02.09.00`` -> ``2.9``): the versions s2kit ships GIPP templates and
  installers for; the config's ``sen2cor.version`` accepts exactly :data:`Sen2CorVersion`;
* :func:`version_prefix` (``2.9`` -> ``02.09``): the prefix ``validate --expect-sen2cor`` matches;
* :data:`SEN2COR_VERSION_FORMS` / :func:`sen2cor_version_from_gipp`: the version attribute an
  L2A's metadata records (``GIP_L2ACSC/@version``) -> ``02.09.00``;
* :data:`BASELINE_GATE`: the first L1C processing baseline a version must not process;
* :data:`INSTALLER_RELEASES` / :func:`installer_file`: the release of ESA's Linux installer
  s2kit installs for each supported version (``Sen2Cor-02.10.01-Linux64.run`` for 2.10).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, get_args

from .errors import ConfigError, UsageError

__all__ = [
    "BASELINE_GATE",
    "DEFAULT_VERSION",
    "DEM_KINDS",
    "INSTALLER_RELEASES",
    "SEN2COR_VERSION_FORMS",
    "SUPPORTED_VERSIONS",
    "Sen2CorVersion",
    "default_dem_kind",
    "installer_file",
    "normalize_version",
    "sen2cor_version_from_gipp",
    "version_label",
    "version_prefix",
]

#: the values the config's ``sen2cor.version`` accepts
Sen2CorVersion = Literal["2.9", "2.10", "2.11"]
SUPPORTED_VERSIONS: tuple[str, ...] = get_args(Sen2CorVersion)
DEFAULT_VERSION: Sen2CorVersion = "2.9"

#: Sen2Cor version -> first L1C processing baseline it must not process (2.9 ignores the
#: radiometric offset that baseline 04.00 introduced).
BASELINE_GATE: Mapping[str, tuple[int, int]] = {"2.9": (4, 0)}

#: Sen2Cor version -> the DEM kinds it can use (``sen2cor.dem``), the default first: up to 2.11
#: the SRTM 5x5 degree zips, from 2.12 the Copernicus DEM (issue 18, CONTRACTS)
DEM_KINDS: Mapping[str, tuple[str, ...]] = {
    "2.9": ("srtm", "none"),
    "2.10": ("srtm", "none"),
    "2.11": ("srtm", "none"),
    "2.12": ("cop-dem-glo30", "cop-dem-glo90", "none"),
}


def default_dem_kind(version: str) -> str:
    """The DEM kind *version* uses when ``sen2cor.dem`` is not set: ``srtm`` up to 2.11,
    ``cop-dem-glo30`` for 2.12."""
    return DEM_KINDS[version][0]


#: supported version -> the release of ESA's Linux installer s2kit installs for it
INSTALLER_RELEASES: Mapping[str, str] = {"2.9": "02.09.00", "2.10": "02.10.01", "2.11": "02.11.00"}
if tuple(INSTALLER_RELEASES) != SUPPORTED_VERSIONS:  # pragma: no cover - a module that cannot import
    raise AssertionError("INSTALLER_RELEASES must name exactly the SUPPORTED_VERSIONS, in order")


def installer_file(version: str) -> str:
    """ESA's Linux installer for a supported *version* (``2.9`` -> ``Sen2Cor-02.09.00-Linux64.run``)."""
    return f"Sen2Cor-{INSTALLER_RELEASES[version]}-Linux64.run"


_VERSION_RE = re.compile(r"^\s*0*([0-9]+)\.0*([0-9]+)(?:\.[0-9]+)*\s*\Z")


def version_label(text: str) -> str | None:
    """``02.09.00`` / ``2.9.0`` / ``2.9`` -> ``2.9``; None when it is not a version."""
    match = _VERSION_RE.match(text)
    return f"{int(match[1])}.{int(match[2])}" if match else None


def normalize_version(text: str) -> str:
    """A supported Sen2Cor version as ``major.minor`` (accepts ``2.9``, ``2.9.0``, ``02.09.00``)."""
    label = version_label(text)
    if label is None:
        raise ConfigError(f"expected a Sen2Cor version such as 2.9 or 02.09.00, found {text!r}")
    if label not in SUPPORTED_VERSIONS:
        raise ConfigError(
            f"expected a Sen2Cor version s2kit has GIPP templates for "
            f"({', '.join(SUPPORTED_VERSIONS)}), found {text!r}"
        )
    return label


def version_prefix(text: str) -> str:
    """``"2.9"`` -> ``"02.09"``, ``"2.10.01"`` -> ``"02.10.01"`` (prefix used for matching)."""
    parts = text.strip().split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise UsageError(f"expected a Sen2Cor version like 2.9 or 2.10.01, found {text!r}")
    return ".".join(f"{int(p):02d}" for p in parts)


# Sen2Cor writes GIPP_FILENAME[@type='GIP_L2ACSC']/@version as
# '%04d' % int(processorVersion.replace('.', '')) (L2A_ProcessDataStrip in the 2.8
# sources): 2.8.0 -> "0280", 2.9.0 -> "0290", 2.10.01 -> "21001", 2.12.02 -> "21202".
# ESA's PB 04.00 products wrote a 7-digit zero-padded variant ("0021001").
# Only forms seen in real products (see data/fixtures) or produced by that rule
# for a released Sen2Cor version are listed; anything else maps to None.
SEN2COR_VERSION_FORMS: Mapping[str, str] = {
    "0255": "02.05.05",
    "0280": "02.08.00",  # real: PB 02.12 ESA L2A
    "0282": "02.08.02",  # real: PB 02.14 ESA L2A
    "0290": "02.09.00",  # Sen2Cor 2.9.0 local output, by the rule above
    "2100": "02.10.00",
    "21001": "02.10.01",
    "0021001": "02.10.01",  # real: PB 04.00 ESA L2A
    "21003": "02.10.03",  # real: PB 05.09/05.10 ESA L2A
    "21100": "02.11.00",
    "21200": "02.12.00",
    "21202": "02.12.02",  # real: PB 05.11 ESA L2A
    "21203": "02.12.03",
}
_DOTTED_VERSION_RE = re.compile(r"^0?(\d)\.(\d{1,2})\.(\d{1,2})\Z", re.ASCII)


def sen2cor_version_from_gipp(version_attr: str | None) -> str | None:
    """Map the GIP_L2ACSC ``version`` attribute to ``"02.09.00"`` style; None if unknown."""
    if not version_attr:
        return None
    v = version_attr.strip()
    if v in SEN2COR_VERSION_FORMS:
        return SEN2COR_VERSION_FORMS[v]
    m = _DOTTED_VERSION_RE.match(v)
    if m:
        return f"{int(m[1]):02d}.{int(m[2]):02d}.{int(m[3]):02d}"
    return None
