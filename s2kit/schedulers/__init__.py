"""Batch-system backends: LSF, Slurm and local, behind one :class:`Scheduler` interface.

``get_scheduler(kind)`` returns the backend; each renders job scripts with a pure
function from a generic :class:`JobSpec`, submits them, queries task states and
cancels. The job script templates are package data in ``s2kit/templates/jobs/``
(``scripts/lsf/`` holds a byte-identical copy of the LSF one for people who
submit by hand; a test keeps them identical).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    ACTIVE,
    JobSpec,
    JobStatus,
    Runner,
    Scheduler,
    SchedulerError,
    SchedulerUnavailable,
    TaskState,
    WalltimeRefused,
    chunk_ranges,
    run_command,
)
from .env import LsfTaskEnvironment, SlurmTaskEnvironment, TaskEnvironment
from .local import LocalScheduler
from .lsf import LsfScheduler
from .slurm import SlurmScheduler

__all__ = [
    "SCHEDULERS",
    "ACTIVE",
    "JobSpec",
    "JobStatus",
    "LocalScheduler",
    "LsfTaskEnvironment",
    "LsfScheduler",
    "Runner",
    "Scheduler",
    "SchedulerError",
    "SchedulerUnavailable",
    "SlurmScheduler",
    "SlurmTaskEnvironment",
    "TaskEnvironment",
    "TaskState",
    "WalltimeRefused",
    "chunk_ranges",
    "get_scheduler",
    "job_spec",
    "run_command",
]

SCHEDULERS: dict[str, type[Scheduler]] = {
    "local": LocalScheduler,
    "lsf": LsfScheduler,
    "slurm": SlurmScheduler,
}


def get_scheduler(kind: str, runner: Runner | None = None, env: Mapping[str, str] | None = None) -> Scheduler:
    try:
        cls = SCHEDULERS[kind]
    except KeyError:
        raise SchedulerError(f"expected a scheduler kind of {sorted(SCHEDULERS)}, found {kind!r}") from None
    return cls(runner=runner, env=env)


def __getattr__(name: str) -> Any:
    # job_spec moved to s2kit.jobs (it needs the config); the old import path keeps working
    # without this package importing the config at import time
    if name == "job_spec":
        from ..jobs import job_spec

        return job_spec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
