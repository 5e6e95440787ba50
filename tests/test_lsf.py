"""LSF backend: golden job scripts, site detection (units, array size, per-slot memory),
bsub/bjobs/bkill through FAKE LSF commands on PATH (tests/fake_lsf: they log argv+stdin
and reply like LSF 10.1), and a rendered script EXECUTED with bash the way LSF would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from s2kit.batch import status, submit
from s2kit.config import BatchConfig
from s2kit.plan import make_plan
from s2kit.runs import RunDir
from s2kit.schedulers import LsfScheduler, SchedulerError, get_scheduler, job_spec
from s2kit.schedulers.base import JobSpec, UnsafeScriptValue, load_template, mb_to_unit
from s2kit.schedulers.lsf import (
    LsfSite,
    parse_bjobs_json,
    parse_bparams,
    parse_bsub_reply,
    parse_unit_for_limits,
    render_lsf,
    rusage_mem,
)
from tests.support import REPO
from tests.support.batch_runs import (
    FAKE_LSF,
    SCRIPT_VALUES_WITH_CONTROL_CHARACTERS,
    partials,
    published,
    resubmit_fixed,
    run_hostile_job_script,
    s2kit_cli,
)
from tests.support.configs import batch_config, config_data, write_toml


@pytest.fixture
def fake_lsf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake bsub/bjobs/bkill/bparams/lsadmin first on PATH; returns their state dir."""
    state = tmp_path / "fake-lsf-state"
    monkeypatch.setenv("PATH", f"{FAKE_LSF}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LSF_DIR", str(state))
    monkeypatch.setenv("FAKE_LSF_PYTHON", sys.executable)
    for var in ("FAKE_LSF_UNIT", "FAKE_LSF_MAX_ARRAY", "FAKE_LSF_PER_TASK", "FAKE_LSF_DOWN", "FAKE_LSF_RUN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("LSF_UNIT_FOR_LIMITS", raising=False)
    monkeypatch.setenv("LSF_ENVDIR", str(tmp_path / "no-lsf-envdir"))
    return state


def calls(state: Path, cmd: str | None = None) -> list[dict[str, object]]:
    f = state / "calls.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []
    return [r for r in rows if cmd is None or r["cmd"] == cmd]


SPEC = JobSpec(
    name="s2kit-all",
    batch="all",
    offset=0,
    count=250,
    command=(
        "/opt/s2kit/bin/s2kit",
        "worker",
        "--run-dir",
        "/data/runs/tile-46RER",
        "--batch",
        "all",
        "--offset",
        "0",
    ),
    log_dir=Path("/data/runs/tile-46RER/jobs/all"),
    cores=1,
    memory_mb=4096,
    walltime_minutes=120,
    queue="normal",
    max_concurrent=4,
)


# ============================================================================ golden scripts (pure)
def test_golden_mb_per_host(file_regression) -> None:  # type: ignore[no-untyped-def]
    site = LsfSite(
        unit="MB", unit_source="lsadmin showconf lim", max_array_size=1000, max_array_source="bparams -a"
    )
    text = render_lsf(SPEC, site)
    assert '#BSUB -J "s2kit-all[1-250]%4"' in text and '#BSUB -R "rusage[mem=4096] span[hosts=1]"' in text
    assert "#BSUB -W 2:00" in text and "#BSUB -o /data/runs/tile-46RER/jobs/all/%J_%I.log" in text
    file_regression.check(text, extension=".lsf")


def test_golden_kb_default_no_queue_chunk(file_regression) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    spec = replace(
        SPEC,
        name="s2kit-all-1000",
        offset=1000,
        count=7,
        queue="",
        walltime_minutes=95,
        command=SPEC.command[:-1] + ("1000",),
    )
    text = render_lsf(spec, LsfSite())
    assert "rusage[mem=4194304]" in text and "#BSUB -q" not in text and "#BSUB -W 1:35" in text
    assert "--offset 1000" in text
    file_regression.check(text, extension=".lsf")


def test_golden_gb_per_slot_four_cores(file_regression) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    spec = replace(SPEC, cores=4, memory_mb=10 * 1024)
    site = LsfSite(unit="GB", unit_source="lsadmin showconf lim", reserve_per_task=True)
    assert rusage_mem(spec, site) == 3  # 10 GB over 4 slots = 2.5 GB per slot, rounded up
    text = render_lsf(spec, site)
    assert "#BSUB -n 4" in text and "rusage[mem=3] span[hosts=1]" in text
    file_regression.check(text, extension=".lsf")


def test_golden_apptainer_hostile_paths(file_regression) -> None:  # type: ignore[no-untyped-def]
    root = "/data/dir with spaces 'quote' \"dq\" $HOME ünïcødé"
    scheduler = {"kind": "lsf", "queue": "long q", "max_concurrent": 10, "walltime": "12:30"}
    data = config_data(root, runtime="apptainer", image=f"{root}/sen2cor-2.9.sif", scheduler=scheduler)
    cfg = BatchConfig.model_validate(data)
    spec = job_spec(cfg, cfg.paths.run_dir, "resubmit-1", 0, 3, cfg.paths.run_dir / "jobs" / "resubmit-1")
    text = render_lsf(spec, LsfSite(unit="MB", unit_source="lsadmin showconf lim"))
    # every path is one shell word: bash parses the exec line back into the exact argv
    exec_line = next(line for line in text.splitlines() if line.startswith("exec "))
    argv = subprocess.run(
        ["bash", "-c", 'printf "%s\\0" ' + exec_line[len("exec ") :]],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"], "LSB_JOBINDEX": "3", "LSB_JOBID": "42"},
    ).stdout.split(b"\0")[:-1]
    words = [w.decode() for w in argv]
    assert words[:4] == ["apptainer", "exec", "--cleanenv", "--no-home"]
    assert "LSB_JOBINDEX=3" in words and f"{root}/run:{root}/run:rw" in words
    assert words[-6:] == ["worker", "--run-dir", f"{root}/run", "--batch", "resubmit-1", "--offset", "0"][-6:]
    file_regression.check(text, extension=".lsf")


def test_scripts_lsf_copy_is_identical_to_the_packaged_template() -> None:
    packaged = REPO / "s2kit" / "templates" / "jobs" / "s2kit-array.lsf.tmpl"
    assert (REPO / "scripts" / "lsf" / "s2kit-array.lsf.tmpl").read_bytes() == packaged.read_bytes()
    assert load_template("s2kit-array.lsf.tmpl") == packaged.read_text(encoding="utf-8")


# ============================================================================ parsers (pure)
def test_parse_bsub_reply() -> None:
    assert parse_bsub_reply("Job <123> is submitted to queue <normal>.\n") == ("123", "normal")
    assert parse_bsub_reply("Job <9> is submitted to default queue <short>.") == ("9", "short")
    with pytest.raises(SchedulerError, match="expected bsub to reply"):
        parse_bsub_reply("Request aborted by esub. Job not submitted.")
    with pytest.raises(SchedulerError):
        parse_bsub_reply("")


def test_parse_units_and_bparams() -> None:
    assert parse_unit_for_limits("  LSF_CONFDIR = /x\n  LSF_UNIT_FOR_LIMITS = mb\n") == "MB"
    assert parse_unit_for_limits('LSF_UNIT_FOR_LIMITS="GB"\n') == "GB"
    assert parse_unit_for_limits("#LSF_UNIT_FOR_LIMITS=MB\n") is None
    assert parse_unit_for_limits("LSF_UNIT_FOR_LIMITS = parsecs\n") is None
    assert parse_bparams("    MAX_JOB_ARRAY_SIZE = 20000\n    RESOURCE_RESERVE_PER_TASK = Y\n") == (
        20000,
        True,
    )
    assert parse_bparams("    RESOURCE_RESERVE_PER_SLOT = N\n") == (None, False)
    assert parse_bparams("nothing here") == (None, None)


def test_mb_to_unit_rounds_up() -> None:
    assert [mb_to_unit(512, u) for u in ("KB", "MB", "GB", "TB")] == [524288, 512, 1, 1]
    assert mb_to_unit(4097, "GB") == 5 and mb_to_unit(4096, "GB") == 4


def test_parse_bjobs_json() -> None:
    doc = {
        "COMMAND": "bjobs",
        "JOBS": 4,
        "RECORDS": [
            {"JOBID": "7", "JOBINDEX": "1", "STAT": "DONE", "EXIT_CODE": ""},
            {"JOBID": "7", "JOBINDEX": "2", "STAT": "EXIT", "EXIT_CODE": "1"},
            {"JOBID": "7", "JOBINDEX": "3", "STAT": "RUN", "EXIT_CODE": ""},
            {"JOBID": "8", "ERROR": "Job <8> is not found"},
        ],
    }
    got = parse_bjobs_json(json.dumps(doc), ["7", "8"])
    assert got["7"].tasks == {1: "done", 2: "failed", 3: "running"} and got["7"].state == "active"
    assert got["7"].task(4) == "gone"
    assert got["8"].state == "gone" and "not found" in got["8"].detail
    with pytest.raises(SchedulerError):
        parse_bjobs_json("LSF is down. Please wait ...", ["7"])


# ============================================================================ detection via fake commands
@pytest.mark.parametrize(("unit", "mem"), [("MB", 512), ("KB", 524288), ("GB", 1)])
def test_unit_from_lsadmin(fake_lsf: Path, monkeypatch: pytest.MonkeyPatch, unit: str, mem: int) -> None:
    monkeypatch.setenv("FAKE_LSF_UNIT", unit)
    from dataclasses import replace

    sched = LsfScheduler()
    assert sched.site.unit == unit and sched.site.unit_source == "lsadmin showconf lim"
    assert f"rusage[mem={mem}] span[hosts=1]" in sched.render(replace(SPEC, memory_mb=512))
    assert calls(fake_lsf, "lsadmin")[0]["argv"] == ["showconf", "lim"]


def test_unit_fallbacks_env_then_lsf_conf_then_kb(
    fake_lsf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LSF_UNIT", "fail")  # LIM down: lsadmin fails
    monkeypatch.setenv("LSF_UNIT_FOR_LIMITS", "GB")
    assert (LsfScheduler().site.unit, LsfScheduler().site.unit_source) == ("GB", "environment")
    monkeypatch.delenv("LSF_UNIT_FOR_LIMITS")
    envdir = tmp_path / "lsf-conf"
    envdir.mkdir()
    (envdir / "lsf.conf").write_text("LSF_LOGDIR=/var/log/lsf\nLSF_UNIT_FOR_LIMITS=MB\n")
    monkeypatch.setenv("LSF_ENVDIR", str(envdir))
    site = LsfScheduler().site
    assert site.unit == "MB" and site.unit_source.endswith("lsf.conf")
    monkeypatch.setenv("FAKE_LSF_UNIT", "none")  # lsadmin works but does not name a unit
    (envdir / "lsf.conf").write_text("LSF_LOGDIR=/var/log/lsf\n")
    assert (LsfScheduler().site.unit, LsfScheduler().site.unit_source) == ("KB", "LSF default")


def test_array_size_and_per_task_from_bparams(fake_lsf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LSF_MAX_ARRAY", "64")
    monkeypatch.setenv("FAKE_LSF_PER_TASK", "Y")
    site = LsfScheduler().site
    assert (site.max_array_size, site.reserve_per_task, site.max_array_source) == (64, True, "bparams -a")
    monkeypatch.setenv("FAKE_LSF_DOWN", "1")
    site = LsfScheduler().site
    assert site.max_array_size == 1000 and "bparams -a failed" in site.max_array_source


# ============================================================================ submit / status / cancel via fakes
def test_submit_via_bsub_stdin_chunked(
    fake_lsf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LSF_MAX_ARRAY", "2")
    monkeypatch.setenv("FAKE_LSF_UNIT", "MB")
    cfg = batch_config(tmp_path, 5, kind="lsf", max_concurrent=2, queue="normal", extra_args=["-P", "s2"])
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    res = submit(cfg, rd, scheduler=get_scheduler("lsf"))
    bsubs = calls(fake_lsf, "bsub")
    assert len(bsubs) == 3
    assert all(c["argv"] == ["-P", "s2"] for c in bsubs)  # extra_args on the command line, script on stdin
    assert [c["stdin"] for c in bsubs] == [ch.script.read_text() for ch in res.chunks]
    assert '#BSUB -J "s2kit-all[1-2]%2"' in str(bsubs[0]["stdin"])
    assert '#BSUB -J "s2kit-all-2[1-2]%2"' in str(bsubs[1]["stdin"]) and "--offset 2" in str(
        bsubs[1]["stdin"]
    )
    assert '#BSUB -J "s2kit-all-4[1-1]%2"' in str(bsubs[2]["stdin"]) and "--offset 4" in str(
        bsubs[2]["stdin"]
    )
    assert all(c["cwd"] == str(rd.jobs_dir("all")) for c in bsubs)
    assert [(j.scheduler, j.job_id, j.first_index, j.count) for j in rd.read_jobs()] == [
        ("lsf", "100", 0, 2),
        ("lsf", "101", 2, 2),
        ("lsf", "102", 4, 1),
    ]
    # status asks bjobs for the recorded jobs: every element PEND -> every scene pending
    rep = status(cfg, rd)
    assert rep.counts["pending"] == 5
    bjobs = calls(fake_lsf, "bjobs")[-1]["argv"]
    assert bjobs[:5] == ["-a", "-o", "jobid jobindex stat exit_code", "-json", "100"]
    # bkill cancels an array; its elements are EXIT -> scenes without a state are todo again
    get_scheduler("lsf").cancel("101")
    assert calls(fake_lsf, "bkill")[-1]["argv"] == ["101"]
    assert status(cfg, rd).counts == {
        "todo": 2,
        "pending": 3,
        "running": 0,
        "stale": 0,
        "done": 0,
        "failed": 0,
        "skipped": 0,
    }
    # mbatchd down: status still works, the jobs are unknown
    monkeypatch.setenv("FAKE_LSF_DOWN", "1")
    rep = status(cfg, rd)
    assert rep.scheduler_errors and "LSF is down" in rep.scheduler_errors[0]
    assert {j["state"] for j in rep.to_dict()["jobs"]} == {"unknown"}


def test_bad_bsub_reply_is_an_error_and_records_nothing(
    fake_lsf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LSF_BSUB_REPLY", "Request aborted by esub. Job not submitted.")
    cfg = batch_config(tmp_path, 1, kind="lsf")
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    with pytest.raises(SchedulerError, match="Request aborted by esub"):
        submit(cfg, rd)
    assert rd.read_jobs() == []


def test_rendered_script_executed_by_bash_runs_the_worker(fake_lsf: Path, tmp_path: Path) -> None:
    """Run the job script like LSF runs an array element: bash, LSB_* set, index 1-based."""
    cfg = batch_config(tmp_path, 3, kind="lsf", max_array_size=2)
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    res = submit(cfg, rd, dry_run=True)
    assert [(ch.offset, ch.count) for ch in res.chunks] == [(0, 2), (2, 1)]
    scenes = rd.read_batch("all")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LSB_"))}
    # element 2 of the first array -> line 1; element 1 of the second array (--offset 2) -> line 2
    for script, index, line in ((res.chunks[0].script, 2, 1), (res.chunks[1].script, 1, 2)):
        run = subprocess.run(
            ["bash", str(script)],
            env=dict(env, LSB_JOBID="4242", LSB_JOBINDEX=str(index), LSB_DJOB_NUMPROC="1"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert "s2kit: LSF job 4242[" in run.stderr
        st = rd.read_state(scenes[line])
        assert st is not None and st.state == "done" and st.job_id == f"4242[{index}]"
    assert rd.read_state(scenes[0]) is None
    assert sorted(published(cfg)) == sorted([scenes[1], scenes[2]]) and partials(cfg) == []


def test_cli_end_to_end_with_fake_lsf_running_the_elements(tmp_path: Path) -> None:
    """plan, submit (the fake bsub runs each element with bash), status via bjobs, resubmit."""
    cfg = batch_config(tmp_path, 4, {1: "crash"}, kind="lsf", max_concurrent=2)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LSB_"))}
    env.update(
        PATH=f"{FAKE_LSF}:{os.environ['PATH']}",
        FAKE_LSF_DIR=str(tmp_path / "lsf"),
        FAKE_LSF_PYTHON=sys.executable,
        FAKE_LSF_RUN="1",
        FAKE_LSF_UNIT="MB",
    )
    assert s2kit_cli("plan", "--config", str(conf), "--no-preflight", env=env).returncode == 0
    sub = s2kit_cli("submit", "--config", str(conf), env=env)
    assert sub.returncode == 0, sub.stderr
    assert "submitted lsf job 100" in sub.stderr and "LSF_UNIT_FOR_LIMITS=MB" in sub.stderr
    st = s2kit_cli("status", "--config", str(conf), "--json", env=env)
    doc = json.loads(st.stdout)
    assert doc["counts"]["done"] == 3 and doc["counts"]["failed"] == 1
    assert doc["jobs"][0]["tasks"] == {"done": 3, "failed": 1} and doc["jobs"][0]["state"] == "ended"
    failed = doc["failed"][0]
    assert failed["reason"].startswith("exit-code") and Path(failed["log"]).is_file()
    logs = sorted(p.name for p in RunDir(cfg.paths.run_dir).jobs_dir("all").glob("*.log"))
    assert logs == ["100_1.log", "100_2.log", "100_3.log", "100_4.log"]  # %J_%I
    again, _pub = resubmit_fixed(cfg, conf, env, done=4)
    assert "batch resubmit-1" in again.stdout
    nothing = s2kit_cli("submit", "--config", str(conf), env=env)
    assert nothing.returncode == 0 and "nothing to submit" in nothing.stdout
    assert len([c for c in (tmp_path / "lsf" / "calls.jsonl").read_text().splitlines() if '"bsub"' in c]) == 2


# ============================================================================ issue 12 item 2: no shell from data
# Hostile but legal: every character here is allowed in a path and must arrive verbatim.
def test_hostile_paths_in_an_lsf_script_run_no_shell_code(tmp_path: Path) -> None:
    cfg, st = run_hostile_job_script(
        tmp_path,
        "lsf",
        lambda spec: render_lsf(spec, LsfSite(unit="MB", unit_source="test")),
        "#BSUB",
        6,
        "#BSUB -e ",
        {"LSB_JOBID": "7", "LSB_JOBINDEX": "1", "LSB_DJOB_NUMPROC": "1"},
    )
    assert st.job_id == "7[1]"
    assert published(cfg) and str(published(cfg)).count("PWNED") == 0


@pytest.mark.parametrize(("field", "value"), SCRIPT_VALUES_WITH_CONTROL_CHARACTERS)
def test_lsf_renderer_refuses_a_control_character_in_a_script_value(field: str, value: object) -> None:
    """Defence in depth: the pure renderer itself refuses, whatever the caller validated."""
    from dataclasses import replace

    with pytest.raises(UnsafeScriptValue, match="job script .*expected no control characters, found"):
        render_lsf(replace(SPEC, **{field: value}), LsfSite())


def test_lsf_conf_path_with_a_newline_never_reaches_the_notes(
    fake_lsf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LSF_UNIT", "fail")
    envdir = tmp_path / "lsf\nconf"
    envdir.mkdir()
    (envdir / "lsf.conf").write_text("LSF_UNIT_FOR_LIMITS=MB\n")
    monkeypatch.setenv("LSF_ENVDIR", str(envdir))
    sched = LsfScheduler()
    assert sched.site.unit == "MB" and "\n" not in sched.site.unit_source
    assert "lsf?conf" in sched.render(SPEC)
