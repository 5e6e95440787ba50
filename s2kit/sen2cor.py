"""Running ESA Sen2Cor's ``L2A_Process`` for one scene: command, environment, process, log.

The pieces a worker (:mod:`s2kit.worker`) puts together, each usable on its own:

* :func:`l2a_process_exe` -- where ``L2A_Process`` is: ``install_dir/bin/L2A_Process`` for
  ``runtime = "native"``; inside the Apptainer image ``$SEN2COR_BIN`` (when it names an
  executable file) or ``L2A_Process`` on ``PATH``.
* :func:`l2a_process_argv` -- the Sen2Cor 2.9 command line (pure).
* :func:`run_logged` -- (:mod:`s2kit.process`, re-exported) run a command in its own process
  group with a timeout that kills the WHOLE group (SIGTERM, then SIGKILL after a grace period).
* :func:`scan_log` -- ``CRITICAL``/``ERROR`` lines Sen2Cor logs even when it exits 0.
* :func:`find_products` -- the ``S2*_MSIL2A_*.SAFE`` folders Sen2Cor wrote.
* :func:`task_threads`, :func:`gipp_settings` -- what the task's GIPP set is rendered from
  (allocated cores, baseline; the tile's DEM folder comes from :func:`s2kit.dem.dem_for_tile`).
* :func:`gipp_science_settings`, :func:`settings_sha256` -- the values of a rendered GIPP set
  that decide the science, per-task paths normalised: what ``s2kit report`` compares.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import fsutil
from .dem import dem_files, dem_for_tile, stage_dem  # DEM resolution and staging: s2kit.dem
from .errors import ConfigError, InputError
from .gipp import GippSettings, allocated_cores, normalize_version, threads_domain
from .process import (  # process control lives in s2kit.process; these names stay importable here
    DEFAULT_KILL_GRACE_SECONDS,
    RunResult,
    group_members,
    kill_grace_seconds,
    kill_process_group,
    run_logged,
    signal_name,
)
from .versions import L1C_BASELINE
from .xmlsafe import localname, parse_xml

if TYPE_CHECKING:  # pydantic: not on the worker's start-up path (issue 17)
    from .config import BatchConfig, Sen2CorConfig

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
    "DEFAULT_KILL_GRACE_SECONDS",
    "group_members",
    "kill_grace_seconds",
    "kill_process_group",
    "signal_name",
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
#: what Sen2Cor logs when its DEM step failed and it goes on with flat terrain ("L2A_BAND_IO:
#: Application will continue with a flat terrain", Sen2Cor's L2A_BandIO in the public Sen2Cor 3
#: code; "Processing continues with a flat surface" is the GIPP's own wording): with
#: Force_Exit_On_DEM_Error FALSE, or where that flag is not honoured, the run still exits 0
_FLAT_TERRAIN_RE = re.compile(
    r"continue[sd]? with a flat (?:terrain|surface)|flat (?:terrain|surface) (?:is|will be) used", re.I
)
#: at most this much of Sen2Cor's own log files is read when looking for that line
_FLAT_SCAN_LIMIT = 64 * 1024 * 1024


# --------------------------------------------------------------------------- where and how
def inside_container(env: Mapping[str, str] | None = None) -> str | None:
    """The image this process runs in (Apptainer/Singularity set these inside), else None."""
    env = os.environ if env is None else env
    for var in _CONTAINER_VARS:
        if env.get(var, "").strip():
            return env[var].strip()
    return None


def l2a_process_exe(
    cfg: BatchConfig, env: Mapping[str, str] | None = None, sc: Sen2CorConfig | None = None
) -> str:
    """Path of ``L2A_Process`` for this config, as this process (native or in the image) sees it.

    *sc*: the effective Sen2Cor settings of the scene's version (``cfg.sen2cor_for(entry.sen2cor)``);
    default ``cfg.sen2cor``."""
    env = os.environ if env is None else env
    sc = cfg.sen2cor if sc is None else sc
    if sc.runtime == "native":
        assert sc.install_dir is not None  # config validation guarantees it
        exe = sc.install_dir / "bin" / "L2A_Process"
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


def timeout_seconds(
    cfg: BatchConfig, env: Mapping[str, str] | None = None, sc: Sen2CorConfig | None = None
) -> float:
    """``S2KIT_TIMEOUT_SECONDS`` if set (tests, quick reruns), else ``sen2cor.timeout_minutes``
    (of *sc*, the scene's version's settings; default ``cfg.sen2cor``)."""
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
    return (cfg.sen2cor if sc is None else sc).timeout_minutes * 60.0


# --------------------------------------------------------------------------- GIPP inputs
def task_threads(
    cfg: BatchConfig, env: Mapping[str, str] | None = None, sc: Sen2CorConfig | None = None
) -> tuple[int, str]:
    """Nr_Threads: cores LSF/Slurm allocated, else ``scheduler.cores_per_task``; capped (2.9: 1-8)."""
    _, low, high = threads_domain((cfg.sen2cor if sc is None else sc).version)
    alloc = allocated_cores(env)
    count, source = alloc if alloc else (cfg.scheduler.cores_per_task, "scheduler.cores_per_task")
    return max(low, min(count, high)), source


def gipp_settings(
    cfg: BatchConfig,
    dem: Path | None,
    threads: int,
    sc: Sen2CorConfig | None = None,
    *,
    dem_kind: str | None = None,
    baseline: str | None = None,
) -> GippSettings:
    """The GIPP set of one task: the version and baseline of *sc* (the scene's version's settings;
    default ``cfg.sen2cor``). *dem_kind*: the DEM in *dem* (``srtm``, ``cop-dem-glo30``,
    ``cop-dem-glo90``); None: *sc*'s ``dem`` when it has one, else the version's default
    (:func:`s2kit.versions.default_dem_kind`). A kind the version cannot use is refused
    (:class:`~s2kit.errors.ConfigError`), never swapped for another."""
    sc = cfg.sen2cor if sc is None else sc
    if dem_kind is None:
        dem_kind = getattr(sc, "dem", None)
    return GippSettings(
        sen2cor=normalize_version(sc.version),
        dem_dir=str(dem.absolute()) if dem is not None else None,
        threads=threads,
        baseline=baseline or str(sc.baseline),
        dem_kind=dem_kind,
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
#: the GIPP value of the output baseline (per scene with ``sen2cor.baseline = "l1c"``)
SETTINGS_BASELINE = "L2A_PB_GIPP.xml:DATA/Baseline_Version"


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


def gipp_science_settings(
    files: Sequence[Path], dem: Path | None, staged: Path | None, baseline_rule: str | None = None
) -> dict[str, str]:
    """Every value of the GIPP files Sen2Cor got that decides the science, normalised so that
    tasks of one consistent batch agree: ``"<file>:<element path>" -> value``.

    * DEM_Directory / DEM_Reference: the per-task staged copy (*staged*, in scratch) is replaced
      by what it points to, ``<dem_dir>/<tile>/`` (the DEM folder of the scene's tile, with
      the tile written as ``<tile>`` so tiles of one batch agree); ``NONE`` stays ``NONE``;
      any other value (e.g. a remote DEM_Reference) is kept as it is;
    * Baseline_Version with ``sen2cor.baseline = "l1c"`` (*baseline_rule*): each scene's own
      L1C baseline by design, written ``<l1c>`` so the scenes of one batch agree;
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
            if full == SETTINGS_BASELINE and baseline_rule == L1C_BASELINE:
                value = f"<{L1C_BASELINE}>"
            out[full] = value
    return dict(sorted(out.items()))


