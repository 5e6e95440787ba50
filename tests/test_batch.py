"""Batch orchestration (s2kit.batch): status classification, submit filtering and chunking,
resubmit, the Sen2Cor-missing stop, an unreachable scheduler.

Scheduler commands are faked at the subprocess boundary (a runner that answers like
Slurm), or with fake executables on PATH for the CLI tests. The shared helpers are in
tests/support (configs, batch_runs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from s2kit.batch import (
    Sen2CorMissing,
    check_sen2cor,
    classify,
    format_status,
    load_target,
    resubmit_failed,
    status,
    submit,
)
from s2kit.errors import UsageError
from s2kit.plan import make_plan
from s2kit.runs import JobRecord, PlanEntry, RunDir, SceneState
from s2kit.schedulers import SlurmScheduler
from tests.support.batch_runs import FAKE_LSF, FakeSlurm, s2kit_cli
from tests.support.configs import batch_config, write_toml
from tests.support.safe_trees import build_l1c_tree


# ============================================================================ classify (pure)
def _entry(decision: str = "todo") -> PlanEntry:
    return PlanEntry(scene="S", l1c_path="/x", decision=decision)  # type: ignore[arg-type]


def _state(state: str, host: str = "h", pid: int | None = 1) -> SceneState:
    return SceneState(scene="S", state=state, host=host, pid=pid)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("decision", "state", "task", "alive", "expected"),
    [
        ("skipped", None, None, True, "skipped"),
        ("done", None, None, True, "done"),
        ("todo", "done", "failed", True, "done"),  # a done state wins over any job state
        ("todo", None, None, True, "todo"),
        ("todo", None, "pending", True, "pending"),
        ("todo", None, "running", True, "running"),
        ("todo", None, "gone", True, "todo"),  # cancelled before it started: to do again
        ("todo", None, "unknown", True, "pending"),  # submitted, scheduler cannot be asked
        ("todo", "failed", None, True, "failed"),
        ("todo", "failed", "pending", True, "pending"),  # being retried
        ("todo", "running", "running", True, "running"),
        # job ended, state still says running: stale only when the worker pid here is dead too
        ("todo", "running", "failed", False, "stale"),
        ("todo", "running", "gone", False, "stale"),
        ("todo", "running", "done", False, "stale"),
        ("todo", "running", "failed", True, "running"),  # a live worker pid wins over "job gone"
        ("todo", "running", "gone", True, "running"),
        ("todo", "running", "done", True, "running"),
        ("todo", "running", "unknown", True, "running"),
        ("todo", "running", None, True, "running"),
        ("todo", "running", None, False, "stale"),  # pid dead on this host
        ("todo", "running", "unknown", False, "stale"),
    ],
)
def test_classify(decision: str, state: str | None, task: str | None, alive: bool, expected: str) -> None:
    st = _state(state) if state else None
    assert classify(_entry(decision), st, task, "h", alive=lambda _pid: alive) == expected


def test_classify_pid_on_other_host_is_not_checked() -> None:
    st = _state("running", host="other-node", pid=1)
    assert classify(_entry(), st, None, "h", alive=lambda _pid: False) == "running"
    assert classify(_entry(), st, "gone", "h", alive=lambda _pid: True) == "stale"


# ============================================================================ Sen2Cor missing
def test_check_sen2cor_apptainer_image_missing(tmp_path: Path) -> None:
    cfg = batch_config(
        tmp_path, 0, sen2cor={"runtime": "apptainer", "image": str(tmp_path / "sen2cor-2.9.sif")}
    )
    with pytest.raises(Sen2CorMissing) as exc:
        check_sen2cor(cfg)
    msg = str(exc.value)
    assert "Sen2Cor image not found" in msg and "make container" in msg and "sen2cor-2.9.sif" in msg
    (tmp_path / "sen2cor-2.9.sif").write_bytes(b"x")
    check_sen2cor(cfg)


def test_check_sen2cor_native_missing(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 0, sen2cor={"install_dir": str(tmp_path / "Sen2Cor-02.09.00-Linux64")})
    with pytest.raises(Sen2CorMissing) as exc:
        check_sen2cor(cfg)
    assert "Sen2Cor-02.09.00-Linux64.run" in str(exc.value) and "not installed" in str(exc.value)
    check_sen2cor(batch_config(tmp_path / "ok", 0))  # the double's bin/L2A_Process counts


@pytest.mark.parametrize("runtime", ["apptainer", "native"])
def test_cli_submit_stops_before_submitting_when_sen2cor_is_missing(tmp_path: Path, runtime: str) -> None:
    extra = (
        {"runtime": "apptainer", "image": str(tmp_path / "missing.sif")}
        if runtime == "apptainer"
        else {"install_dir": str(tmp_path / "no-sen2cor")}
    )
    cfg = batch_config(tmp_path, 2, sen2cor=extra, kind="lsf")
    make_plan(cfg, check_resources=False)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    env = dict(os.environ, PATH=f"{FAKE_LSF}:{os.environ['PATH']}", FAKE_LSF_DIR=str(tmp_path / "lsf"))
    env["FAKE_LSF_PYTHON"] = sys.executable
    res = s2kit_cli("submit", "--config", str(conf), env=env)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("s2kit: error: ")
    assert ("make container" if runtime == "apptainer" else "Sen2Cor-02.09.00-Linux64.run") in lines[0]
    assert "nothing was submitted" in lines[0]
    calls = tmp_path / "lsf" / "calls.jsonl"
    assert not calls.exists() or "bsub" not in calls.read_text()
    assert not RunDir(cfg.paths.run_dir).jobs_file.exists()
    assert not RunDir(cfg.paths.run_dir).jobs_dir("all").exists()


# ============================================================================ submit (fake Slurm boundary)
def test_submit_chunks_at_max_array_size_with_offsets(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 5, kind="slurm", max_concurrent=3)
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    fake = FakeSlurm(max_array_size=2)
    res = submit(cfg, rd, scheduler=SlurmScheduler(runner=fake))
    assert [c[:2] for c in fake.sbatch_calls()] == [("sbatch", "--parsable")] * 3
    assert [(ch.offset, ch.count, ch.job_id) for ch in res.chunks] == [
        (0, 2, "500"),
        (2, 2, "501"),
        (4, 1, "502"),
    ]
    assert "#SBATCH --array=0-1%3" in fake.scripts[0] and "--offset 0" in fake.scripts[0]
    assert "#SBATCH --array=0-1%3" in fake.scripts[1] and "--offset 2" in fake.scripts[1]
    assert "#SBATCH --array=0-0%3" in fake.scripts[2] and "--offset 4" in fake.scripts[2]
    jobs = rd.read_jobs()
    assert [(j.job_id, j.batch, j.first_index, j.count, j.scheduler) for j in jobs] == [
        ("500", "all", 0, 2, "slurm"),
        ("501", "all", 2, 2, "slurm"),
        ("502", "all", 4, 1, "slurm"),
    ]
    assert all(Path(j.script).is_file() and Path(j.script).parent == rd.jobs_dir("all") for j in jobs)


def test_submit_config_max_array_size_caps_the_detected_one(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 3, kind="slurm", max_array_size=1)
    make_plan(cfg, check_resources=False)
    fake = FakeSlurm(max_array_size=1001)
    res = submit(cfg, RunDir(cfg.paths.run_dir), scheduler=SlurmScheduler(runner=fake))
    assert len(fake.sbatch_calls()) == 3 and [ch.offset for ch in res.chunks] == [0, 1, 2]


def test_submit_leaves_out_done_and_active_scenes(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 4, kind="slurm")
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    scenes = rd.read_batch("all")
    fake = FakeSlurm()
    sched = SlurmScheduler(runner=fake)
    first = submit(cfg, rd, scheduler=sched)
    assert first.batch == "all" and first.chunks[0].job_id == "500"
    # job 500: task 0 done (and its state too), task 1 running, tasks 2-3 failed
    fake.rows["500"] = "500_0 COMPLETED\n500_1 RUNNING\n500_2 FAILED\n500_3 FAILED\n"
    rd.write_state(SceneState(scene=scenes[0], state="done"))
    rd.write_state(SceneState(scene=scenes[1], state="running", host="node7", pid=42))
    rd.write_state(SceneState(scene=scenes[2], state="failed", reason="exit-code: 1"))
    second = submit(cfg, rd, scheduler=sched)
    # scene 3 has no state although its task failed (killed before it started): to do again
    assert second.scenes == [scenes[2], scenes[3]]
    assert second.excluded == {"done": 1, "already running": 1}
    assert second.batch == "all-1" and rd.read_batch("all-1") == [scenes[2], scenes[3]]
    assert "--batch all-1" in fake.scripts[-1]
    # while that array is queued, nothing more is submitted
    fake.rows["501"] = "501_0 PENDING\n501_1 PENDING\n"
    third = submit(cfg, rd, scheduler=sched)
    assert third.scenes == [] and third.chunks == []
    assert "nothing to submit" in third.summary()
    assert len(fake.sbatch_calls()) == 2
    # squeue cannot be asked: the unconfirmed running/pending scenes are submitted again (warning),
    # the failed one anyway
    fake.down = True
    notes: list[str] = []
    fourth = submit(cfg, rd, scheduler=sched, echo=notes.append)
    assert fourth.scenes == [scenes[1], scenes[2], scenes[3]] and fourth.excluded == {"done": 1}
    assert any(n.startswith("warning: 2 scene(s) of earlier jobs") for n in notes), notes


def test_dry_run_renders_but_submits_nothing(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 2, kind="slurm")
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    fake = FakeSlurm()
    res = submit(cfg, rd, dry_run=True, scheduler=SlurmScheduler(runner=fake))
    assert fake.sbatch_calls() == [] and rd.read_jobs() == []
    assert res.chunks[0].script.is_file() and "sbatch --parsable" in res.chunks[0].command
    assert "would submit 2 scene(s)" in res.summary()


def test_dry_run_warns_but_renders_without_sen2cor(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 1, kind="slurm", sen2cor={"install_dir": str(tmp_path / "none")})
    make_plan(cfg, check_resources=False)
    res = submit(cfg, RunDir(cfg.paths.run_dir), dry_run=True, scheduler=SlurmScheduler(runner=FakeSlurm()))
    assert res.chunks and any("not installed" in n for n in res.notes)
    with pytest.raises(Sen2CorMissing):
        submit(cfg, RunDir(cfg.paths.run_dir), scheduler=SlurmScheduler(runner=FakeSlurm()))


# ============================================================================ status
def test_status_counts_tiles_failures_and_unreachable_scheduler(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 3, kind="slurm")
    gated = build_l1c_tree(cfg.paths.l1c_dirs[0], "05.09")  # planned as skipped (baseline gate)
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    scenes = rd.read_batch("all")
    fake = FakeSlurm()
    submit(cfg, rd, scheduler=SlurmScheduler(runner=fake))
    log = rd.log_file(scenes[1], 1)
    rd.write_state(SceneState(scene=scenes[0], state="done"))
    rd.write_state(
        SceneState(scene=scenes[1], state="failed", reason="timeout: too long", log=str(log), attempt=1)
    )
    rd.write_state(SceneState(scene=scenes[2], state="running", host="node3", pid=7))
    fake.rows["500"] = "500_0 COMPLETED\n500_1 FAILED\n500_2 RUNNING\n"
    rep = status(cfg, rd, schedulers={"slurm": SlurmScheduler(runner=fake)})
    assert rep.counts == {
        "todo": 0,
        "pending": 0,
        "running": 1,
        "stale": 0,
        "done": 1,
        "failed": 1,
        "skipped": 1,
    }
    assert rep.tiles == {"46RER": {"running": 1, "done": 1, "failed": 1}, "34UDD": {"skipped": 1}}
    doc = rep.to_dict()
    assert doc["failed"][0]["scene"] == scenes[1] and doc["failed"][0]["reason"] == "timeout: too long"
    assert doc["failed"][0]["log"] == str(log)
    assert (
        doc["jobs"][0]["tasks"] == {"done": 1, "failed": 1, "running": 1}
        and doc["jobs"][0]["state"] == "active"
    )
    assert doc["scenes"][gated.name[:-5]] == "skipped"
    text = format_status(rep)
    assert (
        "1 running, 1 done, 1 failed, 1 skipped" in text and str(log) in text and "timeout: too long" in text
    )

    # the controller goes away: status still answers, tasks unknown, nothing is called stale
    fake.down = True
    rep2 = status(cfg, rd, schedulers={"slurm": SlurmScheduler(runner=fake)})
    assert rep2.scheduler_errors and "slurm" in rep2.scheduler_errors[0]
    assert rep2.counts["running"] == 1 and rep2.counts["stale"] == 0
    assert rep2.to_dict()["jobs"][0]["state"] == "unknown"
    assert "scheduler unreachable" in format_status(rep2)

    # the job is purged (Invalid job id): the running scene is stale, resubmit picks it up
    fake.down = False
    del fake.rows["500"]
    rep3 = status(cfg, rd, schedulers={"slurm": SlurmScheduler(runner=fake)})
    assert rep3.counts["stale"] == 1 and rep3.by_status("stale")[0].scene == scenes[2]
    res = resubmit_failed(cfg, rd, scheduler=SlurmScheduler(runner=fake))
    assert res is not None and res.batch == "resubmit-1"
    assert rd.read_batch("resubmit-1") == [scenes[1], scenes[2]]


def test_status_stale_when_local_worker_pid_is_dead(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 1)
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    scene = rd.read_batch("all")[0]
    dead = subprocess.Popen(["true"])
    dead.wait()
    rd.write_state(SceneState(scene=scene, state="running", host=os.uname().nodename, pid=dead.pid))
    assert status(cfg, rd).counts["stale"] == 1
    rd.write_state(SceneState(scene=scene, state="running", host=os.uname().nodename, pid=os.getpid()))
    assert status(cfg, rd).counts["running"] == 1


def test_cli_status_survives_an_unreachable_controller(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 2, kind="slurm")
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    rd.append_job(JobRecord("slurm", "77", "all", 0, 2, str(tmp_path / "x.slurm"), "2026-01-01T00:00:00Z"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    squeue = bindir / "squeue"
    squeue.write_text(
        "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n"
    )
    squeue.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    res = s2kit_cli("status", "--run-dir", str(rd.path), "--json", env=env)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["jobs"][0]["state"] == "unknown" and doc["counts"]["pending"] == 2
    assert "Unable to contact slurm controller" in doc["scheduler_errors"][0]
    text = s2kit_cli("status", "--run-dir", str(rd.path), env=env)
    assert text.returncode == 0 and "unknown" in text.stdout


# ============================================================================ targets
def test_load_target(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        load_target(None, None)
    cfg = batch_config(tmp_path, 1)
    make_plan(cfg, check_resources=False)
    cfg2, rd = load_target(None, cfg.paths.run_dir)
    assert rd.path == cfg.paths.run_dir and cfg2.paths.l2a_dir == cfg.paths.l2a_dir
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    cfg3, rd3 = load_target(conf, None)
    assert rd3.path == cfg.paths.run_dir and cfg3.source == conf.resolve()


def test_resubmit_without_failures_is_none_and_cli_needs_no_failed_flag(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 1, kind="slurm")
    make_plan(cfg, check_resources=False)
    assert (
        resubmit_failed(cfg, RunDir(cfg.paths.run_dir), scheduler=SlurmScheduler(runner=FakeSlurm())) is None
    )
    res = s2kit_cli("resubmit", "--run-dir", str(cfg.paths.run_dir))  # --failed is optional (issue 15)
    assert res.returncode == 0 and res.stdout.strip() == "resubmit: no failed or stale scenes", res.stderr


def test_submit_refuses_missing_bind_dir_before_launching(tmp_path: Path) -> None:
    """runtime apptainer + a DEM dir that does not exist: refused before any job is sent."""
    from s2kit.batch import submit

    image = tmp_path / "sen2cor-2.9.sif"
    image.write_bytes(b"not really an image; submit must stop before using it")
    cfg = batch_config(tmp_path, 1, sen2cor={"runtime": "apptainer", "image": str(image)})
    make_plan(cfg, check_resources=False)
    # the DEM dir vanishes after the plan (editing the config instead is refused: the snapshot rules)
    shutil.rmtree(cfg.paths.dem_dir)
    rd = RunDir(cfg.paths.run_dir)
    from s2kit.errors import S2kitError

    with pytest.raises(S2kitError) as exc:
        submit(cfg, rd)
    assert "paths.dem_dir" in str(exc.value) and str(cfg.paths.dem_dir) in str(exc.value)
    assert rd.read_jobs() == []  # nothing submitted
    assert not (cfg.paths.l2a_dir).exists()  # nothing created either
    dry = submit(cfg, rd, dry_run=True)  # a dry run only warns
    assert any("paths.dem_dir" in n for n in dry.notes)


def test_missing_native_install_names_the_installer_of_the_configured_version(tmp_path: Path) -> None:
    """The hint named Sen2Cor 2.9's installer whatever sen2cor.version said."""
    from s2kit.batch import Sen2CorMissing, check_sen2cor
    from s2kit.config import config_from_dict

    cfg = config_from_dict(
        {
            "paths": {
                "l1c_dirs": ["l1c"],
                "l2a_dir": "l2a",
                "scratch_dir": "s",
                "run_dir": "r",
                "dem_dir": "d",
            },
            "sen2cor": {"version": "2.11", "runtime": "native", "install_dir": "nowhere"},
        },
        tmp_path,
    )
    with pytest.raises(Sen2CorMissing) as exc:
        check_sen2cor(cfg)
    assert "Sen2Cor-02.11.00-Linux64.run" in str(exc.value) and "02.09" not in str(exc.value)


