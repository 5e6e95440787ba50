"""IBM Spectrum LSF: ``bsub < script``, ``bjobs -json``, ``bkill``.

Site settings are read, not assumed (as dask-jobqueue does):

* **memory unit** -- ``rusage[mem=N]`` is in ``LSF_UNIT_FOR_LIMITS``; read from
  ``lsadmin showconf lim``, else the environment variable, else
  ``$LSF_ENVDIR/lsf.conf`` (``/etc/lsf.conf``), else KB (LSF's own default).
  The config value (GB, ``memory_per_task_mb`` = GB x 1024) is converted and
  rounded UP.
* **per host or per slot** -- LSF reserves ``rusage[mem]`` of a parallel job per
  host unless ``RESOURCE_RESERVE_PER_TASK=Y`` (formerly ``RESOURCE_RESERVE_PER_SLOT``)
  in lsb.params, when it reserves it per slot (IBM lsb.params reference). s2kit
  reads that from ``bparams -a`` and writes the value that makes ONE array
  element (``-n cores`` slots on one host, ``span[hosts=1]``) reserve
  ``memory_per_task_gb``: the whole value per host, or value/cores per slot.
  With ``cores_per_task = 1`` (the default) both are the same.
* **array size** -- ``MAX_JOB_ARRAY_SIZE`` from ``bparams -a`` (default 1000):
  bigger batches are split into several arrays, each ``name[1-N]%K`` with its
  own ``--offset``.
* **why a task ended** (:meth:`LsfScheduler.task_end_reasons`): ``bjobs -a -o "jobid
  jobindex stat exit_code exit_reason" -json``; ``TERM_MEMLIMIT`` (job killed after reaching
  LSF memory usage limit) -> ``oom``, ``TERM_RUNLIMIT`` (run time limit) -> ``walltime``;
  without an exit reason, LSF's default limit signals: exit 130 (SIGINT, memory limit) ->
  ``oom``, exit 140 (SIGUSR2, run limit) -> ``walltime``; once bjobs forgot the job
  (``CLEAN_PERIOD``), the ``TERM_MEMLIMIT``/``TERM_RUNLIMIT`` line of the job report LSF
  appends to the task's log.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..runs import JobRecord
from ..text import printable
from .base import (
    JobSpec,
    JobStatus,
    Scheduler,
    SchedulerError,
    SchedulerUnavailable,
    TaskState,
    ceil_div,
    hhmm,
    max_memory_mb,
    mb_to_unit,
    render_array_script,
)

__all__ = [
    "LsfScheduler",
    "LsfSite",
    "parse_bjobs_end_reasons",
    "parse_bjobs_json",
    "parse_bparams",
    "parse_bsub_reply",
    "parse_unit_for_limits",
    "render_lsf",
    "rusage_mem",
]

DEFAULT_MAX_JOB_ARRAY_SIZE = 1000
UNITS = ("KB", "MB", "GB", "TB", "PB", "EB", "ZB")

_STATES: dict[str, TaskState] = {
    "PEND": "pending",
    "PSUSP": "pending",
    "WAIT": "pending",
    "RUN": "running",
    "USUSP": "running",
    "SSUSP": "running",
    "PROV": "running",
    "DONE": "done",
    "EXIT": "failed",
    "ZOMBI": "failed",
    "UNKWN": "unknown",
}


@dataclass(frozen=True)
class LsfSite:
    """What s2kit needs to know about an LSF cluster, and where each value came from."""

    unit: str = "KB"
    unit_source: str = "LSF default"
    max_array_size: int = DEFAULT_MAX_JOB_ARRAY_SIZE
    max_array_source: str = "LSF default"
    reserve_per_task: bool = False


# ----------------------------------------------------------------------------- pure parsers
def parse_unit_for_limits(text: str) -> str | None:
    """``LSF_UNIT_FOR_LIMITS`` from ``lsadmin showconf lim`` or lsf.conf text (upper-cased)."""
    m = re.search(r"^\s*LSF_UNIT_FOR_LIMITS\s*=\s*[\"']?([A-Za-z]+)", text, re.MULTILINE)
    if not m:
        return None
    unit = m.group(1).upper()
    return unit if unit in UNITS else None


def parse_bparams(text: str) -> tuple[int | None, bool | None]:
    """(MAX_JOB_ARRAY_SIZE, per-task reservation) from ``bparams -a``; None when absent."""
    size = re.search(r"^\s*MAX_JOB_ARRAY_SIZE\s*=\s*(\d+)", text, re.MULTILINE)
    per = re.search(r"^\s*RESOURCE_RESERVE_PER_(?:TASK|SLOT)\s*=\s*(\w+)", text, re.MULTILINE)
    return (int(size.group(1)) if size else None, (per.group(1).upper() == "Y") if per else None)


_BSUB_RE = re.compile(r"Job <(\d+)> is submitted to (?:default )?queue <([^>]*)>")


def parse_bsub_reply(text: str) -> tuple[str, str]:
    """(job id, queue) from ``Job <123> is submitted to queue <normal>.``; SchedulerError otherwise."""
    m = _BSUB_RE.search(text)
    if not m:
        first = text.strip().splitlines()[0] if text.strip() else "nothing"
        raise SchedulerError(f"expected bsub to reply 'Job <ID> is submitted to queue <Q>.', found: {first}")
    return m.group(1), m.group(2)


def parse_bjobs_json(text: str, job_ids: Sequence[str]) -> dict[str, JobStatus]:
    """Task states per job from ``bjobs -a -o "jobid jobindex stat exit_code" -json``."""
    try:
        doc = json.loads(text)
        records = doc["RECORDS"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise SchedulerError("expected JSON with RECORDS from bjobs -json, found something else") from None
    out = {j: JobStatus(job_id=j, state="gone") for j in job_ids}
    for rec in records:
        if not isinstance(rec, dict):
            continue
        jid = str(rec.get("JOBID", ""))
        if jid not in out:
            continue
        if rec.get("ERROR"):
            out[jid].detail = str(rec["ERROR"])
            continue
        idx = int(rec.get("JOBINDEX") or 0)
        out[jid].tasks[idx] = _STATES.get(str(rec.get("STAT", "")).upper(), "unknown")
    for st in out.values():
        if st.tasks:
            st.state = "active" if any(t in ("pending", "running") for t in st.tasks.values()) else "ended"
    return out


_END_WORDS = (
    ("oom", ("TERM_MEMLIMIT", "MEMORY USAGE LIMIT", "MEMLIMIT")),
    ("walltime", ("TERM_RUNLIMIT", "RUN TIME LIMIT", "RUNLIMIT")),
)
#: LSF's default signals at a limit, as an exit status (128 + SIGINT, 128 + SIGUSR2)
_END_EXIT_CODES = {130: "oom", 140: "walltime"}


def parse_bjobs_end_reasons(text: str, job_ids: Sequence[str]) -> dict[tuple[str, int], str]:
    """``(job id, index) -> "oom" | "walltime" | STAT`` of finished elements from ``bjobs -a -o
    "jobid jobindex stat exit_code exit_reason" -json`` (SchedulerError: not that JSON)."""
    try:
        records = json.loads(text)["RECORDS"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise SchedulerError("expected JSON with RECORDS from bjobs -json, found something else") from None
    wanted = set(job_ids)
    out: dict[tuple[str, int], str] = {}
    for rec in records if isinstance(records, list) else []:
        if not isinstance(rec, dict) or rec.get("ERROR") or str(rec.get("JOBID", "")) not in wanted:
            continue
        stat = str(rec.get("STAT", "")).upper()
        if stat not in ("DONE", "EXIT"):
            continue
        try:
            index = int(rec.get("JOBINDEX") or 0)
        except (TypeError, ValueError):
            continue
        reason = str(rec.get("EXIT_REASON") or "").upper()
        code = str(rec.get("EXIT_CODE") or "").strip()
        end = next((name for name, words in _END_WORDS if any(w in reason for w in words)), None)
        if end is None and stat == "EXIT" and not reason.strip("- ") and code.isdigit():
            end = _END_EXIT_CODES.get(int(code))
        out[(str(rec["JOBID"]), index)] = end or stat
    return out


# ----------------------------------------------------------------------------- pure rendering
def rusage_mem(spec: JobSpec, site: LsfSite) -> int:
    """rusage[mem=N] in the site's unit so one element reserves ``spec.memory_mb`` in total."""
    mb = ceil_div(spec.memory_mb, spec.cores) if site.reserve_per_task else spec.memory_mb
    return mb_to_unit(mb, site.unit)


