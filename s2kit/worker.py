"""``s2kit worker``: process ONE scene of a run, the way each scheduler array task does.

Library API: :func:`run_scene` (config, run dir, scene -> final :class:`~s2kit.runs.SceneState`),
:func:`run_task` (what the CLI runs: resolve the scene from the batch file and the array
index, then :func:`run_scene`), :func:`load_run_config`, :func:`task_index`, :func:`is_stale`.

One task, step by step:

1. Scene: ``batches/<batch>.txt`` line ``offset + index``; the index is ``--index``, else
   ``SLURM_ARRAY_TASK_ID`` (0-based arrays), else ``LSB_JOBINDEX - 1`` (LSF arrays are 1-based).
2. The scene's flock (held until the end); held by another worker -> exit 75, nothing touched.
   State ``done`` with the product and its provenance still published -> exit 0, nothing touched.
   A state ``running`` found while we hold the lock was left by a worker that died (flock
   dies with its process): its half-done publication is cleaned up (or, when it had
   completed, recorded as done), its orphaned Sen2Cor processes on this host are killed and
   its scratch on this host is removed.
   An L2A of the scene already published in ``l2a_dir`` (a product with a sidecar
   provenance valid for the scene: its state file was lost, or another run dir sharing the
   L2A dir published it) -> state ``done`` pointing at it, nothing run, nothing published.
   The same check runs again after Sen2Cor, just before publishing: one L1C, one L2A.
3. Per attempt: state ``running`` (attempt n, host, pid, job id, started), a fresh
   ``SEN2COR_HOME = scratch/<scene>/<n>-<host>-<pid>/sen2cor_home`` whose ``cfg/`` holds the
   four GIPPs rendered by :mod:`s2kit.gipp` (Nr_Threads = allocated cores, Baseline_Version =
   ``sen2cor.baseline``, DEM = ``dem_dir/<tile>/`` with ``sen2cor.dem = "srtm"`` (the default):
   when that folder or an SRTM zip the tile needs is missing the attempt fails ``no-dem``, never
   falling back to ``dem_dir`` or another tile's folder; ``DEM_Directory NONE`` only with
   ``sen2cor.dem = "none"``, recorded in the provenance as ``"dem": {"mode": "none", "note":
   "no DEM: flat terrain"}``),
   then ``L2A_Process`` in its own process group, output to ``logs/<scene>/attempt-<n>.log``,
   killed as a group on timeout. The DEM folder Sen2Cor gets is a per-attempt symlink copy
   in scratch (:func:`s2kit.dem.stage_dem`): Sen2Cor extracts ``srtm_*.tif`` into it, and
   the shared DEM stays read-only and free of races between tasks of one tile.
4. Input (:mod:`s2kit.staging`): Sen2Cor always gets a copy in scratch, never the L1C store: a ``.SAFE``
   folder becomes a symlink tree (folders recreated, files symlinked; the empty folders GCS
   drops are recreated in the tree), a ``.zip`` is extracted (members that would land outside
   the target are refused). Whatever Sen2Cor writes next to its input (in TOOLBOX mode its
   work directory is the input folder) lands in scratch; a read-only store always works.
5. Failure reasons (``SceneState.reason``, prefix before ``:`` is stable): ``timeout``,
   ``exit-code``, ``log-error`` (CRITICAL/ERROR lines with exit 0), ``no-output``,
   ``multiple-outputs``, ``validation: <finding codes>`` (s2kit validate, plus
   ``baseline-mismatch`` and ``wrong-product``), ``input``, ``no-dem`` (the tile's DEM
   folder vanished after the plan), ``dem-not-used`` (a DEM was given but Sen2Cor logged that it
   went on with flat terrain), ``gipp``, ``setup`` (no L2A_Process), ``publish``
   (one line, e.g. ``publish: Read-only file system``), ``signal`` (the worker got
   SIGTERM/SIGINT/SIGHUP), ``walltime`` (the scheduler killed the task at its time limit:
   the signal came at SLURM_JOB_END_TIME, or s2kit status read it from the scheduler),
   ``route`` (the plan line names a Sen2Cor the config's route or baseline gate does not give
   that L1C: plan.jsonl was edited; nothing runs),
   ``oom`` (the task hit its memory limit: Sen2Cor died of SIGKILL while the OOM kill count
   of the worker's memory cgroup went up, or s2kit status read it from the scheduler when the
   worker itself was killed).
   ``sen2cor.retries`` extra attempts follow ``exit-code``, ``log-error``, ``no-output``,
   ``multiple-outputs`` and ``validation``; the others are final.
   Every attempt that started Sen2Cor records what it cost in ``SceneState.resources``
   and the provenance (:mod:`s2kit.accounting`: wall, CPU, peak memory of its process group).
6. Publish: provenance into the run dir, product moved (or copied across file systems) to
   ``l2a_dir/.partial-<name>``, provenance written atomically to
   ``l2a_dir/<name>.SAFE.provenance.json``, then ONE ``rename`` to ``l2a_dir/<name>``.  So a
   product under its final name is always complete and always has its provenance beside it.
7. Final state ``done`` (l2a path) or ``failed`` (reason, Sen2Cor's exit status, log).
   Scratch: removed after success AND failure (node-local scratch must not fill up over a
   failing batch); what stays is the run dir's per-attempt log and, on failure, a copy of
   Sen2Cor's own ``SEN2COR_HOME/log`` as ``logs/<scene>/attempt-<n>.sen2cor/``.  Set
   ``S2KIT_KEEP_SCRATCH=1`` to keep the scratch of a task for debugging.

Exit codes: 0 done (or already done), 1 failed, 2 usage (no scene for this index, bad run
dir), 75 scene locked by another worker (EX_TEMPFAIL).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from . import __version__, runs
from .accounting import Meter, sample_interval, walltime_reached
from .config_view import load_snapshot
from .container import shell_line
from .dem import dem_files, dem_for_tile, dem_problem, stage_dem
from .dem.base import NO_DEM_NOTE
from .errors import InputError, S2kitError, UsageError, display_path
from .exitcodes import ExitCode
from .fsutil import atomic_write_text, flocked, read_json_object
from .gipp import sen2cor_gipp_args, write_gipp_set
from .process import kill_by_env_prefix, kill_grace_seconds, pid_alive, run_logged, signal_name
from .provenance import SCHEMA as PROVENANCE_SCHEMA
from .provenance import Provenance, published_product, sidecar_path
from .runs import PlanEntry, RunDir, SceneLocked, SceneState
from .safe import parse_product_name, repair_empty_dirs, strip_product_suffix
from .schedulers.env import array_index, job_id
from .sen2cor import (
    SETTINGS_EXCLUDED,
    RunResult,
    find_products,
    flat_terrain_lines,
    gipp_science_settings,
    gipp_settings,
    inside_container,
    l2a_process_argv,
    l2a_process_exe,
    last_line,
    scan_log,
    settings_sha256,
    sha256_file,
    task_threads,
    timeout_seconds,
)
from .sen2cor_home import REASON as HOME_IGNORED
from .sen2cor_home import check_home
from .staging import extract_zip, symlink_tree
from .validate import ProductReport, validate_product
from .versions import BASELINE_GATE, default_dem_kind, output_baseline

if TYPE_CHECKING:  # pydantic: not on the worker's start-up path (issue 17)
    from .config import BatchConfig, Sen2CorConfig

__all__ = [
    "EXIT_DONE",
    "EXIT_FAILED",
    "EXIT_LOCKED",
    "EXIT_USAGE",
    "RETRYABLE",
    "TaskOutcome",
    "WorkerInterrupted",
    "extract_zip",
    "is_published",
    "is_stale",
    "job_id_from_env",
    "load_run_config",
    "plan_entry",
    "run_scene",
    "run_task",
    "task_index",
]

EXIT_DONE = ExitCode.DONE
EXIT_FAILED = ExitCode.FAILED
EXIT_USAGE = ExitCode.USAGE
EXIT_LOCKED = ExitCode.LOCKED  # EX_TEMPFAIL: another worker has the scene; try again later
#: Failure reasons worth another attempt inside the same task.
#: failure reason: a DEM was staged but Sen2Cor logged that it went on with flat terrain
DEM_NOT_USED = "dem-not-used"
RETRYABLE = frozenset({"exit-code", "log-error", "no-output", "multiple-outputs", "validation"})
PARTIAL_PREFIX = ".partial-"
_SEN2COR_LOG_COPY_LIMIT = 64 * 1024 * 1024


class WorkerInterrupted(BaseException):  # noqa: N818 - BaseException: no `except Exception` may eat it
    """The worker received SIGTERM/SIGINT/SIGHUP (walltime, scancel, bkill, Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _host() -> str:
    return os.uname().nodename


# --------------------------------------------------------------------------- task resolution
def load_run_config(run_dir: str | os.PathLike[str]) -> BatchConfig:
    """The config snapshot ``s2kit plan`` wrote (:meth:`s2kit.runs.RunDir.config`)."""
    return RunDir(run_dir).config()


def task_index(index: int | None, offset: int = 0, env: Mapping[str, str] | None = None) -> int:
    """``offset`` + (``index`` | the scheduler's array index: ``SLURM_ARRAY_TASK_ID`` |
    ``LSB_JOBINDEX - 1``; :mod:`s2kit.schedulers.env`)."""
    if index is None:
        index = array_index(env)
    if index is None:
        raise UsageError(
            "expected --index, SLURM_ARRAY_TASK_ID or LSB_JOBINDEX (an array task), found none of them"
        )
    if offset < 0 or index < 0:
        raise UsageError(f"expected a non-negative index and offset, found index {index}, offset {offset}")
    return offset + index


def job_id_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """``SLURM_JOB_ID`` (unique per array task), else ``LSB_JOBID`` (``ID[index]`` in an array)."""
    return job_id(env)


def plan_entry(rd: RunDir, scene: str) -> PlanEntry:
    """The scene's line of ``plan.jsonl`` (:meth:`s2kit.runs.RunDir.find_entry`)."""
    return rd.find_entry(scene)


# --------------------------------------------------------------------------- state helpers
def _provenance_ok(product: Path, scene: str) -> bool:
    prov = Provenance.read_sidecar(product)
    return prov is not None and prov.is_valid_for(scene)


def is_published(st: SceneState | None) -> bool:
    """State ``done`` and its product and provenance still in place."""
    if st is None or st.state != "done" or not st.l2a:
        return False
    product = Path(st.l2a)
    return product.is_dir() and _provenance_ok(product, st.scene)


def is_stale(rd: RunDir, st: SceneState) -> bool:
    """A ``running`` state whose worker is dead (:func:`s2kit.runs.is_stale` defines it)."""
    return runs.is_stale(st, host=_host(), lock=rd.lock_probe(st.scene))


# --------------------------------------------------------------------------- image hash cache
def cached_sha256(rd: RunDir, path: Path) -> str:
    """sha256 of a big file (the 2 GB image) computed once per run, keyed by size and mtime."""
    st = path.stat()
    cache = rd.path / "cache" / "sha256.json"
    key = str(path)
    with flocked(cache.with_suffix(".lock")):  # blocking: tasks wait for the one that hashes
        doc = read_json_object(cache) or {}
        hit = doc.get(key)
        if isinstance(hit, dict) and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
            return str(hit["sha256"])
        digest = sha256_file(path)
        doc[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
        atomic_write_text(cache, json.dumps(doc, indent=1, sort_keys=True) + "\n")
        return digest


def container_record(
    cfg: BatchConfig, rd: RunDir, env: Mapping[str, str], sc: Sen2CorConfig | None = None
) -> dict[str, Any] | None:
    sc = cfg.sen2cor if sc is None else sc  # the scene's version's settings
    if sc.runtime != "apptainer":
        return None
    assert sc.image is not None
    inside = inside_container(env)
    rec: dict[str, Any] = {"image": str(sc.image), "inside": inside, "sha256": None}
    for candidate in (sc.image, Path(inside) if inside else None):
        if candidate is not None and os.access(candidate, os.R_OK) and candidate.is_file():
            rec["sha256"] = cached_sha256(rd, candidate)
            rec["hashed"] = str(candidate)
            break
    else:
        rec["note"] = "image file not readable from the worker: not hashed"
    return rec


# --------------------------------------------------------------------------- one task
@dataclass
class _Failure:
    kind: str  # the stable reason prefix
    detail: str
    exit_code: int | None = None

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


@dataclass
class _Success:
    product: Path
    report: ProductReport
    run: RunResult


class _Task:
    def __init__(self, cfg: BatchConfig, rd: RunDir, entry: PlanEntry, env: Mapping[str, str]) -> None:
        self.cfg = cfg
        # the Sen2Cor the plan chose for this scene (a route entry merged over [sen2cor]; a plan
        # written before routing: cfg.sen2cor): GIPP version, baseline, install/image, DEM kind
        self.sc = cfg.sen2cor_for(entry.sen2cor)
        # the Baseline_Version this scene's L2A gets ("l1c": the L1C's own; issue 18)
        self.baseline = output_baseline(str(self.sc.baseline), entry.processing_baseline)
        self.rd = rd
        self.entry = entry
        self.scene = entry.scene
        self.env = dict(env)
        self.host = _host()
        self.pid = os.getpid()
        self.job_id = job_id_from_env(env)
        self.scratch = cfg.paths.scratch_dir / self.scene
        self.keep_scratch = self.env.get("S2KIT_KEEP_SCRATCH", "") == "1"
        self.input_dir: Path | None = None
        self.input_note: dict[str, Any] = {}
        self.made: list[Path] = []  # scratch folders this task created
        self.publishing: Path | None = None
        self.task_started = _now()
        self.attempt_home: Path | None = None
        self.dem: Path | None = None
        self.dem_staged: Path | None = None
        self.threads: tuple[int, str] = (1, "default")
        self.gipp_files: list[Path] = []
        self.gipp_science: dict[str, str] = {}
        self.home_check: dict[str, Any] | None = None
        self.meter: Meter | None = None  # s2kit.accounting of the current attempt's Sen2Cor run

    # ----------------------------------------------------------------- state
    def _resources(self) -> dict[str, Any] | None:
        """What the current attempt's Sen2Cor run cost (None: it did not start)."""
        return self.meter.result() if self.meter is not None and self.meter.pgid is not None else None

    def _state(self, state: str, attempt: int, **kw: Any) -> SceneState:
        st = SceneState(
            scene=self.scene,
            state=state,  # type: ignore[arg-type]
            attempt=attempt,
            host=self.host,
            pid=self.pid,
            job_id=self.job_id,
            **kw,
        )
        self.rd.write_state(st)
        return st

    def _failed(self, attempt: int, reason: str, log: Path, exit_code: int | None = None) -> SceneState:
        """Record the scene failed: since the task started, ended now, with *log*."""
        return self._state(
            "failed",
            attempt,
            reason=reason,
            started=self.task_started,
            ended=_now(),
            log=str(log),
            exit_code=exit_code,
            resources=self._resources(),
        )

    # ----------------------------------------------------------------- takeover
    def _recover(self, prev: SceneState) -> SceneState | None:
        """Clean up after a dead worker; return a done state if it had finished publishing."""
        if prev.l2a:
            final = Path(prev.l2a)
            if final.is_dir() and _provenance_ok(final, self.scene):
                done = replace(prev, state="done", ended=prev.ended or _now(), exit_code=0, reason=None)
                self.rd.write_state(done)
                return done
            self._abort_publication(final)
        return None

    def _adopt(self, product: Path, attempt: int, log: Path | None) -> SceneState:
        """The scene's L2A is already published (by an earlier run whose state was lost, or by
        another run dir sharing the L2A dir): end ``done`` pointing at it, publish nothing."""
        prov = Provenance.read_sidecar(product)
        if prov is not None and not self.rd.provenance_file(self.scene).is_file():
            with contextlib.suppress(OSError):
                prov.write(self.rd.provenance_file(self.scene))
        if log is not None:
            _append(log, f"s2kit: {self.scene} is already published as {product}: done, nothing published\n")
        return self._state(
            "done",
            attempt,
            started=self.task_started,
            ended=_now(),
            log=str(log) if log is not None else None,
            l2a=str(product),
            exit_code=0,
        )

    def _abort_publication(self, final: Path) -> None:
        """Remove a half-done publication; what cannot be removed (a read-only or vanished
        L2A dir) is left, it never carries the final name of a product."""
        shutil.rmtree(final.with_name(PARTIAL_PREFIX + final.name), ignore_errors=True)
        if not final.is_dir():
            with contextlib.suppress(OSError):
                sidecar_path(final).unlink()

    def _clean_stale_scratch(self) -> None:
        """Scratch of dead workers of this scene on this host: kill its orphans, remove it."""
        if not self.scratch.is_dir():
            return
        stale: list[Path] = []
        for d in self.scratch.iterdir():
            head, _, pid = d.name.rpartition("-")
            host = head.split("-", 1)[1] if "-" in head else ""
            if host == self.host and pid.isdigit() and int(pid) != self.pid and not pid_alive(int(pid)):
                stale.append(d)
        if not stale:
            return
        kill_by_env_prefix("SEN2COR_HOME", [str(d) + os.sep for d in stale])
        for d in stale:
            shutil.rmtree(d, ignore_errors=True)

    # ----------------------------------------------------------------- input
    def _prepare_input(self) -> Path:
        if self.input_dir is not None:
            return self.input_dir
        src = Path(self.entry.l1c_path)
        if not src.exists():
            raise InputError("expected the L1C product of the plan, found nothing there", src)
        if src.is_file() and src.name.lower().endswith(".zip"):
            dest = self._scratch_dir(f"input-{self.host}-{self.pid}")
            product = extract_zip(src, dest, self.scene)
            repaired = repair_empty_dirs(product)
            self.input_note = {"staged": "zip-extract", "repaired_dirs": repaired}
        elif src.is_dir():
            # Never the store itself: Sen2Cor (TOOLBOX mode: its work dir is the input folder)
            # and the repair of dropped empty folders write only into this tree in scratch.
            dest = self._scratch_dir(f"input-{self.host}-{self.pid}")
            product = dest / src.name
            symlink_tree(src, product)
            repaired = repair_empty_dirs(product)
            self.input_note = {"staged": "symlink-tree", "repaired_dirs": repaired}
        else:
            raise InputError("expected a .SAFE folder or a .zip, found another kind of file", src)
        names = {n.upper() for n in os.listdir(product)}
        if "MTD_MSIL1C.XML" not in names:
            raise InputError("expected MTD_MSIL1C.xml at the top of the L1C product, found none", product)
        self.input_dir = product
        return product

    def _scratch_dir(self, name: str) -> Path:
        d = self.scratch / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        self.made.append(d)
        return d

    # ----------------------------------------------------------------- one attempt
    def _attempt(self, attempt: int, log: Path) -> _Success | _Failure:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.meter = None
        adir = self._scratch_dir(f"{attempt}-{self.host}-{self.pid}")
        home, out, work = adir / "sen2cor_home", adir / "out", adir / "work"
        for d in (home, out, work):
            d.mkdir()
        self.attempt_home = home
        with open(log, "w", encoding="utf-8") as fh:
            fh.write(
                f"s2kit: worker {__version__} scene {self.scene} attempt {attempt} host {self.host} "
                f"pid {self.pid} job {self.job_id or '-'} started {_now()}\n"
            )
        problem = route_problem(self.cfg.sen2cor, self.entry)
        if problem is not None:  # never a wrong L2A from a hand-edited plan line
            return _Failure("route", problem)
        self.threads = task_threads(self.cfg, self.env, self.sc)
        _append(log, f"s2kit: Sen2Cor {self.sc.version}: {self.entry.route or 'sen2cor.version'}\n")
        if self.sc.dem == "none":
            self.dem = None  # explicit flat terrain: DEM_Directory NONE
            _append(log, f's2kit: sen2cor.dem = "none": {NO_DEM_NOTE}\n')
        else:  # the tile's own DEM folder or nothing: never dem_dir itself nor another tile's
            problem = dem_problem(self.cfg.paths.dem_dir, self.entry.mgrs_tile, kind=self._dem_kind)
            self.dem = dem_for_tile(self.cfg.paths.dem_dir, self.entry.mgrs_tile, kind=self._dem_kind)
            if problem is not None or self.dem is None:
                self.dem = None
                return _Failure("no-dem", problem or "expected the tile's DEM folder, found none")
        try:
            input_dir = self._prepare_input()
        except (InputError, OSError) as exc:
            return _Failure("input", str(exc))
        try:
            self.dem_staged = (
                stage_dem(self.dem, adir / "dem", kind=self._dem_kind) if self.dem is not None else None
            )
        except OSError as exc:
            return _Failure("input", f"DEM {display_path(self.dem or '')}: {exc}")
        try:
            if self.baseline is None:
                raise InputError(
                    "expected the L1C's processing baseline for sen2cor.baseline = 'l1c', found none "
                    "in the plan; run `s2kit plan` again",
                    self.entry.l1c_path,
                )
            settings = gipp_settings(
                self.cfg, self.dem_staged, self.threads[0], self.sc, baseline=self.baseline
            )
            self.gipp_files = write_gipp_set(settings, home / "cfg")
            self.gipp_science = gipp_science_settings(
                self.gipp_files, self.dem, self.dem_staged, str(self.sc.baseline)
            )
        except S2kitError as exc:
            return _Failure("gipp", str(exc))
        try:
            exe = l2a_process_exe(self.cfg, self.env, self.sc)
        except S2kitError as exc:
            return _Failure("setup", str(exc))
        argv = l2a_process_argv(
            exe, input_dir, out, self.sc.resolution, sen2cor_gipp_args(home / "cfg"), work
        )
        child_env = dict(self.env)
        child_env["SEN2COR_HOME"] = str(home)
        timeout = timeout_seconds(self.cfg, self.env, self.sc)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"s2kit: SEN2COR_HOME={shell_line([str(home)])}\n")
            fh.write(f"s2kit: timeout {timeout:g} s, Nr_Threads {self.threads[0]} ({self.threads[1]})\n")
            fh.write(f"s2kit: command: {shell_line(argv)}\n")
            fh.write("s2kit: ---- L2A_Process output ----\n")
        offset = log.stat().st_size
        self.meter = Meter(interval=sample_interval(self.env), cores=self.threads[0])
        run = run_logged(
            argv, log, child_env, timeout, kill_grace_seconds(self.env), cwd=work, meter=self.meter
        )
        if run.timed_out:
            return _Failure(
                "timeout",
                f"L2A_Process ran longer than {timeout:g} s; its process group was killed "
                f"({', '.join(run.signals) or 'already gone'})",
                run.returncode,
            )
        if run.returncode == -signal.SIGKILL and self.meter.oom_kills:
            peak = (run.resources or {}).get("peak_rss_mb")
            return _Failure(
                "oom",
                f"L2A_Process was killed by the kernel's OOM killer at the memory limit of its cgroup"
                f" (oom_kill +{self.meter.oom_kills}; peak summed RSS {peak} MB)",
                run.returncode,
            )
        if run.returncode != 0:
            assert run.returncode is not None
            what = str(run.returncode) if run.returncode > 0 else signal_name(run.returncode)
            tail = last_line(log, offset)
            return _Failure("exit-code", what + (f" ({tail[:200]})" if tail else ""), run.returncode)
        errors = scan_log(log, offset)
        if errors:
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            return _Failure("log-error", errors[0].strip()[:200] + more, 0)
        if self.dem is not None:  # a DEM was given: Sen2Cor going on flat is a failure, never an L2A
            flat = flat_terrain_lines(log, offset, (home / "log", work))
            if flat:
                return _Failure(DEM_NOT_USED, f"Sen2Cor did not use the DEM: {flat[0].strip()[:200]}", 0)
        products = find_products(out)
        if not products:
            return _Failure("no-output", "L2A_Process exited 0 but wrote no S2*_MSIL2A_*.SAFE", 0)
        if len(products) > 1:
            return _Failure("multiple-outputs", ", ".join(p.name for p in products), 0)
        product = products[0]
        report = validate_product(product, expect_sen2cor=self.sc.version)
        codes = [f.code for f in report.findings if f.severity == "error"]
        if report.processing_baseline is not None and report.processing_baseline != self.baseline:
            codes.append("baseline-mismatch")
        if not self._same_scene(product):
            codes.append("wrong-product")
        if codes:
            with open(log, "a", encoding="utf-8") as fh:
                for f in report.findings:
                    fh.write(f"s2kit: validation: {f.severity} {f.code}: {f.message} [{f.path}]\n")
                if "baseline-mismatch" in codes:
                    fh.write(
                        f"s2kit: validation: error baseline-mismatch: expected processing baseline "
                        f"{self.baseline}, found {report.processing_baseline}\n"
                    )
                if "wrong-product" in codes:
                    fh.write(
                        f"s2kit: validation: error wrong-product: {product.name} is not from {self.scene}\n"
                    )
            return _Failure("validation", ",".join(dict.fromkeys(codes)), 0)
        self.home_check = check_home(home, work, input_dir, exe, child_env)  # issue 14: which home it used
        if self.home_check["problem"]:
            return _Failure(HOME_IGNORED, self.home_check["problem"], run.returncode)
        return _Success(product, report, run)

    def _same_scene(self, product: Path) -> bool:
        try:
            l1c, l2a = parse_product_name(self.scene), parse_product_name(product.name)
        except InputError:
            return False
        return (l1c.sensing_start, l1c.relative_orbit, l1c.mgrs_tile, l1c.spacecraft) == (
            l2a.sensing_start,
            l2a.relative_orbit,
            l2a.mgrs_tile,
            l2a.spacecraft,
        )

    # ----------------------------------------------------------------- publish
    def _provenance(self, ok: _Success, final: Path, attempt: int, log: Path, started: str) -> Provenance:
        r = ok.report
        return Provenance(
            {
                "schema": PROVENANCE_SCHEMA,
                "scene": self.scene,
                "validated": True,
                "l1c": {
                    "scene": self.scene,
                    "path": self.entry.l1c_path,
                    "processing_baseline": self.entry.processing_baseline,
                    "mgrs_tile": self.entry.mgrs_tile,
                    **self.input_note,
                },
                "l2a": {
                    "name": final.name,
                    "path": str(final),
                    "processing_baseline": r.processing_baseline,
                    "warnings": [f"{f.code}: {f.message}" for f in r.findings if f.severity == "warning"],
                },
                "sen2cor": {
                    "version": self.sc.version,  # the version that ran this scene
                    "version_in_metadata": r.sen2cor_version,
                    "route": self.entry.route,  # why this version (the plan's one line)
                    "runtime": self.sc.runtime,
                    "executable": ok.run.argv[0],
                    "argv": ok.run.argv,
                    "resolution": self.sc.resolution,
                    "baseline": self.baseline,
                    "baseline_rule": self.sc.baseline,
                    "seconds": round(ok.run.seconds, 3),
                    "home_check": self.home_check,
                },
                "gipp": {
                    "threads": self.threads[0],
                    "threads_from": self.threads[1],
                    "files": {p.name: sha256_file(p) for p in self.gipp_files},
                    # what decides the science, per-task paths normalised (s2kit.sen2cor): the
                    # report compares this digest across the batch
                    "settings_sha256": settings_sha256(self.gipp_science),
                    "settings": self.gipp_science,
                    "settings_excluded": list(SETTINGS_EXCLUDED),
                },
                "dem": self._dem_record(),
                "container": container_record(self.cfg, self.rd, self.env, self.sc),
                "s2kit_version": __version__,
                "host": self.host,
                "pid": self.pid,
                "job_id": self.job_id,
                "attempt": attempt,
                "started": started,
                "ended": _now(),
                "exit_code": ok.run.returncode,
                "log": str(log),
                "resources": self._resources(),
            }
        )

    @property
    def _dem_kind(self) -> str:
        """``sen2cor.dem`` ("srtm", "cop-dem-glo30", "cop-dem-glo90", "none"), resolved by the config."""
        return self.sc.dem or default_dem_kind(self.sc.version)

    def _dem_record(self) -> dict[str, Any]:
        if self.sc.dem == "none":
            return {"mode": "none", "note": NO_DEM_NOTE, "dir": None, "staged_as": None, "files": []}
        rec: dict[str, Any] = {
            "mode": self._dem_kind,
            "dir": str(self.dem) if self.dem is not None else None,
            "staged_as": str(self.dem_staged) if self.dem_staged is not None else None,
            "files": dem_files(self.dem),
        }
        if self.dem is not None and (self.dem / "dem.json").is_file():
            rec["dem_json_sha256"] = sha256_file(self.dem / "dem.json")  # s2kit.dem's record of the set
        return rec

    def _publish(self, ok: _Success, attempt: int, log: Path, started: str) -> Path:
        l2a_dir = self.cfg.paths.l2a_dir
        l2a_dir.mkdir(parents=True, exist_ok=True)
        final = l2a_dir / ok.product.name
        partial = l2a_dir / (PARTIAL_PREFIX + ok.product.name)
        if final.exists() or sidecar_path(final).exists():
            raise InputError("expected a new product name in the L2A dir, found it taken", final)
        # Tell a successor what to clean up if we die from here on.
        self._state("running", attempt, started=started, log=str(log), l2a=str(final))
        self.publishing = final
        prov = self._provenance(ok, final, attempt, log, started)
        prov.write(self.rd.provenance_file(self.scene))
        shutil.rmtree(partial, ignore_errors=True)
        try:
            os.rename(ok.product, partial)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copytree(ok.product, partial, symlinks=True)
        prov.write(sidecar_path(final))
        os.rename(partial, final)
        with contextlib.suppress(OSError):
            fd = os.open(l2a_dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.publishing = None
        return final

    # ----------------------------------------------------------------- cleanup
    def _keep_sen2cor_logs(self, log: Path) -> None:
        src = self.attempt_home / "log" if self.attempt_home is not None else None
        if src is None or not src.is_dir():
            return
        dest = log.with_suffix(".sen2cor")
        total = 0
        for f in sorted(src.rglob("*")):
            if f.is_file() and not f.is_symlink():
                total += f.stat().st_size
                if total > _SEN2COR_LOG_COPY_LIMIT:
                    break
                target = dest / f.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)

    def _drop_scratch(self, keep: Path | None = None) -> None:
        if self.keep_scratch:
            return
        for d in list(self.made):
            if d != keep:
                shutil.rmtree(d, ignore_errors=True)
                self.made.remove(d)
        with contextlib.suppress(OSError):
            self.scratch.rmdir()  # only when empty

    # ----------------------------------------------------------------- main
    def run(self) -> SceneState:
        prev = self.rd.read_state(self.scene)
        if is_published(prev):
            assert prev is not None
            return prev
        if prev is not None and prev.state == "running":
            recovered = self._recover(prev)  # we hold the lock: whoever wrote this is dead
            if recovered is not None:
                return recovered
        existing = published_product(self.cfg.paths.l2a_dir, self.scene)
        if existing is not None:  # its state was lost, or another run dir published it
            return self._adopt(existing, prev.attempt if prev else 0, None)
        self._clean_stale_scratch()
        attempt = (prev.attempt if prev else 0) + 1
        last = attempt + self.sc.retries
        log = self.rd.log_file(self.scene, attempt)
        try:
            while True:
                log = self.rd.log_file(self.scene, attempt)
                started = _now()
                self._state("running", attempt, started=started, log=str(log))
                try:
                    result: _Success | _Failure = self._attempt(attempt, log)
                except OSError as exc:  # scratch or log not writable, disk full, ...
                    result = _Failure("setup", str(exc))
                except Exception as exc:  # a bug: record it, then let it surface
                    self._failed(attempt, f"internal: {type(exc).__name__}: {exc}", log)
                    raise
                if isinstance(result, _Success):
                    existing = published_product(self.cfg.paths.l2a_dir, self.scene)
                    if existing is not None:  # another worker published it while we ran
                        return self._adopt(existing, attempt, log)
                    try:
                        final = self._publish(result, attempt, log, started)
                    except (OSError, S2kitError) as exc:
                        if self.publishing is not None:
                            self._abort_publication(self.publishing)
                            self.publishing = None
                        result = _Failure("publish", _one_line(exc), 0)
                    else:
                        _append(log, f"s2kit: attempt {attempt}: done, published {final}\n")
                        st = self._state(
                            "done",
                            attempt,
                            started=started,
                            ended=_now(),
                            log=str(log),
                            l2a=str(final),
                            exit_code=0,
                            resources=self._resources(),
                        )
                        return st
                _append(log, f"s2kit: attempt {attempt} failed: {result.reason}\n")
                self._keep_sen2cor_logs(log)
                if not result.retryable or attempt >= last:
                    return self._failed(attempt, result.reason, log, result.exit_code)
                self._drop_scratch(keep=self._input_root())
                attempt += 1
        except WorkerInterrupted as exc:
            if self.publishing is not None:
                self._abort_publication(self.publishing)
            name = signal.Signals(exc.signum).name
            _append(log, f"s2kit: interrupted by {name}\n")
            if walltime_reached(self.env):  # the scheduler's time limit, not a scancel/bkill
                why = f"walltime: the job's time limit was reached (worker received {name})"
                self._failed(attempt, why, log)
            else:
                self._failed(attempt, f"signal: worker received {name}", log)
            raise
        finally:
            self._drop_scratch()

    def _input_root(self) -> Path | None:
        return next((d for d in self.made if d.name.startswith("input-")), None)


_REASON_LIMIT = 300
#: ``str(OSError)``: "[Errno 28] No space left on device: '/path'"
_OSERROR_TEXT_RE = re.compile(r"\A\[Errno -?\d+\] (?P<strerror>[^:]*)")


def route_problem(table: Any, entry: PlanEntry) -> str | None:
    """One line when the plan line names a Sen2Cor the config does not give this L1C: another
    version than its route entry, or one whose baseline gate the L1C passes (Sen2Cor 2.9 on an
    L1C >= 04.00 writes an L2A without the -1000 offset that validates clean). The worker's own
    check (submit has :func:`s2kit.plan.route_problem`), on the light config view too."""
    pb = entry.processing_baseline
    try:  # the baseline in the product's own name wins over a plan line's
        named = parse_product_name(entry.scene).processing_baseline
    except InputError:
        named = None
    if named and pb and named != pb:
        return (
            f"expected the baseline of {entry.scene} ({named}) in plan.jsonl, found {pb} "
            "(edited, or made with another config); run `s2kit plan` again"
        )
    pb = named or pb
    m = re.fullmatch(r"([0-9]{2})\.([0-9]{2})", pb or "")
    key = (int(m[1]), int(m[2])) if m else None
    route = list(getattr(table, "route", None) or [])
    if route and entry.sen2cor is not None and pb is not None:
        want = str(route[-1].version)
        for e in route:
            below = getattr(e, "below_baseline", None)
            bm = re.fullmatch(r"([0-9]{2})\.([0-9]{2})", str(below or ""))
            if below is None or (key is not None and bm and key < (int(bm[1]), int(bm[2]))):
                want = str(e.version)
                break
        if want != entry.sen2cor:
            return (
                f"expected Sen2Cor {want} for baseline {pb} (sen2cor.route), found {entry.sen2cor!r} in "
                "plan.jsonl (edited, or made with another config); run `s2kit plan` again"
            )
    runs = entry.sen2cor or str(table.version)
    gate = BASELINE_GATE.get(runs)
    if gate is not None and key is not None and key >= gate:
        return (
            f"expected an L1C below baseline {gate[0]:02d}.{gate[1]:02d} for Sen2Cor {runs}, found {pb} "
            "(it ignores the -1000 radiometric offset: the L2A would be wrong); run `s2kit plan` again"
        )
    return None


def _one_line(exc: BaseException) -> str:
    """``Read-only file system (PATH)`` for an OSError, else the message's first line; at most
    300 characters either way (a ``shutil.Error`` lists every file that failed)."""
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        first = exc.args[0][0]  # copytree: a list of (src, dst, why), why = str(OSError)
        if isinstance(first, tuple) and len(first) == 3:
            _src, dst, why = first
            m = _OSERROR_TEXT_RE.match(str(why))
            what = m["strerror"] if m else str(why)  # the path in why is a repr: use dst
            more = len(exc.args[0]) - 1
            text = f"{what} ({display_path(str(dst))})" + (f" (+{more} more)" if more else "")
            return runs.one_line(text, _REASON_LIMIT)
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({display_path(exc.filename)})" if exc.filename else ""
        text = f"{exc.strerror}{where}"
    else:
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 3] + "..."