# --------------------------------------------------------------------------- one config end to end (findings 1, 10)
def _planned_by_cli(tmp_path: Path) -> tuple[Path, RunDir]:
    cfg = batch_config(tmp_path, 2)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    res = s2kit_cli("plan", "--config", str(conf), "--no-preflight")
    assert res.returncode == 0, res.stderr
    return conf, RunDir(cfg.paths.run_dir)


def _refused(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    (line,) = res.stderr.splitlines()
    assert line.startswith("s2kit: error: ") and "config.json" in line, line
    return line


def test_submit_and_resubmit_refuse_a_config_edited_after_the_plan(tmp_path: Path) -> None:
    conf, rd = _planned_by_cli(tmp_path)
    batches = sorted(os.listdir(rd.path / "batches"))
    for cmd in ("submit", "resubmit"):  # the unedited config is the snapshot: accepted
        res = s2kit_cli(cmd, "--config", str(conf), "--dry-run")
        assert res.returncode == 0, (cmd, res.stderr)
    before = sorted(str(p.relative_to(rd.path)) for p in rd.path.rglob("*"))
    text = conf.read_text(encoding="utf-8")
    assert "timeout_minutes = 1.0\n" in text
    conf.write_text(text.replace("timeout_minutes = 1.0\n", "timeout_minutes = 600\n"), encoding="utf-8")
    for cmd in ("submit", "resubmit"):
        line = _refused(s2kit_cli(cmd, "--config", str(conf), "--dry-run"))
        assert "sen2cor.timeout_minutes" in line and "600" in line, line
        assert f"run `s2kit plan --config {conf}` again (the workers use the plan's snapshot)" in line
    assert not rd.jobs_file.exists()  # nothing sent
    assert sorted(str(p.relative_to(rd.path)) for p in rd.path.rglob("*")) == before  # nor written
    assert sorted(os.listdir(rd.path / "batches")) == batches  # no resubmit batch either
    res = s2kit_cli("submit", "--run-dir", str(rd.path), "--dry-run")  # --run-dir alone: the snapshot
    assert res.returncode == 0, res.stderr


def test_submit_and_resubmit_refuse_a_missing_config_snapshot_before_launching(tmp_path: Path) -> None:
    conf, rd = _planned_by_cli(tmp_path)
    rd.config_file.unlink()
    for args in (("--config", str(conf)), ("--run-dir", str(rd.path))):
        for cmd in ("submit", "resubmit"):
            line = _refused(s2kit_cli(cmd, *args))
            assert "found none" in line and "`s2kit plan` again" in line, line
    assert not rd.jobs_file.exists() and not (rd.path / "jobs").exists()
    assert not (rd.path / "state").exists()  # no worker ran
