"""Scheduler-neutral pieces: the job spec, the subprocess boundary, chunking, templates.

The design follows dask-jobqueue and submitit: one generic :class:`JobSpec`
(what an array chunk needs: cores, memory, walltime, throttle, the command) is
translated by each scheduler into a job script by a PURE function (spec and
site settings in, text out; golden-tested), and every call of a scheduler
command goes through one function, :func:`run_command`, which a test can
replace (``Scheduler(runner=fake)``) or satisfy with fake executables on PATH.

Array indices: the batch file ``batches/<name>.txt`` maps line ``i`` to a
scene. A chunk covers lines ``offset .. offset+count-1``; its array is
``0..count-1`` on Slurm and ``1..count`` on LSF (``index_base``), and the
worker computes ``line = offset + index`` (``--offset`` in the script).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import ClassVar, Literal

from ..errors import S2kitError
from ..runs import JobRecord
from ..text import control_character, printable
from .env import shell_line

__all__ = [
    "ACTIVE",
    "CommandResult",
    "JobSpec",
    "JobStatus",
    "Runner",
    "Scheduler",
    "SchedulerError",
    "SchedulerUnavailable",
    "TaskState",
    "END_REASONS",
    "UnsafeScriptValue",
    "WalltimeRefused",
    "check_script_values",
    "chunk_ranges",
    "job_name",
    "load_template",
    "render_template",
    "run_command",
    "TEMPLATE_NAMES",
]

TaskState = Literal["pending", "running", "done", "failed", "gone", "unknown"]
"""One array task as the scheduler sees it. ``gone``: the scheduler no longer knows
the task (finished long ago, cancelled before it started, or never existed);
``unknown``: the scheduler could not be asked."""

ACTIVE: frozenset[str] = frozenset({"pending", "running"})

#: the failure reasons a scheduler's kill at a limit becomes (issue 19)
END_REASONS: dict[str, str] = {
    "oom": "the scheduler killed the task at its memory limit",
    "walltime": "the scheduler killed the task at its time limit",
}

# Scheduler kind -> packaged job script template (s2kit/templates/jobs/).
TEMPLATE_NAMES = {
    "lsf": "s2kit-array.lsf.tmpl",
    "slurm": "s2kit-array.slurm.tmpl",
    "local": "s2kit-local.sh.tmpl",
}

COMMAND_TIMEOUT_S = 120.0


class SchedulerError(S2kitError):
    """A scheduler command failed or replied something s2kit cannot read."""


class SchedulerUnavailable(SchedulerError):
    """The scheduler cannot be reached (command missing, controller down, timeout)."""


class WalltimeRefused(SchedulerError):
    """The scheduler refused to change a job's time limit (often only an administrator may raise it)."""


#: what LSF (bmod) and Slurm (scontrol update) answer when they will not change a time limit
_REFUSAL_RE = re.compile(
    r"access/permission denied|permission denied|not authori[sz]ed|cannot (?:be )?modif|"
    r"not allowed|time limit is invalid|exceeds .*limit|only .*(?:admin|root|operator)",
    re.IGNORECASE,
)


class UnsafeScriptValue(S2kitError):
    """A value for a job script holds a control character (or a batch name is no plain token).

    The config and the CLI refuse these first; the pure renderers refuse them again, so no
    value with a newline ever ends a ``#SBATCH``/``#BSUB`` directive or a comment line.
    """


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def one_line(self) -> str:
        """stderr (else stdout) on one line, for error messages."""
        lines = [ln.strip() for ln in (self.stderr.strip() or self.stdout.strip()).splitlines() if ln.strip()]
        text = printable(" / ".join(lines))
        return (text[:300] + " ...") if len(text) > 300 else (text or f"exit status {self.returncode}")


Runner = Callable[..., CommandResult]


