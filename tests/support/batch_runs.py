"""Batch-run helpers the batch, scheduler and run-dir tests share: the CLI, published products,
leftover partials, and a fake Slurm at the subprocess boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from s2kit.config import BatchConfig
from s2kit.jobs import job_spec
from s2kit.plan import make_plan
from s2kit.runs import RunDir, SceneState
from s2kit.schedulers import SchedulerUnavailable
from s2kit.schedulers.base import CommandResult, JobSpec

from . import TESTS
from .configs import batch_config

FAKE_LSF = TESTS / "fake_lsf"


def scene_names(cfg: BatchConfig) -> list[str]:
    return sorted(p.name[:-5] for p in cfg.paths.l1c_dirs[0].iterdir() if p.name.endswith(".SAFE"))


def s2kit_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "s2kit"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=dict(env or os.environ), timeout=timeout
    )


def published(cfg: BatchConfig) -> dict[str, list[str]]:
    """scene -> names of the published L2A products made from it (by provenance sidecars)."""
    out: dict[str, list[str]] = {}
    l2a = cfg.paths.l2a_dir
    if not l2a.is_dir():
        return out
    for f in sorted(l2a.glob("*.SAFE.provenance.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        out.setdefault(doc["l1c"]["scene"], []).append(f.name[: -len(".provenance.json")])
    return out


def partials(cfg: BatchConfig) -> list[str]:
    l2a = cfg.paths.l2a_dir
    return sorted(p.name for p in l2a.iterdir() if p.name.startswith(".partial-")) if l2a.is_dir() else []


def resubmit_fixed(
    cfg: BatchConfig, conf: Path, env: Mapping[str, str], done: int
) -> tuple[subprocess.CompletedProcess[str], dict[str, list[str]]]:
    """Take the Sen2Cor double's fault markers away and ``resubmit --failed``: then all *done*
    scenes are done, none failed, each published once, nothing partial. (The resubmit, published.)"""
    for f in cfg.paths.l1c_dirs[0].glob("*/S2KIT_DOUBLE_FAULT"):
        f.unlink()
    again = s2kit_cli("resubmit", "--failed", "--config", str(conf), env=env)
    assert again.returncode == 0, again.stderr
    doc = json.loads(s2kit_cli("status", "--config", str(conf), "--json", env=env).stdout)
    assert doc["counts"]["done"] == done and doc["counts"]["failed"] == 0
    pub = published(cfg)
    assert len(pub) == done and all(len(v) == 1 for v in pub.values()) and partials(cfg) == []
    return again, pub


class FakeSlurm:
    """The subprocess boundary of SlurmScheduler, answering like Slurm 22.05 (submitit style)."""

    def __init__(self, max_array_size: int = 1001, squeue: Mapping[str, str] | None = None) -> None:
        self.max_array_size = max_array_size
        self.calls: list[tuple[str, ...]] = []
        self.scripts: list[str] = []
        self.next_id = 500
        self.rows: dict[str, str] = dict(squeue or {})  # job id -> squeue rows
        self.down = False
        # ``scontrol update``: (exit status, stderr) -- Slurm prints nothing when it accepts
        self.update_reply: tuple[int, str] = (0, "")
        self.time_limits: dict[str, str] = {}  # job id -> TimeLimit accepted

    def __call__(
        self, argv: Sequence[str], *, input: str | None = None, cwd: Any = None, timeout: float = 0
    ) -> CommandResult:
        argv = tuple(argv)
        self.calls.append(argv)
        if self.down and argv[0] == "squeue":
            raise SchedulerUnavailable("expected the command 'squeue' on PATH, found none")
        if argv[:3] == ("scontrol", "show", "config"):
            return CommandResult(argv, 0, f"MaxArraySize            = {self.max_array_size}\n", "")
        if argv[:2] == ("scontrol", "update"):
            rc, err = self.update_reply
            fields = dict(a.split("=", 1) for a in argv[2:])
            if rc == 0:
                self.time_limits[fields["JobId"]] = fields["TimeLimit"]
            return CommandResult(argv, rc, "", err)
        if argv[0] == "sbatch":
            self.scripts.append(Path(argv[-1]).read_text(encoding="utf-8"))
            jid = str(self.next_id)
            self.next_id += 1
            return CommandResult(argv, 0, f"{jid}\n", "")
        if argv[0] == "squeue":
            ids = argv[argv.index("-j") + 1].split(",")
            if any(i not in self.rows for i in ids):
                return CommandResult(argv, 1, "", "slurm_load_jobs error: Invalid job id specified\n")
            return CommandResult(argv, 0, "".join(self.rows[i] for i in ids), "")
        raise AssertionError(f"unexpected command {argv}")

    def sbatch_calls(self) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[0] == "sbatch"]


HOSTILE_PARTS = ("sp ace 'q' \"dq\" $(touch PWNED) `touch PWNED` ; touch PWNED # ü \\ 100% $HOME", "-lead")


#: (JobSpec field, value) pairs no job script renderer may accept: each value carries a
#: control character (the union of the cases the LSF and Slurm tests had, each renderer gets all)
SCRIPT_VALUES_WITH_CONTROL_CHARACTERS: list[tuple[str, object]] = [
    ("queue", "normal\ntouch PWNED #"),
    ("queue", "normal\rx"),
    ("batch", "x\ntouch P #"),
    ("log_dir", Path("/data/r\ntouch PWNED #/jobs/all")),
    ("name", "s2kit-all\u2028x"),
    ("name", "s2kit-all\u2029x"),
    ("command", ("/opt/s2kit", "worker", "--run-dir", "/data/r\x00x")),
    ("command", ("/opt/s2kit", "worker", "--run-dir", "/data/r\nx")),
    ("make_dirs", ("/scratch/\x1b[31m",)),
    ("extra_args", ("--account=a\x7f",)),
]


def hostile_batch(tmp_path: Path, kind: str) -> tuple[BatchConfig, RunDir]:
    """A planned 1-scene batch whose every path (L1C, L2A, scratch, run) is under a hostile root."""
    root = tmp_path.joinpath(*HOSTILE_PARTS)
    root.mkdir(parents=True)
    cfg = batch_config(
        root,
        1,
        l1c=root / "-l1c",
        l2a=root / "l2a ;x",
        scratch=root / "scr`a`tch",
        run=root / "run $(x)",
        kind=kind,
    )
    make_plan(cfg, check_resources=False)
    return cfg, RunDir(cfg.paths.run_dir)


def run_hostile_job_script(
    tmp_path: Path,
    kind: str,
    render: Callable[[JobSpec], str],
    directive: str,
    count: int,
    last: str,
    env: dict[str, str],
) -> tuple[BatchConfig, SceneState]:
    """Render the job script of a :func:`hostile_batch` with *render*, check that none of its
    *count* ``directive`` lines was cut off (the last starts with *last*), run it like the
    scheduler and return the scene's state (done)."""
    cfg, rd = hostile_batch(tmp_path, kind)
    spec = job_spec(cfg, rd.path, "all", 0, 1, rd.path / "jobs" / "all")
    text = render(spec)
    directives = [ln for ln in text.splitlines() if ln.startswith(directive)]
    assert len(directives) == count and directives[-1].startswith(last)  # no directive was cut off
    script = tmp_path / f"job.{kind}"
    script.write_text(text, encoding="utf-8")
    run_script_like_the_scheduler(tmp_path, ["bash", str(script)], env)
    st = rd.read_state(rd.read_batch("all")[0])
    assert st is not None and st.state == "done"
    return cfg, st


def run_script_like_the_scheduler(tmp_path: Path, argv: list[str], env: dict[str, str]) -> None:
    """bash -n, then bash runs the script in an empty cwd; no PWNED file may appear anywhere."""
    script = Path(argv[1])
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LSB_"))}
    run = subprocess.run(argv, env={**base, **env}, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert list(tmp_path.rglob("PWNED")) == [] and list(cwd.iterdir()) == []
