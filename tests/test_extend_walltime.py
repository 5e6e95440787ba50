"""s2kit extend-walltime: LSF ``bmod -W`` and Slurm ``scontrol update … TimeLimit=`` on the run's
live arrays, through FAKE schedulers at the subprocess boundary (tests/fake_lsf, FakeSlurm);
finished jobs untouched, refusals in one line, the new walltime recorded in jobs.jsonl."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from s2kit.advise import extend_run_walltime
from s2kit.fsutil import atomic_write_text
from s2kit.runs import RunDir
from s2kit.schedulers import LsfScheduler, SchedulerError, SlurmScheduler, WalltimeRefused
from tests.support.batch_runs import FAKE_LSF, FakeSlurm
from tests.support.cli_runs import one_error_line, run_exe
from tests.support.resource_runs import Scene, job, measured_run

LSF_REFUSAL = "User permission denied. Job <100> is not modified"
SLURM_REFUSALS = [
    "slurm_update error: Access/permission denied",
    "slurm_update error: Requested time limit is invalid (missing or exceeds some limit)",
]


@pytest.fixture
def fake_lsf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake LSF commands first on PATH, job 100 (one element running, one pending) and job 101
    (done) known to them; returns their state dir."""
    state = tmp_path / "fake-lsf-state"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{FAKE_LSF}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LSF_DIR", str(state))
    monkeypatch.setenv("FAKE_LSF_PYTHON", sys.executable)
    for var in ("FAKE_LSF_DOWN", "FAKE_LSF_BMOD_REFUSE"):
        monkeypatch.delenv(var, raising=False)
    element = {"stat": "RUN", "exit_code": ""}
    jobs = {
        "next": 102,
        "jobs": {
            "100": {
                "name": "s2kit-all",
                "queue": "normal",
                "elements": {"1": element, "2": {**element, "stat": "PEND"}},
            },
            "101": {
                "name": "s2kit-all-2",
                "queue": "normal",
                "elements": {"1": {"stat": "DONE", "exit_code": ""}},
            },
        },
    }
    (state / "jobs.json").write_text(json.dumps(jobs))
    return state


def bmods(state: Path) -> list[list[str]]:
    f = state / "calls.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []
    return [r["argv"] for r in rows if r["cmd"] == "bmod"]


def lsf_run(tmp_path: Path) -> RunDir:
    _, rd, _ = measured_run(
        tmp_path,
        [Scene(state="running"), Scene(state=None), Scene()],
        jobs=[job("100", 2), job("101", 1, first=2)],
        kind="lsf",
        walltime="02:00",
    )
    return rd


def test_lsf_bmod_extends_only_the_live_array_and_records_it(
    fake_lsf: Path, tmp_path: Path, s2kit_exe: str
) -> None:
    rd = lsf_run(tmp_path)
    res = run_exe(s2kit_exe, "extend-walltime", "--run-dir", rd.path, "--walltime", "04:30")
    assert res.returncode == 0, res
    out = res.stdout.decode()
    assert "lsf job 100: extended: walltime 02:00 -> 04:30" in out
    assert "lsf job 101: finished: not changed" in out
    assert bmods(fake_lsf) == [["-W", "4:30", "100"]]  # the whole array id; never the finished job
    assert json.loads((fake_lsf / "jobs.json").read_text())["jobs"]["100"]["runlimit"] == "4:30"
    recs = {r.job_id: r for r in rd.read_jobs()}
    assert recs["100"].extra["walltime_minutes"] == 270 and "walltime_minutes" not in recs["101"].extra
    # a second extension to a shorter or equal walltime is not sent
    again = run_exe(s2kit_exe, "extend-walltime", "--run-dir", rd.path, "--walltime", "4:30", "--job", "100")
    assert again.returncode == 0 and "not longer than its walltime 04:30" in again.stdout.decode()
    assert len(bmods(fake_lsf)) == 1


