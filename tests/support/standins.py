"""STAND-INS for the two big inputs of the Sen2Cor image, made by tests (never shipped, never L2A).

* :func:`make_standin_installer` -- a real makeself archive (Debian ``makeself``) laid out like
  ESA's ``Sen2Cor-02.09.00-Linux64.run``: a ``bin/L2A_Process`` launcher that sources
  ``L2A_Bashrc`` and runs the TEST DOUBLE of tests/sen2cor_double (installed as
  ``lib/python2.7/site-packages/sen2cor/L2A_Process.py``, its 3 real-ESA-metadata templates in
  ``site-packages/fixtures/``), ``sen2cor/{aux_data,cfg}`` and a startup script that, like the
  real one, needs ``file`` and writes ``L2A_Bashrc`` exporting a hard-coded
  ``SEN2COR_HOME=<installing user's $HOME>/sen2cor/<version>`` (and ``S2KIT_DOUBLE_VERSION=<version>``:
  the double plays the version the stand-in was built as), and creates that folder. Its
  name says STANDIN, so its sha256 never pins the real installer (pins are keyed by file name).
* :func:`make_standin_esacci` -- an ``ESACCI-LC-L4-ALL-FOR-SEN2COR`` zip with the real archive's
  shape (``CCI4SEN2COR/`` with two inner tars, macOS ``._`` junk) holding tiny global one-band
  uint8 WGS 84 GeoTIFFs under the real names (``s2kit aux esacci --check`` accepts them).
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from s2kit.versions import INSTALLER_RELEASES

from . import FIXTURES, TESTS

DOUBLE = TESTS / "sen2cor_double" / "bin" / "L2A_Process"
#: version -> ESA installer release (the stand-in is named like ESA's file of that release)
LONG = dict(INSTALLER_RELEASES)
STANDIN_NOTE = (
    "STAND-IN for ESA's Sen2Cor installer, built by tests/standins.py. bin/L2A_Process is the TEST DOUBLE "
    "tests/sen2cor_double/bin/L2A_Process: NOT ESA Sen2Cor, its output is not L2A data.\n"
)

_SETUP = """#!/bin/sh
# startup script of the STAND-IN Sen2Cor installer (tests/support/standins.py); runs inside --target
set -e
echo "STAND-IN Sen2Cor {version} installer (tests/standins.py) -- NOT ESA Sen2Cor"
command -v file >/dev/null || {{ echo "the installer needs 'file'" >&2; exit 1; }}
file -b bin/L2A_Process
here="$(pwd)"
# like ESA's installer: the installing user's $HOME is written into L2A_Bashrc, hard-coded
{{
  echo "export SEN2COR_HOME=$HOME/sen2cor/{version}"
  echo "export SEN2COR_BIN=$here/lib/python2.7/site-packages/sen2cor"
  echo "export LC_NUMERIC=C"
  echo "export S2KIT_DOUBLE_VERSION={version}"
}} > L2A_Bashrc
mkdir -p "$HOME/sen2cor/{version}/cfg"
echo "installed into $here"
"""

#: bin/L2A_Process of the stand-in: like ESA's launcher it sources L2A_Bashrc itself (so whatever
#: SEN2COR_HOME that file sets wins over the caller's), then runs the program (the TEST DOUBLE).
_LAUNCHER = """#!/bin/sh
# bin/L2A_Process of the STAND-IN Sen2Cor installer (tests/standins.py) -- NOT ESA Sen2Cor
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/L2A_Bashrc"
exec python3 "$SEN2COR_BIN/L2A_Process.py" "$@"
"""


@dataclass(frozen=True)
class StandIn:
    path: Path
    sha256: str


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def double_templates() -> list[Path]:
    """The fixture files the double reads (its FIXTURES / "<dir>" / "<name>" lines)."""
    text = DOUBLE.read_text(encoding="utf-8")
    found = re.findall(r'FIXTURES / "(\w+)" / "([^"]+)"', text)
    assert len(found) == 3, found
    return [FIXTURES / d / n for d, n in found]


def stage_standin(stage: Path, version: str = "2.9") -> Path:
    """The stand-in installer's payload in *stage*: what ``--target`` holds before ``setup.sh`` runs.

    Real layout: ``bin/L2A_Process`` sources ``L2A_Bashrc`` (written by ``setup.sh`` with the
    installing user's ``$HOME`` hard-coded in ``SEN2COR_HOME``) and runs the program, here the
    TEST DOUBLE at ``lib/python2.7/site-packages/sen2cor/L2A_Process.py`` (templates beside it in
    ``site-packages/fixtures``).
    """
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "bin").mkdir(parents=True)
    (stage / "bin" / "L2A_Process").write_text(_LAUNCHER)
    (stage / "bin" / "L2A_Process").chmod(0o755)
    pkg = stage / "lib" / "python2.7" / "site-packages" / "sen2cor"
    (pkg / "aux_data").mkdir(parents=True)
    (pkg / "cfg").mkdir()
    shutil.copy2(DOUBLE, pkg / "L2A_Process.py")
    for src in double_templates():
        (pkg.parent / "fixtures" / src.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, pkg.parent / "fixtures" / src.parent.name / src.name)
    (pkg / "aux_data" / "STANDIN.txt").write_text(STANDIN_NOTE)
    (stage / "STANDIN.txt").write_text(STANDIN_NOTE)
    (stage / "setup.sh").write_text(_SETUP.format(version=version))
    (stage / "setup.sh").chmod(0o755)
    return stage


def make_standin_installer(dest_dir: Path, version: str = "2.9") -> StandIn:
    """``dest_dir/Sen2Cor-<long>-Linux64.STANDIN.run`` (makeself, MD5 + SHA256 inside)."""
    if shutil.which("makeself") is None:
        raise RuntimeError("makeself is not installed (Debian: apt-get install makeself)")
    stage = stage_standin(dest_dir / f"standin-{version}", version)
    out = dest_dir / f"Sen2Cor-{LONG[version]}-Linux64.STANDIN.run"
    subprocess.run(
        [
            "makeself",
            "--nox11",
            "--sha256",
            "--quiet",
            str(stage),
            str(out),
            f"STAND-IN Sen2Cor {version} installer (tests/standins.py, NOT ESA Sen2Cor)",
            "./setup.sh",
        ],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(stage)
    return StandIn(out, sha256(out))


def corrupt_copy(src: Path, dest: Path) -> StandIn:
    """A copy of a makeself archive with one payload byte flipped (its own --check must fail)."""
    data = bytearray(src.read_bytes())
    pos = len(data) - 100
    data[pos] ^= 0xFF
    dest.write_bytes(bytes(data))
    dest.chmod(0o755)
    return StandIn(dest, sha256(dest))


# ---------------------------------------------------------------------------- ESACCI-LC
def _tiny_global_tif(width: int = 36, height: int = 18, value: int = 10) -> bytes:
    import numpy as np
    from rasterio.io import MemoryFile
    from rasterio.transform import from_bounds

    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:4326",
        "transform": from_bounds(-180, -90, 180, 90, width, height),
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(np.full((1, height, width), value, dtype=np.uint8))
        return bytes(mem.read())


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_standin_esacci(dest_dir: Path, weeks: int = 10) -> StandIn:
    """``dest_dir/ESACCI-LC-L4-ALL-FOR-SEN2COR.STANDIN.zip`` with the real names, tiny rasters."""
    from s2kit.esacci import LCCS_MAP, SNOW_DIR, SNOW_PATTERN, WB_MAP

    tif = _tiny_global_tif()
    snow = {
        f"{SNOW_DIR}/{(date(2000, 1, 1) + timedelta(days=7 * i)).strftime(SNOW_PATTERN)}": tif
        for i in range(weeks)
    }
    out = dest_dir / "ESACCI-LC-L4-ALL-FOR-SEN2COR.STANDIN.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("CCI4SEN2COR/ESACCI-LC-L4-ALL-FOR-SEN2COR.tar", _tar(snow))
        zf.writestr("CCI4SEN2COR/ESACCI-LC-L4-LCCS-WB-FOR-SEN2COR.tar", _tar({LCCS_MAP: tif, WB_MAP: tif}))
        zf.writestr("CCI4SEN2COR/._ESACCI-LC-L4-ALL-FOR-SEN2COR.tar", b"macOS resource fork")
        zf.writestr("CCI4SEN2COR/STANDIN.txt", "STAND-IN made by tests/standins.py: placeholder rasters\n")
    return StandIn(out, sha256(out))
