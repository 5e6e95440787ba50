"""Benchmark: batch orchestration overhead, and Slurm submission of 5 000 scenes.

Run with `python benchmarks/bench_batch.py`. Prints numbers; asserts nothing.

1. Orchestration overhead per scene, local scheduler, the instant Sen2Cor TEST
   DOUBLE (tests/sen2cor_double): plan + render + submit + one worker per scene,
   minus the double's own run time (measured by running it directly on the same
   inputs). That is what s2kit adds around each L2A_Process call.
2. Slurm submission of 5 000 planned scenes with fake `sbatch`/`scontrol` on PATH
   (MaxArraySize = 1001): the number of sbatch calls (arrays) and the time
   `s2kit submit` takes to render and submit them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from s2kit.batch import submit  # noqa: E402
from s2kit.config import BatchConfig  # noqa: E402
from s2kit.plan import make_plan  # noqa: E402
from s2kit.runs import PlanEntry, RunDir  # noqa: E402
from s2kit.schedulers import SlurmScheduler  # noqa: E402
from tests.support.safe_trees import build_l1c_tree  # noqa: E402

DOUBLE = ROOT / "tests" / "sen2cor_double"
N_LOCAL = 24
N_SLURM = 5000


def _config(work: Path, kind: str, max_concurrent: int) -> BatchConfig:
    return BatchConfig.model_validate(
        {
            "paths": {
                "l1c_dirs": [str(work / "l1c")],
                "l2a_dir": str(work / "l2a"),
                "scratch_dir": str(work / "scratch"),
                "run_dir": str(work / "run"),
            },
            "sen2cor": {"runtime": "native", "install_dir": str(DOUBLE), "retries": 0},
            "scheduler": {"kind": kind, "max_concurrent": max_concurrent, "memory_per_task_gb": 0.5},
        }
    )


def bench_local() -> None:
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="s2kit-bench-batch-"))
    try:
        (work / "l1c").mkdir()
        l1c = [build_l1c_tree(work / "l1c", "03.01", day_offset=k) for k in range(N_LOCAL)]
        # the double alone, sequentially, on copies of the same inputs
        direct = work / "direct"
        t0 = time.perf_counter()
        for p in l1c:
            out = direct / p.name
            out.mkdir(parents=True)
            subprocess.run(
                [str(DOUBLE / "bin" / "L2A_Process"), str(p), "--output_dir", str(out), "--resolution", "60"],
                check=True,
                capture_output=True,
            )
        double_s = time.perf_counter() - t0
        shutil.rmtree(direct)

        cfg = _config(work, "local", 1)
        t0 = time.perf_counter()
        make_plan(cfg, check_resources=False)
        plan_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = submit(cfg, RunDir(cfg.paths.run_dir))
        run_s = time.perf_counter() - t0
        ok = sum(1 for rc in res.exit_codes.values() if rc == 0)
        per_scene = (plan_s + run_s - double_s) / N_LOCAL
        print(f"local, {N_LOCAL} scenes, max_concurrent 1 (sequential, {cores} core(s) here):")
        print(f"  plan                         {plan_s:8.3f} s  ({plan_s / N_LOCAL * 1000:.1f} ms/scene)")
        print(f"  render+submit+workers        {run_s:8.3f} s  ({ok}/{N_LOCAL} done)")
        print(f"  Sen2Cor double alone         {double_s:8.3f} s  ({double_s / N_LOCAL * 1000:.1f} ms/scene)")
        print(
            f"  s2kit overhead per scene     {per_scene * 1000:8.1f} ms  (plan+render+submit+worker - double)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_slurm_submission() -> None:
    work = Path(tempfile.mkdtemp(prefix="s2kit-bench-sbatch-"))
    try:
        bindir = work / "bin"
        bindir.mkdir()
        count = work / "sbatch-calls"
        (bindir / "sbatch").write_text(
            f'#!/bin/sh\necho "$@" >> "{count}"\nwc -l < "{count}" | tr -d " "\n'  # job id = call number
        )
        (bindir / "scontrol").write_text("#!/bin/sh\necho 'MaxArraySize            = 1001'\n")
        for f in bindir.iterdir():
            f.chmod(0o755)
        cfg = _config(work, "slurm", 50)
        rd = RunDir(cfg.paths.run_dir)
        rd.path.mkdir(parents=True)
        scenes = [f"S2A_MSIL1C_20210101T000000_N0301_R001_T{i:05d}_20210101T000000" for i in range(N_SLURM)]
        rd.write_plan([PlanEntry(scene=s, l1c_path=f"/l1c/{s}.SAFE", decision="todo") for s in scenes])
        rd.write_batch("all", scenes)
        old = os.environ["PATH"]
        os.environ["PATH"] = f"{bindir}:{old}"
        try:
            t0 = time.perf_counter()
            res = submit(cfg, rd, scheduler=SlurmScheduler())
            submit_s = time.perf_counter() - t0
        finally:
            os.environ["PATH"] = old
        calls = count.read_text().splitlines()
        print(f"slurm, {N_SLURM} scenes, MaxArraySize 1001 (fake sbatch/scontrol on PATH):")
        print(
            f"  sbatch calls                 {len(calls):8d}  (arrays of {[ch.count for ch in res.chunks]})"
        )
        print(
            f"  s2kit submit                 {submit_s:8.3f} s  (render + submit + {len(res.chunks)} JobRecords)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    bench_local()
    bench_slurm_submission()


if __name__ == "__main__":
    main()
