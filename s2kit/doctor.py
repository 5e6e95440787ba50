"""``s2kit doctor``: prove at a site, before the first batch, that a batch will work.

Every check is a library function that measures one thing and returns :class:`Check` records
(``name``, ``status`` PASS/WARN/FAIL, the measured ``value``, and on WARN/FAIL the ``fix``: what
to do), in the style of rio-cogeo's ``cog_validate``. :func:`run_checks` runs them all for a
config and returns a :class:`DoctorReport`; the CLI prints it as a table or JSON and exits 0 when
nothing FAILs. ``plan``'s preflight reuses :func:`disk_check` and :func:`memory_check`.

Scheduler commands go through :func:`s2kit.schedulers.run_command` (the subprocess boundary);
tests put fake ``sinfo``/``scontrol``/``bqueues``/``lshosts``/``lsid``/``apptainer`` on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .config import BatchConfig, Sen2CorConfig
from .errors import S2kitError, display_path
from .versions import installer_file

__all__ = [
    "Check",
    "DoctorReport",
    "FAIL",
    "PASS",
    "WARN",
    "apptainer_checks",
    "bind_checks",
    "config_check",
    "dem_check",
    "disk_check",
    "existing_parent",
    "l1c_checks",
    "memory_check",
    "parse_bqueues_runlimit",
    "parse_slurm_minutes",
    "run_checks",
    "scheduler_checks",
    "writable_checks",
]

Status = Literal["PASS", "WARN", "FAIL"]
PASS: Status = "PASS"  # noqa: S105 - a status, not a password
WARN: Status = "WARN"
FAIL: Status = "FAIL"
COMMAND_TIMEOUT_S = 30.0
#: Apptainer release that introduced what the image definition uses (build args in the header).
MIN_APPTAINER = (1, 2)


@dataclass(frozen=True)
class Check:
    """One measured fact: PASS, WARN (works, but look) or FAIL (a batch would fail)."""

    name: str
    status: Status
    value: str
    fix: str = ""


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    def add(self, checks: Check | Iterable[Check]) -> None:
        self.checks.extend([checks] if isinstance(checks, Check) else checks)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": {s: sum(c.status == s for c in self.checks) for s in (PASS, WARN, FAIL)},
            "checks": [asdict(c) for c in self.checks],
        }

    def table(self) -> str:
        """check | status | measured value | what to do (on WARN/FAIL)."""
        rows = [("CHECK", "STATUS", "VALUE", "WHAT TO DO")]
        rows += [(c.name, c.status, _one_line(c.value), _one_line(c.fix)) for c in self.checks]
        w0 = max(len(r[0]) for r in rows)
        w2 = min(70, max(len(r[2]) for r in rows))
        lines = []
        for name, status, value, fix in rows:
            lines.append(f"{name:<{w0}}  {status:<6}  {value:<{w2}}  {fix}".rstrip())
        counts = self.to_json_dict()["counts"]
        lines.append(f"{counts[PASS]} PASS, {counts[WARN]} WARN, {counts[FAIL]} FAIL")
        return "\n".join(lines)


def _one_line(text: str) -> str:
    from .config import printable

    return printable(" ".join(text.split()))


def _gb(n: float) -> str:
    return f"{n / 1024**3:.1f} GB"


def existing_parent(path: Path) -> Path:
    """*path* or its nearest existing parent (what ``disk_usage`` and a mkdir -p depend on)."""
    return path if path.exists() else next((p for p in path.parents if p.exists()), Path("/"))


# =========================================================================== config and folders
def config_check(path: str | os.PathLike[str]) -> tuple[BatchConfig | None, Check]:
    from .config import load_config

    try:
        cfg = load_config(path)
    except S2kitError as exc:
        return None, Check(
            "config", FAIL, str(exc), "fix the key named in the message (docs: config reference)"
        )
    sen2cor = f"Sen2Cor {cfg.sen2cor.version} ({cfg.sen2cor.runtime})"
    if cfg.sen2cor.route:  # several versions, by L1C baseline (sen2cor.route)
        sen2cor = "Sen2Cor " + ", ".join(
            f"{e.version} {e.takes} ({e.runtime or cfg.sen2cor.runtime})" for e in cfg.sen2cor.route
        )
    return cfg, Check(
        "config", PASS, f"{display_path(cfg.source or path)}: {sen2cor}, scheduler {cfg.scheduler.kind}"
    )


def l1c_checks(cfg: BatchConfig) -> list[Check]:
    out = []
    for i, d in enumerate(cfg.paths.l1c_dirs):
        name = f"paths.l1c_dirs[{i}]"
        if not d.is_dir():
            out.append(Check(name, FAIL, f"no folder at {display_path(d)}", "create it or fix the path"))
        elif not os.access(d, os.R_OK | os.X_OK):
            out.append(
                Check(name, FAIL, f"{display_path(d)} is not readable", f"chmod a+rx {shlex.quote(str(d))}")
            )
        else:
            try:
                n = sum(1 for e in os.scandir(d) if e.name.lower().endswith((".safe", ".zip")))
            except OSError as exc:
                out.append(Check(name, FAIL, f"{display_path(d)}: {exc.strerror}", "make it readable"))
                continue
            out.append(
                Check(
                    name,
                    PASS if n else WARN,
                    f"{display_path(d)} readable, {n} .SAFE/.zip entries",
                    "" if n else "put the L1C products (.SAFE folders or .zip) there",
                )
            )
    return out


def _writable(path: Path) -> str | None:
    """None when *path* is (or can be created as) a folder this user can write, else why not."""
    if path.exists():
        if not path.is_dir():
            return f"{display_path(path)} is not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{display_path(path)} is not writable"
        return None
    parent = existing_parent(path)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"{display_path(path)} does not exist and {display_path(parent)} is not writable"
    return None


def writable_checks(cfg: BatchConfig, todo_bytes: int | None = None, largest_bytes: int = 0) -> list[Check]:
    """scratch, L2A and run dir: writable (or creatable), with free space in numbers."""
    out = []
    items = [
        ("paths.scratch_dir", cfg.paths.scratch_dir),
        ("paths.l2a_dir", cfg.paths.l2a_dir),
        ("paths.run_dir", cfg.paths.run_dir),
    ]
    for key, p in items:
        problem = _writable(p)
        if problem:
            out.append(
                Check(key, FAIL, problem, f"make it writable for this user: mkdir -p {shlex.quote(str(p))}")
            )
            continue
        free = shutil.disk_usage(existing_parent(p)).free
        value = f"{display_path(p)} writable, {_gb(free)} free"
        if key == "paths.l2a_dir" and todo_bytes is not None:
            out.append(disk_check(p, todo_bytes, None, name=key))
            continue
        if key == "paths.scratch_dir" and largest_bytes:
            # a task holds its staged input, Sen2Cor's output and work files: ~3x the L1C
            need = 3 * largest_bytes * cfg.scheduler.max_concurrent
            if need > free:
                out.append(
                    Check(
                        key,
                        WARN,
                        f"{value}; ~{_gb(need)} needed for {cfg.scheduler.max_concurrent} "
                        "concurrent task(s) if they share this disk",
                        "point scratch_dir at node-local disk or lower scheduler.max_concurrent",
                    )
                )
                continue
        out.append(Check(key, PASS, value))
    return out


def disk_check(l2a_dir: Path, need_bytes: int, count: int | None, name: str = "disk") -> Check:
    """Free space where the L2A products go vs their size (an L2A is about as big as its L1C).

    FAIL value: ``expected at least X GB free for N L2A product(s) ..., found Y GB free``
    (plan's preflight raises it as is).
    """
    probe = existing_parent(l2a_dir)
    free = shutil.disk_usage(probe).free
    what = f"{count} L2A product(s)" if count is not None else "the planned L2A products"
    if need_bytes > free:
        return Check(
            name,
            FAIL,
            f"expected at least {_gb(need_bytes)} free for {what} (the size of their L1C), "
            f"found {_gb(free)} free",
            f"free space on {display_path(probe)} or point paths.l2a_dir at a larger disk",
        )
    return Check(
        name, PASS, f"disk: {_gb(need_bytes)} planned output, {_gb(free)} free at {display_path(probe)}"
    )


def memory_check(cfg: BatchConfig, node_memory_mb: int | None, name: str = "memory") -> Check:
    """Memory per task (x concurrent tasks on the local machine) vs the largest node.

    FAIL value: ``expected a node with at least N MB (...), found M MB`` (plan's preflight).
    """
    sch = cfg.scheduler
    if sch.kind == "local":
        cores = os.cpu_count() or 1
        tasks = max(1, min(sch.max_concurrent, cores // sch.cores_per_task or 1))
    else:
        tasks = 1  # one array task per allocation; the scheduler packs nodes by --mem
    need = sch.memory_per_task_mb * tasks
    if node_memory_mb is None:
        return Check(
            name,
            WARN,
            f"memory: node memory unknown ({sch.kind} did not tell); not checked",
            "check scheduler.memory_per_task_gb against your nodes by hand",
        )
    if need > node_memory_mb:
        return Check(
            name,
            FAIL,
            f"expected a node with at least {need} MB ({sch.memory_per_task_mb} MB x {tasks} "
            f"concurrent task(s)), found {node_memory_mb} MB",
            "lower scheduler.memory_per_task_gb or pick a queue with bigger nodes",
        )
    return Check(
        name, PASS, f"memory: {need} MB needed per node ({tasks} task(s)), {node_memory_mb} MB available"
    )


# =========================================================================== planned scenes and DEM
@dataclass
class _Planned:
    todo: list[Any] = field(default_factory=list)
    no_dem: list[Any] = field(default_factory=list)
    error: str | None = None  # about the DEM folder
    scan_error: str | None = None  # the L1C dirs could not be scanned


def _planned(cfg: BatchConfig) -> _Planned:
    """What ``plan`` would decide (scan + decide, nothing written)."""
    from .errors import ConfigError
    from .plan import decide, discover
    from .runs import published_provenance

    out = _Planned()
    readable = [d for d in cfg.paths.l1c_dirs if d.is_dir() and os.access(d, os.R_OK | os.X_OK)]
    if not readable:
        out.scan_error = "no readable L1C dir"
        return out
    cfg = cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"l1c_dirs": readable})})
    try:
        cands = discover(cfg.paths.l1c_dirs)
    except (S2kitError, OSError) as exc:
        out.scan_error = str(exc)
        return out
    try:
        entries = decide(cands, cfg, published_provenance(cfg.paths.l2a_dir))
    except ConfigError as exc:  # sen2cor.dem = "srtm" without a dem_dir folder
        out.error = exc.message
        return out
    out.todo = [e for e in entries if e.decision == "todo"]
    out.no_dem = [e for e in entries if e.decision == "skipped" and (e.reason or "").startswith("no-dem")]
    return out


def dem_check(cfg: BatchConfig, planned: _Planned | None = None) -> Check:
    """The DEM files every planned tile's footprint needs - SRTM zips, or Copernicus DEM cells
    for ``sen2cor.dem = "cop-dem-*"`` (s2kit.dem.dem_problem, once per tile)."""
    from .plan import _dem_fix

    kind = cfg.sen2cor.dem or "srtm"
    what = "" if kind == "srtm" else f" ({kind}, the cells Sen2Cor {cfg.sen2cor.version} reads)"
    if cfg.sen2cor.dem == "none":
        return Check("dem", PASS, 'sen2cor.dem = "none": flat terrain on purpose, no DEM needed')
    planned = planned or _planned(cfg)
    if planned.scan_error:
        return Check("dem", WARN, f"not checked: {planned.scan_error}", "fix the L1C dirs first")
    if planned.error:
        return Check("dem", FAIL, planned.error, "set paths.dem_dir to the folder 's2kit dem prepare' wrote")
    if planned.no_dem:
        tiles = sorted({e.mgrs_tile or "?" for e in planned.no_dem})
        first = (planned.no_dem[0].reason or "").removeprefix("no-dem: ").split("; fix:", 1)[0]
        assert cfg.paths.dem_dir is not None
        return Check(
            "dem",
            FAIL,
            f"{len(tiles)} tile(s) without a complete DEM{what} ({', '.join(tiles)}): {first}",
            _dem_fix(tiles, shlex.quote(display_path(cfg.paths.dem_dir)), kind),
        )
    tiles = sorted({e.mgrs_tile or "?" for e in planned.todo})
    if not tiles:
        return Check(
            "dem", WARN, "no scene to process, so no tile checked", "put L1C products into paths.l1c_dirs"
        )
    if kind != "srtm" and cfg.sen2cor.runtime == "native" and cfg.sen2cor.install_dir is not None:
        from .dem.copdem import missing_list_problem

        problem = missing_list_problem(cfg.sen2cor.install_dir, kind)
        if problem:
            return Check("dem", WARN, problem, "install Sen2Cor's aux_data completely (the installer's own)")
    return Check(
        "dem",
        PASS,
        f"complete{what} for {len(tiles)} planned tile(s): {', '.join(tiles[:10])}"
        + (" ..." if len(tiles) > 10 else ""),
    )


# =========================================================================== scheduler
_SLURM_TIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\Z")


def parse_slurm_minutes(text: str) -> int | None:
    """Slurm time limit (``sinfo %l``) in minutes; None = unlimited/unknown.

    Formats: ``UNLIMITED``/``infinite``, ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``,
    ``D-HH:MM:SS`` (seconds rounded up).
    """
    t = text.strip()
    m = _SLURM_TIME_RE.match(t)
    if not m:
        return None
    days, a, b, c = m.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        h, mi, s = int(a), int(b or 0), int(c or 0)
        return int(days) * 1440 + h * 60 + mi + (1 if s else 0)
    if c is not None:  # HH:MM:SS
        return int(a) * 60 + int(b) + (1 if int(c) else 0)
    if b is not None:  # MM:SS
        return int(a) + (1 if int(b) else 0)
    return int(a)


def parse_bqueues_runlimit(text: str) -> int | None:
    """Largest ``RUNLIMIT`` of ``bqueues -l`` in minutes (the value line under the header)."""
    lines = text.splitlines()
    found: list[float] = []
    for i, line in enumerate(lines):
        if line.strip() == "RUNLIMIT":
            for nxt in lines[i + 1 : i + 3]:
                m = re.match(r"\s*(\d+(?:\.\d+)?)\s*min", nxt)
                if m:
                    found.append(float(m[1]))
                    break
    return int(max(found)) if found else None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


Runner = Callable[..., Any]


def _run(runner: Runner, argv: Sequence[str]) -> tuple[int, str, str]:
    from .schedulers import SchedulerUnavailable

    try:
        res = runner(argv, timeout=COMMAND_TIMEOUT_S)
    except SchedulerUnavailable as exc:
        return 127, "", str(exc)
    return res.returncode, res.stdout, (res.stderr.strip() or res.stdout.strip())[-300:]


def scheduler_checks(cfg: BatchConfig, todo: int = 0, runner: Runner | None = None) -> list[Check]:
    """Reachable, queue exists, walltime <= run limit, memory <= largest node, array limit,
    max_concurrent sane. ``local`` needs no scheduler and passes with this machine's numbers."""
    from .schedulers import get_scheduler, run_command

    run = runner or run_command
    sch = cfg.scheduler
    kind = sch.kind
    backend = get_scheduler(kind, runner=run)
    out: list[Check] = []
    if kind == "local":
        out.append(Check("scheduler", PASS, f"local: {os.cpu_count() or 1} core(s) on this machine"))
        out.append(memory_check(cfg, backend.node_memory_mb(), name="scheduler memory"))
        return out
    limit_min: int | None = None
    if kind == "slurm":
        rc, text, err = _run(run, ["sinfo", "-h", "-o", "%P|%l|%m|%c|%D"])
        if rc != 0:
            return [
                Check(
                    "scheduler",
                    FAIL,
                    f"sinfo failed (exit {rc}): {err}",
                    "run doctor on a login node of the cluster (SLURM_CONF set, slurmctld up)",
                )
            ]
        parts: dict[str, dict[str, Any]] = {}
        default = ""
        for line in text.splitlines():
            cols = line.strip().split("|")
            if len(cols) < 5:
                continue
            name = cols[0].rstrip("*")
            if cols[0].endswith("*"):
                default = name
            p = parts.setdefault(name, {"limits": [], "mem": [], "cpus": [], "nodes": 0})
            p["limits"].append(cols[1])
            p["mem"].append(cols[2])
            p["cpus"].append(cols[3].rstrip("+"))
            p["nodes"] += int(cols[4]) if cols[4].isdigit() else 0
        out.append(
            Check(
                "scheduler", PASS, f"slurm: sinfo answered, partitions {', '.join(sorted(parts)) or 'none'}"
            )
        )
        queue = sch.queue or default
        if queue not in parts:
            out.append(
                Check(
                    "queue",
                    FAIL,
                    f"expected partition {queue or '(default)'!r}, found "
                    f"{', '.join(sorted(parts)) or 'none'}",
                    "set scheduler.queue to one of those",
                )
            )
            return out
        out.append(Check("queue", PASS, f"partition {queue}" + (" (default)" if queue == default else "")))
        p = parts[queue]
        limits = [parse_slurm_minutes(t) for t in p["limits"]]
        limit_min = None if any(v is None for v in limits) else max(v for v in limits if v is not None)
        limit_text = "UNLIMITED" if limit_min is None else _hhmm(limit_min)
        from .schedulers.base import max_memory_mb

        node_mb = max_memory_mb(p["mem"])
    else:  # lsf
        rc, text, err = _run(run, ["lsid"])
        if rc != 0:
            return [
                Check(
                    "scheduler",
                    FAIL,
                    f"lsid failed (exit {rc}): {err}",
                    "run doctor on an LSF submission host (LSF_ENVDIR set, profile.lsf sourced)",
                )
            ]
        cluster = next(
            (ln.split(" is ", 1)[1] for ln in text.splitlines() if "cluster name is" in ln), "answered"
        )
        out.append(Check("scheduler", PASS, f"lsf: lsid: cluster {cluster.strip()}"))
        argv = ["bqueues", "-l", *([sch.queue] if sch.queue else [])]
        rc, text, err = _run(run, argv)
        if rc != 0 or not text.strip():
            out.append(
                Check(
                    "queue",
                    FAIL,
                    f"expected queue {sch.queue or '(default)'!r}, found: {err}",
                    "set scheduler.queue to a queue 'bqueues' lists",
                )
            )
            return out
        out.append(Check("queue", PASS, f"queue {sch.queue or '(default)'}"))
        limit_min = parse_bqueues_runlimit(text)
        limit_text = "none" if limit_min is None else f"{limit_min} min"
        node_mb = backend.node_memory_mb(sch.queue)
    want = sch.walltime_minutes
    if limit_min is not None and want > limit_min:
        out.append(
            Check(
                "walltime",
                FAIL,
                f"expected scheduler.walltime {sch.walltime} <= the queue's run limit "
                f"{limit_text}, found it longer",
                f"set scheduler.walltime to at most {_hhmm(limit_min)} or pick a queue with a longer limit",
            )
        )
    else:
        out.append(Check("walltime", PASS, f"{sch.walltime} <= run limit {limit_text}"))
    out.append(memory_check(cfg, node_mb, name="memory"))
    size = backend.max_array_size()
    note = "; ".join(backend.notes())
    if sch.max_array_size is not None and sch.max_array_size > size:
        out.append(
            Check(
                "array size",
                FAIL,
                f"scheduler.max_array_size {sch.max_array_size} > site limit {size} ({note})",
                f"set scheduler.max_array_size to at most {size} or remove it",
            )
        )
    else:
        per = min(size, sch.max_array_size or size)
        jobs = -(-todo // per) if todo else 0
        out.append(Check("array size", PASS, f"{note}; {todo} scene(s) -> {jobs} array job(s)"))
    if sch.max_concurrent > size:
        out.append(
            Check(
                "max_concurrent",
                WARN,
                f"{sch.max_concurrent} > the largest array {size}: it never binds",
                f"set scheduler.max_concurrent to at most {size}",
            )
        )
    else:
        out.append(Check("max_concurrent", PASS, f"{sch.max_concurrent} task(s) at a time per array"))
    return out


# =========================================================================== apptainer / image
def _apptainer_version(argv0: str, runner: Runner) -> tuple[tuple[int, ...] | None, str]:
    rc, text, err = _run(runner, [argv0, "--version"])
    if rc != 0:
        return None, err or f"exit {rc}"
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return (tuple(int(x) for x in m.groups() if x is not None) if m else None), text.strip()


LABEL_HOME_REWRITE = "org.s2kit.sen2cor.home-rewrite"


def apptainer_checks(
    cfg: BatchConfig, runner: Runner | None = None, sc: Sen2CorConfig | None = None, key: str = "sen2cor"
) -> list[Check]:
    """Apptainer version, image present, its labels (Sen2Cor version, installer sha256 and
    how pinned, s2kit version, ESACCI digest, SEN2COR_HOME rewrite); native: L2A_Process.

    Without *sc*: every Sen2Cor of the config (each ``sen2cor.route`` entry, its checks named
    with its version); *sc* / *key*: one of them (``cfg.sen2cor_for(v)``, ``sen2cor.route[1]``)."""
    if sc is None:
        if not cfg.sen2cor.route:
            return apptainer_checks(cfg, runner, cfg.sen2cor)
        from .batch import route_keys

        out_all: list[Check] = []
        for k, one in route_keys(cfg):
            for c in apptainer_checks(cfg, runner, one, k):
                if c.name == "apptainer" and any(o.name == "apptainer" for o in out_all):
                    continue  # one apptainer for the batch: said once
                out_all.append(
                    c if c.name == "apptainer" else replace(c, name=f"{c.name} (Sen2Cor {one.version})")
                )
        return out_all
    from .schedulers import run_command

    run = runner or run_command
    if sc.runtime == "native":
        from .sen2cor import l2a_process_exe

        try:
            exe = l2a_process_exe(cfg, sc=sc)
        except S2kitError as exc:
            return [
                Check(
                    "sen2cor install",
                    FAIL,
                    str(exc),
                    f"set {key}.install_dir to the folder of bin/L2A_Process",
                )
            ]
        return [Check("sen2cor install", PASS, f"native {exe}")]
    out: list[Check] = []
    app = sc.apptainer
    version, text = _apptainer_version(app, run)
    if version is None:
        out.append(
            Check(
                "apptainer",
                FAIL,
                f"{app} --version: {text}",
                "install Apptainer >= 1.2 (or load its module) or set sen2cor.apptainer",
            )
        )
    elif version < MIN_APPTAINER:
        out.append(Check("apptainer", WARN, text, "Apptainer >= 1.2 is what s2kit is tested with"))
    else:
        out.append(Check("apptainer", PASS, text))
    image = sc.image
    assert image is not None
    if not image.is_file():
        out.append(
            Check(
                "image",
                FAIL,
                f"no file at {display_path(image)}",
                "build it: make container ESACCI=/path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip",
            )
        )
        return out
    out.append(Check("image", PASS, f"{display_path(image)} ({image.stat().st_size / 1024**2:.0f} MB)"))
    if version is None:
        return out
    from .container.build import missing_labels, read_labels

    try:
        labels = read_labels(image, (app,))
    except S2kitError as exc:
        out.append(Check("image labels", FAIL, str(exc), "rebuild the image with make container"))
        return out
    missing = missing_labels(labels)
    got = labels.get("org.s2kit.sen2cor.version", "?")
    if missing:
        out.append(
            Check(
                "image labels",
                FAIL,
                f"missing {', '.join(missing)}",
                "rebuild the image with make container (an image not built by s2kit)",
            )
        )
    elif got != sc.version:
        out.append(
            Check(
                "image labels",
                FAIL,
                f"expected Sen2Cor {sc.version} ({key}.version), found {got} in the image",
                f"set {key}.version or build the image for that version",
            )
        )
    else:
        sha = labels.get("org.s2kit.sen2cor.installer.sha256", "")
        pinned = labels.get("org.s2kit.sen2cor.installer.pinned", "")
        installer = labels.get("org.s2kit.sen2cor.installer", "?")
        esa = installer_file(sc.version)
        status = WARN if pinned.startswith("none") or installer != esa else PASS
        if installer != esa:  # e.g. the tests' STANDIN installer holding the Sen2Cor test double
            fix = (
                f"build the image from ESA's {esa}: an image from another file (a stand-in such as "
                "s2kit's tests build) does not run Sen2Cor, and its L2A are not Sen2Cor's"
            )
        else:
            fix = "" if status == PASS else "pin the installer: containers/checksums.tsv or the lock"
        out.append(
            Check(
                "image labels",
                status,
                f"Sen2Cor {got}, installer {installer} sha256 "
                f"{sha[:16]}... pinned: {pinned}, s2kit {labels.get('org.s2kit.version', '?')}",
                fix,
            )
        )
    digest = labels.get("org.s2kit.esacci.digest", "")
    if not digest or digest in ("none", "unknown"):
        out.append(
            Check(
                "esacci",
                FAIL,
                f"image without ESACCI-LC (org.s2kit.esacci.digest = {digest or 'absent'})",
                "rebuild: make container ESACCI=/path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip",
            )
        )
    else:
        out.append(Check("esacci", PASS, f"ESACCI-LC in the image, digest {digest[:16]}..."))
    rewrite = labels.get(LABEL_HOME_REWRITE, "")
    if not rewrite:
        out.append(
            Check(
                "sen2cor home",
                WARN,
                f"no {LABEL_HOME_REWRITE} label: the launcher may override the per-task SEN2COR_HOME",
                "rebuild with this s2kit, or run doctor --sen2cor-smoke",
            )
        )
    else:
        out.append(Check("sen2cor home", PASS, rewrite))
    return out


def bind_checks(cfg: BatchConfig) -> list[Check]:
    """Every path ``apptainer exec`` binds: read-only ones exist, writable ones can be made
    (with a route: the binds of every version that runs in an image)."""
    from .batch import route_keys
    from .container import binds

    images = [sc for _, sc in route_keys(cfg) if sc.runtime == "apptainer"]
    if not images:
        return []
    problems = []
    pairs = list(dict.fromkeys(pair for sc in images for pair in binds(cfg, sc=sc)))
    for path, mode in pairs:
        p = Path(path)
        if ":" in path or "," in path:
            problems.append(f"{display_path(p)}: ':' or ',' cannot be bound")
        elif mode == "ro" and not p.exists():
            problems.append(f"{display_path(p)} (read-only) does not exist")
        elif mode == "rw":
            why = _writable(p)
            if why:
                problems.append(why)
    if problems:
        return [
            Check("binds", FAIL, "; ".join(problems), "create the folders or fix the paths in the config")
        ]
    return [Check("binds", PASS, f"{len(pairs)} bind(s) exist: " + ", ".join(f"{p}:{m}" for p, m in pairs))]


# =========================================================================== all of it
def run_checks(
    config: str | os.PathLike[str], runner: Runner | None = None
) -> tuple[BatchConfig | None, DoctorReport]:
    """Every check that needs no job and no Sen2Cor run, in order."""
    report = DoctorReport()
    cfg, c = config_check(config)
    report.add(c)
    if cfg is None:
        return None, report
    report.add(l1c_checks(cfg))
    planned = _planned(cfg)
    todo_bytes = (
        sum(e.size_bytes for e in planned.todo) if not (planned.error or planned.scan_error) else None
    )
    largest = max((e.size_bytes for e in planned.todo), default=0)
    report.add(writable_checks(cfg, todo_bytes, largest))
    report.add(dem_check(cfg, planned))
    report.add(scheduler_checks(cfg, len(planned.todo), runner))
    report.add(apptainer_checks(cfg, runner))
    report.add(bind_checks(cfg))
    return cfg, report


#: checks whose FAIL means the smoke run cannot even start
_SMOKE_NEEDS = frozenset(
    {"sen2cor install", "apptainer", "image", "binds", "paths.scratch_dir", "paths.l1c_dirs[0]", "dem"}
)


def run_doctor(
    config: str | os.PathLike[str],
    *,
    probe_job: bool = False,
    smoke_scene: str | None = None,
    runner: Runner | None = None,
) -> DoctorReport:
    """:func:`run_checks`, then the optional probe job and Sen2Cor smoke run (when config is valid)."""
    cfg, report = run_checks(config, runner)
    if cfg is None:
        return report
    failed = {c.name for c in report.checks if c.status == FAIL}
    if probe_job:
        from .doctor_probe import probe_job_check

        if failed:  # a job would only fail for the same reason (one FAIL line per fault)
            report.add(Check("probe job", WARN, f"not submitted: {', '.join(sorted(failed))} FAILed",
                             "fix the FAILs above, then run doctor --probe-job again"))  # fmt: skip
        else:
            report.add(probe_job_check(cfg, runner))
    if smoke_scene is not None:
        from .doctor_probe import sen2cor_smoke_checks

        blocking = failed & _SMOKE_NEEDS
        if blocking:
            report.add(Check("sen2cor smoke", WARN, f"not run: {', '.join(sorted(blocking))} FAILed",
                             "fix the FAILs above, then run doctor --sen2cor-smoke again"))  # fmt: skip
        else:
            report.add(sen2cor_smoke_checks(cfg, smoke_scene))
    return report
