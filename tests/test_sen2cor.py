"""s2kit.sen2cor: Sen2Cor command line, where L2A_Process is, process-group kill, log scan."""

from __future__ import annotations

import os
import signal
import stat
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from s2kit.config import BatchConfig
from s2kit.errors import ConfigError
from s2kit.sen2cor import (
    dem_files,
    dem_for_tile,
    find_products,
    l2a_process_argv,
    l2a_process_exe,
    run_logged,
    scan_log,
    stage_dem,
    task_threads,
    timeout_seconds,
)
from tests.support import REPO, alive
from tests.support.configs import config_data

DOUBLE_HOME = REPO / "tests" / "sen2cor_double"
HOSTILE = "/data/dir with spaces 'quote' \"dq\" $HOME ünïcødé"


def make_cfg(tmp: Path, runtime: str = "native", **sen2cor: Any) -> BatchConfig:
    data = config_data(
        tmp, runtime=runtime, install_dir=DOUBLE_HOME, image=tmp / "sen2cor.sif", dem=None, sen2cor=sen2cor
    )
    return BatchConfig.model_validate(data)


def script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/bash\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def read_pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()]


# --------------------------------------------------------------------------- command
def test_l2a_process_argv_golden(data_regression: Any) -> None:
    base = Path(HOSTILE)
    gipp = [
        "--GIP_L2A",
        f"{HOSTILE}/home/cfg/L2A_GIPP.xml",
        "--GIP_L2A_PB",
        f"{HOSTILE}/home/cfg/L2A_PB_GIPP.xml",
    ]
    data_regression.check(
        {
            "r60_with_work_dir": l2a_process_argv(
                "/opt/Sen2Cor-02.09.00-Linux64/bin/L2A_Process",
                base / "l1c" / "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE",
                base / "out",
                60,
                gipp,
                base / "work",
            ),
            "all_resolutions": l2a_process_argv("L2A_Process", base / "in.SAFE", base / "out", None, []),
        }
    )


def test_native_executable_is_install_dir_bin(tmp_path: Path) -> None:
    assert l2a_process_exe(make_cfg(tmp_path), env={}) == str(DOUBLE_HOME / "bin" / "L2A_Process")
    with pytest.raises(ConfigError, match="bin/L2A_Process"):
        l2a_process_exe(make_cfg(tmp_path, install_dir=str(tmp_path / "nowhere")), env={})


def test_container_executable_from_sen2cor_bin_or_path(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, "apptainer")
    exe = script(tmp_path / "image bin" / "L2A_Process", "exit 0\n")
    assert l2a_process_exe(cfg, env={"SEN2COR_BIN": str(exe), "PATH": "/nonexistent"}) == str(exe)
    # Sen2Cor's own installer points SEN2COR_BIN at its python package folder: then use PATH
    on_path = {"SEN2COR_BIN": str(tmp_path), "PATH": str(exe.parent)}
    assert l2a_process_exe(cfg, env=on_path) == str(exe)
    with pytest.raises(ConfigError, match="expected L2A_Process in the image"):
        l2a_process_exe(cfg, env={"PATH": str(tmp_path / "empty"), "APPTAINER_CONTAINER": "/x.sif"})


def test_timeout_from_config_or_env(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, timeout_minutes=1.5)
    assert timeout_seconds(cfg, env={}) == 90.0
    assert timeout_seconds(cfg, env={"S2KIT_TIMEOUT_SECONDS": "0.5"}) == 0.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError, match="S2KIT_TIMEOUT_SECONDS"):
            timeout_seconds(cfg, env={"S2KIT_TIMEOUT_SECONDS": bad})


