"""``s2kit doctor --probe-job`` and ``--sen2cor-smoke``: the two checks that run something real.

* :func:`probe_job_check` -- one tiny array job on the configured scheduler (Slurm: ``sbatch``;
  local: the same script run here) that runs, on a compute node and through ``apptainer exec`` with
  the batch's binds (or natively), a shell probe: host, apptainer version, every bind visible,
  the L2A and scratch dirs writable there, node memory and cores. The result file lands in
  ``<run_dir>/doctor/``; the doctor waits at most :data:`PROBE_WAIT_S` seconds for it.
* :func:`sen2cor_smoke_checks` -- Sen2Cor (from the image, or the native install) on one planned
  L1C with ``--cr_only`` (create the L2A product tree, no processing), run like the worker runs it:
  per-task ``SEN2COR_HOME`` with the GIPP set, staged input (symlink tree / extracted zip), the
  tile's staged DEM. Then: exit code and the log's final line; the product name pattern and its
  MTD's Sen2Cor version; where Sen2Cor wrote its log (:mod:`s2kit.sen2cor_home`: the task's home,
  nothing in ``$HOME/sen2cor``); the L1C store unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import BatchConfig
from .doctor import FAIL, PASS, WARN, Check
from .errors import S2kitError, display_path

__all__ = ["PROBE_SH", "PROBE_WAIT_S", "probe_job_check", "probe_script", "sen2cor_smoke_checks"]

PROBE_WAIT_S = 90.0
SMOKE_TIMEOUT_S = 300.0
_SUCCESS_RE = re.compile(r"Application terminated successfully")

# Runs on the node (inside the image with runtime apptainer). Arguments: RESULT_FILE, then
# "ro:PATH" / "rw:PATH" for every bind. Writes key=value lines (POSIX sh).
PROBE_SH = r"""#!/bin/sh
# s2kit doctor --probe-job: what an array task sees on its node (written by s2kit.doctor_probe)
out="$1"; shift
{
  echo "host=$(hostname 2>/dev/null || uname -n)"
  echo "cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
  echo "mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo 2>/dev/null)"
  echo "container=${APPTAINER_CONTAINER:-${SINGULARITY_CONTAINER:-none}}"
  echo "apptainer=${APPTAINER_VERSION:-${SINGULARITY_VERSION:-none}}"
  for spec in "$@"; do
    mode="${spec%%:*}"; path="${spec#*:}"
    [ "$mode" = rw ] && mkdir -p "$path" 2>/dev/null  # as the batch's job script does
    if [ ! -e "$path" ]; then echo "bind=missing $path"; continue; fi
    if [ "$mode" = rw ]; then
      probe="$path/.s2kit-probe-$$"
      if ( : > "$probe" ) 2>/dev/null; then rm -f "$probe"; echo "bind=writable $path"
      else echo "bind=unwritable $path"; fi
    else
      echo "bind=visible $path"
    fi
  done
  echo "done=1"
} > "$out.tmp" 2>&1
mv "$out.tmp" "$out"
"""


def probe_script(cfg: BatchConfig, probe_sh: Path, result: Path) -> list[str]:
    """The probe's argument list: ``apptainer exec ... IMAGE sh PROBE_SH RESULT SPEC...`` (the
    batch's own exec line up to the image) or ``sh PROBE_SH RESULT SPEC...`` natively. *probe_sh*
    holds :data:`PROBE_SH` and lies in the run dir, which the batch binds."""
    from .container import binds, worker_argv

    specs = [f"{mode}:{path}" for path, mode in binds(cfg)]
    if cfg.sen2cor.runtime == "native":
        specs = [f"ro:{p}" for p in cfg.paths.l1c_dirs] + [
            f"rw:{cfg.paths.scratch_dir}",
            f"rw:{cfg.paths.l2a_dir}",
            f"rw:{cfg.paths.run_dir}",
        ]
        return ["sh", str(probe_sh), str(result), *specs]
    argv = worker_argv(cfg)
    image_at = argv.index(str(cfg.sen2cor.image))
    return [*argv[: image_at + 1], "sh", str(probe_sh), str(result), *specs]


def _render_probe_job(cfg: BatchConfig, argv: list[str], log: Path) -> str:
    from .container import shell_line
    from .schedulers.base import hhmmss

    sch = cfg.scheduler
    lines = [
        "#!/bin/bash",
        "#SBATCH --job-name=s2kit-doctor-probe",
        "#SBATCH --array=0-0",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={sch.cores_per_task}",
        f"#SBATCH --mem={sch.memory_per_task_mb}",
        f"#SBATCH --time={hhmmss(5)}",
        f"#SBATCH --output={shlex.quote(str(log).replace('%', '%%'))}",
    ]
    if sch.queue:
        lines.append(f"#SBATCH --partition={shlex.quote(sch.queue)}")
    lines += [
        "# s2kit doctor --probe-job: what every array task of a batch sees on its node",
        shell_line(argv),
    ]
    return "\n".join(lines) + "\n"


def _parse_probe(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {"bind": []}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "bind":
            out["bind"].append(value)
        else:
            out[key] = value
    return out


def probe_job_check(cfg: BatchConfig, runner: Callable[..., Any] | None = None) -> list[Check]:
    """Submit the probe as a one-task array and turn its report into checks."""
    from .schedulers import SchedulerUnavailable, run_command

    run = runner or run_command
    kind = cfg.scheduler.kind
    if kind == "lsf":
        return [
            Check("probe job", WARN, "not available for LSF yet", "run one scene with s2kit submit instead")
        ]
    base = cfg.paths.run_dir / "doctor"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [
            Check(
                "probe job", FAIL, f"cannot create {display_path(base)}: {exc.strerror}", "fix paths.run_dir"
            )
        ]
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    result = base / f"probe-{stamp}.txt"
    log = base / f"probe-{stamp}.log"
    probe_sh = base / f"probe-{stamp}.sh"
    try:
        argv = probe_script(cfg, probe_sh, result)
    except S2kitError as exc:
        return [Check("probe job", FAIL, str(exc), "fix the paths the batch binds")]
    from .fsutil import atomic_write_text

    atomic_write_text(probe_sh, PROBE_SH)
    start = time.monotonic()
    if kind == "local":
        res = run(argv, timeout=PROBE_WAIT_S)
        where = f"ran here (exit {res.returncode})"
    else:
        script = base / f"probe-{stamp}.slurm"
        atomic_write_text(script, _render_probe_job(cfg, argv, log))
        try:
            res = run(["sbatch", "--parsable", *cfg.scheduler.extra_args, str(script)], cwd=base, timeout=60)
        except SchedulerUnavailable as exc:
            return [Check("probe job", FAIL, f"sbatch: {exc}", "run doctor on a login node")]
        if res.returncode != 0:
            return [
                Check("probe job", FAIL, f"sbatch refused the probe: {res.one_line()}", "see the message")
            ]
        job = res.stdout.strip().split(";", 1)[0]
        where = f"job {job}"
        while time.monotonic() - start < PROBE_WAIT_S and not result.exists():
            q = run(["squeue", "-h", "-j", job], timeout=30)
            if q.returncode == 0 and not q.stdout.strip():
                break  # gone from the queue
            time.sleep(2.0)
        if not result.exists():
            with contextlib.suppress(Exception):
                run(["scancel", job], timeout=30)
    seconds = time.monotonic() - start
    if not result.exists():
        tail = ""
        with contextlib.suppress(OSError):
            tail = log.read_text(errors="replace").strip().splitlines()[-1][:200]
        return [
            Check(
                "probe job",
                FAIL,
                f"no report from the probe ({where}) after {seconds:.0f} s" + (f": {tail}" if tail else ""),
                f"see {display_path(log)}; check squeue, and that the image and binds work on a node",
            )
        ]
    info = _parse_probe(result.read_text(errors="replace"))
    out = [
        Check(
            "probe job",
            PASS,
            f"{where} on {info.get('host', '?')} in {seconds:.0f} s: {info.get('cores', '?')} cores, "
            f"{info.get('mem_mb', '?')} MB, apptainer {info.get('apptainer', 'none')}",
        )
    ]
    bad = [b for b in info["bind"] if b.startswith(("missing", "unwritable"))]
    if bad:
        out.append(
            Check(
                "probe binds",
                FAIL,
                "on the node: " + "; ".join(bad),
                "make those folders exist and writable on the compute nodes (shared filesystem?)",
            )
        )
    else:
        out.append(
            Check("probe binds", PASS, f"{len(info['bind'])} path(s) visible, L2A/scratch/run writable")
        )
    need = cfg.scheduler.memory_per_task_mb
    mem = int(info["mem_mb"]) if str(info.get("mem_mb", "")).isdigit() else None
    if mem is not None and mem < need:
        out.append(Check("probe memory", FAIL, f"node {info.get('host')} has {mem} MB < {need} MB per task",
                         "lower scheduler.memory_per_task_gb or pick another queue"))  # fmt: skip
    return out


# =========================================================================== Sen2Cor smoke run
def _snapshot(path: Path) -> dict[str, tuple[int, int, int]]:
    """(mode, size, mtime_ns) of *path* and everything under it (symlinks not followed)."""
    out: dict[str, tuple[int, int, int]] = {}
    st = path.lstat()
    out["."] = (st.st_mode, st.st_size, st.st_mtime_ns)
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                p = Path(root) / name
                s = p.lstat()
                out[str(p.relative_to(path))] = (s.st_mode, s.st_size, s.st_mtime_ns)
    return out


def _stage(src: Path, dest: Path, scene: str) -> Path:
    """The worker's staging: a symlink tree of a .SAFE folder, or the extracted zip."""
    from .plan import repair_empty_dirs
    from .worker import extract_zip

    if src.is_file():
        product = extract_zip(src, dest, scene)
    else:
        product = dest / src.name
        for root, dirs, files in os.walk(src):
            rel = Path(root).relative_to(src)
            (product / rel).mkdir(parents=True, exist_ok=True)
            for f in files:
                (product / rel / f).symlink_to(Path(root) / f)
            dirs.sort()
    repair_empty_dirs(product)
    return product