def lsf_header(spec: JobSpec, site: LsfSite) -> list[str]:
    log = shlex.quote(str(spec.log_dir / "%J_%I.log"))
    lines = [
        f'#BSUB -J "{spec.name}[1-{spec.count}]%{spec.max_concurrent}"',
        f"#BSUB -n {spec.cores}",
        f'#BSUB -R "rusage[mem={rusage_mem(spec, site)}] span[hosts=1]"',
        f"#BSUB -W {hhmm(spec.walltime_minutes)}",
    ]
    if spec.queue:
        lines.append(f"#BSUB -q {shlex.quote(spec.queue)}")
    lines += [f"#BSUB -o {log}", f"#BSUB -e {log}"]
    return lines


def render_lsf(spec: JobSpec, site: LsfSite, template: str | None = None) -> str:
    """PURE: job spec + site settings -> the job script text."""
    per = "per slot (RESOURCE_RESERVE_PER_TASK=Y)" if site.reserve_per_task else "per host"
    notes = [
        f"# memory: {spec.memory_mb} MB per element = rusage[mem={rusage_mem(spec, site)}] in "
        f"LSF_UNIT_FOR_LIMITS={site.unit} ({site.unit_source}), reserved {per}",
        f"# array: {spec.count} element(s), at most {spec.max_concurrent} running; "
        f"MAX_JOB_ARRAY_SIZE={site.max_array_size} ({site.max_array_source})",
    ]
    return render_array_script("lsf", spec, lsf_header(spec, site), notes, template)


