"""s2kit report: the HTML page and its JSON facts from a run of the Sen2Cor TEST DOUBLE.

The double's band files are placeholders, so their quicklook cell must say why there is
none; one product per run gets real 60 m rasters (synthetic values, tests/support/l2a_rasters.py)
so a real thumbnail is made too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2kit.batch import status
from s2kit.errors import InputError
from s2kit.quicklook import QuicklookError, cached_quicklook, render_quicklook
from s2kit.report import build_report, log_excerpt, provenance_checks, render_html, write_report
from s2kit.runs import RunDir
from s2kit.sen2cor import settings_sha256
from tests.support.l2a_rasters import derive_metadata, make_demo_run, r60_files, write_l2a_rasters
from tests.support.safe_trees import build_l2a_tree

SECTIONS = ["summary", "provenance", "failures", "times", "resources", "quicklooks", "comparison"]


@pytest.fixture(scope="module")
def demo_src(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_demo_run(tmp_path_factory.mktemp("report-batch"), n=5, crash=4, real_rasters=1)


@pytest.fixture
def demo(demo_src: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A private copy of the run dir (tests edit provenance files); the L2A stay shared."""
    run = tmp_path / "run"
    shutil.copytree(demo_src["run"], run, symlinks=True)
    return {**demo_src, "run": run}


def test_report_sections_counts_failures_quicklooks(demo: dict[str, Any], tmp_path: Path) -> None:
    result = write_report(demo["run"], tmp_path / "r.html")
    data = result.data
    text = result.html.read_text(encoding="utf-8")
    # sections, self-contained: no script, no external URL, CSP forbids any load but data: images
    assert re.findall(r'<section id="([^"]+)"', text) == SECTIONS
    assert "<script" not in text.lower()
    assert not re.search(r'(src|href)="(?!data:)', text)
    assert "default-src 'none'; img-src data:" in text
    # counts are those of s2kit.batch.status
    st = status(None, RunDir(demo["run"]), query=False)
    assert data["counts"] == st.counts and data["tiles"] == st.tiles
    assert data["counts"]["done"] == 4 and data["counts"]["failed"] == 1
    assert data["l1c_baselines"] == {"03.01": {"done": 4, "failed": 1}}
    # failure with reason and log excerpt
    (fail,) = data["failures"]
    assert fail["reason"].startswith("exit-code: 1")
    assert "simulated crash of the Sen2Cor TEST DOUBLE" in fail["log_excerpt"]
    assert "RuntimeError: simulated crash" in text
    # times: Sen2Cor seconds from provenance, wall time from state files
    done = [r for r in data["scenes"] if r["status"] == "done"]
    assert all(r["sen2cor_seconds"] > 0 and r["wall_seconds"] is not None for r in done)
    assert data["times"]["sen2cor_seconds"]["max"] >= data["times"]["sen2cor_seconds"]["min"] > 0
    # quicklooks: one real, the placeholders with a reason
    qls = {Path(r["l2a"]).name: r["quicklook"] for r in done}
    real = qls[demo["l2a"][0].name]
    assert real["ok"] and real["method"] == "TCI 60m" and real["width"] == 128
    for name in (p.name for p in demo["l2a"][1:]):
        assert not qls[name]["ok"] and "not a readable raster" in qls[name]["reason"]
    assert text.count("data:image/png;base64,") == 1
    assert text.count("no quicklook: ") == 3
    # provenance: everyone agrees
    assert data["provenance"]["deviations"] == [] and data["provenance"]["scenes_with_provenance"] == 4
    assert "share the majority" in text


