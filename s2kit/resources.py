"""What the scenes of a run used: wall time, CPU, memory (``s2kit status --resources``, the report).

The worker measures each attempt's Sen2Cor process group and writes a ``resources`` record into
the scene's state file and its provenance (keys: ``wall_s``, ``cpu_user_s``, ``cpu_sys_s``,
``cpu_s``, ``peak_rss_mb``, ``rss_samples``, ``cores``, ``node``, ``max_rss_child_mb``). This
module only reads them:

* **values** -- a scene's record comes from its state file, else (a done scene) from
  ``provenance/<scene>.json``; runs of an older s2kit have none (counted, never guessed). A value
  that is not a finite number in its range (nan, inf, negative, a bool, more than a year of wall
  time or 16 TiB of memory: a torn or hostile file) is ignored and counted. A scene's **peak
  memory** is the larger of ``peak_rss_mb`` (the summed RSS of the process group, sampled: a
  short spike between samples can be missed) and ``max_rss_child_mb`` (``ru_maxrss`` of the
  largest child: exact, but one process). ``cpu_s`` missing = ``cpu_user_s + cpu_sys_s``.
* **statistics** -- over the *done* scenes (finished work is what a request must hold): median,
  p95 and max by the **nearest-rank** method (:data:`PERCENTILE_METHOD`), per tile, per sizing
  group (:class:`SizingKey`) and overall. **CPU efficiency** = sum of CPU seconds / sum of
  (wall seconds x cores given); **busy cores** = sum of CPU seconds / sum of wall seconds.
* **charged** -- what the group pays is the request, not the use: **core-hours** = sum over the
  measured attempts (done and failed, the last recorded attempt of each scene) of wall x cores
  given, and **GB-hours reserved** = wall x ``memory_per_task_gb``, against CPU-hours and GB-hours
  used. A node-hour figure would need the node's size; these are what LSF/Slurm fair share count.
* **left** -- an *estimate*: todo, pending, failed and stale scenes x the median wall x cores,
  plus the rest of the median for each running scene.
* **running** -- each running scene's time since its attempt started (state ``started``) against
  the job's walltime (the config's, or the one ``s2kit extend-walltime`` recorded for the job).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import S2kitError
from .provenance import Provenance
from .runs import RunDir, SceneState

if TYPE_CHECKING:
    from .config import BatchConfig, Sen2CorConfig
    from .status import StatusReport

__all__ = [
    "PERCENTILE_METHOD",
    "GroupStats",
    "Measured",
    "ResourceReport",
    "SizingKey",
    "clean_resources",
    "format_resources",
    "nearest_rank",
    "run_resources",
    "sizing_key",
    "summarize",
]

PERCENTILE_METHOD = (
    "nearest-rank: the p-th percentile of n sorted values is the value at rank ceil(p/100 x n) "
    "(1-based), always an observed value; the median is the 50th percentile"
)

YEAR_S = 366 * 24 * 3600.0
MAX_MB = 16 * 1024 * 1024.0  # 16 TiB: the config's ceiling for memory_per_task_gb
MAX_CORES = 4096
#: key -> (type, lowest, highest) of the values a resources record may hold
LIMITS: Mapping[str, tuple[type, float, float]] = {
    "wall_s": (float, 0.0, YEAR_S),
    "cpu_user_s": (float, 0.0, YEAR_S * MAX_CORES),
    "cpu_sys_s": (float, 0.0, YEAR_S * MAX_CORES),
    "cpu_s": (float, 0.0, YEAR_S * MAX_CORES),
    "peak_rss_mb": (float, 0.0, MAX_MB),
    "max_rss_child_mb": (float, 0.0, MAX_MB),
    "rss_samples": (int, 0, 1 << 40),
    "cores": (int, 1, MAX_CORES),
}
#: failure reasons that say the request was too small (issue 19): the scheduler killed the task
#: for memory or walltime, or s2kit's own Sen2Cor timeout ended the attempt
SIZE_REASONS = ("oom", "walltime", "timeout")
#: scene states whose work is still to do (estimated with the median wall time)
LEFT = ("todo", "pending", "failed", "stale")


# --------------------------------------------------------------------------- values
def clean_resources(doc: Any) -> tuple[dict[str, Any], int]:
    """The usable values of one ``resources`` record and how many values were ignored.

    A missing key is not counted; a present value that is not a finite number in
    :data:`LIMITS` (or, for ``node``, a string) is. Not a dict at all: ({}, 1).
    """
    if not isinstance(doc, Mapping):
        return {}, 0 if doc is None else 1
    out: dict[str, Any] = {}
    ignored = 0
    for key, (kind, low, high) in LIMITS.items():
        if key not in doc or doc[key] is None:
            continue
        value = doc[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and kind is int and isinstance(value, float):
            ok = value.is_integer()
        if ok and not low <= value <= high:  # NaN and inf fail too; a huge int is never a float
            ok = False
        if ok:
            out[key] = kind(value)
        else:
            ignored += 1
    node = doc.get("node")
    if isinstance(node, str) and node.isprintable() and len(node) <= 255:
        out["node"] = node
    elif node is not None:
        ignored += 1
    if "cpu_s" not in out and "cpu_user_s" in out and "cpu_sys_s" in out:
        out["cpu_s"] = out["cpu_user_s"] + out["cpu_sys_s"]
    return out, ignored


def nearest_rank(values: Sequence[float], p: float) -> float:
    """The *p*-th percentile (0 < p <= 100) of *values* by the nearest-rank method."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered) - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def _stat(values: Sequence[float], digits: int = 3) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": round(nearest_rank(values, 50), digits),
        "p95": round(nearest_rank(values, 95), digits),
        "max": round(max(values), digits),
    }


