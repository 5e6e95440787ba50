"""``check_gipp`` / ``diff_gipp`` / ``detect_version`` on every real GIPP and on planted defects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from s2kit import gipp
from s2kit.errors import ConfigError, InputError, MetadataError, UnsafeXMLError
from s2kit.gipp import GippSettings, check_gipp, diff_gipp, render_gipp
from tests.support import REPO

GIPPS = REPO / "data" / "fixtures" / "gipp"
REAL = sorted(p.name for p in GIPPS.glob("*.xml"))
EWOC = (GIPPS / "sen2cor-2.9.0_L2A_GIPP_user-edited_ewoc.xml").read_bytes()
NO_ENV: dict[str, str] = {}


def codes(report: gipp.GippReport) -> list[str]:
    return [f.code for f in report.findings]


# --------------------------------------------------------------------------- every real GIPP
def test_there_are_twelve_real_gipps() -> None:
    assert len(REAL) == 12


@pytest.mark.parametrize("name", REAL)
@pytest.mark.parametrize("version", [None, "2.9"], ids=["detected", "as-2.9"])
def test_check_every_real_gipp(data_regression, name: str, version: str | None) -> None:
    """Detected version, XSD result and findings; and the same file dropped into a 2.9 install."""
    report = check_gipp(GIPPS / name, version=version, env=NO_ENV, name=name)
    data_regression.check(report.to_dict())


@pytest.mark.parametrize("name", REAL)
def test_diff_every_real_gipp_against_29(data_regression, name: str) -> None:
    diff = diff_gipp(GIPPS / name, version="2.9", name=name)
    data_regression.check(diff.to_dict())


EXPECTED_DETECTION = {
    "sen2cor-2.10.01_L2A_CAL_AC_GIPP_win-install.xml": (None, ("2.9", "2.10", "2.11", "2.12")),
    "sen2cor-2.10.01_L2A_CAL_SC_GIPP_win-install.xml": (None, ("2.10", "2.11", "2.12")),
    "sen2cor-2.10.01_L2A_GIPP_pristine_win-install.xml": ("2.10", ("2.10", "2.11")),
    "sen2cor-2.10.01_L2A_PB_GIPP_win-install.xml": ("2.10", ("2.10", "2.11")),
    "sen2cor-2.12.0_L2A_GIPP_brazil-data-cube.xml": ("2.12", ("2.12",)),
    "sen2cor-2.5.5_L2A_GIPP_brazil-data-cube.xml": ("pre-2.8", ("pre-2.8",)),
    "sen2cor-2.8.0_L2A_CAL_AC_GIPP_c-core-labs.xml": (None, ("2.9", "2.10", "2.11", "2.12")),
    "sen2cor-2.8.0_L2A_CAL_SC_GIPP_c-core-labs.xml": ("2.9", ("2.9",)),
    "sen2cor-2.8.0_L2A_GIPP_pristine_c-core-labs.xml": ("2.8", ("2.8",)),
    "sen2cor-2.8.0_L2A_PB_GIPP_c-core-labs.xml": ("2.8", ("2.8",)),
    "sen2cor-2.9.0_L2A_GIPP_pristine_brazil-data-cube.xml": ("2.9", ("2.9",)),
    "sen2cor-2.9.0_L2A_GIPP_user-edited_ewoc.xml": ("2.9", ("2.9",)),
}


@pytest.mark.parametrize("name", REAL)
def test_detect_version_of_every_real_gipp(name: str) -> None:
    guess = gipp.detect_version(GIPPS / name)
    assert (guess.version, guess.candidates) == EXPECTED_DETECTION[name]


@pytest.mark.parametrize("name", [n for n in REAL if "2.9.0" in n or "2.10.01" in n])
def test_real_29_and_210_gipps_pass_their_xsd(name: str) -> None:
    report = check_gipp(GIPPS / name, env=NO_ENV)
    assert report.xsd_valid is True
    assert not [f for f in report.findings if f.code in ("xsd-invalid", "element-order", "unknown-element")]


@pytest.mark.parametrize("name", [n for n in REAL if "2.8.0_L2A_GIPP" in n or "2.8.0_L2A_PB" in n])
def test_stale_28_files_are_a_version_mismatch_for_a_29_install(name: str) -> None:
    report = check_gipp(GIPPS / name, version="2.9", env=NO_ENV)
    assert "version-mismatch" in codes(report)
    assert report.failed()


def test_210_file_in_a_29_install_names_every_unknown_element() -> None:
    report = check_gipp(
        GIPPS / "sen2cor-2.10.01_L2A_GIPP_pristine_win-install.xml", version="2.9", env=NO_ENV
    )
    unknown = [f.element for f in report.findings if f.code == "unknown-element"]
    assert unknown == [f"Common_Section/{t}" for t in gipp.detect._L2A_210_MARKERS]
    assert report.xsd_valid is False
    assert "xsd-invalid" not in codes(report)  # explained by the structural findings


def test_version_flag_211_accepts_a_210_file() -> None:
    report = check_gipp(
        GIPPS / "sen2cor-2.10.01_L2A_GIPP_pristine_win-install.xml", version="2.11", env=NO_ENV
    )
    assert report.version == "2.11" and report.version_source == "flag"
    assert "version-mismatch" not in codes(report) and report.xsd_valid


def test_check_does_not_flag_the_cdse_dem_reference_of_212_as_a_missing_slash(tmp_path: Path) -> None:
    """Sen2Cor 2.12 takes DEM_Reference 'CDSE-GLO-30' as a label (its GIPP comment), not as a
    prefix it appends srtm_XX_YY.zip to; the same value for 2.11 is still the SRTM defect."""
    dem = tmp_path / "cop"
    dem.mkdir()
    l2a = render_gipp(GippSettings(sen2cor="2.12", dem_dir=str(dem), dem_kind="cop-dem-glo30"))[
        "L2A_GIPP.xml"
    ]
    assert codes(check_gipp(l2a, env=NO_ENV)) == []
    found = codes(check_gipp(l2a, version="2.11", env=NO_ENV))
    assert "dem-ref-no-trailing-slash" in found and "dem-dir-no-srtm" in found


def test_real_212_gipp_is_checked_as_212() -> None:
    report = check_gipp(GIPPS / "sen2cor-2.12.0_L2A_GIPP_brazil-data-cube.xml", env=NO_ENV)
    assert (report.version, report.version_source, report.xsd_valid) == ("2.12", "document", True)
    assert "version-unsupported" not in codes(report)


def test_diff_of_a_212_render_names_only_the_rendered_elements(tmp_path: Path) -> None:
    """gipp diff against the 2.12 template: the real 2.12 file has no changes; a Copernicus DEM
    render changes exactly the four rendered elements (DEM_Reference = the CDSE label)."""
    real = diff_gipp(GIPPS / "sen2cor-2.12.0_L2A_GIPP_brazil-data-cube.xml")
    assert (real.version, real.version_source, real.changes) == ("2.12", "document", ())
    l2a = render_gipp(GippSettings(sen2cor="2.12", dem_dir="/d", dem_kind="cop-dem-glo90", threads=3))
    diff = diff_gipp(l2a["L2A_GIPP.xml"], name="L2A_GIPP.xml")
    changed = {c.to_dict()["element"]: c.to_dict() for c in diff.changes}
    assert set(changed) == {
        f"Common_Section/{t}"
        for t in ("Nr_Threads", "DEM_Directory", "DEM_Reference", "Force_Exit_On_DEM_Error")
    }
    assert "CDSE-GLO-90" in str(changed["Common_Section/DEM_Reference"])


# --------------------------------------------------------------------------- planted defects in the real user-edited copy
FORCE_TRUE = b"<Force_Exit_On_DEM_Error>TRUE</Force_Exit_On_DEM_Error>"
FE_LINE = b"    <Force_Exit_On_DEM_Error>TRUE</Force_Exit_On_DEM_Error>\n"
GD_LINE = b"    <Generate_DEM_Output>FALSE</Generate_DEM_Output>\n"


def _swap(data: bytes, a: bytes, b: bytes) -> bytes:
    assert data.count(a) == 1 and data.count(b) == 1
    return data.replace(a, b"\0").replace(b, a).replace(b"\0", b)


PLANTED = {
    "dem-without-force-exit": lambda d: d.replace(FORCE_TRUE, FORCE_TRUE.replace(b"TRUE", b"FALSE")),
    "element-order": lambda d: _swap(d, FE_LINE, GD_LINE),
    "unknown-element": lambda d: d.replace(b"Force_Exit_On_DEM_Error>", b"Force_Exit_On_DEM_Eror>"),
    "missing-element": lambda d: re.sub(
        rb"    <Region_Of_Interest>.*?</Region_Of_Interest>\n", b"", d, flags=re.S
    ),
    "duplicate-element": lambda d: d.replace(GD_LINE, GD_LINE * 2),
    "xsd-invalid": lambda d: d.replace(b"<Nr_Threads>AUTO<", b"<Nr_Threads>12<"),
    "value-whitespace": lambda d: d.replace(b"<DEM_Directory>dem/srtm<", b"<DEM_Directory>dem/srtm/ <"),
    "dem-ref-no-trailing-slash": lambda d: d.replace(b"srtm_5x5/TIFF/<", b"srtm_5x5/TIFF<"),
    "dem-reference-none": lambda d: re.sub(rb"<DEM_Reference>http[^<]*<", b"<DEM_Reference>NONE<", d),
    "threads-over-allocation": lambda d: d.replace(b"<Nr_Threads>AUTO<", b"<Nr_Threads>8<"),
}
ALREADY_IN_EWOC = ["dem-dir-no-trailing-slash", "dem-dir-relative", "dem-reference-remote", "threads-auto"]


def test_real_user_edited_29_gipp_findings() -> None:
    report = check_gipp(EWOC, env=NO_ENV)
    assert sorted(codes(report)) == sorted(ALREADY_IN_EWOC)
    assert [f.severity for f in report.findings if f.code == "dem-dir-no-trailing-slash"] == ["error"]
    assert report.failed()


@pytest.mark.parametrize("code", sorted(PLANTED))
def test_check_finds_each_defect_planted_in_the_real_user_edited_gipp(code: str) -> None:
    planted = PLANTED[code](EWOC)
    assert planted != EWOC
    assert code not in codes(check_gipp(EWOC, env={"LSB_DJOB_NUMPROC": "4"}))
    report = check_gipp(planted, env={"LSB_DJOB_NUMPROC": "4"}, name="planted.xml")
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, codes(report)
    assert found[0].severity == gipp.FINDING_CODES[code]
    assert found[0].line is not None and found[0].element


def test_baseline_9999_in_the_real_pb_gipps() -> None:
    for name in ("sen2cor-2.8.0_L2A_PB_GIPP_c-core-labs.xml", "sen2cor-2.10.01_L2A_PB_GIPP_win-install.xml"):
        report = check_gipp(GIPPS / name, env=NO_ENV)
        assert [f.code for f in report.errors][-1] == "baseline-9999"
    fixed = (GIPPS / "sen2cor-2.10.01_L2A_PB_GIPP_win-install.xml").read_bytes().replace(b"99.99", b"03.00")
    assert check_gipp(fixed, env=NO_ENV).findings == ()


def test_sc_with_a_changed_map_name() -> None:
    sc = gipp.template_bytes("2.9", "L2A_CAL_SC_GIPP").replace(b"v2.0.7.tif", b"v2.0.8.tif")
    report = check_gipp(sc, version="2.9", env=NO_ENV)
    assert codes(report) == ["aux-map-changed"]
    assert "ESACCI_LandCover_Map" in (report.findings[0].element or "")


def test_sc_that_matches_no_template_is_ambiguous_without_the_flag() -> None:
    sc = gipp.template_bytes("2.9", "L2A_CAL_SC_GIPP").replace(b"P13Y7D-2000-2012-v2.0", b"mine")
    assert "version-ambiguous" in codes(check_gipp(sc, env=NO_ENV))
    assert "version-ambiguous" not in codes(check_gipp(sc, version="2.10", env=NO_ENV))


# --------------------------------------------------------------------------- host-dependent lints
def _l2a(dem: str, threads: int | str = 2) -> bytes:
    return render_gipp(GippSettings(dem_dir=dem, threads=threads))["L2A_GIPP.xml"]


def test_dem_dir_missing_and_present(tmp_path: Path) -> None:
    dem = tmp_path / "dem dir" / "it's"
    assert codes(check_gipp(_l2a(str(dem)), env=NO_ENV)) == ["dem-dir-missing"]
    dem.mkdir(parents=True)
    assert codes(check_gipp(_l2a(str(dem)), env=NO_ENV)) == ["dem-dir-no-srtm"]
    (dem / "srtm_38_03.zip").write_bytes(b"PK")
    assert check_gipp(_l2a(str(dem)), env=NO_ENV).findings == ()


def test_relative_dem_dir_is_resolved_against_sen2cor_home(tmp_path: Path) -> None:
    (tmp_path / "dem" / "srtm").mkdir(parents=True)
    (tmp_path / "dem" / "srtm" / "srtm_01_01.tif").write_bytes(b"II")
    data = EWOC.replace(b"<DEM_Directory>dem/srtm<", b"<DEM_Directory>dem/srtm/<")
    found = codes(check_gipp(data, env={"SEN2COR_HOME": str(tmp_path)}))
    assert "dem-dir-relative" in found and "dem-dir-missing" not in found
    found = codes(check_gipp(data, env={"SEN2COR_HOME": str(tmp_path / "elsewhere")}))
    assert "dem-dir-missing" in found


@pytest.mark.parametrize(
    ("env", "threads", "expected"),
    [
        ({}, 8, []),
        ({"LSB_DJOB_NUMPROC": "8"}, 8, []),
        ({"LSB_DJOB_NUMPROC": "4"}, 8, ["threads-over-allocation"]),
        ({"SLURM_CPUS_PER_TASK": "2"}, 3, ["threads-over-allocation"]),
        ({"SLURM_CPUS_PER_TASK": "2"}, "AUTO", ["threads-auto"]),
        ({}, "AUTO", ["threads-auto"]),
    ],
)
def test_threads_lints(env: dict[str, str], threads: int | str, expected: list[str]) -> None:
    data = render_gipp(GippSettings(threads=threads))["L2A_GIPP.xml"]
    report = check_gipp(data, env=env)
    assert codes(report) == expected
    if expected == ["threads-over-allocation"]:
        assert next(iter(env)) in report.findings[0].message


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("version", ["2.9", "2.10", "2.11"])
def test_render_then_check_gives_no_error(tmp_path: Path, version: str) -> None:
    dem = tmp_path / "dem dir" / "it's"
    dem.mkdir(parents=True)
    (dem / "srtm_38_03.zip").write_bytes(b"PK")
    files = gipp.write_gipp_set(GippSettings(sen2cor=version, dem_dir=str(dem), threads=4), tmp_path / "cfg")
    for path in files:
        report = check_gipp(path, env={"LSB_DJOB_NUMPROC": "4"})
        assert report.findings == (), (path.name, codes(report))
        assert report.xsd_valid is True
        assert version in report.candidates or report.version == version


def test_render_then_diff_shows_exactly_the_edits_asked_for() -> None:
    settings = GippSettings(
        dem_dir="/srv/dem",
        threads=6,
        baseline="05.10",
        overrides=(
            ("Log_Level", "DEBUG"),
            ("//PSD_Scheme[2]/DS_Scheme_2A", "S2_other"),
            ("Snow_Map", "x.tif"),
        ),
    )
    files = render_gipp(settings)
    got = {
        name: [(c.element, c.change, c.template, c.file) for c in diff_gipp(data).changes]
        for name, data in files.items()
    }
    assert got == {
        "L2A_GIPP.xml": [
            ("Common_Section/Log_Level", "changed", "INFO", "DEBUG"),
            ("Common_Section/Nr_Threads", "changed", "AUTO", "6"),
            ("Common_Section/DEM_Directory", "changed", "NONE", "/srv/dem/"),
            ("Common_Section/DEM_Reference", "changed", "NONE", "/srv/dem/"),
            ("Common_Section/Force_Exit_On_DEM_Error", "changed", "FALSE", "TRUE"),
            (
                "Common_Section/PSD_Scheme[2]/DS_Scheme_2A",
                "changed",
                "S2_PDI_Level-2A_Datastrip_Metadata",
                "S2_other",
            ),
        ],
        "L2A_PB_GIPP.xml": [("DATA/Baseline_Version", "changed", "99.99", "05.10")],
        "L2A_CAL_SC_GIPP.xml": [
            ("Scene_Classification/References/Snow_Map", "changed", "GlobalSnowMap.tiff", "x.tif")
        ],
        "L2A_CAL_AC_GIPP.xml": [],
    }


@pytest.mark.parametrize("version", ["2.9", "2.10"])
def test_pristine_templates_diff_empty(version: str) -> None:
    for kind in gipp.KINDS:
        assert diff_gipp(gipp.template_bytes(version, kind), version=version).changes == ()


def test_diff_reports_moves_additions_and_removals() -> None:
    planted = PLANTED["element-order"](EWOC)
    planted = PLANTED["unknown-element"](planted)
    changes = {(c.element, c.change) for c in diff_gipp(planted).changes}
    assert ("Common_Section/Force_Exit_On_DEM_Error", "removed") in changes
    assert ("Common_Section/Force_Exit_On_DEM_Eror", "added") in changes
    moved = diff_gipp(PLANTED["element-order"](EWOC)).changes
    assert [(c.element, c.template, c.file) for c in moved if c.change == "moved"] == [
        ("Common_Section/Force_Exit_On_DEM_Error", "after <Generate_DEM_Output>", "after <DEM_Reference>")
    ]


def test_diff_needs_a_supported_version() -> None:
    with pytest.raises(ConfigError, match=r"found Sen2Cor 2.8 .*pass --sen2cor"):
        diff_gipp(GIPPS / "sen2cor-2.8.0_L2A_GIPP_pristine_c-core-labs.xml")


# --------------------------------------------------------------------------- bad input
BOMB = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n'
    b"<Level-2A_Ground_Image_Processing_Parameter>&lol2;</Level-2A_Ground_Image_Processing_Parameter>\n"
)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"not xml at all", MetadataError, "well-formed XML"),
        (b"", MetadataError, "well-formed XML"),
        (b"<a><b></a>", MetadataError, "well-formed XML"),
        (BOMB, UnsafeXMLError, "DOCTYPE"),
        (b"<Level-1C_User_Product/>", InputError, r"root element <Level-1C_User_Product>"),
        (b'<x:GS2_PROCESSING_BASELINE_PARAMETERS xmlns:x="urn:x"/>', InputError, "found root element"),
    ],
)
@pytest.mark.parametrize("func", [check_gipp, diff_gipp, gipp.detect_version])
def test_bad_input_raises_one_clear_error(func, data: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        func(data, name="bad.xml")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        check_gipp(tmp_path / "nope.xml")
    with pytest.raises(InputError, match="found a directory"):
        check_gipp(tmp_path)


def test_oversized_file_is_not_read(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    with big.open("wb") as fh:
        fh.truncate(5 * 1024 * 1024)
    with pytest.raises(InputError, match="expected GIPP XML ≤ 4 MiB, found ≥ 5242880 bytes"):
        check_gipp(big)


def test_unsupported_version_flag_is_an_error() -> None:
    with pytest.raises(ConfigError, match="Sen2Cor version"):
        check_gipp(EWOC, version="2.8")


def test_every_emitted_code_is_declared() -> None:
    source = "".join(p.read_text() for p in sorted((REPO / "s2kit" / "gipp").glob("*.py")))
    used = set(re.findall(r'_finding\(\s*"([a-z0-9-]+)"', source))
    assert used == set(gipp.FINDING_CODES)


@pytest.mark.parametrize(
    "reference", ["{dem}/", "http://data_public:GDdci@data.cgiar-csi.org/srtm/tiles/GeoTIFF/"]
)
def test_212_gipp_naming_an_srtm_dem_is_an_error_not_clean(tmp_path: Path, reference: str) -> None:
    """A 2.12 L2A_GIPP edited the 2.9-2.11 way (DEM_Directory = a folder of srtm_XX_YY tiles,
    DEM_Reference = that folder or the CGIAR SRTM URL) checked clean (0 errors, exit 0): a 2.12
    GIPP silently naming an SRTM DEM, which Sen2Cor 2.12 does not read (review1)."""
    dem = tmp_path / "srtm"
    dem.mkdir()
    (dem / "srtm_38_03.zip").write_bytes(b"PK")
    l2a = render_gipp(GippSettings(sen2cor="2.12", dem_dir=str(dem)))["L2A_GIPP.xml"]
    edited = l2a.replace(b"CDSE-GLO-30", reference.format(dem=dem).encode())
    report = check_gipp(edited, env=NO_ENV)
    assert report.version == "2.12" and report.failed()
    assert sorted(codes(report)) == ["dem-dir-srtm", "dem-reference-not-copdem"]
    # the 2.11 reading of the same file is the lab practice, without these findings
    assert not {"dem-dir-srtm", "dem-reference-not-copdem"} & set(codes(check_gipp(edited, version="2.11")))


def test_212_gipp_with_a_copernicus_dem_url_is_only_the_remote_warning(tmp_path: Path) -> None:
    dem = tmp_path / "cop"
    dem.mkdir()
    l2a = render_gipp(GippSettings(sen2cor="2.12", dem_dir=str(dem)))["L2A_GIPP.xml"]
    url = b"https://copernicus-dem-90m.s3.eu-central-1.amazonaws.com/"
    report = check_gipp(l2a.replace(b"CDSE-GLO-30", url), env=NO_ENV)
    assert (
        codes(report) == ["dem-reference-remote"]
        and "CDSE-GLO-30 or CDSE-GLO-90" in report.findings[0].message
    )