def test_provenance_deviations_are_flagged(demo: dict[str, Any], tmp_path: Path) -> None:
    rd = RunDir(demo["run"])
    scenes = sorted(s for s, st in rd.read_states().items() if st.state == "done")
    odd = rd.provenance_file(scenes[1])
    doc = json.loads(odd.read_text())
    doc["sen2cor"]["version"] = "2.10"
    _change_setting(doc, "L2A_GIPP.xml:Atmospheric_Correction/Look_Up_Tables/Aerosol_Type", "MARITIME")
    doc["container"] = {"image": "/x.sif", "sha256": "f" * 64}
    odd.write_text(json.dumps(doc))
    rd.provenance_file(scenes[2]).unlink()
    data = write_report(demo["run"], tmp_path / "r.html", quicklooks=False).data
    whats = {(d["scene"], d["what"]) for d in data["provenance"]["deviations"]}
    assert whats == {
        (scenes[1], "sen2cor version"),
        (scenes[1], "GIPP settings sha256"),
        (scenes[1], "image sha256"),
    }
    assert data["provenance"]["missing"] == [scenes[2]]  # said as missing, not as a difference
    assert data["provenance"]["majority"]["sen2cor version"] == {
        "value": "2.9 (metadata: 02.09.00)", "scenes": 2, "of": 3, "tie": False,
    }  # fmt: skip
    html = (tmp_path / "r.html").read_text()
    assert "3 difference(s) from the batch majority" in html and "f" * 64 in html
    assert "1 done scene(s) with provenance missing" in html


def _change_setting(doc: dict[str, Any], key: str, value: str) -> None:
    assert key in doc["gipp"]["settings"]
    doc["gipp"]["settings"][key] = value
    doc["gipp"]["settings_sha256"] = settings_sha256(doc["gipp"]["settings"])


def _done_provenance(run: Path) -> dict[str, dict[str, Any]]:
    rd = RunDir(run)
    done = sorted(s for s, st in rd.read_states().items() if st.state == "done")
    return {s: json.loads(rd.provenance_file(s).read_text()) for s in done}


def test_dem_batch_reports_no_false_provenance_difference(demo: dict[str, Any], tmp_path: Path) -> None:
    """Each task's L2A_GIPP.xml holds its own scratch DEM path (so every file hash differs): the
    report compares the normalised settings instead and finds the batch consistent."""
    prov = _done_provenance(demo["run"])
    assert len(prov) == 4
    assert len({d["gipp"]["files"]["L2A_GIPP.xml"] for d in prov.values()}) == 4  # per-task paths
    assert {d["dem"]["mode"] for d in prov.values()} == {"srtm"}
    data = write_report(demo["run"], tmp_path / "r.html", quicklooks=False).data
    assert data["provenance"]["deviations"] == []
    assert data["provenance"]["majority"]["GIPP settings sha256"]["scenes"] == 4
    assert not any("fell back" in n for n in data["provenance"]["notes"])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("L2A_GIPP.xml:Atmospheric_Correction/Look_Up_Tables/Aerosol_Type", "MARITIME"),
        ("L2A_PB_GIPP.xml:DATA/Baseline_Version", "03.01"),
        ("L2A_GIPP.xml:Common_Section/DEM_Directory", "NONE"),
    ],
)
def test_changed_gipp_setting_is_caught_and_named(
    demo: dict[str, Any], tmp_path: Path, key: str, value: str
) -> None:
    rd = RunDir(demo["run"])
    prov = _done_provenance(demo["run"])
    odd = sorted(prov)[2]
    before = prov[odd]["gipp"]["settings"][key]
    _change_setting(prov[odd], key, value)
    rd.provenance_file(odd).write_text(json.dumps(prov[odd]))
    data = write_report(demo["run"], tmp_path / "r.html", quicklooks=False).data
    (dev,) = data["provenance"]["deviations"]
    assert (dev["scene"], dev["what"]) == (odd, "GIPP settings sha256")
    assert f"{key} = {value} (majority: {before})" in dev["value"]
    assert f"{key} = {value}" in (tmp_path / "r.html").read_text()


