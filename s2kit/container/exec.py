"""How a compute node starts the s2kit worker: inside the Apptainer image, or natively.

Pure functions: configuration in, argument list out (golden-tested). Commands are
argument lists; :func:`shell_line` quotes them with ``shlex.quote`` for job scripts.

With ``runtime = "apptainer"`` every array task runs::

    apptainer exec --cleanenv --no-home --env SLURM_ARRAY_TASK_ID="${SLURM_ARRAY_TASK_ID:-}" ...
        --bind L1C:L1C:ro --bind DEM:DEM:ro --bind SCRATCH:SCRATCH:rw
        --bind L2A:L2A:rw --bind RUN:RUN:rw IMAGE s2kit worker --run-dir RUN ...

Paths are bound at the *same* path inside the container, so a path in the plan,
the state files and the provenance means the same file on the login node, on the
compute node and inside the image. Inputs and the DEM are read-only; scratch,
the L2A dir and the run dir are writable. ``--cleanenv`` keeps the caller's
environment (and any ``SEN2COR_HOME`` of a shared ``~/sen2cor``) out; the
scheduler's task variables the worker needs are passed explicitly with ``--env``.
``--no-home`` keeps ``$HOME`` (where Sen2Cor would otherwise put ``~/sen2cor``)
unmounted; the worker gives each task its own ``SEN2COR_HOME`` in scratch.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, display_path

# Scheduler variables the worker reads inside the container (passed through --cleanenv) and
# their quoting in a job script are scheduler knowledge: s2kit.schedulers.env (re-exported).
from ..schedulers.env import TASK_ENV_VARS, passthrough, shell_line

if TYPE_CHECKING:  # pydantic: not on the worker's start-up path (issue 17)
    from ..config import BatchConfig, Sen2CorConfig

__all__ = ["binds", "check_binds", "worker_argv", "shell_line", "TASK_ENV_VARS", "native_s2kit"]


def binds(
    cfg: BatchConfig, run_dir: Path | None = None, sc: Sen2CorConfig | None = None
) -> list[tuple[str, str]]:
    """(path, mode) pairs, de-duplicated, in a stable order: inputs ro first.

    *sc*: the Sen2Cor settings of the version the task runs (its image is bound; a route entry's,
    ``cfg.sen2cor_for(version)``); default ``cfg.sen2cor``.

    A path used both as an input and as an output (e.g. ``l2a_dir`` = an L1C dir) is bound
    once, writable: the worker must be able to publish there. The image file itself is
    bound read-only so the worker can record its sha256 in the provenance.
    """
    modes: dict[str, str] = {}

    def add(p: Path | None, mode: str) -> None:
        if p is None:
            return
        s = str(p)
        if modes.get(s) != "rw":
            modes[s] = mode

    for d in cfg.paths.l1c_dirs:
        add(d, "ro")
    add(cfg.paths.dem_dir, "ro")
    add((cfg.sen2cor if sc is None else sc).image, "ro")
    add(cfg.paths.scratch_dir, "rw")
    add(cfg.paths.l2a_dir, "rw")
    add(run_dir or cfg.paths.run_dir, "rw")
    return list(modes.items())


def _bind_spec(path: str, mode: str) -> str:
    if ":" in path or "," in path:
        # apptainer's --bind syntax uses ':' and ',' as separators and has no escape
        raise ConfigError(
            f"expected a path without ':' or ',' (apptainer --bind cannot express it), found {path!r}"
        )
    return f"{path}:{path}:{mode}"


def native_s2kit() -> str:
    """The s2kit executable of this installation (what a native job script calls)."""
    candidate = Path(sys.executable).parent / "s2kit"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("s2kit")
    return found or "s2kit"


def worker_argv(
    cfg: BatchConfig,
    run_dir: Path | None = None,
    s2kit_exe: str | None = None,
    sc: Sen2CorConfig | None = None,
) -> list[str]:
    """The command an array task runs, up to (not including) ``--batch``/``--offset``.

    *sc*: the Sen2Cor settings of the version the array runs (a route entry's image, runtime);
    default ``cfg.sen2cor``."""
    sc = cfg.sen2cor if sc is None else sc
    rd = str(run_dir or cfg.paths.run_dir)
    tail = ["worker", "--run-dir", rd]
    if sc.runtime == "native":
        return [s2kit_exe or native_s2kit(), *tail]
    assert sc.image is not None
    argv = [sc.apptainer, "exec", "--cleanenv", "--no-home"]
    for var in TASK_ENV_VARS:
        argv += ["--env", passthrough(var)]
    for path, mode in binds(cfg, Path(rd), sc):
        argv += ["--bind", _bind_spec(path, mode)]
    argv += [str(sc.image), "s2kit", *tail]
    return argv


def check_binds(
    cfg: BatchConfig,
    run_dir: Path | None = None,
    *,
    create_writable: bool = True,
    sc: Sen2CorConfig | None = None,
    image_key: str = "sen2cor.image",
) -> list[tuple[str, str]]:
    """Verify every path ``apptainer exec`` will bind for *cfg*; return the (path, mode) binds.

    Apptainer only notices a missing bind source when a task starts on a compute node
    (``FATAL: container creation failed: mount hook function failure: mount X->X error:
    while mounting X: mount source X doesn't exist``), once per task. This check runs before
    anything is launched: read-only sources (L1C dirs, DEM, image) must exist; writable ones
    (scratch, L2A, run dir) are created when *create_writable*, else must exist. A native
    runtime binds nothing and passes. *sc* / *image_key*: the version whose image is bound (a
    route entry: ``cfg.sen2cor_for(version)``, ``sen2cor.route[i].image``); default ``cfg.sen2cor``.
    """
    sc = cfg.sen2cor if sc is None else sc
    if sc.runtime != "apptainer":
        return []
    rd: Path = run_dir or cfg.paths.run_dir
    keys: dict[str, str] = {}
    for i, p in enumerate(cfg.paths.l1c_dirs):
        keys.setdefault(str(p), f"paths.l1c_dirs[{i}]")
    named: list[tuple[str, Path | None]] = [
        ("paths.dem_dir", cfg.paths.dem_dir),
        (image_key, sc.image),
        ("paths.scratch_dir", cfg.paths.scratch_dir),
        ("paths.l2a_dir", cfg.paths.l2a_dir),
        ("run dir", rd),
    ]
    for key, maybe in named:
        if maybe is not None:
            keys.setdefault(str(maybe), key)
    pairs = binds(cfg, rd, sc)
    problems: list[str] = []
    to_create: list[Path] = []
    for path, mode in pairs:
        key = keys.get(path, "bind")
        p = Path(path)
        if not p.is_absolute():
            problems.append(f"{key} {display_path(p)}: not an absolute path")
        elif ":" in path or "," in path:
            problems.append(f"{key} {display_path(p)}: ':' or ',' cannot be bound by apptainer")
        elif mode == "ro" and not p.exists():
            problems.append(f"{key} {display_path(p)} (read-only): does not exist")
        elif key == image_key and not p.is_file():
            problems.append(f"{key} {display_path(p)}: not a file")
        elif mode == "rw" and not p.is_dir():
            if p.exists():
                problems.append(f"{key} {display_path(p)} (writable): not a directory")
            elif create_writable:
                to_create.append(p)
            else:
                problems.append(f"{key} {display_path(p)} (writable): does not exist")
    if not problems:  # create only when everything else is fine
        for p in to_create:
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                key = keys.get(str(p), "bind")
                problems.append(f"{key} {display_path(p)} (writable): cannot be created ({exc.strerror})")
    if problems:
        raise ConfigError(
            "expected every path apptainer exec binds to exist, found: "
            + "; ".join(problems)
            + " (nothing launched)",
            cfg.source,
        )
    return pairs