# --------------------------------------------------------------------------- grouping
@dataclass(frozen=True, order=True)
class SizingKey:
    """What a scene's request depends on: the Sen2Cor resolution and the version processing it.

    ``resolution`` None = Sen2Cor's default (every resolution: the 10 m run). ``version`` comes
    from the plan entry's ``sen2cor`` (routing, issue 18) and is None before routing exists.
    """

    resolution: int | None
    version: str | None = None

    @property
    def label(self) -> str:
        res = "all resolutions" if self.resolution is None else f"{self.resolution} m"
        return res if self.version is None else f"{res}, Sen2Cor {self.version}"


def _sen2cor_for(cfg: BatchConfig, version: str | None) -> Sen2CorConfig:
    """The Sen2Cor settings one version gets (``BatchConfig.sen2cor_for`` once routing exists)."""
    pick = getattr(cfg, "sen2cor_for", None)
    if version is not None and callable(pick):
        try:
            return pick(version)  # type: ignore[no-any-return]
        except (S2kitError, KeyError, ValueError):
            pass
    return cfg.sen2cor


def sizing_key(cfg: BatchConfig | None, entry: Any) -> SizingKey:
    """The sizing group of a plan entry (its routed version: ``entry.sen2cor``, when present)."""
    version = getattr(entry, "sen2cor", None)
    version = version if isinstance(version, str) else None
    if cfg is None:
        return SizingKey(60, version)
    return SizingKey(_sen2cor_for(cfg, version).resolution, version)


# --------------------------------------------------------------------------- one scene
@dataclass
class Measured:
    """One scene's cleaned resources record (its last recorded attempt)."""

    scene: str
    tile: str
    key: SizingKey
    state: str  # done | failed (state file) or done (provenance)
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_mb: float | None = None
    cores: int | None = None
    node: str | None = None


def _measured(scene: str, tile: str, key: SizingKey, state: str, values: Mapping[str, Any]) -> Measured:
    peaks = [values[k] for k in ("peak_rss_mb", "max_rss_child_mb") if k in values]
    return Measured(
        scene=scene,
        tile=tile,
        key=key,
        state=state,
        wall_s=values.get("wall_s"),
        cpu_s=values.get("cpu_s"),
        peak_mb=max(peaks) if peaks else None,
        cores=values.get("cores"),
        node=values.get("node"),
    )


