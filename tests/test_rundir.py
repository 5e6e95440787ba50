"""Run directory integrity (issue 12 items 3, 6, 9, 11, 15): batch files are immutable once
written, live local workers are not "stale", a torn jobs.jsonl line does not break any
command, a full or read-only run dir is one error line, failure reasons are one short line.

The end-to-end cases run the real CLI with the local scheduler on the Sen2Cor TEST DOUBLE
(tests/sen2cor_double, not Sen2Cor), made slow per scene with ``S2KIT_DOUBLE_FAULT``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from s2kit import fsutil
from s2kit.batch import format_status, status, submit
from s2kit.cli import app
from s2kit.errors import InputError
from s2kit.plan import make_plan
from s2kit.runs import (
    REASON_MAX,
    BatchImmutable,
    JobRecord,
    RunDir,
    SceneState,
    one_line,
)
from tests.support.batch_runs import published, s2kit_cli
from tests.support.configs import batch_config, write_toml


def _env() -> dict[str, str]:
    drop = ("SLURM_", "LSB_", "APPTAINER", "SINGULARITY", "S2KIT_", "SEN2COR_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _submit_process(conf: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    exe = Path(sys.executable).parent / "s2kit"
    return subprocess.Popen(
        [str(exe), "submit", "--config", str(conf)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the test can always clean up the whole tree
    )


def _stamp(name: str) -> str:
    """The datatake sensing time of an L1C or L2A product name (field 3)."""
    return Path(name).name.split("_")[2]


def _record(job_id: str = "h:1:1", batch: str = "all") -> JobRecord:
    return JobRecord("local", job_id, batch, 0, 1, "/x.sh", "2026-01-01T00:00:00Z")


# ============================================================================ item 3: immutable batches
def test_replan_while_array_queued_sends_no_task_to_the_wrong_scene(tmp_path: Path) -> None:
    """The issue's reproduction: 4 slow scenes, max_concurrent 1; plan; submit &; (first scene
    done) plan; wait. Every scene ends done exactly once, made from the right L1C."""
    cfg = batch_config(tmp_path, 4, {k: "slow:1.5" for k in range(4)}, max_concurrent=1)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    env = _env()
    rd = RunDir(cfg.paths.run_dir)
    assert s2kit_cli("plan", "--config", str(conf), "--no-preflight", env=env).returncode == 0
    first = rd.read_batch("all")
    assert len(first) == 4

    sub = _submit_process(conf, env)
    try:
        _wait_for(lambda: any(s.state == "done" for s in rd.read_states().values()), "a first scene done")
        again = s2kit_cli("plan", "--config", str(conf), "--no-preflight", env=env)
        out, err = sub.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sub.pid, signal.SIGKILL)
        sub.wait()
    assert again.returncode == 0, again.stderr
    assert "expected an array index" not in err
    assert sub.returncode == 0, err
    # the queued array's batch file never changed; the re-plan left out the scenes that were
    # done, running or queued in the live array and, with none left, wrote no (empty) batch
    assert rd.read_batch("all") == first
    assert rd.plan_batch() == "all" and not rd.batch_file("all-2").exists()
    assert "plan: nothing new to submit: " in again.stdout and "(batch all unchanged)" in again.stdout
    for scene in first:
        assert sum(f"] {scene}: done" in line for line in err.splitlines()) == 1, err

    states = rd.read_states()
    assert {s: states[s].state for s in first} == dict.fromkeys(first, "done")
    for scene in first:  # each state's L2A was made from its own L1C
        assert _stamp(states[scene].l2a or "") == _stamp(scene)
    made = published(cfg)
    assert sorted(made) == sorted(first) and all(len(v) == 1 for v in made.values())
    assert all(_stamp(made[s][0]) == _stamp(s) for s in first)
    doc = json.loads(s2kit_cli("status", "--config", str(conf), "--json", env=env).stdout)
    assert doc["counts"]["done"] == 4 and doc["total"] == 4
    nothing = s2kit_cli("submit", "--config", str(conf), env=env)
    assert nothing.returncode == 0 and "nothing to submit in batch all" in nothing.stdout


def test_write_batch_refuses_to_rewrite_a_batch_with_other_scenes(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    f = rd.write_batch("all", ["a", "b", "c"])
    assert rd.write_batch("all", ["a", "b", "c"]) == f  # the same scenes again: no-op
    with pytest.raises(BatchImmutable, match="never rewritten"):
        rd.write_batch("all", ["b", "c"])
    assert rd.read_batch("all") == ["a", "b", "c"]
    assert sorted(p.name for p in f.parent.iterdir()) == ["all.txt"]  # no temp file left


def test_replan_writes_a_new_batch_and_submit_defaults_to_it(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 3)
    rd = RunDir(cfg.paths.run_dir)
    res = make_plan(cfg, check_resources=False)
    assert res.batch == "all" and rd.plan_batch() == "all"
    scenes = rd.read_batch("all")
    assert make_plan(cfg, check_resources=False).batch == "all"  # same todo list: same batch
    rd.append_job(_record())  # a job indexes batch "all"

    # one scene is now done (published): the re-plan must not rewrite all.txt
    from tests.test_plan import _publish

    _publish(cfg, scenes[0])
    res2 = make_plan(cfg, check_resources=False)
    assert res2.batch == "all-2" and rd.plan_batch() == "all-2"
    assert rd.read_batch("all") == scenes and rd.read_batch("all-2") == scenes[1:]
    assert "plan: batch all-2: 2 scene(s)" in res2.summary()
    got = submit(cfg, rd, dry_run=True)
    assert got.source_batch == "all-2" and got.scenes == scenes[1:]


def test_status_maps_each_job_onto_its_own_batch_after_a_replan(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 3)
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    scenes = rd.read_batch("all")
    script = tmp_path / "job.sh"
    job_id = f"{os.uname().nodename}:1:7"
    from s2kit.schedulers import LocalScheduler

    LocalScheduler.results_file(script, job_id).write_text(
        json.dumps({"exit_codes": {"0": 0, "1": 1, "2": 0}})
    )
    rd.append_job(JobRecord("local", job_id, "all", 0, 3, str(script), "2026-01-01T00:00:00Z"))
    from tests.test_plan import _publish

    _publish(cfg, scenes[0])
    assert make_plan(cfg, check_resources=False).batch == "all-2"
    got = {s.scene: (s.job, s.task) for s in status(cfg, rd).scenes}
    assert got[scenes[1]] == (f"local {job_id}[1]", "failed")  # line 1 of the job's own batch
    assert got[scenes[2]] == (f"local {job_id}[2]", "done")


# ============================================================================ item 6: live workers
def test_kill_9_of_local_submit_leaves_live_workers_running_not_stale(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 2, {0: "slow:4", 1: "slow:4"}, max_concurrent=2)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    env = _env()
    rd = RunDir(cfg.paths.run_dir)
    assert s2kit_cli("plan", "--config", str(conf), "--no-preflight", env=env).returncode == 0
    scenes = rd.read_batch("all")
    sub = _submit_process(conf, env)
    try:

        def both_running() -> bool:
            st = rd.read_states()
            return all(s in st and st[s].state == "running" for s in scenes)

        _wait_for(both_running, "both workers running")
        os.kill(sub.pid, signal.SIGKILL)  # the submit process only, not its children
        sub.wait()
        states = rd.read_states()
        pids = [states[s].pid or 0 for s in scenes]
        assert all(pid > 0 and Path(f"/proc/{pid}").exists() for pid in pids)

        doc = json.loads(s2kit_cli("status", "--config", str(conf), "--json", env=env).stdout)
        assert (doc["counts"]["running"], doc["counts"]["stale"]) == (2, 0), doc
        res = s2kit_cli("resubmit", "--failed", "--config", str(conf), env=env)
        assert res.returncode == 0 and res.stdout.startswith("resubmit: no failed or stale"), res.stdout
        assert not rd.batch_file("resubmit-1").exists()

        _wait_for(lambda: all(rd.read_states()[s].state == "done" for s in scenes), "the orphaned workers")
        doc = json.loads(s2kit_cli("status", "--config", str(conf), "--json", env=env).stdout)
        assert doc["counts"]["done"] == 2 and doc["counts"]["stale"] == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sub.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            sub.wait()


def test_stale_is_one_definition_live_lock_wins(tmp_path: Path) -> None:
    """A held scene lock on this host keeps a running scene from being stale, whatever the job."""
    from s2kit.batch import classify
    from s2kit.runs import PlanEntry, is_stale

    rd = RunDir(tmp_path / "run")
    st = SceneState("S", "running", host="other-node", pid=1)
    entry = PlanEntry(scene="S", l1c_path="/x", decision="todo")
    assert classify(entry, st, "gone", "h") == "stale"
    with rd.lock("S"):
        assert rd.lock_probe("S") is True
        assert classify(entry, st, "gone", "h", lock=rd.lock_probe("S")) == "running"
        assert not is_stale(st, task="gone", lock=True)
    assert rd.lock_probe("S") is False and is_stale(st, lock=False)
    assert not is_stale(SceneState("S", "failed"), task="gone", lock=False)


# ============================================================================ item 9: torn jobs.jsonl
def _planned_with_job(tmp_path: Path) -> tuple[Any, RunDir, Path]:
    cfg = batch_config(tmp_path, 2)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    rd.append_job(_record(f"{os.uname().nodename}:1:1"))
    return cfg, rd, conf


def test_torn_last_line_of_jobs_jsonl_breaks_no_command(tmp_path: Path) -> None:
    cfg, rd, conf = _planned_with_job(tmp_path)
    with open(rd.jobs_file, "a", encoding="utf-8") as fh:
        fh.write('{"scheduler": "local", "job_id": "h:2:')  # killed mid-write: no newline
    env = _env()
    for args in (
        ("status", "--config", str(conf)),
        ("status", "--config", str(conf), "--json"),
        ("submit", "--config", str(conf), "--dry-run"),
        ("resubmit", "--failed", "--config", str(conf), "--dry-run"),
        ("report", str(cfg.paths.run_dir), "--no-quicklooks"),
    ):
        res = s2kit_cli(*args, env=env)
        assert res.returncode == 0, (args, res.stderr)
        assert "Traceback" not in res.stderr and "JSONDecodeError" not in res.stderr
        warnings = [ln for ln in res.stderr.splitlines() if "torn last line" in ln]
        assert len(warnings) == 1 and warnings[0].startswith("s2kit: warning: "), res.stderr
    assert len(rd.read_jobs()) == 1


def test_torn_last_line_warns_once_per_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _cfg, rd, _conf = _planned_with_job(tmp_path)
    with open(rd.jobs_file, "a", encoding="utf-8") as fh:
        fh.write("{not json")
    assert [r.job_id for r in rd.read_jobs()] == [f"{os.uname().nodename}:1:1"]
    assert [r.job_id for r in rd.read_jobs()] == [f"{os.uname().nodename}:1:1"]
    assert capsys.readouterr().err.count("torn last line") == 1


def test_torn_line_in_the_middle_of_jobs_jsonl_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    _cfg, rd, conf = _planned_with_job(tmp_path)
    text = rd.jobs_file.read_text(encoding="utf-8")
    rd.jobs_file.write_text('{"scheduler": "lo\n' + text, encoding="utf-8")
    with pytest.raises(InputError, match="line 1") as exc:
        rd.read_jobs()
    assert exc.value.path == rd.jobs_file
    res = s2kit_cli("status", "--config", str(conf), env=_env())
    assert res.returncode == 1 and "Traceback" not in res.stderr
    (line,) = res.stderr.splitlines()
    assert line.startswith("s2kit: error: ") and "jobs.jsonl" in line and "line 1" in line


def test_append_job_after_a_torn_tail_keeps_every_line_whole(tmp_path: Path) -> None:
    _cfg, rd, _conf = _planned_with_job(tmp_path)
    with open(rd.jobs_file, "a", encoding="utf-8") as fh:
        fh.write('{"scheduler": "loc')
    rd.append_job(_record("h:3:3"))
    assert [r.job_id for r in rd.read_jobs()] == [f"{os.uname().nodename}:1:1", "h:3:3"]
    assert rd.jobs_file.read_text(encoding="utf-8").endswith("\n")


def test_append_job_is_one_write_of_a_whole_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rd = RunDir(tmp_path / "run")
    writes: list[bytes] = []
    real = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real(fd, data)

    monkeypatch.setattr(os, "write", spy)
    rd.append_job(_record())
    assert len(writes) == 1 and writes[0].endswith(b"\n") and writes[0].count(b"\n") == 1
    assert json.loads(writes[0]) == json.loads(_record().to_json())


# ============================================================================ item 11: full / read-only run dir
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_full_or_read_only_run_dir_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    cfg = batch_config(tmp_path, 2)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    runner = CliRunner()
    rd = RunDir(cfg.paths.run_dir)

    def refuse(path: Any, data: bytes, mode: int = 0o644) -> Path:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(fsutil, "atomic_write_bytes", refuse)
    res = runner.invoke(app, ["plan", "--config", str(conf), "--no-preflight"])
    assert res.exit_code == 1
    (line,) = res.output.splitlines()
    assert line == (
        f"s2kit: error: expected a writable run dir, found {os.strerror(err)} writing {rd.config_file}"
    )
    assert not rd.plan_file.exists() and not rd.batch_file("all").exists()  # nothing half-written

    monkeypatch.undo()
    assert runner.invoke(app, ["plan", "--config", str(conf), "--no-preflight"]).exit_code == 0
    before = sorted(p.relative_to(rd.path) for p in rd.path.rglob("*"))
    monkeypatch.setattr(fsutil, "atomic_write_bytes", refuse)
    for args in (["submit", "--config", str(conf)], ["report", str(rd.path), "--no-quicklooks"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 1, res.output
        (line,) = [ln for ln in res.output.splitlines() if ln.startswith("s2kit: error: ")]
        assert "expected a writable run dir, found " + os.strerror(err) + " writing " in line, res.output
        assert "Traceback" not in res.output
    assert runner.invoke(app, ["status", "--config", str(conf)]).exit_code == 0  # reads only
    new = [p for p in rd.path.rglob("*") if p.relative_to(rd.path) not in before]
    assert [p for p in new if not p.is_dir()] == []  # no script, no jobs.jsonl, no report.html


def test_oserror_without_a_wrapper_is_still_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = batch_config(tmp_path, 1)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")

    def boom(*_a: Any, **_k: Any) -> Any:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(tmp_path / "run" / "x"))

    monkeypatch.setattr("s2kit.plan.discover", boom)
    res = CliRunner().invoke(app, ["plan", "--config", str(conf), "--no-preflight"])
    assert res.exit_code == 1
    assert res.output.splitlines() == [
        f"s2kit: error: expected a writable run dir, found {os.strerror(errno.EDQUOT)} "
        f"writing {tmp_path / 'run' / 'x'}"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="chmod does not stop root from writing")
def test_read_only_run_dir_by_chmod_is_one_error_line(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 2)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    env = _env()
    assert s2kit_cli("plan", "--config", str(conf), "--no-preflight", env=env).returncode == 0
    rd = RunDir(cfg.paths.run_dir)
    dirs = [rd.path, *[p for p in rd.path.rglob("*") if p.is_dir()]]
    try:
        for d in dirs:
            d.chmod(0o555)
        for args in (
            ("plan", "--config", str(conf), "--no-preflight"),
            ("submit", "--config", str(conf)),
            ("report", str(rd.path), "--no-quicklooks"),
        ):
            res = s2kit_cli(*args, env=env)
            assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
            (line,) = res.stderr.splitlines()
            assert line.startswith(
                "s2kit: error: expected a writable run dir, found Permission denied writing "
            )
        assert s2kit_cli("status", "--config", str(conf), env=env).returncode == 0
    finally:
        for d in dirs:
            d.chmod(0o755)


# ============================================================================ item 15: one-line reasons
def test_huge_multiline_failure_reason_is_one_short_line_plus_the_log(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 1)
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    (scene,) = rd.read_batch("all")
    log = rd.log_file(scene, 1)
    dump = "publish: [" + ",\n".join(
        f"('/l2a/f{i}', '/x/f{i}', '[Errno 28] No space left')" for i in range(330)
    )
    assert len(dump) > 16000 and dump.count("\n") > 300
    rd.write_state(SceneState(scene, "failed", attempt=1, reason=dump, log=str(log)))
    stored = json.loads(rd.state_file(scene).read_text(encoding="utf-8"))["reason"]
    assert len(stored) <= REASON_MAX and "\n" not in stored and stored.count("…") == 1
    assert stored.startswith("publish: [('/l2a/f0', ") and stored.endswith(
        "'/x/f329', '[Errno 28] No space left')"
    )

    # a state file an older s2kit wrote with the whole dump: status still prints one line
    raw = json.loads(rd.state_file(scene).read_text(encoding="utf-8"))
    raw["reason"] = dump
    rd.state_file(scene).write_text(json.dumps(raw), encoding="utf-8")
    text = format_status(status(cfg, rd))
    (failed_line,) = [ln for ln in text.splitlines() if ln.startswith(f"  {scene}")]
    assert len(failed_line) <= len(f"  {scene} attempt 1: ") + REASON_MAX
    assert f"      log: {log}" in text.splitlines()
    assert len(text) < 2000


def test_one_line() -> None:
    assert one_line("a\n  b\r\n\tc\x00d") == "a b c d"
    long = "kind: " + "p" * 500 + " what happened"
    cut = one_line(long)
    assert len(cut) == REASON_MAX and cut.startswith("kind: ppp") and cut.endswith("ppp what happened")
    assert cut.count("…") == 1
    assert one_line("short") == "short"


def test_reused_pid_of_a_dead_worker_is_not_taken_for_a_live_worker() -> None:
    """The rule "a live pid wins" must not keep a scene running forever when its pid went to a new process."""
    from datetime import datetime, timezone

    from s2kit.runs import is_stale

    host = os.uname().nodename
    now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    mine = SceneState("S", "running", host=host, pid=os.getpid(), started=now)
    assert not is_stale(mine, task="gone", host=host)  # this process: alive, started before the state
    reused = SceneState("S", "running", host=host, pid=os.getpid(), started="2000-01-01T00:00:00Z")
    assert is_stale(reused, task="gone", host=host)  # this process started long after that state


# ------------------------------------------------------------ one owner per run-dir file (issue 13)
def test_find_entry_returns_the_scene_line_of_the_plan(tmp_path: Path) -> None:
    from s2kit.runs import PlanEntry

    rd = RunDir(tmp_path / "run")
    a = PlanEntry(scene="S2A_MSIL1C_A", l1c_path="/l1c/a.SAFE", decision="todo")
    b = PlanEntry(scene="S2A_MSIL1C_A_B", l1c_path="/l1c/b.SAFE", decision="skipped", reason="r")
    rd.write_plan([b, a])  # b's line contains a's scene id as a substring
    assert rd.find_entry("S2A_MSIL1C_A") == a
    assert rd.find_entry("S2A_MSIL1C_A_B") == b
    with pytest.raises(InputError, match="expected scene S2A_MSIL1C_C in the plan"):
        rd.find_entry("S2A_MSIL1C_C")


def test_config_snapshot_errors_name_config_json(tmp_path: Path) -> None:
    from s2kit.errors import ConfigError

    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    with pytest.raises(InputError, match=r"expected config\.json \(written by 's2kit plan'\), found none"):
        rd.config()
    rd.config_file.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a readable JSON config snapshot"):
        rd.config()
    rd.config_file.write_text(json.dumps({"paths": 3}), encoding="utf-8")
    with pytest.raises(ConfigError, match="key 'paths'"):
        rd.config()


def test_exit_codes_keep_their_numbers() -> None:
    from s2kit.exitcodes import ExitCode
    from s2kit.schedulers.local import EXIT_LOCKED
    from s2kit.worker import EXIT_DONE, EXIT_FAILED, EXIT_USAGE

    assert (EXIT_DONE, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED) == (0, 1, 2, 75)
    assert EXIT_LOCKED is ExitCode.LOCKED and ExitCode(75).name == "LOCKED"


# ------------------------------------------------------------ wrong-shaped JSON in the run dir (findings 9, 14)
def _one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode not in (0, 70), res.stderr
    assert "Traceback" not in res.stderr and "__init__" not in res.stderr and "Error:" not in res.stderr
    (line,) = res.stderr.splitlines()
    assert line.startswith("s2kit: error: "), line
    return line


@pytest.mark.parametrize("text", ["[1]\n", "null\n", '{"scene": 1, "state": "done"}\n', '{"attempt": 2}\n'])
def test_wrong_shaped_state_file_is_ignored_with_a_warning_not_an_internal_error(
    tmp_path: Path, text: str
) -> None:
    cfg, rd, conf = _planned_with_job(tmp_path)
    scene = rd.read_batch("all")[0]
    rd.state_file(scene).parent.mkdir(parents=True, exist_ok=True)
    rd.state_file(scene).write_text(text, encoding="utf-8")
    assert rd.read_state(scene) is None
    for args in (("status", "--run-dir", str(rd.path)), ("resubmit", "--run-dir", str(rd.path), "--dry-run")):
        res = s2kit_cli(*args, env=_env())
        assert res.returncode == 0, (args, res.stderr)
        assert "Traceback" not in res.stderr and "AttributeError" not in res.stderr
        warned = [ln for ln in res.stderr.splitlines() if "not a scene state" in ln]
        assert len(warned) == 1 and f"{scene}.json" in warned[0], res.stderr


@pytest.mark.parametrize(
    "text", ["[1,2]\n", "null\n", '{"scene": "x"}\n', '{"scene": "x", "l1c_path": 3, "decision": "todo"}\n']
)
def test_wrong_shaped_plan_line_is_one_error_naming_the_line_and_s2kit_plan(
    tmp_path: Path, text: str
) -> None:
    _cfg, rd, _conf = _planned_with_job(tmp_path)
    rd.plan_file.write_text(rd.plan_file.read_text(encoding="utf-8") + text, encoding="utf-8")
    with pytest.raises(InputError, match=r"on line 3, found .*; run `s2kit plan` again"):
        rd.read_plan()
    line = _one_error_line(s2kit_cli("status", "--run-dir", str(rd.path), env=_env()))
    assert "plan.jsonl" in line and "line 3" in line and "`s2kit plan` again" in line


@pytest.mark.parametrize("text", ["null\n", "[1]\n", '"x"\n', "{not json\n"])
def test_wrong_shaped_config_snapshot_is_one_error_naming_s2kit_plan(tmp_path: Path, text: str) -> None:
    _cfg, rd, _conf = _planned_with_job(tmp_path)
    rd.config_file.write_text(text, encoding="utf-8")
    for cmd in ("status", "resubmit"):
        line = _one_error_line(s2kit_cli(cmd, "--run-dir", str(rd.path), env=_env()))
        assert "config.json" in line and "`s2kit plan` again" in line, line


@pytest.mark.parametrize(
    "text",
    [
        "[1]\n",
        "null\n",
        '{"scheduler": "local"}\n',
        '{"scheduler": "local", "job_id": "1", "batch": "all", "first_index": "0", "count": 1, "script": "s", "submitted": "t"}\n',
    ],
)
def test_wrong_shaped_job_record_is_one_error_naming_the_line_and_the_repair(
    tmp_path: Path, text: str
) -> None:
    _cfg, rd, conf = _planned_with_job(tmp_path)
    rd.jobs_file.write_text(text + rd.jobs_file.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(InputError, match="line 1"):
        rd.read_jobs()
    line = _one_error_line(s2kit_cli("status", "--config", str(conf), env=_env()))
    assert "jobs.jsonl" in line and "line 1" in line and "delete line 1" in line
