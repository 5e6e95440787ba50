"""s2kit doctor (issue 14): every check passes on a good site and FAILs on its planted fault.

Schedulers and Apptainer are faked at the subprocess boundary: small executables named
``sinfo``, ``scontrol``, ``lsid``, ``bqueues``, ``lshosts``, ``bparams``, ``apptainer`` on PATH
that print what the real commands print (formats of Slurm 22.05 / LSF 10.1 / Apptainer 1.4).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from s2kit.doctor import (
    FAIL,
    PASS,
    WARN,
    DoctorReport,
    parse_bqueues_runlimit,
    parse_slurm_minutes,
    run_checks,
)
from s2kit.tiles import tile_geometry
from tests.support.safe_trees import build_l1c_tree

TILE = "46RER"  # the tile of the real 03.01 L1C fixture

SINFO = "debug*|1-00:00:00|21300|2|1\nlong|UNLIMITED|64000|16|4\n"
SCONTROL = (
    "Configuration data as of 2026-12-03T07:00:00\nMaxArraySize            = 1001\nMaxJobCount = 10000\n"
)
LSID = (
    "IBM Spectrum LSF Standard 10.1.0.13, Apr 15 2022\n\nMy cluster name is lab1\nMy master name is hostA\n"
)
BQUEUES = """QUEUE: normal
  -- For normal low priority jobs.  This is the default queue.

PARAMETERS/STATISTICS
PRIO NICE STATUS          MAX JL/U JL/P JL/H NJOBS  PEND   RUN SSUSP USUSP  RSV PJOBS
 30   20  Open:Active       -    -    -    -     0     0     0     0     0    0     0

 RUNLIMIT
 720.0 min