def test_threads_follow_the_allocation_capped_to_the_xsd(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    assert task_threads(cfg, env={}) == (1, "scheduler.cores_per_task")
    assert task_threads(cfg, env={"LSB_DJOB_NUMPROC": "3"}) == (3, "LSB_DJOB_NUMPROC")
    assert task_threads(cfg, env={"SLURM_CPUS_PER_TASK": "16"}) == (8, "SLURM_CPUS_PER_TASK")
    assert task_threads(cfg, env={"SLURM_CPUS_PER_TASK": ""}) == (1, "scheduler.cores_per_task")


def test_dem_of_the_tile_never_falls_back_to_the_root_or_another_tile(hostile_dir: Path) -> None:
    dem = hostile_dir / "dem"
    assert dem_for_tile(None, "46RER") is None
    assert dem_for_tile(dem, "46RER") is None  # configured but absent: no DEM
    dem.mkdir()
    (dem / "srtm_58_07.zip").write_bytes(b"PK")
    (dem / "17SQV").mkdir()
    assert dem_for_tile(dem, "46RER") is None  # neither the root (issue 12 item 4) nor 17SQV
    (dem / "46RER").mkdir()
    (dem / "46RER" / "srtm_58_06.zip").write_bytes(b"PK..")
    assert dem_for_tile(dem, "46RER") == dem / "46RER"
    assert dem_files(dem / "46RER") == [{"name": "srtm_58_06.zip", "size": 4}]


def test_stage_dem_links_files_but_not_tifs_shadowing_zips(hostile_dir: Path) -> None:
    dem = hostile_dir / "dem"
    dem.mkdir()
    for name in ("srtm_58_06.zip", "srtm_58_06.tif", "srtm_59_06.tif", "dem.json"):
        (dem / name).write_text(name)
    (dem / "sub").mkdir()
    staged = stage_dem(dem, hostile_dir / "task" / "dem")
    assert sorted(os.listdir(staged)) == ["dem.json", "srtm_58_06.zip", "srtm_59_06.tif"]
    assert all((staged / n).is_symlink() and (staged / n).read_text() == n for n in os.listdir(staged))


# --------------------------------------------------------------------------- process
def test_run_logged_logs_and_returns_the_exit_code(hostile_dir: Path) -> None:
    exe = script(hostile_dir / "bin" / "tool", 'echo "out $1"; echo "err" >&2; exit 3\n')
    log = hostile_dir / "logs" / "a.log"
    res = run_logged([str(exe), "x y"], log, env=dict(os.environ), timeout=30)
    assert (res.returncode, res.timed_out) == (3, False)
    assert log.read_text().splitlines() == ["out x y", "err"]


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    exe = script(
        tmp_path / "hang",
        f"""\
        sleep 300 &
        bash -c 'sleep 300' &
        echo "$$ $!" > '{pids}'
        trap '' TERM   # ignores SIGTERM: only the SIGKILL after the grace period ends it
        while :; do sleep 1; done
        """,
    )
    res = run_logged([str(exe)], tmp_path / "log", env=dict(os.environ), timeout=1, grace=0.5)
    assert res.timed_out
    assert res.signals == ["SIGTERM", "SIGKILL"]
    assert res.returncode == -signal.SIGKILL
    leader, child = read_pids(pids)
    assert leader == res.pid
    assert not alive(leader) and not alive(child)
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _pgid(p) == res.pid]


def _pgid(proc: Path) -> int | None:
    try:
        data = (proc / "stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[2]) if fields[0] not in (b"Z", b"X") else None


def test_processes_left_behind_after_exit_are_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    exe = script(tmp_path / "leaky", f"sleep 300 &\necho $! > '{pids}'\nexit 0\n")
    res = run_logged([str(exe)], tmp_path / "log", env=dict(os.environ), timeout=30, grace=1)
    assert res.returncode == 0 and res.survivors_killed == 1
    assert not alive(read_pids(pids)[0])


class _Interrupted(Exception):
    pass


def test_an_interrupted_caller_takes_the_group_down(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    exe = script(tmp_path / "hang", f"sleep 300 &\necho \"$$ $!\" > '{pids}'\nwait\n")

    def on_alarm(_sig: int, _frame: object) -> None:
        raise _Interrupted

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(_Interrupted):
            run_logged([str(exe)], tmp_path / "log", env=dict(os.environ), timeout=60, grace=1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not any(alive(p) for p in read_pids(pids))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_the_child_dies_with_its_worker(tmp_path: Path) -> None:
    """kill -9 of the worker: its direct child gets SIGKILL (PR_SET_PDEATHSIG)."""
    pids = tmp_path / "pids"
    exe = script(tmp_path / "hang", f"echo $$ > '{pids}'\nexec sleep 300\n")
    code = (
        "import os, sys; from pathlib import Path; from s2kit.sen2cor import run_logged;"
        f"run_logged([{str(exe)!r}], Path({str(tmp_path / 'log')!r}), dict(os.environ), 300)"
    )
    import subprocess

    worker = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = read_pids(pids)[0]
    assert alive(child)
    worker.kill()
    worker.wait()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


# --------------------------------------------------------------------------- output
def test_scan_log_finds_critical_and_error_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        "s2kit: header with ERROR that is not Sen2Cor's\n"
        "Force_Exit_On_DEM_Error: TRUE\n"
        "Progress[%]: 10.00 : no errors so far\n"
        "CRITICAL: DEM could not be read\n"
        "2021-09-08 ERROR: L2A_Tables: something\n"
        "Application terminated with at least one error.\n"
    )
    offset = len(log.read_text().splitlines()[0]) + 1
    assert scan_log(log, offset) == [
        "CRITICAL: DEM could not be read",
        "2021-09-08 ERROR: L2A_Tables: something",
        "Application terminated with at least one error.",
    ]
    assert scan_log(tmp_path / "missing.log") == []


def test_find_products_globs_sen2cor_names(tmp_path: Path) -> None:
    for name in (
        "S2A_MSIL2A_20210908T042701_N9999_R133_T46RER_20240101T000000.SAFE",
        "S2B_MSIL2A_20210908T042701_N0300_R133_T46RER_20240101T000001.SAFE",
        "L2A_T46RER_A032345_20210908T043651",
        "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE",
    ):
        (tmp_path / name).mkdir()
    (tmp_path / "S2A_MSIL2A_x.SAFE").write_text("a file, not a product")
    assert [p.name for p in find_products(tmp_path)] == [
        "S2A_MSIL2A_20210908T042701_N9999_R133_T46RER_20240101T000000.SAFE",
        "S2B_MSIL2A_20210908T042701_N0300_R133_T46RER_20240101T000001.SAFE",
    ]
