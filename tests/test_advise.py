"""s2kit advise: the measured p95 (+ margin) becomes a config snippet that loads; defaults before
enough scenes are measured, said as such; warnings when a request is below the observed p95."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from s2kit.advise import DEFAULTS_SOURCE, advise_run, format_advice
from s2kit.cli import app
from s2kit.config import config_from_dict, walltime_problem
from s2kit.runs import RunDir
from tests.support.cli_runs import run_exe
from tests.support.configs import write_toml
from tests.support.resource_runs import Scene, measured_run, res, run_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def twenty(cores: int = 1, busy: float = 0.9) -> list[Scene]:
    """20 done scenes k = 1..20: wall k minutes, CPU busy x wall, peak k x 200 MB."""
    return [Scene(resources=res(60.0 * k, busy * 60.0 * k, 200.0 * k, cores=cores)) for k in range(1, 21)]


def test_measured_p95_becomes_the_proposal(tmp_path: Path) -> None:
    cfg, rd, _ = measured_run(tmp_path, twenty(), memory_per_task_gb=8, walltime="02:00")
    advice = advise_run(cfg, rd, margin=0.2, min_scenes=10)
    (p,) = advice.proposals
    assert p.basis == "measured" and p.measured == 20
    # p95 by nearest rank of 20 values = the 19th: wall 19 min, peak 3800 MB
    assert p.timeout_minutes == 23  # 19 x 1.2 = 22.8 -> 23
    assert p.walltime_minutes == 30  # 23 + 5 = 28 -> 30
    assert p.memory_per_task_gb == 4.5  # 3800 / 1024 x 1.2 = 4.45 -> 4.5
    assert p.cores_per_task == 1
    assert advice.updates == {
        "scheduler": {"cores_per_task": 1, "memory_per_task_gb": 4.5, "walltime": "00:30"},
        "sen2cor": {"timeout_minutes": 23},
    }
    text = format_advice(advice)
    assert "measured on 20 done scene(s)" in text and 'walltime = "00:30"' in text
    assert "WARN" not in text


def test_snippet_round_trips_through_the_config_loader(tmp_path: Path) -> None:
    cfg, rd, _ = measured_run(tmp_path, twenty(), memory_per_task_gb=8)
    advice = advise_run(cfg, rd, margin=0.35)
    snippet = tomllib.loads(advice.snippet)
    assert snippet == advice.updates
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    data: dict[str, Any] = tomllib.loads(conf.read_text(encoding="utf-8"))
    for table, values in snippet.items():
        data[table].update(values)
    new = config_from_dict(data, tmp_path, conf)
    assert new.scheduler.memory_per_task_gb == advice.updates["scheduler"]["memory_per_task_gb"]
    assert new.scheduler.walltime == advice.updates["scheduler"]["walltime"]
    assert walltime_problem(new) is None  # the worker's timeout stays below the walltime


def test_defaults_below_min_scenes_are_said_to_be_defaults(tmp_path: Path) -> None:
    cfg, rd, _ = measured_run(tmp_path, twenty()[:3] + [Scene(state=None)])
    advice = advise_run(cfg, rd, min_scenes=10)
    (p,) = advice.proposals
    assert p.basis == "defaults" and p.measured == 3
    assert (p.memory_per_task_gb, p.timeout_minutes, p.walltime_minutes) == (4.0, 60, 65)
    text = format_advice(advice)
    assert "60 m: DEFAULTS (3 measured, 10 needed)" in text and DEFAULTS_SOURCE in text
    assert "defaults where fewer than --min-scenes" in advice.snippet


@pytest.mark.parametrize(("resolution", "memory", "walltime"), [(20, 4.0, "02:05"), (10, 8.0, "04:05")])
def test_defaults_are_resolution_aware(tmp_path: Path, resolution: int, memory: float, walltime: str) -> None:
    cfg, rd, _ = measured_run(tmp_path, [Scene(state=None)], sen2cor={"resolution": resolution})
    advice = advise_run(cfg, rd)
    assert advice.updates["scheduler"]["memory_per_task_gb"] == memory
    assert advice.updates["scheduler"]["walltime"] == walltime
    assert advice.proposals[0].key.label == f"{resolution} m"


def test_advise_before_any_plan_uses_the_defaults_of_the_config(tmp_path: Path) -> None:
    cfg = run_config(tmp_path)
    conf = write_toml(cfg, tmp_path / "s2kit.toml")
    res_ = CliRunner().invoke(app, ["advise", "--config", str(conf), "--json"])
    assert res_.exit_code == 0, res_.output
    doc = json.loads(res_.output)
    assert doc["basis"] == "defaults" and doc["updates"]["scheduler"]["memory_per_task_gb"] == 4.0
    assert not RunDir(cfg.paths.run_dir).path.exists()  # advise writes nothing


def test_warns_when_a_request_is_below_the_observed_p95(tmp_path: Path) -> None:
    cfg, rd, _ = measured_run(
        tmp_path, twenty(), memory_per_task_gb=2, walltime="00:15", sen2cor={"timeout_minutes": 10}
    )
    advice = advise_run(cfg, rd)
    warns = "\n".join(advice.warnings)
    assert "memory_per_task_gb = 2 is below the observed p95 peak 3.71 GB" in warns
    assert "timeout_minutes = 10 is below the observed p95 wall 19.0 min" in warns
    assert "scheduler.walltime = '00:15' is below" in warns
    assert format_advice(advice).count("\nWARN: ") == 3


def test_scenes_failed_for_size_are_warned_about(tmp_path: Path) -> None:
    scenes = twenty() + [
        Scene(state="failed", reason="oom: the scheduler killed the task for memory"),
        Scene(state="failed", reason="walltime: killed at the job's time limit"),
        Scene(state="failed", reason="exit-code: 1 (crash)"),
    ]
    cfg, rd, _ = measured_run(tmp_path, scenes)
    warns = advise_run(cfg, rd).warnings
    assert any(w.startswith("1 scene(s) failed 'oom'") for w in warns)
    assert any(w.startswith("1 scene(s) failed 'walltime'") for w in warns)
    assert not any("exit-code" in w for w in warns)


def test_fewer_cores_only_when_the_given_ones_idled(tmp_path: Path) -> None:
    cfg, rd, _ = measured_run(tmp_path / "a", twenty(cores=4, busy=1.0), cores_per_task=4)
    (p,) = advise_run(cfg, rd).proposals
    assert p.cores_per_task == 1 and p.timeout_minutes == 23  # 1.0 busy of 4 (25 % < 1.5/4)
    assert any("kept 1.00 of 4 cores busy" in w for w in p.why)
    cfg, rd, _ = measured_run(tmp_path / "d", twenty(cores=2, busy=1.25), cores_per_task=2)
    (p,) = advise_run(cfg, rd).proposals
    # 62 % < 1.5/2: one core, and a scene may take 1.25x as long: 19 min x 1.25 x 1.2 = 28.5 -> 29
    assert p.cores_per_task == 1 and p.timeout_minutes == 29 and p.walltime_minutes == 35
    cfg, rd, _ = measured_run(tmp_path / "b", twenty(cores=2, busy=1.8), cores_per_task=2)
    assert advise_run(cfg, rd).proposals[0].cores_per_task == 2  # 90 %: keep
    cfg, rd, _ = measured_run(tmp_path / "c", twenty(cores=1, busy=1.0), cores_per_task=1)
    assert advise_run(cfg, rd).proposals[0].cores_per_task == 1  # never more than given


def test_unused_share_of_the_memory_request(tmp_path: Path) -> None:
    scenes = [Scene(resources=res(3600, 3000, 2048)) for _ in range(10)]
    cfg, rd, _ = measured_run(tmp_path, scenes, memory_per_task_gb=8)
    advice = advise_run(cfg, rd)
    mem = advice.waste["memory"]
    assert mem["gb_hours_reserved"] == 80.0 and mem["gb_hours_used_at_peak"] == 20.0
    assert mem["unused_share"] == 0.75
    assert mem["gb_hours_with_proposal"] == 25.0  # 2 GB x 1.2 = 2.4 -> 2.5 GB x 10 h
    assert "75 % of the reservation unused" in format_advice(advice)


def test_hostile_values_never_reach_the_proposal(tmp_path: Path) -> None:
    scenes = twenty() + [Scene(resources={"wall_s": 1e300, "peak_rss_mb": -1, "cpu_s": float("nan")})] * 5
    cfg, rd, _ = measured_run(tmp_path, scenes)
    advice = advise_run(cfg, rd)
    assert advice.updates["sen2cor"]["timeout_minutes"] == 23
    assert any("15 resources value(s) ignored" in n for n in advice.notes)


def test_advise_cli_refuses_bad_numbers_and_prints_the_snippet(tmp_path: Path, s2kit_exe: str) -> None:
    _, rd, _ = measured_run(tmp_path, twenty())
    runner = CliRunner()
    for bad in (["--margin", "nan"], ["--margin", "-0.1"], ["--min-scenes", "0"]):
        out = run_exe(s2kit_exe, "advise", "--run-dir", rd.path, *bad)
        lines = out.stderr.decode().splitlines()
        assert out.returncode == 2 and out.stdout == b"" and len(lines) == 1, (bad, out)
        assert lines[0].startswith(f"s2kit: error: expected {bad[0]} ")
    ok = runner.invoke(app, ["advise", "--run-dir", str(rd.path), "--margin", "0"])
    assert ok.exit_code == 0, ok.output
    assert "[scheduler]\ncores_per_task = 1\nmemory_per_task_gb = 4\n" in ok.output  # 3800 MB -> 4 GB
    assert "[sen2cor]\ntimeout_minutes = 19\n" in ok.output


def test_snippet_stays_toml_under_a_hostile_run_dir(hostile_dir: Path) -> None:
    cfg, rd, _ = measured_run(hostile_dir, twenty())
    out = CliRunner().invoke(app, ["advise", "--run-dir", str(rd.path)])
    assert out.exit_code == 0, out.output
    snippet = out.output[out.output.index("# s2kit advise for ") :].split("\n\n[sen2cor]\n")[0]
    assert tomllib.loads(snippet + "\n")["scheduler"]["memory_per_task_gb"] == 4.5
    assert tomllib.loads(advise_run(cfg, rd).snippet) == advise_run(cfg, rd).updates
