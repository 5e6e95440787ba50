"""Running ESA Sen2Cor's ``L2A_Process`` for one scene: command, environment, process, log.

The pieces a worker (:mod:`s2kit.worker`) puts together, each usable on its own:

* :func:`l2a_process_exe` -- where ``L2A_Process`` is: ``install_dir/bin/L2A_Process`` for
  ``runtime = "native"``; inside the Apptainer image ``$SEN2COR_BIN`` (when it names an
  executable file) or ``L2A_Process`` on ``PATH``.
* :func:`l2a_process_argv` -- the Sen2Cor 2.9 command line (pure).
* :func:`run_logged` -- run a command in its own session (so its own process group),
  stdout+stderr appended to a log file, with a timeout that kills the WHOLE process group
  (SIGTERM, then SIGKILL after a grace period).  The direct child also gets
  ``PR_SET_PDEATHSIG`` so it dies with the worker.
* :func:`scan_log` -- ``CRITICAL``/``ERROR`` lines Sen2Cor logs even when it exits 0.
* :func:`find_products` -- the ``S2*_MSIL2A_*.SAFE`` folders Sen2Cor wrote.
* :func:`dem_for_tile`, :func:`task_threads`, :func:`gipp_settings` -- what the task's GIPP
  set is rendered from (DEM folder of the tile, never another one; allocated cores, baseline).
* :func:`gipp_science_settings`, :func:`settings_sha256` -- the values of a rendered GIPP set
  that decide the science, per-task paths normalised: what ``s2kit report`` compares.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import BatchConfig
from .dem import tile_dem_dir
from .errors import ConfigError, InputError
from .gipp import GippSettings, allocated_cores, normalize_version, threads_domain
from .xmlsafe import localname, parse_xml

__all__ = [
    "L2A_GLOB",
    "RunResult",
    "dem_files",
    "dem_for_tile",
    "stage_dem",
    "find_products",
    "gipp_science_settings",
    "gipp_settings",
    "inside_container",
    "kill_process_group",
    "l2a_process_argv",
    "l2a_process_exe",
    "run_logged",
    "scan_log",
    "settings_sha256",
    "sha256_file",
    "task_threads",
    "timeout_seconds",
]

#: What Sen2Cor names its output (``..._N9999_...`` or ``..._N0300_...`` with baseline 03.00).
L2A_GLOB = "S2*_MSIL2A_*.SAFE"
#: Lines of Sen2Cor output that make an attempt fail even with exit code 0.
_LOG_ERROR_RE = re.compile(r"\b(?:CRITICAL|ERROR)\b|terminated with at least one error")
_CONTAINER_VARS = ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER")
DEFAULT_KILL_GRACE_SECONDS = 30.0


# --------------------------------------------------------------------------- where and how
def inside_container(env: Mapping[str, str] | None = None) -> str | None:
    """The image this process runs in (Apptainer/Singularity set these inside), else None."""
    env = os.environ if env is None else env
    for var in _CONTAINER_VARS:
        if env.get(var, "").strip():
            return env[var].strip()
    return None


def l2a_process_exe(cfg: BatchConfig, env: Mapping[str, str] | None = None) -> str:
    """Path of ``L2A_Process`` for this config, as this process (native or in the image) sees it."""
    env = os.environ if env is None else env
    if cfg.sen2cor.runtime == "native":
        assert cfg.sen2cor.install_dir is not None  # config validation guarantees it
        exe = cfg.sen2cor.install_dir / "bin" / "L2A_Process"
        if not os.access(exe, os.X_OK) or not exe.is_file():
            raise ConfigError(
                "expected an executable bin/L2A_Process in sen2cor.install_dir, found none", exe
            )
        return str(exe)
    # Inside the image. Sen2Cor's own installer uses SEN2COR_BIN for its *package* folder,
    # so only an executable file counts here.
    named = env.get("SEN2COR_BIN", "").strip()
    if named and os.path.isfile(named) and os.access(named, os.X_OK):
        return named
    found = shutil.which("L2A_Process", path=env.get("PATH", os.defpath))
    if found:
        return found
    raise ConfigError(
        "expected L2A_Process in the image ($SEN2COR_BIN naming the executable, or on PATH), "
        f"found neither (container: {inside_container(env) or 'not inside one'})"
    )


def l2a_process_argv(
    exe: str,
    input_dir: Path,
    output_dir: Path,
    resolution: int | None,
    gipp_args: Sequence[str],
    work_dir: Path | None = None,
) -> list[str]:
    """``L2A_Process INPUT --output_dir OUT [--resolution R] [--work_dir W] --GIP_L2A ... `` (pure)."""
    argv = [exe, str(input_dir), "--output_dir", str(output_dir)]
    if resolution is not None:
        argv += ["--resolution", str(resolution)]
    if work_dir is not None:
        argv += ["--work_dir", str(work_dir)]
    return [*argv, *gipp_args]


def timeout_seconds(cfg: BatchConfig, env: Mapping[str, str] | None = None) -> float:
    """``S2KIT_TIMEOUT_SECONDS`` if set (tests, quick reruns), else ``sen2cor.timeout_minutes``."""
    env = os.environ if env is None else env
    text = env.get("S2KIT_TIMEOUT_SECONDS", "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise ConfigError(f"expected S2KIT_TIMEOUT_SECONDS > 0, found {text!r}")
        return value
    return cfg.sen2cor.timeout_minutes * 60.0


def kill_grace_seconds(env: Mapping[str, str] | None = None) -> float:
    env = os.environ if env is None else env
    text = env.get("S2KIT_KILL_GRACE_SECONDS", "").strip()
    try:
        return max(0.0, float(text)) if text else DEFAULT_KILL_GRACE_SECONDS
    except ValueError:
        return DEFAULT_KILL_GRACE_SECONDS


# --------------------------------------------------------------------------- GIPP inputs
def dem_for_tile(dem_dir: Path | None, tile: str | None) -> Path | None:
    """``dem_dir/<tile>/`` (or ``dem_dir/T<tile>/``) when it is a folder, else None.

    Never ``dem_dir`` itself nor another tile's folder: a scene without its tile's DEM is
    not processed (``sen2cor.dem = "srtm"``) unless flat terrain was asked for explicitly
    (``sen2cor.dem = "none"``).
    """
    return tile_dem_dir(dem_dir, tile)


def dem_files(dem: Path | None, limit: int = 2000) -> list[dict[str, object]]:
    """Name (relative) and size of each DEM file: enough to tell DEM sets apart cheaply."""
    if dem is None:
        return []
    out: list[dict[str, object]] = []
    for dirpath, dirs, files in os.walk(dem):
        dirs.sort()
        for name in sorted(files):
            p = Path(dirpath) / name
            with contextlib.suppress(OSError):
                out.append({"name": p.relative_to(dem).as_posix(), "size": p.stat().st_size})
            if len(out) >= limit:
                return out
    return out


def stage_dem(dem: Path, dest: Path) -> Path:
    """A private, writable DEM folder for one task: symlinks to the files of *dem*.

    Sen2Cor extracts ``srtm_XX_YY.tif`` from the zip INTO ``DEM_Directory`` and shifts it in
    place, so the shared DEM folder would need to be writable (it is bound read-only in the
    container) and concurrent tasks of one tile would race on the same ``.tif``. A ``.tif``
    with a ``.zip`` of the same name beside it is left out: Sen2Cor would prefer a stale
    leftover to the prepared zip.
    """
    dest.mkdir(parents=True, exist_ok=True)
    names = sorted(os.listdir(dem))
    zips = {n[:-4].lower() for n in names if n.lower().endswith(".zip")}
    for name in names:
        src = dem / name
        if name.lower().endswith(".tif") and name[:-4].lower() in zips:
            continue
        if src.is_file():
            os.symlink(src.absolute(), dest / name)
    return dest


def task_threads(cfg: BatchConfig, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Nr_Threads: cores LSF/Slurm allocated, else ``scheduler.cores_per_task``; capped (2.9: 1-8)."""
    _, low, high = threads_domain(cfg.sen2cor.version)
    alloc = allocated_cores(env)
    count, source = alloc if alloc else (cfg.scheduler.cores_per_task, "scheduler.cores_per_task")
    return max(low, min(count, high)), source


