"""Batch-system backends: LSF, Slurm and local, behind one :class:`Scheduler` interface.

``get_scheduler(kind)`` returns the backend; each renders job scripts with a pure
function from a generic :class:`JobSpec`, submits them, queries task states and
cancels. The job script templates are package data in ``s2kit/templates/jobs/``
(``scripts/lsf/`` holds a byte-identical copy of the LSF one for people who
submit by hand; a test keeps them identical).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .local import LocalScheduler
    from .lsf import LsfScheduler
    from .slurm import SlurmScheduler

    SCHEDULERS: dict[str, type[Scheduler]]

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

#: The backends load on first use (PEP 562), as does ``SCHEDULERS`` (kind -> class): a worker
#: imports ``s2kit.schedulers.env`` and must not pay for them at start-up (issue 17 item 4).
_BACKENDS = {"LocalScheduler": "local", "LsfScheduler": "lsf", "SlurmScheduler": "slurm"}
_KINDS = {"local": "LocalScheduler", "lsf": "LsfScheduler", "slurm": "SlurmScheduler"}


def _schedulers() -> dict[str, type[Scheduler]]:
    table: dict[str, type[Scheduler]] | None = globals().get("SCHEDULERS")
    if table is None:
        table = {kind: __getattr__(name) for kind, name in _KINDS.items()}
        globals()["SCHEDULERS"] = table
    return table


def get_scheduler(kind: str, runner: Runner | None = None, env: Mapping[str, str] | None = None) -> Scheduler:
    schedulers = _schedulers()
    try:
        cls = schedulers[kind]
    except KeyError:
        raise SchedulerError(f"expected a scheduler kind of {sorted(schedulers)}, found {kind!r}") from None
    return cls(runner=runner, env=env)


def __getattr__(name: str) -> Any:
    # job_spec moved to s2kit.jobs (it needs the config); the old import path keeps working
    # without this package importing the config at import time
    if name == "job_spec":
        from ..jobs import job_spec

        return job_spec
    if name == "SCHEDULERS":
        return _schedulers()
    module = _BACKENDS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
