"""Local scheduler: the whole CLI flow (plan, submit, status --json, resubmit --failed) as
subprocesses on the Sen2Cor double, the max_concurrent bound, task states and the golden
local script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from s2kit.runs import JobRecord
from s2kit.schedulers import LocalScheduler, job_spec
from s2kit.schedulers.base import JobSpec, UnsafeScriptValue
from s2kit.schedulers.local import pid_alive, render_local
from tests.support.batch_runs import (
    hostile_batch,
    published,
    resubmit_fixed,
    run_script_like_the_scheduler,
    s2kit_cli,
)
from tests.support.configs import batch_config, write_toml

COUNTER = r"""
import fcntl, json, os, sys, time
path = sys.argv[1]
def bump(d):
    with open(path + ".lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        doc = json.load(open(path)) if os.path.exists(path) else {"now": 0, "max": 0, "runs": 0}
        doc["now"] += d
        doc["max"] = max(doc["max"], doc["now"])
        doc["runs"] += d > 0
        json.dump(doc, open(path, "w"))
bump(1)
time.sleep(0.3)
bump(-1)
sys.exit(int(sys.argv[2]) % 3 == 2)  # every third task fails
"""


def test_cli_local_end_to_end(tmp_path: Path) -> None:
    cfg = batch_config(tmp_path, 5, {2: "crash"}, max_concurrent=2)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LSB_"))}

    plan = s2kit_cli("plan", "--config", str(conf), "--no-preflight", env=env)
    assert plan.returncode == 0, plan.stderr
    sub = s2kit_cli("submit", "--config", str(conf), env=env)
    assert sub.returncode == 1, sub.stderr  # local: exit 1 when a scene failed
    assert "at most 2 at a time" in sub.stderr and "[5/5]" in sub.stderr
    assert "local: 4 done, 1 failed" in sub.stdout

    doc = json.loads(s2kit_cli("status", "--config", str(conf), "--json", env=env).stdout)
    assert doc["counts"] == {
        "todo": 0,
        "pending": 0,
        "running": 0,
        "stale": 0,
        "done": 4,
        "failed": 1,
        "skipped": 0,
    }
    assert doc["tiles"] == {"46RER": {"done": 4, "failed": 1}}
    assert doc["jobs"][0]["scheduler"] == "local" and doc["jobs"][0]["tasks"] == {"done": 4, "failed": 1}
    (bad,) = doc["failed"]
    assert bad["reason"].startswith("exit-code: 1") and "simulated crash" in bad["reason"]
    assert Path(bad["log"]).is_file() and "simulated crash" in Path(bad["log"]).read_text()
    text = s2kit_cli("status", "--run-dir", str(cfg.paths.run_dir), env=env).stdout
    assert "4 done, 1 failed" in text and bad["log"] in text

    # nothing is done twice: a second submit leaves the 4 done scenes out
    before = published(cfg)
    again, after = resubmit_fixed(cfg, conf, env, done=5)
    assert "1 scene(s) of batch resubmit-1" in again.stdout
    assert all(after[s] == before[s] for s in before)  # the first four were not redone
    nothing = s2kit_cli("submit", "--config", str(conf), env=env)
    assert nothing.returncode == 0 and "nothing to submit in batch all (5 done)" in nothing.stdout
    assert s2kit_cli("resubmit", "--failed", "--config", str(conf), env=env).stdout.startswith(
        "resubmit: no failed"
    )


def _spec(tmp: Path, count: int, max_concurrent: int) -> JobSpec:
    (tmp / "counter.py").write_text(COUNTER)
    return JobSpec(
        name="s2kit-t",
        batch="t",
        offset=0,
        count=count,
        command=(sys.executable, str(tmp / "counter.py"), str(tmp / "count.json")),
        log_dir=tmp,
        cores=1,
        memory_mb=512,
        walltime_minutes=60,
        max_concurrent=max_concurrent,
    )


def test_run_array_never_exceeds_max_concurrent(tmp_path: Path) -> None:
    sched = LocalScheduler()
    spec = _spec(tmp_path, 7, 2)
    # the counter takes its index as the last argument: render then run like submit does
    script = tmp_path / "t.sh"
    script.write_text(render_local(spec).replace('--index "${1', '"${1'))
    seen: list[str] = []
    codes = sched.run_array(script, spec, "h:1:1", labels=[f"s{i}" for i in range(7)], echo=seen.append)
    doc = json.loads((tmp_path / "count.json").read_text())
    assert doc["runs"] == 7 and doc["now"] == 0
    assert 1 <= doc["max"] <= 2
    assert codes == {i: int(i % 3 == 2) for i in range(7)}
    assert len(seen) == 7 and seen[-1].startswith("local: [7/7] ")
    assert sum("failed (exit 1)" in s for s in seen) == 2
    results = json.loads(sched.results_file(script, "h:1:1").read_text())
    assert results["exit_codes"] == {str(i): int(i % 3 == 2) for i in range(7)}
    assert (tmp_path / "h_1_1_6.log").exists()


def test_local_query(tmp_path: Path) -> None:
    sched = LocalScheduler()
    host = os.uname().nodename
    script = tmp_path / "s.sh"
    dead = subprocess.Popen(["true"])
    dead.wait()

    def rec(job_id: str) -> JobRecord:
        return JobRecord("local", job_id, "all", 0, 3, str(script), "2026-01-01T00:00:00Z")

    alive_id, dead_id, other_id, done_id = (
        f"{host}:{os.getpid()}:1",
        f"{host}:{dead.pid}:2",
        "another-host:1:3",
        f"{host}:{dead.pid}:4",
    )
    sched.results_file(script, done_id).write_text(json.dumps({"exit_codes": {"0": 0, "1": 1, "2": 75}}))
    got = sched.query([rec(alive_id), rec(dead_id), rec(other_id), rec(done_id)])
    assert (got[alive_id].state, got[alive_id].task(0)) == ("active", "unknown")
    assert (got[dead_id].state, got[dead_id].task(0)) == ("ended", "gone")
    assert got[other_id].state == "unknown"
    assert [got[done_id].task(i) for i in range(4)] == ["done", "failed", "gone", "gone"]
    assert pid_alive(os.getpid()) and not pid_alive(dead.pid) and not pid_alive(0)


def test_golden_local_script(file_regression) -> None:  # type: ignore[no-untyped-def]
    spec = JobSpec(
        name="s2kit-all",
        batch="all",
        offset=0,
        count=12,
        command=(
            "/opt/s2kit/bin/s2kit",
            "worker",
            "--run-dir",
            "/data/run x",
            "--batch",
            "all",
            "--offset",
            "0",
        ),
        log_dir=Path("/data/run x/jobs/all"),
        cores=1,
        memory_mb=4096,
        walltime_minutes=120,
        max_concurrent=2,
    )
    file_regression.check(render_local(spec), extension=".sh")


# ============================================================================ issue 12 item 2: no shell from data
def test_hostile_paths_in_a_local_script_run_no_shell_code(tmp_path: Path) -> None:
    cfg, rd = hostile_batch(tmp_path, "local")
    spec = job_spec(cfg, rd.path, "all", 0, 1, rd.path / "jobs" / "all")
    script = tmp_path / "job.sh"
    script.write_text(render_local(spec), encoding="utf-8")
    run_script_like_the_scheduler(tmp_path, ["bash", str(script), "0"], {})
    st = rd.read_state(rd.read_batch("all")[0])
    assert st is not None and st.state == "done"
    assert published(cfg)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch", "x\ntouch P #"),
        ("command", ("/opt/s2kit", "worker", "--run-dir", "/data/r\ntouch PWNED #")),
        ("make_dirs", ("/scratch/a\rb",)),
    ],
)
def test_local_renderer_refuses_a_control_character_in_a_script_value(field: str, value: object) -> None:
    from dataclasses import replace

    spec = JobSpec(
        name="s2kit-all",
        batch="all",
        offset=0,
        count=1,
        command=("/opt/s2kit/bin/s2kit", "worker"),
        log_dir=Path("/data/run/jobs/all"),
        cores=1,
        memory_mb=4096,
        walltime_minutes=120,
    )
    with pytest.raises(UnsafeScriptValue, match="job script .*expected no control characters, found"):
        render_local(replace(spec, **{field: value}))


def test_cli_submit_and_worker_refuse_a_batch_name_with_a_newline(tmp_path: Path) -> None:
    """Issue 12 item 2: `--batch "x\\ntouch P #"` is refused before anything is read or run."""
    cfg = batch_config(tmp_path, 1)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    assert s2kit_cli("plan", "--config", str(conf), "--no-preflight").returncode == 0
    for argv in (
        ["submit", "--config", str(conf), "--batch", "x\ntouch P #"],
        ["submit", "--config", str(conf), "--batch", "../all"],
        ["worker", "--run-dir", str(cfg.paths.run_dir), "--batch", "x\ntouch P #", "--index", "0"],
        ["worker", "--run-dir", str(cfg.paths.run_dir), "--batch", "-all", "--index", "0"],
    ):
        exe = Path(sys.executable).parent / "s2kit"
        res = subprocess.run([str(exe), *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("s2kit: error: --batch: expected a batch name")
    assert not list(tmp_path.rglob("P")) and not (cfg.paths.run_dir / "jobs").exists()
    assert not (cfg.paths.run_dir / "state").exists() or not any((cfg.paths.run_dir / "state").iterdir())