# --------------------------------------------------------------------------- statistics
@dataclass
class GroupStats:
    """Statistics of the done scenes of one group (a tile, a sizing group, the whole run)."""

    scenes: int
    wall_s: dict[str, float] | None
    cpu_s: dict[str, float] | None
    peak_mb: dict[str, float] | None
    cpu_efficiency: float | None  # sum CPU / sum (wall x cores)
    busy_cores: float | None  # sum CPU / sum wall
    cores: list[int] = field(default_factory=list)  # the core counts the scenes were given

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenes": self.scenes,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "peak_mb": self.peak_mb,
            "cpu_efficiency": self.cpu_efficiency,
            "busy_cores": self.busy_cores,
            "cores": self.cores,
        }


def summarize(rows: Iterable[Measured], default_cores: int = 1) -> GroupStats:
    """Median / p95 / max (nearest rank) of wall, CPU and peak memory, and the CPU efficiency."""
    rows = list(rows)
    walls = [r.wall_s for r in rows if r.wall_s is not None]
    cpus = [r.cpu_s for r in rows if r.cpu_s is not None]
    peaks = [r.peak_mb for r in rows if r.peak_mb is not None]
    both = [r for r in rows if r.wall_s is not None and r.cpu_s is not None and r.wall_s > 0]
    wall_sum = sum(r.wall_s for r in both if r.wall_s is not None)
    cpu_sum = sum(r.cpu_s for r in both if r.cpu_s is not None)
    slots = sum((r.wall_s or 0.0) * (r.cores or default_cores) for r in both)
    return GroupStats(
        scenes=len(rows),
        wall_s=_stat(walls),
        cpu_s=_stat(cpus),
        peak_mb=_stat(peaks, 1),
        cpu_efficiency=round(cpu_sum / slots, 3) if slots > 0 else None,
        busy_cores=round(cpu_sum / wall_sum, 3) if wall_sum > 0 else None,
        cores=sorted({r.cores or default_cores for r in rows}),
    )


@dataclass
class ResourceReport:
    """What the scenes of a run used (:func:`run_resources`)."""

    run_dir: str
    kind: str | None  # scheduler kind of the config
    cores_per_task: int
    memory_per_task_gb: float
    walltime_minutes: int | None
    done: int
    measured: list[Measured]  # done and failed scenes with a resources record
    without_resources: int  # done scenes without one (an older s2kit)
    ignored_values: int
    overall: GroupStats | None
    tiles: dict[str, GroupStats]
    groups: dict[SizingKey, GroupStats]
    failure_kinds: dict[str, int]
    left: dict[str, Any]
    running: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def done_measured(self) -> list[Measured]:
        return [m for m in self.measured if m.state == "done"]

    def charged(self) -> dict[str, Any]:
        """Core-hours and GB-hours the measured attempts were given, and what they used."""
        rows = [m for m in self.measured if m.wall_s is not None]
        hours = [(m, (m.wall_s or 0.0) / 3600.0) for m in rows]
        core_h = sum(h * (m.cores or self.cores_per_task) for m, h in hours)
        cpu_h = sum((m.cpu_s or 0.0) / 3600.0 for m, _ in hours if m.cpu_s is not None)
        gb_h = sum(h * self.memory_per_task_gb for _, h in hours)
        used_gb_h = sum(h * (m.peak_mb or 0.0) / 1024.0 for m, h in hours if m.peak_mb is not None)
        with_peak = sum(1 for m, _ in hours if m.peak_mb is not None)
        return {
            "attempts": len(rows),
            "core_hours": round(core_h, 3),
            "cpu_hours_used": round(cpu_h, 3),
            "gb_hours_reserved": round(gb_h, 3),
            "gb_hours_used": round(used_gb_h, 3),
            "gb_hours_reserved_with_peak": round(
                sum(h * self.memory_per_task_gb for m, h in hours if m.peak_mb is not None), 3
            ),
            "with_peak": with_peak,
            "what": "core-hours = wall x cores given; GB-hours reserved = wall x memory_per_task_gb; "
            "used = CPU time and wall x peak memory (the last recorded attempt of each scene)",
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": self.run_dir,
            "percentiles": PERCENTILE_METHOD,
            "request": {
                "kind": self.kind,
                "cores_per_task": self.cores_per_task,
                "memory_per_task_gb": self.memory_per_task_gb,
                "walltime_minutes": self.walltime_minutes,
            },
            "done": self.done,
            "measured_done": len(self.done_measured),
            "measured_failed": len(self.measured) - len(self.done_measured),
            "done_without_resources": self.without_resources,
            "ignored_values": self.ignored_values,
            "overall": self.overall.to_dict() if self.overall else None,
            "tiles": {t: g.to_dict() for t, g in self.tiles.items()},
            "groups": {k.label: g.to_dict() for k, g in self.groups.items()},
            "failure_kinds": self.failure_kinds,
            "charged": self.charged(),
            "left": self.left,
            "running": self.running,
            "notes": self.notes,
        }


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time of a state/provenance file (``Z`` or an offset; naive = UTC); None
    when absent or unreadable."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def reason_kind(reason: str | None) -> str | None:
    """The stable prefix of a failure reason (``oom: ...`` -> ``oom``)."""
    if not reason:
        return None
    return reason.split(":", 1)[0].strip() or None


