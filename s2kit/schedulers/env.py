"""What the batch system tells a running task, owned per backend (model: submitit's
``SlurmJobEnvironment``).

Each :class:`TaskEnvironment` subclass names the variables its scheduler sets in an array
task: the array index (and the base it counts from), the job id, the allocated cores. The
worker, the GIPP thread default and the container's ``--env`` passthrough all read them
here, so a new backend is one subclass. The local scheduler sets none: its tasks get
``--index`` on the command line.

:func:`shell_line` quotes a worker command for a job script and keeps each passthrough
``VAR=${VAR:-}`` of :data:`TASK_ENV_VARS` expandable there.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import ClassVar

from ..errors import UsageError

__all__ = [
    "TASK_ENVIRONMENTS",
    "TASK_ENV_VARS",
    "LsfTaskEnvironment",
    "SlurmTaskEnvironment",
    "TaskEnvironment",
    "allocated_cores",
    "array_index",
    "job_id",
    "passthrough",
    "shell_line",
]


class TaskEnvironment:
    """The scheduler variables of one array task, read from *env* (default ``os.environ``)."""

    kind: ClassVar[str]
    index_var: ClassVar[str]
    index_base: ClassVar[int]  # first array index: Slurm 0, LSF 1
    job_id_var: ClassVar[str]
    cores_var: ClassVar[str]
    #: every variable of this backend the worker reads (passed into the container)
    variables: ClassVar[tuple[str, ...]]

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env

    def _int(self, var: str) -> int | None:
        text = self.env.get(var, "").strip()  # the container passes unset variables as empty strings
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"expected an integer in ${var}, found {text!r}") from None

    @property
    def array_index(self) -> int | None:
        """The task's 0-based array index (None: not an array task of this scheduler)."""
        raw = self._int(self.index_var)
        return None if raw is None else raw - self.index_base

    @property
    def job_id(self) -> str | None:
        text = self.env.get(self.job_id_var, "").strip()
        return text or None

    @property
    def cores(self) -> int | None:
        """Cores the scheduler allocated to this task (None: not told)."""
        text = self.env.get(self.cores_var, "").strip()
        return int(text) if re.fullmatch(r"[0-9]+", text) and int(text) > 0 else None


class SlurmTaskEnvironment(TaskEnvironment):
    kind = "slurm"
    index_var = "SLURM_ARRAY_TASK_ID"
    index_base = 0
    job_id_var = "SLURM_JOB_ID"  # unique per array task
    cores_var = "SLURM_CPUS_PER_TASK"
    variables = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID", "SLURM_CPUS_PER_TASK")


class LsfTaskEnvironment(TaskEnvironment):
    kind = "lsf"
    index_var = "LSB_JOBINDEX"
    index_base = 1
    job_id_var = "LSB_JOBID"
    cores_var = "LSB_DJOB_NUMPROC"
    variables = ("LSB_JOBINDEX", "LSB_JOBID", "LSB_DJOB_NUMPROC")

    @property
    def array_index(self) -> int | None:
        raw = self._int(self.index_var)
        # LSB_JOBINDEX is 0 in a job that is not an array
        return raw - self.index_base if raw is not None and raw > 0 else None

    @property
    def job_id(self) -> str | None:
        """``ID[index]`` in an array (LSB_JOBID is the array's id), else ``ID``."""
        jid = super().job_id
        if jid is None:
            return None
        idx = self.env.get(self.index_var, "").strip()
        return f"{jid}[{idx}]" if idx and idx != "0" else jid


#: Backends whose task variables the worker reads, in the order it asks them.
TASK_ENVIRONMENTS: tuple[type[TaskEnvironment], ...] = (SlurmTaskEnvironment, LsfTaskEnvironment)
#: Every scheduler variable the worker reads inside the container (passed through --cleanenv).
TASK_ENV_VARS: tuple[str, ...] = tuple(v for cls in TASK_ENVIRONMENTS for v in cls.variables)


def array_index(env: Mapping[str, str] | None = None) -> int | None:
    """The 0-based array index the scheduler gave this task (None: not an array task)."""
    for cls in TASK_ENVIRONMENTS:
        index = cls(env).array_index
        if index is not None:
            return index
    return None


def job_id(env: Mapping[str, str] | None = None) -> str | None:
    """This task's job id: ``SLURM_JOB_ID``, else ``LSB_JOBID`` (``ID[index]`` in an array)."""
    for cls in TASK_ENVIRONMENTS:
        jid = cls(env).job_id
        if jid is not None:
            return jid
    return None


def allocated_cores(env: Mapping[str, str] | None = None) -> tuple[int, str] | None:
    """Cores the batch system gave this job: (count, variable) from LSF or Slurm, else None."""
    for cls in (LsfTaskEnvironment, SlurmTaskEnvironment):  # LSF first, as always
        cores = cls(env).cores
        if cores is not None:
            return cores, cls.cores_var
    return None


def passthrough(var: str) -> str:
    """``VAR=${VAR:-}``: the ``--env`` argument that hands *var* into the container."""
    return f"{var}=${{{var}:-}}"


def shell_line(argv: Sequence[str]) -> str:
    """Quote an argument list for a job script; ``${VAR:-}`` env passthroughs stay expandable."""
    known = {passthrough(v): v for v in TASK_ENV_VARS}
    parts = []
    for a in argv:
        name = known.get(a)
        # only the exact placeholder worker_argv emits; anything else (a path that merely
        # starts like one) is quoted literally
        parts.append(f'{name}="${{{name}:-}}"' if name else shlex.quote(a))
    return " ".join(parts)
