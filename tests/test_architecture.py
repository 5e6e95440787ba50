"""Issue 13: one owner per concept. Import boundaries and the per-backend task environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from s2kit.container import TASK_ENV_VARS
from s2kit.errors import UsageError
from s2kit.schedulers import LsfTaskEnvironment, SlurmTaskEnvironment
from s2kit.schedulers.env import allocated_cores, array_index, job_id


def test_schedulers_import_nothing_from_batch_config_or_container() -> None:
    code = (
        "import sys, s2kit.schedulers, s2kit.schedulers.env\n"
        "print(sorted(m for m in sys.modules if m in ('s2kit.batch', 's2kit.config', 's2kit.container')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_job_spec_keeps_its_old_import_path() -> None:
    from s2kit.jobs import job_spec
    from s2kit.schedulers import job_spec as old

    assert old is job_spec


def test_each_backend_owns_its_task_variables() -> None:
    assert SlurmTaskEnvironment.variables + LsfTaskEnvironment.variables == TASK_ENV_VARS
    for cls in (SlurmTaskEnvironment, LsfTaskEnvironment):
        assert {cls.index_var, cls.job_id_var, cls.cores_var} <= set(cls.variables)
    slurm = SlurmTaskEnvironment(
        {"SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "77", "SLURM_CPUS_PER_TASK": "4"}
    )
    assert (slurm.array_index, slurm.job_id, slurm.cores) == (3, "77", 4)
    lsf = LsfTaskEnvironment({"LSB_JOBINDEX": "3", "LSB_JOBID": "77", "LSB_DJOB_NUMPROC": "0"})
    assert (lsf.array_index, lsf.job_id, lsf.cores) == (3 - LsfTaskEnvironment.index_base, "77[3]", None)
    assert LsfTaskEnvironment({"LSB_JOBINDEX": "0"}).array_index is None  # not an array job


def test_task_environment_lookup_order() -> None:
    both = {"SLURM_ARRAY_TASK_ID": "1", "LSB_JOBINDEX": "5", "SLURM_JOB_ID": "s", "LSB_JOBID": "l"}
    assert array_index(both) == 1 and job_id(both) == "s"  # Slurm first
    cores = {"SLURM_CPUS_PER_TASK": "2", "LSB_DJOB_NUMPROC": "6"}
    assert allocated_cores(cores) == (6, "LSB_DJOB_NUMPROC")  # LSF first, as gipp always did
    assert array_index({}) is None and job_id({}) is None and allocated_cores({}) is None
    with pytest.raises(UsageError, match=r"expected an integer in \$LSB_JOBINDEX"):
        array_index({"LSB_JOBINDEX": "x"})


def test_build_result_says_what_the_cli_printed(tmp_path: Path) -> None:
    from s2kit.container.build import BuildResult, ca_bundle_choice

    labels = {
        "org.s2kit.sen2cor.version": "2.9",
        "org.s2kit.sen2cor.installer": "Sen2Cor-02.09.00-Linux64.run",
        "org.s2kit.sen2cor.installer.sha256": "ab" * 32,
        "org.s2kit.sen2cor.installer.pinned": "none (trust on first use)",
        "org.s2kit.version": "0.1",
        "org.s2kit.base": "debian",
    }
    image, lock = tmp_path / "s.sif", tmp_path / "sen2cor.lock"
    built = BuildResult(12.4, image, 2_000_000, labels, lock)
    assert built.summary() == [
        f"built {image} (2 MB) in 12 s",
        f"Sen2Cor 2.9 from Sen2Cor-02.09.00-Linux64.run sha256 {'ab' * 32} (pinned: none (trust on first use))",
        "s2kit 0.1; base debian",
        f"lock: {lock} records Sen2Cor-02.09.00-Linux64.run",
    ]
    assert (built.warning() or "").endswith("; the lock now pins it for later builds")
    pinned = BuildResult(1.0, image, 1, {**labels, "org.s2kit.sen2cor.installer.pinned": "argument"})
    assert pinned.warning() is None and len(pinned.summary()) == 3
    bundle = tmp_path / "ca.pem"
    bundle.write_text("pem")
    assert ca_bundle_choice("none") is None and ca_bundle_choice(" ") is None
    assert ca_bundle_choice(str(bundle)) == bundle
    assert ca_bundle_choice(None, {"SSL_CERT_FILE": str(bundle)}) == bundle


def test_one_flock_helper_reports_contention_and_missing_flock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import fcntl
    import os

    from s2kit import fsutil

    lock = tmp_path / "sub" / "x.lock"
    with fsutil.flocked(lock) as held:
        assert held >= 0 and lock.is_file()
        other = os.open(lock, os.O_RDONLY)  # another open file description: flock contends
        try:
            assert fsutil.flock(other, blocking=False) is False
            assert fsutil.flock(other, shared=True, blocking=False) is False
        finally:
            os.close(other)
    again = os.open(lock, os.O_RDONLY)
    try:
        assert fsutil.flock(again, blocking=False) is True  # released when the holder closed
    finally:
        os.close(again)

    def no_flock(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with fsutil.flocked(lock, best_effort=True):
        pass  # proceeds unlocked
    with pytest.raises(OSError), fsutil.flocked(lock):
        pass


def test_cli_imported_library_functions_under_command_names() -> None:
    """Library functions are named apart from the commands (no ``do_``/``get_`` aliases in the
    CLI); the old library names keep working."""
    import s2kit.cli
    from s2kit import batch, status

    source = Path(s2kit.cli.__file__).read_text(encoding="utf-8")
    assert " as do_" not in source and " as get_" not in source
    assert batch.submit is batch.submit_batch
    assert status.status is status.run_status and batch.status is status.run_status
    assert {"submit_batch", "run_status"} <= set(batch.__all__)


def test_installer_table_repeated_the_supported_versions() -> None:
    from s2kit.container.build import INSTALLERS, installer_name, installer_url
    from s2kit.versions import INSTALLER_RELEASES, SUPPORTED_VERSIONS, installer_file

    assert tuple(INSTALLERS) == SUPPORTED_VERSIONS == tuple(INSTALLER_RELEASES)
    for v in SUPPORTED_VERSIONS:
        name = installer_name(v)
        assert name == installer_file(v) == f"Sen2Cor-{INSTALLER_RELEASES[v]}-Linux64.run"
        assert installer_url(v) == f"https://step.esa.int/thirdparties/sen2cor/{v}.0/{name}"


def test_sen2cor_kept_its_own_copy_of_sha256_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from s2kit import fsutil, sen2cor
    from s2kit.errors import InputError

    f = tmp_path / "x.bin"
    f.write_bytes(b"s2kit" * 1000)
    assert sen2cor.sha256_file(f) == fsutil.sha256_file(f)
    calls: list[object] = []
    monkeypatch.setattr(fsutil, "sha256_file", lambda path, chunk=0: calls.append(path) or "h")
    assert sen2cor.sha256_file(f) == "h" and calls == [f]  # one implementation: fsutil's
    monkeypatch.undo()
    with pytest.raises(InputError, match="expected a readable file to hash, found: No such file"):
        sen2cor.sha256_file(tmp_path / "missing")


def test_write_batch_carried_a_copy_of_the_atomic_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspect
    import os

    from s2kit import runs
    from s2kit.runs import BatchImmutable, RunDir

    assert "mkstemp" not in inspect.getsource(runs)  # fsutil.written_beside serves both
    rd = RunDir(tmp_path / "run")
    target = rd.write_batch("all", ["a", "b"])
    assert target.read_text(encoding="utf-8") == "a\nb\n" and oct(target.stat().st_mode & 0o777) == "0o644"
    assert rd.write_batch("all", ["a", "b"]) == target  # the same scenes again: a no-op
    with pytest.raises(BatchImmutable):
        rd.write_batch("all", ["c"])

    def no_link(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", no_link)
    with pytest.raises(runs.RunDirNotWritable):
        rd.write_batch("other", ["a"])
    assert sorted(p.name for p in target.parent.iterdir()) == ["all.txt"]  # no temp file left


def test_worker_wrote_the_failed_state_in_three_copies() -> None:
    import inspect
    import re

    from s2kit import worker

    # one _failed helper records failures (the "done" state of an adopted product is another write)
    assert len(re.findall(r'_state\(\s*"failed"', inspect.getsource(worker))) == 1


@pytest.mark.parametrize("kind, tool", [("lsf", "bsub"), ("slurm", "sbatch")])
def test_lsf_and_slurm_refused_submissions_in_two_copies(tmp_path: Path, kind: str, tool: str) -> None:
    import inspect

    from s2kit.schedulers import JobSpec, SchedulerError, get_scheduler
    from s2kit.schedulers.base import CommandResult

    def refuse(argv: object, **_kw: object) -> CommandResult:
        return CommandResult(("x",), 2, "", "queue closed\nsecond line")

    sched = get_scheduler(kind, runner=refuse)
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n", encoding="utf-8")
    spec = JobSpec("n", "all", 0, 1, ("true",), tmp_path, 1, 100, 10)
    with pytest.raises(SchedulerError) as err:
        sched.submit(script, spec)
    assert err.value.message == f"expected {tool} to accept job.sh, found exit 2: queue closed / second line"
    assert "to accept" not in inspect.getsource(type(sched))  # the base class's _accepted says it


def test_gipp_report_and_diff_wrote_their_common_head_twice() -> None:
    from s2kit.gipp import GippDiff, GippReport
    from s2kit.gipp.detect import GippAsVersion

    report = GippReport("f.xml", "L2A_GIPP", "2.9", "flag", None, "e", None)
    diff = GippDiff("f.xml", "L2A_GIPP", "2.9", "flag", ())
    assert isinstance(report, GippAsVersion) and isinstance(diff, GippAsVersion)
    head = {"file": "f.xml", "kind": "L2A_GIPP", "version": "2.9", "version_source": "flag"}
    assert list(report.to_dict().items())[:4] == list(diff.to_dict().items())[:4] == list(head.items())