def test_old_provenance_without_settings_falls_back_to_file_hashes_and_says_so() -> None:
    def prov(l2a_gipp: str, settings: str | None = None) -> dict[str, Any]:
        gipp: dict[str, Any] = {"threads": 1, "files": {"L2A_GIPP.xml": l2a_gipp, "L2A_PB_GIPP.xml": "p"}}
        if settings is not None:
            gipp |= {"settings": {"k": settings}, "settings_sha256": settings_sha256({"k": settings})}
        return {"sen2cor": {"version": "2.9"}, "gipp": gipp, "dem": {"dir": "/dem/46RER"}, "container": None}

    checks = provenance_checks({"a": prov("h1"), "b": prov("h1"), "c": prov("h2"), "d": prov("x", "v")})
    assert {(d["scene"], d["what"]) for d in checks["deviations"]} == {
        ("c", "GIPP L2A_GIPP.xml sha256 (threads 1, DEM dir /dem/46RER)")
    }
    assert any(
        n.startswith("3 scene(s) have provenance without gipp.settings_sha256") for n in checks["notes"]
    )
    assert any(n.startswith("1 scene(s) compared by their normalised GIPP settings") for n in checks["notes"])


def test_flat_terrain_scenes_say_so_in_status_and_report(tmp_path: Path) -> None:
    """sen2cor.dem = "none": status, the report and the provenance say "no DEM: flat terrain"."""
    from s2kit.batch import format_status, submit
    from s2kit.plan import make_plan
    from tests.support.configs import batch_config

    cfg = batch_config(tmp_path, 2, sen2cor={"dem": "none"})
    cfg = cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"dem_dir": None})})
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    submit(cfg, rd)
    rep = status(None, rd, query=False)
    assert rep.counts["done"] == 2
    assert 'no DEM: flat terrain: 2 scene(s) (sen2cor.dem = "none")' in format_status(rep)
    assert rep.to_dict()["no_dem_flat_terrain"] == sorted(s.scene for s in rep.scenes)
    data = write_report(rd.path, tmp_path / "r.html", quicklooks=False).data
    assert data["provenance"]["flat_terrain"] == sorted(s.scene for s in rep.scenes)
    assert all(r["dem"] == "no DEM: flat terrain" for r in data["scenes"])
    assert data["provenance"]["deviations"] == []
    assert "2 scene(s) with no DEM: flat terrain" in (tmp_path / "r.html").read_text()


def _flat_run_without_provenance(root: Path) -> tuple[RunDir, str, str]:
    """A 2-scene flat-terrain run of the TEST DOUBLE; one scene's run-dir provenance deleted and
    its sidecar torn. Returns (run dir, the scene without provenance, the other)."""
    from s2kit.batch import submit
    from s2kit.plan import make_plan
    from s2kit.provenance import sidecar_path
    from tests.support.configs import batch_config

    cfg = batch_config(root, 2, sen2cor={"dem": "none"})
    cfg = cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"dem_dir": None})})
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    submit(cfg, rd)
    lost, kept = sorted(s for s, st in rd.read_states().items() if st.state == "done")
    rd.provenance_file(lost).unlink()
    l2a = rd.read_state(lost).l2a  # type: ignore[union-attr]
    sidecar_path(l2a).write_text('{"schema": "s2kit-prov')  # torn
    return rd, lost, kept


