"""``s2kit worker`` starts without Typer, Rich or pydantic (issue 17 item 4).

* the console script sends ``s2kit worker ...`` to s2kit.worker_cli: the same options, defaults,
  help, exit codes and error lines as the Typer command (compared here on many command lines);
* the worker reads the plan's config snapshot through s2kit.config_view (no pydantic) and falls
  back to validating it when the view does not describe it exactly (old run, edited, torn);
* importing the worker, and running a whole task, imports none of the heavy modules (checked in
  a subprocess, from sys.modules: not a timing).

Runs use the Sen2Cor TEST DOUBLE (tests/sen2cor_double, NOT Sen2Cor).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path, PurePath
from typing import Any

import pytest

import s2kit.__main__ as entry
import s2kit.worker as worker
from s2kit import cli, worker_cli
from s2kit.config import BatchConfig, config_from_dict
from s2kit.config_view import (
    VIEW_FORMAT,
    ConfigView,
    SnapshotKeyMissing,
    describe,
    load_snapshot,
    view_of,
    write_config_view,
)
from s2kit.errors import ConfigError, S2kitError
from s2kit.plan import make_plan
from s2kit.runs import RunDir
from tests.support.configs import DOUBLE
from tests.support.safe_trees import build_l1c_tree

#: what a worker must not import (issue 17 item 4): the CLI stack, the config validator, and the
#: libraries only fetch / dem prepare / report / stac need
HEAVY = (
    "typer",
    "click",
    "rich",
    "pydantic",
    "pydantic_core",
    "requests",
    "urllib3",
    "pyproj",
    "mgrs",
    "numpy",
    "rasterio",
    "jsonschema",
    "pystac",
)


def _clean_env() -> dict[str, str]:
    drop = ("SLURM_", "LSB_", "APPTAINER", "SINGULARITY", "S2KIT_", "SEN2COR_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _config(root: Path, **sections: dict[str, Any]) -> BatchConfig:
    data: dict[str, Any] = {
        "paths": {
            "l1c_dirs": [str(root / "l1c")],
            "l2a_dir": str(root / "l2a"),
            "scratch_dir": str(root / "scratch"),
            "run_dir": str(root / "run"),
        },
        "sen2cor": {"runtime": "native", "install_dir": str(DOUBLE), "retries": 0, "dem": "none"},
        "scheduler": {"kind": "local", "max_concurrent": 1, "memory_per_task_gb": 0.5},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return BatchConfig.model_validate(data)


@pytest.fixture
def planned(hostile_dir: Path) -> tuple[BatchConfig, RunDir]:
    """Two scenes planned (explicit flat terrain), under a hostile path."""
    (hostile_dir / "l1c").mkdir()
    for k in range(2):
        build_l1c_tree(hostile_dir / "l1c", "03.01", day_offset=k)
    cfg = _config(hostile_dir)
    make_plan(cfg, check_resources=False)
    return cfg, RunDir(cfg.paths.run_dir)


# --------------------------------------------------------------------------- heavy imports
_PROBE = """
import atexit, json, sys
heavy = {heavy!r}
atexit.register(lambda: sys.stderr.write("LOADED " + json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))) + "\\n"))
{body}
"""


def _loaded(res: subprocess.CompletedProcess[str]) -> list[str]:
    line = [ln for ln in res.stderr.splitlines() if ln.startswith("LOADED ")]
    assert line, res.stderr
    found: list[str] = json.loads(line[-1].removeprefix("LOADED "))
    return found


def test_importing_the_worker_pulled_in_pydantic_requests_and_pyproj() -> None:
    body = "import s2kit.worker, s2kit.worker_cli, s2kit.config_view"
    res = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY, body=body)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert _loaded(res) == []
    # nor the s2kit modules that pull them in, the planner, or the scheduler backends
    body += "\nprint(sorted(m for m in sys.modules if m.startswith('s2kit.')))"
    res = subprocess.run([sys.executable, "-c", body.replace("import s2kit", "import sys, s2kit", 1)],
                         capture_output=True, text=True)  # fmt: skip
    loaded = set(json.loads(res.stdout.replace("'", '"')))
    unwanted = {"s2kit.config", "s2kit.cli", "s2kit.http", "s2kit.plan", "s2kit.dedupe", "s2kit.dem.prepare"}
    unwanted |= {"s2kit.dem.source", "s2kit.dem.merge", "s2kit.schedulers.local", "s2kit.schedulers.slurm"}
    assert "s2kit.worker" in loaded and loaded & unwanted == set()


def test_worker_task_started_typer_rich_and_pydantic(planned: tuple[BatchConfig, RunDir]) -> None:
    """A whole task through the console script's entry function: the scene is done, and none of
    the heavy modules was imported on the way (the snapshot is read through its view)."""
    cfg, rd = planned
    scene = rd.read_batch("all")[0]
    argv = ["s2kit", "worker", "--run-dir", str(rd.path), "--index", "0"]
    body = f"sys.argv = {argv!r}\nfrom s2kit.__main__ import main\nmain()"
    res = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY, body=body)],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"s2kit: worker: {scene}: done: ")
    assert _loaded(res) == []
    st = rd.read_state(scene)
    assert st is not None and st.state == "done"


def test_python_dash_m_entry_points_dispatch_like_the_console_script() -> None:
    env = {**_clean_env(), "COLUMNS": "80"}  # click's width: min(COLUMNS, 80) - 2

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env)

    fast, via_package, typer_cli = (
        run("s2kit.worker_cli", "--help"),
        run("s2kit", "worker", "--help"),
        run("s2kit", "--help"),
    )
    assert fast.returncode == via_package.returncode == typer_cli.returncode == 0
    assert fast.stdout == via_package.stdout == worker_cli.help_text(78)
    assert " worker " in typer_cli.stdout and " plan " in typer_cli.stdout


# --------------------------------------------------------------------------- one definition
def _typer_worker_command() -> Any:
    import typer.main

    return typer.main.get_command(cli.app).commands["worker"]  # type: ignore[attr-defined]


def test_typer_command_and_fast_parser_declared_the_options_apart() -> None:
    """Every option of the Typer command is an option of the fast parser, with the same default,
    required flag, help and value name, and the command's help text is the parser's."""
    command = _typer_worker_command()
    params = {max(p.opts, key=len): p for p in command.params}
    assert sorted(params) == sorted(o.flag for o in worker_cli.OPTIONS)  # --help: added by click
    for opt in worker_cli.OPTIONS:
        p = params[opt.flag]
        assert (p.default, p.required, p.help, p.metavar) == (
            opt.default,
            opt.required,
            opt.help,
            opt.metavar,
        )
    assert command.help == worker_cli.DESCRIPTION


def test_fast_help_differs_from_the_typer_commands_help() -> None:
    from typer.testing import CliRunner

    res = CliRunner().invoke(cli.app, ["worker", "--help"], prog_name="s2kit")  # width 80
    assert res.exit_code == 0
    assert res.output == worker_cli.help_text(80)


# --------------------------------------------------------------------------- same command lines
R = "/data/runs/r 1"
CASES: list[list[str]] = [
    [],
    ["--run-dir"],
    ["--run-dir", R],
    ["--run-dir", R, "--index", "0"],
    ["--run-dir", R, "--index=3", "--offset=5", "--batch=all-2"],
    [f"--run-dir={R}", "--batch", "resubmit-1", "--offset", "10", "--index", "4"],
    ["--run-dir", R, "--index", "7"],  # the fake fails this one: its line goes to stderr
    ["--run-dir", R, "a", "b"],
    ["--run-dir", R, "--", "--index", "3"],
    ["-x"],
    ["-h"],
    ["-run-dir", R],
    ["--indx", "3"],
    ["--run", R],
    ["--run-dir", R, "---index", "1"],
    ["--run-dir=x", "--help=1"],
    ["--run-dir", R, "--index"],
    ["--run-dir", R, "--batch"],
    ["--help"],
    ["--help", "--foo"],
    ["--foo", "--help"],
    ["x", "--help"],
    ["--help", "--index", "nope"],
    ["--index", "-1"],
    ["--index", "3"],
    ["--index", "-1", "--offset", "x"],
    ["--offset", "x", "--index", "-1"],
    ["--run-dir", "a\nb", "--index", "x"],
    ["--index", "x", "--run-dir", "a\nb"],
    ["--run-dir", "a\x1bb", "--index", "0"],
    ["--run-dir", "--index", "3"],
    ["--run-dir", "x", "--run-dir", R, "--index", "1", "--index", "2"],
    ["--run-dir", R, "--batch", "../a", "--index", "0"],
    ["--run-dir", R, "--batch", "x\ntouch P #", "--index", "0"],
    ["--run-dir", R, "--batch", "-all", "--index", "0"],
    ["--run-dir", R, "--batch", "../a", "--index", "x"],
    ["--run-dir", "", "--index", "1"],
    ["--", "--run-dir", "x"],
    ["--run-dir", R, "-"],
    ["--run-dir", R, "--offset", "200000000", "--index", "0"],
    ["--run-dir", R, "--offset", "100000000", "--index", "100000000"],
    ["--run-dir", R, "--index", "\udce9"],
    ["--run-dir", "/data/caf\udce9", "--index", "0"],
    ["--run-dir", "/data/ünï cødé $HOME 'q'", "--index", "0"],
    ["--run-dir", R, "-1", "--index", "0"],
    ["--run-dir=a=b", "--index", "0"],
    ["--Run-dir", R],
    ["--run-dir", R, "--index", "0", ""],
    ["--run-dir", R, "--index", "0", "--batch", "--offset"],
]
INTS = [" 3", "+3", "03", "3_0", "3__0", "_3", "3_", "3.0", "3.", "3.5", ".0", "1e3", "0x10", "", " "]
INTS += ["٣", "１", "-0", "99999999999999999999", "3 4", "+-3", "inf", "nan", "−3", "3.0_0", "+3.00"]
INTS += ["-0.0", "1_000.0", "\t3\n", "3\u00a0", "\x1c3", "3\u2003", "0.5", "1" * 5000]
CASES += [["--run-dir", R, "--index", v] for v in INTS]


@pytest.fixture
def fake_task(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, ...]]]:
    calls: list[tuple[Any, ...]] = []

    def run_task(
        run_dir: Any,
        batch: str = "all",
        index: int | None = None,
        offset: int = 0,
        env: Any = None,
        handle_signals: bool = False,
    ) -> worker.TaskOutcome:
        calls.append((run_dir, batch, index, offset, handle_signals))
        if index == 7:
            return worker.TaskOutcome(
                worker.EXIT_FAILED, "s2kit: worker: fake: failed: exit-code: 1 (log: -)"
            )
        return worker.TaskOutcome(
            worker.EXIT_DONE, f"s2kit: worker: fake: {run_dir!r} {batch} {index} {offset}"
        )

    monkeypatch.setattr(worker, "run_task", run_task)
    yield calls


def _run(
    main: Any, args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["s2kit", "worker", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.mark.parametrize("args", CASES, ids=[repr(c)[:60] for c in CASES])
def test_fast_worker_parser_answered_another_way_than_typer(
    args: list[str],
    fake_task: list[tuple[Any, ...]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same exit code, stdout and stderr from the Typer command (s2kit.cli.main, the old
    console script) and from the console script's fast path, and the same call of run_task."""
    monkeypatch.setenv("COLUMNS", "80")
    typer_way = _run(cli.main, args, monkeypatch, capsys)
    typer_calls = list(fake_task)
    fake_task.clear()
    fast_way = _run(entry.main, args, monkeypatch, capsys)
    assert fast_way == typer_way
    assert fake_task == typer_calls
    assert all(call[-1] is True for call in fake_task)  # signals are handled on both paths


