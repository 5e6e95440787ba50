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
  s2kit installs for each supported version (``Sen2Cor-02.10.01-Linux64.run`` for 2.10);
* :data:`DEM_KINDS` / :func:`default_dem_kind`: the DEMs a version can use (SRTM up to 2.11,
  Copernicus DEM GLO-30/GLO-90 from 2.12 on) and the one it uses unless told otherwise;
* :func:`gipp_version_attribute` / :func:`applies_boa_offset`: what a Sen2Cor release writes
  into an L2A's metadata (the version attribute, the -1000 BOA offset).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, get_args

from .errors import ConfigError, UsageError

__all__ = [
    "L1C_BASELINE",
    "default_output_baseline",
    "output_baseline",
    "BASELINE_GATE",
    "DEFAULT_VERSION",
    "DEM_KINDS",
    "INSTALLER_RELEASES",
    "SEN2COR_VERSION_FORMS",
    "SUPPORTED_VERSIONS",
    "Sen2CorVersion",
    "applies_boa_offset",
    "default_dem_kind",
    "gipp_version_attribute",
    "installer_file",
    "normalize_version",
    "sen2cor_version_from_gipp",
    "version_label",
    "version_prefix",
]

#: the values the config's ``sen2cor.version`` accepts
Sen2CorVersion = Literal["2.9", "2.10", "2.11", "2.12"]
SUPPORTED_VERSIONS: tuple[str, ...] = get_args(Sen2CorVersion)
DEFAULT_VERSION: Sen2CorVersion = "2.9"

#: Sen2Cor version -> first L1C processing baseline it must not process (2.9 ignores the
#: radiometric offset that baseline 04.00 introduced).
BASELINE_GATE: Mapping[str, tuple[int, int]] = {"2.9": (4, 0)}


#: supported version -> the release of ESA's Linux installer s2kit installs for it
INSTALLER_RELEASES: Mapping[str, str] = {
    "2.9": "02.09.00",
    "2.10": "02.10.01",
    "2.11": "02.11.00",
    "2.12": "02.12.03",  # ESA: step.esa.int/thirdparties/sen2cor/2.12.0/Sen2Cor-02.12.03-Linux64.run
}
if tuple(INSTALLER_RELEASES) != SUPPORTED_VERSIONS:  # pragma: no cover - a module that cannot import
    raise AssertionError("INSTALLER_RELEASES must name exactly the SUPPORTED_VERSIONS, in order")


#: supported version -> the DEM kinds it can use, the default first. Sen2Cor up to 2.11 reads
#: SRTM tiles (srtm_XX_YY.tif); 2.12 reads the Copernicus DEM (its L2A_GIPP.xml names
#: DEM_Reference 'CDSE-GLO-30' or 'CDSE-GLO-90') and no longer SRTM. "none": no DEM at all.
DEM_KINDS: Mapping[str, tuple[str, ...]] = {
    "2.9": ("srtm", "none"),
    "2.10": ("srtm", "none"),
    "2.11": ("srtm", "none"),
    "2.12": ("cop-dem-glo30", "cop-dem-glo90", "none"),
}
if tuple(DEM_KINDS) != SUPPORTED_VERSIONS:  # pragma: no cover - a module that cannot import
    raise AssertionError("DEM_KINDS must name exactly the SUPPORTED_VERSIONS, in order")


def default_dem_kind(version: str) -> str:
    """The DEM kind a supported *version* uses unless the config says otherwise
    (``srtm`` up to 2.11, ``cop-dem-glo30`` for 2.12)."""
    return DEM_KINDS[normalize_version(version)][0]


#: ``sen2cor.baseline = "l1c"``: each L2A gets its L1C's own processing baseline
L1C_BASELINE = "l1c"


def default_output_baseline(version: str) -> str:
    """``sen2cor.baseline`` when unset: ``03.00`` for a version with a baseline gate (2.9: it
    processes only L1C below 04.00, and its products never carry the -1000 offset), ``l1c`` for
    one that processes every baseline (2.10+: it writes the offset exactly for L1C >= 04.00, so
    the L2A must keep its L1C's side of 04.00 or validation fails ``offset-mismatch``)."""
    return "03.00" if version in BASELINE_GATE else L1C_BASELINE


def output_baseline(baseline: str, l1c_baseline: str | None) -> str | None:
    """The Baseline_Version one scene's GIPP gets: *baseline*, or the L1C's own for ``l1c``
    (None when that is unknown)."""
    return l1c_baseline if baseline == L1C_BASELINE else baseline


def installer_file(version: str) -> str:
    """ESA's Linux installer for a supported *version* (``2.9`` -> ``Sen2Cor-02.09.00-Linux64.run``)."""
    return f"Sen2Cor-{INSTALLER_RELEASES[version]}-Linux64.run"


_ASCII_DIGITS_RE = re.compile(r"[0-9]+")
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
    # ASCII digits only: str.isdigit() also takes '²' (int() then fails) and '٢'
    if not 2 <= len(parts) <= 3 or not all(_ASCII_DIGITS_RE.fullmatch(p) for p in parts):
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


def gipp_version_attribute(release: str) -> str:
    """``GIP_L2ACSC/@version`` a Sen2Cor *release* writes into an L2A's metadata.

    The rule above applied to the processor version as each release spells it: ``2.9.0``
    (one-digit minor: no padding) -> ``0290``; ``2.10.01``/``2.12.03`` (two-digit patch) ->
    ``21001``/``21203``. *release* is a release (``02.12.03``, ``2.12.3``) or a supported
    label (``2.12`` -> its installer release, :data:`INSTALLER_RELEASES`).
    """
    text = release.strip()
    if text in INSTALLER_RELEASES:
        text = INSTALLER_RELEASES[text]
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) <= 2 for p in parts):
        raise ConfigError(f"expected a Sen2Cor release such as 2.12.03, found {release!r}")
    major, minor, patch = (int(p) for p in parts)
    spelled = f"{major}{minor}{patch}" if minor < 10 else f"{major}{minor}{patch:02d}"
    return f"{int(spelled):04d}"


def applies_boa_offset(version: str, baseline: tuple[int, int]) -> bool:
    """Whether Sen2Cor *version* writes the -1000 BOA_ADD_OFFSET for an L1C of *baseline*:
    versions not gated by :data:`BASELINE_GATE` (2.10 on) handle baselines >= 04.00 and apply
    the offset there; older baselines carry none."""
    label = normalize_version(version)
    return label not in BASELINE_GATE and baseline >= (4, 0)


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
