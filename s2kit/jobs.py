"""The job spec of one array chunk: s2kit's config and run dir -> the scheduler-neutral
:class:`~s2kit.schedulers.JobSpec` every backend renders (s2kit knowledge stays here, so
:mod:`s2kit.schedulers` knows nothing of the config or the container)."""

from __future__ import annotations

from pathlib import Path

from .config import BatchConfig, Sen2CorConfig
from .container import worker_argv
from .schedulers.base import JobSpec, UnsafeScriptValue, job_name
from .text import batch_name_problem

__all__ = ["job_spec"]


def job_spec(
    cfg: BatchConfig,
    run_dir: Path,
    batch: str,
    offset: int,
    count: int,
    log_dir: Path,
    sc: Sen2CorConfig | None = None,
) -> JobSpec:
    """Pure: config + chunk -> JobSpec (the worker command is container.worker_argv).

    *sc*: the Sen2Cor settings of the version every task of the chunk runs (submit makes chunks
    version-homogeneous: ``cfg.sen2cor_for(version)``); default ``cfg.sen2cor``."""
    sch = cfg.scheduler
    problem = batch_name_problem(batch)
    if problem:
        raise UnsafeScriptValue(f"job script batch: {problem}")
    argv = [*worker_argv(cfg, run_dir, sc=sc), "--batch", batch, "--offset", str(offset)]
    return JobSpec(
        name=job_name(batch, offset),
        batch=batch,
        offset=offset,
        count=count,
        command=tuple(argv),
        log_dir=log_dir,
        cores=sch.cores_per_task,
        memory_mb=sch.memory_per_task_mb,
        walltime_minutes=sch.walltime_minutes,
        queue=sch.queue,
        max_concurrent=sch.max_concurrent,
        extra_args=tuple(sch.extra_args),
        make_dirs=(str(cfg.paths.scratch_dir), str(cfg.paths.l2a_dir)),
    )
