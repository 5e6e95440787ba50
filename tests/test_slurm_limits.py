"""REAL Slurm (marker `slurm`, required in CI): per-scene accounting of a batch of KNOWN cost
and the scheduler's own kills named as such (issue 19 item 5).

The single-node test cluster (tests/infra/slurm-single-node.sh) enforces ``--mem`` with
``JobAcctGatherType=jobacct_gather/linux`` + ``JobAcctGatherParams=OverMemoryKill`` (no
cgroups in this container) and ``--time`` as always. Accounting storage is off
(``accounting_storage/none``): ``sacct`` fails and status reads the final task states from
``squeue -t all`` (kept ``MinJobAge`` = 300 s). Slurm 22.05 ends a task killed by
OverMemoryKill ``FAILED`` (reason JobLaunchFailure, exit 0:9), not ``OUT_OF_MEMORY``: status
reads slurmstepd's ``Exceeded job memory limit`` from the task's log.
"""

from __future__ import annotations

import subprocess

import pytest

from s2kit.batch import format_status, submit
from s2kit.plan import make_plan
from s2kit.runs import RunDir
from tests.support.configs import batch_config
from tests.support.known_cost import COSTS, known_cost_errors
from tests.test_slurm import real, slurm_env, wait_idle

pytestmark = [pytest.mark.slurm, real]


def test_real_slurm_batch_of_known_cost_reports_resources_and_names_oom_and_walltime(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slurm_env(monkeypatch)
    monkeypatch.setenv("S2KIT_SAMPLE_SECONDS", "0.1")
    n = 1 + len(COSTS)  # the known-cost scenes (tests.support.known_cost), then:
    oom, walltime = n, n + 1
    faults = {0: "burn:cpu=0,mem=0,children=2"}
    faults.update({k: f"burn:cpu={c},mem={m},children=2" for k, (c, m) in enumerate(COSTS, start=1)})
    faults[oom] = "burn:cpu=0,mem=1500,children=1,hold=30"  # 1.5 GB touched, --mem is 1 GB
    faults[walltime] = "slow:600"  # sleeps past the 1-minute time limit
    cfg = batch_config(
        tmp_path,
        n + 2,
        faults,
        kind="slurm",
        max_concurrent=2,
        memory_per_task_gb=1,
        walltime="00:10",
        extra_args=["--time=0:01:00"],  # sbatch's option wins over #SBATCH --time (config minimum: 6 min)
        sen2cor={"timeout_minutes": 5},
    )
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    scenes = rd.read_batch("all")
    submit(cfg, rd)
    rep = wait_idle(cfg, rd)
    text = format_status(rep)
    print("\n" + text)
    q = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i %T %r"], capture_output=True, text=True)
    print(q.stdout)
    by = {s.scene: s for s in rep.scenes}
    assert [by[s].status for s in scenes[:n]] == ["done"] * n, text
    assert known_cost_errors(rd) == []
    for k in range(n):
        r = rd.read_state(scenes[k]).resources  # type: ignore[union-attr]
        print(f"scene {k}: {r}")
        assert r is not None and r["cores"] == 1 and r["node"]
    assert by[scenes[oom]].status == "failed" and (by[scenes[oom]].reason or "").startswith("oom: "), text
    assert by[scenes[walltime]].status == "failed", text
    assert (by[scenes[walltime]].reason or "").startswith("walltime: "), text
    # where it came from: Slurm 22.05's OverMemoryKill ends the task FAILED (not OUT_OF_MEMORY),
    # slurmstepd's "Exceeded job memory limit" in the task's log says why; TIMEOUT is a state
    assert "slurm job log" in (by[scenes[oom]].reason or ""), text
    assert "slurm squeue" in (by[scenes[walltime]].reason or ""), text
