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


# --------------------------------------------------------------------------- issue 12: refuse at load
def _with(section: str, line: str) -> str:
    """GOOD with *line* added to *section* (created when missing)."""
    if f"[{section}]" in GOOD:
        return GOOD.replace(f"[{section}]", f"[{section}]\n{line}")
    return GOOD + f"\n[{section}]\n{line}\n"


def _refused(tmp_path: Path, text: str, key: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text))
    msg = str(exc.value)
    assert f"key '{key}'" in msg and "\n" not in msg and "s2kit.toml" in msg
    return msg


def test_newline_in_run_dir_is_refused_at_config_load(tmp_path: Path) -> None:
    """Issue 12 item 2: the reproduction - a newline would end an #SBATCH/#BSUB line."""
    text = GOOD.replace('run_dir = "run"', 'run_dir = "runs/r\\ntouch PWNED #"')
    msg = _refused(tmp_path, text, "paths.run_dir")
    assert "expected no control characters, found '\\n' at position" in msg
    assert "touch PWNED #" in msg  # the value is shown (escaped, on one line)


def test_newline_in_scheduler_queue_is_refused_at_config_load(tmp_path: Path) -> None:
    msg = _refused(tmp_path, _with("scheduler", 'queue = "normal\\ntouch PWNED #"'), "scheduler.queue")
    assert "found '\\n' at position 6 in 'normal\\ntouch PWNED #'" in msg


@pytest.mark.parametrize(
    "char", ["\\r", "\\u0000", "\\t", "\\u001b", "\\u007f", "\\u0085", "\\u2028", "\\u2029"]
)
@pytest.mark.parametrize(
    ("section", "key", "template"),
    [
        ("paths", "l2a_dir", 'l2a_dir = "out/l2a{c}x"'),
        ("paths", "scratch_dir", 'scratch_dir = "/tmp/scr{c}atch"'),
        ("paths", "dem_dir", 'dem_dir = "dem{c}"'),
        ("paths", "l1c_dirs", 'l1c_dirs = ["l1c", "l1c{c}b"]'),
        ("sen2cor", "install_dir", 'install_dir = "/opt/S{c}"'),
        ("sen2cor", "apptainer", 'apptainer = "app{c}tainer"'),
        ("scheduler", "queue", 'queue = "q{c}"'),
        ("scheduler", "extra_args", 'extra_args = ["--account=a{c}"]'),
    ],
)
def test_control_character_in_any_path_name_or_queue_is_refused(
    tmp_path: Path, char: str, section: str, key: str, template: str
) -> None:
    line = template.format(c=char)
    first = line.split(" = ")[0]
    if f"\n{first} = " in GOOD:  # replace the existing key
        old = next(ln for ln in GOOD.splitlines() if ln.startswith(f"{first} = "))
        text = GOOD.replace(old, line)
    else:
        text = _with(section, line)
    msg = _refused(tmp_path, text, f"{section}.{key}")
    assert "expected no control characters" in msg


@pytest.mark.parametrize("value", ["inf", "+inf", "nan", "-inf"])
def test_infinite_memory_per_task_is_refused_at_config_load(tmp_path: Path, value: str) -> None:
    """Issue 12 item 12: `inf` was accepted, then memory_per_task_mb raised OverflowError."""
    _refused(tmp_path, _with("scheduler", f"memory_per_task_gb = {value}"), "scheduler.memory_per_task_gb")


@pytest.mark.parametrize(
    ("section", "line", "key"),
    [
        ("scheduler", "memory_per_task_gb = 16385", "scheduler.memory_per_task_gb"),  # > 16 TiB
        ("scheduler", "memory_per_task_gb = 1e-9", "scheduler.memory_per_task_gb"),  # would be --mem=0
        ("scheduler", "memory_per_task_gb = 0", "scheduler.memory_per_task_gb"),
        ("scheduler", "cores_per_task = 5000", "scheduler.cores_per_task"),
        ("scheduler", 'walltime = "721:00"', "scheduler.walltime"),  # > 30 days
        ("scheduler", 'walltime = "99999999999999999999:00"', "scheduler.walltime"),
        ("scheduler", "max_concurrent = 1000000000", "scheduler.max_concurrent"),
        ("scheduler", "max_concurrent = 0", "scheduler.max_concurrent"),
        ("scheduler", "max_array_size = 1000000000", "scheduler.max_array_size"),
        ("scheduler", "max_array_size = 0", "scheduler.max_array_size"),
        ("sen2cor", "timeout_minutes = inf", "sen2cor.timeout_minutes"),
        ("sen2cor", "timeout_minutes = nan", "sen2cor.timeout_minutes"),
        ("sen2cor", "timeout_minutes = 43201", "sen2cor.timeout_minutes"),
        ("sen2cor", "timeout_minutes = -1", "sen2cor.timeout_minutes"),
        ("sen2cor", "retries = 11", "sen2cor.retries"),
    ],
)
def test_absurd_numbers_are_refused_naming_the_key(tmp_path: Path, section: str, line: str, key: str) -> None:
    _refused(tmp_path, _with(section, line), key)