def sen2cor_smoke_checks(cfg: BatchConfig, scene: str) -> list[Check]:
    """Run Sen2Cor ``--cr_only`` on *scene* as the worker would and check what it did."""
    from .container import binds
    from .plan import discover
    from .safe import parse_product_name, strip_product_suffix
    from .sen2cor import (
        dem_for_tile,
        find_products,
        gipp_settings,
        l2a_process_argv,
        l2a_process_exe,
        last_line,
        run_logged,
        stage_dem,
    )
    from .sen2cor_home import check_home
    from .validate import validate_product

    name = strip_product_suffix(Path(scene).name)
    cand = next((c for c in discover(cfg.paths.l1c_dirs) if c.scene == name), None)
    if cand is None or cand.problem is not None or cand.name is None:
        why = "not in paths.l1c_dirs" if cand is None else f"{(cand.problem or ('?', '?'))[1]}"
        return [
            Check("sen2cor smoke", FAIL, f"scene {name}: {why}", "name a scene 's2kit plan' lists as todo")
        ]
    smoke = cfg.paths.scratch_dir / f"doctor-smoke-{socket.gethostname()}-{os.getpid()}"
    home, out_dir, work = smoke / "sen2cor_home", smoke / "out", smoke / "work"
    log = smoke / "sen2cor.log"
    shutil.rmtree(smoke, ignore_errors=True)
    for d in (home, out_dir, work):
        d.mkdir(parents=True)
    before = _snapshot(cand.path)
    started = time.time()
    try:
        input_dir = _stage(cand.path, smoke / "input", name)
        kind = cfg.sen2cor.dem or "srtm"
        dem = None if kind == "none" else dem_for_tile(cfg.paths.dem_dir, cand.name.mgrs_tile, kind=kind)
        staged_dem = stage_dem(dem, smoke / "dem", kind=kind) if dem is not None else None
        from .gipp import sen2cor_gipp_args, write_gipp_set

        write_gipp_set(gipp_settings(cfg, staged_dem, 1), home / "cfg")
        gipp_args = sen2cor_gipp_args(home / "cfg")
        env = dict(os.environ)
        if cfg.sen2cor.runtime == "native":
            exe = l2a_process_exe(cfg)
            argv = l2a_process_argv(exe, input_dir, out_dir, cfg.sen2cor.resolution, gipp_args, work)
            env["SEN2COR_HOME"] = str(home)
        else:
            assert cfg.sen2cor.image is not None
            exe = "L2A_Process"
            argv = [cfg.sen2cor.apptainer, "exec", "--cleanenv", "--no-home", "--env", f"SEN2COR_HOME={home}"]
            for path, mode in binds(cfg):
                if mode == "rw":  # as the batch's job script does before apptainer exec
                    Path(path).mkdir(parents=True, exist_ok=True)
                argv += ["--bind", f"{path}:{path}:{mode}"]
            argv += [str(cfg.sen2cor.image)]
            argv += l2a_process_argv(exe, input_dir, out_dir, cfg.sen2cor.resolution, gipp_args, work)
        argv.append("--cr_only")
        run = run_logged(argv, log, env, SMOKE_TIMEOUT_S, grace=5.0, cwd=work)
    except (S2kitError, OSError) as exc:
        return [Check("sen2cor smoke", FAIL, f"could not start: {exc}", f"see {display_path(smoke)}")]
    checks: list[Check] = []
    final = last_line(log) or "(no output)"
    ok_run = run.returncode == 0 and not run.timed_out and bool(_SUCCESS_RE.search(final))
    checks.append(
        Check(
            "sen2cor smoke",
            PASS if ok_run else FAIL,
            f"--cr_only on {name}: exit {run.returncode}{' (timed out)' if run.timed_out else ''} in "
            f"{run.seconds:.1f} s; last line: {final[:160]}",
            "" if ok_run else f"read {display_path(log)}",
        )
    )
    after = _snapshot(cand.path)
    changed = sorted(set(before) ^ set(after) | {k for k in before if k in after and before[k] != after[k]})
    store = Check(
        "smoke store",
        FAIL if changed else PASS,
        f"L1C store changed: {', '.join(changed[:5])}" if changed else f"{display_path(cand.path)} unchanged",
        "report this: Sen2Cor wrote into its input although s2kit staged a copy" if changed else "",
    )
    if not ok_run:  # what follows would only repeat that Sen2Cor did not run
        return [*checks, store]
    products = find_products(out_dir)
    if len(products) != 1:
        checks.append(Check("smoke product", FAIL, f"expected one S2*_MSIL2A_*.SAFE, found {len(products)}",
                            f"read {display_path(log)}"))  # fmt: skip
    else:
        product = products[0]
        problem = None
        try:
            l2a = parse_product_name(product.name)
            if (l2a.level, l2a.mgrs_tile, l2a.sensing_start) != (
                "L2A",
                cand.name.mgrs_tile,
                cand.name.sensing_start,
            ):
                problem = f"{product.name} is not the L2A of {name}"
        except S2kitError as exc:
            problem = f"{product.name}: {exc}"
        report = validate_product(product, expect_sen2cor=cfg.sen2cor.version)
        mismatch = [f.message for f in report.findings if f.code == "sen2cor-version-mismatch"]
        if problem is None and mismatch:
            problem = mismatch[0]
        checks.append(
            Check(
                "smoke product",
                FAIL if problem else PASS,
                problem or f"{product.name}, MTD Sen2Cor version {report.sen2cor_version}",
                "set sen2cor.version to what the image/install holds" if problem else "",
            )
        )
    rec = check_home(
        home, work, input_dir, exe if cfg.sen2cor.runtime == "native" else str(home), env, started - 1
    )
    checks.append(
        Check(
            "smoke sen2cor home",
            FAIL if rec["problem"] else PASS,
            rec["problem"]
            or f"log under the task's {rec['log_in']}: "
            + ", ".join(Path(f).name for fs in rec["files"].values() for f in fs[:2]),
            "rebuild the image with this s2kit (make container), or on a native install run: "
            "containers/install-sen2cor.sh --rewrite-home INSTALL_DIR"
            if rec["problem"]
            else "",
        )
    )
    checks.append(store)
    if all(c.status == PASS for c in checks):
        shutil.rmtree(smoke, ignore_errors=True)
    else:
        (smoke / "doctor.json").write_text(json.dumps([c.__dict__ for c in checks], indent=1) + "\n")
    return checks
