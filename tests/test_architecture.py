"""Issue 13: one owner per concept. Import boundaries and the per-backend task environment."""

from __future__ import annotations

import subprocess
import sys

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