def _snapshot(rd: RunDir) -> BatchConfig | None:
    try:
        return rd.config()
    except S2kitError:
        return None


def _job_walltimes(rd: RunDir) -> dict[tuple[str, str], int]:
    """(scheduler, job id) -> the walltime ``s2kit extend-walltime`` recorded for that job."""
    out: dict[tuple[str, str], int] = {}
    try:
        records = rd.read_jobs()
    except S2kitError:
        return out
    for rec in records:
        minutes = rec.extra.get("walltime_minutes")
        if isinstance(minutes, int) and not isinstance(minutes, bool) and minutes > 0:
            out[(rec.scheduler, rec.job_id)] = minutes
    return out


def run_resources(
    rd: RunDir,
    cfg: BatchConfig | None = None,
    report: StatusReport | None = None,
    now: datetime | None = None,
) -> ResourceReport:
    """What the scenes of *rd* used, per tile, per sizing group and overall.

    *cfg* gives the request (cores, memory, walltime; default: the run's config.json snapshot);
    *report* the scenes' statuses (default: :func:`s2kit.status.run_status` without asking the
    scheduler). Nothing here fails on a missing or odd resources record.
    """
    from .status import run_status

    if cfg is None:
        cfg = _snapshot(rd)
    if report is None:
        report = run_status(cfg, rd, query=False)
    now = now or datetime.now(timezone.utc)
    plan = {e.scene: e for e in rd.read_plan()}
    states = rd.read_states()
    cores = cfg.scheduler.cores_per_task if cfg is not None else 1
    memory = cfg.scheduler.memory_per_task_gb if cfg is not None else 0.0

    measured: list[Measured] = []
    without = ignored = 0
    kinds: Counter[str] = Counter()
    for s in report.scenes:
        st: SceneState | None = states.get(s.scene)
        key = sizing_key(cfg, plan.get(s.scene))
        tile = s.tile or "?"
        if s.status == "failed" and st is not None:
            kind = reason_kind(st.reason)
            if kind in SIZE_REASONS:
                kinds[kind] += 1
        if s.status not in ("done", "failed"):
            continue
        entry = plan.get(s.scene)
        if st is None and entry is not None and entry.decision == "done":
            continue  # published before this run's plan: nothing of it was run here
        doc: Any = getattr(st, "resources", None) if st is not None and st.state == s.status else None
        if doc is None and s.status == "done":
            prov = Provenance.read(rd.provenance_file(s.scene))
            doc = prov.get("resources") if prov is not None else None
        values, bad = clean_resources(doc)
        ignored += bad
        if not any(k in values for k in ("wall_s", "cpu_s", "peak_rss_mb", "max_rss_child_mb")):
            if s.status == "done":
                without += 1
            continue
        measured.append(_measured(s.scene, tile, key, s.status, values))

    done_rows = [m for m in measured if m.state == "done"]
    by_tile: dict[str, list[Measured]] = {}
    by_key: dict[SizingKey, list[Measured]] = {}
    for m in done_rows:
        by_tile.setdefault(m.tile, []).append(m)
        by_key.setdefault(m.key, []).append(m)
    overall = summarize(done_rows, cores) if done_rows else None

    # what is left, as an estimate from the median wall of the done scenes
    counts = report.counts
    left_n = sum(counts.get(k, 0) for k in LEFT)
    median_wall = overall.wall_s["median"] if overall and overall.wall_s else None
    walltimes = _job_walltimes(rd)
    running: list[dict[str, Any]] = []
    still = 0.0
    for s in report.by_status("running"):
        st = states.get(s.scene)
        started = parse_time(st.started if st else None)
        elapsed = max(0.0, (now - started).total_seconds()) if started else None  # a clock ahead: 0
        wall_min = cfg.scheduler.walltime_minutes if cfg is not None else None
        if s.job:
            sched, _, rest = s.job.partition(" ")
            wall_min = walltimes.get((sched, rest.split("[", 1)[0]), wall_min)
        row: dict[str, Any] = {
            "scene": s.scene,
            "tile": s.tile,
            "job": s.job,
            "host": s.host,
            "started": st.started if st else None,
            "elapsed_s": round(elapsed, 1) if elapsed is not None else None,
            "walltime_minutes": wall_min,
            "walltime_used": round(elapsed / (wall_min * 60.0), 3)
            if elapsed is not None and wall_min
            else None,
        }
        running.append(row)
        if median_wall is not None:
            still += max(0.0, median_wall - (elapsed or 0.0))
    left: dict[str, Any] = {"scenes": left_n, "running": len(running), "estimate": median_wall is not None}
    if median_wall is not None:
        seconds = left_n * median_wall + still
        left.update(
            median_wall_s=median_wall,
            core_hours=round(seconds * cores / 3600.0, 3),
            gb_hours=round(seconds * memory / 3600.0, 3),
            what=f"estimate: {left_n} scene(s) left (todo, pending, failed, stale) x median wall "
            f"{median_wall / 60:.1f} min x {cores} core(s), plus the rest of the median for "
            f"{len(running)} running",
        )

    notes = []
    if cfg is None:
        notes.append("no readable config.json snapshot: request values unknown (cores 1, memory 0 assumed)")
    if cfg is not None and cfg.scheduler.kind == "local":
        notes.append("scheduler kind 'local': the walltime is not enforced")
    return ResourceReport(
        run_dir=str(rd.path),
        kind=cfg.scheduler.kind if cfg is not None else None,
        cores_per_task=cores,
        memory_per_task_gb=memory,
        walltime_minutes=cfg.scheduler.walltime_minutes if cfg is not None else None,
        done=counts.get("done", 0),
        measured=measured,
        without_resources=without,
        ignored_values=ignored,
        overall=overall,
        tiles={t: summarize(rows, cores) for t, rows in sorted(by_tile.items())},
        groups={
            k: summarize(rows, cores) for k, rows in sorted(by_key.items(), key=lambda kv: _key_order(kv[0]))
        },
        failure_kinds=dict(sorted(kinds.items())),
        left=left,
        running=running,
        notes=notes,
    )