SCHEDULING PARAMETERS
"""
LSHOSTS = (
    "HOST_NAME      type    model  cpuf ncpus maxmem maxswp server RESOURCES\n"
    "hostA        X86_64 Intel_EM64T  60.0    40   256G     8G    Yes (mg)\n"
)
LABELS = {
    "org.s2kit.sen2cor.version": "2.9",
    "org.s2kit.sen2cor.installer": "Sen2Cor-02.09.00-Linux64.run",
    "org.s2kit.sen2cor.installer.sha256": "a" * 64,
    "org.s2kit.sen2cor.installer.pinned": "table",
    "org.s2kit.version": "0.1.0",
    "org.s2kit.base": "bootstrap=debootstrap",
    "org.s2kit.esacci.digest": "b" * 64,
    "org.s2kit.sen2cor.home-rewrite": "L2A_Bashrc: SEN2COR_HOME=${SEN2COR_HOME:-/root/sen2cor/2.9}",
}


# ----------------------------------------------------------------------------- fakes and configs
def fake(bin_dir: Path, name: str, script: str) -> None:
    """An executable *name* in *bin_dir* running the sh *script* (FAKE, not the real command)."""
    bin_dir.mkdir(exist_ok=True)
    p = bin_dir / name
    p.write_text(f"#!/bin/sh\n# FAKE {name} for tests/test_doctor.py\n{script}\n")
    p.chmod(0o755)


def reply(text: str, rc: int = 0) -> str:
    return f"cat <<'EOF'\n{text}EOF\nexit {rc}"


@pytest.fixture
def fakebin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "fakebin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("LSF_ENVDIR", raising=False)
    monkeypatch.setenv("LSF_ENVDIR", str(tmp_path / "no-lsf"))
    return d


def slurm_fakes(bin_dir: Path, sinfo: str = SINFO) -> None:
    fake(bin_dir, "sinfo", reply(sinfo))
    fake(bin_dir, "scontrol", reply(SCONTROL))


def lsf_fakes(bin_dir: Path, bqueues: str = BQUEUES) -> None:
    fake(bin_dir, "lsid", reply(LSID))
    fake(
        bin_dir,
        "bqueues",
        'case "$2" in normal|"") '
        + reply(bqueues).replace("exit 0", ";;")
        + '\n*) echo "$2: No such queue. Job not submitted." >&2; exit 255 ;; esac',
    )
    fake(bin_dir, "lshosts", reply(LSHOSTS))
    fake(bin_dir, "bparams", reply("System default queue for a job is normal\nMAX_JOB_ARRAY_SIZE = 1000\n"))


def apptainer_fake(bin_dir: Path, labels: dict[str, str] | None = None, version: str = "1.4.5") -> None:
    doc = json.dumps({"data": {"attributes": {"labels": LABELS if labels is None else labels}}})
    fake(
        bin_dir,
        "apptainer",
        f'case "$1" in --version) echo "apptainer version {version}" ;;\n'
        f"inspect) cat <<'EOF'\n{doc}\nEOF\n;;\n*) echo unknown >&2; exit 2 ;; esac",
    )


def make_site(tmp: Path, *, dem: bool = True, **sections: dict[str, object]) -> Path:
    """A config file with one planned real L1C (tile 46RER) and its DEM zips."""
    tmp.mkdir(parents=True, exist_ok=True)
    build_l1c_tree(tmp / "l1c", "03.01")
    if dem:
        (tmp / "dem" / TILE).mkdir(parents=True)
        for name in tile_geometry(TILE, 0.0).srtm_tiles:
            (tmp / "dem" / TILE / f"{name}.zip").write_bytes(b"PK placeholder, not a DEM")
    else:
        (tmp / "dem").mkdir()
    inst = tmp / "sen2cor" / "bin"
    inst.mkdir(parents=True)
    (inst / "L2A_Process").write_text("#!/bin/sh\nexit 0\n")
    (inst / "L2A_Process").chmod(0o755)
    data: dict[str, dict[str, object]] = {
        "paths": {
            "l1c_dirs": ["l1c"],
            "l2a_dir": "l2a",
            "dem_dir": "dem",
            "scratch_dir": "scratch",
            "run_dir": "run",
        },
        "sen2cor": {"runtime": "native", "install_dir": "sen2cor"},
        "scheduler": {"kind": "local", "memory_per_task_gb": 0.01, "max_concurrent": 1},
    }
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    lines = []
    for sec, values in data.items():
        lines.append(f"[{sec}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    cfg = tmp / "s2kit.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def by_name(report: DoctorReport) -> dict[str, tuple[str, str, str]]:
    return {c.name: (c.status, c.value, c.fix) for c in report.checks}


def only_fail(report: DoctorReport) -> tuple[str, str, str]:
    fails = [(c.name, c.value, c.fix) for c in report.checks if c.status == FAIL]
    assert len(fails) == 1, report.table()
    return fails[0]


# ----------------------------------------------------------------------------- parsers
@pytest.mark.parametrize(
    ("text", "minutes"),
    [("UNLIMITED", None), ("infinite", None), ("30", 30), ("30:01", 31), ("02:00:00", 120),
     ("1-00:00:00", 1440), ("2-03", 2 * 1440 + 180), ("1-01:30", 1530)],
)  # fmt: skip
def test_parse_slurm_minutes(text: str, minutes: int | None) -> None:
    assert parse_slurm_minutes(text) == minutes


def test_parse_bqueues_runlimit_takes_the_largest() -> None:
    assert parse_bqueues_runlimit(BQUEUES) == 720
    two = "DEFAULT LIMITS:\n RUNLIMIT\n 60.0 min\n\nMAXIMUM LIMITS:\n RUNLIMIT\n 1440.0 min of hostA\n"
    assert parse_bqueues_runlimit(two) == 1440
    assert parse_bqueues_runlimit("QUEUE: x\n") is None


# ----------------------------------------------------------------------------- config and folders
def test_all_pass_on_a_good_local_site(tmp_path: Path, fakebin: Path) -> None:
    cfg, report = run_checks(make_site(tmp_path))
    assert cfg is not None and report.ok, report.table()
    names = by_name(report)
    assert {"config", "paths.l1c_dirs[0]", "paths.scratch_dir", "paths.l2a_dir", "dem", "scheduler"} <= set(
        names
    )
    assert names["dem"][0] == PASS and TILE in names["dem"][1]
    assert "1 .SAFE/.zip" in names["paths.l1c_dirs[0]"][1]
    assert "GB free" in names["paths.l2a_dir"][1]


def test_invalid_config_is_one_fail(tmp_path: Path) -> None:
    cfg_file = make_site(tmp_path, scheduler={"walltime": "99"})
    cfg, report = run_checks(cfg_file)
    assert cfg is None
    name, value, _ = only_fail(report)
    assert name == "config" and "scheduler.walltime" in value


def test_missing_l1c_dir_fails(tmp_path: Path) -> None:
    cfg_file = make_site(tmp_path, paths={"l1c_dirs": ["l1c", "nowhere"]})
    _, report = run_checks(cfg_file)
    assert only_fail(report)[:2] == ("paths.l1c_dirs[1]", f"no folder at {tmp_path / 'nowhere'}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_l2a_dir_fails(tmp_path: Path) -> None:
    cfg_file = make_site(tmp_path)
    (tmp_path / "l2a").mkdir(mode=0o555)
    _, report = run_checks(cfg_file)
    name, value, fix = only_fail(report)
    assert name == "paths.l2a_dir" and "not writable" in value and "mkdir -p" in fix


def test_l2a_dir_under_a_file_fails(tmp_path: Path) -> None:
    """Runs as root too: a path below a regular file can never be made."""
    (tmp_path / "afile").write_text("x")
    cfg_file = make_site(tmp_path, paths={"l2a_dir": "afile/l2a"})
    _, report = run_checks(cfg_file)
    name, value, _ = only_fail(report)
    assert name == "paths.l2a_dir" and "is not writable" in value


def test_missing_dem_zip_fails_with_the_prepare_command(tmp_path: Path) -> None:
    cfg_file = make_site(tmp_path)
    first = sorted((tmp_path / "dem" / TILE).iterdir())[0]
    first.unlink()
    _, report = run_checks(cfg_file)
    name, value, fix = only_fail(report)
    assert name == "dem" and TILE in value and first.name in value
    assert fix.startswith(f"s2kit dem prepare --tile {TILE} ")


def test_flat_terrain_needs_no_dem(tmp_path: Path) -> None:
    _, report = run_checks(make_site(tmp_path, dem=False, sen2cor={"dem": "none"}))
    assert by_name(report)["dem"][0] == PASS and report.ok


def test_native_install_without_l2a_process_fails(tmp_path: Path) -> None:
    cfg_file = make_site(tmp_path)
    (tmp_path / "sen2cor" / "bin" / "L2A_Process").unlink()
    _, report = run_checks(cfg_file)
    assert only_fail(report)[0] == "sen2cor install"


def test_local_memory_too_big_fails(tmp_path: Path) -> None:
    _, report = run_checks(make_site(tmp_path, scheduler={"memory_per_task_gb": 16000}))
    name, value, _ = only_fail(report)
    assert name == "scheduler memory" and "16384000 MB" in value


# ----------------------------------------------------------------------------- Slurm
def test_slurm_all_pass(tmp_path: Path, fakebin: Path) -> None:
    slurm_fakes(fakebin)
    _, report = run_checks(make_site(tmp_path, scheduler={"kind": "slurm", "walltime": "02:00"}))
    assert report.ok, report.table()
    names = by_name(report)
    assert names["queue"] == (PASS, "partition debug (default)", "")
    assert names["walltime"][1] == "02:00 <= run limit 24:00"
    assert (
        "MaxArraySize=1001" in names["array size"][1]
        and "1 scene(s) -> 1 array job(s)" in names["array size"][1]
    )
    assert "21300 MB available" in names["memory"][1]


def test_slurm_unreachable_fails(tmp_path: Path, fakebin: Path) -> None:
    fake(
        fakebin,
        "sinfo",
        reply("", 1).replace(
            "cat <<'EOF'\nEOF",
            "echo 'slurm_load_partitions: Unable to contact slurm controller (connect failure)' >&2",
        ),
    )
    _, report = run_checks(make_site(tmp_path, scheduler={"kind": "slurm"}))
    name, value, _ = only_fail(report)
    assert name == "scheduler" and "Unable to contact slurm controller" in value


def test_slurm_missing_sinfo_fails(tmp_path: Path, fakebin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(fakebin))  # nothing named sinfo there
    cfg_file = make_site(tmp_path, scheduler={"kind": "slurm"})
    _, report = run_checks(cfg_file)
    assert only_fail(report)[0] == "scheduler"


def test_slurm_unknown_partition_fails(tmp_path: Path, fakebin: Path) -> None:
    slurm_fakes(fakebin)
    _, report = run_checks(make_site(tmp_path, scheduler={"kind": "slurm", "queue": "gpu"}))
    name, value, _ = only_fail(report)
    assert name == "queue" and "'gpu'" in value and "debug, long" in value


def test_slurm_walltime_above_max_time_fails(tmp_path: Path, fakebin: Path) -> None:
    slurm_fakes(fakebin, sinfo="short*|30:00|21300|2|1\n")
    _, report = run_checks(make_site(tmp_path, scheduler={"kind": "slurm", "walltime": "02:00"}))
    name, value, fix = only_fail(report)
    assert name == "walltime" and "02:00 <= the queue's run limit 0:30" in value
    assert "at most 0:30" in fix


def test_slurm_unlimited_partition_passes_any_walltime(tmp_path: Path, fakebin: Path) -> None:
    slurm_fakes(fakebin)
    _, report = run_checks(
        make_site(tmp_path, scheduler={"kind": "slurm", "queue": "long", "walltime": "200:00"})
    )
    assert by_name(report)["walltime"] == (PASS, "200:00 <= run limit UNLIMITED", "")


def test_slurm_memory_above_largest_node_fails(tmp_path: Path, fakebin: Path) -> None:
    slurm_fakes(fakebin)
    _, report = run_checks(make_site(tmp_path, scheduler={"kind": "slurm", "memory_per_task_gb": 32}))
    name, value, _ = only_fail(report)
    assert name == "memory" and "found 21300 MB" in value


def test_slurm_array_size_above_site_limit_fails(tmp_path: Path, fakebin: Path) -> None:
    slurm_fakes(fakebin)
    _, report = run_checks(make_site(tmp_path, scheduler={"kind": "slurm", "max_array_size": 5000}))
    name, value, _ = only_fail(report)
    assert name == "array size" and "5000 > site limit 1001" in value


def test_slurm_max_concurrent_above_array_limit_warns(tmp_path: Path, fakebin: Path) -> None:
    slurm_fakes(fakebin)
    _, report = run_checks(make_site(tmp_path, scheduler={"kind": "slurm", "max_concurrent": 5000}))
    assert report.ok
    assert by_name(report)["max_concurrent"][0] == WARN


# ----------------------------------------------------------------------------- LSF
def test_lsf_all_pass(tmp_path: Path, fakebin: Path) -> None:
    lsf_fakes(fakebin)
    _, report = run_checks(
        make_site(tmp_path, scheduler={"kind": "lsf", "queue": "normal", "walltime": "12:00"})
    )
    assert report.ok, report.table()
    names = by_name(report)
    assert names["scheduler"][1] == "lsf: lsid: cluster lab1"
    assert names["walltime"][1] == "12:00 <= run limit 720 min"
    assert "262144 MB available" in names["memory"][1]
    assert "MAX_JOB_ARRAY_SIZE=1000" in names["array size"][1]


def test_lsf_unreachable_fails(tmp_path: Path, fakebin: Path) -> None:
    fake(fakebin, "lsid", "echo 'ls_getclustername(): LIM is down; try later' >&2; exit 255")
    _, report = run_checks(make_site(tmp_path, scheduler={"kind": "lsf"}))
    name, value, _ = only_fail(report)
    assert name == "scheduler" and "LIM is down" in value


def test_lsf_unknown_queue_fails(tmp_path: Path, fakebin: Path) -> None:
    lsf_fakes(fakebin)
    _, report = run_checks(make_site(tmp_path, scheduler={"kind": "lsf", "queue": "nosuch"}))
    name, value, _ = only_fail(report)
    assert name == "queue" and "No such queue" in value


def test_lsf_walltime_above_runlimit_fails(tmp_path: Path, fakebin: Path) -> None:
    lsf_fakes(fakebin)
    _, report = run_checks(
        make_site(tmp_path, scheduler={"kind": "lsf", "queue": "normal", "walltime": "12:01"})
    )
    name, value, _ = only_fail(report)
    assert name == "walltime" and "12:01" in value and "720 min" in value


def test_lsf_memory_above_largest_host_fails(tmp_path: Path, fakebin: Path) -> None:
    lsf_fakes(fakebin)
    _, report = run_checks(
        make_site(tmp_path, scheduler={"kind": "lsf", "queue": "normal", "memory_per_task_gb": 300})
    )
    name, value, _ = only_fail(report)
    assert name == "memory" and "found 262144 MB" in value


# ----------------------------------------------------------------------------- Apptainer and the image
def image_site(tmp: Path) -> Path:
    (tmp / "img.sif").write_bytes(b"not a real SIF: the fake apptainer answers for it")
    return make_site(tmp, sen2cor={"runtime": "apptainer", "image": "img.sif"})


def test_image_all_pass(tmp_path: Path, fakebin: Path) -> None:
    apptainer_fake(fakebin)
    _, report = run_checks(image_site(tmp_path))
    assert report.ok, report.table()
    names = by_name(report)
    assert names["apptainer"] == (PASS, "apptainer version 1.4.5", "")
    assert "Sen2Cor 2.9" in names["image labels"][1] and "pinned: table" in names["image labels"][1]
    assert names["esacci"][0] == PASS and "bbbbbbbb" in names["esacci"][1]
    assert names["sen2cor home"][0] == PASS
    assert names["binds"][0] == PASS


def test_no_apptainer_fails(tmp_path: Path, fakebin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = image_site(tmp_path)
    monkeypatch.setenv("PATH", str(fakebin))
    _, report = run_checks(cfg_file)
    assert only_fail(report)[0] == "apptainer"


def test_old_apptainer_warns(tmp_path: Path, fakebin: Path) -> None:
    apptainer_fake(fakebin, version="1.1.9")
    _, report = run_checks(image_site(tmp_path))
    assert report.ok and by_name(report)["apptainer"][0] == WARN


def test_missing_image_fails(tmp_path: Path, fakebin: Path) -> None:
    apptainer_fake(fakebin)
    cfg_file = image_site(tmp_path)
    (tmp_path / "img.sif").unlink()
    _, report = run_checks(cfg_file)
    names = [c.name for c in report.checks if c.status == FAIL]
    assert names == ["image", "binds"], report.table()  # the image is bound read-only too
    assert "make container" in by_name(report)["image"][2]


def test_image_without_esacci_fails(tmp_path: Path, fakebin: Path) -> None:
    apptainer_fake(fakebin, {**LABELS, "org.s2kit.esacci.digest": "none"})
    _, report = run_checks(image_site(tmp_path))
    name, value, fix = only_fail(report)
    assert name == "esacci" and "without ESACCI-LC" in value and "ESACCI=" in fix


def test_image_of_another_sen2cor_version_fails(tmp_path: Path, fakebin: Path) -> None:
    apptainer_fake(fakebin, {**LABELS, "org.s2kit.sen2cor.version": "2.11"})
    _, report = run_checks(image_site(tmp_path))
    name, value, _ = only_fail(report)
    assert name == "image labels" and "found 2.11" in value


def test_image_without_s2kit_labels_fails(tmp_path: Path, fakebin: Path) -> None:
    apptainer_fake(fakebin, {k: v for k, v in LABELS.items() if k != "org.s2kit.sen2cor.installer.sha256"})
    _, report = run_checks(image_site(tmp_path))
    name, value, _ = only_fail(report)
    assert name == "image labels" and "org.s2kit.sen2cor.installer.sha256" in value


def test_unpinned_installer_and_no_home_rewrite_warn(tmp_path: Path, fakebin: Path) -> None:
    labels = {**LABELS, "org.s2kit.sen2cor.installer.pinned": "none (trust on first use)"}
    del labels["org.s2kit.sen2cor.home-rewrite"]
    apptainer_fake(fakebin, labels)
    _, report = run_checks(image_site(tmp_path))
    names = by_name(report)
    assert report.ok and names["image labels"][0] == WARN and names["sen2cor home"][0] == WARN


def test_missing_bind_source_fails(tmp_path: Path, fakebin: Path) -> None:
    apptainer_fake(fakebin)
    cfg_file = image_site(tmp_path)
    cfg_file.write_text(cfg_file.read_text().replace('l1c_dirs = ["l1c"]', 'l1c_dirs = ["l1c", "gone"]'))
    _, report = run_checks(cfg_file)
    fails = {c.name: c.value for c in report.checks if c.status == FAIL}
    assert (
        set(fails) == {"paths.l1c_dirs[1]", "binds"} and "gone (read-only) does not exist" in fails["binds"]
    )


# ----------------------------------------------------------------------------- CLI
def test_cli_table_and_exit_codes(tmp_path: Path, fakebin: Path, s2kit_exe: str) -> None:
    slurm_fakes(fakebin, sinfo="short*|30:00|21300|2|1\n")
    cfg_file = make_site(tmp_path, scheduler={"kind": "slurm", "walltime": "02:00"})
    env = {**os.environ}
    bad = subprocess.run(
        [s2kit_exe, "doctor", "--config", str(cfg_file)], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 1, bad.stderr
    head, *rows = bad.stdout.splitlines()
    assert head.split()[:4] == ["CHECK", "STATUS", "VALUE", "WHAT"]
    wall = next(r for r in rows if r.startswith("walltime"))
    assert " FAIL " in wall and "set scheduler.walltime to at most 0:30" in wall
    slurm_fakes(fakebin)
    good = subprocess.run(
        [s2kit_exe, "doctor", "--config", str(cfg_file), "--json"], capture_output=True, text=True, env=env
    )
    assert good.returncode == 0, good.stdout
    doc = json.loads(good.stdout)
    assert doc["ok"] is True and doc["counts"]["FAIL"] == 0
    assert {c["status"] for c in doc["checks"]} <= {PASS, WARN}


def test_cli_bad_config_is_a_fail_row_not_a_traceback(tmp_path: Path, s2kit_exe: str) -> None:
    proc = subprocess.run(
        [s2kit_exe, "doctor", "--config", str(tmp_path / "missing.toml")], capture_output=True, text=True
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert any(r.startswith("config") and " FAIL " in r for r in proc.stdout.splitlines())


# ----------------------------------------------------------------------------- install-sen2cor.sh: SEN2COR_HOME
SCRIPT = Path(__file__).resolve().parents[1] / "containers" / "install-sen2cor.sh"


def installed_standin(tmp: Path) -> tuple[Path, Path]:
    """The stand-in installer's tree after its startup script ran as a user with home *tmp*/builder
    (what makeself does in --target): L2A_Bashrc hard-codes that home in SEN2COR_HOME."""
    from tests.support.standins import stage_standin

    target = stage_standin(tmp / "Sen2Cor-02.09.00-Linux64")
    home = tmp / "builder"
    home.mkdir()
    proc = subprocess.run(
        ["sh", "./setup.sh"],
        cwd=target,
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return target, home


def sourced_home(target: Path, **env: str) -> str:
    """SEN2COR_HOME after sourcing the install's L2A_Bashrc, as bin/L2A_Process does."""
    proc = subprocess.run(
        ["bash", "-c", '. "$1/L2A_Bashrc"; printf %s "$SEN2COR_HOME"', "_", str(target)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
    )
    return proc.stdout


def rewrite(target: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "--rewrite-home", str(target), "--install-home", str(home)],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(target.parent)},
    )