def gipp_settings(cfg: BatchConfig, dem: Path | None, threads: int) -> GippSettings:
    return GippSettings(
        sen2cor=normalize_version(cfg.sen2cor.version),
        dem_dir=str(dem.absolute()) if dem is not None else None,
        threads=threads,
        baseline=cfg.sen2cor.baseline,
    )


#: GIPP values left out of :func:`gipp_science_settings`: Nr_Threads only sets how many
#: processes Sen2Cor runs in parallel (it is recorded on its own as ``gipp.threads``).
SETTINGS_EXCLUDED = ("L2A_GIPP.xml:Common_Section/Nr_Threads",)
#: GIPP values that hold the per-task (scratch) path of the staged DEM folder.
SETTINGS_DEM_PATHS = (
    "L2A_GIPP.xml:Common_Section/DEM_Directory",
    "L2A_GIPP.xml:Common_Section/DEM_Reference",
)
DEM_PLACEHOLDER = "<tile>"


def _flatten(el: Any, path: str, out: dict[str, str]) -> None:
    kids = [k for k in el if localname(k)]
    for attr in sorted(el.attrib):
        out[f"{path}/@{attr}"] = str(el.attrib[attr]).strip()
    if not kids:
        out[path] = (el.text or "").strip()
        return
    seen: dict[str, int] = {}
    for k in kids:
        tag = localname(k)
        seen[tag] = seen.get(tag, 0) + 1
    n: dict[str, int] = {}
    for k in kids:
        tag = localname(k)
        n[tag] = n.get(tag, 0) + 1
        _flatten(k, f"{path}/{tag}[{n[tag]}]" if seen[tag] > 1 else f"{path}/{tag}", out)


