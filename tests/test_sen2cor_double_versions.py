"""The Sen2Cor TEST DOUBLE's version mode (``S2KIT_DOUBLE_VERSION``, CONTRACTS issue 18): the
GIP_L2ACSC version attribute by s2kit.versions' rule, the -1000 BOA offsets of 2.10+ on a
baseline >= 04.00 L1C, and the DEM_Reference of its GIPP echoed into the L2A metadata.

The double is NOT Sen2Cor; these tests keep it in line with what s2kit expects of real releases.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from s2kit.gipp import GippSettings, render_gipp
from s2kit.safe import read_metadata_file
from s2kit.validate import validate_product
from s2kit.versions import (
    INSTALLER_RELEASES,
    SUPPORTED_VERSIONS,
    applies_boa_offset,
    gipp_version_attribute,
    sen2cor_version_from_gipp,
)
from tests.support.safe_trees import build_l1c_tree
from tests.support.standins import DOUBLE


def run_double(
    tmp_path: Path,
    l1c: Path,
    *,
    version: str | None,
    gipp: dict[str, bytes] | None = None,
    cr_only: bool = True,
) -> Path:
    home = tmp_path / "home"
    (home / "cfg").mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    args = [sys.executable, str(DOUBLE), str(l1c), "--output_dir", str(out)]
    if gipp is not None:
        for name, data in gipp.items():
            (home / "cfg" / name).write_bytes(data)
        args += [
            "--GIP_L2A",
            str(home / "cfg" / "L2A_GIPP.xml"),
            "--GIP_L2A_PB",
            str(home / "cfg" / "L2A_PB_GIPP.xml"),
        ]
    if cr_only:
        args.append("--cr_only")
    env = {k: v for k, v in os.environ.items() if not k.startswith("S2KIT_DOUBLE")}
    env["SEN2COR_HOME"] = str(home)
    if version is not None:
        env["S2KIT_DOUBLE_VERSION"] = version
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (product,) = sorted(out.glob("S2*_MSIL2A_*.SAFE"))
    return product


def mtd_text(product: Path) -> str:
    return (product / "MTD_MSIL2A.xml").read_text(encoding="utf-8")


def gipp_versions(product: Path) -> set[str]:
    return set(re.findall(r'type="GIP_L2AC[SA]C" version="([^"]*)"', mtd_text(product)))


@pytest.fixture(scope="module")
def l1c_0509(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_l1c_tree(tmp_path_factory.mktemp("l1c"), "05.09")


def test_double_release_table_is_the_installer_releases_of_s2kit_versions() -> None:
    tree = ast.parse(DOUBLE.read_text(encoding="utf-8"))
    (table,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["RELEASES"]
    ]
    assert table == dict(INSTALLER_RELEASES)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_double_writes_the_version_attribute_and_offsets_of_the_version_it_plays(
    tmp_path: Path, l1c_0509: Path, version: str
) -> None:
    product = run_double(tmp_path, l1c_0509, version=version)
    assert gipp_versions(product) == {gipp_version_attribute(version)}
    assert sen2cor_version_from_gipp(gipp_version_attribute(version)) == INSTALLER_RELEASES[version]
    offsets = re.findall(r'<BOA_ADD_OFFSET band_id="\d+">(-?\d+)</BOA_ADD_OFFSET>', mtd_text(product))
    assert offsets == (["-1000"] * 13 if applies_boa_offset(version, (5, 9)) else [])
    md = read_metadata_file(product / "MTD_MSIL2A.xml")
    assert getattr(md, "sen2cor_version", None) == INSTALLER_RELEASES[version]


def test_double_without_a_version_still_plays_29(tmp_path: Path, l1c_0509: Path) -> None:
    product = run_double(tmp_path, l1c_0509, version=None)
    assert gipp_versions(product) == {"0290"}
    assert "<BOA_ADD_OFFSET_VALUES_LIST>" not in mtd_text(product)


def test_double_212_writes_no_offsets_for_a_pre_0400_l1c(tmp_path: Path) -> None:
    l1c = build_l1c_tree(tmp_path / "l1c", "03.01")
    product = run_double(tmp_path, l1c, version="2.12")
    assert gipp_versions(product) == {"21203"}
    assert "<BOA_ADD_OFFSET_VALUES_LIST>" not in mtd_text(product)


def test_double_accepts_a_release_and_refuses_a_non_version(tmp_path: Path, l1c_0509: Path) -> None:
    assert gipp_versions(run_double(tmp_path / "a", l1c_0509, version="2.12.02")) == {"21202"}
    env = {**os.environ, "S2KIT_DOUBLE_VERSION": "two.twelve", "SEN2COR_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(DOUBLE), str(l1c_0509), "--output_dir", str(tmp_path), "--cr_only"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "is no Sen2Cor version" in proc.stdout


@pytest.mark.parametrize(
    ("version", "kind", "recorded"),
    [
        ("2.12", "cop-dem-glo30", "CDSE-GLO-30"),
        ("2.12", "cop-dem-glo90", "CDSE-GLO-90"),
        ("2.9", "srtm", "/srv/dem/33TVM/"),
        ("2.12", None, "NONE"),
    ],
)
def test_double_records_the_dem_reference_of_its_gipp(
    tmp_path: Path, l1c_0509: Path, version: str, kind: str | None, recorded: str
) -> None:
    """Real L2A metadata names the DEM in PRODUCTION_DEM_TYPE (the PB 02.12 fixture: its DEM
    folder); the double echoes the DEM_Reference of the GIPP it was given, not the template's."""
    dem_dir = "/srv/dem/33TVM" if kind else None
    gipp = render_gipp(GippSettings(sen2cor=version, dem_dir=dem_dir, dem_kind=kind, baseline="05.09"))
    product = run_double(tmp_path, l1c_0509, version=version, gipp=gipp)
    assert re.findall(r"<PRODUCTION_DEM_TYPE>([^<]*)<", mtd_text(product)) == [recorded]


def test_double_212_product_of_a_0509_l1c_validates_as_sen2cor_212(tmp_path: Path, l1c_0509: Path) -> None:
    gipp = render_gipp(GippSettings(sen2cor="2.12", dem_dir="/srv/dem", baseline="05.09"))
    product = run_double(tmp_path, l1c_0509, version="2.12", gipp=gipp, cr_only=False)
    report = validate_product(product, expect_sen2cor="2.12")
    assert report.findings == [] and report.sen2cor_version == "02.12.03"
    assert [f.code for f in validate_product(product, expect_sen2cor="2.9").findings] == [
        "sen2cor-version-mismatch"
    ]
