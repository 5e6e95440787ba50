"""``s2kit gipp render|check|diff``: thin CLI over s2kit.gipp (CliRunner + one real subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from s2kit.cli import app
from s2kit.xmlsafe import parse_xml
from tests.support import REPO

GIPPS = REPO / "data" / "fixtures" / "gipp"
EWOC = GIPPS / "sen2cor-2.9.0_L2A_GIPP_user-edited_ewoc.xml"
PRISTINE_29 = GIPPS / "sen2cor-2.9.0_L2A_GIPP_pristine_brazil-data-cube.xml"
FILES = ["L2A_CAL_AC_GIPP.xml", "L2A_CAL_SC_GIPP.xml", "L2A_GIPP.xml", "L2A_PB_GIPP.xml"]
ALLOC_VARS = ("LSB_DJOB_NUMPROC", "SLURM_CPUS_PER_TASK", "SEN2COR_HOME")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for var in ALLOC_VARS:
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


@pytest.fixture
def dem(tmp_path: Path) -> Path:
    path = tmp_path / "dem dir" / "it's"
    path.mkdir(parents=True)
    (path / "srtm_38_03.zip").write_bytes(b"PK")
    return path


def text(path: Path, element: str) -> str | None:
    return parse_xml(path.read_bytes(), str(path)).findtext(element)


def stderr_of(result) -> str:
    return result.stderr if hasattr(result, "stderr") else result.output


# --------------------------------------------------------------------------- render
def test_render_defaults_with_a_dem(runner: CliRunner, tmp_path: Path, dem: Path) -> None:
    out = tmp_path / "home" / "cfg"
    result = runner.invoke(app, ["gipp", "render", "--out", str(out), "--dem-dir", str(dem)])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out)) == FILES
    assert text(out / "L2A_GIPP.xml", "Common_Section/DEM_Directory") == f"{dem}/"
    assert text(out / "L2A_GIPP.xml", "Common_Section/DEM_Reference") == f"{dem}/"
    assert text(out / "L2A_GIPP.xml", "Common_Section/Force_Exit_On_DEM_Error") == "TRUE"
    assert text(out / "L2A_GIPP.xml", "Common_Section/Nr_Threads") == "1"
    assert text(out / "L2A_PB_GIPP.xml", "DATA/Baseline_Version") == "03.00"
    assert "Nr_Threads 1 (no LSF/Slurm allocation seen)" in result.stdout
    assert f"--GIP_L2A_PB {out / 'L2A_PB_GIPP.xml'}" in result.stdout
    assert "s2kit: note" not in stderr_of(result)


def test_render_relative_dem_dir_becomes_absolute(
    runner: CliRunner, tmp_path: Path, dem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dem.parent)
    result = runner.invoke(app, ["gipp", "render", "--out", str(tmp_path / "cfg"), "--dem-dir", "it's//"])
    assert result.exit_code == 0, result.output
    assert text(tmp_path / "cfg" / "L2A_GIPP.xml", "Common_Section/DEM_Directory") == f"{dem}/"


def test_render_threads_default_to_the_allocation(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "16")
    result = runner.invoke(app, ["gipp", "render", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert text(tmp_path / "L2A_GIPP.xml", "Common_Section/Nr_Threads") == "8"
    assert "Nr_Threads 8 (from SLURM_CPUS_PER_TASK=16)" in result.stdout


def test_render_all_options(runner: CliRunner, tmp_path: Path, dem: Path) -> None:
    args = ["gipp", "render", "--sen2cor", "2.10", "--out", str(tmp_path), "--dem-dir", str(dem)]
    args += ["--threads", "auto", "--baseline", "05.10", "--no-force-exit-on-dem-error"]
    args += ["--set", "Log_Level=DEBUG", "--set", "//PSD_Scheme[@PSD_Version='14.2']/UP_Scheme_1C=S2_y"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    l2a = tmp_path / "L2A_GIPP.xml"
    assert text(l2a, "Common_Section/Nr_Threads") == "AUTO"
    assert text(l2a, "Common_Section/Force_Exit_On_DEM_Error") == "FALSE"
    assert text(l2a, "Common_Section/Log_Level") == "DEBUG"
    assert text(l2a, "Common_Section/Product_DOI")  # a 2.10 file
    assert text(tmp_path / "L2A_PB_GIPP.xml", "DATA/Baseline_Version") == "05.10"
    # the rendered set is checked and the consequences of these choices are shown
    err = stderr_of(result)
    assert "s2kit: note: L2A_GIPP.xml: error dem-without-force-exit" in err
    assert "s2kit: note: L2A_GIPP.xml: warning threads-auto" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "Nr_Threads for Sen2Cor 2.9 must be AUTO or 1-8"),
        (["--threads", "99"], "Nr_Threads for Sen2Cor 2.9 must be AUTO or 1-8"),
        (["--set", "No_Such=1"], "--set No_Such: matches no element"),
        (["--set", "UP_Scheme_1C=S2"], "matches 2 elements"),
        (["--set", "Log_Level"], "--set expects NAME=VALUE"),
        (["--set", "Log_Level=LOUD"], "fails the Sen2Cor 2.9 XSD"),
        (["--set", "Nr_Threads=2"], "use that instead"),
        (["--baseline", "99.99"], "placeholder"),
        (["--sen2cor", "2.8"], "Sen2Cor version"),
        (["--dem-dir", "NONE"], "omit the DEM directory"),
        (["--set", "DEM_Reference=/data/dem[1]/"], "DEM_Reference must be a URI"),  # --dem-dir is encoded
        (
            ["--sen2cor", "2.12", "--dem", "srtm", "--dem-dir", "/d"],
            "dem: expected a DEM Sen2Cor 2.12 can use",
        ),
        (
            ["--sen2cor", "2.11", "--dem", "cop-dem-glo30", "--dem-dir", "/d"],
            "(srtm, none), found 'cop-dem-glo30'",
        ),
        (["--sen2cor", "2.12", "--dem", "none", "--dem-dir", "/d"], "without a DEM"),
    ],
)
def test_render_bad_input_one_error_line_no_file(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "cfg"
    result = runner.invoke(app, ["gipp", "render", "--out", str(out), *args])
    assert result.exit_code != 0
    err_lines = [line for line in stderr_of(result).splitlines() if line.strip()]
    assert len(err_lines) == 1, err_lines
    assert err_lines[0].startswith("s2kit: error: ") and message in err_lines[0]
    assert not out.exists()
    assert "Traceback" not in result.output


def test_render_into_a_file_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "cfg"
    target.write_text("x")
    result = runner.invoke(app, ["gipp", "render", "--out", str(target)])
    assert result.exit_code != 0
    assert "expected an output directory" in stderr_of(result)
    assert target.read_text() == "x"


@pytest.mark.parametrize(
    ("kind", "reference"), [("cop-dem-glo30", "CDSE-GLO-30"), ("cop-dem-glo90", "CDSE-GLO-90")]
)
def test_render_212_with_a_copernicus_dem_is_clean(
    runner: CliRunner, tmp_path: Path, kind: str, reference: str
) -> None:
    """The 2.12 render names the Copernicus DEM in DEM_Reference, and its own check of the
    result raises no SRTM-only finding (no srtm tiles, no trailing '/' on 'CDSE-GLO-30')."""
    dem = tmp_path / "dem" / kind / "32UMA"
    dem.mkdir(parents=True)
    out = tmp_path / "cfg"
    args = ["gipp", "render", "--sen2cor", "2.12", "--dem", kind, "--dem-dir", str(dem), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert text(out / "L2A_GIPP.xml", "Common_Section/DEM_Directory") == f"{dem}/"
    assert text(out / "L2A_GIPP.xml", "Common_Section/DEM_Reference") == reference
    assert text(out / "L2A_PB_GIPP.xml", "DATA/Idp_Sc_List/Idp_Sc_Version") == "02.12.03"
    assert f"DEM_Reference {reference}" in result.stdout
    assert "s2kit: note" not in stderr_of(result)
    checked = runner.invoke(app, ["gipp", "check", "--json", *(str(out / f) for f in FILES)])
    assert checked.exit_code == 0, checked.output
    by_file = {Path(r["file"]).name: r for r in json.loads(checked.stdout)["files"]}
    assert by_file["L2A_GIPP.xml"]["version"] == by_file["L2A_PB_GIPP.xml"]["version"] == "2.12"
    # SC/AC are the 2.10.01 files in 2.12 too: 2.12 is one of the versions they fit
    assert all("2.12" in by_file[f]["candidates"] for f in ("L2A_CAL_SC_GIPP.xml", "L2A_CAL_AC_GIPP.xml"))


# --------------------------------------------------------------------------- check
def test_check_real_user_edited_gipp(runner: CliRunner) -> None:
    result = runner.invoke(app, ["gipp", "check", str(EWOC)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].endswith("L2A_GIPP, Sen2Cor 2.9 (detected), XSD valid, 1 error, 3 warnings")
    assert any("error   dem-dir-no-trailing-slash" in line and "line 24" in line for line in lines)


@pytest.mark.parametrize(("strict", "code"), [(False, 0), (True, 1)])
def test_check_strict_fails_on_warnings(runner: CliRunner, strict: bool, code: int) -> None:
    result = runner.invoke(app, ["gipp", "check", str(PRISTINE_29), *(["--strict"] if strict else [])])
    assert "warning threads-auto" in result.stdout
    assert result.exit_code == code


def test_check_rendered_set_is_clean(runner: CliRunner, tmp_path: Path, dem: Path) -> None:
    assert (
        runner.invoke(
            app, ["gipp", "render", "--out", str(tmp_path / "cfg"), "--dem-dir", str(dem)]
        ).exit_code
        == 0
    )
    paths = sorted(str(p) for p in (tmp_path / "cfg").iterdir())
    result = runner.invoke(app, ["gipp", "check", "--strict", *paths])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "4 files: 0 errors, 0 warnings"


def test_check_json_is_one_document(runner: CliRunner) -> None:
    files = sorted(str(p) for p in GIPPS.glob("*.xml"))
    result = runner.invoke(app, ["gipp", "check", "--json", *files])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    # 2.12 is supported: its real L2A_GIPP is validated (no version-unsupported error)
    assert doc["summary"] == {"files": 12, "errors": 6, "warnings": 7, "strict": False}
    assert doc["failed"] is True
    by_file = {Path(r["file"]).name: r for r in doc["files"]}
    assert by_file[EWOC.name]["xsd"] == "valid"
    assert {f["code"] for f in by_file[EWOC.name]["findings"]} == {
        "threads-auto",
        "dem-dir-no-trailing-slash",
        "dem-dir-relative",
        "dem-reference-remote",
    }


def test_check_with_version_flag_finds_a_stale_file(runner: CliRunner) -> None:
    stale = GIPPS / "sen2cor-2.8.0_L2A_GIPP_pristine_c-core-labs.xml"
    result = runner.invoke(app, ["gipp", "check", "--sen2cor", "2.9", "--json", str(stale)])
    assert result.exit_code == 1
    report = json.loads(result.stdout)["files"][0]
    assert report["xsd"] == "invalid"
    assert [f["code"] for f in report["findings"] if f["severity"] == "error"] == [
        "version-mismatch",
        "missing-element",
        "missing-element",
    ]


BOMB = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n'
    b"<Level-2A_Ground_Image_Processing_Parameter>&lol2;</Level-2A_Ground_Image_Processing_Parameter>\n"
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n", "expected well-formed XML"),
        (b"<Level-1C_User_Product/>", "expected a Sen2Cor GIPP"),
        (BOMB, "DOCTYPE"),
        (None, "no such file"),
    ],
)
@pytest.mark.parametrize("command", ["check", "diff"])
def test_check_and_diff_bad_input(
    runner: CliRunner, tmp_path: Path, command: str, content: bytes | None, message: str
) -> None:
    bad = tmp_path / "bad 'file'.xml"
    if content is not None:
        bad.write_bytes(content)
    result = runner.invoke(app, ["gipp", command, str(bad)])
    assert result.exit_code != 0
    err = [line for line in stderr_of(result).splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("s2kit: error: ") and message in err[0], err
    assert result.stdout == ""


def test_check_stops_before_printing_when_one_file_is_bad(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"nope")
    result = runner.invoke(app, ["gipp", "check", str(PRISTINE_29), str(bad)])
    assert result.exit_code != 0 and result.stdout == ""


# --------------------------------------------------------------------------- diff
def test_diff_real_user_edited_gipp(runner: CliRunner) -> None:
    result = runner.invoke(app, ["gipp", "diff", str(EWOC)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].endswith("L2A_GIPP vs pristine Sen2Cor 2.9 template (detected): 7 differences")
    assert [line.split()[1] for line in lines[1:]] == [
        "Common_Section/Log_Level",
        "Common_Section/DEM_Directory",
        "Common_Section/DEM_Reference",
        "Common_Section/Force_Exit_On_DEM_Error",
        "Common_Section/Generate_TCI_Output",
        "Common_Section/Downsample_20_to_60",
        "Atmospheric_Correction/Flags/Cirrus_Correction",
    ]
    assert "NONE -> dem/srtm" in lines[2]


def test_diff_json(runner: CliRunner, tmp_path: Path) -> None:
    runner.invoke(app, ["gipp", "render", "--out", str(tmp_path), "--threads", "3"])
    result = runner.invoke(app, ["gipp", "diff", "--json", str(tmp_path / "L2A_GIPP.xml")])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["changes"] == [
        {
            "element": "Common_Section/Nr_Threads",
            "change": "changed",
            "template": "AUTO",
            "file": "3",
            "line": 19,
        }
    ]


def test_diff_of_an_unsupported_version_asks_for_the_flag(runner: CliRunner) -> None:
    old = GIPPS / "sen2cor-2.8.0_L2A_GIPP_pristine_c-core-labs.xml"
    result = runner.invoke(app, ["gipp", "diff", str(old)])
    assert result.exit_code != 0 and "pass --sen2cor" in stderr_of(result)
    result = runner.invoke(app, ["gipp", "diff", "--sen2cor", "2.9", str(old)])
    assert result.exit_code == 0 and "removed  Common_Section/Region_Of_Interest" in result.stdout


# --------------------------------------------------------------------------- the installed console script
def _console_script() -> str | None:
    venv = Path(sys.executable).parent / "s2kit"
    return str(venv) if venv.exists() else shutil.which("s2kit")


@pytest.mark.skipif(_console_script() is None, reason="s2kit console script not installed")
def test_real_subprocess_render_check_diff(tmp_path: Path, dem: Path) -> None:
    exe = _console_script()
    assert exe is not None
    env = {k: v for k, v in os.environ.items() if k not in ALLOC_VARS} | {"LSB_DJOB_NUMPROC": "4"}
    out = tmp_path / "task 1" / "cfg"
    render = subprocess.run(
        [exe, "gipp", "render", "--sen2cor", "2.9", "--out", str(out), "--dem-dir", str(dem)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert render.returncode == 0, render.stderr
    assert "Nr_Threads 4 (from LSB_DJOB_NUMPROC=4)" in render.stdout
    check = subprocess.run(
        [exe, "gipp", "check", "--strict", "--json", *sorted(map(str, out.iterdir()))],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["summary"]["errors"] == 0
    bad = subprocess.run(
        [exe, "gipp", "render", "--out", str(tmp_path / "x"), "--threads", "99"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "s2kit: error: Nr_Threads for Sen2Cor 2.9 must be AUTO or 1-8 (its L2A_GIPP.xsd), found '99'"
    ]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--sen2cor", "2.12", "--dem", "cop-dem-glo30"],
        ["--sen2cor", "2.12", "--dem", "cop-dem-glo90"],
        ["--sen2cor", "2.9", "--dem", "srtm"],
    ],
)
def test_render_named_dem_without_dem_dir_is_refused_not_rendered_as_no_dem(
    runner: CliRunner, tmp_path: Path, args: list[str]
) -> None:
    """`--dem cop-dem-glo30` without --dem-dir wrote DEM_Directory NONE / DEM_Reference NONE
    and exit 0: the DEM the user named silently became no DEM at all (review1)."""
    out = tmp_path / "cfg"
    result = runner.invoke(app, ["gipp", "render", "--out", str(out), *args])
    assert result.exit_code == 1 and not out.exists()
    assert stderr_of(result) == (
        f"s2kit: error: dem: expected a DEM directory (--dem-dir) with the {args[-1]!r} DEM, found none; "
        "give --dem-dir, or --dem none to run without a DEM\n"
    )


def test_render_dem_none_without_dem_dir_still_runs_without_a_dem(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "cfg"
    result = runner.invoke(app, ["gipp", "render", "--out", str(out), "--sen2cor", "2.12", "--dem", "none"])
    assert result.exit_code == 0
    assert "<DEM_Directory>NONE</DEM_Directory>" in (out / "L2A_GIPP.xml").read_text()


@pytest.mark.parametrize("name", ["DEM_Reference", "//Common_Section/DEM_Reference"])
def test_render_212_set_dem_reference_cannot_contradict_the_printed_dem(
    runner: CliRunner, tmp_path: Path, dem: Path, name: str
) -> None:
    """`--sen2cor 2.12 --dem-dir D --set DEM_Reference=CDSE-GLO-90` printed "DEM_Reference
    CDSE-GLO-30" while the file said CDSE-GLO-90 (exit 0): the summary lied (review1)."""
    out = tmp_path / "cfg"
    args = ["--sen2cor", "2.12", "--dem-dir", str(dem), "--set", f"{name}=CDSE-GLO-90"]
    result = runner.invoke(app, ["gipp", "render", "--out", str(out), *args])
    assert result.exit_code == 1 and not out.exists()
    assert stderr_of(result) == (
        f"s2kit: error: --set {name}: DEM_Reference is rendered from the dem (--dem) setting; "
        "use that instead\n"
    )