def gipp_science_settings(files: Sequence[Path], dem: Path | None, staged: Path | None) -> dict[str, str]:
    """Every value of the GIPP files Sen2Cor got that decides the science, normalised so that
    tasks of one consistent batch agree: ``"<file>:<element path>" -> value``.

    * DEM_Directory / DEM_Reference: the per-task staged copy (*staged*, in scratch) is replaced
      by what it points to, ``<dem_dir>/<tile>/`` (the DEM folder of the scene's tile, with
      the tile written as ``<tile>`` so tiles of one batch agree); ``NONE`` stays ``NONE``;
      any other value (e.g. a remote DEM_Reference) is kept as it is;
    * Nr_Threads is left out (:data:`SETTINGS_EXCLUDED`): it sets parallelism, not results.
    """
    staged_text = str(staged.absolute()).rstrip("/") if staged is not None else None
    dem_text = f"{dem.absolute().parent}/{DEM_PLACEHOLDER}/" if dem is not None else None
    out: dict[str, str] = {}
    for f in sorted(files, key=lambda p: p.name):
        root = parse_xml(f.read_bytes(), f)
        flat: dict[str, str] = {}
        for k in root:
            if localname(k):
                _flatten(k, localname(k), flat)
        for key, value in flat.items():
            full = f"{f.name}:{key}"
            if full in SETTINGS_EXCLUDED:
                continue
            if full in SETTINGS_DEM_PATHS and staged_text and value.rstrip("/") == staged_text and dem_text:
                value = dem_text
            out[full] = value
    return dict(sorted(out.items()))


