"""s2kit.worker / ``s2kit worker``: one scene per task, end to end with the Sen2Cor TEST DOUBLE.

Every run here uses real L1C trees (real ESA MTD_MSIL1C.xml, tests/support/safe_trees.py), a real
plan (s2kit.plan.make_plan) and tests/sen2cor_double/bin/L2A_Process (NOT Sen2Cor) as
``install_dir/bin/L2A_Process``; L1C, L2A, DEM, scratch and run dirs live under a path
with spaces, quotes, ``$`` and non-ASCII characters.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from s2kit.config import BatchConfig
from s2kit.errors import InputError, UsageError
from s2kit.gipp import GippSettings, render_gipp
from s2kit.plan import make_plan
from s2kit.runs import PROVENANCE_SUFFIX, RunDir, SceneLocked, SceneState, published_provenance
from s2kit.sen2cor import settings_sha256
from s2kit.validate import validate_product
from s2kit.worker import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_USAGE,
    extract_zip,
    is_stale,
    job_id_from_env,
    load_run_config,
    run_scene,
    run_task,
    task_index,
)
from tests.support import REPO, alive
from tests.support.safe_trees import build_l1c_tree, zip_tree

DOUBLE_HOME = REPO / "tests" / "sen2cor_double"
DOUBLE = DOUBLE_HOME / "bin" / "L2A_Process"
TILE = "46RER"  # tile of the real baseline-03.01 L1C safe_trees builds
SRTM = "srtm_55_07"  # the SRTM tile 46RER's footprint touches (s2kit.tiles.tile_geometry)
S2KIT = str(Path(sys.executable).parent / "s2kit")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without scheduler/container/s2kit variables, plus *extra*."""
    drop = ("SLURM_", "LSB_", "APPTAINER", "SINGULARITY", "S2KIT_", "SEN2COR_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["S2KIT_KILL_GRACE_SECONDS"] = "2"
    env.update(extra)
    return env


def wait_for(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def wrapper_install(root: Path, body: str) -> Path:
    """An install dir whose bin/L2A_Process runs *body* (bash; ``@DOUBLE@`` = the test double)."""
    exe = root / "bin" / "L2A_Process"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/bash\n" + textwrap.dedent(body).replace("@DOUBLE@", shlex.quote(str(DOUBLE))))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return root


@dataclass
class Run:
    root: Path
    cfg: BatchConfig
    rd: RunDir
    scenes: list[str]
    l1c: dict[str, Path] = field(default_factory=dict)

    @property
    def l2a_dir(self) -> Path:
        return self.cfg.paths.l2a_dir

    def fault(self, scene: str, mode: str) -> None:
        (self.l1c[scene] / "S2KIT_DOUBLE_FAULT").write_text(mode)

    def published(self) -> list[str]:
        """Every entry of the L2A dir (hidden ones too)."""
        return sorted(os.listdir(self.l2a_dir)) if self.l2a_dir.is_dir() else []

    def state(self, scene: str) -> SceneState:
        st = self.rd.read_state(scene)
        assert st is not None, f"no state for {scene}"
        return st

    def logs(self, scene: str) -> list[str]:
        d = self.rd.path / "logs" / scene
        # the attempt logs (not the attempt-N.sen2cor/ copies of the double's own log folder)
        return sorted(n for n in os.listdir(d) if n.endswith(".log")) if d.is_dir() else []

    def scene_scratch(self, scene: str) -> Path:
        return self.cfg.paths.scratch_dir / scene

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [S2KIT, "worker", "--run-dir", str(self.rd.path), *args],
            env=env or clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )


def make_run(
    base: Path,
    n: int = 1,
    *,
    zipped: bool = False,
    install_dir: Path = DOUBLE_HOME,
    retries: int = 1,
    dem: bool = True,
    **sen2cor: Any,
) -> Run:
    """*n* scenes planned; ``dem=True``: ``dem/<tile>/`` holds the tile's SRTM zip (a fake),
    ``dem=False``: no DEM folder and ``sen2cor.dem = "none"`` (explicit flat terrain)."""
    l1c = base / "l1c"
    l1c.mkdir(parents=True)
    for i in range(n):
        tree = build_l1c_tree(l1c, day_offset=i + 1)
        if zipped:
            zip_tree(tree)
            shutil.rmtree(tree)
    if dem:
        (base / "dem" / TILE).mkdir(parents=True)
        (base / "dem" / TILE / f"{SRTM}.zip").write_bytes(b"PK fake DEM tile")
    else:
        sen2cor.setdefault("dem", "none")
    # model_validate, as the worker does with config.json: config_from_dict would expand the
    # literal "$HOME" in the hostile path (os.path.expandvars)
    cfg = BatchConfig.model_validate(
        {
            "paths": {
                "l1c_dirs": [str(l1c)],
                "l2a_dir": str(base / "l2a"),
                "dem_dir": str(base / "dem"),
                "scratch_dir": str(base / "scratch"),
                "run_dir": str(base / "run"),
            },
            "sen2cor": {"runtime": "native", "install_dir": str(install_dir), "retries": retries, **sen2cor},
        }
    )
    result = make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    scenes = rd.read_batch("all")
    assert len(scenes) == n, result.summary()
    run = Run(base, cfg, rd, scenes)
    for e in rd.read_plan():
        run.l1c[e.scene] = Path(e.l1c_path)
    return run


@pytest.fixture
def run1(hostile_dir: Path) -> Run:
    return make_run(hostile_dir)


def assert_nothing_published(run: Run) -> None:
    assert run.published() == []
    assert published_provenance(run.l2a_dir) == {}
    assert not any(run.rd.path.joinpath("provenance").glob("*.json"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- success
def test_scene_is_processed_validated_and_published(run1: Run) -> None:
    scene = run1.scenes[0]
    st = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env(LSB_DJOB_NUMPROC="3", LSB_JOBID="4242"))
    assert st.state == "done", st.reason
    assert (st.attempt, st.exit_code, st.reason, st.pid, st.host) == (
        1,
        0,
        None,
        os.getpid(),
        os.uname().nodename,
    )
    assert st.job_id == "4242"
    product = Path(st.l2a or "")
    assert product.parent == run1.l2a_dir
    assert product.name.startswith("S2A_MSIL2A_20210909T042701_N0300_R133_T46RER_")
    assert run1.published() == [product.name, product.name + PROVENANCE_SUFFIX]  # no .partial left
    report = validate_product(product, expect_sen2cor="2.9")
    assert report.valid, report.findings
    assert published_provenance(run1.l2a_dir) == {scene: product}
    assert run1.rd.read_state(scene) == st

    doc = json.loads((run1.l2a_dir / (product.name + PROVENANCE_SUFFIX)).read_text())
    assert doc == json.loads(run1.rd.provenance_file(scene).read_text())
    assert doc["validated"] is True
    assert doc["l1c"] == {
        "scene": scene,
        "path": str(run1.l1c[scene]),
        "processing_baseline": "03.01",
        "mgrs_tile": TILE,
        "staged": "symlink-tree",
        "repaired_dirs": [],
    }
    assert doc["l2a"]["name"] == product.name and doc["l2a"]["processing_baseline"] == "03.00"
    assert doc["sen2cor"]["version"] == "2.9" and doc["sen2cor"]["version_in_metadata"] == "02.09.00"
    assert doc["sen2cor"]["executable"] == str(DOUBLE)
    staged_input = Path(doc["sen2cor"]["argv"][1])  # a symlink tree in scratch, not the store
    assert staged_input.name == run1.l1c[scene].name
    assert staged_input.parent.parent == run1.scene_scratch(scene)
    staged = doc["dem"].pop("staged_as")
    assert doc["dem"] == {
        "mode": "srtm",
        "dir": str(run1.root / "dem" / TILE),
        "files": [{"name": f"{SRTM}.zip", "size": len(b"PK fake DEM tile")}],
    }
    assert Path(staged).parent.parent == run1.scene_scratch(scene)
    assert doc["container"] is None
    assert (doc["exit_code"], doc["attempt"], doc["job_id"], doc["log"]) == (0, 1, "4242", st.log)
    # the GIPPs Sen2Cor got are exactly s2kit.gipp's rendering for this task: (staged) DEM of
    # the tile, Nr_Threads from LSB_DJOB_NUMPROC, Baseline_Version 03.00
    expected = render_gipp(GippSettings(sen2cor="2.9", dem_dir=staged, threads=3))
    assert doc["gipp"]["files"] == {name: sha256(data) for name, data in expected.items()}
    settings = doc["gipp"]["settings"]
    assert settings["L2A_GIPP.xml:Common_Section/DEM_Directory"] == f"{run1.root / 'dem'}/<tile>/"
    assert "L2A_GIPP.xml:Common_Section/Nr_Threads" not in settings
    assert doc["gipp"]["settings_sha256"] == settings_sha256(settings)
    assert (doc["gipp"]["threads"], doc["gipp"]["threads_from"]) == (3, "LSB_DJOB_NUMPROC")

    log = Path(st.log or "")
    assert log == run1.rd.log_file(scene, 1)
    text = log.read_text()
    assert "this is NOT ESA Sen2Cor" in text and "--GIP_L2A_PB" in text and "SEN2COR_HOME=" in text
    assert not run1.scene_scratch(scene).exists()  # scratch removed after success


def test_dem_none_runs_flat_terrain_and_says_so(hostile_dir: Path) -> None:
    """sen2cor.dem = "none": DEM_Directory NONE, and the provenance says "no DEM: flat terrain"."""
    run = make_run(hostile_dir, dem=False)
    assert run.rd.read_plan()[0].reason == "no DEM: flat terrain"
    st = run_scene(run.cfg, run.rd.path, run.scenes[0], env=clean_env())
    assert st.state == "done", st.reason
    doc = json.loads(run.rd.provenance_file(run.scenes[0]).read_text())
    assert doc["dem"] == {
        "mode": "none",
        "note": "no DEM: flat terrain",
        "dir": None,
        "staged_as": None,
        "files": [],
    }
    assert doc["gipp"]["settings"]["L2A_GIPP.xml:Common_Section/DEM_Directory"] == "NONE"
    assert doc["gipp"]["files"]["L2A_GIPP.xml"] == sha256(
        render_gipp(GippSettings(threads=1))["L2A_GIPP.xml"]
    )


def test_sen2cor_writes_its_dem_tifs_into_a_private_copy(hostile_dir: Path) -> None:
    """Sen2Cor extracts srtm_*.tif INTO DEM_Directory: the shared (read-only) DEM stays untouched."""
    install = wrapper_install(
        hostile_dir / "dem writing sen2cor",
        """\
        gipp=""; prev=""
        for a in "$@"; do [ "$prev" = --GIP_L2A ] && gipp="$a"; prev="$a"; done
        dem="$(sed -n 's:.*<DEM_Directory>\\(.*\\)</DEM_Directory>.*:\\1:p' "$gipp")"
        [ -L "${dem}srtm_55_07.zip" ] || { echo "CRITICAL: no srtm_55_07.zip in $dem"; exit 0; }
        echo "extracted" > "${dem}srtm_55_07.tif" || exit 9
        exec @DOUBLE@ "$@"
        """,
    )
    run = make_run(hostile_dir / "r", install_dir=install)
    shared = run.root / "dem" / TILE
    (shared / f"{SRTM}.tif").write_text("stale leftover: must not shadow the zip")
    (shared / "dem.json").write_text('{"tile": "46RER"}')
    before = {p.name: p.stat().st_mtime_ns for p in shared.iterdir()}
    st = run_scene(run.cfg, run.rd.path, run.scenes[0], env=clean_env())
    assert st.state == "done", st.reason
    assert {p.name: p.stat().st_mtime_ns for p in shared.iterdir()} == before
    assert (shared / f"{SRTM}.tif").read_text() == "stale leftover: must not shadow the zip"
    dem = json.loads(run.rd.provenance_file(run.scenes[0]).read_text())["dem"]
    assert dem["dem_json_sha256"] == sha256(b'{"tile": "46RER"}')
    assert [f["name"] for f in dem["files"]] == ["dem.json", f"{SRTM}.tif", f"{SRTM}.zip"]


def test_cli_resolves_the_scene_from_slurm_lsf_and_index(hostile_dir: Path) -> None:
    run = make_run(hostile_dir, n=4)
    a, b, c, d = run.scenes
    res = run.cli(env=clean_env(SLURM_ARRAY_TASK_ID="1", SLURM_JOB_ID="991"))
    assert res.returncode == EXIT_DONE, res.stderr
    assert f"{b}: done" in res.stdout
    assert run.state(b).job_id == "991"
    assert run.rd.read_state(a) is None and run.rd.read_state(c) is None
    # LSF arrays are 1-based: element 1 with --offset 2 is line 2
    res = run.cli("--offset", "2", env=clean_env(LSB_JOBINDEX="1", LSB_JOBID="77"))
    assert res.returncode == EXIT_DONE, res.stderr
    assert run.state(c).job_id == "77[1]"
    assert run.rd.read_state(a) is None and run.rd.read_state(d) is None
    # --index wins over the environment; empty variables (apptainer --env passthrough) are unset
    res = run.cli("--index", "0", "--batch", "all", env=clean_env(SLURM_ARRAY_TASK_ID="3", SLURM_JOB_ID=""))
    assert res.returncode == EXIT_DONE, res.stderr
    assert run.state(a).state == "done" and run.state(a).job_id is None
    assert run.rd.read_state(d) is None
    assert len(published_provenance(run.l2a_dir)) == 3


def test_cli_usage_errors_exit_2_and_touch_nothing(run1: Run) -> None:
    for args, env, msg in [
        ((), clean_env(), "expected --index, SLURM_ARRAY_TASK_ID or LSB_JOBINDEX"),
        ((), clean_env(SLURM_ARRAY_TASK_ID=""), "expected --index"),
        ((), clean_env(LSB_JOBINDEX="0"), "expected --index"),  # 0: an LSF job that is no array
        (("--index", "1"), clean_env(), "expected an array index in 0..0, found 1"),
        (("--index", "0", "--batch", "nope"), clean_env(), "expected batch file nope.txt"),
        ((), clean_env(SLURM_ARRAY_TASK_ID="x"), "expected an integer in $SLURM_ARRAY_TASK_ID"),
    ]:
        res = run1.cli(*args, env=env)
        assert res.returncode == EXIT_USAGE, (args, res.stdout, res.stderr)
        assert msg in res.stderr
    res = subprocess.run(
        [S2KIT, "worker", "--run-dir", str(run1.root / "no run here"), "--index", "0"],
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert res.returncode == EXIT_USAGE and "config.json" in res.stderr
    assert not (run1.rd.path / "state").exists() and not (run1.rd.path / "logs").exists()


def test_task_index_rules() -> None:
    assert task_index(5, 10, {}) == 15
    assert task_index(None, 0, {"SLURM_ARRAY_TASK_ID": "0"}) == 0
    assert task_index(None, 3, {"SLURM_ARRAY_TASK_ID": " 4 ", "LSB_JOBINDEX": "9"}) == 7
    assert task_index(None, 0, {"SLURM_ARRAY_TASK_ID": "", "LSB_JOBINDEX": "1"}) == 0
    assert task_index(None, 1000, {"LSB_JOBINDEX": "1000"}) == 1999
    for env in ({}, {"LSB_JOBINDEX": "0"}, {"SLURM_ARRAY_TASK_ID": "", "LSB_JOBINDEX": ""}):
        with pytest.raises(UsageError):
            task_index(None, 0, env)
    with pytest.raises(UsageError):
        task_index(-1, 0, {})
    assert job_id_from_env({"SLURM_JOB_ID": "12", "LSB_JOBID": "3"}) == "12"
    assert job_id_from_env({"LSB_JOBID": "3", "LSB_JOBINDEX": "0"}) == "3"
    assert job_id_from_env({"LSB_JOBID": "3", "LSB_JOBINDEX": "5"}) == "3[5]"
    assert job_id_from_env({}) is None


def test_config_snapshot_round_trips(run1: Run) -> None:
    assert load_run_config(run1.rd.path) == run1.cfg


# --------------------------------------------------------------------------- failures
@pytest.mark.parametrize(
    ("fault", "reason", "exit_code"),
    [
        ("crash", "exit-code: 1 (RuntimeError: simulated crash of the Sen2Cor TEST DOUBLE)", 1),
        ("critical", "log-error: CRITICAL: simulated: DEM could not be read, continuing with a flat DEM", 0),
        ("missing-band", "validation: missing-band", 0),
    ],
)
def test_fault_fails_with_its_reason_after_all_retries(
    hostile_dir: Path, fault: str, reason: str, exit_code: int
) -> None:
    run = make_run(hostile_dir, retries=2)
    scene = run.scenes[0]
    run.fault(scene, fault)
    res = run.cli("--index", "0")
    assert res.returncode == EXIT_FAILED, res.stderr
    st = run.state(scene)
    assert (st.state, st.reason, st.exit_code, st.attempt) == ("failed", reason, exit_code, 3)
    assert f"failed: {reason}" in res.stderr
    assert st.l2a is None and st.log == str(run.rd.log_file(scene, 3))
    assert run.logs(scene) == ["attempt-1.log", "attempt-2.log", "attempt-3.log"]
    for n in (1, 2, 3):
        assert f"fault mode = {fault}" in run.rd.log_file(scene, n).read_text()
        assert f"s2kit: attempt {n} failed: {reason}" in run.rd.log_file(scene, n).read_text()
    assert_nothing_published(run)
    assert not run.scene_scratch(scene).exists()


def test_sen2cor_going_on_with_flat_terrain_was_published_as_a_good_l2a(hostile_dir: Path) -> None:
    """Sen2Cor whose DEM step fails logs "Application will continue with a flat terrain" and exits
    0 (Force_Exit_On_DEM_Error FALSE, or not honoured): with a DEM given that L2A is wrong and looks
    right. The attempt fails dem-not-used (not retried: the same DEM fails again), nothing published."""
    run = make_run(hostile_dir, retries=2)
    scene = run.scenes[0]
    run.fault(scene, "flat-dem")
    res = run.cli("--index", "0")
    assert res.returncode == EXIT_FAILED, res.stderr
    st = run.state(scene)
    assert (st.state, st.attempt) == ("failed", 1)
    assert st.reason == (
        "dem-not-used: Sen2Cor did not use the DEM: L2A_BAND_IO: Application will continue with a flat terrain"
    )
    assert_nothing_published(run)


def test_flat_terrain_asked_for_is_no_failure(hostile_dir: Path) -> None:
    """With sen2cor.dem = "none" flat terrain is what the config asked for: the same log line is
    no failure."""
    run = make_run(hostile_dir, dem=False)
    scene = run.scenes[0]
    run.fault(scene, "flat-dem")
    res = run.cli("--index", "0")
    assert res.returncode == 0, res.stderr
    assert run.state(scene).state == "done"


def test_missing_band_findings_are_in_the_log(run1: Run) -> None:
    scene = run1.scenes[0]
    run1.fault(scene, "missing-band")
    st = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    assert st.reason == "validation: missing-band"
    assert "s2kit: validation: error missing-band:" in Path(st.log or "").read_text()
    assert "_B04_" in Path(st.log or "").read_text()


def test_wrong_baseline_in_the_output_is_a_validation_failure(hostile_dir: Path) -> None:
    """Sen2Cor ignoring the PB GIPP (placeholder N9999 products) must not be published."""
    install = wrapper_install(
        hostile_dir / "pb ignored",
        """\
        args=(); skip=0
        for a in "$@"; do
          if [ "$skip" = 1 ]; then skip=0; continue; fi
          if [ "$a" = --GIP_L2A_PB ]; then skip=1; continue; fi
          args+=("$a")
        done
        SEN2COR_HOME=/nonexistent exec @DOUBLE@ "${args[@]}"
        """,
    )
    run = make_run(hostile_dir / "r", install_dir=install, retries=0)
    st = run_scene(run.cfg, run.rd.path, run.scenes[0], env=clean_env())
    assert st.state == "failed"
    assert st.reason == "validation: offset-mismatch,baseline-mismatch"
    assert_nothing_published(run)


def test_no_output_and_multiple_outputs(hostile_dir: Path) -> None:
    install = wrapper_install(
        hostile_dir / "odd sen2cor",
        """\
        out=""; prev=""
        for a in "$@"; do [ "$prev" = --output_dir ] && out="$a"; prev="$a"; done
        case "$(cat "$1/S2KIT_TEST_MODE")" in
          none) echo "did nothing"; exit 0 ;;
          two) @DOUBLE@ "$@" && for p in "$out"/S2*.SAFE; do cp -r "$p" "${p%_*}_20000101T000000.SAFE"; done ;;
        esac
        """,
    )
    run = make_run(hostile_dir / "r", n=2, install_dir=install, retries=0)
    a, b = run.scenes
    (run.l1c[a] / "S2KIT_TEST_MODE").write_text("none")
    (run.l1c[b] / "S2KIT_TEST_MODE").write_text("two")
    st = run_scene(run.cfg, run.rd.path, a, env=clean_env())
    assert st.reason == "no-output: L2A_Process exited 0 but wrote no S2*_MSIL2A_*.SAFE"
    st = run_scene(run.cfg, run.rd.path, b, env=clean_env())
    assert st.state == "failed" and (st.reason or "").startswith("multiple-outputs: S2A_MSIL2A_")
    assert (st.reason or "").count("S2A_MSIL2A_") == 2
    assert_nothing_published(run)


def test_hang_times_out_and_the_whole_process_group_dies(hostile_dir: Path) -> None:
    pids = hostile_dir / "pids"
    install = wrapper_install(
        hostile_dir / "hanging sen2cor",
        f"""\
        sleep 300 &
        echo "$$ $!" > {shlex.quote(str(pids))}
        exec @DOUBLE@ "$@"
        """,
    )
    run = make_run(hostile_dir / "r", install_dir=install, retries=3)
    scene = run.scenes[0]
    run.fault(scene, "hang")
    res = run.cli("--index", "0", env=clean_env(S2KIT_TIMEOUT_SECONDS="1.5"))
    assert res.returncode == EXIT_FAILED, res.stderr
    st = run.state(scene)
    assert st.state == "failed" and st.attempt == 1  # a timeout is not retried
    assert (st.reason or "").startswith("timeout: L2A_Process ran longer than 1.5 s")
    assert run.logs(scene) == ["attempt-1.log"]
    assert "hanging on purpose" in run.rd.log_file(scene, 1).read_text()
    double_pid, grandchild = (int(x) for x in pids.read_text().split())
    assert not alive(double_pid) and not alive(grandchild)
    assert_nothing_published(run)


def test_a_fault_that_goes_away_is_retried_to_success(hostile_dir: Path) -> None:
    install = wrapper_install(
        hostile_dir / "flaky sen2cor",
        """\
        @DOUBLE@ "$@"; rc=$?
        rm -f "$1/S2KIT_DOUBLE_FAULT"   # the fault strikes once
        exit $rc
        """,
    )
    run = make_run(hostile_dir / "r", install_dir=install, retries=1)
    scene = run.scenes[0]
    run.fault(scene, "crash")
    st = run_scene(run.cfg, run.rd.path, scene, env=clean_env())
    assert (st.state, st.attempt, st.reason) == ("done", 2, None)
    assert run.logs(scene) == ["attempt-1.log", "attempt-2.log"]
    assert "s2kit: attempt 1 failed: exit-code: 1" in run.rd.log_file(scene, 1).read_text()
    assert "simulated crash" in run.rd.log_file(scene, 1).read_text()
    assert json.loads(run.rd.provenance_file(scene).read_text())["attempt"] == 2
    assert list(published_provenance(run.l2a_dir)) == [scene]
    assert validate_product(Path(st.l2a or ""), expect_sen2cor="2.9").valid


def test_a_failed_scene_is_processed_again_by_the_next_task(run1: Run) -> None:
    scene = run1.scenes[0]
    run1.fault(scene, "critical")
    assert run_scene(run1.cfg, run1.rd.path, scene, env=clean_env()).attempt == 2  # 1 + 1 retry
    (run1.l1c[scene] / "S2KIT_DOUBLE_FAULT").unlink()
    st = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    assert (st.state, st.attempt) == ("done", 3)
    assert run1.logs(scene) == ["attempt-1.log", "attempt-2.log", "attempt-3.log"]


# --------------------------------------------------------------------------- lock, rerun, takeover
def test_locked_scene_exits_75_and_touches_nothing(run1: Run) -> None:
    scene = run1.scenes[0]
    with run1.rd.lock(scene):
        res = run1.cli("--index", "0")
        assert res.returncode == EXIT_LOCKED, res.stderr
        assert "locked by another worker" in res.stderr
        with pytest.raises(SceneLocked):
            run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    assert run1.rd.read_state(scene) is None
    assert run1.logs(scene) == []
    assert not run1.cfg.paths.scratch_dir.exists()
    assert not run1.l2a_dir.exists()
    assert not (run1.rd.path / "provenance").exists()


def test_rerun_of_a_done_scene_does_nothing(run1: Run) -> None:
    scene = run1.scenes[0]
    st = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    product = Path(st.l2a or "")
    watched = [
        run1.rd.state_file(scene),
        product,
        run1.l2a_dir / (product.name + PROVENANCE_SUFFIX),
        run1.rd.provenance_file(scene),
        run1.rd.log_file(scene, 1),
        run1.l2a_dir,
    ]
    before = [p.stat().st_mtime_ns for p in watched]
    res = run1.cli("--index", "0")
    assert res.returncode == EXIT_DONE, res.stderr
    assert f"{scene}: done:" in res.stdout
    assert [p.stat().st_mtime_ns for p in watched] == before
    assert run1.logs(scene) == ["attempt-1.log"]
    assert run1.rd.read_state(scene) == st


def test_done_state_without_its_product_is_processed_again(run1: Run) -> None:
    scene = run1.scenes[0]
    first = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    shutil.rmtree(first.l2a or "")
    (run1.l2a_dir / (Path(first.l2a or "").name + PROVENANCE_SUFFIX)).unlink()
    again = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    assert (again.state, again.attempt) == ("done", 2)
    assert Path(again.l2a or "").is_dir()


class L2AWatcher:
    """Polls the L2A dir; every entry under a final name must be a complete, provenanced product."""

    def __init__(self, l2a_dir: Path, scene: str) -> None:
        self.l2a_dir, self.scene = l2a_dir, scene
        self.violations: list[str] = []
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                names = os.listdir(self.l2a_dir)
            except FileNotFoundError:
                names = []
            for name in names:
                self.seen.add(name)
                if name.startswith(".") or not name.endswith(".SAFE"):
                    continue
                product = self.l2a_dir / name
                sidecar = self.l2a_dir / (name + PROVENANCE_SUFFIX)
                if not (product / "MTD_MSIL2A.xml").is_file() or not sidecar.is_file():
                    self.violations.append(f"{name}: incomplete under its final name")
            time.sleep(0.005)

    def __enter__(self) -> L2AWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def slow_run(hostile_dir: Path) -> Iterator[tuple[Run, Path]]:
    """A run whose L2A_Process leaves a grandchild (``sleep``) and records its pids."""
    pids = hostile_dir / "pids"
    install = wrapper_install(
        hostile_dir / "slow sen2cor",
        f"""\
        sleep 300 &
        echo "$$ $!" >> {shlex.quote(str(pids))}
        exec @DOUBLE@ "$@"
        """,
    )
    run = make_run(hostile_dir / "r", install_dir=install)
    yield run, pids
    for line in pids.read_text().splitlines() if pids.exists() else []:
        for pid in (int(x) for x in line.split()):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_kill_9_mid_scene_then_a_new_worker_takes_over(slow_run: tuple[Run, Path]) -> None:
    run, pids = slow_run
    scene = run.scenes[0]
    run.fault(scene, "slow:30")
    with L2AWatcher(run.l2a_dir, scene) as watcher:
        worker = subprocess.Popen(
            [S2KIT, "worker", "--run-dir", str(run.rd.path), "--index", "0"],
            env=clean_env(),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(
                lambda: pids.exists() and "fault mode = slow:30" in _read(run.rd.log_file(scene, 1)),
                "L2A_Process",
            )
            st = run.state(scene)
            assert (st.state, st.pid, st.attempt) == ("running", worker.pid, 1)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        double_pid, grandchild = (int(x) for x in pids.read_text().split())
        wait_for(lambda: not alive(double_pid), "PR_SET_PDEATHSIG to kill the direct child")
        assert alive(grandchild)  # an orphan of the dead worker, still holding SEN2COR_HOME
        dead = run.state(scene)
        assert (dead.state, dead.pid, dead.host) == ("running", worker.pid, os.uname().nodename)
        assert not alive(dead.pid or 0)
        assert is_stale(run.rd, dead)
        assert run.published() == []
        stale_scratch = list(run.scene_scratch(scene).iterdir())
        assert stale_scratch  # the dead worker's scratch is still there

        run.fault(scene, "slow:0.2")
        res = run.cli("--index", "0")
        assert res.returncode == EXIT_DONE, res.stderr
    st = run.state(scene)
    assert (st.state, st.attempt) == ("done", 2)
    assert run.logs(scene) == ["attempt-1.log", "attempt-2.log"]
    assert not alive(grandchild)  # the takeover killed the orphan
    assert not run.scene_scratch(scene).exists()
    assert watcher.violations == []
    assert list(published_provenance(run.l2a_dir)) == [scene]
    assert not [n for n in run.published() if n.startswith(".")]


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def test_sigterm_fails_the_scene_and_kills_sen2cor(slow_run: tuple[Run, Path]) -> None:
    run, pids = slow_run
    scene = run.scenes[0]
    run.fault(scene, "slow:30")
    worker = subprocess.Popen(
        [S2KIT, "worker", "--run-dir", str(run.rd.path), "--index", "0"],
        env=clean_env(),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: pids.exists() and "fault mode" in _read(run.rd.log_file(scene, 1)), "L2A_Process")
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == EXIT_FAILED, err
    st = run.state(scene)
    assert (st.state, st.reason, st.attempt) == ("failed", "signal: worker received SIGTERM", 1)
    assert not any(alive(int(p)) for p in pids.read_text().split())
    assert_nothing_published(run)
    assert not run.scene_scratch(scene).exists()


def test_stale_running_state_with_a_finished_publication_is_recorded_done(run1: Run) -> None:
    """Killed between the final rename and the state write: adopt, do not process again."""
    scene = run1.scenes[0]
    done = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    run1.rd.write_state(SceneState(scene, "running", attempt=1, host="gone", pid=1, l2a=done.l2a))
    st = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    assert (st.state, st.l2a, st.attempt) == ("done", done.l2a, 1)
    assert run1.logs(scene) == ["attempt-1.log"]


def test_stale_running_state_with_a_half_publication_is_cleaned_up(run1: Run) -> None:
    """Killed mid-publication: the .partial dir and the orphan provenance go, the scene reruns."""
    scene = run1.scenes[0]
    final = run1.l2a_dir / "S2A_MSIL2A_20210909T042701_N0300_R133_T46RER_20200101T000000.SAFE"
    partial = run1.l2a_dir / (".partial-" + final.name)
    (partial / "GRANULE").mkdir(parents=True)
    (run1.l2a_dir / (final.name + PROVENANCE_SUFFIX)).write_text(
        json.dumps({"l1c": {"scene": scene}, "validated": True})
    )
    run1.rd.write_state(SceneState(scene, "running", attempt=4, host="elsewhere", pid=1, l2a=str(final)))
    st = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    assert (st.state, st.attempt) == ("done", 5)
    assert Path(st.l2a or "") != final
    assert run1.published() == sorted([Path(st.l2a or "").name, Path(st.l2a or "").name + PROVENANCE_SUFFIX])


def test_is_stale_only_for_running_without_a_live_lock(run1: Run) -> None:
    scene = run1.scenes[0]
    st = SceneState(scene, "running", attempt=1, host="h", pid=1)
    assert is_stale(run1.rd, st)
    with run1.rd.lock(scene):
        assert not is_stale(run1.rd, st)
    assert not is_stale(run1.rd, SceneState(scene, "done"))


# --------------------------------------------------------------------------- inputs
def test_zip_input_is_extracted_in_scratch(hostile_dir: Path) -> None:
    run = make_run(hostile_dir, zipped=True)
    scene = run.scenes[0]
    assert run.l1c[scene].name.endswith(".SAFE.zip")
    res = run.cli("--index", "0")
    assert res.returncode == EXIT_DONE, res.stderr
    doc = json.loads(run.rd.provenance_file(scene).read_text())
    assert doc["l1c"]["staged"] == "zip-extract" and doc["l1c"]["path"] == str(run.l1c[scene])
    assert doc["sen2cor"]["argv"][1].startswith(str(run.cfg.paths.scratch_dir / scene))
    assert validate_product(Path(run.state(scene).l2a or ""), expect_sen2cor="2.9").valid
    assert not run.cfg.paths.scratch_dir.joinpath(scene).exists()


def test_zip_slip_is_refused(hostile_dir: Path) -> None:
    run = make_run(hostile_dir, zipped=True)
    scene = run.scenes[0]
    evil = hostile_dir / "evil.txt"
    with zipfile.ZipFile(run.l1c[scene], "a") as zf:
        zf.writestr(f"{scene}.SAFE/../../../../evil.txt", b"escaped")
    st = run_scene(run.cfg, run.rd.path, scene, env=clean_env())
    assert st.state == "failed" and (st.reason or "").startswith("input: ")
    assert "would be written outside the product" in (st.reason or "")
    assert st.attempt == 1  # input failures are not retried
    assert not evil.exists()
    assert not list(hostile_dir.rglob("evil.txt"))
    assert_nothing_published(run)


@pytest.mark.parametrize(
    "member",
    ["../evil", "/abs/evil", "X.SAFE/../../evil", "X.SAFE\\..\\evil", "C:/evil"],
)
def test_extract_zip_refuses_escaping_members(tmp_path: Path, member: str) -> None:
    z = tmp_path / "p.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("X.SAFE/MTD_MSIL1C.xml", b"<x/>")
        zf.writestr(member, b"escaped")
    with pytest.raises(InputError, match="outside the product"):
        extract_zip(z, tmp_path / "dest", "X")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "dest" / "X.SAFE").exists()


def test_extract_zip_refuses_symlink_members(tmp_path: Path) -> None:
    z = tmp_path / "p.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("X.SAFE/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        extract_zip(z, tmp_path / "dest", "X")


def test_extract_zip_without_top_folder(tmp_path: Path) -> None:
    z = tmp_path / "p.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("MTD_MSIL1C.xml", b"<x/>")
        zf.writestr("GRANULE/G/MTD_TL.xml", b"<y/>")
    product = extract_zip(z, tmp_path / "dest", "S")
    assert product == tmp_path / "dest" / "S.SAFE"
    assert (product / "GRANULE" / "G" / "MTD_TL.xml").read_bytes() == b"<y/>"


GCS_DIRS = ["AUX_DATA", "HTML", "rep_info"]


def _drop_empty_dirs(product: Path) -> list[str]:
    """What Google's bucket does: the empty folders are gone."""
    gone = list(GCS_DIRS)
    for d in GCS_DIRS:
        (product / d).rmdir()
    for g in (product / "GRANULE").iterdir():  # (a real granule's QI_DATA holds masks: kept)
        (g / "AUX_DATA").rmdir()
        gone.append(f"GRANULE/{g.name}/AUX_DATA")
    for ds in (product / "DATASTRIP").iterdir():
        (ds / "QI_DATA").rmdir()
        gone.append(f"DATASTRIP/{ds.name}/QI_DATA")
    return gone


def _store_snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under *root* (and *root* itself): kind, size and mtime (ns)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in [".", *dirs, *files] if dirpath == str(root) else [*dirs, *files]:
            p = Path(dirpath) / name
            st = p.lstat()
            kind = "link" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else "file"
            out[str(p.relative_to(root))] = (kind, st.st_size if kind == "file" else 0, st.st_mtime_ns)
    return out


@pytest.mark.parametrize("dropped", [False, True], ids=["complete", "gcs-dropped-empty-dirs"])
def test_l1c_store_is_never_written_by_sen2cor_or_s2kit(hostile_dir: Path, dropped: bool) -> None:
    """Sen2Cor gets a symlink tree in scratch: its report file next to its input (the test
    double writes one, as real Sen2Cor in TOOLBOX mode may) and the repair of the folders GCS
    drops land there, never in the user's store."""
    run = make_run(hostile_dir, n=2)
    gone = {s: _drop_empty_dirs(run.l1c[s]) for s in run.scenes} if dropped else {}
    store = run.root / "l1c"
    before = _store_snapshot(store)
    for i, scene in enumerate(run.scenes):
        out = run_task(run.rd.path, index=i, env=clean_env())
        assert out.exit_code == EXIT_DONE, out.message
        doc = json.loads(run.rd.provenance_file(scene).read_text())
        assert doc["l1c"]["staged"] == "symlink-tree"
        assert sorted(doc["l1c"]["repaired_dirs"]) == sorted(gone.get(scene, []))
        staged = Path(doc["sen2cor"]["argv"][1])
        assert staged.parent.parent == run.scene_scratch(scene) and staged.name == run.l1c[scene].name
        assert "L2A_Process output" in _read(Path(doc["log"]))
    assert _store_snapshot(store) == before
    assert not list(store.rglob("L2A_*_report.xml"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_read_only_l1c_store_works(hostile_dir: Path) -> None:
    run = make_run(hostile_dir)
    scene = run.scenes[0]
    _drop_empty_dirs(run.l1c[scene])
    store = run.root / "l1c"
    modes = {}
    for dirpath, _dirs, _files in os.walk(store):
        modes[dirpath] = os.stat(dirpath).st_mode
    before = _store_snapshot(store)
    try:
        for d in modes:
            os.chmod(d, 0o555)
        st = run_scene(run.cfg, run.rd.path, scene, env=clean_env())
    finally:
        for d, mode in modes.items():
            os.chmod(d, stat.S_IMODE(mode))
    assert st.state == "done", st.reason
    assert _store_snapshot(store) == before


def test_read_only_gcs_style_input_is_repaired_in_a_symlink_tree(
    run1: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s2kit.worker as worker_mod

    scene = run1.scenes[0]
    product = run1.l1c[scene]
    gone = _drop_empty_dirs(product)
    real_repair = worker_mod.repair_empty_dirs

    def read_only_source(root: Path) -> list[str]:  # an ro bind: root bypasses chmod, so simulate
        if root == product:
            raise PermissionError(30, "Read-only file system", str(root))
        return real_repair(root)

    monkeypatch.setattr(worker_mod, "repair_empty_dirs", read_only_source)
    st = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    assert st.state == "done", st.reason
    assert not any((product / d).exists() for d in gone)  # the input was not touched
    doc = json.loads(run1.rd.provenance_file(scene).read_text())
    assert doc["l1c"]["staged"] == "symlink-tree" and sorted(doc["l1c"]["repaired_dirs"]) == sorted(gone)
    staged = Path(doc["sen2cor"]["argv"][1])
    assert staged.name == product.name and staged.parent.parent == run1.cfg.paths.scratch_dir / scene
    assert not staged.exists()  # scratch cleaned after success


def test_skipped_or_unknown_scene_is_refused(hostile_dir: Path) -> None:
    run = make_run(hostile_dir)
    build_l1c_tree(hostile_dir / "l1c", baseline="05.09")  # gated for Sen2Cor 2.9
    make_plan(run.cfg, check_resources=False)
    skipped = next(e for e in run.rd.read_plan() if e.decision == "skipped")
    with pytest.raises(InputError, match="planned as skipped"):
        run_scene(run.cfg, run.rd.path, skipped.scene, env=clean_env())
    with pytest.raises(InputError, match="in the plan"):
        run_scene(run.cfg, run.rd.path, "S2A_MSIL1C_20990101T000000_N0301_R001_T01AAA_20990101T000000")
    assert run.rd.read_states() == {}


def test_run_task_reports_outcomes(run1: Run) -> None:
    out = run_task(run1.rd.path, index=0, env=clean_env())
    assert (out.exit_code, out.scene) == (EXIT_DONE, run1.scenes[0])
    assert out.state is not None and out.state.state == "done"
    assert run_task(run1.rd.path, env=clean_env()).exit_code == EXIT_USAGE


def test_failed_publication_leaves_nothing_under_a_final_name(
    run1: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s2kit.provenance as provenance_mod

    real_write = provenance_mod.atomic_write_text

    def disk_full_for_sidecars(path: Path, text: str, mode: int = 0o644) -> Path:
        if str(path).endswith(PROVENANCE_SUFFIX):
            raise OSError(28, "No space left on device", str(path))
        return real_write(path, text, mode)

    monkeypatch.setattr(provenance_mod, "atomic_write_text", disk_full_for_sidecars)
    scene = run1.scenes[0]
    st = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    assert st.state == "failed" and (st.reason or "").startswith("publish: ")
    assert "No space left on device" in (st.reason or "")
    assert st.attempt == 1  # not retried
    assert run1.published() == []  # neither the product nor its .partial- copy
    assert not run1.scene_scratch(scene).exists()


def test_apptainer_runtime_records_the_image_hash_once_per_run(hostile_dir: Path) -> None:
    image = hostile_dir / "images" / "sen2cor 2.9.sif"
    image.parent.mkdir()
    image.write_bytes(os.urandom(4096))
    run = make_run(hostile_dir / "r", n=2, dem=False)
    cfg = run.cfg.model_copy(
        update={"sen2cor": run.cfg.sen2cor.model_copy(update={"runtime": "apptainer", "image": image})}
    )
    env = clean_env(SEN2COR_BIN=str(DOUBLE), APPTAINER_CONTAINER=str(image))
    a, b = run.scenes
    assert run_scene(cfg, run.rd.path, a, env=env).state == "done"
    rec = json.loads(run.rd.provenance_file(a).read_text())["container"]
    digest = sha256(image.read_bytes())
    assert rec == {"image": str(image), "inside": str(image), "sha256": digest, "hashed": str(image)}
    assert json.loads(run.rd.provenance_file(a).read_text())["sen2cor"]["executable"] == str(DOUBLE)
    cache = run.rd.path / "cache" / "sha256.json"
    doc = json.loads(cache.read_text())
    doc[str(image)]["sha256"] = "from-the-cache"  # same size and mtime: the next task must not rehash
    cache.write_text(json.dumps(doc))
    assert run_scene(cfg, run.rd.path, b, env=env).state == "done"
    assert json.loads(run.rd.provenance_file(b).read_text())["container"]["sha256"] == "from-the-cache"


def test_publish_across_file_systems_copies(run1: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import s2kit.worker as worker_mod

    real_rename = os.rename
    scratch = str(run1.cfg.paths.scratch_dir)

    def no_cross_device(src: Any, dst: Any) -> None:
        if str(src).startswith(scratch) and not str(dst).startswith(scratch):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(src, dst)

    monkeypatch.setattr(worker_mod.os, "rename", no_cross_device)
    st = run_scene(run1.cfg, run1.rd.path, run1.scenes[0], env=clean_env())
    assert st.state == "done", st.reason
    assert validate_product(Path(st.l2a or ""), expect_sen2cor="2.9").valid
    assert not [n for n in run1.published() if n.startswith(".")]


def test_setup_failures_are_final_and_recorded(hostile_dir: Path) -> None:
    run = make_run(hostile_dir, install_dir=hostile_dir / "no sen2cor here", retries=3)
    st = run_scene(run.cfg, run.rd.path, run.scenes[0], env=clean_env())
    assert (st.state, st.attempt) == ("failed", 1)
    assert (st.reason or "").startswith("setup: ") and "bin/L2A_Process" in (st.reason or "")
    blocker = hostile_dir / "a file"
    blocker.write_text("")
    paths = run.cfg.paths.model_copy(update={"scratch_dir": blocker / "scratch"})
    cfg = run.cfg.model_copy(
        update={"paths": paths, "sen2cor": run.cfg.sen2cor.model_copy(update={"install_dir": DOUBLE_HOME})}
    )
    st = run_scene(cfg, run.rd.path, run.scenes[0], env=clean_env())
    assert (st.state, st.attempt) == ("failed", 2)
    assert (st.reason or "").startswith("setup: ") and "Not a directory" in (st.reason or "")
    assert_nothing_published(run)


# --------------------------------------------------------------------------- DEM (issue 12 item 4)
def test_vanished_tile_dem_fails_no_dem_and_never_uses_another_tiles_dem(hostile_dir: Path) -> None:
    """The tile's DEM folder disappears after the plan: the attempt fails ``no-dem`` (final, not
    retried); neither the dem_dir root nor another tile's folder stands in for it."""
    run = make_run(hostile_dir, retries=2)
    dem = run.root / "dem"
    shutil.rmtree(dem / TILE)
    (dem / "17SQV").mkdir()
    (dem / "17SQV" / "srtm_21_05.zip").write_bytes(b"PK another tile's DEM")
    (dem / f"{SRTM}.zip").write_bytes(b"PK loose zip at the dem_dir root")
    scene = run.scenes[0]
    out = run_task(run.rd.path, index=0, env=clean_env())
    assert out.exit_code == EXIT_FAILED, out.message
    st = run.state(scene)
    assert (st.state, st.attempt) == ("failed", 1)
    assert (st.reason or "").startswith("no-dem: expected a DEM folder ") and TILE in (st.reason or "")
    assert "\n" not in (st.reason or "")
    assert not run.rd.provenance_file(scene).exists()
    assert_nothing_published(run)
    assert "17SQV" not in _read(Path(st.log or "")) and "srtm_21_05" not in _read(Path(st.log or ""))


def test_tile_dem_without_the_needed_srtm_zip_fails_no_dem(hostile_dir: Path) -> None:
    run = make_run(hostile_dir)
    (run.root / "dem" / TILE / f"{SRTM}.zip").unlink()
    (run.root / "dem" / TILE / "srtm_58_06.zip").write_bytes(b"PK wrong SRTM tile")
    st = run_scene(run.cfg, run.rd.path, run.scenes[0], env=clean_env())
    assert st.state == "failed" and (st.reason or "").startswith(f"no-dem: expected {SRTM}.zip in ")


# --------------------------------------------------------------------------- publish (item 8)
def test_read_only_l2a_dir_fails_publish_with_one_line_reason(
    run1: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EROFS on the L2A dir (rename into it, and unlink there while cleaning up): the scene is
    ``failed`` with ``publish: Read-only file system``, no traceback, nothing published."""
    import errno

    l2a = str(run1.l2a_dir)
    real_rename, real_unlink = os.rename, os.unlink

    def ro_rename(src: Any, dst: Any) -> None:
        if str(dst).startswith(l2a):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        real_rename(src, dst)

    def ro_unlink(path: Any, *args: Any, **kw: Any) -> None:
        if str(path).startswith(l2a):  # Linux: EROFS even when the file does not exist
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        real_unlink(path, *args, **kw)

    monkeypatch.setattr(os, "rename", ro_rename)
    monkeypatch.setattr(os, "unlink", ro_unlink)
    scene = run1.scenes[0]
    out = run_task(run1.rd.path, index=0, env=clean_env())
    assert out.exit_code == EXIT_FAILED, out.message
    st = run1.state(scene)
    assert st.state == "failed" and st.attempt == 1
    assert (st.reason or "").startswith("publish: Read-only file system (")
    assert "\n" not in (st.reason or "") and "Errno" not in (st.reason or "")
    assert not [n for n in run1.published() if n.endswith(".SAFE")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_unwritable_l2a_dir_fails_publish_with_one_line_reason(run1: Run) -> None:
    run1.l2a_dir.mkdir()
    run1.l2a_dir.chmod(0o555)
    try:
        out = run_task(run1.rd.path, index=0, env=clean_env())
    finally:
        run1.l2a_dir.chmod(0o755)
    assert out.exit_code == EXIT_FAILED, out.message
    st = run1.state(run1.scenes[0])
    assert st.state == "failed"
    assert (st.reason or "").startswith("publish: Permission denied (") and "Errno" not in (st.reason or "")
    assert run1.published() == []


# --------------------------------------------------------------------------- GIPP settings (item 5)
def test_gipp_settings_digest_ignores_per_task_paths_and_threads_but_not_science(tmp_path: Path) -> None:
    from s2kit.gipp import write_gipp_set
    from s2kit.sen2cor import gipp_science_settings

    def digest(task: str, threads: int, tile: str = TILE, **kw: Any) -> str:
        staged = tmp_path / task / "dem"
        files = write_gipp_set(
            GippSettings(dem_dir=str(staged), threads=threads, **kw), tmp_path / task / "cfg"
        )
        return settings_sha256(gipp_science_settings(files, tmp_path / "dem" / tile, staged))

    base = digest("a", 1)
    assert digest("b", 8) == base  # another task's scratch path, another thread count
    assert digest("c", 1, tile="17SQV") == base  # another tile of the same dem_dir
    assert digest("d", 1, overrides=(("Aerosol_Type", "MARITIME"),)) != base
    assert digest("e", 1, baseline="03.01") != base


# --------------------------------------------------------------------------- one L1C, one L2A (finding 2)
def test_lost_state_of_a_published_scene_does_not_publish_it_twice(run1: Run) -> None:
    scene = run1.scenes[0]
    first = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    assert first.state == "done", first.reason
    published = run1.published()
    run1.rd.state_file(scene).write_text("")  # torn / truncated: status would call it todo
    again = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    assert (again.state, again.l2a, again.exit_code) == ("done", first.l2a, 0)
    assert run1.published() == published  # still one L2A and its sidecar
    assert run1.logs(scene) == ["attempt-1.log"]  # Sen2Cor did not run again


def test_second_run_dir_sharing_the_l2a_dir_finds_the_scene_published(hostile_dir: Path) -> None:
    a = make_run(hostile_dir / "a")
    b = make_run(hostile_dir / "b")
    cfg_b = b.cfg.model_copy(update={"paths": b.cfg.paths.model_copy(update={"l2a_dir": a.l2a_dir})})
    scene = a.scenes[0]
    assert b.scenes == [scene]
    done_a = run_scene(a.cfg, a.rd.path, scene, env=clean_env())
    assert done_a.state == "done", done_a.reason
    done_b = run_scene(cfg_b, b.rd.path, scene, env=clean_env())
    assert (done_b.state, done_b.l2a) == ("done", done_a.l2a)
    assert len(a.published()) == 2  # one product + its sidecar
    assert b.logs(scene) == []
    assert json.loads(b.rd.provenance_file(scene).read_text())["l2a"]["path"] == done_a.l2a


def test_scene_published_by_another_run_while_sen2cor_ran_is_not_published_again(
    hostile_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s2kit.worker as worker_mod

    a = make_run(hostile_dir / "a")
    b = make_run(hostile_dir / "b")
    cfg_b = b.cfg.model_copy(update={"paths": b.cfg.paths.model_copy(update={"l2a_dir": a.l2a_dir})})
    scene = a.scenes[0]
    real_attempt = worker_mod._Task._attempt
    other: list[SceneState] = []

    def attempt_then_other_run_publishes(self: Any, attempt: int, log: Path) -> Any:
        result = real_attempt(self, attempt, log)
        if self.rd.path == b.rd.path and not other:  # run a finishes first, while b's Sen2Cor ran
            other.append(run_scene(a.cfg, a.rd.path, scene, env=clean_env()))
        return result

    monkeypatch.setattr(worker_mod._Task, "_attempt", attempt_then_other_run_publishes)
    st = run_scene(cfg_b, b.rd.path, scene, env=clean_env())
    assert other and other[0].state == "done"
    assert (st.state, st.l2a, st.reason) == ("done", other[0].l2a, None)
    assert len(a.published()) == 2  # one product + its sidecar, no second L2A, no .partial-
    assert "already published" in b.rd.log_file(scene, 1).read_text()
    assert not b.scene_scratch(scene).exists()


def test_full_l2a_disk_during_copy_gives_a_one_line_no_space_reason(
    run1: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 5: copytree's shutil.Error (a list of every failed file) became a cut repr."""
    import errno

    import s2kit.worker as worker_mod

    real_rename, real_copyfile = os.rename, shutil.copyfile
    scratch = str(run1.cfg.paths.scratch_dir)

    def no_cross_device(src: Any, dst: Any) -> None:
        if str(src).startswith(scratch) and not str(dst).startswith(scratch):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(src, dst)

    def disk_full(src: Any, dst: Any, **kw: Any) -> Any:
        if ".partial-" in str(dst):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_copyfile(src, dst, **kw)

    monkeypatch.setattr(worker_mod.os, "rename", no_cross_device)
    monkeypatch.setattr(shutil, "copyfile", disk_full)
    scene = run1.scenes[0]
    st = run_scene(run1.cfg, run1.rd.path, scene, env=clean_env())
    reason = st.reason or ""
    assert st.state == "failed" and reason.startswith("publish: No space left on device ("), reason
    assert "/.partial-S2A_MSIL2A_" in reason  # where: the file of the publication that failed
    assert ".SAFE/" in reason  # the file that failed
    assert "(+" in reason and "more)" in reason  # every band failed: one line says how many
    assert "\n" not in reason and "Error(" not in reason and "[Errno" not in reason
    assert len(reason) <= 300
    assert f"attempt 1 failed: {reason}\n" in run1.rd.log_file(scene, 1).read_text()
    assert run1.published() == []