def test_check_and_diff_text_escape_control_characters_of_names_and_values(
    runner: CliRunner, tmp_path: Path
) -> None:
    """`gipp check`/`gipp diff` printed a file name holding a newline and ESC raw (the report's
    first line split in two, an escape sequence sent to the terminal), and diff a value with
    a newline (&#10;) raw (review1)."""
    from s2kit.gipp import write_gipp_dir

    cfg = write_gipp_dir(tmp_path / "cfg", sen2cor="2.12", threads=1).out
    evil = tmp_path / "ev\nil\x1b[31m.xml"
    data = (cfg / "L2A_GIPP.xml").read_bytes().replace(b"<Log_Level>INFO<", b"<Log_Level>IN&#10;FO&#x9b;<")
    evil.write_bytes(data)
    shown = str(evil).replace("\n", "\\n").replace("\x1b", "\\x1b")
    for command in (["check"], ["diff"]):
        result = runner.invoke(app, ["gipp", *command, str(evil)])
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"{shown}: L2A_GIPP"), lines[0]
        assert not {"\x1b", "\x9b"} & set(result.stdout)
        assert any("IN\\nFO\\x9b" in line for line in lines[1:])


@pytest.mark.parametrize("command", [["check"], ["check", "--jsonl"], ["diff"]])
def test_empty_gipp_path_is_named_empty_not_the_current_directory(
    runner: CliRunner, command: list[str]
) -> None:
    """`gipp check ''` / `gipp diff ''` said ".: expected a regular GIPP XML file, found a
    directory": the empty argument became the current directory (review1)."""
    result = runner.invoke(app, ["gipp", *command, ""])
    assert result.exit_code == 1
    message = "expected a GIPP XML file, found an empty path (not the current directory)"
    if "--jsonl" in command:
        assert json.loads(result.stdout.splitlines()[0]) == {"file": "", "error": message}
    else:
        assert stderr_of(result) == f"s2kit: error: {message}\n"
