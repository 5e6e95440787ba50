"""The REAL Sen2Cor image: containers/sen2cor.def built by `s2kit container build` with real
Apptainer (1.4.5 in tests/infra/apptainer-sandbox.sh), then `apptainer test`, `inspect --labels`,
and one real `apptainer exec ... s2kit worker` task on a real-metadata L1C tree.

The two inputs that cannot be downloaded here are STAND-INS made by tests/support/standins.py and passed
as build arguments, so the def that users build is the one built here: a makeself installer
holding the Sen2Cor TEST DOUBLE (not ESA Sen2Cor) and a tiny ESACCI-LC archive. Everything else
is real: debootstrap of Debian bookworm, apt, pip install of s2kit, install-sen2cor.sh (sha256,
makeself --check, --target), s2kit aux esacci, s2kit gipp render, %test, labels.

Marked `apptainer`: skipped (with the reason) where the sandbox cannot run (not root on Linux);
in CI (S2KIT_CI=1) a skip is a failure. One build per module (~3-4 min on 2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import s2kit
from s2kit.config import BatchConfig
from s2kit.container import shell_line, worker_argv
from s2kit.errors import ConfigError
from s2kit.image import REQUIRED_LABELS, check_binds, default_ca_bundle, read_lock
from s2kit.plan import make_plan
from s2kit.runs import PROVENANCE_SUFFIX, RunDir
from tests.support import REPO
from tests.support.infra_groups import INFRA_COMMAND, require_tool, run_with_progress
from tests.support.safe_trees import build_l1c_tree
from tests.support.standins import StandIn, make_standin_esacci, make_standin_installer

pytestmark = pytest.mark.apptainer

SANDBOX = REPO / "tests" / "infra" / "apptainer-sandbox.sh"
DEF = REPO / "containers" / "sen2cor.def"
S2KIT = str(Path(sys.executable).parent / "s2kit")


def _why_no_sandbox() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the Apptainer sandbox needs Linux"
    if os.geteuid() != 0:
        return "the Apptainer sandbox (tests/infra/apptainer-sandbox.sh) must run as root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    return None


def sandbox(*args: str, timeout: float = 600, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SANDBOX), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, **kw
    )  # type: ignore[call-overload, no-any-return]


def apptainer_prefix(*binds: Path) -> str:
    """The --apptainer value that runs apptainer inside the sandbox with these binds."""
    b = " ".join(f"--bind {p}" for p in binds)
    return f"bash {SANDBOX} run {b} -- apptainer"


@dataclass
class Built:
    root: Path  # bound into the sandbox: stand-ins, image, lock, runs
    sif: Path
    installer: StandIn
    esacci: StandIn
    lock: Path
    mirror: str
    ca_bundle: Path | None
    seconds: float
    stdout: str
    stderr: str

    @property
    def prefix(self) -> str:
        return apptainer_prefix(REPO, self.root)

    def run(
        self, *cmd: str, env: tuple[str, ...] = (), timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """CMD inside the sandbox (apptainer is on its PATH), with REPO and root bound."""
        envs = [a for e in env for a in ("--env", e)]
        return sandbox(
            "run", "--bind", str(REPO), "--bind", str(self.root), *envs, "--", *cmd, timeout=timeout
        )


def s2kit_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([S2KIT, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _sandbox_ready_marker() -> Path:
    """The file tests/infra/apptainer-sandbox.sh setup writes when its rootfs is ready."""
    return Path(os.environ.get("APPTAINER_ROOTFS", "/tmp/s2-apptainer-root")) / ".s2-apptainer-ready"


@pytest.fixture(scope="module")
def sandbox_ready() -> str:
    """The Debian mirror, once the sandbox is set up. Tests never set it up: that installs
    debootstrap and debootstraps ~400 MB (.ci/run and `make test-infra` do it)."""
    why = _why_no_sandbox()
    if why:
        pytest.skip(why)
    if not _sandbox_ready_marker().is_file():
        pytest.skip(
            f"the Apptainer sandbox is not set up (no {_sandbox_ready_marker()}); "
            f"`{INFRA_COMMAND}` sets it up (as root, ~1 min, ~400 MB) and runs these tests"
        )
    mirror = sandbox("mirror").stdout.strip()
    assert mirror, "no Debian mirror found in the host's apt sources"
    return mirror


@pytest.fixture(scope="module")
def built(sandbox_ready: str, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Built:
    require_tool("makeself")  # the stand-in installer is a makeself archive
    root = tmp_path_factory.mktemp("image")
    installer = make_standin_installer(root)
    esacci = make_standin_esacci(root)
    lock = root / "sen2cor.lock"
    sif = root / "sen2cor-2.9.sif"
    ca = default_ca_bundle() or (
        Path("/etc/ssl/certs/ca-certificates.crt")
        if Path("/etc/ssl/certs/ca-certificates.crt").is_file()
        else None
    )
    args = [
        "container", "build",
        "--def", str(DEF),
        "--out", str(sif),
        "--installer", str(installer.path),
        "--installer-sha256", installer.sha256,
        "--esacci", str(esacci.path),
        "--mirror", sandbox_ready,
        "--lock", str(lock),
        "--fakeroot",
        "--apptainer", apptainer_prefix(REPO, root),
        "--ca-bundle", str(ca) if ca else "none",
    ]  # fmt: skip
    # ~6 min: progress on the terminal (a line per apptainer stage, a heartbeat every 30 s)
    proc = run_with_progress([S2KIT, *args], pytestconfig, "image build", timeout=1500, cwd=REPO)
    (root / "build.log").write_text(proc.stderr)
    assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    return Built(
        root, sif, installer, esacci, lock, sandbox_ready, ca, proc.seconds, proc.stdout, proc.stderr
    )


# --------------------------------------------------------------------------- the build
def test_real_def_builds_and_passes_its_own_test_section(built: Built) -> None:
    assert built.sif.is_file() and built.sif.stat().st_size > 20_000_000
    assert f"built {built.sif}" in built.stdout
    # the %test section ran at the end of the build, and runs again on demand
    assert "Running testscript" in built.stderr
    proc = built.run("apptainer", "test", str(built.sif))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "L2A_Process --help: ok (/opt/sen2cor/bin/L2A_Process)" in out
    assert "ESACCI-LC aux data for Sen2Cor 2.9: OK" in out
    assert "4 files: 0 errors, 0 warnings" in out
    assert f"s2kit {s2kit.__version__}" in out
    print(f"build: {built.seconds:.0f} s, SIF {built.sif.stat().st_size / 1e6:.0f} MB")


def test_labels_record_what_was_installed(built: Built) -> None:
    proc = s2kit_cli("container", "labels", str(built.sif), "--json", "--apptainer", built.prefix)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    labels = doc["labels"]
    assert doc["missing"] == []
    assert set(REQUIRED_LABELS) <= set(labels)
    assert labels["org.s2kit.sen2cor.version"] == "2.9"
    assert labels["org.s2kit.sen2cor.installer"] == built.installer.path.name
    assert labels["org.s2kit.sen2cor.installer.sha256"] == built.installer.sha256
    assert labels["org.s2kit.sen2cor.installer.pinned"] == "argument"
    assert labels["org.s2kit.sen2cor.installer.check"] == "makeself --check passed"
    assert labels["org.s2kit.version"] == s2kit.__version__
    assert labels["org.s2kit.base"].startswith("bootstrap=debootstrap osversion=bookworm mirror=")
    assert "bookworm" in labels["org.s2kit.base.os"]
    assert len(labels["org.s2kit.esacci.digest"]) == 64
    # issue 14: the stand-in's L2A_Bashrc hard-codes the installer's home; install-sen2cor.sh rewrote it
    assert labels["org.s2kit.sen2cor.home-rewrite"].startswith("L2A_Bashrc: 1 line(s) -> SEN2COR_HOME=")
    assert len(labels["org.s2kit.source.sha256"]) == 64
    # the lock records the (stand-in) installer under its own name: it never pins ESA's file
    lock = read_lock(built.lock)
    assert list(lock["installers"]) == [built.installer.path.name]
    assert lock["installers"][built.installer.path.name]["sha256"] == built.installer.sha256
    # `s2kit container lock` records an existing image's installer the same way
    other = built.root / "other.lock"
    proc = s2kit_cli("container", "lock", str(built.sif), "--lock", str(other), "--apptainer", built.prefix)
    assert proc.returncode == 0, proc.stderr
    assert read_lock(other)["installers"][built.installer.path.name]["sha256"] == built.installer.sha256


def test_environment_help_and_runscript(built: Built) -> None:
    env = built.run("apptainer", "exec", "--cleanenv", str(built.sif), "env")
    assert env.returncode == 0, env.stderr
    values = dict(line.split("=", 1) for line in env.stdout.splitlines() if "=" in line)
    assert values["SEN2COR_BIN"] == "/opt/sen2cor/lib/python2.7/site-packages/sen2cor"
    assert values["PATH"].endswith(":/opt/sen2cor/bin")
    assert "SEN2COR_HOME" not in values  # the worker sets one per task
    run = built.run("apptainer", "run", "--cleanenv", str(built.sif), "--version")
    assert run.stdout.strip() == f"s2kit {s2kit.__version__}", run.stderr
    helptext = built.run("apptainer", "run-help", str(built.sif)).stdout
    assert "s2kit worker --run-dir RUN" in helptext and "never in the image" in helptext
    dem = built.run("apptainer", "exec", str(built.sif), "ls", "-A", "/dem")
    assert dem.returncode == 0 and dem.stdout == ""  # the DEM is bound at run time, never baked


# --------------------------------------------------------------------------- s2kit doctor (issue 14)
def test_doctor_sen2cor_smoke_inside_the_real_image(built: Built, tmp_path: Path) -> None:
    """`s2kit doctor --sen2cor-smoke` with runtime apptainer: the image's launcher (the stand-in's,
    sourcing L2A_Bashrc, rewritten at build time) keeps the per-task SEN2COR_HOME under
    --cleanenv --no-home as the non-root sandbox user, and every check passes."""
    base = built.root / f"doctor-{tmp_path.name}"
    (base / "l1c").mkdir(parents=True)
    tree = build_l1c_tree(base / "l1c", baseline="03.01")
    (base / "dem" / "46RER").mkdir(parents=True)
    (base / "dem" / "46RER" / "srtm_55_07.zip").write_bytes(b"PK placeholder, not a DEM")
    wrapper = base / "apptainer"  # sen2cor.apptainer: apptainer inside the sandbox
    wrapper.write_text(f'#!/bin/sh\nexec {built.prefix} "$@"\n')
    wrapper.chmod(0o755)
    cfg = base / "s2kit.toml"
    cfg.write_text(
        "[paths]\n"
        f'l1c_dirs = ["{base / "l1c"}"]\nl2a_dir = "{base / "l2a"}"\ndem_dir = "{base / "dem"}"\n'
        f'scratch_dir = "{base / "scratch"}"\nrun_dir = "{base / "run"}"\n'
        "[sen2cor]\n"
        f'runtime = "apptainer"\nimage = "{built.sif}"\napptainer = "{wrapper}"\n'
        "[scheduler]\n"
        'kind = "local"\nmemory_per_task_gb = 1\nmax_concurrent = 1\n'
    )
    proc = s2kit_cli("doctor", "--config", str(cfg), "--sen2cor-smoke", tree.name, "--json", timeout=600)
    doc = json.loads(proc.stdout)
    status = {c["name"]: (c["status"], c["value"]) for c in doc["checks"]}
    assert proc.returncode == 0 and doc["ok"], json.dumps(doc["checks"], indent=1)
    assert status["apptainer"][1].startswith("apptainer version ")
    assert status["esacci"][0] == "PASS" and status["sen2cor home"][0] == "PASS"
    assert status["sen2cor smoke"][0] == "PASS" and "exit 0" in status["sen2cor smoke"][1]
    assert "MTD Sen2Cor version 02.09" in status["smoke product"][1]
    assert status["smoke sen2cor home"][1].startswith("log under the task's home: L2A_")
    assert status["smoke store"][0] == "PASS"


# --------------------------------------------------------------------------- one scene, for real
def test_exec_worker_on_a_real_l1c_publishes_a_valid_l2a(built: Built, tmp_path: Path) -> None:
    base = built.root / f"run-{tmp_path.name}"
    (base / "l1c").mkdir(parents=True)
    tree = build_l1c_tree(base / "l1c", baseline="03.01")
    (base / "dem" / "46RER").mkdir(parents=True)  # the tile's DEM folder (placeholder zip): plan needs it
    (base / "dem" / "46RER" / "srtm_55_07.zip").write_bytes(b"PK placeholder, not a DEM")
    cfg = BatchConfig.model_validate(
        {
            "paths": {
                "l1c_dirs": [str(base / "l1c")],
                "l2a_dir": str(base / "l2a"),
                "dem_dir": str(base / "dem"),
                "scratch_dir": str(base / "scratch"),
                "run_dir": str(base / "run"),
            },
            "sen2cor": {"runtime": "apptainer", "image": str(built.sif)},
        }
    )
    result = make_plan(cfg, check_resources=False)
    assert result.counts == {"todo": 1}, result.summary()
    check_binds(cfg)  # what the batch spine checks before it launches anything
    line = shell_line(worker_argv(cfg))
    assert line.startswith(
        'apptainer exec --cleanenv --no-home --env SLURM_ARRAY_TASK_ID="${SLURM_ARRAY_TASK_ID:-}"'
    )
    proc = built.run("bash", "-c", line, env=("SLURM_ARRAY_TASK_ID=0",), timeout=600)
    assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"

    rd = RunDir(cfg.paths.run_dir)
    scene = rd.read_batch("all")[0]
    state = rd.read_state(scene)
    assert state is not None and state.state == "done", state
    product = Path(state.l2a or "")
    assert (
        product.parent == cfg.paths.l2a_dir and product.name.startswith("S2") and "_MSIL2A_" in product.name
    )
    prov = json.loads(product.with_name(product.name + PROVENANCE_SUFFIX).read_text())
    assert prov["validated"] is True
    assert prov["container"]["inside"] == str(built.sif)
    assert len(prov["container"]["sha256"]) == 64
    # the L1C was read in place, read-only, and left as it was
    assert not any(p.name.startswith("S2") and "MSIL2A" in p.name for p in tree.parent.iterdir())
    # `s2kit validate` on the host, and inside the image
    host = s2kit_cli("validate", str(product), "--expect-sen2cor", "2.9")
    assert host.returncode == 0, host.stdout + host.stderr
    inside = built.run("apptainer", "exec", "--cleanenv", str(built.sif), "s2kit", "validate", str(product))
    assert inside.returncode == 0, inside.stdout + inside.stderr
    log = (rd.path / "logs" / scene / "attempt-1.log").read_text()
    assert "Sen2Cor TEST DOUBLE" in log and "/opt/sen2cor/bin/L2A_Process" in log


# --------------------------------------------------------------------------- bad input
def test_wrong_installer_checksum_fails_the_build_with_that_message(built: Built) -> None:
    # the same def, layered on the built image (localimage) so it fails in seconds, not minutes
    wrong = "0" * 64
    proc = s2kit_cli(
        "container", "build",
        "--def", str(DEF),
        "--out", str(built.root / "wrong.sif"),
        "--installer", str(built.installer.path),
        "--installer-sha256", wrong,
        "--esacci", str(built.esacci.path),
        "--bootstrap", "localimage", "--from", str(built.sif),
        "--no-lock", "--ca-bundle", "none", "--fakeroot",
        "--apptainer", built.prefix,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("s2kit: error: ") and "apptainer build failed" in last
    assert (
        f"installer sha256 mismatch for {built.installer.path.name}: expected {wrong} (argument), "
        f"found {built.installer.sha256}; refusing to install it"
    ) in last
    assert not (built.root / "wrong.sif").exists()


def test_build_without_network_says_so(built: Built) -> None:
    # nothing listens on port 9 of this host: debootstrap cannot fetch the Release file
    proc = s2kit_cli(
        "container", "build",
        "--def", str(DEF),
        "--out", str(built.root / "offline.sif"),
        "--installer", str(built.installer.path),
        "--esacci", str(built.esacci.path),
        "--mirror", "http://127.0.0.1:9/debian",
        "--no-lock", "--ca-bundle", "none", "--fakeroot",
        "--apptainer", built.prefix,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "apptainer build failed" in last and "the build has no network" in last, last


def test_missing_bind_dir_is_refused_before_launch_apptainer_only_fails_late(
    built: Built, tmp_path: Path
) -> None:
    base = built.root / f"binds-{tmp_path.name}"
    (base / "l1c").mkdir(parents=True)
    cfg = BatchConfig.model_validate(
        {
            "paths": {
                "l1c_dirs": [str(base / "l1c")],
                "l2a_dir": str(base / "l2a"),
                "dem_dir": str(base / "no-such-dem"),
                "scratch_dir": str(base / "scratch"),
                "run_dir": str(base / "run"),
            },
            "sen2cor": {"runtime": "apptainer", "image": str(built.sif)},
        }
    )
    with pytest.raises(ConfigError, match=r"paths\.dem_dir .*no-such-dem \(read-only\): does not exist"):
        check_binds(cfg)
    # what happens without the check: apptainer fails only when the task starts
    argv = worker_argv(cfg)
    for d in ("scratch", "l2a", "run"):
        (base / d).mkdir(exist_ok=True)
    proc = built.run("bash", "-c", shell_line(argv), env=("SLURM_ARRAY_TASK_ID=0",))
    assert proc.returncode != 0
    assert "no-such-dem" in proc.stderr and "doesn't exist" in proc.stderr, proc.stderr


@pytest.fixture(autouse=True, scope="module")
def _keep_sandbox_tmp_small() -> Iterator[None]:
    yield
    # apptainer's build cache lives in the sandbox user's home; leftovers of failed builds in /tmp
    root = Path(os.environ.get("APPTAINER_ROOTFS", "/tmp/s2-apptainer-root"))
    for leftover in (root / "tmp").glob("build-temp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
