"""s2kit.container: the per-task command (golden files) and its shell quoting (real bash)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from s2kit.config import BatchConfig
from s2kit.container import TASK_ENV_VARS, binds, shell_line, worker_argv
from s2kit.errors import ConfigError
from tests.support.configs import config_data

HOSTILE = "/data/dir with spaces 'quote' \"dq\" $HOME ünïcødé"


def make_cfg(base: str, runtime: str = "apptainer", **paths: Any) -> BatchConfig:
    data = config_data(
        base,
        runtime=runtime,
        image=f"{base}/images/sen2cor-2.9.sif",
        install_dir=f"{base}/Sen2Cor-02.09.00-Linux64",
        l1c=("l1c", "l1c-gcs"),
        run="runs/r1",
        paths=paths,
    )
    return BatchConfig.model_validate(data)


def bash_argv(line: str, env: dict[str, str]) -> list[str]:
    """What bash makes of a quoted command line: each argument NUL-terminated by printf."""
    out = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {line}"], env=env, capture_output=True, check=True
    ).stdout
    return [a.decode("utf-8", "surrogateescape") for a in out.split(b"\0")[:-1]]


def expanded(argv: list[str], env: dict[str, str]) -> list[str]:
    """*argv* with the ``VAR=${VAR:-}`` passthroughs expanded as bash would."""
    out = []
    for a in argv:
        name = a.split("=", 1)[0]
        out.append(
            f"{name}={env.get(name, '')}" if name in TASK_ENV_VARS and a == f"{name}=${{{name}:-}}" else a
        )
    return out


# --------------------------------------------------------------------------- golden
@pytest.mark.parametrize(
    ("case", "base", "runtime"),
    [
        ("apptainer_plain", "/data/s2", "apptainer"),
        ("apptainer_hostile", HOSTILE, "apptainer"),
        ("native_plain", "/data/s2", "native"),
        ("native_hostile", HOSTILE, "native"),
    ],
)
def test_worker_command_golden(
    data_regression: Any, file_regression: Any, case: str, base: str, runtime: str
) -> None:
    cfg = make_cfg(base, runtime)
    argv = [*worker_argv(cfg, s2kit_exe=f"{base}/venv/bin/s2kit"), "--batch", "all", "--offset", "0"]
    data_regression.check({"argv": argv, "binds": binds(cfg)}, basename=case)
    file_regression.check(shell_line(argv) + "\n", basename=f"{case}_line", extension=".sh")


def test_apptainer_command_shape() -> None:
    cfg = make_cfg("/data/s2")
    argv = worker_argv(cfg)
    assert argv[:4] == ["apptainer", "exec", "--cleanenv", "--no-home"]
    i = argv.index("/data/s2/images/sen2cor-2.9.sif")
    assert argv[i + 1 :] == ["s2kit", "worker", "--run-dir", "/data/s2/runs/r1"]
    bind_args = [argv[k + 1] for k, a in enumerate(argv[:i]) if a == "--bind"]
    assert bind_args == [
        "/data/s2/l1c:/data/s2/l1c:ro",
        "/data/s2/l1c-gcs:/data/s2/l1c-gcs:ro",
        "/data/s2/dem:/data/s2/dem:ro",
        "/data/s2/images/sen2cor-2.9.sif:/data/s2/images/sen2cor-2.9.sif:ro",
        "/data/s2/scratch:/data/s2/scratch:rw",
        "/data/s2/l2a:/data/s2/l2a:rw",
        "/data/s2/runs/r1:/data/s2/runs/r1:rw",
    ]
    env_args = [argv[k + 1] for k, a in enumerate(argv[:i]) if a == "--env"]
    assert env_args == [f"{v}=${{{v}:-}}" for v in TASK_ENV_VARS]


def test_native_command_is_the_worker_of_this_install() -> None:
    cfg = make_cfg("/data/s2", "native")
    assert worker_argv(cfg, s2kit_exe="/opt/s2kit/bin/s2kit") == [
        "/opt/s2kit/bin/s2kit",
        "worker",
        "--run-dir",
        "/data/s2/runs/r1",
    ]


def test_run_dir_override_is_the_one_bound_and_passed() -> None:
    cfg = make_cfg("/data/s2")
    argv = worker_argv(cfg, run_dir=Path("/elsewhere/run 2"))
    assert argv[-2:] == ["--run-dir", "/elsewhere/run 2"]
    assert "/elsewhere/run 2:/elsewhere/run 2:rw" in argv
    assert "/data/s2/runs/r1:/data/s2/runs/r1:rw" not in argv


def test_a_dir_that_is_input_and_output_is_bound_writable_once() -> None:
    # an l2a_dir equal to an l1c_dir is refused at load (issue 12): the DEM folder read from l2a_dir
    cfg = make_cfg("/data/s2", dem_dir="/data/s2/l2a", l2a_dir="/data/s2/l2a")
    assert ("/data/s2/l2a", "rw") in binds(cfg)
    assert [p for p, _ in binds(cfg)].count("/data/s2/l2a") == 1


def test_no_dem_no_dem_bind() -> None:
    cfg = make_cfg("/data/s2", dem_dir=None)
    assert all("/dem" not in p for p, _ in binds(cfg))


@pytest.mark.parametrize("bad", ["/data/a:b", "/data/a,b"])
def test_bind_syntax_cannot_express_colon_or_comma(bad: str) -> None:
    cfg = make_cfg("/data/s2", l2a_dir=bad)
    with pytest.raises(ConfigError, match="apptainer --bind"):
        worker_argv(cfg)
    assert worker_argv(make_cfg("/data/s2", "native", l2a_dir=bad), s2kit_exe="s2kit")  # native: no binds


# --------------------------------------------------------------------------- quoting through real bash
@pytest.mark.parametrize("runtime", ["apptainer", "native"])
def test_shell_line_round_trips_through_bash(hostile_dir: Path, runtime: str) -> None:
    cfg = make_cfg(str(hostile_dir), runtime)
    argv = [
        *worker_argv(cfg, s2kit_exe=str(hostile_dir / "bin" / "s2kit")),
        "--batch",
        "all",
        "--offset",
        "12",
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/should/not/appear"}
    env["SLURM_ARRAY_TASK_ID"] = "7"
    env["LSB_JOBID"] = "x y $HOME 'q'"  # a value with shell syntax stays one literal argument
    got = bash_argv(shell_line(argv), env)
    assert got == expanded(argv, env)
    assert all("/should/not/appear" not in a for a in got)
    if runtime == "apptainer":
        assert "SLURM_ARRAY_TASK_ID=7" in got and "LSB_JOBINDEX=" in got and "LSB_JOBID=x y $HOME 'q'" in got


def test_shell_line_quotes_lookalike_placeholders_literally() -> None:
    argv = ["echo", "SLURM_JOB_ID=${SLURM_JOB_ID:-}/tail", "LSB_JOBID=${HOME}", "$(touch /tmp/pwned)", "a\nb"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLURM_JOB_ID": "1", "HOME": "/h"}
    assert bash_argv(shell_line(argv), env) == argv
