"""The newcomer's path (issue 15): `make test` on a plain machine installs nothing and names what
it skipped; a long phase prints progress; every error of `make batch` / `make container` names
the next command; one option convention across the CLI and help without type placeholders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import tomllib
from typer.main import get_command
from typer.testing import CliRunner

from s2kit.batch import Sen2CorMissing, check_sen2cor
from s2kit.cli import app
from s2kit.config import load_config
from tests.support.configs import config_data
from tests.support.infra_groups import INFRA_COMMAND, require_tool, skip_group

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
MAKE = shutil.which("make")
ESACCI_HINT = "make container ESACCI=/path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("S2KIT_CI", "PYTEST_ADDOPTS", "S2KIT_APPTAINER")}
    env.update(extra)
    return env


def _inner_pytest(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A separate pytest run (its own capture, its own terminal summary)."""
    env = env or _env()
    # tests/ for "-p conftest", the repo root for the tests.support package it imports
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), str(REPO), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# --------------------------------------------------------------------------- 1. make test
def test_skipped_infra_groups_and_the_command_that_runs_them_are_printed_at_the_end(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_needs_makeself():
                pytest.skip("makeself is not installed (Debian package makeself)")

            @pytest.mark.slurm
            def test_needs_slurm():
                pytest.skip("needs a real Slurm (SLURM_CONF)")

            def test_needs_chromium():
                pytest.skip("chromium not installed (Debian: apt-get install chromium)")

            def test_linux_only():
                pytest.skip("PR_SET_PDEATHSIG is Linux-only")

            def test_runs():
                pass
            """
        )
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slurm: real Slurm\n")
    # the suite's own conftest (what `make test` loads), not the helper module alone
    proc = _inner_pytest(["-p", "conftest", "-q", "test_inner.py"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    section = out[out.index("skipped infrastructure tests") :]
    assert "image-tools: 1 test(s) skipped" in section
    assert "slurm: 1 test(s) skipped" in section
    assert "chromium: 1 test(s) skipped" in section
    assert "other: 1 test(s) skipped" in section
    assert f"with: {INFRA_COMMAND}" in section


def test_skip_groups_follow_the_marker_then_the_reason() -> None:
    assert skip_group({"apptainer"}, "makeself is not installed") == "apptainer"
    assert skip_group(set(), "GDAL command-line tools missing: ['gdalwarp']") == "gdal"
    assert skip_group(set(), "shellcheck is not installed") == "image-tools"
    assert skip_group(set(), "PR_SET_PDEATHSIG is Linux-only") is None


def test_missing_tool_skips_with_the_command_outside_ci_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("S2KIT_CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"no-such-tool-s2kit is not installed.*{INFRA_COMMAND}"):
        require_tool("no-such-tool-s2kit")
    monkeypatch.setenv("S2KIT_CI", "1")
    with pytest.raises(pytest.fail.Exception, match="required in CI: no-such-tool-s2kit"):
        require_tool("no-such-tool-s2kit")
    assert require_tool("sh") == shutil.which("sh")


@pytest.mark.skipif(os.geteuid() != 0, reason="the image tests reach the sandbox setup only as root")
def test_image_tests_never_install_debootstrap_or_debootstrap_an_image(tmp_path: Path) -> None:
    """As root, the image-build fixture used to apt-get install debootstrap and debootstrap
    ~400 MB, silently. Now it skips until `make test-infra` has set the sandbox up."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "calls.log"
    for tool in ("apt-get", "debootstrap"):
        (fake_bin / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit 1\n')
        (fake_bin / tool).chmod(0o755)
    env = _env(PATH=f"{fake_bin}{os.pathsep}{os.environ['PATH']}", APPTAINER_ROOTFS=str(tmp_path / "rootfs"))
    proc = _inner_pytest(["-q", "-rs", "tests/test_image_build.py"], REPO, env)
    assert not calls.exists(), calls.read_text()
    assert not (tmp_path / "rootfs").exists()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "the Apptainer sandbox is not set up" in proc.stdout and INFRA_COMMAND in proc.stdout
    assert re.search(r"apptainer: \d+ test\(s\) skipped", proc.stdout), proc.stdout[-2000:]


def test_long_phase_prints_progress_while_pytest_captures_output(tmp_path: Path) -> None:
    (tmp_path / "test_long.py").write_text(
        textwrap.dedent(
            """
            import sys
            from tests.support.infra_groups import run_with_progress

            SCRIPT = (
                "import sys, time\\n"
                "print('INFO:    Starting build...', file=sys.stderr, flush=True)\\n"
                "time.sleep(1.0)\\n"
                "print('a detail line', file=sys.stderr, flush=True)\\n"
                "print('INFO:    Running post scriptlet', file=sys.stderr, flush=True)\\n"
                "print('built', flush=True)\\n"
            )

            def test_long(pytestconfig):
                proc = run_with_progress(
                    [sys.executable, "-c", SCRIPT], pytestconfig, "fake build", every=0.3
                )
                assert proc.returncode == 0 and proc.stdout == "built\\n"
                assert "a detail line" in proc.stderr
            """
        )
    )
    for capture in ([], ["-s"]):
        proc = _inner_pytest(["-q", *capture, "test_long.py"], tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout
        assert "fake build: started" in out
        assert re.search(r"fake build: +\d+ s  INFO:    Starting build", out), out
        assert re.search(r"fake build: +\d+ s  INFO:    Running post scriptlet", out), out
        assert "still running" in out
        assert "fake build: finished in" in out
        progress = [line for line in out.splitlines() if line.startswith("fake build: ")]
        # stage lines and heartbeats only: other output lines are not echoed one by one
        assert not [line for line in progress if line.endswith("s  a detail line")], progress


# --------------------------------------------------------------------------- 2. make batch / container
def _make(*args: str, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "-s", "--no-print-directory", "-C", str(REPO), *args],
        env=_env(PATH=path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_container_without_apptainer_or_esacci_names_both_next_steps_at_once(tmp_path: Path) -> None:
    proc = _make("container", path=str(tmp_path))  # an empty PATH: no apptainer
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("make container: error:")]
    assert len(errors) == 2, proc.stderr
    assert "expected the apptainer command on PATH, found none" in errors[0]
    assert "apptainer.org/docs/admin/main/installation.html" in errors[0]
    assert "expected ESACCI=FILE_OR_URL, found none" in errors[1]
    assert all(ESACCI_HINT in e for e in errors)


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_container_checks_pass_with_apptainer_and_esacci(tmp_path: Path) -> None:
    (tmp_path / "apptainer").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "apptainer").chmod(0o755)
    only_esacci = _make("container-check", path=str(tmp_path))
    assert only_esacci.returncode != 0
    assert only_esacci.stderr.count("make container: error:") == 1
    assert "ESACCI=FILE_OR_URL" in only_esacci.stderr and ESACCI_HINT in only_esacci.stderr
    ok = _make("container-check", "ESACCI=/data/x.zip", path=str(tmp_path))
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr


def test_submit_without_the_image_names_make_container_with_esacci(tmp_path: Path) -> None:
    from s2kit.config import BatchConfig

    cfg = BatchConfig.model_validate(
        config_data(tmp_path, runtime="apptainer", image=tmp_path / "sen2cor-2.9.sif", dem=None)
    )
    with pytest.raises(Sen2CorMissing) as exc:
        check_sen2cor(cfg)
    msg = str(exc.value)
    assert "\n" not in msg and "Sen2Cor image not found" in msg
    assert f"`{ESACCI_HINT}`" in msg and "containers/README.md" in msg


def test_container_build_without_apptainer_and_esacci_says_both_in_one_line() -> None:
    res = CliRunner().invoke(app, ["container", "build", "--apptainer", "/nonexistent/apptainer"])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("s2kit: error: expected the apptainer command (/nonexistent/apptainer)")
    assert "run: s2kit container build --esacci /path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip" in lines[0]


def test_container_build_without_esacci_names_the_command_to_type() -> None:
    res = CliRunner().invoke(app, ["container", "build", "--dry-run", "--no-lock", "--ca-bundle", "none"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("s2kit: error: expected --esacci FILE_OR_URL, found none")
    assert "run: s2kit container build --esacci /path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip" in lines[0]
    assert ESACCI_HINT in lines[0]


def _toml(tmp_path: Path, select: str) -> Path:
    conf = tmp_path / "s2kit.toml"
    conf.write_text(
        textwrap.dedent(
            """
            [paths]
            l1c_dirs    = ["data/l1c"]
            l2a_dir     = "data/l2a"
            scratch_dir = "scratch"
            run_dir     = "runs/example"

            [sen2cor]
            runtime = "native"
            install_dir = "sen2cor"
            """
        )
        + select
    )
    (tmp_path / "data" / "l1c").mkdir(parents=True)
    return conf


def test_plan_of_an_empty_l1c_folder_names_the_fetch_that_fills_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = _toml(tmp_path, '[select]\ntiles = ["17SQV", "T31UFS"]\nstart = 2021-06-01\nend = 2021-06-30\n')
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["plan", "--config", "s2kit.toml", "--no-preflight"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "plan: 0 L1C product(s): none"
    assert lines[-1] == (
        "plan: no L1C product in data/l1c (paths.l1c_dirs of s2kit.toml); fill it with: "
        "s2kit fetch --tile 17SQV --tile 31UFS --start 2021-06-01 --end 2021-06-30 --out data/l1c"
    )
    assert load_config(conf).paths.l1c_dirs == [tmp_path / "data" / "l1c"]


def test_plan_hint_without_a_selection_shows_placeholders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _toml(tmp_path, "")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["plan", "--config", "s2kit.toml", "--no-preflight"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[-1].endswith(
        "s2kit fetch --tile TILE --start YYYY-MM-DD --end YYYY-MM-DD --out data/l1c"
    )


# --------------------------------------------------------------------------- 3. CLI consistency
def _commands(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(cmd, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


PLACEHOLDER = re.compile(
    r"<(?:list\[|str>|int>|float>|path>|bool>|datetime>|Path>)"  # typer's type names
    r"|\{[A-Za-z_]+\}"  # {paths}
)


def test_help_of_every_command_has_metavars_not_type_placeholders() -> None:
    commands = _commands(get_command(app))
    assert ("dem", "footprint") in commands and ("container", "build") in commands and len(commands) > 20
    runner = CliRunner()
    for path in commands:
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, (path, res.output)
        bad = PLACEHOLDER.findall(res.stdout)
        assert not bad, f"s2kit {' '.join(path)} --help shows {bad}:\n{res.stdout}"
    fetch = runner.invoke(app, ["fetch", "--help"], env={"COLUMNS": "200"}).stdout
    assert "--tile TILE " in fetch and "--start YYYY-MM-DD " in fetch and "--jobs N " in fetch
    validate = runner.invoke(app, ["validate", "--help"], env={"COLUMNS": "200"}).stdout
    assert validate.startswith("Usage: s2kit validate [OPTIONS] PATH...")


def test_dem_footprint_takes_tile_options_like_prepare_and_fetch() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["dem", "footprint", "--tile", "31UFS", "--tile", "T17SQV"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["31UFS", "17SQV"]
    assert lines[0].endswith("srtm_37_02 srtm_38_02") and res.stderr == ""
    # the old positional form still works, with a note naming the new one
    old = runner.invoke(app, ["dem", "footprint", "31UFS"])
    assert old.exit_code == 0 and old.stdout.splitlines() == lines[:1]
    assert old.stderr.strip() == (
        "s2kit: note: tiles as arguments are deprecated; use `s2kit dem footprint --tile 31UFS`"
    )
    none = runner.invoke(app, ["dem", "footprint"])
    assert none.exit_code == 2 and none.stderr.startswith("s2kit: error: expected --tile TILE")


def test_resubmit_needs_no_failed_flag_and_still_accepts_it(tmp_path: Path) -> None:
    from s2kit.config import BatchConfig
    from s2kit.plan import make_plan

    (tmp_path / "l1c").mkdir()
    cfg = BatchConfig.model_validate(
        config_data(tmp_path, runtime="native", install_dir=tmp_path / "sen2cor", dem=None)
    )
    make_plan(cfg, check_resources=False)
    runner = CliRunner()
    for flags in ([], ["--failed"]):
        res = runner.invoke(app, ["resubmit", *flags, "--run-dir", str(tmp_path / "run")])
        assert res.exit_code == 0, res.output
        assert res.stdout.strip() == "resubmit: no failed or stale scenes"


def test_dem_check_of_a_folder_that_is_no_dem_set_is_one_line_refusal(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a DEM")
    res = CliRunner().invoke(app, ["dem", "check", str(tmp_path)])
    assert res.exit_code == 1
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "?" not in lines[0]
    assert lines[0] == (
        "s2kit: error: expected a prepared DEM set (<out>/<tile> with dem.json and srtm_XX_YY.zip, "
        "or <out>/<kind>/<tile> with Copernicus DEM cells, written by s2kit dem prepare --tile TILE "
        f"--out DIR), found neither in {tmp_path}"
    )


def test_pyproject_license_is_an_spdx_expression_not_the_deprecated_table() -> None:
    doc = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert doc["project"]["license"] == "MIT"
    assert "setuptools>=77" in doc["build-system"]["requires"]  # first setuptools with PEP 639
