"""Status of every planned scene of a run: ``s2kit status`` (library: :func:`run_status`).

:func:`run_status` (old name :func:`status`) joins the plan, the worker state files and the
scheduler's view of the recorded jobs into one :class:`SceneStatus` per scene
(:data:`STATUSES`); :func:`classify` decides one scene. A state ``running`` is ``stale``
exactly when :func:`s2kit.runs.is_stale` says so (the one definition). A scheduler that
cannot be asked makes its tasks ``unknown``; it never makes status fail.

A scene whose worker died (``stale``) or was stopped by a signal (``failed``, reason
``signal: ...``) in a task the scheduler has finished is ``failed`` with reason ``oom: ...`` or
``walltime: ...`` when the scheduler says it killed the task at its memory or time limit
(:meth:`~s2kit.schedulers.Scheduler.task_end_reasons`: sacct/squeue, bjobs; once the scheduler
forgot the task, the batch system's own line in the task's job log); the reason names where
that came from.
:func:`format_status` is the human-readable form.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import BatchConfig
from .errors import InputError, display_path
from .plan import NO_DEM_NOTE
from .process import pid_alive
from .runs import JobRecord, PlanEntry, RunDir, SceneState, held_flocks, is_stale, lock_held_here, one_line
from .schedulers import ACTIVE, SCHEDULERS, JobStatus, Scheduler, SchedulerUnavailable, get_scheduler
from .schedulers.base import END_REASONS
from .schedulers.local import this_host

__all__ = [
    "STATUSES",
    "SceneStatus",
    "StatusReport",
    "classify",
    "format_status",
    "run_status",
    "status",
]

STATUSES = ("todo", "pending", "running", "stale", "done", "failed", "skipped")


@dataclass
class SceneStatus:
    scene: str
    status: str
    tile: str | None = None
    reason: str | None = None
    log: str | None = None
    attempt: int | None = None
    exit_code: int | None = None
    host: str | None = None
    pid: int | None = None
    job: str | None = None  # "<scheduler> <job id>[<task>]" of the latest job that covers the scene
    task: str | None = None  # that task's scheduler state
    sen2cor: str | None = None  # the Sen2Cor version the plan chose for it (PlanEntry.sen2cor)


@dataclass
class StatusReport:
    run_dir: Path
    scenes: list[SceneStatus]
    jobs: list[dict[str, Any]] = field(default_factory=list)
    scheduler_errors: list[str] = field(default_factory=list)

    @property
    def flat_terrain(self) -> list[str]:
        """Scenes planned with ``sen2cor.dem = "none"`` (not failed): "no DEM: flat terrain"."""
        return [s.scene for s in self.scenes if s.reason == NO_DEM_NOTE]

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(s.status for s in self.scenes)
        return {k: c.get(k, 0) for k in STATUSES}

    @property
    def tiles(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for s in self.scenes:
            out.setdefault(s.tile or "?", Counter())[s.status] += 1
        return {t: {k: c[k] for k in STATUSES if c[k]} for t, c in sorted(out.items())}

    @property
    def versions(self) -> dict[str, dict[str, int]]:
        """Sen2Cor version -> counts per status of the scenes the plan gave it (todo scenes of
        the plan and what became of them; scenes planned done or skipped have no version)."""
        out: dict[str, Counter[str]] = {}
        for s in self.scenes:
            if s.sen2cor:
                out.setdefault(s.sen2cor, Counter())[s.status] += 1
        return {v: {k: c[k] for k in STATUSES if c[k]} for v, c in sorted(out.items(), key=_version_order)}

    @property
    def routed(self) -> bool:
        """More than one Sen2Cor version in the plan (a ``sen2cor.route``)."""
        return len(self.versions) > 1

    @property
    def active(self) -> int:
        c = self.counts
        return c["pending"] + c["running"]

    @property
    def finished(self) -> int:
        c = self.counts
        return c["done"] + c["failed"] + c["skipped"] + c["stale"]

    def by_status(self, *names: str) -> list[SceneStatus]:
        return [s for s in self.scenes if s.status in names]

    def to_dict(self) -> dict[str, Any]:
        def brief(s: SceneStatus) -> dict[str, Any]:
            return {k: v for k, v in asdict(s).items() if k != "status" and v is not None}

        return {
            "run_dir": str(self.run_dir),
            "total": len(self.scenes),
            "counts": self.counts,
            "tiles": self.tiles,
            "failed": [brief(s) for s in self.by_status("failed")],
            "stale": [brief(s) for s in self.by_status("stale")],
            **({"no_dem_flat_terrain": flat} if (flat := self.flat_terrain) else {}),
            **({"sen2cor": self.versions} if self.routed else {}),
            "jobs": self.jobs,
            "scheduler_errors": self.scheduler_errors,
            "scenes": {s.scene: s.status for s in self.scenes},
        }


def _version_order(item: tuple[str, Any]) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in item[0].split("."))


def classify(
    entry: PlanEntry | None,
    state: SceneState | None,
    task: str | None,
    host: str,
    alive: Callable[[int], bool] = pid_alive,
    lock: bool | None = None,
) -> str:
    """One scene's status from its plan decision, worker state and scheduler task state.

    ``task`` is the state of the latest recorded job task covering the scene
    (None when no job covers it): pending | running | done | failed | gone | unknown.
    ``lock`` is True when the scene's lock is seen held (None: not known). A state
    ``running`` is ``stale`` exactly when :func:`s2kit.runs.is_stale` says so.
    """
    if entry is not None and entry.decision == "skipped":
        return "skipped"
    if (entry is not None and entry.decision == "done") or (state is not None and state.state == "done"):
        return "done"
    if task in ACTIVE:
        return str(task)  # queued or running in a live job (a failed scene being retried too)
    if state is None or state.state == "pending":
        return "pending" if task == "unknown" else "todo"
    if state.state == "failed":
        return "failed"
    # state "running": is the worker still there? (one definition: s2kit.runs.is_stale)
    return "stale" if is_stale(state, task=task, host=host, alive=alive, lock=lock) else "running"


def _query(
    records: Sequence[JobRecord], schedulers: Mapping[str, Scheduler] | None
) -> tuple[dict[tuple[str, str], JobStatus], list[str]]:
    out: dict[tuple[str, str], JobStatus] = {}
    errors: list[str] = []
    kinds = sorted({r.scheduler for r in records})
    for kind in kinds:
        recs = [r for r in records if r.scheduler == kind]
        try:
            sched = (schedulers or {}).get(kind) or get_scheduler(kind)
            got = sched.query(recs)
        except SchedulerUnavailable as exc:
            errors.append(f"{kind}: {exc}")
            got = {}
        except Exception as exc:  # noqa: BLE001 - status must not crash on a scheduler's reply
            errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            got = {}
        for r in recs:
            out[(kind, r.job_id)] = got.get(r.job_id) or JobStatus(r.job_id, "unknown", default="unknown")
    return out, errors


_JOB_LOG_TAIL = 64 * 1024


def _log_tail(path: Path) -> str:
    """The last 64 KiB of a job log ("" when it is missing or not a regular file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return ""
        os.lseek(fd, max(0, st.st_size - _JOB_LOG_TAIL), os.SEEK_SET)
        return os.read(fd, _JOB_LOG_TAIL).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


def _scheduler_reasons(
    asks: Sequence[tuple[SceneStatus, JobRecord, int]],
    rd: RunDir,
    schedulers: Mapping[str, Scheduler] | None,
    errors: list[str],
) -> None:
    """Give each (scene, job record, task index) whose worker was killed the scheduler's
    ``oom``/``walltime``: from the scheduler, else from the batch system's lines in the task's
    job log (``jobs/<batch>/<job id>_<index>.log``)."""

    def mark(scene: SceneStatus, end: str, where: str) -> None:
        scene.status = "failed"
        scene.reason = one_line(f"{end}: {END_REASONS[end]} ({where})")

    for kind in sorted({a[1].scheduler for a in asks}):
        mine = [a for a in asks if a[1].scheduler == kind]
        ends: dict[tuple[str, int], str] = {}
        sched = (schedulers or {}).get(kind) or get_scheduler(kind)
        try:
            ends = sched.task_end_reasons(sorted({a[1].job_id for a in mine}))
        except SchedulerUnavailable as exc:
            errors.append(f"{kind}: {exc}")
        except Exception as exc:  # noqa: BLE001 - status must not crash on a scheduler's reply
            errors.append(f"{kind}: {type(exc).__name__}: {exc}")
        for scene, rec, index in mine:
            end = ends.get((rec.job_id, index))
            if end in END_REASONS:
                mark(scene, end, f"{kind} {sched.end_reasons_source}: job {rec.job_id}[{index}]".strip())
                continue
            log = rd.jobs_dir(rec.batch) / f"{rec.job_id}_{index}.log"
            end = sched.log_end_reason(_log_tail(log))
            if end is not None:
                mark(scene, end, f"{kind} job log {display_path(log)}")


def run_status(
    cfg: BatchConfig | None,
    rd: RunDir,
    schedulers: Mapping[str, Scheduler] | None = None,
    query: bool = True,
) -> StatusReport:
    """Join plan, state files and the scheduler's view into one status per planned scene."""
    plan = rd.read_plan()
    states = rd.read_states()
    records = rd.read_jobs()
    host = this_host()

    # which (latest) job task covers each scene
    batches: dict[str, list[str]] = {}
    cover: dict[str, tuple[int, int]] = {}  # scene -> (record index, batch line)
    for n, rec in enumerate(records):
        if rec.batch not in batches:
            try:
                batches[rec.batch] = rd.read_batch(rec.batch)
            except InputError:
                batches[rec.batch] = []
        lines = batches[rec.batch]
        for line in range(rec.first_index, min(rec.first_index + rec.count, len(lines))):
            cover[lines[line]] = (n, line)

    if query and records:
        js, errors = _query(records, schedulers)
    else:
        js = {(r.scheduler, r.job_id): JobStatus(r.job_id, "unknown", default="unknown") for r in records}
        errors = []
    index_base = {k: cls.index_base for k, cls in SCHEDULERS.items()}
    running = [sc for sc, st in states.items() if st.state == "running"]
    held = held_flocks() if running else frozenset()
    locked = {sc for sc in running if lock_held_here(rd.lock_file(sc), held)}

    scenes: list[SceneStatus] = []
    asks: list[tuple[SceneStatus, JobRecord, int]] = []  # worker killed: ask the scheduler why
    for e in plan:
        st = states.get(e.scene)
        task: str | None = None
        job = None
        if e.scene in cover:
            n, line = cover[e.scene]
            rec = records[n]
            t_index = line - rec.first_index + index_base.get(rec.scheduler, 0)
            task = js[(rec.scheduler, rec.job_id)].task(t_index)
            job = f"{rec.scheduler} {rec.job_id}[{t_index}]"
        s = classify(e, st, task, host, lock=True if e.scene in locked else None)
        reason = (st.reason if st is not None and s in ("failed", "stale") else None) or (
            e.reason if s == "skipped" or e.reason == NO_DEM_NOTE else None
        )
        scenes.append(
            SceneStatus(
                scene=e.scene,
                status=s,
                tile=e.mgrs_tile,
                reason=one_line(reason) if reason else None,
                log=st.log if st is not None else None,
                attempt=st.attempt if st is not None else None,
                exit_code=st.exit_code if st is not None else None,
                host=st.host if st is not None and s in ("running", "stale") else None,
                pid=st.pid if st is not None and s in ("running", "stale") else None,
                job=job,
                task=task,
                sen2cor=e.sen2cor,
            )
        )
        if s == "stale" and not scenes[-1].reason:
            scenes[-1].reason = "worker lost: state says running but its job/process is gone"
        killed = s == "stale" or (s == "failed" and (reason or "").startswith("signal:"))
        if killed and query and job is not None and task in ("done", "failed", "gone"):
            asks.append((scenes[-1], rec, t_index))
    if asks:
        _scheduler_reasons(asks, rd, schedulers, errors)

    jobs = []
    for rec in records:
        j = js[(rec.scheduler, rec.job_id)]
        base = index_base.get(rec.scheduler, 0)
        tasks = Counter(j.task(base + i) for i in range(rec.count))
        jobs.append(
            {
                "scheduler": rec.scheduler,
                "job_id": rec.job_id,
                "batch": rec.batch,
                "first_index": rec.first_index,
                "count": rec.count,
                "state": j.state,
                "tasks": dict(sorted(tasks.items())),
                "script": rec.script,
                "submitted": rec.submitted,
                **({"detail": j.detail} if j.detail else {}),
                **({"sen2cor": rec.extra["sen2cor"]} if isinstance(rec.extra.get("sen2cor"), str) else {}),
            }
        )
    return StatusReport(run_dir=rd.path, scenes=scenes, jobs=jobs, scheduler_errors=errors)


#: the library name from before the commands and the library functions were named apart
status = run_status


def _counts_line(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in STATUSES if counts.get(k))


def format_status(report: StatusReport, limit: int = 50) -> str:
    """Human-readable status (the JSON form is ``report.to_dict()``)."""
    c = report.counts
    lines = [
        f"run dir: {display_path(report.run_dir)}",
        f"scenes: {len(report.scenes)}: {_counts_line(c) or 'none'}",
    ]
    if report.tiles:
        lines.append("tiles:")
        lines += [f"  {t:<6} {_counts_line(tc)}" for t, tc in report.tiles.items()]
    routed = report.routed
    if routed:  # one batch, several Sen2Cor versions (sen2cor.route): the count per version
        lines.append("sen2cor:")
        lines += [f"  {v:<6} {_counts_line(vc)}" for v, vc in report.versions.items()]
    if report.jobs:
        lines.append("jobs:")
        for j in report.jobs:
            last = j["first_index"] + j["count"] - 1
            tasks = ", ".join(f"{n} {k}" for k, n in j["tasks"].items())
            version = f" Sen2Cor {j['sen2cor']}" if routed and j.get("sen2cor") else ""
            lines.append(
                f"  {j['scheduler']} {j['job_id']}: batch {j['batch']} "
                f"lines {j['first_index']}-{last}{version}, {j['state']}: {tasks}"
            )
    if report.flat_terrain:
        lines.append(f'{NO_DEM_NOTE}: {len(report.flat_terrain)} scene(s) (sen2cor.dem = "none")')
    for err in report.scheduler_errors:
        lines.append(f"scheduler unreachable: {err} (its tasks are shown as unknown)")
    for name, title in (
        ("failed", "failed"),
        ("stale", "stale (worker lost; `s2kit resubmit --failed` retries)"),
    ):
        items = report.by_status(name)
        if not items:
            continue
        lines.append(f"{title}:")
        for s in items[:limit]:
            extra = (f" Sen2Cor {s.sen2cor}" if routed and s.sen2cor else "") + (
                f" attempt {s.attempt}" if s.attempt else ""
            )
            where = f" on {s.host}:{s.pid}" if name == "stale" and s.host else ""
            lines.append(f"  {s.scene}{extra}{where}: {one_line(s.reason or 'no reason recorded')}")
            if s.log:
                lines.append(f"      log: {display_path(s.log)}")
        if len(items) > limit:
            lines.append(f"  ... and {len(items) - limit} more (--json lists all)")
    return "\n".join(lines)
