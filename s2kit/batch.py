"""Submit, watch and resubmit a planned batch: ``s2kit submit`` / ``status`` / ``resubmit``.

Everything is read from and written to the run directory (:mod:`s2kit.runs`):

* **submit** takes a batch file (default: the one the latest ``plan`` wrote, named
  in ``plan.batch``: ``all``, then ``all-2``, ``all-3``, ...), drops the
  scenes that are done, skipped or already queued/running in a live job, writes
  the remaining ones as a new batch file when anything was dropped
  (``<batch>-<n>.txt``: array index i -> line i must hold), splits them into
  arrays the scheduler accepts, renders one job script per array into
  ``jobs/<batch>/`` and submits it; every array appends a JobRecord to
  ``jobs.jsonl``. Sen2Cor (image or install dir) is checked first: when it is
  missing nothing is submitted.
* **status** (:mod:`s2kit.status`, re-exported here) joins the plan, the worker state
  files and the scheduler's view of the recorded jobs into one status per scene
  (:data:`STATUSES`); each job keeps
  its own batch file (batch files are never rewritten). A scene whose state is
  ``running`` is ``stale`` exactly when :func:`s2kit.runs.is_stale` says so: its
  lock is not held and its worker pid is dead on this host, or (worker on another
  host) its job task ended or vanished. A live worker on this host wins over "job
  gone". A scheduler that cannot be asked makes its tasks ``unknown``; it never
  makes status fail.
* **resubmit --failed** writes ``batches/resubmit-<n>.txt`` with the failed and
  stale scenes and submits it.

A done scene is never submitted again, and publishing is the worker's atomic
step, so rerunning ``plan`` + ``submit`` after any crash redoes only what is not done.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from .config import BatchConfig, Sen2CorConfig, config_from_dict, load_config
from .errors import ConfigError, S2kitError, UsageError, display_path
from .exitcodes import ExitCode
from .fsutil import atomic_write_text
from .jobs import job_spec
from .runs import (
    BatchImmutable,
    JobRecord,
    RunDir,
    writing,
)
from .schedulers import (
    ACTIVE,
    Scheduler,
    chunk_ranges,
    get_scheduler,
)
from .schedulers.local import this_host
from .status import STATUSES, SceneStatus, StatusReport, classify, format_status, run_status, status
from .versions import installer_file

__all__ = [
    "STATUSES",
    "Sen2CorMissing",
    "SceneStatus",
    "StatusReport",
    "SubmitResult",
    "check_sen2cor",
    "classify",
    "route_keys",
    "format_status",
    "load_target",
    "resubmit_failed",
    "run_status",
    "status",
    "submit",
    "submit_batch",
]

Echo = Callable[[str], None]

SEN2COR_INSTALLER = installer_file("2.9")  # the installer SEN2COR_URL offers
SEN2COR_URL = "https://step.esa.int/main/snap-supported-plugins/sen2cor/sen2cor-v2-9/"


class Sen2CorMissing(ConfigError):
    """The Sen2Cor image / installation the config names does not exist."""


def route_keys(cfg: BatchConfig) -> list[tuple[str, Sen2CorConfig]]:
    """(key prefix, effective settings) of every Sen2Cor the config runs: ``[("sen2cor", ...)]``
    for one version, ``[("sen2cor.route[0]", ...), ...]`` for a route (what messages name)."""
    if not cfg.sen2cor.route:
        return [("sen2cor", cfg.sen2cor)]
    return [(f"sen2cor.route[{i}]", cfg.sen2cor_for(e.version)) for i, e in enumerate(cfg.sen2cor.route)]


def check_sen2cor(cfg: BatchConfig, sc: Sen2CorConfig | None = None, key: str = "sen2cor") -> None:
    """Raise one clear Sen2CorMissing when the config's Sen2Cor cannot run at all.

    *sc* / *key*: one route entry's effective settings and its key (``sen2cor.route[1]``);
    without *sc*, every Sen2Cor of the config (each route entry) is checked."""
    if sc is None:
        for k, one in route_keys(cfg):
            check_sen2cor(cfg, one, k)
        return
    s = sc
    where = f" in {display_path(cfg.source)}" if cfg.source else ""
    if s.runtime == "apptainer":
        assert s.image is not None
        if not s.image.exists():
            raise Sen2CorMissing(
                f"Sen2Cor image not found: {display_path(s.image)} ({key}.image{where}); "
                "build it with `make container ESACCI=/path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip` "
                "(needs apptainer: containers/README.md) "
                "or point sen2cor.image at an existing .sif; nothing was submitted"
            )
        return
    assert s.install_dir is not None
    exe = s.install_dir / "bin" / "L2A_Process"
    if not exe.is_file():
        from .container.build import installer_url

        installer = installer_file(s.version)  # the installer of the configured version, not 2.9's
        raise Sen2CorMissing(
            f"Sen2Cor {s.version} not installed: no {display_path(exe)} ({key}.install_dir{where}); "
            f"install it with ESA's installer {installer} ({installer_url(s.version)}): "
            f"`bash {installer} --target {shlex.quote(str(s.install_dir))}`, "
            'or use runtime = "apptainer" with the image `make container` builds; nothing was submitted'
        )


def load_target(config: Path | None, run_dir: Path | None) -> tuple[BatchConfig, RunDir]:
    """The config and run dir a command works on: ``--config FILE`` and/or ``--run-dir DIR``.

    With only ``--run-dir``, the config snapshot ``plan`` wrote (config.json) is used.
    """
    if config is not None:
        cfg = load_config(config)
        return cfg, RunDir(os.path.abspath(run_dir if run_dir is not None else cfg.paths.run_dir))
    if run_dir is None:
        raise UsageError("expected --config FILE or --run-dir DIR, found neither")
    rd = RunDir(os.path.abspath(run_dir)).require()
    # resolved like a config file, with config.json as its source (named in messages)
    return config_from_dict(rd.config_data(), rd.path, rd.config_file), rd


# ============================================================================ submit
@dataclass
class Chunk:
    offset: int
    count: int
    script: Path
    command: str
    job_id: str | None = None
    sen2cor: str | None = None  # the version every task of the chunk runs (a routed batch)


@dataclass
class SubmitResult:
    scheduler: str
    batch: str  # the batch file the arrays index
    source_batch: str
    scenes: list[str]
    excluded: dict[str, int] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    exit_codes: dict[int, int] = field(default_factory=dict)  # local only

    def summary(self) -> str:
        ex = ", ".join(f"{n} {k}" for k, n in sorted(self.excluded.items()) if n)
        if not self.scenes:
            return f"submit: nothing to submit in batch {self.source_batch}" + (f" ({ex})" if ex else "")
        head = f"{len(self.scenes)} scene(s) of batch {self.source_batch}" + (
            f" (left out: {ex})" if ex else ""
        )
        verb = "would submit" if self.dry_run else "submitted"
        lines = [
            f"submit: {verb} {head} as batch {self.batch} in {len(self.chunks)} {self.scheduler} array(s)"
        ]
        routed = len({ch.sen2cor for ch in self.chunks}) > 1
        for ch in self.chunks:
            jid = f" job {ch.job_id}" if ch.job_id else ""
            version = f" Sen2Cor {ch.sen2cor}" if routed and ch.sen2cor else ""
            lines.append(
                f"  lines {ch.offset}-{ch.offset + ch.count - 1}{version}{jid}: {display_path(ch.script)}"
                + (f"\n    {ch.command}" if self.dry_run else "")
            )
        if self.exit_codes:
            c = Counter(
                "done" if v == ExitCode.DONE else ("locked" if v == ExitCode.LOCKED else "failed")
                for v in self.exit_codes.values()
            )
            lines.append("local: " + ", ".join(f"{n} {k}" for k, n in sorted(c.items())))
        return "\n".join(lines)


def _next_name(rd: RunDir, prefix: str) -> str:
    n = 1
    while rd.batch_file(f"{prefix}-{n}").exists():
        n += 1
    return f"{prefix}-{n}"


def _write_new_batch(rd: RunDir, prefix: str, scenes: list[str]) -> str:
    """Write *scenes* as ``<prefix>-<n>`` with the first free n (batch files are write-once:
    when a concurrent submit took the name with other scenes, the next n is used)."""
    while True:
        name = _next_name(rd, prefix)
        try:
            rd.write_batch(name, scenes)
        except BatchImmutable:
            continue
        return name


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def submit_batch(
    cfg: BatchConfig,
    rd: RunDir,
    batch: str | None = None,
    dry_run: bool = False,
    scheduler: Scheduler | None = None,
    echo: Echo | None = None,
    report: StatusReport | None = None,
) -> SubmitResult:
    """Render and submit the not-done scenes of *batch* (default: the batch the latest
    ``plan`` wrote, :meth:`RunDir.plan_batch`); see the module docstring."""
    say = echo or (lambda _m: None)
    notes: list[str] = []
    rd.check_snapshot(cfg)  # the workers run the plan's snapshot: refuse another config
    # apptainer notices a missing bind source only when a task starts on a node, once per
    # task: refuse before anything is launched (writable dirs are created here); every
    # Sen2Cor of a route is checked (each array binds its version's image)
    from .container import check_binds

    for key, eff in route_keys(cfg):
        try:
            check_sen2cor(cfg, eff, key)
        except Sen2CorMissing as exc:
            if not dry_run:
                raise
            notes.append(f"warning: {exc.message}")
    for key, eff in route_keys(cfg):
        try:
            check_binds(cfg, rd.path, create_writable=not dry_run, sc=eff, image_key=f"{key}.image")
        except S2kitError as exc:
            if not dry_run:
                raise
            notes.append(f"warning: {exc.message}")
    rd.require()
    if batch is None:
        batch = rd.plan_batch()
    scenes = rd.read_batch(batch)
    sched = scheduler or get_scheduler(cfg.scheduler.kind)
    if report is None:
        report = run_status(cfg, rd, schedulers={sched.kind: sched})
    by_scene = {s.scene: s for s in report.scenes}
    unreachable = {e.split(":", 1)[0] for e in report.scheduler_errors}
    keep: list[str] = []
    excluded: Counter[str] = Counter()
    seen: set[str] = set()
    unconfirmed = 0
    for sc in scenes:
        ss = by_scene.get(sc)
        st = ss.status if ss is not None else None
        if sc in seen:
            excluded["duplicate"] += 1
        elif ss is None:
            excluded["not in plan"] += 1
        elif st in ("done", "skipped"):
            excluded[str(st)] += 1
        elif st in ACTIVE and ss.task == "unknown" and (ss.job or "").split(" ", 1)[0] in unreachable:
            keep.append(
                sc
            )  # its earlier job cannot be asked: submit again, the scene lock prevents a double run
            unconfirmed += 1
        elif st in ACTIVE:
            excluded[f"already {st}"] += 1
        else:
            keep.append(sc)
        seen.add(sc)
    if unconfirmed:
        notes.append(
            f"warning: {unconfirmed} scene(s) of earlier jobs whose scheduler cannot be asked "
            f"({'; '.join(report.scheduler_errors)}) are submitted again; the worker's scene lock "
            "keeps a scene from running twice"
        )
    # one array per (version, chunk): the lines of one version must be one run of the batch
    versions = _versions(cfg, rd, keep)
    keep = _by_version(cfg, keep, versions)
    name = batch
    if keep and keep != scenes:
        name = _write_new_batch(rd, batch, keep)
    result = SubmitResult(
        scheduler=sched.kind,
        batch=name,
        source_batch=batch,
        scenes=keep,
        excluded=dict(excluded),
        dry_run=dry_run,
    )
    result.notes = notes
    if not keep:
        return result

    limit = sched.max_array_size()
    if cfg.scheduler.max_array_size is not None:
        limit = min(limit, cfg.scheduler.max_array_size)
    result.notes += sched.notes()
    chunks: list[tuple[int, int, str | None]] = []
    for start, count, version in _runs(keep, versions):
        chunks += [(start + off, n, version) for off, n in chunk_ranges(count, limit)]
    note = sched.chunk_note(len(keep), len(chunks), limit, cfg.scheduler.max_concurrent)
    if note:
        result.notes.append(note)
    for msg in result.notes:
        say(msg)
    jobs_dir = rd.jobs_dir(name)
    with writing(jobs_dir):
        jobs_dir.mkdir(parents=True, exist_ok=True)
    for offset, count, version in chunks:
        spec = job_spec(cfg, rd.path, name, offset, count, jobs_dir, sc=cfg.sen2cor_for(version))
        script = jobs_dir / f"{spec.name}{sched.script_suffix}"
        with writing(script):
            atomic_write_text(script, sched.render(spec), mode=0o755)
        argv = sched.submit_argv(script, spec)
        chunk = Chunk(offset, count, script, sched.shown_command(script, spec), sen2cor=version)
        result.chunks.append(chunk)
        if dry_run:
            continue
        record = partial(_append_record, rd, sched.kind, name, offset, count, script, argv, version)
        chunk.job_id, codes = sched.start(script, spec, record, keep[offset:], say)
        result.exit_codes.update({offset + i: rc for i, rc in codes.items()})
    return result


#: the library name from before the commands and the library functions were named apart
submit = submit_batch


def _versions(cfg: BatchConfig, rd: RunDir, scenes: list[str]) -> dict[str, str | None]:
    """scene -> the Sen2Cor version the plan chose for it (None: a plan written before routing,
    or a scene the plan does not hold: ``cfg.sen2cor``)."""
    if not scenes:
        return {}
    from .plan import route_problem

    wanted = set(scenes)
    out: dict[str, str | None] = {}
    for e in rd.read_plan():
        if e.scene in wanted:
            problem = route_problem(cfg.sen2cor, e)
            if problem:  # never a scene on a Sen2Cor the route did not name
                raise ConfigError(problem, rd.path / "plan.jsonl")
            out[e.scene] = e.sen2cor
    return out


def _by_version(cfg: BatchConfig, scenes: list[str], versions: dict[str, str | None]) -> list[str]:
    """*scenes* with each version's scenes one run, in route order (stable: one version keeps
    the order as it is)."""
    order = {v: i for i, v in enumerate(cfg.sen2cor.versions())}
    return sorted(scenes, key=lambda sc: order.get(versions.get(sc) or "", -1))


def _runs(scenes: list[str], versions: dict[str, str | None]) -> list[tuple[int, int, str | None]]:
    """(first line, count, version) of each run of one version in *scenes*."""
    out: list[tuple[int, int, str | None]] = []
    for i, sc in enumerate(scenes):
        v = versions.get(sc)
        if out and out[-1][2] == v:
            out[-1] = (out[-1][0], out[-1][1] + 1, v)
        else:
            out.append((i, 1, v))
    return out


def _append_record(
    rd: RunDir,
    kind: str,
    batch: str,
    offset: int,
    count: int,
    script: Path,
    argv: list[str],
    version: str | None,
    job_id: str,
) -> None:
    rd.append_job(_record(kind, job_id, batch, offset, count, script, argv, version))


def _record(
    kind: str,
    job_id: str,
    batch: str,
    offset: int,
    count: int,
    script: Path,
    argv: list[str],
    version: str | None = None,
) -> JobRecord:
    extra: dict[str, object] = {"argv": argv, "host": this_host()}
    if version is not None:
        extra["sen2cor"] = version  # the Sen2Cor every task of this array runs
    return JobRecord(
        scheduler=kind,
        job_id=job_id,
        batch=batch,
        first_index=offset,
        count=count,
        script=str(script),
        submitted=_now(),
        extra=extra,
    )


def resubmit_failed(
    cfg: BatchConfig,
    rd: RunDir,
    dry_run: bool = False,
    scheduler: Scheduler | None = None,
    echo: Echo | None = None,
) -> SubmitResult | None:
    """Write ``batches/resubmit-<n>.txt`` with the failed and stale scenes and submit it (None: nothing)."""
    rd.check_snapshot(cfg)  # before anything is written: the workers run the plan's snapshot
    sched = scheduler or get_scheduler(cfg.scheduler.kind)
    report = run_status(cfg, rd, schedulers={sched.kind: sched})
    scenes = [s.scene for s in report.by_status("failed", "stale")]
    if not scenes:
        return None
    scenes = _by_version(cfg, scenes, _versions(cfg, rd, scenes))  # version-homogeneous runs
    name = _write_new_batch(rd, "resubmit", scenes)
    return submit_batch(cfg, rd, batch=name, dry_run=dry_run, scheduler=sched, echo=echo, report=report)