# ----------------------------------------------------------------------------- the scheduler
class LsfScheduler(Scheduler):
    kind = "lsf"
    script_suffix = ".lsf"
    index_base = 1

    def node_memory_mb(self, queue: str = "") -> int | None:
        """Largest ``maxmem`` of ``lshosts -w`` (the queue's host list is not resolved)."""
        try:
            res = self._run(["lshosts", "-w"])
        except SchedulerUnavailable:
            return None
        lines = res.stdout.splitlines() if res.returncode == 0 else []
        if not lines:
            return None
        header = lines[0].split()
        if "maxmem" not in header:
            return None
        col = header.index("maxmem")
        return max_memory_mb(ln.split()[col] for ln in lines[1:] if len(ln.split()) > col)

    @cached_property
    def site(self) -> LsfSite:
        unit, unit_src = self._detect_unit()
        size, per_task, size_src = None, None, "LSF default"
        try:
            res = self._run(["bparams", "-a"])
            if res.returncode == 0:
                size, per_task = parse_bparams(res.stdout)
                size_src = "bparams -a" if size is not None else "LSF default (not in bparams -a)"
            else:
                size_src = f"LSF default (bparams -a failed: {res.one_line()})"
        except SchedulerUnavailable as exc:
            size_src = f"LSF default ({exc})"
        return LsfSite(
            unit=unit,
            unit_source=unit_src,
            max_array_size=size or DEFAULT_MAX_JOB_ARRAY_SIZE,
            max_array_source=size_src,
            reserve_per_task=bool(per_task),
        )

    def _detect_unit(self) -> tuple[str, str]:
        try:
            res = self._run(["lsadmin", "showconf", "lim"])
            if res.returncode == 0:
                unit = parse_unit_for_limits(res.stdout)
                if unit:
                    return unit, "lsadmin showconf lim"
        except SchedulerUnavailable:
            pass
        env_unit = self.env.get("LSF_UNIT_FOR_LIMITS", "").strip().upper()
        if env_unit in UNITS:
            return env_unit, "environment"
        envdir = self.env.get("LSF_ENVDIR", "/etc")
        conf = Path(envdir) / "lsf.conf"
        try:
            unit = parse_unit_for_limits(conf.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            unit = None
        if unit:
            return unit, printable(str(conf))  # LSF_ENVDIR goes into a comment line
        return "KB", "LSF default"

    def max_array_size(self) -> int:
        return self.site.max_array_size

    def notes(self) -> list[str]:
        s = self.site
        return [
            f"LSF: LSF_UNIT_FOR_LIMITS={s.unit} ({s.unit_source}); MAX_JOB_ARRAY_SIZE={s.max_array_size} "
            f"({s.max_array_source}); rusage[mem] reserved {'per slot' if s.reserve_per_task else 'per host'}"
        ]

    def render(self, spec: JobSpec) -> str:
        return render_lsf(spec, self.site)

    def submit_argv(self, script: Path, spec: JobSpec) -> list[str]:
        return ["bsub", *spec.extra_args]

    def shown_command(self, script: Path, spec: JobSpec) -> str:
        """``bsub ... < SCRIPT``: bsub reads the script on its standard input."""
        return shlex.join(self.submit_argv(script, spec)) + f" < {shlex.quote(str(script))}"

    def submit(self, script: Path, spec: JobSpec) -> str:
        argv = self.submit_argv(script, spec)
        res = self._accepted(
            self._run(argv, input=script.read_text(encoding="utf-8"), cwd=spec.log_dir), "bsub", script
        )
        job_id, _queue = parse_bsub_reply(res.stdout + "\n" + res.stderr)
        return job_id

    def query(self, records: Sequence[JobRecord]) -> dict[str, JobStatus]:
        ids = sorted({r.job_id for r in records})
        if not ids:
            return {}
        res = self._run(["bjobs", "-a", "-o", "jobid jobindex stat exit_code", "-json", *ids])
        try:
            return parse_bjobs_json(res.stdout, ids)
        except SchedulerError:
            raise SchedulerUnavailable(
                f"bjobs failed (exit status {res.returncode}): {res.one_line()}"
            ) from None

    def cancel(self, job_id: str) -> None:
        self._check(self._run(["bkill", job_id]), f"bkill {job_id}")

    def extend_walltime_argv(self, job_id: str, minutes: int) -> list[str]:
        """``bmod -W H:MM JOBID``: the array id changes every element (running ones only where
        the site sets LSB_MOD_ALL_JOBS=Y; otherwise LSF refuses)."""
        return ["bmod", "-W", hhmm(minutes), job_id]

    # the job report LSF appends to the job's -o file
    LOG_END_PATTERNS = (
        ("oom", re.compile(r"^TERM_MEMLIMIT: job killed after reaching LSF memory usage limit", re.M)),
        ("walltime", re.compile(r"^TERM_RUNLIMIT: job killed after reaching LSF run time limit", re.M)),
    )

    def task_end_reasons(self, job_ids: Sequence[str]) -> dict[tuple[str, int], str]:
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        # an LSF without the exit_reason field (before 10.1) refuses the format: exit codes only
        for fields, source in (
            ("jobid jobindex stat exit_code exit_reason", "bjobs"),
            ("jobid jobindex stat exit_code", "bjobs exit codes"),
        ):
            res = self._run(["bjobs", "-a", "-o", fields, "-json", *ids])
            self.end_reasons_source = source
            try:
                return parse_bjobs_end_reasons(res.stdout, ids)
            except SchedulerError:
                continue
        raise SchedulerUnavailable(f"bjobs failed (exit status {res.returncode}): {res.one_line()}")