def test_the_largest_sane_values_are_still_accepted(tmp_path: Path) -> None:
    text = _with(
        "scheduler",
        'memory_per_task_gb = 16384\nwalltime = "720:00"\ncores_per_task = 64\n'
        "max_concurrent = 100000\nmax_array_size = 4000001",
    )
    cfg = load_config(_write(tmp_path, text.replace("[sen2cor]", "[sen2cor]\ntimeout_minutes = 43200")))
    assert cfg.scheduler.memory_per_task_mb == 16384 * 1024
    assert cfg.scheduler.walltime_minutes == 720 * 60


def test_baseline_99_99_is_refused_at_config_load_with_a_hint(tmp_path: Path) -> None:
    """Issue 12 item 14: accepted, then every scene failed when the worker rendered the GIPP."""
    msg = _refused(tmp_path, _with("sen2cor", 'baseline = "99.99"'), "sen2cor.baseline")
    assert "placeholder" in msg and "e.g. 03.00" in msg


def test_baseline_with_non_ascii_digits_is_refused_at_config_load(tmp_path: Path) -> None:
    # '\d' matched Arabic-Indic digits; the GIPP renderer ([0-9]) then refused every scene
    _refused(tmp_path, _with("sen2cor", 'baseline = "\u0660\u0663.\u0660\u0660"'), "sen2cor.baseline")


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('l2a_dir = "out/l2a"', 'l2a_dir = ""', "paths.l2a_dir"),
        ('run_dir = "run"', 'run_dir = ""', "paths.run_dir"),
        ('run_dir = "run"', 'run_dir = "   "', "paths.run_dir"),
        ('scratch_dir = "/tmp/scratch"', 'scratch_dir = ""', "paths.scratch_dir"),
        ('l1c_dirs = ["l1c"]', 'l1c_dirs = ["l1c", ""]', "paths.l1c_dirs"),
        ("[sen2cor]", '[sen2cor]\nimage = ""', "sen2cor.image"),
        ('install_dir = "/opt/Sen2Cor-02.09.00-Linux64"', 'install_dir = ""', "sen2cor.install_dir"),
        ('run_dir = "run"', 'run_dir = "run"\ndem_dir = ""', "paths.dem_dir"),
    ],
)
def test_empty_path_is_refused_not_taken_as_the_current_dir(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    msg = _refused(tmp_path, GOOD.replace(old, new), key)
    assert "expected a path, found" in msg


def test_start_after_end_is_refused(tmp_path: Path) -> None:
    msg = _refused(tmp_path, _with("select", "start = 2021-06-01\nend = 2021-05-31"), "select")
    assert "start 2021-06-01 after end 2021-05-31" in msg
    cfg = load_config(_write(tmp_path, _with("select", "start = 2021-06-01\nend = 2021-06-01")))
    assert cfg.select.start == cfg.select.end


@pytest.mark.parametrize("value", ["0:00", "00:00", "0:00:00"])
def test_walltime_zero_is_refused(tmp_path: Path, value: str) -> None:
    _refused(tmp_path, _with("scheduler", f'walltime = "{value}"'), "scheduler.walltime")


def test_walltime_of_seconds_rounds_up_to_one_minute(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, _with("scheduler", 'walltime = "0:00:30"')))
    assert cfg.scheduler.walltime_minutes == 1


@pytest.mark.parametrize("value", ["", " ", " apptainer"])
def test_empty_apptainer_is_refused(tmp_path: Path, value: str) -> None:
    _refused(tmp_path, _with("sen2cor", f'apptainer = "{value}"'), "sen2cor.apptainer")


def test_tile_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    # '$' in the old pattern matched before a final newline
    _refused(tmp_path, _with("select", 'tiles = ["17SQV\\n"]'), "select.tiles")


@pytest.mark.parametrize("tile", ["17SQW", "17AQV", "99SQV", "17SAV"])
def test_config_tile_that_is_no_mgrs_tile_is_refused(tmp_path: Path, tile: str) -> None:
    # issue 13: the config had its own looser pattern (two digits, three letters)
    msg = _refused(tmp_path, _with("select", f'tiles = ["{tile}"]'), "select.tiles")
    assert "expected an MGRS tile like 17SQV" in msg


def test_cli_plan_refuses_a_newline_in_run_dir_one_line_nothing_run(s2kit_exe: str, tmp_path: Path) -> None:
    text = GOOD.replace('run_dir = "run"', 'run_dir = "r\\ntouch PWNED #"')
    res = subprocess.run(
        [s2kit_exe, "plan", "--config", str(_write(tmp_path, text))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("s2kit: error: ") and "paths.run_dir" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s2kit.toml"]  # no PWNED, no run dir