def _key_order(key: SizingKey) -> tuple[int, str]:
    return (key.resolution or 0, key.version or "")


# --------------------------------------------------------------------------- text
def _mmss(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = seconds / 60.0
    return f"{minutes:.1f}"


def _triple(stat: Mapping[str, float] | None, scale: float, fmt: str) -> str:
    if not stat:
        return "-"
    return "/".join(format(stat[k] / scale, fmt) for k in ("median", "p95", "max"))


def _row(name: str, g: GroupStats) -> str:
    eff = f"{g.cpu_efficiency * 100:.0f} %" if g.cpu_efficiency is not None else "-"
    busy = f"{g.busy_cores:.2f}" if g.busy_cores is not None else "-"
    return (
        f"  {name:<24} {g.scenes:>5}  {_triple(g.wall_s, 60, '.1f'):>20}  {_triple(g.cpu_s, 60, '.1f'):>20}  "
        f"{_triple(g.peak_mb, 1024, '.2f'):>18}  {eff:>6}  {busy:>5}"
    )


def format_resources(rep: ResourceReport) -> str:
    """The ``status --resources`` table (the JSON form is ``rep.to_dict()``)."""
    n_done = len(rep.done_measured)
    lines = [
        f"resources: {n_done} of {rep.done} done scene(s) measured"
        + (f", {len(rep.measured) - n_done} failed attempt(s)" if len(rep.measured) > n_done else "")
        + (
            f"; {rep.without_resources} done without a resources record (older s2kit)"
            if rep.without_resources
            else ""
        )
        + (
            f"; {rep.ignored_values} value(s) ignored (not a finite number in range)"
            if rep.ignored_values
            else ""
        ),
    ]
    if rep.overall is not None:
        lines.append("  percentiles: " + PERCENTILE_METHOD.split(":", 1)[0] + " (median/p95/max)")
        lines.append(
            f"  {'group':<24} {'done':>5}  {'wall min':>20}  {'CPU min':>20}  {'peak GB':>18}  "
            f"{'CPU eff':>6}  {'busy':>5}"
        )
        lines.append(_row("all", rep.overall))
        if len(rep.groups) > 1:
            lines += [_row(k.label, g) for k, g in rep.groups.items()]
        lines += [_row(f"tile {t}", g) for t, g in rep.tiles.items()]
    ch = rep.charged()
    if ch["attempts"]:
        lines.append(
            f"charged: {ch['core_hours']:.2f} core-hours (wall x {rep.cores_per_task} core(s) given) for "
            f"{ch['attempts']} attempt(s), {ch['cpu_hours_used']:.2f} CPU-hours used; memory "
            f"{ch['gb_hours_reserved']:.2f} GB-hours reserved, {ch['gb_hours_used']:.2f} used at peak"
        )
    left = rep.left
    if left.get("estimate"):
        lines.append(
            f"left (estimate): {left['core_hours']:.2f} core-hours for {left['scenes']} scene(s) "
            f"(median wall {left['median_wall_s'] / 60:.1f} min)"
            + (f" and the rest of {left['running']} running" if left["running"] else "")
        )
    elif left["scenes"] or left["running"]:
        lines.append(f"left: {left['scenes']} scene(s), no estimate before a scene with resources is done")
    if rep.failure_kinds:
        shown = ", ".join(f"{n} {k}" for k, n in rep.failure_kinds.items())
        lines.append(f"failed for size: {shown} (`s2kit advise` proposes requests)")
    if rep.running:
        lines.append("running:")
        for r in rep.running:
            wall = r["walltime_minutes"]
            used = f" ({r['walltime_used'] * 100:.0f} %)" if r["walltime_used"] is not None else ""
            limit = f" of walltime {wall // 60:02d}:{wall % 60:02d}{used}" if wall else ""
            elapsed = f"{_mmss(r['elapsed_s'])} min" if r["elapsed_s"] is not None else "unknown time"
            lines.append(f"  {r['scene']}: {elapsed}{limit}" + (f" [{r['job']}]" if r["job"] else ""))
    lines += [f"note: {n}" for n in rep.notes]
    return "\n".join(lines)
