"""ESACCI-LC aux data: install from a stand-in archive (file and loopback HTTP), check, refuse bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from affine import Affine

from s2kit.errors import InputError
from s2kit.esacci import (
    LCCS_MAP,
    MANIFEST,
    SNOW_DIR,
    WB_MAP,
    EsacciError,
    check_esacci,
    install_esacci,
)
from s2kit.http import HttpClient
from tests.support.esacci_fixtures import (
    STANDIN_NAME,
    global_tif,
    snow_names,
    standard_members,
    tree,
    write_standin_zip,
)
from tests.support.srtm_fixtures import no_sleep, serve_files


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_standin_zip(tmp_path_factory.mktemp("esacci") / STANDIN_NAME)


@pytest.fixture
def aux(tmp_path: Path) -> Path:
    folder = tmp_path / "sen2cor" / "aux_data"
    folder.mkdir(parents=True)
    (folder / "GlobalSnowMap.tiff").write_bytes(b"shipped with Sen2Cor")
    return folder


def test_install_puts_the_three_items_in_place(standin: Path, aux: Path) -> None:
    result = install_esacci(str(standin), aux)
    assert result.action == "installed"
    assert (aux / LCCS_MAP).is_file() and (aux / WB_MAP).is_file()
    snow = sorted(p.name for p in (aux / SNOW_DIR).iterdir())
    assert snow == snow_names(52)
    names = sorted(p.name for p in aux.iterdir())
    # no staging folder, no macOS junk
    assert names == sorted([LCCS_MAP, WB_MAP, SNOW_DIR, MANIFEST, "GlobalSnowMap.tiff"])
    manifest = json.loads((aux / MANIFEST).read_text())
    assert manifest["source"] == str(standin)
    assert manifest["files"][LCCS_MAP]["size"] == (aux / LCCS_MAP).stat().st_size
    assert len(manifest["files"]) == 2 + 52
    report = check_esacci(aux, deep=True)
    assert report.ok, report.findings
    assert report.items[SNOW_DIR]["files"] == 52
    lines = list(result.lines())
    assert lines[0].endswith(f"installed ESACCI-LC aux data from {standin}")


def test_second_run_does_nothing_and_force_reinstalls(standin: Path, aux: Path) -> None:
    install_esacci(str(standin), aux)
    before = {p: p.stat().st_mtime_ns for p in aux.rglob("*")}
    again = install_esacci(str(standin), aux)
    assert again.action == "up-to-date"
    assert {p: p.stat().st_mtime_ns for p in aux.rglob("*")} == before
    forced = install_esacci(str(standin), aux, force=True)
    assert forced.action == "installed"
    assert check_esacci(aux).ok


def test_reinstall_replaces_a_stale_snow_folder(standin: Path, aux: Path) -> None:
    install_esacci(str(standin), aux)
    stale = aux / SNOW_DIR / snow_names(60)[-1]  # a file the archive does not have
    stale.write_bytes(global_tif(8, 4, seed=7))
    install_esacci(str(standin), aux, force=True)
    assert not stale.exists()
    assert len(list((aux / SNOW_DIR).iterdir())) == 52


def test_install_over_http_with_resume(httpserver, standin: Path, aux: Path, tmp_path: Path) -> None:
    data = standin.read_bytes()
    server = serve_files(httpserver, {"/cci/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip": data})
    server.faults["/cci/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip"] = [("truncate", len(data) // 3)]
    url = httpserver.url_for("/cci/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip")
    with HttpClient(retries=1, backoff=0, sleep=no_sleep()) as http:
        result = install_esacci(url, aux, client=http)
    assert result.action == "installed" and check_esacci(aux).ok
    assert server.requests[1][1] is not None  # the second request resumed with Range
    assert not (aux / ".s2kit-download").exists()  # default: the download is not kept
    cache = tmp_path / "keep"
    with HttpClient(retries=1, backoff=0, sleep=no_sleep()) as http:
        install_esacci(url, aux, client=http, cache_dir=cache, force=True)
    assert (cache / "ESACCI-LC-L4-ALL-FOR-SEN2COR.zip").read_bytes() == data


def test_http_404_is_one_clear_error(httpserver, aux: Path) -> None:
    serve_files(httpserver, {})
    with HttpClient(retries=0, sleep=no_sleep()) as http, pytest.raises(Exception) as info:
        install_esacci(httpserver.url_for("/nope.zip"), aux, client=http)
    assert "expected the file, found HTTP 404" in str(info.value)
    assert tree(aux) == {"GlobalSnowMap.tiff": 20}


# ----------------------------------------------------------------------------- bad archives
def bad_archive(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}-{STANDIN_NAME}"
    snow, maps = standard_members()
    if kind == "truncated-zip":
        good = write_standin_zip(tmp_path / "good.zip")
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "zip-slip":
        write_standin_zip(path, extra_zip_members={"../../evil.tif": b"x"})
    elif kind == "tar-slip":
        write_standin_zip(path, lccs_wb_tar={**maps, "../../evil.tif": b"x"})
    elif kind == "tar-symlink":
        write_standin_zip(path, all_links={f"{SNOW_DIR}/link.tif": "/etc/passwd"})
    elif kind == "missing-map":
        write_standin_zip(path, lccs_wb_tar={LCCS_MAP: maps[LCCS_MAP]})
    elif kind == "corrupt-tar":
        write_standin_zip(
            path, raw_tars={"CCI4SEN2COR/ESACCI-LC-L4-LCCS-WB-FOR-SEN2COR.tar": b"\x00garbage" * 100}
        )
    elif kind == "wrong-raster":
        write_standin_zip(path, lccs_wb_tar={**maps, LCCS_MAP: global_tif(36, 18, seed=1, dtype="float32")})
    elif kind == "not-global":
        small = global_tif(36, 18, seed=1, transform=Affine(1.0, 0.0, 0.0, 0.0, -1.0, 18.0))
        write_standin_zip(path, lccs_wb_tar={**maps, WB_MAP: small})
    elif kind == "bad-snow-name":
        bad = f"{SNOW_DIR}/ESACCI-LC-L4-Snow-Cond-AggOcc-500m-P13Y7D-2000-2012-2000XXYY-v2.0.tif"
        write_standin_zip(path, all_tar={**snow, bad: global_tif(8, 4, seed=3)})
    elif kind == "few-snow-files":
        write_standin_zip(path, snow_count=5)
    else:  # pragma: no cover
        raise AssertionError(kind)
    return path


BAD = [
    ("truncated-zip", "expected a zip archive, found a truncated or corrupt file"),
    ("zip-slip", "found unsafe path '../../evil.tif' in the zip (refused)"),
    ("tar-slip", "found unsafe path '../../evil.tif' (refused)"),
    ("tar-symlink", "expected regular files, found a link"),
    ("missing-map", f"expected {WB_MAP} in the archive (or its inner tars), found none"),
    ("corrupt-tar", "expected a tar archive, found a corrupt or truncated one"),
    ("wrong-raster", "expected 1 band of Byte (uint8) classes, found 1 band(s) of float32"),
    ("not-global", "expected the global extent -180,-90,180,90"),
    ("bad-snow-name", "matches but strptime refuses (Sen2Cor would fail)"),
    ("few-snow-files", "expected at least 9 weekly files"),
]


@pytest.mark.parametrize(("kind", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_archive_is_refused_and_nothing_changes(
    tmp_path: Path, aux: Path, kind: str, message: str
) -> None:
    archive = bad_archive(tmp_path, kind)
    before = tree(aux)
    with pytest.raises(EsacciError) as info:
        install_esacci(str(archive), aux)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert tree(aux) == before
    assert not list(aux.glob(".esacci-*"))
    assert not (tmp_path.parent / "evil.tif").exists() and not (tmp_path / "evil.tif").exists()


def test_bad_archive_leaves_an_existing_install_alone(standin: Path, tmp_path: Path, aux: Path) -> None:
    install_esacci(str(standin), aux)
    before = tree(aux)
    with pytest.raises(EsacciError):
        install_esacci(str(bad_archive(tmp_path, "wrong-raster")), aux, force=True)
    assert tree(aux) == before and check_esacci(aux).ok


def test_missing_dest_or_source(tmp_path: Path, standin: Path) -> None:
    with pytest.raises(InputError, match="expected Sen2Cor's aux_data folder"):
        install_esacci(str(standin), tmp_path / "nope")
    (tmp_path / "aux").mkdir()
    with pytest.raises(InputError, match="found no file at"):
        install_esacci(str(tmp_path / "missing.zip"), tmp_path / "aux")
    with pytest.raises(InputError, match="ftp:// address"):
        install_esacci("ftp://geo10.elie.ucl.ac.be/v207/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip", tmp_path / "aux")


# ----------------------------------------------------------------------------- check
def test_check_finds_each_problem(standin: Path, aux: Path) -> None:
    install_esacci(str(standin), aux)
    (aux / WB_MAP).unlink()
    (aux / LCCS_MAP).write_bytes(global_tif(36, 18, seed=5, dtype="int16"))
    snow = aux / SNOW_DIR
    first = sorted(snow.iterdir())[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF  # same size, other content: only --deep sees it
    first.write_bytes(bytes(data))
    sorted(snow.iterdir())[-1].unlink()
    report = check_esacci(aux, deep=True)
    codes = sorted(f.code for f in report.findings)
    assert codes == ["bad-raster", "checksum", "missing", "missing", "size"]
    assert not report.ok
    shallow = check_esacci(aux)
    assert "checksum" not in {f.code for f in shallow.findings}


def test_check_of_an_empty_aux_data(aux: Path) -> None:
    report = check_esacci(aux)
    assert [f.code for f in report.findings] == ["missing", "missing", "missing"]
    with pytest.raises(InputError):
        check_esacci(aux / "nope")


# ----------------------------------------------------------------------------- CLI
def run(exe: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})


def test_cli(s2kit_exe: str, standin: Path, aux: Path, tmp_path: Path) -> None:
    done = run(s2kit_exe, "aux", "esacci", "--source", str(standin), "--dest", str(aux))
    assert done.returncode == 0, done.stderr
    assert "installed ESACCI-LC aux data" in done.stdout and f"{SNOW_DIR}/ (52 weekly files" in done.stdout
    checked = run(s2kit_exe, "aux", "esacci", "--check", str(aux))
    assert checked.returncode == 0 and ": OK," in checked.stdout
    as_json = run(s2kit_exe, "aux", "esacci", "--check", str(aux), "--json")
    assert json.loads(as_json.stdout)["ok"] is True
    (aux / WB_MAP).unlink()
    failed = run(s2kit_exe, "aux", "esacci", "--check", str(aux))
    assert failed.returncode == 1 and "missing" in failed.stdout
    usage = run(s2kit_exe, "aux", "esacci", "--source", str(standin))
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines() == [
        "s2kit: error: expected --source FILE_OR_URL with --dest AUX_DATA_DIR (or --check AUX_DATA_DIR)"
    ]
    bad = run(
        s2kit_exe, "aux", "esacci", "--source", str(bad_archive(tmp_path, "zip-slip")), "--dest", str(aux)
    )
    assert bad.returncode == 1
    assert len(bad.stderr.strip().splitlines()) == 1 and bad.stderr.startswith("s2kit: error: ")