def test_hard_coded_sen2cor_home_is_rewritten_to_respect_the_environment(tmp_path: Path) -> None:
    target, home = installed_standin(tmp_path)
    # the defect: the launcher's L2A_Bashrc overrides the per-task home with the installer's
    assert sourced_home(target, SEN2COR_HOME="/task/home", HOME="/u") == f"{home}/sen2cor/2.9"
    proc = rewrite(target, home)
    assert proc.returncode == 0, proc.stderr
    assert "L2A_Bashrc: 1 line(s) -> SEN2COR_HOME=" in proc.stderr
    assert sourced_home(target, SEN2COR_HOME="/task/home", HOME="/u") == "/task/home"
    assert sourced_home(target, HOME="/u") == "/u/sen2cor/2.9"  # default: the runtime $HOME
    text = (target / "L2A_Bashrc").read_text()
    assert 'export SEN2COR_HOME="${SEN2COR_HOME:-$HOME/sen2cor/2.9}"' in text and str(home) not in text
    assert os.access(target / "bin" / "L2A_Process", os.X_OK)
    again = rewrite(target, home)  # idempotent
    assert again.returncode == 0 and "not needed" in again.stderr


def test_install_script_fails_when_it_cannot_find_where_the_home_is_set(tmp_path: Path) -> None:
    target, home = installed_standin(tmp_path)
    (target / "L2A_Bashrc").write_text("export LC_NUMERIC=C\n")
    proc = rewrite(target, home)
    assert proc.returncode == 1
    assert "found no such line: cannot make Sen2Cor use s2kit's per-task home" in proc.stderr