def run_command(
    argv: Sequence[str],
    *,
    input: str | None = None,  # noqa: A002 - same name as subprocess.run
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = COMMAND_TIMEOUT_S,
) -> CommandResult:
    """Run one scheduler command (the subprocess boundary); never raises for rc != 0.

    A missing executable or a timeout raises :class:`SchedulerUnavailable`.
    """
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise SchedulerUnavailable(f"expected the command {argv[0]!r} on PATH, found none") from None
    except subprocess.TimeoutExpired:
        raise SchedulerUnavailable(
            f"expected {argv[0]!r} to answer within {timeout:.0f} s, it did not"
        ) from None
    except OSError as exc:
        raise SchedulerUnavailable(f"could not run {argv[0]!r}: {exc.strerror}") from None
    return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class JobSpec:
    """One array chunk, scheduler-neutral (the generic job spec every backend translates)."""

    name: str  # job name, [A-Za-z0-9_.-] only
    batch: str
    offset: int  # batch line of the chunk's first task
    count: int  # number of array tasks
    command: tuple[str, ...]  # worker argv incl. --batch/--offset, without --index
    log_dir: Path
    cores: int
    memory_mb: int  # per array task
    walltime_minutes: int
    queue: str = ""
    max_concurrent: int = 1
    extra_args: tuple[str, ...] = ()
    # created on the execution host before the worker starts: apptainer cannot bind a
    # directory that does not exist (node-local scratch, a first-time L2A dir)
    make_dirs: tuple[str, ...] = ()


@dataclass
class JobStatus:
    """What the scheduler says about one submitted array (a JobRecord)."""

    job_id: str
    state: str  # summary: active | ended | gone | unknown
    tasks: dict[int, TaskState] = field(default_factory=dict)  # scheduler task index -> state
    default: TaskState = "gone"  # state of a task the scheduler did not list
    detail: str = ""

    def task(self, index: int) -> TaskState:
        return self.tasks.get(index, self.default)


def job_name(batch: str, offset: int = 0) -> str:
    """A job name every scheduler accepts: ``s2kit-<batch>[-<offset>]``, unsafe characters -> ``_``."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", f"s2kit-{batch}")[:60]
    return base if offset == 0 else f"{base}-{offset}"


def chunk_ranges(total: int, max_size: int) -> list[tuple[int, int]]:
    """Split ``total`` tasks into arrays of at most ``max_size``: [(offset, count), ...]."""
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    return [(off, min(max_size, total - off)) for off in range(0, total, max_size)]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def hhmm(minutes: int) -> str:
    """Minutes -> ``H:MM`` (LSF ``-W``)."""
    return f"{minutes // 60}:{minutes % 60:02d}"


def hhmmss(minutes: int) -> str:
    """Minutes -> ``H:MM:SS`` (Slurm ``--time``; a bare ``02:00`` would mean 2 minutes there)."""
    return f"{minutes // 60}:{minutes % 60:02d}:00"


def load_template(name: str) -> str:
    """A packaged job script template from ``s2kit/templates/jobs``."""
    return (
        resources.files("s2kit")
        .joinpath("templates")
        .joinpath("jobs")
        .joinpath(name)
        .read_text(encoding="utf-8")
    )


_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def prepare_line(spec: JobSpec) -> str:
    """Shell line that creates the directories the job binds (``mkdir -p``), quoted."""
    if not spec.make_dirs:
        return ": # no directories to create"
    return "mkdir -p -- " + " ".join(shlex.quote(d) for d in spec.make_dirs)


_MEM_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)B?\Z", re.IGNORECASE)


def parse_memory_mb(text: str) -> int | None:
    """``"21300"``/``"21300+"`` (Slurm, MB) or ``"64G"``/``"7.8G"``/``"65536M"`` (lshosts) -> MB."""
    m = _MEM_RE.match(text.strip().rstrip("+"))
    if not m:
        return None
    scale = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2, "P": 1024**3}[m[2].upper()]
    return int(float(m[1]) * scale)


def max_memory_mb(texts: Iterable[str]) -> int | None:
    """The largest readable memory value of *texts* (see :func:`parse_memory_mb`), else None."""
    known = [v for v in map(parse_memory_mb, texts) if v is not None]
    return max(known) if known else None


def check_script_values(spec: JobSpec, lines: Sequence[str] = ()) -> None:
    """Raise :class:`UnsafeScriptValue` if a value of *spec*, or a directive/comment line, holds a
    control character (a newline there would end the line and bash would run the rest)."""
    values: list[tuple[str, Sequence[str]]] = [
        ("job name", [spec.name]),
        ("batch", [spec.batch]),
        ("queue", [spec.queue]),
        ("log dir", [str(spec.log_dir)]),
        ("command", spec.command),
        ("directory to create", spec.make_dirs),
        ("submit option", spec.extra_args),
        ("line", lines),
    ]
    for what, texts in values:
        for text in texts:
            problem = control_character(text)
            if problem:
                raise UnsafeScriptValue(f"job script {what}: {problem}")


def render_array_script(
    kind: str, spec: JobSpec, header: Sequence[str], notes: Sequence[str], template: str | None = None
) -> str:
    """PURE: fill an array-job template (LSF or Slurm) from its header and note lines.

    Raises :class:`UnsafeScriptValue` (nothing rendered) for a value with a control character.
    """
    check_script_values(spec, [*header, *notes])
    return render_template(
        template if template is not None else load_template(TEMPLATE_NAMES[kind]),
        {
            "header": "\n".join(header),
            "notes": "\n".join(notes),
            "batch": spec.batch,
            "offset": str(spec.offset),
            "prepare": prepare_line(spec),
            "command": shell_line(spec.command),
        },
    )


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{{ key }}`` placeholders; every placeholder must have a value and vice versa."""
    used = set(_PLACEHOLDER.findall(template))
    missing = used - set(values)
    unused = set(values) - used
    if missing or unused:
        raise ValueError(
            f"template placeholders mismatch: missing {sorted(missing)}, unused {sorted(unused)}"
        )
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def mb_to_unit(mb: int, unit: str) -> int:
    """MB (MiB) -> an LSF_UNIT_FOR_LIMITS unit, rounded UP (never reserve less than asked)."""
    exp = {"KB": -1, "MB": 0, "GB": 1, "TB": 2, "PB": 3, "EB": 4, "ZB": 5}[unit]
    if exp < 0:
        return mb * 1024
    return max(1, int(math.ceil(mb / float(1024**exp))))