def settings_sha256(settings: Mapping[str, str]) -> str:
    """Digest of :func:`gipp_science_settings` (canonical JSON)."""
    text = json.dumps(dict(settings), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


def flat_terrain_lines(log_path: Path, offset: int = 0, log_dirs: Sequence[Path] = ()) -> list[str]:
    """Lines saying Sen2Cor went on with flat terrain: in the task log from *offset* on (what
    L2A_Process printed) and in Sen2Cor's own log files under *log_dirs* (its home's ``log/``,
    the work folder), at most :data:`_FLAT_SCAN_LIMIT` bytes of those."""
    found: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        found += [line for line in iter_log_lines(log_path, offset) if _FLAT_TERRAIN_RE.search(line)]
    budget = _FLAT_SCAN_LIMIT
    for folder in log_dirs:
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*")):
            if budget <= 0 or not f.is_file() or f.is_symlink():
                continue
            budget -= f.stat().st_size
            with contextlib.suppress(OSError):
                found += [line for line in iter_log_lines(f) if _FLAT_TERRAIN_RE.search(line)]
    return found


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
    """:func:`s2kit.fsutil.sha256_file`, with an unreadable file as one InputError."""
    try:
        return fsutil.sha256_file(path, chunk)
    except OSError as exc:
        raise InputError(f"expected a readable file to hash, found: {exc.strerror}", path) from exc