def _append(path: Path, text: str) -> None:
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def run_scene(
    cfg: BatchConfig,
    run_dir: str | os.PathLike[str],
    scene: str,
    *,
    env: Mapping[str, str] | None = None,
) -> SceneState:
    """Process one scene under its lock and return its final state.

    Raises :class:`~s2kit.runs.SceneLocked` (touching nothing) when another worker holds the
    scene, :class:`~s2kit.errors.InputError` when the scene is not a todo of the plan.
    """
    rd = RunDir(run_dir)
    entry = rd.find_entry(strip_product_suffix(scene))
    if entry.decision == "skipped":
        raise InputError(
            f"expected a scene to process, found it planned as skipped ({entry.reason})", rd.plan_file
        )
    with rd.lock(entry.scene):
        return _Task(cfg, rd, entry, os.environ if env is None else env).run()


# --------------------------------------------------------------------------- CLI entry
@dataclass
class TaskOutcome:
    exit_code: int
    message: str
    scene: str | None = None
    state: SceneState | None = None


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise WorkerInterrupted(signum)


def run_task(
    run_dir: str | os.PathLike[str],
    batch: str = "all",
    index: int | None = None,
    offset: int = 0,
    env: Mapping[str, str] | None = None,
    handle_signals: bool = False,
) -> TaskOutcome:
    """What ``s2kit worker`` does: never raises for a scene outcome, returns the exit code."""
    env = os.environ if env is None else env
    rd = RunDir(run_dir)
    try:
        cfg = load_snapshot(rd)  # plan's validated snapshot, read without pydantic (s2kit.config_view)
        scene = rd.scene_for_index(batch, task_index(index, offset, env))
    except S2kitError as exc:
        return TaskOutcome(EXIT_USAGE, f"s2kit: error: {exc}")
    old: dict[signal.Signals, Any] = {}
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            old[sig] = signal.signal(sig, _raise_interrupt)
    try:
        st = run_scene(cfg, rd.path, scene, env=env)
    except SceneLocked as exc:
        return TaskOutcome(EXIT_LOCKED, f"s2kit: worker: {scene}: {exc}", scene)
    except WorkerInterrupted as exc:
        st2 = rd.read_state(scene)
        return TaskOutcome(EXIT_FAILED, f"s2kit: worker: {scene}: failed: signal: {exc}", scene, st2)
    except S2kitError as exc:
        return TaskOutcome(EXIT_FAILED, f"s2kit: error: {exc}", scene)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if st.state == "done":
        return TaskOutcome(
            EXIT_DONE, f"s2kit: worker: {scene}: done: {display_path(st.l2a or '')}", scene, st
        )
    log = display_path(st.log) if st.log else "-"
    return TaskOutcome(EXIT_FAILED, f"s2kit: worker: {scene}: failed: {st.reason} (log: {log})", scene, st)
