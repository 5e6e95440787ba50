"""Slurm backend: golden job scripts and parsers (pure), and REAL Slurm runs (marker `slurm`):
a batch with a hanging and a crashing scene, `kill -9` of a worker mid-scene, `scancel`
mid-array -- then resubmit / plan+submit: nothing lost, nothing done twice, no partial output.

Real tests need a controller: as root `eval "$(bash tests/infra/slurm-single-node.sh up)"`,
then `pytest -m slurm`. They are skipped without SLURM_CONF (and fail then in CI, S2KIT_CI=1).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from s2kit.batch import StatusReport, format_status, resubmit_failed, status, submit
from s2kit.config import BatchConfig, control_character
from s2kit.plan import make_plan
from s2kit.runs import RunDir
from s2kit.schedulers import SchedulerError, SlurmScheduler, chunk_ranges, job_spec
from s2kit.schedulers.base import CommandResult, JobSpec, UnsafeScriptValue, hhmmss
from s2kit.schedulers.slurm import parse_max_array_size, parse_sbatch_reply, parse_squeue, render_slurm
from tests.support.batch_runs import (
    SCRIPT_VALUES_WITH_CONTROL_CHARACTERS,
    FakeSlurm,
    partials,
    published,
    run_hostile_job_script,
    s2kit_cli,
)
from tests.support.configs import batch_config, config_data, write_toml

SPEC = JobSpec(
    name="s2kit-all",
    batch="all",
    offset=0,
    count=1001,
    command=(
        "/opt/s2kit/bin/s2kit",
        "worker",
        "--run-dir",
        "/data/runs/x",
        "--batch",
        "all",
        "--offset",
        "0",
    ),
    log_dir=Path("/data/runs/x/jobs/all"),
    cores=2,
    memory_mb=4096,
    walltime_minutes=150,
    queue="compute",
    max_concurrent=20,
)


# ============================================================================ pure
def test_golden_slurm_script(file_regression) -> None:  # type: ignore[no-untyped-def]
    text = render_slurm(SPEC, 1001, "scontrol show config")
    for line in (
        "#SBATCH --array=0-1000%20",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=4096",
        "#SBATCH --time=2:30:00",
        "#SBATCH --partition=compute",
        "#SBATCH --output=/data/runs/x/jobs/all/%A_%a.log",
        "#SBATCH --error=/data/runs/x/jobs/all/%A_%a.log",
    ):
        assert line in text.splitlines()
    file_regression.check(text, extension=".slurm")


def test_golden_slurm_hostile_paths_apptainer(file_regression) -> None:  # type: ignore[no-untyped-def]
    root = "/data/dir with spaces 'quote' \"dq\" $HOME ünïcødé 100%"
    scheduler = {"kind": "slurm", "memory_per_task_gb": 0.5, "walltime": "00:05", "max_concurrent": 2}
    data = config_data(root, runtime="apptainer", image=f"{root}/sen2cor.sif", dem=None, scheduler=scheduler)
    cfg = BatchConfig.model_validate(data)
    spec = job_spec(cfg, cfg.paths.run_dir, "all-1", 2002, 7, cfg.paths.run_dir / "jobs" / "all-1")
    text = render_slurm(spec, 1001, "scontrol show config")
    assert "#SBATCH --mem=512" in text and "#SBATCH --time=0:05:00" in text and "--offset 2002" in text
    assert "100%%/run/jobs/all-1/%A_%a.log" in text  # a literal % in the path is doubled for Slurm
    assert "#SBATCH --partition" not in text
    file_regression.check(text, extension=".slurm")


def test_time_format_is_not_minutes_seconds() -> None:
    assert hhmmss(120) == "2:00:00" and hhmmss(5) == "0:05:00" and hhmmss(61) == "1:01:00"


def test_parsers() -> None:
    assert parse_max_array_size("MaxArraySize            = 1001\nMaxJobCount = 10000\n") == 1001
    assert parse_max_array_size("nothing") is None
    assert parse_sbatch_reply("1234\n") == "1234" and parse_sbatch_reply("77;cluster2\n") == "77"
    with pytest.raises(SchedulerError, match="expected sbatch --parsable to print a job id"):
        parse_sbatch_reply("sbatch: error: Batch job submission failed: Invalid job array specification")
    rows = "12_0 COMPLETED\n12_1 RUNNING\n12_[2-4,6%2] PENDING\n12_5 CANCELLED+\n13 TIMEOUT\n99_1 RUNNING\n"
    got = parse_squeue(rows, ["12", "13", "14"])
    assert got["12"].tasks == {
        0: "done",
        1: "running",
        2: "pending",
        3: "pending",
        4: "pending",
        6: "pending",
        5: "failed",
    }
    assert got["12"].state == "active" and got["13"].state == "ended" and got["13"].tasks == {0: "failed"}
    assert got["14"].state == "gone" and got["14"].task(0) == "gone" and "99" not in got


def test_5000_scenes_make_5_sbatch_calls_at_max_array_size_1001(tmp_path: Path) -> None:
    assert [c for _, c in chunk_ranges(5000, 1001)] == [1001, 1001, 1001, 1001, 996]
    cfg = batch_config(tmp_path, 0, kind="slurm")
    rd = RunDir(cfg.paths.run_dir)
    rd.path.mkdir(parents=True)
    from s2kit.runs import PlanEntry

    scenes = [f"S2A_MSIL1C_2021{i:08d}" for i in range(5000)]
    rd.write_plan([PlanEntry(scene=s, l1c_path="/x", decision="todo") for s in scenes])
    rd.write_batch("all", scenes)
    rd.config_file.write_text(json.dumps(cfg.to_json_dict()), encoding="utf-8")  # the plan's snapshot
    fake = FakeSlurm(max_array_size=1001)
    res = submit(cfg, rd, scheduler=SlurmScheduler(runner=fake))
    assert len(fake.sbatch_calls()) == 5
    assert [(ch.offset, ch.count) for ch in res.chunks] == [
        (0, 1001),
        (1001, 1001),
        (2002, 1001),
        (3003, 1001),
        (4004, 996),
    ]
    assert "#SBATCH --array=0-1000%2" in fake.scripts[0] and "#SBATCH --array=0-995%2" in fake.scripts[4]


def test_query_falls_back_per_job_when_one_is_purged() -> None:
    fake = FakeSlurm(squeue={"5": "5_0 COMPLETED\n"})
    from s2kit.runs import JobRecord

    recs = [JobRecord("slurm", j, "all", 0, 1, "/x", "t") for j in ("5", "6")]
    got = SlurmScheduler(runner=fake).query(recs)
    assert got["5"].task(0) == "done" and got["6"].state == "gone" and "Invalid job id" in got["6"].detail
    squeues = [c for c in fake.calls if c[0] == "squeue"]
    assert [c[c.index("-j") + 1] for c in squeues] == ["5,6", "5", "6"]
    assert squeues[0][:3] == ("squeue", "-h", "-r") and "%i %T" in squeues[0]


# ============================================================================ real Slurm
def _slurm_up() -> bool:
    conf = os.environ.get("SLURM_CONF", "")
    return bool(conf) and Path(conf).is_file()


real = pytest.mark.skipif(not _slurm_up(), reason="needs a real Slurm: SLURM_CONF naming an existing file")
OVERALL_TIMEOUT_S = 420


def wait_idle(cfg: BatchConfig, rd: RunDir, timeout: float = OVERALL_TIMEOUT_S) -> StatusReport:
    """Poll status (squeue) until no scene is pending or running."""
    deadline = time.monotonic() + timeout
    while True:
        rep = status(cfg, rd)
        assert not rep.scheduler_errors, rep.scheduler_errors
        if rep.active == 0:
            return rep
        if time.monotonic() > deadline:
            q = subprocess.run(["squeue", "-h", "-r", "-t", "all"], capture_output=True, text=True).stdout
            pytest.fail(f"batch not finished after {timeout} s:\n{format_status(rep)}\nsqueue:\n{q}")
        time.sleep(1)


def wait_for(pred, what: str, timeout: float = OVERALL_TIMEOUT_S):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def slurm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith(("SLURM_", "LSB_")) and var != "SLURM_CONF":
            monkeypatch.delenv(var)
    monkeypatch.setenv("S2KIT_KILL_GRACE_SECONDS", "2")


def _in_sen2cor(rd: RunDir, scene: str) -> bool:
    st = rd.read_state(scene)
    if st is None or st.state != "running" or not st.log:
        return False
    log = Path(st.log)
    return log.is_file() and "fault mode" in log.read_text()


def one_publish_per_scene(cfg: BatchConfig, rd: RunDir) -> None:
    pub = published(cfg)
    scenes = rd.read_batch("all") if rd.batch_file("all").exists() else []
    assert all(len(v) == 1 for v in pub.values()), pub
    products = sorted(p.name for p in cfg.paths.l2a_dir.iterdir() if p.name.endswith(".SAFE"))
    assert products == sorted(n for v in pub.values() for n in v)  # no product without provenance
    assert partials(cfg) == []
    for s, names in pub.items():
        st = rd.read_state(s)
        assert st is not None and st.state == "done" and Path(st.l2a or "").name == names[0]
    del scenes


@pytest.mark.slurm
@real
def test_real_slurm_hang_crash_then_resubmit_hostile_paths(
    hostile_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slurm_env(monkeypatch)
    # 6 s per attempt: the config refuses timeout_minutes below 1 (issue 12), the env override does not
    monkeypatch.setenv("S2KIT_TIMEOUT_SECONDS", "6")
    cfg = batch_config(
        hostile_dir,
        9,
        {3: "hang", 6: "crash"},
        l1c=hostile_dir / "L1C in",
        l2a=hostile_dir / "L2A out",
        scratch=hostile_dir / "scratch dir",
        run=hostile_dir / "run 100% dir",  # a literal % in the --output path (Slurm needs %%)
        sen2cor={"timeout_minutes": 1},
        kind="slurm",
        max_concurrent=2,
        walltime="00:10",
    )
    plan = make_plan(cfg, check_resources=False)
    assert plan.counts == {"todo": 9}
    rd = RunDir(cfg.paths.run_dir)
    scenes = rd.read_batch("all")
    t0 = time.monotonic()
    res = submit(cfg, rd)
    (chunk,) = res.chunks
    job = subprocess.run(
        ["scontrol", "show", "job", str(chunk.job_id)], capture_output=True, text=True
    ).stdout
    assert "ArrayTaskThrottle=2" in job and "MinMemoryNode=512M" in job and "TimeLimit=00:10:00" in job
    rep = wait_idle(cfg, rd)
    first_s = time.monotonic() - t0
    by = {s.scene: s for s in rep.scenes}
    assert rep.counts["done"] == 7 and rep.counts["failed"] == 2, format_status(rep)
    assert (by[scenes[3]].reason or "").startswith("timeout:")
    assert (by[scenes[6]].reason or "").startswith("exit-code:")
    assert "simulated crash" in Path(by[scenes[6]].log or "").read_text()
    logs = sorted(p.name for p in rd.jobs_dir("all").glob("*.log"))
    assert logs == [f"{chunk.job_id}_{i}.log" for i in range(9)]  # %A_%a under the hostile path
    assert "s2kit: Slurm job" in (rd.jobs_dir("all") / f"{chunk.job_id}_0.log").read_text()
    before = published(cfg)
    assert sorted(before) == sorted(s for i, s in enumerate(scenes) if i not in (3, 6))

    for f in cfg.paths.l1c_dirs[0].glob("*/S2KIT_DOUBLE_FAULT"):
        f.unlink()
    again = resubmit_failed(cfg, rd)
    assert again is not None and again.batch == "resubmit-1" and again.scenes == [scenes[3], scenes[6]]
    rep = wait_idle(cfg, rd)
    assert rep.counts["done"] == 9, format_status(rep)
    one_publish_per_scene(cfg, rd)
    assert all(published(cfg)[s] == before[s] for s in before)
    assert submit(cfg, rd).scenes == []  # nothing left
    print(
        f"\nslurm: 9 scenes (1 hang, 1 crash) in {first_s:.1f} s, resubmit of 2 in {time.monotonic() - t0 - first_s:.1f} s"
    )


@pytest.mark.slurm
@real
def test_real_slurm_kill9_worker_mid_scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slurm_env(monkeypatch)
    cfg = batch_config(tmp_path, 4, {0: "slow:20"}, kind="slurm", max_concurrent=2)
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    scenes = rd.read_batch("all")
    submit(cfg, rd)
    # mid-scene: the worker has started Sen2Cor (the double logged its fault mode)
    log = rd.log_file(scenes[0], 1)
    wait_for(lambda: log.is_file() and "fault mode = slow:20" in log.read_text(), "scene 0 to be in Sen2Cor")
    st = rd.read_state(scenes[0])
    assert st is not None and st.state == "running" and st.pid
    os.kill(st.pid, signal.SIGKILL)
    rep = wait_idle(cfg, rd)
    print("\nafter kill -9:\n" + format_status(rep))
    assert rep.counts["stale"] == 1 and rep.by_status("stale")[0].scene == scenes[0], format_status(rep)
    assert rep.counts["done"] == 3
    assert partials(cfg) == [] and scenes[0] not in published(cfg)
    before = published(cfg)

    (next(cfg.paths.l1c_dirs[0].glob("*/S2KIT_DOUBLE_FAULT"))).write_text("slow:1")
    again = resubmit_failed(cfg, rd)
    assert again is not None and again.scenes == [scenes[0]]
    rep = wait_idle(cfg, rd)
    assert rep.counts["done"] == 4, format_status(rep)
    assert rd.read_state(scenes[0]).attempt == 2  # type: ignore[union-attr]
    one_publish_per_scene(cfg, rd)
    assert all(published(cfg)[s] == before[s] for s in before)
    # rerunning plan + submit redoes nothing
    plan = make_plan(cfg, check_resources=False)
    assert plan.counts == {"done": 4}
    assert submit(cfg, rd).scenes == []


@pytest.mark.slurm
@real
def test_real_slurm_scancel_mid_array_then_plan_and_submit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slurm_env(monkeypatch)
    cfg = batch_config(tmp_path, 8, {k: "slow:3" for k in range(8)}, kind="slurm", max_concurrent=2)
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    res = submit(cfg, rd)
    job_id = str(res.chunks[0].job_id)

    def some_done_some_running() -> bool:
        rep = status(cfg, rd)
        in_sen2cor = [
            s
            for s in rep.by_status("running")
            if _in_sen2cor(rd, s.scene)  # state running and the double has started
        ]
        return rep.counts["done"] >= 2 and rep.counts["pending"] >= 1 and bool(in_sen2cor)

    wait_for(some_done_some_running, "the array to be half way")
    subprocess.run(["scancel", job_id], check=True)
    rep = wait_idle(cfg, rd)
    print("\nafter scancel:\n" + format_status(rep))
    c = rep.counts
    assert c["done"] >= 2 and c["todo"] >= 1 and c["done"] < 8, format_status(rep)
    assert c["failed"] + c["stale"] >= 1, format_status(rep)  # the tasks running when cancelled
    for s in rep.by_status("failed"):
        assert (s.reason or "").startswith("signal:"), s
    assert partials(cfg) == []
    before = published(cfg)
    assert len(before) == c["done"]

    for f in cfg.paths.l1c_dirs[0].glob("*/S2KIT_DOUBLE_FAULT"):
        f.write_text("slow:1")
    plan = make_plan(cfg, check_resources=False)
    assert plan.counts == {"done": len(before), "todo": 8 - len(before)}
    first_batch = rd.read_batch("all")
    again = submit(cfg, rd)
    # the re-plan wrote a new batch (the first one is referenced by jobs.jsonl and never changes)
    assert plan.batch != "all" and rd.read_batch("all") == first_batch and len(first_batch) == 8
    assert sorted(again.scenes) == sorted(set(rd.read_batch(plan.batch)))
    assert not set(again.scenes) & set(before)
    # `status --watch` refreshes until nothing is pending/running, then prints the final report
    watch = s2kit_cli(
        "status",
        "--run-dir",
        str(rd.path),
        "--watch",
        "--interval",
        "0.5",
        "--json",
        timeout=OVERALL_TIMEOUT_S,
    )
    assert watch.returncode == 0, watch.stderr
    doc = json.loads(watch.stdout)
    assert doc["counts"]["done"] == 8 and doc["counts"]["pending"] == doc["counts"]["running"] == 0, doc
    assert "scenes" in watch.stderr  # the progress bar
    rep = wait_idle(cfg, rd)
    assert rep.counts["done"] == 8, format_status(rep)
    one_publish_per_scene(cfg, rd)
    assert all(published(cfg)[s] == before[s] for s in before)


# ============================================================================ issue 12 item 2: no shell from data
def test_hostile_paths_in_a_slurm_script_run_no_shell_code(tmp_path: Path) -> None:
    env = {
        "SLURM_ARRAY_JOB_ID": "9",
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_JOB_ID": "10",
        "SLURM_CPUS_PER_TASK": "1",
    }
    render = lambda spec: render_slurm(spec, 1001, "test")  # noqa: E731
    cfg, st = run_hostile_job_script(tmp_path, "slurm", render, "#SBATCH", 8, "#SBATCH --error=", env)
    assert st.job_id == "10"  # SLURM_JOB_ID
    assert published(cfg)


@pytest.mark.parametrize(("field", "value"), SCRIPT_VALUES_WITH_CONTROL_CHARACTERS)
def test_slurm_renderer_refuses_a_control_character_in_a_script_value(field: str, value: object) -> None:
    from dataclasses import replace

    with pytest.raises(UnsafeScriptValue, match="job script .*expected no control characters, found"):
        render_slurm(replace(SPEC, **{field: value}), 1001, "scontrol show config")


def test_slurm_renderer_refuses_a_control_character_in_the_array_size_source() -> None:
    with pytest.raises(UnsafeScriptValue, match="job script line"):
        render_slurm(SPEC, 1001, "scontrol\nrm -rf x")


def test_scheduler_reply_with_control_characters_is_one_printable_line() -> None:
    res = CommandResult(("scontrol",), 1, "", "\x1b[31mslurm_load_ctl_conf error\x1b[0m\x00\n")
    line = res.one_line()
    assert line == "?[31mslurm_load_ctl_conf error?[0m?" and control_character(line) is None


def test_job_spec_refuses_a_batch_name_that_is_no_plain_token(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 0, kind="slurm")
    for bad in ("x\ntouch P #", "../x", "-x", ".hidden", "a b", ""):
        with pytest.raises(UnsafeScriptValue, match="expected a batch name"):
            job_spec(cfg, cfg.paths.run_dir, bad, 0, 1, tmp_path)


def test_run_dir_option_with_a_newline_never_reaches_a_slurm_script(tmp_path: Path) -> None:
    """`plan --run-dir $'r\\ntouch PWNED #'` then submit: the --output directive would be cut.

    Both commands refuse the option at parse (issue 12, finding 11): plan no longer writes a run
    dir that submit refuses later.
    """
    cfg = batch_config(tmp_path, 1, kind="slurm")
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    run_dir = str(tmp_path / "r\ntouch PWNED #")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LSB_"))}
    for res in (
        s2kit_cli("plan", "--config", str(conf), "--no-preflight", "--run-dir", run_dir, env=env),
        s2kit_cli("submit", "--run-dir", run_dir, "--dry-run", env=env),
    ):
        assert res.returncode == 2
        lines = res.stderr.strip().splitlines()
        assert (
            len(lines) == 1
            and lines[0].startswith("s2kit: error: --run-dir: ")
            and "expected no control characters" in lines[0]
        )
    assert not os.path.lexists(run_dir)
    assert list(tmp_path.rglob("*.slurm")) == [] and list(tmp_path.rglob("PWNED")) == []