def test_lsf_refusal_says_only_an_admin_can_raise_it(
    fake_lsf: Path, tmp_path: Path, s2kit_exe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rd = lsf_run(tmp_path)
    monkeypatch.setenv("FAKE_LSF_BMOD_REFUSE", LSF_REFUSAL)
    res = run_exe(s2kit_exe, "extend-walltime", "--run-dir", rd.path, "--walltime", "04:00")
    assert res.returncode == 1
    (line,) = [ln for ln in res.stdout.decode().splitlines() if "job 100" in ln]
    assert "refused" in line and LSF_REFUSAL in line and "usually only an administrator" in line
    assert "walltime_minutes" not in {r.job_id: r for r in rd.read_jobs()}["100"].extra


@pytest.mark.parametrize("refusal", SLURM_REFUSALS)
def test_slurm_scontrol_refusal_is_detected(tmp_path: Path, refusal: str) -> None:
    cfg, rd, _ = measured_run(tmp_path, [Scene(state="running")], jobs=[job("500", 1, "slurm")], kind="slurm")
    fake = FakeSlurm(squeue={"500": "500_0 RUNNING\n"})
    fake.update_reply = (1, refusal + "\n")
    (ext,) = extend_run_walltime(cfg, rd, 240, schedulers={"slurm": SlurmScheduler(runner=fake)})
    assert ext.outcome == "refused" and refusal in ext.message and "\n" not in ext.message
    assert "administrator" in ext.message
    with pytest.raises(WalltimeRefused):
        SlurmScheduler(runner=fake).extend_walltime("500", 240)


def test_slurm_scontrol_update_sets_the_array_time_limit(tmp_path: Path) -> None:
    cfg, rd, _ = measured_run(
        tmp_path,
        [Scene(state="running"), Scene()],
        jobs=[job("500", 1, "slurm"), job("501", 1, "slurm", first=1)],
        kind="slurm",
    )
    fake = FakeSlurm(squeue={"500": "500_0 RUNNING\n", "501": "501_0 COMPLETED\n"})
    out = extend_run_walltime(cfg, rd, 150, schedulers={"slurm": SlurmScheduler(runner=fake)})
    assert [(e.job_id, e.outcome) for e in out] == [("500", "extended"), ("501", "finished")]
    assert ("scontrol", "update", "JobId=500", "TimeLimit=2:30:00") in fake.calls
    assert fake.time_limits == {"500": "2:30:00"}


def test_non_numeric_job_id_never_reaches_the_scheduler() -> None:
    fake = FakeSlurm()
    for sched in (SlurmScheduler(runner=fake), LsfScheduler(runner=fake)):
        for bad in ("-1", "500;reboot", "500\nx", ""):
            with pytest.raises(SchedulerError, match="expected a numeric"):
                sched.extend_walltime(bad, 60)
    assert fake.calls == []


def test_job_option_must_name_a_job_of_the_run(fake_lsf: Path, tmp_path: Path, s2kit_exe: str) -> None:
    rd = lsf_run(tmp_path)
    line = one_error_line(
        run_exe(s2kit_exe, "extend-walltime", "--run-dir", rd.path, "--walltime", "3:00", "--job", "999")
    )
    assert "expected a job of this run (jobs.jsonl), found none with id '999'" in line
    assert bmods(fake_lsf) == []


def test_local_jobs_have_no_walltime(tmp_path: Path, s2kit_exe: str) -> None:
    _, rd, _ = measured_run(tmp_path, [Scene()], jobs=[job("vm:1:2", 1, "local")], kind="local")
    res = run_exe(s2kit_exe, "extend-walltime", "--run-dir", rd.path, "--walltime", "3:00")
    assert res.returncode == 1 and "local jobs have no walltime" in res.stdout.decode()


@pytest.mark.parametrize("bad", ["0:00", "abc", "1:00\nx", "721:00", "-1:00"])
def test_bad_walltime_is_refused_in_one_line(tmp_path: Path, s2kit_exe: str, bad: str) -> None:
    _, rd, _ = measured_run(tmp_path, [Scene()], jobs=[job("100", 1)])
    res = run_exe(s2kit_exe, "extend-walltime", "--run-dir", rd.path, "--walltime", bad)
    lines = res.stderr.decode().splitlines()
    assert res.returncode == 2 and res.stdout == b"" and len(lines) == 1 and "--walltime" in lines[0], res


def test_scheduler_down_changes_nothing_and_says_so(
    fake_lsf: Path, tmp_path: Path, s2kit_exe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rd = lsf_run(tmp_path)
    monkeypatch.setenv("FAKE_LSF_DOWN", "1")
    res = run_exe(s2kit_exe, "extend-walltime", "--run-dir", rd.path, "--walltime", "04:00")
    assert res.returncode == 1 and "could not be asked" in res.stdout.decode()
    assert bmods(fake_lsf) == []


def test_update_job_rewrite_lost_no_record_appended_meanwhile(tmp_path: Path) -> None:
    """The rewrite of jobs.jsonl replaces the file: an appender that waited for the old file's
    flock must append to the new file (before the re-check, its line went to the unlinked inode)."""
    _, rd, _ = measured_run(tmp_path, [Scene(), Scene()], jobs=[job("100", 1)])
    late = job("101", 1, first=1)
    fd = os.open(rd.jobs_file, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as update_job holds it while it rewrites
    appender = threading.Thread(target=rd.append_job, args=(late,))
    appender.start()
    time.sleep(0.3)  # let it block on the flock (ordering only; nothing is timed)
    atomic_write_text(rd.jobs_file, rd.jobs_file.read_text(encoding="utf-8"))
    os.close(fd)
    appender.join(10)
    assert [r.job_id for r in rd.read_jobs()] == ["100", "101"]
    assert rd.update_job("lsf", "101", {"walltime_minutes": 60})
    assert [r.extra for r in rd.read_jobs()] == [{}, {"walltime_minutes": 60}]
    assert not rd.update_job("lsf", "999", {"walltime_minutes": 60})


def test_extend_walltime_shortened_a_running_job_below_what_submit_gave_it(tmp_path: Path) -> None:
    """review2: the job's current walltime was the given config's (or a jobs.jsonl value), so with
    a TOML edited since submit to walltime 00:30 (or a hand-edited record), --walltime 01:00 on a
    job submitted with 02:00 sent `scontrol update TimeLimit=1:00:00`: Slurm lets users LOWER a
    limit, and the running Sen2Cor was killed. The submit snapshot's walltime counts too."""
    cfg, rd, _ = measured_run(
        tmp_path, [Scene(state="running")], jobs=[job("500", 1, "slurm")], kind="slurm", walltime="02:00"
    )
    edited = cfg.model_copy(update={"scheduler": cfg.scheduler.model_copy(update={"walltime": "00:30"})})
    assert edited.scheduler.walltime_minutes == 30
    fake = FakeSlurm(squeue={"500": "500_0 RUNNING\n"})
    (ext,) = extend_run_walltime(edited, rd, 60, schedulers={"slurm": SlurmScheduler(runner=fake)})
    assert ext.outcome == "not-longer" and "not longer than its walltime 02:00" in ext.message
    assert fake.time_limits == {}
    # a jobs.jsonl record hand-edited to a 1-minute walltime does not lower the bar either
    lines = [json.loads(x) for x in rd.jobs_file.read_text().splitlines()]
    for d in lines:
        d.setdefault("extra", {})["walltime_minutes"] = 1
    rd.jobs_file.write_text("".join(json.dumps(d) + "\n" for d in lines))
    (ext,) = extend_run_walltime(cfg, rd, 90, schedulers={"slurm": SlurmScheduler(runner=fake)})
    assert ext.outcome == "not-longer" and fake.time_limits == {}
    (ext,) = extend_run_walltime(cfg, rd, 180, schedulers={"slurm": SlurmScheduler(runner=fake)})
    assert ext.outcome == "extended" and fake.time_limits == {"500": "3:00:00"}
