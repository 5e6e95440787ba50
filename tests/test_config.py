"""s2kit.toml: validation with one clear error naming the key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from s2kit.config import load_config
from s2kit.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[paths]
l1c_dirs = ["l1c"]
l2a_dir = "out/l2a"
scratch_dir = "/tmp/scratch"
run_dir = "run"

[sen2cor]
runtime = "native"
install_dir = "/opt/Sen2Cor-02.09.00-Linux64"
"""


def _write(tmp: Path, text: str) -> Path:
    f = tmp / "s2kit.toml"
    f.write_text(text, encoding="utf-8")
    return f


def test_example_config_is_valid() -> None:
    cfg = load_config(ROOT / "examples" / "s2kit.toml")
    assert cfg.sen2cor.version == "2.9" and cfg.scheduler.kind == "local"
    assert cfg.select.tiles == ["17SQV"]
    assert cfg.paths.run_dir == ROOT / "runs" / "example"  # relative to the file, normalised
    assert cfg.scheduler.memory_per_task_mb == 4096


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.paths.l1c_dirs == [tmp_path / "l1c"]
    assert cfg.paths.l2a_dir == tmp_path / "out" / "l2a"
    assert cfg.paths.scratch_dir == Path("/tmp/scratch")
    assert (cfg.scheduler.cores_per_task, cfg.scheduler.memory_per_task_gb) == (1, 4)
    assert cfg.sen2cor.baseline == "03.00" and cfg.sen2cor.resolution == 60
    assert cfg.scheduler.walltime_minutes == 120


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (('runtime = "native"', 'runtime = "docker"'), "sen2cor.runtime"),
        (('install_dir = "/opt/Sen2Cor-02.09.00-Linux64"', ""), "sen2cor"),
        (("[sen2cor]", '[scheduler]\nwalltime = "2h"\n[sen2cor]'), "scheduler.walltime"),
        (("[sen2cor]", "[scheduler]\ncores_per_task = 0\n[sen2cor]"), "scheduler.cores_per_task"),
        (("[sen2cor]", '[select]\ntiles = ["17SQ"]\n[sen2cor]'), "select.tiles"),
        (('l1c_dirs = ["l1c"]', "l1c_dirs = []"), "paths.l1c_dirs"),
        (("[sen2cor]", '[sen2cor]\nbaseline = "3"'), "sen2cor.baseline"),
        (("[sen2cor]", "[sen2cor]\nthreads = 4"), "sen2cor.threads"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, edit: tuple[str, str], key: str) -> None:
    text = GOOD.replace(*edit)
    assert text != GOOD
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text))
    assert f"key '{key}" in str(exc.value)
    assert "s2kit.toml" in str(exc.value)


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected valid TOML"):
        load_config(_write(tmp_path, "[paths\nx"))


def test_cli_bad_config_one_line(s2kit_exe: str, tmp_path: Path) -> None:
    cfg = _write(tmp_path, GOOD.replace('runtime = "native"', 'runtime = "docker"'))
    res = subprocess.run([s2kit_exe, "plan", "--config", str(cfg)], capture_output=True, text=True)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("s2kit: error: ") and "sen2cor.runtime" in lines[0]
    assert not (tmp_path / "run").exists()  # nothing touched