def test_report_says_provenance_missing_not_a_difference_and_keeps_flat_terrain(
    tmp_path: Path, s2kit_exe: str
) -> None:
    """Finding 7: a done scene whose provenance is missing was counted as a provenance difference
    and lost its "no DEM: flat terrain" flag; now it is "provenance missing", flat from config.json."""
    rd, lost, kept = _flat_run_without_provenance(tmp_path)
    data = write_report(rd.path, tmp_path / "r.html", quicklooks=False).data
    prov = data["provenance"]
    assert prov["deviations"] == [] and prov["missing"] == [lost]
    assert prov["flat_terrain"] == sorted([lost, kept])
    row = next(r for r in data["scenes"] if r["scene"] == lost)
    assert row["provenance"] == "provenance missing" and row["dem"] == "no DEM: flat terrain"
    html = (tmp_path / "r.html").read_text()
    assert "1 done scene(s) with provenance missing" in html
    assert "2 scene(s) with no DEM: flat terrain" in html
    r = subprocess.run([s2kit_exe, "report", str(rd.path), "--no-quicklooks"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "provenance differences: 0; provenance missing: 1" in r.stdout


def test_per_task_gipp_is_compared_within_its_group() -> None:
    def prov(threads: int, dem: str | None, l2a_gipp: str, sc: str = "s") -> dict[str, Any]:
        return {
            "sen2cor": {"version": "2.9", "version_in_metadata": "02.09.00"},
            "gipp": {"threads": threads, "files": {"L2A_GIPP.xml": l2a_gipp, "L2A_CAL_SC_GIPP.xml": sc}},
            "dem": {"dir": dem},
            "container": None,
        }

    checks = provenance_checks({
        "a": prov(4, "/dem/17SQV", "h1"), "b": prov(4, "/dem/17SQV", "h1"), "c": prov(4, "/dem/17SQV", "h9"),
        "d": prov(8, "/dem/17SQV", "h2"),  # other threads: other file, same settings otherwise
        "e": prov(4, "/dem/18TUL", "h3", sc="other"),
    })  # fmt: skip
    assert {(d["scene"], d["what"]) for d in checks["deviations"]} == {
        ("c", "GIPP L2A_GIPP.xml sha256 (threads 4, DEM dir /dem/17SQV)"),
        ("e", "GIPP L2A_CAL_SC_GIPP.xml sha256"),
    }
    # two scenes, two values: a tie is reported as such, not as a majority
    tie = provenance_checks(
        {"a": prov(4, None, "h"), "b": {**prov(4, None, "h"), "sen2cor": {"version": "2.10"}}}
    )
    assert tie["majority"]["sen2cor version"]["tie"] is True and len(tie["deviations"]) == 1


def test_quicklook_cache_and_parallel_rendering(demo: dict[str, Any], tmp_path: Path) -> None:
    first = build_report(demo["run"], jobs=2)
    cache = Path(demo["run"]) / "quicklooks"
    pngs = sorted(cache.glob("*.png"))
    assert len(pngs) == 1
    before = pngs[0].stat().st_mtime_ns
    second = build_report(demo["run"], jobs=1)
    assert pngs[0].stat().st_mtime_ns == before  # served from the cache
    ql = lambda d: [r.get("quicklook") for r in d["scenes"]]  # noqa: E731
    assert ql(first) == ql(second)


def test_rgb_quicklook_applies_the_offset(tmp_path: Path) -> None:
    """No TCI: RGB from B04/B03/B02 with each product's offset (PB 04.00 real metadata)."""
    esa = build_l2a_tree(tmp_path / "esa", "33XWJ")
    refl = {b: np.full((64, 64), 0.15) for b in ("B04", "B03", "B02")}
    write_l2a_rasters(esa, refl)
    r60_files(esa)["TCI"].unlink()
    ql = render_quicklook(esa, size=32)
    assert ql.method == "RGB B04/B03/B02 60m" and (ql.width, ql.height) == (32, 32)
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a PNG has no georeference
    png = tmp_path / "q.png"
    png.write_bytes(ql.png)
    with rasterio.open(png) as src:
        rgba = src.read()
    assert rgba.shape == (3, 32, 32)  # RGB; pure black is "no data" (transparent via tRNS)
    assert np.all(rgba == round(0.15 / 0.3 * 255))  # 0.15 reflectance is mid-grey
    assert b"tRNS" in ql.png and b"s2kit:method\0RGB B04/B03/B02 60m" in ql.png

    local = derive_metadata(build_l2a_tree(tmp_path / "loc", "33XWJ"), drop_offsets=True)
    write_l2a_rasters(local, refl)
    r60_files(local)["TCI"].unlink()
    assert render_quicklook(local, size=32).png == ql.png  # same reflectance, other DNs
    hole = np.zeros((64, 64), dtype=bool)
    hole[:32] = True
    write_l2a_rasters(local, refl, nodata=hole)  # (no TCI any more: RGB again)
    png.write_bytes(render_quicklook(local, size=32).png)
    with rasterio.open(png) as src:
        holed = src.read()
    assert np.all(holed[:, :16] == 0) and np.all(holed[:, 16:] == 128)  # no data: black = transparent


def test_quicklook_errors(tmp_path: Path) -> None:
    tree = build_l2a_tree(tmp_path, "07HFE")
    with pytest.raises(QuicklookError, match="TCI_60m.jp2: not a readable raster"):
        render_quicklook(tree)
    for f in tree.glob("GRANULE/*/IMG_DATA/R60m/*"):
        f.unlink()
    for f in tree.glob("GRANULE/*/IMG_DATA/R[12]0m/*TCI*"):
        f.unlink()
    with pytest.raises(QuicklookError, match="no TCI and no B04/B03/B02"):
        cached_quicklook(tree, tmp_path / "cache")
    z = tmp_path / "p.SAFE.zip"
    zipfile.ZipFile(z, "w").close()
    with pytest.raises(QuicklookError, match="unzipped"):
        render_quicklook(z)
    with pytest.raises(QuicklookError, match="size"):
        render_quicklook(tree, size=2)


def test_log_excerpt_tail(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {i}\n" for i in range(10_000)))
    tail = log_excerpt(str(log), lines=3)
    assert tail == "line 9997\nline 9998\nline 9999"
    assert log_excerpt(str(tmp_path / "missing")) is None and log_excerpt(None) is None


def test_comparisons_in_run_dir_are_shown(demo: dict[str, Any], tmp_path: Path) -> None:
    cdir = Path(demo["run"]) / "compare"
    cdir.mkdir()
    doc = {
        "schema": "s2kit-compare/1", "resolution_m": 60, "warnings": ["different acquisitions: x"],
        "local": {"path": "/a/L.SAFE", "processing_baseline": "03.00", "sen2cor_version": "02.09.00",
                  "boa_quantification_value": 10000, "boa_add_offset": None},
        "official": {"path": "/b/O.SAFE", "processing_baseline": "04.00", "sen2cor_version": "02.10.01",
                     "boa_quantification_value": 10000, "boa_add_offset": {"B02": -1000.0}},
        "bands": {"B02": {"pixels": 10, "mean": 0.0123, "std": 0.001, "mean_abs": 0.0123, "rmse": 0.0124,
                          "p05": 0.011, "p50": 0.0123, "p95": 0.014, "pearson_r": 0.99,
                          "local_mean": 0.1, "official_mean": 0.09}},
        "scl": None,
    }  # fmt: skip
    (cdir / "pair.json").write_text(json.dumps(doc))
    data = build_report(demo["run"], quicklooks=False)
    assert len(data["comparisons"]) == 1
    html = render_html(data)
    assert (
        "0.0123" in html and "L.SAFE" in html and "offset -1000" in html and "different acquisitions" in html
    )
    (cdir / "junk.json").write_text("{}")
    with pytest.raises(InputError, match="s2kit compare"):
        build_report(demo["run"], quicklooks=False)


def test_cli(demo: dict[str, Any], tmp_path: Path, s2kit_exe: str) -> None:
    out = tmp_path / "x" / "report.html"
    r = subprocess.run([s2kit_exe, "report", str(demo["run"]), "--out", str(out), "--json"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["schema"] == "s2kit-report/1" and data["html"] == str(out) and out.is_file()
    assert "png_base64" not in r.stdout  # thumbnails only in the HTML
    r = subprocess.run([s2kit_exe, "report", str(demo["run"])], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and (Path(demo["run"]) / "report.html").is_file()
    assert "4 done, 1 failed" in r.stdout
    bad = subprocess.run([s2kit_exe, "report", str(tmp_path)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("s2kit: error: ") and bad.stderr.count("\n") == 1
