"""Config values that would fail every scene, or write into the L1C store, are refused at load or plan.

Issue 12, findings 6 and 8 (hostile review).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s2kit.config import WALLTIME_MARGIN_MINUTES, check_for_plan, load_config
from s2kit.errors import ConfigError

BASE = """
[paths]
l1c_dirs = ["l1c"]
l2a_dir = "{l2a}"
scratch_dir = "{scratch}"
run_dir = "{run}"

[sen2cor]
runtime = "native"
install_dir = "/opt/Sen2Cor-02.09.00-Linux64"
{sen2cor}
[scheduler]
kind = "{kind}"
walltime = "{walltime}"
"""


def _cfg(tmp: Path, **kw: str) -> Path:
    values = {
        "l2a": "l2a",
        "scratch": "scratch",
        "run": "run",
        "sen2cor": "",
        "kind": "local",
        "walltime": "02:00",
    }
    values.update(kw)
    (tmp / "l1c").mkdir(exist_ok=True)
    f = tmp / "s2kit.toml"
    f.write_text(BASE.format(**values), encoding="utf-8")
    return f


@pytest.mark.parametrize(
    ("key", "value", "how"),
    [
        ("l2a", "l1c", "equal to"),
        ("run", "l1c/run", "inside"),
        ("scratch", "l1c/S2A_MSIL1C_X.SAFE/tmp", "inside"),
        ("l2a", ".", "containing"),
    ],
)
def test_output_dir_in_l1c_store_is_refused(tmp_path: Path, key: str, value: str, how: str) -> None:
    name = {"l2a": "l2a_dir", "run": "run_dir", "scratch": "scratch_dir"}[key]
    with pytest.raises(ConfigError) as err:
        load_config(_cfg(tmp_path, **{key: value}))
    msg = err.value.message
    assert msg.startswith("key 'paths': expected " + name + " outside every l1c_dir")
    assert f"{how} l1c_dirs[0]" in msg and "\n" not in str(err.value)


def test_output_dir_in_l1c_store_through_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "l1c").mkdir()
    os.symlink(tmp_path / "l1c", tmp_path / "alias")
    with pytest.raises(ConfigError, match="expected l2a_dir outside every l1c_dir.* inside l1c_dirs"):
        load_config(_cfg(tmp_path, l2a="alias/l2a"))


def test_plan_run_dir_override_in_l1c_store_is_refused(tmp_path: Path) -> None:
    cfg = load_config(_cfg(tmp_path))
    with pytest.raises(ConfigError, match="expected --run-dir outside every l1c_dir"):
        check_for_plan(cfg, tmp_path / "l1c" / "run")


@pytest.mark.parametrize("minutes", ["1e-300", "0.0001", "0.5", "0", "-3"])
def test_timeout_minutes_below_one_minute_is_refused(tmp_path: Path, minutes: str) -> None:
    with pytest.raises(ConfigError, match=r"key 'sen2cor.timeout_minutes': expected at least 1 minute"):
        load_config(_cfg(tmp_path, sen2cor=f"timeout_minutes = {minutes}\n"))


def test_baseline_04_with_sen2cor_2_9_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"baseline below 04.00 with Sen2Cor 2.9.*offset-mismatch"):
        load_config(_cfg(tmp_path, sen2cor='version = "2.9"\nbaseline = "04.00"\n'))
    # 2.10 processes 04.00 and later
    assert (
        load_config(_cfg(tmp_path, sen2cor='version = "2.10"\nbaseline = "05.09"\n')).sen2cor.baseline
        == "05.09"
    )


@pytest.mark.parametrize("kind", ["lsf", "slurm"])
def test_walltime_shorter_than_timeout_is_refused_at_plan(tmp_path: Path, kind: str) -> None:
    cfg = load_config(_cfg(tmp_path, kind=kind, walltime="00:10", sen2cor="timeout_minutes = 600\n"))
    with pytest.raises(ConfigError, match=r"key 'scheduler.walltime': expected at least .*\(605\)"):
        check_for_plan(cfg)
    fits = f"{(600 + WALLTIME_MARGIN_MINUTES) // 60:02d}:{(600 + WALLTIME_MARGIN_MINUTES) % 60:02d}"
    check_for_plan(load_config(_cfg(tmp_path, kind=kind, walltime=fits, sen2cor="timeout_minutes = 600\n")))


@pytest.mark.parametrize("key", ["l2a", "scratch", "run"])
def test_output_dir_that_is_a_file_is_refused_at_plan(tmp_path: Path, key: str) -> None:
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    cfg = load_config(_cfg(tmp_path, **{key: "taken"}))
    with pytest.raises(ConfigError, match=r"expected \w+ to be a directory, found a file"):
        check_for_plan(cfg)


def test_output_dir_that_is_a_symlink_loop_is_refused_at_plan(tmp_path: Path) -> None:
    os.symlink("loop", tmp_path / "loop")
    cfg = load_config(_cfg(tmp_path, l2a="loop"))
    with pytest.raises(ConfigError, match=r"expected l2a_dir to be a directory, found Too many levels"):
        check_for_plan(cfg)
