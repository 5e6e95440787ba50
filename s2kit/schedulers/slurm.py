"""Slurm: ``sbatch --parsable``, ``squeue -r -t all``, ``scancel``.

* Array indices must stay below ``MaxArraySize`` (``scontrol show config``;
  Slurm's default 1001), so each chunk is ``--array=0-(M-1)%K`` with M <=
  MaxArraySize and its own ``--offset``.
* ``--mem`` is the per-task memory in MB (one task per array element), ``--time``
  is written ``H:MM:SS`` (a bare ``02:00`` would be two MINUTES to Slurm).
* Status reads ``squeue -h -r -j IDS -t all -o '%i %T'``: one row per task,
  finished ones included for MinJobAge seconds; after that (``Invalid job id``)
  the job is ``gone``. No sacct is needed.
* Why a finished task ended (:meth:`SlurmScheduler.task_end_reasons`): ``sacct -X -P -n``
  (``TIMEOUT`` -> ``walltime``, ``OUT_OF_MEMORY`` -> ``oom``) where accounting storage is
  configured; without it (``AccountingStorageType=accounting_storage/none``: sacct fails)
  the same states from ``squeue -t all`` while the controller still lists the task
  (``MinJobAge``, default 300 s). Where neither says ``OUT_OF_MEMORY``/``TIMEOUT`` (Slurm
  22.05's ``jobacct_gather`` OverMemoryKill ends a task ``FAILED``) or the task is gone: what
  slurmstepd wrote into the task's log (``*** JOB N ON HOST CANCELLED AT T DUE TO TIME LIMIT
  ***``, ``Exceeded job memory limit``, ``Detected N oom-kill event(s)``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from ..runs import JobRecord
from .base import (
    CommandResult,
    JobSpec,
    JobStatus,
    Scheduler,
    SchedulerError,
    SchedulerUnavailable,
    TaskState,
    hhmmss,
    max_memory_mb,
    render_array_script,
)

__all__ = [
    "SlurmScheduler",
    "parse_end_states",
    "parse_max_array_size",
    "parse_sbatch_reply",
    "parse_squeue",
    "render_slurm",
    "slurm_header",
]

DEFAULT_MAX_ARRAY_SIZE = 1001

_STATES: dict[str, TaskState] = {
    "PENDING": "pending",
    "REQUEUED": "pending",
    "REQUEUE_HOLD": "pending",
    "REQUEUE_FED": "pending",
    "RESV_DEL_HOLD": "pending",
    "CONFIGURING": "running",
    "RUNNING": "running",
    "COMPLETING": "running",
    "SUSPENDED": "running",
    "STOPPED": "running",
    "STAGE_OUT": "running",
    "SIGNALING": "running",
    "RESIZING": "running",
    "COMPLETED": "done",
    "FAILED": "failed",
    "TIMEOUT": "failed",
    "CANCELLED": "failed",
    "NODE_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "PREEMPTED": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
    "REVOKED": "failed",
    "SPECIAL_EXIT": "failed",
}


# ----------------------------------------------------------------------------- pure parsers
def parse_max_array_size(text: str) -> int | None:
    m = re.search(r"^\s*MaxArraySize\s*=\s*(\d+)", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def parse_sbatch_reply(text: str) -> str:
    """The job id of ``sbatch --parsable`` (``123`` or ``123;cluster``)."""
    m = re.fullmatch(r"\s*(\d+)(?:;\S*)?\s*", text)
    if not m:
        first = text.strip().splitlines()[0] if text.strip() else "nothing"
        raise SchedulerError(f"expected sbatch --parsable to print a job id, found: {first}")
    return m.group(1)


def _expand(spec: str) -> list[int]:
    """``3``, ``[3-5,7]``, ``[3-9%2]`` -> task ids."""
    spec = spec.strip("[]").split("%", 1)[0]
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def parse_squeue(text: str, job_ids: Sequence[str]) -> dict[str, JobStatus]:
    """Task states from ``squeue -h -r -t all -o '%i %T'`` rows (``12_3 RUNNING``, ``12 PENDING``)."""
    out = {j: JobStatus(job_id=j, state="gone") for j in job_ids}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        ident, state = parts[0], parts[1].upper().rstrip("+")
        jid, _, task = ident.partition("_")
        if jid not in out:
            continue
        ts = _STATES.get(state, "unknown")
        for t in _expand(task) if task else [0]:
            out[jid].tasks[t] = ts
    for st in out.values():
        if st.tasks:
            st.state = "active" if any(t in ("pending", "running") for t in st.tasks.values()) else "ended"
    return out


#: final Slurm states that name the limit the scheduler killed a task at
END_STATES = {"OUT_OF_MEMORY": "oom", "TIMEOUT": "walltime"}


def parse_end_states(text: str, job_ids: Sequence[str], sep: str | None = None) -> dict[tuple[str, int], str]:
    """``(job id, task) -> "oom" | "walltime" | STATE`` of finished tasks from ``sacct -X -P -n
    --format=JobID,State`` (*sep* ``"|"``) or ``squeue -h -r -t all -o '%i %T'`` rows.

    Job steps (``12_3.batch``), pending ranges (``12_[4-9]``) and active tasks are left out;
    ``CANCELLED by 0`` is ``CANCELLED``.
    """
    wanted = set(job_ids)
    out: dict[tuple[str, int], str] = {}
    for line in text.splitlines():
        parts = line.split(sep) if sep else line.split()
        if len(parts) < 2:
            continue
        ident = parts[0].strip()
        state = parts[1].strip().split()[0].upper().rstrip("+") if parts[1].strip() else ""
        jid, _, task = ident.partition("_")
        if "." in ident or jid not in wanted or not state or _STATES.get(state) in ("pending", "running"):
            continue
        if task and not task.isdigit():
            continue  # a range of tasks that never ran
        out[(jid, int(task) if task else 0)] = END_STATES.get(state, state)
    return out


# ----------------------------------------------------------------------------- pure rendering
def _slurm_path(path: Path) -> str:
    """A log path pattern for --output: '%' in the directory is doubled (Slurm's '%%' = '%')."""
    return str(path.parent).replace("%", "%%") + "/" + path.name


def slurm_header(spec: JobSpec) -> list[str]:
    log = shlex.quote(_slurm_path(spec.log_dir / "%A_%a.log"))
    lines = [
        f"#SBATCH --job-name={spec.name}",
        f"#SBATCH --array=0-{spec.count - 1}%{spec.max_concurrent}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={spec.cores}",
        f"#SBATCH --mem={spec.memory_mb}",
        f"#SBATCH --time={hhmmss(spec.walltime_minutes)}",
    ]
    if spec.queue:
        lines.append(f"#SBATCH --partition={shlex.quote(spec.queue)}")
    lines += [f"#SBATCH --output={log}", f"#SBATCH --error={log}"]
    return lines


def render_slurm(spec: JobSpec, max_array_size: int, source: str, template: str | None = None) -> str:
    """PURE: job spec + MaxArraySize -> the job script text."""
    notes = [
        f"# memory: {spec.memory_mb} MB per array task (--mem is per node = per task here)",
        f"# array: {spec.count} task(s), at most {spec.max_concurrent} running; "
        f"MaxArraySize={max_array_size} ({source})",
    ]
    return render_array_script("slurm", spec, slurm_header(spec), notes, template)


# ----------------------------------------------------------------------------- the scheduler
class SlurmScheduler(Scheduler):
    kind = "slurm"
    script_suffix = ".slurm"
    index_base = 0

    def node_memory_mb(self, queue: str = "") -> int | None:
        """Largest RealMemory of the partition's nodes (``sinfo -h -o %m``)."""
        argv = ["sinfo", "-h", "-o", "%m", *(["-p", queue] if queue else [])]
        try:
            res = self._run(argv)
        except SchedulerUnavailable:
            return None
        return max_memory_mb(res.stdout.split()) if res.returncode == 0 else None

    @cached_property
    def _array_limit(self) -> tuple[int, str]:
        try:
            res = self._run(["scontrol", "show", "config"])
        except SchedulerUnavailable as exc:
            return DEFAULT_MAX_ARRAY_SIZE, f"Slurm default ({exc})"
        if res.returncode != 0:
            return DEFAULT_MAX_ARRAY_SIZE, f"Slurm default (scontrol show config failed: {res.one_line()})"
        size = parse_max_array_size(res.stdout)
        return (size, "scontrol show config") if size else (DEFAULT_MAX_ARRAY_SIZE, "Slurm default")

    def max_array_size(self) -> int:
        return self._array_limit[0]

    def notes(self) -> list[str]:
        size, src = self._array_limit
        return [f"Slurm: MaxArraySize={size} ({src})"]

    def render(self, spec: JobSpec) -> str:
        size, src = self._array_limit
        return render_slurm(spec, size, src)

    def submit_argv(self, script: Path, spec: JobSpec) -> list[str]:
        return ["sbatch", "--parsable", *spec.extra_args, str(script)]

    def submit(self, script: Path, spec: JobSpec) -> str:
        res = self._accepted(self._run(self.submit_argv(script, spec), cwd=spec.log_dir), "sbatch", script)
        return parse_sbatch_reply(res.stdout)

    def _squeue(self, ids: Sequence[str]) -> CommandResult:
        return self._run(["squeue", "-h", "-r", "-j", ",".join(ids), "-t", "all", "-o", "%i %T"])

    def query(self, records: Sequence[JobRecord]) -> dict[str, JobStatus]:
        ids = sorted({r.job_id for r in records}, key=lambda j: (len(j), j))
        if not ids:
            return {}
        res = self._squeue(ids)
        if res.returncode == 0:
            return parse_squeue(res.stdout, ids)
        if "invalid job id" not in (res.stderr + res.stdout).lower():
            raise SchedulerUnavailable(f"squeue failed (exit status {res.returncode}): {res.one_line()}")
        # some id is unknown to the controller (purged after MinJobAge): ask one by one
        out: dict[str, JobStatus] = {}
        for jid in ids:
            one = self._squeue([jid])
            if one.returncode == 0:
                out.update(parse_squeue(one.stdout, [jid]))
            elif "invalid job id" in (one.stderr + one.stdout).lower():
                out[jid] = JobStatus(job_id=jid, state="gone", detail=one.one_line())
            else:
                raise SchedulerUnavailable(f"squeue failed (exit status {one.returncode}): {one.one_line()}")
        return out

    def cancel(self, job_id: str) -> None:
        self._check(self._run(["scancel", job_id]), f"scancel {job_id}")

    def extend_walltime_argv(self, job_id: str, minutes: int) -> list[str]:
        """``scontrol update JobId=ID TimeLimit=H:MM:SS``: the array's id changes every task; Slurm
        lets a user only lower a limit, raising it is for operators and administrators."""
        return ["scontrol", "update", f"JobId={job_id}", f"TimeLimit={hhmmss(minutes)}"]

    # slurmstepd's own lines in the job's --output file ("slurmstepd-<node>: error: ..." in
    # 22.05). jobacct_gather's OverMemoryKill ends the task FAILED (not OUT_OF_MEMORY) in 22.05:
    # only this line tells it was the memory limit.
    LOG_END_PATTERNS = (
        (
            "walltime",
            re.compile(
                r"slurmstepd(?:-\S+)?: error: \*\*\* JOB \S+ ON \S+ CANCELLED AT \S+ DUE TO TIME LIMIT"
            ),
        ),
        (
            "oom",
            re.compile(
                r"slurmstepd(?:-\S+)?: error: (?:Exceeded job memory limit|Detected \d+ oom[-_]kill event)"
            ),
        ),
    )

    def task_end_reasons(self, job_ids: Sequence[str]) -> dict[tuple[str, int], str]:
        """Finished tasks' end: sacct, else squeue (accounting storage disabled / sacct missing)."""
        ids = sorted(set(job_ids), key=lambda j: (len(j), j))
        if not ids:
            return {}
        why = ""
        try:
            res = self._run(["sacct", "-X", "-P", "-n", "-j", ",".join(ids), "--format=JobID,State,ExitCode"])
            if res.returncode == 0:
                self.end_reasons_source = "sacct"
                return parse_end_states(res.stdout, ids, sep="|")
            why = res.one_line()
        except SchedulerUnavailable as exc:
            why = str(exc)
        out: dict[tuple[str, int], str] = {}
        for chunk in [ids] if len(ids) == 1 else [ids, *[[j] for j in ids]]:
            res = self._squeue(chunk)
            if res.returncode == 0:
                out.update(parse_end_states(res.stdout, chunk))
                if chunk is ids:
                    break
            elif "invalid job id" not in (res.stderr + res.stdout).lower():
                raise SchedulerUnavailable(f"squeue failed (exit status {res.returncode}): {res.one_line()}")
        why = re.sub(r"^sacct:\s*(error:\s*)?", "", why)[:80]
        self.end_reasons_source = f"squeue; sacct: {why}" if why else "squeue"
        return out