@pytest.mark.parametrize("columns", ["50", "60", "100", "200"])
def test_fast_help_wrapped_differently_than_typer_at_another_width(
    columns: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    assert _run(entry.main, ["--help"], monkeypatch, capsys) == _run(
        cli.main, ["--help"], monkeypatch, capsys
    )


def test_unexpected_error_in_the_fast_worker_is_one_line_and_a_crash_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("S2KIT_DEBUG", raising=False)

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("boom in the worker\nsecond line")

    monkeypatch.setattr(worker, "run_task", boom)
    code, out, err = _run(entry.main, ["--run-dir", str(tmp_path), "--index", "0"], monkeypatch, capsys)
    assert (code, out) == (70, "")
    m = re.fullmatch(
        r"s2kit: internal error: RuntimeError: boom in the worker; details in (?P<log>.+)\n", err
    )
    assert m, err
    assert "Traceback" in Path(m["log"]).read_text() and "Traceback" not in err


def test_old_entry_point_still_runs_a_task(planned: tuple[BatchConfig, RunDir]) -> None:
    """``s2kit.cli:main`` (a console script installed before this change): the Typer command."""
    _, rd = planned
    scene = rd.read_batch("all")[1]
    code = "import sys; sys.argv[0] = 's2kit'; from s2kit.cli import main; main()"
    res = subprocess.run(
        [sys.executable, "-c", code, "worker", "--run-dir", str(rd.path), "--index", "1"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"s2kit: worker: {scene}: done: ")


# --------------------------------------------------------------------------- the snapshot view
def _walk(model: Any, view: Any, where: str = "") -> int:
    """Compare every field and property of a validated model with the view; the number compared."""
    from s2kit.config_view import _properties

    n = 0
    for name in [*type(model).model_fields, *_properties(type(model))]:
        mine, theirs = getattr(model, name), getattr(view, name)
        key = f"{where}.{name}".lstrip(".")
        if hasattr(type(mine), "model_fields"):
            n += _walk(mine, theirs, key)
        elif isinstance(mine, list) and mine and hasattr(type(mine[0]), "model_fields"):
            assert len(mine) == len(theirs), key
            n += sum(_walk(a, b, f"{key}[{i}]") for i, (a, b) in enumerate(zip(mine, theirs, strict=True)))
        else:
            assert (
                theirs == mine
                and type(theirs) is type(mine)
                or (isinstance(mine, PurePath) and isinstance(theirs, PurePath) and str(mine) == str(theirs))
            ), (key, mine, theirs)
            n += 1
    return n


def test_snapshot_view_lost_a_key_a_path_or_a_property(tmp_path: Path) -> None:
    """Every field (paths as Path, dates as date) and every property of every model, without a
    hand-written list of keys: new keys and route entries are compared as they come."""
    cfg = config_from_dict(
        {
            "paths": {
                "l1c_dirs": ["l1c", "l1c-2"],
                "l2a_dir": "l2a",
                "dem_dir": "dem",
                "scratch_dir": "/scratch",
                "run_dir": "run",
            },
            "sen2cor": {"runtime": "apptainer", "image": "s.sif", "resolution": 20, "timeout_minutes": 30},
            "scheduler": {
                "kind": "slurm",
                "cores_per_task": 4,
                "walltime": "1:00:30",
                "extra_args": ["--qos=x"],
            },
            "select": {"tiles": ["T17SQV"], "start": "2021-01-01", "end": "2021-02-01"},
        },
        tmp_path,
        tmp_path / "s2kit.toml",
    )
    data = json.loads(json.dumps(cfg.to_json_dict()))
    view = view_of(data, json.loads(json.dumps(describe(cfg))))
    assert isinstance(view, ConfigView)
    assert _walk(cfg, view) >= 25
    assert view.scheduler.walltime_minutes == 61 and view.scheduler.memory_per_task_mb == 4096
    assert view.select.start == date(2021, 1, 1) and view.paths.l1c_dirs[1] == tmp_path / "l1c-2"
    assert view == cfg and view.to_json_dict() == data


def test_snapshot_view_could_be_changed(tmp_path: Path) -> None:
    view = view_of(json.loads(json.dumps(_config(tmp_path).to_json_dict())), describe(_config(tmp_path)))
    assert view is not None
    with pytest.raises(AttributeError, match="read-only"):
        view.sen2cor.version = "2.11"  # type: ignore[misc]
    with pytest.raises(
        SnapshotKeyMissing, match=r"expected key 'sen2cor\.no_such_key' in the config snapshot"
    ):
        _ = view.sen2cor.no_such_key
    assert isinstance(SnapshotKeyMissing("x"), ConfigError) and not hasattr(view, "no_such_key")


def test_snapshot_view_answered_sen2cor_for_its_own_way(tmp_path: Path) -> None:
    """``cfg.sen2cor_for(version)`` (issue 18, route) as plan computed it, errors included."""

    class Routed(BatchConfig):
        def sen2cor_for(self, version: str | None) -> Any:
            if version in (None, "2.9"):
                return self.sen2cor
            if version == "2.11":
                return self.sen2cor.model_copy(update={"version": "2.11", "image": Path("/img/2.11.sif")})
            raise ConfigError(f"expected a routed Sen2Cor version, found {version!r}", self.source)

    base = _config(tmp_path)
    cfg = Routed.model_validate(base.model_dump())
    view = view_of(json.loads(json.dumps(cfg.to_json_dict())), json.loads(json.dumps(describe(cfg))))
    assert view is not None
    assert view.sen2cor_for(None) == cfg.sen2cor_for(None)
    assert (
        view.sen2cor_for("2.11").image == Path("/img/2.11.sif") and view.sen2cor_for("2.11").version == "2.11"
    )
    with pytest.raises(ConfigError) as real:
        cfg.sen2cor_for("2.10")
    with pytest.raises(ConfigError) as seen:
        view.sen2cor_for("2.10")
    assert str(seen.value) == str(real.value)
    # the models without sen2cor_for (before routing): neither has it
    plain = view_of(json.loads(json.dumps(base.to_json_dict())), describe(base))
    assert hasattr(plain, "sen2cor_for") == hasattr(base, "sen2cor_for")


def test_worker_trusted_a_view_that_no_longer_matches_the_snapshot(
    planned: tuple[BatchConfig, RunDir],
) -> None:
    """config.json edited after plan (here: a value the validator refuses): the view is not used,
    the snapshot is validated as before and refused with the same one line."""
    cfg, rd = planned
    assert isinstance(load_snapshot(rd), ConfigView) and load_snapshot(rd) == cfg
    data = json.loads(rd.config_file.read_text())
    data["scheduler"]["walltime"] = "0:00"
    rd.config_file.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as today:
        rd.config()
    with pytest.raises(ConfigError) as fast:
        load_snapshot(rd)
    assert str(fast.value) == str(today.value) and "key 'scheduler.walltime'" in str(fast.value)


@pytest.mark.parametrize(
    "damage",
    ["torn", "not-json-object", "wrong-shape", "missing", "unknown-key"],
)
def test_damaged_snapshot_gave_another_error_than_before(
    planned: tuple[BatchConfig, RunDir], damage: str
) -> None:
    _, rd = planned
    text = rd.config_file.read_text()
    if damage == "torn":
        rd.config_file.write_text(text[: len(text) // 2])
    elif damage == "not-json-object":
        rd.config_file.write_text("[1, 2]")
    elif damage == "wrong-shape":
        rd.config_file.write_text(json.dumps({"paths": 3}))
    elif damage == "missing":
        rd.config_file.unlink()
    else:  # a key an older or newer s2kit wrote
        data = json.loads(text)
        data["sen2cor"]["no_such_key"] = 1
        rd.config_file.write_text(json.dumps(data))
    with pytest.raises(S2kitError) as today:
        rd.config()
    with pytest.raises(S2kitError) as fast:
        load_snapshot(rd)
    assert (type(fast.value), str(fast.value)) == (type(today.value), str(today.value))


@pytest.mark.parametrize("view", ["absent", "torn", "other-version", "other-format", "edited", "huge"])
def test_run_dir_without_a_usable_view_was_refused(planned: tuple[BatchConfig, RunDir], view: str) -> None:
    """A run planned by an older s2kit (no view), or a view that is torn, from another s2kit
    version or format, edited, or oversized: the snapshot is validated and used as before."""
    cfg, rd = planned
    path = rd.path / "config.view.json"
    doc = json.loads(path.read_text())
    assert doc["format"] == VIEW_FORMAT
    if view == "absent":
        path.unlink()
    elif view == "torn":
        path.write_text(path.read_text()[:100])
    elif view == "other-version":
        path.write_text(json.dumps({**doc, "s2kit_version": "0.0.1"}))
    elif view == "other-format":
        path.write_text(json.dumps({**doc, "format": "s2kit-config-view/0"}))
    elif view == "edited":
        doc["config"]["fields"]["sen2cor"]["fields"]["retries"] = 5
        path.write_text(json.dumps(doc))
    else:
        path.write_text(" " * (5 * 1024 * 1024))
    got = load_snapshot(rd)
    assert isinstance(got, BatchConfig) and got == cfg


@pytest.mark.parametrize("edit", ["sen2cor_for", "property", "nested-past-the-stack"])
def test_worker_trusted_a_view_whose_derived_values_were_hand_edited(
    planned: tuple[BatchConfig, RunDir], edit: str
) -> None:
    """review2: only the plain config values of the view were compared with config.json; its
    ``sen2cor_for`` table (which install, image and DEM each version runs) and its properties were
    used as found, so a hand-edited view ran another Sen2Cor / DEM than the config names. A view
    nested past the stack ended in an internal error (RecursionError). Now: not used, config.json
    is validated instead."""
    cfg, rd = planned
    path = rd.path / "config.view.json"
    doc = json.loads(path.read_text())
    if edit == "sen2cor_for":
        for row in doc["sen2cor_for"]:
            if "$model" in row[1]:
                row[1]["fields"]["install_dir"] = {"$path": "/elsewhere/sen2cor-2.9"}
                row[1]["fields"]["dem"] = "srtm"
        path.write_text(json.dumps(doc))
    elif edit == "property":
        doc["config"]["fields"]["scheduler"]["props"]["walltime_minutes"] = 1
        path.write_text(json.dumps(doc))
    else:
        path.write_text("[" * 100_000)
    got = load_snapshot(rd)
    assert isinstance(got, BatchConfig) and got == cfg
    assert got.sen2cor_for(cfg.sen2cor.version).install_dir == cfg.sen2cor.install_dir
    assert got.scheduler.walltime_minutes == cfg.scheduler.walltime_minutes


def test_plan_left_a_stale_view_for_a_config_it_cannot_describe(
    planned: tuple[BatchConfig, RunDir], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, rd = planned
    monkeypatch.setattr(
        "s2kit.config_view._encode", lambda v: (_ for _ in ()).throw(TypeError("no JSON form"))
    )
    write_config_view(rd, cfg)
    assert not (rd.path / "config.view.json").exists()
    assert isinstance(load_snapshot(rd), BatchConfig)
