"""``render_gipp`` / ``write_gipp_set``: golden files over the option matrix, and the rules behind them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from s2kit import gipp
from s2kit.errors import ConfigError, InputError, S2kitError
from s2kit.gipp import GippSettings, render_gipp, write_gipp_set
from s2kit.xmlsafe import parse_xml

DEM = "/data/dem dir/it's"  # blanks and a quote on purpose
FILES = ("L2A_GIPP.xml", "L2A_PB_GIPP.xml", "L2A_CAL_SC_GIPP.xml", "L2A_CAL_AC_GIPP.xml")
ESACCI_29 = (
    "ESACCI-LC-L4-LCCS-Map-300m-P1Y-2015-v2.0.7.tif",
    "ESACCI-LC-L4-WB-Map-150m-P13Y-2000-v4.0.tif",
    "ESACCI-LC-L4-Snow-Cond-500m-P13Y7D-2000-2012-v2.0",
)


def text_of(data: bytes, path: str) -> str | None:
    return parse_xml(data, "<t>").findtext(path)


# --------------------------------------------------------------------------- golden files
# L2A_GIPP depends on (version, DEM, threads); PB on (version, baseline); SC/AC on the version
# only -- test_options_touch_only_their_file proves that split, so the matrix below is complete.
@pytest.mark.parametrize("version", ["2.9", "2.10"])
@pytest.mark.parametrize("dem", [None, DEM], ids=["nodem", "dem"])
@pytest.mark.parametrize("threads", [1, 8, "AUTO"])
def test_golden_l2a_gipp(file_regression, version: str, dem: str | None, threads: int | str) -> None:
    files = render_gipp(GippSettings(sen2cor=version, dem_dir=dem, threads=threads))
    name = f"{version}_{'dem' if dem else 'nodem'}_threads-{threads}_L2A_GIPP"
    file_regression.check(files["L2A_GIPP.xml"].decode(), extension=".xml", basename=name)


# Sen2Cor 2.12 reads the Copernicus DEM: its DEM dimension is the DEM kind (DEM_Reference).
@pytest.mark.parametrize("dem", [None, "cop-dem-glo30", "cop-dem-glo90"])
@pytest.mark.parametrize("threads", [1, 8, "AUTO"])
def test_golden_l2a_gipp_212(file_regression, dem: str | None, threads: int | str) -> None:
    settings = GippSettings(sen2cor="2.12", dem_dir=DEM if dem else None, dem_kind=dem, threads=threads)
    name = f"2.12_{dem or 'nodem'}_threads-{threads}_L2A_GIPP"
    file_regression.check(render_gipp(settings)["L2A_GIPP.xml"].decode(), extension=".xml", basename=name)


@pytest.mark.parametrize("version", ["2.9", "2.10", "2.12"])
@pytest.mark.parametrize("baseline", [None, "05.10"], ids=["default", "explicit"])
def test_golden_pb_gipp(file_regression, version: str, baseline: str | None) -> None:
    kwargs = {} if baseline is None else {"baseline": baseline}
    files = render_gipp(GippSettings(sen2cor=version, **kwargs))
    name = f"{version}_baseline-{baseline or 'default'}_L2A_PB_GIPP"
    file_regression.check(files["L2A_PB_GIPP.xml"].decode(), extension=".xml", basename=name)


@pytest.mark.parametrize("version", ["2.9", "2.10", "2.12"])
@pytest.mark.parametrize("kind", ["L2A_CAL_SC_GIPP", "L2A_CAL_AC_GIPP"])
def test_golden_sc_ac_gipp(file_regression, version: str, kind: str) -> None:
    files = render_gipp(GippSettings(sen2cor=version, dem_dir=DEM, threads=8))
    file_regression.check(files[f"{kind}.xml"].decode(), extension=".xml", basename=f"{version}_{kind}")


def test_options_touch_only_their_file() -> None:
    base = render_gipp(GippSettings())
    l2a_only = render_gipp(GippSettings(dem_dir=DEM, threads=8, force_exit_on_dem_error=False))
    pb_only = render_gipp(GippSettings(baseline="05.10"))
    assert [n for n in FILES if base[n] != l2a_only[n]] == ["L2A_GIPP.xml"]
    assert [n for n in FILES if base[n] != pb_only[n]] == ["L2A_PB_GIPP.xml"]


# --------------------------------------------------------------------------- lab how-to edits
def test_default_29_render_contains_every_edit_of_the_lab_howto() -> None:
    files = render_gipp(GippSettings(sen2cor="2.9", dem_dir="/srv/dem/srtm", threads=4))
    l2a, pb, sc = files["L2A_GIPP.xml"], files["L2A_PB_GIPP.xml"], files["L2A_CAL_SC_GIPP.xml"]
    assert text_of(l2a, "Common_Section/DEM_Directory") == "/srv/dem/srtm/"
    assert text_of(l2a, "Common_Section/DEM_Reference") == "/srv/dem/srtm/"
    assert text_of(l2a, "Common_Section/Force_Exit_On_DEM_Error") == "TRUE"
    assert text_of(l2a, "Common_Section/Nr_Threads") == "4"
    assert text_of(pb, "DATA/Baseline_Version") == "03.00"
    assert text_of(pb, "DATA/Idp_Sc_List/Idp_Sc_Version") == "02.09.00"
    refs = parse_xml(sc, "<sc>").find("Scene_Classification/References")
    assert refs is not None
    assert [refs.findtext(t) for t in ("ESACCI_LandCover_Map", "ESACCI_WaterBodies_Map")] == list(
        ESACCI_29[:2]
    )
    assert refs.findtext("ESACCI_SnowCondition_Map_Dir") == ESACCI_29[2]


def test_render_passes_the_29_xsd_and_keeps_everything_else_byte_identical() -> None:
    files = render_gipp(GippSettings(dem_dir=DEM, threads=2))
    for name, data in files.items():
        kind = name[:-4]
        assert gipp.load_xsd("2.9", kind).validate(parse_xml(data, name))
        template = gipp.template_bytes("2.9", kind).splitlines()
        changed = [i for i, (a, b) in enumerate(zip(template, data.splitlines(), strict=True)) if a != b]
        assert len(changed) == {"L2A_GIPP": 4, "L2A_PB_GIPP": 1}.get(kind, 0), name


@pytest.mark.parametrize(
    ("given_dir", "written"),
    [
        ("/d", "/d/"),
        ("/d/", "/d/"),
        ("/d///", "/d/"),
        ("/", "/"),
        ("rel/dem", "rel/dem/"),
        (DEM + "/", DEM + "/"),
    ],
)
def test_dem_dir_gets_exactly_one_trailing_slash(given_dir: str, written: str) -> None:
    l2a = render_gipp(GippSettings(dem_dir=given_dir))["L2A_GIPP.xml"]
    assert text_of(l2a, "Common_Section/DEM_Directory") == written
    assert text_of(l2a, "Common_Section/DEM_Reference") == written


@pytest.mark.parametrize(
    ("dem", "flag", "expected"),
    [(None, None, "FALSE"), (DEM, None, "TRUE"), (DEM, False, "FALSE"), (None, True, "TRUE")],
)
def test_force_exit_defaults_to_true_with_a_dem(dem: str | None, flag: bool | None, expected: str) -> None:
    l2a = render_gipp(GippSettings(dem_dir=dem, force_exit_on_dem_error=flag))["L2A_GIPP.xml"]
    assert text_of(l2a, "Common_Section/Force_Exit_On_DEM_Error") == expected


def test_no_dem_keeps_the_template_none() -> None:
    l2a = render_gipp(GippSettings())["L2A_GIPP.xml"]
    assert text_of(l2a, "Common_Section/DEM_Directory") == "NONE"
    assert text_of(l2a, "Common_Section/DEM_Reference") == "NONE"


# --------------------------------------------------------------------------- Sen2Cor 2.12 and the Copernicus DEM
@pytest.mark.parametrize(
    ("kind", "reference"), [("cop-dem-glo30", "CDSE-GLO-30"), ("cop-dem-glo90", "CDSE-GLO-90")]
)
def test_212_dem_reference_is_the_cdse_label_of_the_real_212_gipp(kind: str, reference: str) -> None:
    """DEM_Reference is the label the real 2.12 L2A_GIPP.xml comment names, not the folder (as
    for SRTM); DEM_Directory is the staged folder."""
    l2a = render_gipp(GippSettings(sen2cor="2.12", dem_dir="/srv/dem/cop/32UMA", dem_kind=kind))[
        "L2A_GIPP.xml"
    ]
    assert text_of(l2a, "Common_Section/DEM_Directory") == "/srv/dem/cop/32UMA/"
    assert text_of(l2a, "Common_Section/DEM_Reference") == reference
    assert text_of(l2a, "Common_Section/Force_Exit_On_DEM_Error") == "TRUE"
    assert f"'{reference}'" in gipp.template_bytes("2.12", "L2A_GIPP").decode()


def test_212_default_dem_is_cop_dem_glo30() -> None:
    settings = GippSettings(sen2cor="2.12", dem_dir="/d")
    assert settings.dem_kind == "cop-dem-glo30"
    assert text_of(render_gipp(settings)["L2A_GIPP.xml"], "Common_Section/DEM_Reference") == "CDSE-GLO-30"
    assert "DEM_Reference CDSE-GLO-30" in settings.describe()


def test_srtm_dem_for_212_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        GippSettings(sen2cor="2.12", dem_dir="/d", dem_kind="srtm")
    assert "\n" not in exc.value.message
    assert (
        "dem:" in exc.value.message and "cop-dem-glo30" in exc.value.message and "'srtm'" in exc.value.message
    )


@pytest.mark.parametrize("version", ["2.9", "2.10", "2.11"])
def test_copernicus_dem_before_212_is_refused(version: str) -> None:
    with pytest.raises(ConfigError, match=r"dem: expected a DEM Sen2Cor .* \(srtm, none\)"):
        GippSettings(sen2cor=version, dem_dir="/d", dem_kind="cop-dem-glo30")


def test_dem_kind_none_with_a_dem_dir_is_refused() -> None:
    with pytest.raises(ConfigError, match="without a DEM"):
        GippSettings(sen2cor="2.12", dem_dir="/d", dem_kind="none")
    l2a = render_gipp(GippSettings(sen2cor="2.12", dem_kind="none"))["L2A_GIPP.xml"]
    assert text_of(l2a, "Common_Section/DEM_Directory") == "NONE"
    assert text_of(l2a, "Common_Section/DEM_Reference") == "NONE"


def test_212_render_changes_only_the_rendered_lines_of_the_real_212_gipp() -> None:
    files = render_gipp(GippSettings(sen2cor="2.12", dem_dir=DEM, threads=2))
    for name, data in files.items():
        kind = name[:-4]
        assert gipp.load_xsd("2.12", kind).validate(parse_xml(data, name))
        template = gipp.template_bytes("2.12", kind).splitlines()
        changed = [i for i, (a, b) in enumerate(zip(template, data.splitlines(), strict=True)) if a != b]
        assert len(changed) == {"L2A_GIPP": 4, "L2A_PB_GIPP": 1}.get(kind, 0), name
    assert text_of(files["L2A_PB_GIPP.xml"], "DATA/Idp_Sc_List/Idp_Sc_Version") == "02.12.03"


def test_srtm_versions_keep_the_folder_as_dem_reference() -> None:
    for version in ("2.9", "2.10", "2.11"):
        l2a = render_gipp(GippSettings(sen2cor=version, dem_dir="/d", dem_kind="srtm"))["L2A_GIPP.xml"]
        assert text_of(l2a, "Common_Section/DEM_Reference") == "/d/"


# --------------------------------------------------------------------------- versions
def test_211_renders_the_byte_identical_210_set() -> None:
    assert render_gipp(GippSettings(sen2cor="2.11", threads=3)) == render_gipp(
        GippSettings(sen2cor="2.10.01", threads=3)
    )


@pytest.mark.parametrize(
    ("given_version", "normal"),
    [
        ("2.9", "2.9"),
        ("2.9.0", "2.9"),
        ("02.09.00", "2.9"),
        ("2.10.01", "2.10"),
        ("2.11.0", "2.11"),
        ("2.12.03", "2.12"),
        ("02.12.00", "2.12"),
    ],
)
def test_version_spellings(given_version: str, normal: str) -> None:
    assert GippSettings(sen2cor=given_version).sen2cor == normal


@pytest.mark.parametrize("bad", ["2.8", "2.13", "3", "latest", ""])
def test_unsupported_versions_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="Sen2Cor version"):
        GippSettings(sen2cor=bad)


# --------------------------------------------------------------------------- threads & baseline
@pytest.mark.parametrize("version", ["2.9", "2.10", "2.11", "2.12"])
def test_threads_domain_is_read_from_the_xsd(version: str) -> None:
    assert gipp.threads_domain(version) == (frozenset({"AUTO"}), 1, 8)


@pytest.mark.parametrize(("value", "normal"), [(1, 1), ("8", 8), ("auto", "AUTO"), (" AUTO ", "AUTO")])
def test_threads_accepted(value: int | str, normal: int | str) -> None:
    assert GippSettings(threads=value).threads == normal


@pytest.mark.parametrize("value", [0, 9, 99, -1, "0", "99", "many", "", "4.0", True])
def test_threads_refused_with_the_allowed_range(value: int | str) -> None:
    with pytest.raises(ConfigError, match=r"must be AUTO or 1-8 .*L2A_GIPP.xsd"):
        GippSettings(threads=value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 1),
        ({"LSB_DJOB_NUMPROC": "4"}, 4),
        ({"SLURM_CPUS_PER_TASK": "6"}, 6),
        ({"LSB_DJOB_NUMPROC": "32"}, 8),
        ({"LSB_DJOB_NUMPROC": "x", "SLURM_CPUS_PER_TASK": "2"}, 2),
        ({"SLURM_CPUS_PER_TASK": "0"}, 1),
        ({"LSB_DJOB_NUMPROC": "\u00b2"}, 1),  # str.isdigit() is true for a superscript two
    ],
)
def test_threads_for_allocation(env: dict[str, str], expected: int) -> None:
    assert gipp.threads_for_allocation("2.9", env) == expected


@pytest.mark.parametrize(
    "value", ["3", "3.0", "03.0", "v03.00", "03.000", "99.99", "", "\u0660\u0663.\u0660\u0660"]
)
def test_baseline_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="Baseline_Version"):
        GippSettings(baseline=value)


@pytest.mark.parametrize("value", ["", " /d", "/d ", "NONE", "none"])
def test_dem_dir_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="DEM directory"):
        GippSettings(dem_dir=value)


@pytest.mark.parametrize(
    ("dem", "reference"),
    [
        ("/scratch/run%zz/task-1/dem", "/scratch/run%25zz/task-1/dem/"),
        ("/scratch/run[1]/dem", "/scratch/run%5B1%5D/dem/"),
        ("/scratch/a#b#c/dem", "/scratch/a%23b%23c/dem/"),
        ("/scratch/what?/dem", "/scratch/what%3F/dem/"),
        ("/scratch/a%41b/dem", "/scratch/a%2541b/dem/"),  # valid URI raw, but would decode to 'aAb'
    ],
)
def test_scratch_or_dem_path_with_percent_or_brackets_renders_a_valid_gipp(dem: str, reference: str) -> None:
    """Issue 12 item 14: DEM_Reference is xs:anyURI; the raw path failed the XSD, every scene failed.

    DEM_Directory (a plain path to Sen2Cor) stays as it is; DEM_Reference (read through urlopen,
    which percent-decodes) is the same folder percent-encoded, so it decodes to exactly that folder.
    """
    from urllib.request import url2pathname

    files = render_gipp(GippSettings(dem_dir=dem))
    l2a = parse_xml(files["L2A_GIPP.xml"], "L2A_GIPP.xml")
    assert gipp.load_xsd("2.9", "L2A_GIPP").validate(l2a)
    assert l2a.findtext("Common_Section/DEM_Directory") == dem + "/"
    assert l2a.findtext("Common_Section/DEM_Reference") == reference
    assert url2pathname(reference) == dem + "/"
    assert gipp.check_gipp(files["L2A_GIPP.xml"], name="L2A_GIPP.xml").errors == ()


def test_dem_reference_set_to_no_uri_fails_with_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"DEM_Reference must be a URI: write %, \?, #, \[ and \] as %25"):
        render_gipp(GippSettings(dem_dir="/data/dem", overrides=(("DEM_Reference", "/data/dem[1]/"),)))


# --------------------------------------------------------------------------- --set
def test_set_by_tag_name_and_by_xpath() -> None:
    files = render_gipp(
        GippSettings(
            overrides=(
                ("Log_Level", "DEBUG"),
                (
                    "/Level-2A_Ground_Image_Processing_Parameter/Common_Section/PSD_Scheme[2]/UP_Scheme_1C",
                    "S2_x",
                ),
                ("//Scene_Classification/References/Snow_Map", "my snow.tiff"),
            )
        )
    )
    l2a = parse_xml(files["L2A_GIPP.xml"], "l2a")
    assert l2a.findtext("Common_Section/Log_Level") == "DEBUG"
    assert [s.findtext("UP_Scheme_1C") for s in l2a.iter("PSD_Scheme")] == [
        "S2_User_Product_Level-1C_Metadata",
        "S2_x",
    ]
    assert text_of(files["L2A_CAL_SC_GIPP.xml"], "Scene_Classification/References/Snow_Map") == "my snow.tiff"


@pytest.mark.parametrize(
    ("name", "value", "expected_text"),
    [
        ("Cirrus_Correction", "true", "TRUE"),
        ("Cirrus_Correction", "yes", "TRUE"),
        ("Generate_TCI_Output", "0", "FALSE"),
        ("Scaling_Limiter", "FALSE", "false"),  # the AC GIPP uses xs:boolean: keep its case
    ],
)
def test_set_writes_booleans_in_the_files_own_convention(name: str, value: str, expected_text: str) -> None:
    files = render_gipp(GippSettings(overrides=((name, value),)))
    found = [el.text for data in files.values() for el in parse_xml(data, "x").iter(name)]
    assert found == [expected_text]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("No_Such_Element", "matches no element"),
        ("//Nope", "matches no element"),
        ("UP_Scheme_1C", r"matches 2 elements .*PSD_Scheme\[1\]/UP_Scheme_1C.*XPath"),
        ("References", "matches 2 elements"),  # in SC and in AC
        ("Common_Section", "has child elements"),
        ("Nr_Threads", r"threads \(--threads\)"),
        ("//DEM_Directory", r"dem_dir \(--dem-dir\)"),
        ("Baseline_Version", r"baseline \(--baseline\)"),
        ("Force_Exit_On_DEM_Error", "force-exit-on-dem-error"),
        ("//PSD_Scheme[1]/@PSD_Version", "must select elements"),
        ("count(//Log_Level)", "must select elements"),
        ("//[", "XPath error"),
    ],
)
def test_set_errors(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        render_gipp(GippSettings(overrides=((name, "1"),)))


def test_set_value_rejected_by_the_xsd_names_file_line_and_reason() -> None:
    with pytest.raises(
        ConfigError, match=r"rendered L2A_GIPP.xml fails the Sen2Cor 2.9 XSD .*line 4: .*LOUD"
    ):
        render_gipp(GippSettings(overrides=(("Log_Level", "LOUD"),)))


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("Log_Level=DEBUG", ("Log_Level", "DEBUG")),
        ("Log_Level=", ("Log_Level", "")),
        ("DEM_Reference=http://x/?a=b", ("DEM_Reference", "http://x/?a=b")),
        (
            "//PSD_Scheme[@PSD_Version='14.2']/UP_Scheme_1C=S2_y",
            ("//PSD_Scheme[@PSD_Version='14.2']/UP_Scheme_1C", "S2_y"),
        ),
        (" Log_Level =INFO", ("Log_Level", "INFO")),
    ],
)
def test_parse_set(text: str, pair: tuple[str, str]) -> None:
    assert gipp.parse_set(text) == pair


@pytest.mark.parametrize("text", ["Log_Level", "=x", " =x", ""])
def test_parse_set_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        gipp.parse_set(text)


def test_xpath_with_predicate_set_from_the_command_line_form() -> None:
    name, value = gipp.parse_set("//PSD_Scheme[@PSD_Version='14.2']/UP_Scheme_1C=S2_y")
    files = render_gipp(GippSettings(overrides=((name, value),)))
    assert [s.findtext("UP_Scheme_1C") for s in parse_xml(files["L2A_GIPP.xml"], "x").iter("PSD_Scheme")][
        0
    ] == "S2_y"


# --------------------------------------------------------------------------- purity & writing
def test_render_is_pure_and_repeatable() -> None:
    s = GippSettings(dem_dir=DEM, threads="AUTO", overrides=(("Log_Level", "DEBUG"),))
    first = render_gipp(s)
    assert list(first) == list(FILES)
    assert render_gipp(s) == first
    assert render_gipp(GippSettings()) != first  # no state leaks between calls
    assert render_gipp(s) == first
    assert hash(s) == hash(GippSettings(dem_dir=DEM, threads="auto", overrides=(("Log_Level", "DEBUG"),)))


def test_write_gipp_set_writes_the_rendered_bytes(tmp_path: Path) -> None:
    s = GippSettings(dem_dir=DEM, threads=2)
    out = tmp_path / "home" / "cfg"
    written = write_gipp_set(s, out)
    assert [p.name for p in written] == list(FILES)
    assert {p.name: p.read_bytes() for p in written} == render_gipp(s)
    assert sorted(os.listdir(out)) == sorted(FILES)  # no temp files left


def test_write_gipp_set_replaces_a_stale_set(tmp_path: Path) -> None:
    (tmp_path / "L2A_GIPP.xml").write_bytes(b"stale")
    write_gipp_set(GippSettings(threads=5), tmp_path)
    assert text_of((tmp_path / "L2A_GIPP.xml").read_bytes(), "Common_Section/Nr_Threads") == "5"


def test_write_gipp_set_writes_nothing_when_any_file_fails(tmp_path: Path) -> None:
    (tmp_path / "L2A_GIPP.xml").write_bytes(b"old")
    # L2A_GIPP and PB render fine, the third file (SC: NO_DATA must be 0) fails its XSD:
    # not even the valid files reach the disk
    bad = GippSettings(overrides=(("Log_Level", "DEBUG"), ("NO_DATA", "5")))
    with pytest.raises(ConfigError, match=r"L2A_CAL_SC_GIPP.xml fails .*NO_DATA"):
        write_gipp_set(bad, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["L2A_GIPP.xml"]
    assert (tmp_path / "L2A_GIPP.xml").read_bytes() == b"old"


def test_write_gipp_set_refuses_a_file_as_out_dir(tmp_path: Path) -> None:
    target = tmp_path / "cfg"
    target.write_text("x")
    with pytest.raises(InputError, match="output directory"):
        write_gipp_set(GippSettings(), target)


def test_sen2cor_gipp_args_point_at_every_file(tmp_path: Path) -> None:
    args = gipp.sen2cor_gipp_args(tmp_path / "cfg")
    assert args[0::2] == ["--GIP_L2A", "--GIP_L2A_PB", "--GIP_L2A_SC", "--GIP_L2A_AC"]
    assert args[1::2] == [str(tmp_path / "cfg" / n) for n in FILES]


def test_errors_are_s2kit_errors() -> None:
    assert issubclass(ConfigError, S2kitError)


# --------------------------------------------------------------------------- property
_path_char = st.characters(blacklist_categories=("Cs", "Cc", "Cn"))


def test_dem_folder_starting_with_two_slashes_rendered_an_invalid_dem_reference() -> None:
    """'//:' (found by the property test below) rendered DEM_Reference '//:/', which starts a URI
    authority and fails xs:anyURI; on Linux '//x' is '/x', written with one slash."""
    from s2kit.gipp.settings import dem_reference

    assert dem_reference("//:/") == "/:/"
    assert dem_reference("///a b/") == "/a b/"
    render_gipp(GippSettings(sen2cor="2.9", dem_dir="//:", threads=1))  # validates against the XSD


@settings(max_examples=60, deadline=None)
@given(
    dem=st.text(_path_char, min_size=1, max_size=30).map(lambda t: "/" + t.strip()),
    threads=st.one_of(st.integers(1, 8), st.just("AUTO")),
    version=st.sampled_from(["2.9", "2.10", "2.11"]),
)
def test_any_plain_path_renders_a_valid_set(dem: str, threads: int | str, version: str) -> None:
    from urllib.request import url2pathname

    files = render_gipp(GippSettings(sen2cor=version, dem_dir=dem, threads=threads))
    for name, data in files.items():
        root = parse_xml(data, name)
        assert gipp.load_xsd(version, name[:-4]).validate(root)
    l2a = parse_xml(files["L2A_GIPP.xml"], "x")
    assert l2a.findtext("Common_Section/DEM_Directory") == dem.rstrip("/") + "/"
    reference = l2a.findtext("Common_Section/DEM_Reference")
    same = "/" + (dem.rstrip("/") + "/").lstrip("/")  # a leading '//' is '/' on Linux
    assert reference is not None and url2pathname(reference) == same
    if not set(dem) & set("%?#[]"):
        assert reference == same  # an ordinary path is written as it is
    assert etree.tostring(l2a)  # serialisable again


def test_task_gipp_for_a_scratch_dir_with_percent_and_brackets_is_xsd_valid(tmp_path: Path) -> None:
    """Issue 12 item 14 through the worker's own chain: stage_dem into scratch, gipp_settings, render."""
    from urllib.request import url2pathname

    from s2kit.config import BatchConfig
    from s2kit.sen2cor import gipp_settings, stage_dem

    dem = tmp_path / "dem [1]" / "46RER"
    dem.mkdir(parents=True)
    (dem / "srtm_55_07.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    scratch = tmp_path / "scratch %zz [1] #x"
    cfg = BatchConfig.model_validate(
        {
            "paths": {
                "l1c_dirs": [str(tmp_path / "l1c")],
                "l2a_dir": str(tmp_path / "l2a"),
                "dem_dir": str(dem.parent),
                "scratch_dir": str(scratch),
                "run_dir": str(tmp_path / "run"),
            },
            "sen2cor": {"runtime": "native", "install_dir": str(tmp_path / "sen2cor")},
        }
    )
    staged = stage_dem(dem, cfg.paths.scratch_dir / "task-0" / "dem")
    files = render_gipp(gipp_settings(cfg, staged, 2))
    l2a = parse_xml(files["L2A_GIPP.xml"], "L2A_GIPP.xml")
    assert gipp.load_xsd("2.9", "L2A_GIPP").validate(l2a)
    assert l2a.findtext("Common_Section/DEM_Directory") == f"{staged}/"
    reference = l2a.findtext("Common_Section/DEM_Reference")
    assert reference is not None and url2pathname(reference) == f"{staged}/"
    assert Path(url2pathname(reference), "srtm_55_07.zip").is_file()  # where Sen2Cor fetches the zip


@pytest.mark.parametrize(("kind", "reference"), [(None, "CDSE-GLO-30"), ("cop-dem-glo90", "CDSE-GLO-90")])
def test_task_gipp_of_a_212_config_names_the_copernicus_dem(
    tmp_path: Path, kind: str | None, reference: str
) -> None:
    """A worker's GIPP for a 2.12 config: DEM_Reference is the CDSE label of the DEM kind (the
    version's default when none is given), DEM_Directory the staged folder; SRTM is refused."""
    from s2kit.config import BatchConfig
    from s2kit.sen2cor import gipp_settings

    cfg = BatchConfig.model_validate(
        {
            "paths": {
                "l1c_dirs": [str(tmp_path / "l1c")],
                "l2a_dir": str(tmp_path / "l2a"),
                "dem_dir": str(tmp_path / "dem"),
                "scratch_dir": str(tmp_path / "scratch"),
                "run_dir": str(tmp_path / "run"),
            },
            "sen2cor": {"version": "2.12", "runtime": "native", "install_dir": str(tmp_path / "sen2cor")},
        }
    )
    staged = tmp_path / "scratch" / "task-0" / "dem"
    l2a = parse_xml(
        render_gipp(gipp_settings(cfg, staged, 2, dem_kind=kind, baseline="05.09"))["L2A_GIPP.xml"],
        "L2A_GIPP.xml",
    )
    assert l2a.findtext("Common_Section/DEM_Directory") == f"{staged}/"
    assert l2a.findtext("Common_Section/DEM_Reference") == reference
    with pytest.raises(ConfigError, match="dem: expected a DEM Sen2Cor 2.12 can use"):
        gipp_settings(cfg, staged, 2, dem_kind="srtm", baseline="05.09")


def test_full_folder_mid_set_keeps_the_old_gipp_set_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder that filled up while the third file was written kept the new L2A_GIPP.xml and
    PB GIPP (2.12) beside the old SC/AC files (2.9), and said only "No space left on device"
    without a path (review1)."""
    import errno

    out = tmp_path / "cfg"
    old = {p.name: p.read_bytes() for p in write_gipp_set(GippSettings(sen2cor="2.9"), out)}
    real_fsync, calls = os.fsync, []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(
        InputError, match=r"cfg/L2A_\w+\.xml: expected to write the GIPP file, found No space"
    ):
        write_gipp_set(GippSettings(sen2cor="2.12", dem_dir="/data/dem"), out)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old  # no temp file left either
