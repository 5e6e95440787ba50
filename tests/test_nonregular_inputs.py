"""Files s2kit reads whole from a user path: a FIFO or a device is refused at once, never read.

Issue 12, finding 3 (hostile review): ``gipp check /dev/zero``, ``plan --config /dev/zero`` and
``report --compare /dev/zero`` read without end; a FIFO named like the input hung the command.
Every such read goes through :func:`s2kit.xmlsafe.read_capped_file` (O_NONBLOCK open, fstat
S_ISREG). The FIFOs here have no writer: a blocking open would hang the test.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from s2kit import cli
from s2kit.config import load_config
from s2kit.errors import ConfigError, InputError
from s2kit.gipp import check_gipp, detect_version, diff_gipp
from s2kit.plan import make_plan
from s2kit.report import build_report

DEV_ZERO = Path("/dev/zero")
needs_dev_zero = pytest.mark.skipif(not DEV_ZERO.exists(), reason="no /dev/zero")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "input.xml"
    os.mkfifo(path)
    return path


def _config(tmp: Path) -> Path:
    (tmp / "l1c").mkdir()
    f = tmp / "s2kit.toml"
    f.write_text(
        '[paths]\nl1c_dirs = ["l1c"]\nl2a_dir = "l2a"\nscratch_dir = "scratch"\nrun_dir = "run"\n'
        '[sen2cor]\nruntime = "native"\ninstall_dir = "/opt/sen2cor"\ndem = "none"\n',
        encoding="utf-8",
    )
    return f


def test_config_that_is_a_fifo_is_refused_without_blocking(fifo: Path) -> None:
    with pytest.raises(ConfigError, match="expected a regular TOML config file, found a FIFO"):
        load_config(fifo)


@needs_dev_zero
def test_config_that_is_dev_zero_is_refused_not_read() -> None:
    with pytest.raises(
        ConfigError, match="expected a regular TOML config file, found a FIFO, socket or device"
    ):
        load_config(DEV_ZERO)


@pytest.mark.parametrize("func", [check_gipp, diff_gipp, detect_version], ids=["check", "diff", "detect"])
def test_gipp_input_that_is_a_fifo_is_refused_without_blocking(fifo: Path, func: Callable[..., Any]) -> None:
    with pytest.raises(InputError, match="expected a regular GIPP XML file, found a FIFO"):
        func(fifo)


@needs_dev_zero
@pytest.mark.parametrize("func", [check_gipp, diff_gipp, detect_version], ids=["check", "diff", "detect"])
def test_gipp_input_that_is_dev_zero_is_refused_not_read(func: Callable[..., Any]) -> None:
    with pytest.raises(InputError, match="found a FIFO, socket or device"):
        func(DEV_ZERO)


def test_report_compare_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))
    run = make_plan(cfg, check_resources=False).run_dir
    os.mkfifo(tmp_path / "cmp.json")
    with pytest.raises(InputError, match="expected a regular JSON comparison file, found a FIFO"):
        build_report(run, quicklooks=False, compare_files=[tmp_path / "cmp.json"])


@needs_dev_zero
def test_cli_plan_config_dev_zero_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["s2kit", "plan", "--config", str(DEV_ZERO)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err.splitlines()
    assert info.value.code == 1
    assert err == [
        "s2kit: error: /dev/zero: expected a regular TOML config file, found a FIFO, socket or device"
    ]


@needs_dev_zero
def test_cli_report_compare_dev_zero_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_plan(load_config(_config(tmp_path)), check_resources=False).run_dir
    monkeypatch.setattr(
        "sys.argv", ["s2kit", "report", str(run), "--no-quicklooks", "--compare", "/dev/zero"]
    )
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err.splitlines()
    assert info.value.code != 0 and len(err) == 1
    assert "expected a regular JSON comparison file, found a FIFO, socket or device" in err[0]