# ----------------------------------------------------------------------------- worker: which home Sen2Cor used
DOUBLE_INSTALL = Path(__file__).resolve().parent / "sen2cor_double"  # bin/L2A_Process = the TEST DOUBLE


def worker_site(tmp: Path) -> tuple[Path, str]:
    """A planned run of one real L1C with the Sen2Cor TEST DOUBLE as the native install."""
    from s2kit.config import load_config
    from s2kit.plan import make_plan
    from s2kit.runs import RunDir

    cfg_file = make_site(tmp, sen2cor={"install_dir": str(DOUBLE_INSTALL), "retries": 0})
    cfg = load_config(cfg_file)
    make_plan(cfg, check_resources=False)
    return cfg.paths.run_dir, RunDir(cfg.paths.run_dir).read_batch("all")[0]


def run_worker(run_dir: Path, s2kit_exe: str, **env: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SEN2COR", "S2KIT_DOUBLE"))}
    return subprocess.run(
        [s2kit_exe, "worker", "--run-dir", str(run_dir), "--index", "0"],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_worker_records_where_sen2cor_wrote_its_log(tmp_path: Path, s2kit_exe: str) -> None:
    from s2kit.runs import RunDir

    run_dir, scene = worker_site(tmp_path)
    proc = run_worker(run_dir, s2kit_exe, HOME=str(tmp_path / "user"))
    assert proc.returncode == 0, proc.stderr
    st = RunDir(run_dir).read_state(scene)
    assert st is not None and st.state == "done", st
    prov = json.loads(RunDir(run_dir).provenance_file(scene).read_text())
    rec = prov["sen2cor"]["home_check"]
    assert rec["problem"] is None and rec["log_in"] == "home" and rec["foreign"] == []
    assert rec["files"]["home"][0].startswith(rec["sen2cor_home"] + "/log/")


def test_sen2cor_home_ignored_fails_the_attempt(tmp_path: Path, s2kit_exe: str) -> None:
    """A launcher that overrides SEN2COR_HOME (the double's S2KIT_DOUBLE_HOME) with the user's
    ~/sen2cor: the product is fine, but the task shared a home, so the attempt fails."""
    from s2kit.runs import RunDir

    run_dir, scene = worker_site(tmp_path)
    user = tmp_path / "user"
    (user / "sen2cor" / "2.9").mkdir(parents=True)  # the user's own Sen2Cor home
    proc = run_worker(run_dir, s2kit_exe, HOME=str(user), S2KIT_DOUBLE_HOME=str(user / "sen2cor" / "2.9"))
    st = RunDir(run_dir).read_state(scene)
    assert st is not None and st.state == "failed", proc.stderr
    assert (st.reason or "").startswith(
        "sen2cor-home-ignored: Sen2Cor wrote into another home than its SEN2COR_HOME"
    )
    assert "/user/sen2cor/2.9/log/L2A_" in (st.reason or "")
    assert not any((tmp_path / "l2a").glob("S2*"))  # nothing published


# ----------------------------------------------------------------------------- --sen2cor-smoke (native, stand-in)
def smoke_site(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, *, rewrite_home: bool, install_base: Path | None = None
) -> tuple[Path, str]:
    """A site whose native Sen2Cor is the stand-in installation (launcher sourcing L2A_Bashrc with
    the installer's home hard-coded), rewritten by install-sen2cor.sh or not."""

    install, builder = installed_standin(install_base or tmp)
    if rewrite_home:
        assert rewrite(install, builder).returncode == 0
    monkeypatch.setenv("HOME", str(tmp / "user"))
    for var in ("SEN2COR_HOME", "SEN2COR_BIN", "S2KIT_DOUBLE_HOME", "S2KIT_DOUBLE_FAULT"):
        monkeypatch.delenv(var, raising=False)
    cfg_file = make_site(tmp, sen2cor={"install_dir": str(install)})
    scene = next(p.name for p in (tmp / "l1c").iterdir())
    return cfg_file, scene


def test_sen2cor_smoke_passes_with_a_launcher_that_keeps_sen2cor_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s2kit.doctor import run_doctor

    cfg_file, scene = smoke_site(tmp_path, monkeypatch, rewrite_home=True)
    store = sorted(p.name for p in (tmp_path / "l1c" / scene).iterdir())
    report = run_doctor(cfg_file, smoke_scene=scene)
    assert report.ok, report.table()
    names = by_name(report)
    assert (
        "exit 0" in names["sen2cor smoke"][1]
        and "Application terminated successfully" in names["sen2cor smoke"][1]
    )
    assert (
        "_MSIL2A_" in names["smoke product"][1] and "MTD Sen2Cor version 02.09" in names["smoke product"][1]
    )
    assert names["smoke sen2cor home"][1].startswith("log under the task's home: L2A_")
    assert names["smoke store"][0] == PASS
    assert sorted(p.name for p in (tmp_path / "l1c" / scene).iterdir()) == store
    assert not (tmp_path / "user" / "sen2cor").exists()
    assert not list((tmp_path / "scratch").glob("doctor-smoke-*"))  # cleaned up after a pass


def test_sen2cor_smoke_fails_when_the_launcher_ignores_sen2cor_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s2kit.doctor import run_doctor

    cfg_file, scene = smoke_site(tmp_path, monkeypatch, rewrite_home=False)
    report = run_doctor(cfg_file, smoke_scene=scene)
    name, value, fix = only_fail(report)
    assert name == "smoke sen2cor home"
    assert value.startswith("Sen2Cor wrote into another home than its SEN2COR_HOME: ")
    assert str(tmp_path / "builder" / "sen2cor" / "2.9" / "log") in value
    assert "--rewrite-home" in fix


def test_sen2cor_smoke_of_an_unknown_scene_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from s2kit.doctor import run_doctor

    cfg_file, _ = smoke_site(tmp_path, monkeypatch, rewrite_home=True)
    report = run_doctor(cfg_file, smoke_scene="S2A_MSIL1C_20000101T000000_N0301_R001_T01AAA_20000101T000000")
    name, value, _ = only_fail(report)
    assert name == "sen2cor smoke" and "not in paths.l1c_dirs" in value


# ----------------------------------------------------------------------------- --probe-job
def test_probe_job_local_reports_the_node(tmp_path: Path) -> None:
    from s2kit.doctor import run_doctor

    report = run_doctor(make_site(tmp_path), probe_job=True)
    assert report.ok, report.table()
    names = by_name(report)
    assert names["probe job"][1].startswith(f"ran here (exit 0) on {os.uname().nodename}")
    assert "L2A/scratch/run writable" in names["probe binds"][1]
    assert list((tmp_path / "run" / "doctor").glob("probe-*.txt"))


def test_probe_job_on_slurm_with_an_unwritable_l2a_on_the_node_fails(
    tmp_path: Path, fakebin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sbatch (FAKE) runs the probe script at once, as a node would. On the second "node" the
    L2A path is a regular file (a stale mount): fine on the login node, unwritable on the node."""
    from s2kit.doctor import run_doctor

    slurm_fakes(fakebin)
    fake(
        fakebin,
        "sbatch",
        'for a; do s="$a"; done; [ -z "$NODE_L2A_FILE" ] || : > "$NODE_L2A_FILE"\n'
        'SLURM_ARRAY_JOB_ID=7 bash "$s" >/dev/null 2>&1; echo 7',
    )
    fake(fakebin, "squeue", "exit 0")
    good = run_doctor(make_site(tmp_path / "a", scheduler={"kind": "slurm"}), probe_job=True)
    assert by_name(good)["probe job"][1].startswith("job 7 on ") and good.ok, good.table()
    monkeypatch.setenv("NODE_L2A_FILE", str(tmp_path / "b" / "l2a"))
    bad = run_doctor(make_site(tmp_path / "b", scheduler={"kind": "slurm"}), probe_job=True)
    name, value, fix = only_fail(bad)
    assert name == "probe binds" and value == f"on the node: unwritable {tmp_path / 'b' / 'l2a'}"
    assert "compute nodes" in fix


def test_probe_job_is_not_submitted_when_a_check_already_fails(tmp_path: Path, fakebin: Path) -> None:
    from s2kit.doctor import run_doctor

    slurm_fakes(fakebin)
    fake(fakebin, "sbatch", "echo submitted > sbatch-called; echo 8")
    report = run_doctor(
        make_site(tmp_path, scheduler={"kind": "slurm", "memory_per_task_gb": 64}), probe_job=True
    )
    assert only_fail(report)[0] == "memory"
    assert by_name(report)["probe job"][:2] == (WARN, "not submitted: memory FAILed")
    assert not list(tmp_path.rglob("sbatch-called"))


def test_probe_job_refused_by_sbatch_fails(tmp_path: Path, fakebin: Path) -> None:
    from s2kit.doctor import run_doctor

    slurm_fakes(fakebin)
    fake(
        fakebin,
        "sbatch",
        "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2; exit 1",
    )
    report = run_doctor(make_site(tmp_path, scheduler={"kind": "slurm"}), probe_job=True)
    name, value, _ = only_fail(report)
    assert name == "probe job" and "Invalid partition name" in value


# ----------------------------------------------------------------------------- real Slurm (CI)
def _slurm_up() -> bool:
    conf = os.environ.get("SLURM_CONF", "")
    return bool(conf) and Path(conf).is_file()


@pytest.mark.slurm
@pytest.mark.skipif(not _slurm_up(), reason="needs a real Slurm: SLURM_CONF naming an existing file")
def test_doctor_probe_job_on_real_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All PASS on the single-node Slurm (native runtime: the probe runs without a container),
    within the 90 s the probe may take; a walltime above the partition's MaxTime is one FAIL."""
    import time

    from s2kit.doctor import run_doctor

    for var in list(os.environ):
        if var.startswith(("SLURM_", "LSB_")) and var != "SLURM_CONF":
            monkeypatch.delenv(var)
    cfg_file = make_site(
        tmp_path, scheduler={"kind": "slurm", "memory_per_task_gb": 0.5, "walltime": "00:10"}
    )
    start = time.monotonic()
    report = run_doctor(cfg_file, probe_job=True)
    assert report.ok, report.table()
    names = by_name(report)
    assert names["probe job"][1].startswith("job ") and "MB, apptainer" in names["probe job"][1]
    assert names["probe binds"][0] == PASS
    assert time.monotonic() - start < 120


def test_probe_job_and_smoke_with_hostile_paths(hostile_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spaces, quotes, $HOME and non-ASCII in every data path: the probe's script and the smoke run
    pass them as quoted arguments, never as shell text. (The Sen2Cor install itself stays at a plain
    path: like ESA's, the stand-in's L2A_Bashrc exports its paths unquoted.)"""
    from s2kit.doctor import run_doctor

    (hostile_dir.parent / "inst").mkdir()
    cfg_file, scene = smoke_site(
        hostile_dir, monkeypatch, rewrite_home=True, install_base=hostile_dir.parent / "inst"
    )
    report = run_doctor(cfg_file, probe_job=True, smoke_scene=scene)
    assert report.ok, report.table()
    probe = next((hostile_dir / "run" / "doctor").glob("probe-*.txt")).read_text()
    assert f"bind=writable {hostile_dir / 'l2a'}" in probe


@pytest.mark.parametrize(("label", "status"), [("2.12", PASS), ("2.11", FAIL)])
def test_image_labels_of_a_212_config_need_a_212_image(
    tmp_path: Path, fakebin: Path, label: str, status: str
) -> None:
    """doctor's version check for Sen2Cor 2.12: the image label must name 2.12 (issue 18)."""
    apptainer_fake(
        fakebin,
        {
            **LABELS,
            "org.s2kit.sen2cor.version": label,
            "org.s2kit.sen2cor.installer": "Sen2Cor-02.12.03-Linux64.run",
        },
    )
    (tmp_path / "img.sif").write_bytes(b"not a real SIF: the fake apptainer answers for it")
    _, report = run_checks(
        make_site(tmp_path, sen2cor={"runtime": "apptainer", "image": "img.sif", "version": "2.12"})
    )
    state, value, _ = by_name(report)["image labels"]
    assert state == status, report.table()
    assert (
        ("Sen2Cor 2.12" in value)
        if status == PASS
        else ("expected Sen2Cor 2.12" in value and "found 2.11" in value)
    )


def test_image_built_from_a_stand_in_installer_passed_as_sen2cor(tmp_path: Path, fakebin: Path) -> None:
    """An image built from another file than ESA's installer (the tests' STANDIN installer holding
    the Sen2Cor TEST DOUBLE) passed doctor's label check like a real Sen2Cor image: its L2A would be
    taken for Sen2Cor's. Now a WARN naming ESA's file."""
    apptainer_fake(fakebin, {**LABELS, "org.s2kit.sen2cor.installer": "Sen2Cor-02.09.00-Linux64.STANDIN.run"})
    _, report = run_checks(image_site(tmp_path))
    state, value, fix = by_name(report)["image labels"]
    assert state == WARN and "STANDIN" in value
    assert "Sen2Cor-02.09.00-Linux64.run" in fix and "not Sen2Cor's" in fix