class Scheduler(ABC):
    """One batch system: detect site limits, render, submit, query, cancel."""

    kind: ClassVar[str]
    script_suffix: ClassVar[str]
    index_base: ClassVar[int]  # first array index (Slurm/local 0, LSF 1)

    def __init__(self, runner: Runner | None = None, env: Mapping[str, str] | None = None) -> None:
        self._run: Runner = runner or run_command
        self.env: Mapping[str, str] = env if env is not None else os.environ

    # ----------------------------------------------------------- site
    @abstractmethod
    def max_array_size(self) -> int:
        """Largest array this site accepts (tasks per array)."""

    def node_memory_mb(self, queue: str = "") -> int | None:
        """Memory of the largest node jobs can land on, in MB (None when it cannot be told)."""
        return None

    def notes(self) -> list[str]:
        """Human notes about detected site settings (printed by submit)."""
        return []

    # ----------------------------------------------------------- scripts
    @abstractmethod
    def render(self, spec: JobSpec) -> str:
        """Job script text for *spec* (delegates to a pure render function)."""

    @abstractmethod
    def submit_argv(self, script: Path, spec: JobSpec) -> list[str]:
        """The command that submits *script* (shown by --dry-run)."""

    @abstractmethod
    def submit(self, script: Path, spec: JobSpec) -> str:
        """Submit *script*; return the job id."""

    def shown_command(self, script: Path, spec: JobSpec) -> str:
        """The submit command as a shell line (what ``submit --dry-run`` prints)."""
        return shlex.join(self.submit_argv(script, spec))

    def chunk_note(self, tasks: int, arrays: int, limit: int, max_concurrent: int) -> str | None:
        """A note when *tasks* had to be split into several arrays (None: nothing to say)."""
        if arrays <= 1:
            return None
        return (
            f"{tasks} tasks > array limit {limit}: {arrays} arrays; "
            f"the throttle %{max_concurrent} applies to each array"
        )

    def start(
        self,
        script: Path,
        spec: JobSpec,
        record: Callable[[str], None],
        labels: Sequence[str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> tuple[str, dict[int, int]]:
        """Submit one array: (job id, task index -> exit status of the tasks that ran here).

        *record* gets the job id as soon as it is known (the caller appends the JobRecord);
        a batch system runs the tasks later, so no exit status is known here.
        """
        job_id = self.submit(script, spec)
        record(job_id)
        if echo is not None:
            echo(
                f"submitted {self.kind} job {job_id}: batch {spec.batch} "
                f"lines {spec.offset}-{spec.offset + spec.count - 1}"
            )
        return job_id, {}

    # ----------------------------------------------------------- status
    @abstractmethod
    def query(self, records: Sequence[JobRecord]) -> dict[str, JobStatus]:
        """Task states of the given jobs; raises SchedulerUnavailable when unreachable."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Cancel a whole array."""

    # ----------------------------------------------------------- walltime
    def extend_walltime_argv(self, job_id: str, minutes: int) -> list[str]:
        """The command that sets the time limit of every task of array *job_id* to *minutes*."""
        raise SchedulerError(f"expected a scheduler with a walltime (lsf or slurm), found kind '{self.kind}'")

    def extend_walltime(self, job_id: str, minutes: int) -> None:
        """Set the time limit of the (queued or running) array *job_id* to *minutes*.

        :class:`WalltimeRefused` when the scheduler says no (permission, a partition or queue
        limit); :class:`SchedulerError` for any other failure.
        """
        argv = self.extend_walltime_argv(job_id, minutes)  # a backend without walltime: refused here
        if not re.fullmatch(r"[0-9]{1,20}", job_id):
            raise SchedulerError(f"expected a numeric {self.kind} job id, found {printable(job_id)!r}")
        if not 0 < minutes <= 30 * 24 * 60:
            raise SchedulerError(
                f"expected a walltime above 0:00 and at most 720:00 (30 days), found {minutes} minutes"
            )
        res = self._run(argv)
        if res.returncode == 0 and not _REFUSAL_RE.search(res.stderr):
            return
        reply = res.one_line()
        if _REFUSAL_RE.search(res.stderr + "\n" + res.stdout):
            raise WalltimeRefused(
                f"expected {argv[0]} to set the walltime of {self.kind} job {job_id}, found the scheduler "
                f"refused: {reply}; usually only an administrator can raise a job's time limit "
                "(ask them, or let the job end and resubmit with a longer scheduler.walltime)"
            )
        raise SchedulerError(
            f"expected {shlex.join(argv)} to succeed, found exit status {res.returncode}: {reply}"
        )

    #: where the last :meth:`task_end_reasons` answer came from (e.g. ``sacct``), for messages
    end_reasons_source: str = ""

    #: (reason, pattern) lines the batch system writes into a job's own log when it kills it
    LOG_END_PATTERNS: ClassVar[tuple[tuple[str, re.Pattern[str]], ...]] = ()

    def log_end_reason(self, text: str) -> str | None:
        """``oom``/``walltime`` from the tail of a task's job log (what the batch system wrote
        into it when it killed the task); None when it says neither."""
        for reason, pattern in self.LOG_END_PATTERNS:
            if pattern.search(text):
                return reason
        return None

    def task_end_reasons(self, job_ids: Sequence[str]) -> dict[tuple[str, int], str]:
        """Why finished array tasks ended: ``(job id, task index) -> "oom" | "walltime" | state``.

        ``oom``/``walltime``: the scheduler killed the task at its memory/time limit; any other
        value is the scheduler's own final state word (``COMPLETED``, ``CANCELLED``, ``EXIT``,
        ...). Tasks the scheduler no longer knows are absent. Raises
        :class:`SchedulerUnavailable` when it cannot be asked. Default: nothing known.
        """
        return {}

    # ----------------------------------------------------------- helpers
    def _accepted(self, res: CommandResult, tool: str, script: Path) -> CommandResult:
        """*res* of submitting *script* with *tool*; a SchedulerError when *tool* refused it."""
        if res.returncode != 0:
            raise SchedulerError(
                f"expected {tool} to accept {script.name}, found exit {res.returncode}: {res.one_line()}",
                script,
            )
        return res

    def _check(self, res: CommandResult, what: str) -> CommandResult:
        if res.returncode != 0:
            raise SchedulerError(
                f"expected {what} to succeed, found exit status {res.returncode}: {res.one_line()}"
            )
        return res
