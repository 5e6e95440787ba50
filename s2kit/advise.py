"""Right-sized requests from measurements (``s2kit advise``) and longer walltimes for live jobs
(``s2kit extend-walltime``).

**Proposal** (:func:`advise_run`), per sizing group (:class:`s2kit.resources.SizingKey`: the
Sen2Cor resolution, and the routed version once a plan has one), from the done scenes'
``resources`` (:mod:`s2kit.resources`; percentiles by nearest rank) once at least
``min_scenes`` of the group are measured:

* ``memory_per_task_gb`` = p95 of the peak memory x (1 + margin), rounded up to 0.5 GB;
* ``[sen2cor] timeout_minutes`` = p95 of the wall time x (1 + margin), rounded up to a minute:
  s2kit's own timeout stops a Sen2Cor attempt that runs far longer than the batch's p95;
* ``walltime`` = that timeout + :data:`s2kit.config.WALLTIME_MARGIN_MINUTES` (staging, publishing,
  validation), rounded up to 5 minutes, so :func:`s2kit.config.walltime_problem` holds;
* ``cores_per_task``: the busy cores (CPU time / wall time) of the measured scenes; when they
  are below 1.5 with N > 1 cores given (CPU efficiency < 1.5 / N), one core, and the timeout
  grows by the busy cores (a scene busy 1.3 cores may take 1.3x as long on one); never more
  cores than given (a measurement with N cores says nothing about N + 1).

One ``[scheduler]`` table serves every group of a run: the snippet takes the largest value of
each key over the groups. Below ``min_scenes`` measured scenes the proposal is :data:`DEFAULTS`,
said as such. It also says how much of the current request the measured scenes left unused
(GB-hours reserved vs used at peak, core-hours given vs CPU-hours used), and warns when a
request is below the observed p95 or scenes failed for size (``oom``, ``walltime``, ``timeout``).

**Walltime extension** (:func:`extend_run_walltime`): for each job of the run that is still
queued or running, ``bmod -W`` (LSF) or ``scontrol update JobId=… TimeLimit=…`` (Slurm) on the
whole array; the job's record in ``jobs.jsonl`` gains ``walltime_minutes``. A finished job is
never touched; a refusal says so in one line (raising a limit is often for administrators only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .config import MAX_MEMORY_GB, MAX_MINUTES, MIN_TIMEOUT_MINUTES, WALLTIME_MARGIN_MINUTES
from .errors import InputError, S2kitError, display_path
from .resources import (
    PERCENTILE_METHOD,
    SIZE_REASONS,
    GroupStats,
    ResourceReport,
    SizingKey,
    run_resources,
    sizing_key,
)
from .runs import JobRecord, RunDir
from .text import printable

if TYPE_CHECKING:
    from .config import BatchConfig
    from .schedulers import Scheduler

__all__ = [
    "DEFAULTS",
    "DEFAULTS_SOURCE",
    "Advice",
    "Extension",
    "Proposal",
    "advise_run",
    "extend_run_walltime",
    "format_advice",
    "format_extensions",
]


@dataclass(frozen=True)
class Default:
    memory_gb: float
    minutes: int  # typical wall time of one scene


#: requests before anything is measured, by Sen2Cor resolution (None: every resolution = 10 m)
DEFAULTS: Mapping[int | None, Default] = {
    60: Default(4.0, 30),
    20: Default(4.0, 60),
    10: Default(8.0, 120),
    None: Default(8.0, 120),
}
DEFAULTS_SOURCE = (
    "defaults, not measurements: 60 m = 4 GB and ~30 min per scene (the lab how-to: 'each image "
    "takes 4 GB', ~30 min); 20 m (~60 min, 4 GB) and 10 m (~120 min, 8 GB: 9x and 36x the pixels "
    "of 60 m) are s2kit's assumptions; timeout = 2 x the typical time, walltime = timeout + 5 min"
)
HALF_GB = 0.5
ROUND_MINUTES = 5


def _up(value: float, step: float) -> float:
    """*value* rounded up to a multiple of *step* (a float error of 1e-9 is not a step)."""
    return math.ceil(value / step - 1e-9) * step


@dataclass
class Proposal:
    """The requests one sizing group needs."""

    key: SizingKey
    basis: str  # "measured" | "defaults"
    measured: int  # done scenes with a resources record in the group
    memory_per_task_gb: float
    cores_per_task: int
    timeout_minutes: int
    walltime_minutes: int
    why: list[str] = field(default_factory=list)
    stats: GroupStats | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.key.label,
            "resolution": self.key.resolution,
            "version": self.key.version,
            "basis": self.basis,
            "measured": self.measured,
            "memory_per_task_gb": self.memory_per_task_gb,
            "cores_per_task": self.cores_per_task,
            "timeout_minutes": self.timeout_minutes,
            "walltime": _hhmm(self.walltime_minutes),
            "why": self.why,
        }


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _from_defaults(key: SizingKey, cores: int, measured: int, min_scenes: int) -> Proposal:
    d = DEFAULTS.get(key.resolution, DEFAULTS[None])
    timeout = 2 * d.minutes
    why = [
        f"{measured} of the {min_scenes} measured done scene(s) needed: {DEFAULTS_SOURCE}",
        f"cores_per_task stays {cores} (nothing measured)",
    ]
    return Proposal(
        key=key,
        basis="defaults",
        measured=measured,
        memory_per_task_gb=d.memory_gb,
        cores_per_task=cores,
        timeout_minutes=timeout,
        walltime_minutes=int(_up(timeout + WALLTIME_MARGIN_MINUTES, ROUND_MINUTES)),
        why=why,
    )


def _from_measurements(key: SizingKey, g: GroupStats, cores: int, margin: float) -> Proposal:
    why: list[str] = []
    grow = 1.0 + margin
    # memory: p95 of the peak x (1 + margin), up to 0.5 GB
    if g.peak_mb is not None:
        p95_gb = g.peak_mb["p95"] / 1024.0
        memory = min(float(MAX_MEMORY_GB), max(HALF_GB, _up(p95_gb * grow, HALF_GB)))
        why.append(
            f"memory_per_task_gb {memory:g} = p95 peak {p95_gb:.2f} GB x {grow:g}, rounded up to 0.5 GB"
            + (
                f" (max {g.peak_mb['max'] / 1024:.2f} GB is above it: such a scene would be killed)"
                if g.peak_mb["max"] / 1024.0 > memory
                else ""
            )
        )
    else:
        memory = DEFAULTS.get(key.resolution, DEFAULTS[None]).memory_gb
        why.append(f"memory_per_task_gb {memory:g}: no peak memory recorded, the default")
    # cores: fewer only when the given ones mostly idled (busy < 1.5 of N > 1: one core)
    given = max(g.cores) if g.cores else cores
    proposed_cores = given
    slower = 1.0  # how much longer a scene may take on the proposed cores
    eff_text = f"{g.cpu_efficiency * 100:.0f} %" if g.cpu_efficiency is not None else "-"
    if g.busy_cores is not None and given > 1 and g.busy_cores < 1.5:
        proposed_cores = 1
        slower = max(1.0, g.busy_cores)
        why.append(
            f"cores_per_task 1: Sen2Cor kept {g.busy_cores:.2f} of {given} cores busy on average (CPU "
            f"efficiency {eff_text} < 1.5/{given})"
            + (
                f"; on one core a scene may take up to {slower:.2f}x as long: the timeout below allows it"
                if slower > 1.0
                else ""
            )
            + "; measure again after the change"
        )
    elif g.busy_cores is not None:
        why.append(
            f"cores_per_task {given}: {g.busy_cores:.2f} of {given} core(s) busy (CPU efficiency "
            f"{eff_text}); more cores are never proposed (a measurement with N cores says nothing "
            "about N + 1)"
        )
    # timeout and walltime: p95 of the wall x (1 + margin); walltime = timeout + staging margin
    if g.wall_s is not None:
        p95_min = g.wall_s["p95"] / 60.0
        timeout = int(
            min(
                MAX_MINUTES - WALLTIME_MARGIN_MINUTES,
                max(MIN_TIMEOUT_MINUTES, _up(p95_min * slower * grow, 1)),
            )
        )
        scaled = f" x {slower:.2f} (fewer cores)" if slower > 1.0 else ""
        why.append(
            f"timeout_minutes {timeout} = p95 wall {p95_min:.1f} min{scaled} x {grow:g}, "
            "rounded up to a minute"
        )
    else:
        timeout = 2 * DEFAULTS.get(key.resolution, DEFAULTS[None]).minutes
        why.append(f"timeout_minutes {timeout}: no wall time recorded, the default")
    walltime = int(min(MAX_MINUTES, _up(timeout + WALLTIME_MARGIN_MINUTES, ROUND_MINUTES)))
    why.append(
        f"walltime {_hhmm(walltime)} = timeout + {WALLTIME_MARGIN_MINUTES} min (staging, publishing, "
        "validation), rounded up to 5 min"
    )
    if len(g.cores) > 1:
        why.append(f"the scenes ran with different core counts {g.cores}: the largest is the basis")
    return Proposal(
        key=key,
        basis="measured",
        measured=g.scenes,
        memory_per_task_gb=memory,
        cores_per_task=proposed_cores,
        timeout_minutes=timeout,
        walltime_minutes=walltime,
        why=why,
        stats=g,
    )


@dataclass
class Advice:
    """What ``s2kit advise`` prints: one proposal per group, the snippet, waste and warnings."""

    run_dir: str
    config: str | None
    margin: float
    min_scenes: int
    current: dict[str, Any]
    proposals: list[Proposal]
    snippet: str
    updates: dict[str, dict[str, Any]]  # table -> key -> proposed value (what the snippet says)
    waste: dict[str, Any]
    warnings: list[str]
    notes: list[str]

    @property
    def basis(self) -> str:
        return "measured" if all(p.basis == "measured" for p in self.proposals) else "defaults"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": self.run_dir,
            "config": self.config,
            "margin": self.margin,
            "min_scenes": self.min_scenes,
            "percentiles": PERCENTILE_METHOD,
            "basis": self.basis,
            "current": self.current,
            "proposals": [p.to_dict() for p in self.proposals],
            "updates": self.updates,
            "snippet": self.snippet,
            "waste": self.waste,
            "warnings": self.warnings,
            "notes": self.notes,
        }


def _groups_planned(cfg: BatchConfig, rd: RunDir) -> list[SizingKey]:
    """The sizing groups of the plan's scenes (the config's own when there is no plan yet)."""
    keys: set[SizingKey] = set()
    if rd.plan_file.is_file():
        keys = {sizing_key(cfg, e) for e in rd.read_plan() if e.decision != "skipped"}
    return sorted(keys or {sizing_key(cfg, None)}, key=lambda k: (k.resolution or 0, k.version or ""))


def _waste(rep: ResourceReport, proposal_gb: float) -> dict[str, Any]:
    ch = rep.charged()
    out: dict[str, Any] = {"attempts": ch["attempts"]}
    if ch["with_peak"]:
        reserved, used = ch["gb_hours_reserved_with_peak"], ch["gb_hours_used"]
        share = (reserved - used) / reserved if reserved > 0 else 0.0
        scale = proposal_gb / rep.memory_per_task_gb if rep.memory_per_task_gb > 0 else 0.0
        out["memory"] = {
            "gb_hours_reserved": reserved,
            "gb_hours_used_at_peak": used,
            "unused_share": round(share, 3),
            "gb_hours_with_proposal": round(reserved * scale, 3),
        }
    if ch["attempts"] and ch["core_hours"] > 0:
        out["cores"] = {
            "core_hours_given": ch["core_hours"],
            "cpu_hours_used": ch["cpu_hours_used"],
            "idle_share": round(max(0.0, ch["core_hours"] - ch["cpu_hours_used"]) / ch["core_hours"], 3),
        }
    return out


def advise_run(
    cfg: BatchConfig,
    rd: RunDir,
    *,
    margin: float = 0.2,
    min_scenes: int = 10,
    resources: ResourceReport | None = None,
) -> Advice:
    """Proposed ``[scheduler]`` and ``[sen2cor]`` values for the run *rd* of config *cfg*."""
    if not (math.isfinite(margin) and 0 <= margin <= 10):
        raise InputError(f"expected a margin from 0 to 10 (0.2 = 20 %), found {margin}")
    if min_scenes < 1:
        raise InputError(f"expected at least 1 scene before measuring, found min_scenes {min_scenes}")
    sched = cfg.scheduler
    rep = resources
    if rep is None and rd.plan_file.is_file():
        rep = run_resources(rd, cfg)
    proposals: list[Proposal] = []
    for key in _groups_planned(cfg, rd):
        g = rep.groups.get(key) if rep is not None else None
        if g is not None and g.scenes >= min_scenes:
            proposals.append(_from_measurements(key, g, sched.cores_per_task, margin))
        else:
            proposals.append(_from_defaults(key, sched.cores_per_task, g.scenes if g else 0, min_scenes))

    memory = max(p.memory_per_task_gb for p in proposals)
    cores = max(p.cores_per_task for p in proposals)
    timeout = max(p.timeout_minutes for p in proposals)
    walltime = max(p.walltime_minutes for p in proposals)
    updates: dict[str, dict[str, Any]] = {
        "scheduler": {"cores_per_task": cores, "memory_per_task_gb": memory, "walltime": _hhmm(walltime)},
        "sen2cor": {"timeout_minutes": timeout},
    }
    basis = (
        f"p95 of {sum(p.measured for p in proposals)} measured done scene(s) + {margin * 100:g} % margin"
        if all(p.basis == "measured" for p in proposals)
        else "defaults where fewer than --min-scenes are measured (see the lines above)"
    )
    where = printable(display_path(rd.path))
    snippet = "\n".join(
        [
            f"# s2kit advise for {where}: {basis}",
            "# replace these keys in s2kit.toml, then `s2kit plan` again (workers use the plan's snapshot)",
            "[scheduler]",
            f"cores_per_task = {cores}",
            f"memory_per_task_gb = {memory:g}",
            f'walltime = "{_hhmm(walltime)}"',
            "",
            "[sen2cor]",
            f"timeout_minutes = {timeout}",
        ]
    )

    warnings: list[str] = []
    notes: list[str] = []
    if len(proposals) > 1:
        notes.append(
            "one [scheduler] table serves every group: the snippet takes the largest value of each key"
        )
    for p in proposals:
        g = p.stats
        if g is None:
            continue
        label = f" ({p.key.label})" if len(proposals) > 1 else ""
        if g.peak_mb is not None and sched.memory_per_task_gb * 1024.0 < g.peak_mb["p95"]:
            warnings.append(
                f"memory_per_task_gb = {sched.memory_per_task_gb:g} is below the observed p95 peak "
                f"{g.peak_mb['p95'] / 1024:.2f} GB{label}: more than 5 % of scenes risk being killed "
                "for memory"
            )
        if g.wall_s is not None:
            p95_min = g.wall_s["p95"] / 60.0
            if cfg.sen2cor.timeout_minutes < p95_min:
                warnings.append(
                    f"sen2cor.timeout_minutes = {cfg.sen2cor.timeout_minutes:g} is below the observed p95 "
                    f"wall {p95_min:.1f} min{label}: more than 5 % of scenes end 'timeout'"
                )
            if sched.kind != "local" and sched.walltime_minutes < p95_min + WALLTIME_MARGIN_MINUTES:
                warnings.append(
                    f"scheduler.walltime = {sched.walltime!r} is below the observed p95 wall "
                    f"{p95_min:.1f} min + {WALLTIME_MARGIN_MINUTES} min{label}: the scheduler will kill "
                    "scenes ('walltime')"
                )
    if rep is not None:
        for kind in SIZE_REASONS:
            n = rep.failure_kinds.get(kind, 0)
            if n:
                what = {"oom": "memory", "walltime": "walltime", "timeout": "sen2cor.timeout_minutes"}[kind]
                warnings.append(
                    f"{n} scene(s) failed '{kind}': their {what} need is above the request and not in the "
                    "p95 of the done scenes; raise it beyond the proposal for `s2kit resubmit --failed`"
                )
        if rep.without_resources:
            notes.append(f"{rep.without_resources} done scene(s) have no resources record (an older s2kit)")
        if rep.ignored_values:
            notes.append(f"{rep.ignored_values} resources value(s) ignored (not a finite number in range)")
    if sched.kind == "local":
        notes.append("scheduler kind 'local': memory and walltime are not enforced here, only on a cluster")
    waste = _waste(rep, memory) if rep is not None else {"attempts": 0}
    return Advice(
        run_dir=str(rd.path),
        config=str(cfg.source) if cfg.source is not None else None,
        margin=margin,
        min_scenes=min_scenes,
        current={
            "cores_per_task": sched.cores_per_task,
            "memory_per_task_gb": sched.memory_per_task_gb,
            "walltime": sched.walltime,
            "timeout_minutes": cfg.sen2cor.timeout_minutes,
        },
        proposals=proposals,
        snippet=snippet,
        updates=updates,
        waste=waste,
        warnings=warnings,
        notes=notes,
    )


def format_advice(advice: Advice) -> str:
    """The text ``s2kit advise`` prints (WARN lines last, the snippet ready to paste)."""
    c = advice.current
    lines = [
        f"run dir: {printable(display_path(advice.run_dir))}",
        f"current: cores_per_task {c['cores_per_task']}, memory_per_task_gb {c['memory_per_task_gb']:g}, "
        f"walltime {c['walltime']}, sen2cor.timeout_minutes {c['timeout_minutes']:g}",
    ]
    for p in advice.proposals:
        head = (
            f"{p.key.label}: measured on {p.measured} done scene(s)"
            if p.basis == "measured"
            else f"{p.key.label}: DEFAULTS ({p.measured} measured, {advice.min_scenes} needed)"
        )
        lines.append(head)
        lines += [f"  {w}" for w in p.why]
    w = advice.waste
    mem = w.get("memory")
    if mem:
        lines.append(
            f"memory: {mem['gb_hours_reserved']:.2f} GB-hours reserved for {w['attempts']} measured "
            f"attempt(s), {mem['gb_hours_used_at_peak']:.2f} used at peak: "
            f"{mem['unused_share'] * 100:.0f} % of the reservation unused; "
            f"with the proposal {mem['gb_hours_with_proposal']:.2f} GB-hours"
        )
    cores = w.get("cores")
    if cores:
        lines.append(
            f"cores: {cores['core_hours_given']:.2f} core-hours given, "
            f"{cores['cpu_hours_used']:.2f} CPU-hours used: {cores['idle_share'] * 100:.0f} % idle"
        )
    lines += [f"note: {n}" for n in advice.notes]
    lines += ["", advice.snippet, ""]
    lines += [f"WARN: {x}" for x in advice.warnings]
    return "\n".join(lines).rstrip("\n")


# --------------------------------------------------------------------------- walltime extension
@dataclass
class Extension:
    """What happened to one job of the run."""

    scheduler: str
    job_id: str
    outcome: str  # extended | refused | failed | finished | unknown | unsupported | not-longer
    message: str

    def to_dict(self) -> dict[str, str]:
        return {
            "scheduler": self.scheduler,
            "job_id": self.job_id,
            "outcome": self.outcome,
            "message": self.message,
        }


#: outcomes that make ``extend-walltime`` exit 1
FAILED_OUTCOMES = frozenset({"refused", "failed", "unknown", "unsupported"})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def extend_run_walltime(
    cfg: BatchConfig,
    rd: RunDir,
    minutes: int,
    *,
    job: str | None = None,
    schedulers: Mapping[str, Scheduler] | None = None,
) -> list[Extension]:
    """Set the walltime of every queued or running job of *rd* (or only *job*) to *minutes*.

    Finished jobs are never touched. The job's record in ``jobs.jsonl`` gains
    ``walltime_minutes`` (and ``walltime_set``, the UTC time) once the scheduler accepted it.
    """
    from .schedulers import SchedulerError, SchedulerUnavailable, WalltimeRefused, get_scheduler

    rd.require()
    records: Sequence[JobRecord] = rd.read_jobs()
    if job is not None:
        records = [r for r in records if r.job_id == job]
        if not records:
            raise InputError(
                f"expected a job of this run (jobs.jsonl), found none with id {printable(job)!r}; "
                "`s2kit status` lists the run's jobs",
                rd.jobs_file,
            )
    try:  # the walltime the jobs were submitted with (submit refuses a config != this snapshot)
        submitted: int | None = rd.config().scheduler.walltime_minutes
    except S2kitError:
        submitted = None
    out: list[Extension] = []
    for kind in sorted({r.scheduler for r in records}):
        recs = [r for r in records if r.scheduler == kind]
        if kind not in ("lsf", "slurm"):
            out += [
                Extension(kind, r.job_id, "unsupported", f"{kind} jobs have no walltime to extend")
                for r in recs
            ]
            continue
        try:
            sched = (schedulers or {}).get(kind) or get_scheduler(kind)
            states = sched.query(recs)
        except SchedulerError as exc:
            out += [
                Extension(kind, r.job_id, "unknown", f"not changed: the scheduler could not be asked ({exc})")
                for r in recs
            ]
            continue
        done: set[str] = set()
        for r in recs:
            if r.job_id in done:
                continue
            done.add(r.job_id)
            st = states.get(r.job_id)
            state = st.state if st is not None else "unknown"
            if state != "active":
                why = "finished" if state in ("ended", "gone") else "unknown"
                text = (
                    "not changed (a finished job is never touched)"
                    if why == "finished"
                    else "not changed: the scheduler did not say whether it is still queued or running"
                )
                out.append(Extension(kind, r.job_id, why, text))
                continue
            recorded = r.extra.get("walltime_minutes")
            recorded = recorded if isinstance(recorded, int) and not isinstance(recorded, bool) else 0
            # the longest the job may have: what submit gave it (the snapshot), an extension
            # recorded since, the config given now; a smaller one (a TOML edited since submit, a
            # hand-edited jobs.jsonl) must never make s2kit SHORTEN a running job's walltime
            current = max(recorded, submitted or 0, cfg.scheduler.walltime_minutes)
            if minutes <= current:
                out.append(
                    Extension(
                        kind,
                        r.job_id,
                        "not-longer",
                        f"not changed: {_hhmm(minutes)} is not longer than its walltime {_hhmm(current)}",
                    )
                )
                continue
            try:
                sched.extend_walltime(r.job_id, minutes)
            except WalltimeRefused as exc:
                out.append(Extension(kind, r.job_id, "refused", exc.message))
                continue
            except SchedulerUnavailable as exc:
                out.append(Extension(kind, r.job_id, "unknown", f"not changed: {exc.message}"))
                continue
            except SchedulerError as exc:
                out.append(Extension(kind, r.job_id, "failed", exc.message))
                continue
            rd.update_job(kind, r.job_id, {"walltime_minutes": minutes, "walltime_set": _now()})
            out.append(
                Extension(kind, r.job_id, "extended", f"walltime {_hhmm(current)} -> {_hhmm(minutes)}")
            )
    return out


def format_extensions(results: Sequence[Extension]) -> str:
    if not results:
        return "extend-walltime: the run has no submitted job"
    return "\n".join(f"{r.scheduler} job {r.job_id}: {r.outcome}: {r.message}" for r in results)