def settings_sha256(settings: Mapping[str, str]) -> str:
    """Digest of :func:`gipp_science_settings` (canonical JSON)."""
    text = json.dumps(dict(settings), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- process
@dataclass
class RunResult:
    argv: list[str]
    returncode: int | None  # negative: killed by that signal
    timed_out: bool
    seconds: float
    pid: int
    survivors_killed: int = 0  # processes of the group still alive after the leader exited
    signals: list[str] = field(default_factory=list)


def _pdeathsig() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _proc_stat(pid: str) -> tuple[str, int] | None:
    """(state, process group) of a process from ``/proc/<pid>/stat``; None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    try:
        return fields[0].decode(), int(fields[2])
    except (IndexError, ValueError):  # pragma: no cover - malformed stat
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group *pgid*.

    Zombies do not count: where PID 1 does not reap orphans (some container inits), an
    orphaned, killed member stays a zombie forever although it is dead.
    """
    if not os.path.isdir("/proc"):  # pragma: no cover - not Linux
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(name)
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
                out.append(int(name))
    return out


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def kill_process_group(pgid: int, grace: float, proc: subprocess.Popen[bytes] | None = None) -> list[str]:
    """SIGTERM the group, wait up to *grace* seconds for it to empty, then SIGKILL it."""
    sent: list[str] = []
    if not _group_alive(pgid):
        return sent
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
        sent.append("SIGTERM")
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()  # reap the leader, else it lingers as a zombie member of the group
        if not _group_alive(pgid):
            return sent
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
        sent.append("SIGKILL")
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    return sent


def run_logged(
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str],
    timeout: float,
    grace: float = DEFAULT_KILL_GRACE_SECONDS,
    cwd: Path | None = None,
) -> RunResult:
    """Run *argv* in a new session, output appended to *log_path*; kill its group on timeout.

    Also kills the group when the caller is interrupted (an exception such as the
    worker's SIGTERM handler raising) and any process the command left behind.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_pdeathsig if sys.platform.startswith("linux") else None,
        )
    pgid = proc.pid  # start_new_session: the child leads its own session and process group
    result = RunResult(argv=list(argv), returncode=None, timed_out=False, seconds=0.0, pid=proc.pid)
    try:
        try:
            result.returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            result.timed_out = True
            result.signals = kill_process_group(pgid, grace, proc)
            result.returncode = proc.wait()
    except BaseException:
        kill_process_group(pgid, min(grace, 5.0), proc)
        raise
    if _group_alive(pgid):  # the leader exited but left children behind: they go too
        result.survivors_killed = 1
        kill_process_group(pgid, min(grace, 5.0))
    result.seconds = time.monotonic() - start
    return result


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


# --------------------------------------------------------------------------- output
def iter_log_lines(log_path: Path, offset: int = 0) -> Iterator[str]:
    with open(log_path, "rb") as fh:
        fh.seek(offset)
        for raw in fh:
            yield raw.decode("utf-8", "replace").rstrip("\r\n")


def scan_log(log_path: Path, offset: int = 0) -> list[str]:
    """Lines from *offset* on that report a Sen2Cor CRITICAL/ERROR."""
    try:
        return [line for line in iter_log_lines(log_path, offset) if _LOG_ERROR_RE.search(line)]
    except FileNotFoundError:
        return []


def last_line(log_path: Path, offset: int = 0) -> str | None:
    last = None
    with contextlib.suppress(FileNotFoundError):
        for line in iter_log_lines(log_path, offset):
            if line.strip():
                last = line.strip()
    return last


def find_products(output_dir: Path) -> list[Path]:
    """The L2A product folders Sen2Cor wrote into *output_dir*, sorted."""
    return sorted(p for p in output_dir.glob(L2A_GLOB) if p.is_dir())


def sha256_file(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    except OSError as exc:
        raise InputError(f"expected a readable file to hash, found: {exc.strerror}", path) from exc
    return h.hexdigest()
