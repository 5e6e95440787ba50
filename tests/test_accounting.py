"""Per-scene accounting (issue 19): s2kit.accounting's Meter measured against the Sen2Cor test
double's ``burn:`` mode (children of KNOWN CPU time and memory), the worker recording
``resources`` on done and failed attempts, and the scheduler naming ``oom``/``walltime``.

Tolerances: CPU and peak memory within 10 % of the truth. The truth is what the double's burn
children cost (N x C seconds of their own CPU time, N x M MB touched) PLUS a baseline measured
in the same test with ``burn:cpu=0,mem=0`` and the same number of children: the interpreters
(the double and each forked child, whose RSS counts the pages it shares with the double; about
12 MB each on this host) and the double's own start-up CPU (about 0.1 s).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from s2kit import accounting
from s2kit.accounting import RESOURCE_KEYS, Meter, group_usage, walltime_reached
from s2kit.batch import submit
from s2kit.plan import make_plan
from s2kit.process import run_logged
from s2kit.provenance import Provenance
from s2kit.runs import JobRecord, RunDir, SceneState
from s2kit.schedulers import LsfScheduler, SlurmScheduler
from s2kit.schedulers.base import CommandResult, SchedulerUnavailable
from s2kit.schedulers.lsf import parse_bjobs_end_reasons
from s2kit.schedulers.slurm import parse_end_states
from s2kit.status import format_status, run_status
from s2kit.worker import run_scene
from tests.support.known_cost import known_cost_batch, known_cost_errors
from tests.test_worker import DOUBLE, S2KIT, Run, clean_env, make_run, wait_for, wrapper_install

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc sampling is Linux only")
TOLERANCE = 0.10


def burn(tmp_path: Path, spec: str) -> dict[str, Any]:
    """Run the double in burn mode under run_logged (its input has no metadata: it exits 1 after
    burning, which does not matter here) and return the measured resources."""
    inp = tmp_path / "input"
    inp.mkdir(exist_ok=True)
    env = clean_env(S2KIT_DOUBLE_FAULT=spec, S2KIT_SAMPLE_SECONDS="0.1")
    res = run_logged([str(DOUBLE), str(inp)], tmp_path / "burn.log", env, timeout=300)
    assert "burnt (" in (tmp_path / "burn.log").read_text(), (tmp_path / "burn.log").read_text()
    assert res.resources is not None
    return res.resources


def within(measured: float, truth: float) -> bool:
    return abs(measured - truth) <= TOLERANCE * truth


# ============================================================================ the meter
@linux_only
@pytest.mark.parametrize("orphan", [False, True], ids=["children", "orphans"])
def test_burn_cpu_and_peak_memory_are_measured_within_10_percent(tmp_path: Path, orphan: bool) -> None:
    """2 children x 1.5 s CPU x 200 MB: the group's CPU and summed peak RSS within 10 %.

    Orphans (re-parented to init) are in no rusage of the worker: only the /proc view sees them.
    """
    n, cpu, mem = 2, 1.5, 200
    extra = ",orphan=1" if orphan else ""
    base = burn(tmp_path, f"burn:cpu=0,mem=0,children={n}{extra}")
    got = burn(tmp_path, f"burn:cpu={cpu},mem={mem},children={n}{extra}")
    print(f"\nbaseline {base}\nmeasured {got}")
    assert set(got) == set(RESOURCE_KEYS)
    truth_cpu = n * cpu + base["cpu_s"]
    truth_mem = n * mem + base["peak_rss_mb"]
    assert within(got["cpu_s"], truth_cpu), (got["cpu_s"], truth_cpu)
    assert within(got["peak_rss_mb"], truth_mem), (got["peak_rss_mb"], truth_mem)
    assert got["cpu_s"] == pytest.approx(got["cpu_user_s"] + got["cpu_sys_s"], abs=0.01)
    assert got["rss_samples"] >= 2 and got["node"] == os.uname().nodename
    if not orphan:  # a waited-for child: the kernel's ru_maxrss covers its M MB
        assert got["max_rss_child_mb"] >= mem


@linux_only
def test_group_usage_skips_processes_that_vanish_mid_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.listdir

    def listing(path: str) -> list[str]:
        return [*real(path), "999999999", "self-not-a-pid"] if path == "/proc" else real(path)

    monkeypatch.setattr(accounting.os, "listdir", listing)
    cpu, rss = group_usage(os.getpgid(0))
    assert all(pid != 999999999 for pid, _start in cpu) and rss > 0
    assert accounting._read_stat("999999999") is None


def test_meter_off_linux_knows_only_wall_and_rusage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounting, "_LINUX", False)
    res = run_logged(["true"], tmp_path / "log", clean_env(), timeout=30)
    r = res.resources
    assert r is not None and set(r) == set(RESOURCE_KEYS)
    assert r["peak_rss_mb"] is None and r["rss_samples"] is None and r["max_rss_child_mb"] is None
    assert isinstance(r["wall_s"], float) and isinstance(r["cpu_s"], float)


def test_meter_before_start_measures_nothing() -> None:
    r = Meter(cores=3).result()
    assert r["wall_s"] is None and r["peak_rss_mb"] is None and r["cores"] == 3


def test_sample_interval_refuses_nan_and_extremes() -> None:
    assert accounting.sample_interval({"S2KIT_SAMPLE_SECONDS": "nan"}) == accounting.DEFAULT_INTERVAL_S
    assert accounting.sample_interval({"S2KIT_SAMPLE_SECONDS": "1e-9"}) == 0.05
    assert accounting.sample_interval({"S2KIT_SAMPLE_SECONDS": "inf"}) == 60.0
    assert accounting.sample_interval({"S2KIT_SAMPLE_SECONDS": "x"}) == accounting.DEFAULT_INTERVAL_S


def test_walltime_reached_reads_slurm_job_end_time() -> None:
    assert walltime_reached({"SLURM_JOB_END_TIME": "1000"}, now=999.0)
    assert not walltime_reached({"SLURM_JOB_END_TIME": "1000"}, now=900.0)
    assert not walltime_reached({}, now=1e12)
    for junk in ("", "-5", "１０", "1e9", "12 13"):
        assert not walltime_reached({"SLURM_JOB_END_TIME": junk}, now=1e12)


# ============================================================================ the worker
@linux_only
def test_done_scene_records_its_resources_in_state_and_provenance(hostile_dir: Path) -> None:
    run = make_run(hostile_dir)
    scene = run.scenes[0]
    run.fault(scene, "burn:cpu=1,mem=100,children=1")
    st = run_scene(run.cfg, run.rd.path, scene, env=clean_env(S2KIT_SAMPLE_SECONDS="0.1"))
    assert st.state == "done"
    r = st.resources
    assert r is not None and set(r) == set(RESOURCE_KEYS)
    assert r["cpu_s"] >= 1.0 and r["peak_rss_mb"] >= 100 and r["cores"] == 1
    assert r["node"] == os.uname().nodename
    prov = Provenance.read_sidecar(Path(st.l2a or ""))
    assert prov is not None and prov.resources == r
    assert run.rd.read_state(scene).resources == r  # type: ignore[union-attr]


@linux_only
@pytest.mark.parametrize("fault", ["crash", "hang"])
def test_failed_attempt_records_its_resources(hostile_dir: Path, fault: str) -> None:
    run = make_run(hostile_dir, retries=0)
    scene = run.scenes[0]
    run.fault(scene, fault)
    env = clean_env(S2KIT_SAMPLE_SECONDS="0.1", S2KIT_TIMEOUT_SECONDS="2")
    st = run_scene(run.cfg, run.rd.path, scene, env=env)
    assert st.state == "failed" and (st.reason or "").startswith(
        "exit-code" if fault == "crash" else "timeout"
    )
    r = run.rd.read_state(scene).resources  # type: ignore[union-attr]
    assert r is not None and r["rss_samples"] >= 1 and r["cpu_s"] is not None and r["cores"] == 1


def test_attempt_that_never_started_sen2cor_has_no_resources(hostile_dir: Path) -> None:
    run = make_run(hostile_dir, retries=0)
    scene = run.scenes[0]
    for f in (run.root / "dem").rglob("*.zip"):
        f.unlink()
    st = run_scene(run.cfg, run.rd.path, scene, env=clean_env())
    assert st.state == "failed" and (st.reason or "").startswith("no-dem") and st.resources is None


def test_state_without_resources_from_an_old_run_still_reads(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    (tmp_path / "state").mkdir()
    old = {"scene": "S2A_X", "state": "failed", "attempt": 1, "reason": "exit-code: 1"}
    (tmp_path / "state" / "S2A_X.json").write_text(json.dumps(old))
    st = rd.read_state("S2A_X")
    assert st is not None and st.resources is None
    (tmp_path / "state" / "S2A_X.json").write_text(json.dumps({**old, "resources": [1, 2]}))
    assert rd.read_state("S2A_X") is None  # a wrong shape: ignored with a warning, not a crash
    assert Provenance({"scene": "S2A_X"}).resources is None


def _sigterm_worker(run: Run, env: dict[str, str]) -> SceneState:
    scene = run.scenes[0]
    run.fault(scene, "slow:60")
    worker = subprocess.Popen(
        [S2KIT, "worker", "--run-dir", str(run.rd.path), "--index", "0"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = run.rd.log_file(scene, 1)
    wait_for(lambda: log.is_file() and "fault mode" in log.read_text(), "L2A_Process", timeout=60)
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)
    return run.state(scene)


def test_sigterm_at_the_slurm_end_time_fails_walltime(hostile_dir: Path) -> None:
    run = make_run(hostile_dir, retries=0)
    st = _sigterm_worker(run, clean_env(SLURM_JOB_END_TIME=str(int(time.time()))))
    assert st.state == "failed" and (st.reason or "").startswith("walltime:"), st.reason
    assert st.resources is not None and st.resources["wall_s"] is not None


def test_sigterm_before_the_end_time_stays_signal(hostile_dir: Path) -> None:
    run = make_run(hostile_dir, retries=0)
    st = _sigterm_worker(run, clean_env(SLURM_JOB_END_TIME=str(int(time.time()) + 3600)))
    assert (st.state, st.reason) == ("failed", "signal: worker received SIGTERM")


# ============================================================================ scheduler side
SACCT = """5_0|TIMEOUT|0:0
5_0.batch|CANCELLED|0:15
5_1|OUT_OF_MEMORY|0:125
5_1.extern|COMPLETED|0:0
5_2|CANCELLED by 0|0:0
5_3|COMPLETED|0:0
5_4|RUNNING|0:0
5_[5-9]|PENDING|0:0
6_0|TIMEOUT|0:0
"""


def test_sacct_rows_give_oom_and_walltime_per_task() -> None:
    assert parse_end_states(SACCT, ["5"], sep="|") == {
        ("5", 0): "walltime",
        ("5", 1): "oom",
        ("5", 2): "CANCELLED",
        ("5", 3): "COMPLETED",
    }
    squeue = "7_0 TIMEOUT\n7_1 OUT_OF_MEMORY\n7_2 RUNNING\n8 TIMEOUT\njunk\n\n"
    assert parse_end_states(squeue, ["7", "8"]) == {
        ("7", 0): "walltime",
        ("7", 1): "oom",
        ("8", 0): "walltime",
    }


def _bjobs(records: list[dict[str, Any]]) -> str:
    return json.dumps({"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records})


def test_bjobs_exit_reasons_give_oom_and_walltime_per_element() -> None:
    text = _bjobs(
        [
            {"JOBID": "100", "JOBINDEX": "1", "STAT": "EXIT", "EXIT_CODE": "1",
             "EXIT_REASON": "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit"},
            {"JOBID": "100", "JOBINDEX": "2", "STAT": "EXIT", "EXIT_CODE": "140",
             "EXIT_REASON": "TERM_RUNLIMIT: job killed after reaching LSF run time limit"},
            {"JOBID": "100", "JOBINDEX": "3", "STAT": "EXIT", "EXIT_CODE": "130", "EXIT_REASON": ""},
            {"JOBID": "100", "JOBINDEX": "4", "STAT": "EXIT", "EXIT_CODE": "140", "EXIT_REASON": "-"},
            {"JOBID": "100", "JOBINDEX": "5", "STAT": "EXIT", "EXIT_CODE": "130",
             "EXIT_REASON": "TERM_OWNER: job killed by owner"},
            {"JOBID": "100", "JOBINDEX": "6", "STAT": "DONE", "EXIT_CODE": ""},
            {"JOBID": "100", "JOBINDEX": "7", "STAT": "RUN"},
            {"JOBID": "100", "JOBINDEX": "x", "STAT": "EXIT"},
            {"JOBID": "101", "ERROR": "Job <101> is not found"},
            "junk",
        ]
    )  # fmt: skip
    assert parse_bjobs_end_reasons(text, ["100", "101"]) == {
        ("100", 1): "oom",
        ("100", 2): "walltime",
        ("100", 3): "oom",
        ("100", 4): "walltime",
        ("100", 5): "EXIT",  # bkill: exit 130 too, but the reason says the owner killed it
        ("100", 6): "DONE",
    }


class Replies:
    """A scheduler runner replying canned text per command (argv[0]); records the calls."""

    def __init__(self, **replies: tuple[int, str, str] | Exception) -> None:
        self.replies = replies
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Any, **_kw: Any) -> CommandResult:
        self.calls.append(tuple(argv))
        got = self.replies.get(argv[0])
        if isinstance(got, Exception):
            raise got
        if got is None:
            raise AssertionError(f"unexpected command {argv}")
        rc, out, err = got
        return CommandResult(tuple(argv), rc, out, err)


def _killed_run(hostile_dir: Path, kind: str, state: SceneState | None = None) -> tuple[Run, str]:
    run = make_run(hostile_dir, 2)
    run.rd.append_job(JobRecord(kind, "5", "all", 0, 2, "/x/job", "2026-01-01T00:00:00Z"))
    a, b = run.scenes
    # a: the worker died without writing failed (another host: only the scheduler can tell)
    run.rd.write_state(SceneState(a, "running", attempt=1, host="node-gone", pid=4242, job_id="5_0"))
    run.rd.write_state(state or SceneState(b, "failed", attempt=1, reason="signal: worker received SIGTERM"))
    return run, a


def test_status_names_oom_and_walltime_from_squeue_when_sacct_is_disabled(hostile_dir: Path) -> None:
    run, a = _killed_run(hostile_dir, "slurm")
    b = run.scenes[1]
    fake = Replies(
        squeue=(0, "5_0 OUT_OF_MEMORY\n5_1 TIMEOUT\n", ""),
        sacct=(1, "", "sacct: error: Slurm accounting storage is disabled\n"),
    )
    rep = run_status(run.cfg, run.rd, schedulers={"slurm": SlurmScheduler(runner=fake)})
    by = {s.scene: s for s in rep.scenes}
    assert by[a].status == "failed" and (by[a].reason or "").startswith("oom: "), by[a]
    assert by[b].status == "failed" and (by[b].reason or "").startswith("walltime: "), by[b]
    assert "(slurm squeue; sacct: Slurm accounting storage is disabled: job 5[0])" in (by[a].reason or "")
    assert rep.counts["stale"] == 0 and not rep.scheduler_errors
    assert "oom: the scheduler killed the task at its memory limit" in format_status(rep)


def test_status_prefers_sacct(hostile_dir: Path) -> None:
    run, a = _killed_run(hostile_dir, "slurm")
    fake = Replies(squeue=(0, "5_0 FAILED\n5_1 FAILED\n", ""), sacct=(0, SACCT, ""))
    rep = run_status(run.cfg, run.rd, schedulers={"slurm": SlurmScheduler(runner=fake)})
    by = {s.scene: s for s in rep.scenes}
    assert (by[a].reason or "").startswith("walltime: ") and "(slurm sacct: job 5[0])" in (by[a].reason or "")
    assert (by[run.scenes[1]].reason or "").startswith("oom: ")


def test_status_keeps_stale_when_the_scheduler_names_no_limit(hostile_dir: Path) -> None:
    run, a = _killed_run(hostile_dir, "slurm")
    fake = Replies(squeue=(0, "5_0 CANCELLED\n5_1 FAILED\n", ""), sacct=SchedulerUnavailable("no sacct"))
    rep = run_status(run.cfg, run.rd, schedulers={"slurm": SlurmScheduler(runner=fake)})
    by = {s.scene: s for s in rep.scenes}
    assert by[a].status == "stale" and by[run.scenes[1]].reason == "signal: worker received SIGTERM"


def test_status_names_oom_and_walltime_from_bjobs(hostile_dir: Path) -> None:
    run, a = _killed_run(hostile_dir, "lsf")
    b = run.scenes[1]

    class FakeBjobs(Replies):
        def __call__(self, argv: Any, **kw: Any) -> CommandResult:
            if "exit_reason" in " ".join(argv):
                self.calls.append(tuple(argv))
                recs = [
                    {"JOBID": "5", "JOBINDEX": "1", "STAT": "EXIT", "EXIT_CODE": "130",
                     "EXIT_REASON": "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit"},
                    {"JOBID": "5", "JOBINDEX": "2", "STAT": "EXIT", "EXIT_CODE": "140", "EXIT_REASON": ""},
                ]  # fmt: skip
                return CommandResult(tuple(argv), 0, _bjobs(recs), "")
            recs = [{"JOBID": "5", "JOBINDEX": str(i), "STAT": "EXIT"} for i in (1, 2)]
            return CommandResult(tuple(argv), 0, _bjobs(recs), "")

    rep = run_status(run.cfg, run.rd, schedulers={"lsf": LsfScheduler(runner=FakeBjobs())})
    by = {s.scene: s for s in rep.scenes}
    assert by[a].status == "failed" and (by[a].reason or "").startswith("oom: "), by[a]
    assert "(lsf bjobs: job 5[1])" in (by[a].reason or "")
    assert (by[b].reason or "").startswith("walltime: "), by[b]


def test_lsf_without_the_exit_reason_field_falls_back_to_exit_codes() -> None:
    def runner(argv: Any, **_kw: Any) -> CommandResult:
        if "exit_reason" in " ".join(argv):
            return CommandResult(tuple(argv), 255, "", "exit_reason: Illegal field name\n")
        recs = [{"JOBID": "5", "JOBINDEX": "1", "STAT": "EXIT", "EXIT_CODE": "140"}]
        return CommandResult(tuple(argv), 0, _bjobs(recs), "")

    sched = LsfScheduler(runner=runner)
    assert sched.task_end_reasons(["5"]) == {("5", 1): "walltime"}
    assert sched.end_reasons_source == "bjobs exit codes"


def test_status_without_a_scheduler_answer_stays_stale_and_says_why(hostile_dir: Path) -> None:
    run, a = _killed_run(hostile_dir, "slurm")
    calls = {"n": 0}

    def runner(argv: Any, **_kw: Any) -> CommandResult:
        calls["n"] += 1
        if argv[0] == "squeue" and calls["n"] == 1:
            return CommandResult(tuple(argv), 0, "5_0 OUT_OF_MEMORY\n5_1 TIMEOUT\n", "")
        raise SchedulerUnavailable("expected the command 'squeue' on PATH, found none")

    rep = run_status(run.cfg, run.rd, schedulers={"slurm": SlurmScheduler(runner=runner)})
    by = {s.scene: s for s in rep.scenes}
    assert by[a].status == "stale" and rep.scheduler_errors


@linux_only
def test_local_batch_of_known_cost_reports_cpu_and_memory_within_10_percent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in list(os.environ):
        if var.startswith(("SLURM_", "LSB_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("S2KIT_SAMPLE_SECONDS", "0.1")
    cfg = known_cost_batch(tmp_path, max_concurrent=1)
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    submit(cfg, rd)
    rep = run_status(cfg, rd)
    assert rep.counts["done"] == 3, format_status(rep)
    assert known_cost_errors(rd) == []


def test_status_reads_the_limit_from_the_job_log_once_the_scheduler_forgot_the_task(
    hostile_dir: Path,
) -> None:
    run, a = _killed_run(hostile_dir, "slurm")
    b = run.scenes[1]
    logs = run.rd.jobs_dir("all")
    logs.mkdir(parents=True)
    (logs / "5_0.log").write_text(
        "s2kit: Slurm job 5 task 0\nslurmstepd-node1: error: StepId=6.batch exceeded memory limit (436580352 > 209715200), being killed\nslurmstepd-node1: error: Exceeded job memory limit\n"
    )  # fmt: skip
    (logs / "5_1.log").write_text(
        "s2kit: ...\nslurmstepd: error: *** JOB 6 ON node1 CANCELLED AT 2026-12-03T10:00:01 DUE TO TIME LIMIT ***\n"
    )
    invalid = (1, "", "slurm_load_jobs error: Invalid job id specified\n")
    fake = Replies(squeue=invalid, sacct=(1, "", "sacct: error: Slurm accounting storage is disabled\n"))
    rep = run_status(run.cfg, run.rd, schedulers={"slurm": SlurmScheduler(runner=fake)})
    by = {s.scene: s for s in rep.scenes}
    assert by[a].status == "failed" and (by[a].reason or "").startswith("oom: "), by[a]
    assert "slurm job log" in (by[a].reason or "") and "5_0.log" in (by[a].reason or "")
    assert (by[b].reason or "").startswith("walltime: "), by[b]


def test_status_job_log_that_is_a_fifo_or_silent_leaves_the_scene_stale(hostile_dir: Path) -> None:
    run, a = _killed_run(hostile_dir, "lsf")
    logs = run.rd.jobs_dir("all")
    logs.mkdir(parents=True)
    os.mkfifo(logs / "5_1.log")  # a FIFO would block a plain read forever
    (logs / "5_2.log").write_text("Exited with exit code 1.\n")

    def runner(argv: Any, **_kw: Any) -> CommandResult:
        recs = [{"JOBID": "5", "ERROR": "Job <5> is not found"}]
        return CommandResult(tuple(argv), 255, _bjobs(recs), "")

    rep = run_status(run.cfg, run.rd, schedulers={"lsf": LsfScheduler(runner=runner)})
    by = {s.scene: s for s in rep.scenes}
    assert by[a].status == "stale" and by[run.scenes[1]].reason == "signal: worker received SIGTERM"
    (logs / "5_2.log").write_text(
        "TERM_RUNLIMIT: job killed after reaching LSF run time limit.\nExited with exit code 140.\n"
    )
    rep = run_status(run.cfg, run.rd, schedulers={"lsf": LsfScheduler(runner=runner)})
    assert (rep.scenes[1].reason or "").startswith("walltime: ") and "lsf job log" in (
        rep.scenes[1].reason or ""
    )


def test_no_thread_for_the_sampler_still_runs_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Any) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(accounting.threading.Thread, "start", refuse)
    res = run_logged(["true"], tmp_path / "log", clean_env(), timeout=30)
    assert res.returncode == 0 and res.resources is not None and res.resources["wall_s"] is not None


def _fake_cgroup(tmp_path: Path, version: int, count: int) -> tuple[str, str, Path]:
    root = tmp_path / "cgroup"
    proc = tmp_path / "proc-self-cgroup"
    if version == 2:
        proc.write_text("0::/slurm/job_5/step_batch\n")
        events = root / "slurm" / "job_5" / "step_batch" / "memory.events"
        body = f"low 0\nhigh 0\nmax 3\noom 1\noom_kill {count}\noom_group_kill 0\n"
    else:
        proc.write_text("5:cpu,cpuacct:/x\n4:memory:/slurm/uid_0/job_5/step_batch\n0::/\n")
        events = root / "memory" / "slurm" / "uid_0" / "job_5" / "step_batch" / "memory.oom_control"
        body = f"oom_kill_disable 0\nunder_oom 0\noom_kill {count}\n"
    events.parent.mkdir(parents=True)
    events.write_text(body)
    return str(root), str(proc), events


@pytest.mark.parametrize("version", [1, 2])
def test_cgroup_oom_kill_count_is_read_from_v1_and_v2(tmp_path: Path, version: int) -> None:
    root, proc, events = _fake_cgroup(tmp_path, version, 7)
    assert accounting.cgroup_oom_kills(root, proc) == 7
    events.write_text("oom_kill lots\n")
    assert accounting.cgroup_oom_kills(root, proc) is None
    events.unlink()
    assert accounting.cgroup_oom_kills(root, proc) is None
    assert accounting.cgroup_oom_kills(root, str(tmp_path / "no such file")) is None


@linux_only
def test_sen2cor_killed_by_the_cgroup_oom_killer_fails_oom(
    hostile_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slurm task/cgroup, LSF cgroup enforcement: the kernel kills Sen2Cor, the worker lives on."""
    root, proc, events = _fake_cgroup(hostile_dir, 2, 0)
    monkeypatch.setattr(accounting, "CGROUP_ROOT", root)
    monkeypatch.setattr(accounting, "PROC_CGROUP", proc)
    # the "kernel": counts one OOM kill in the cgroup and SIGKILLs L2A_Process
    install = wrapper_install(
        hostile_dir / "oom sen2cor",
        f"""\
        sed -i 's/^oom_kill 0$/oom_kill 1/' {shlex.quote(str(events))}
        kill -KILL $$
        """,
    )
    run = make_run(hostile_dir / "r", install_dir=install, retries=1)
    st = run_scene(run.cfg, run.rd.path, run.scenes[0], env=clean_env())
    assert st.state == "failed" and (st.reason or "").startswith(
        "oom: L2A_Process was killed by the kernel"
    ), st
    assert st.attempt == 1 and st.exit_code == -9  # oom is final: no retry
    assert st.resources is not None


@linux_only
def test_sigkill_without_an_oom_kill_stays_exit_code(
    hostile_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, proc, _events = _fake_cgroup(hostile_dir, 2, 0)
    monkeypatch.setattr(accounting, "CGROUP_ROOT", root)
    monkeypatch.setattr(accounting, "PROC_CGROUP", proc)
    install = wrapper_install(hostile_dir / "killed sen2cor", "kill -KILL $$\n")
    run = make_run(hostile_dir / "r", install_dir=install, retries=0)
    st = run_scene(run.cfg, run.rd.path, run.scenes[0], env=clean_env())
    assert (st.state, st.reason) == ("failed", "exit-code: SIGKILL")
