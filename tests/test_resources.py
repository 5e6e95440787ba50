"""s2kit.resources and ``s2kit status --resources``: statistics of what the scenes used, over
values chosen here so every number is checked by hand (nearest-rank percentiles)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from s2kit.cli import app
from s2kit.report import build_report, render_html
from s2kit.resources import clean_resources, format_resources, nearest_rank, run_resources
from tests.support.resource_runs import Scene, ago, job, measured_run, res


def test_nearest_rank_percentiles_checked_by_hand() -> None:
    # the textbook example of the nearest-rank method: 15, 20, 35, 40, 50
    values = [50, 15, 40, 20, 35]
    assert nearest_rank(values, 30) == 20  # rank ceil(1.5) = 2
    assert nearest_rank(values, 50) == 35  # rank ceil(2.5) = 3
    assert nearest_rank(values, 95) == 50  # rank ceil(4.75) = 5
    assert nearest_rank(values, 100) == 50
    twenty = list(range(1, 21))
    assert nearest_rank(twenty, 50) == 10 and nearest_rank(twenty, 95) == 19  # ranks 10 and 19
    assert nearest_rank([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        nearest_rank([], 50)


def test_stats_per_tile_and_overall_over_known_values(tmp_path: Path) -> None:
    scenes = [
        Scene("46RER", resources=res(600, 500, 1024)),
        Scene("46RER", resources=res(1200, 1000, 2048)),
        Scene("46RER", resources=res(1800, 1500, 3072)),
        Scene("17SQV", resources=res(2400, 2400, 4096)),
        Scene("17SQV", state=None),
        Scene("17SQV", state="failed", reason="oom: killed by the scheduler", resources=res(300, 300, 5000)),
    ]
    cfg, rd, _ = measured_run(tmp_path, scenes, memory_per_task_gb=4)
    rep = run_resources(rd, cfg)
    assert rep.done == 4 and len(rep.done_measured) == 4 and len(rep.measured) == 5
    o = rep.overall
    assert o is not None
    # walls sorted 600 1200 1800 2400: median rank 2, p95 rank ceil(3.8) = 4
    assert o.wall_s == {"median": 1200, "p95": 2400, "max": 2400}
    assert o.peak_mb == {"median": 2048, "p95": 4096, "max": 4096}
    assert o.cpu_efficiency == 0.9  # 5400 CPU s / 6000 wall s x 1 core
    tile = rep.tiles["46RER"]
    assert tile.scenes == 3 and tile.wall_s == {"median": 1200, "p95": 1800, "max": 1800}
    assert rep.tiles["17SQV"].scenes == 1  # the failed attempt is no done scene
    assert rep.failure_kinds == {"oom": 1}
    ch = rep.charged()
    # done and failed attempts: (6000 + 300) s x 1 core; 4 GB reserved; used at peak
    assert ch["core_hours"] == round(6300 / 3600, 3)
    assert ch["gb_hours_reserved"] == round(6300 * 4 / 3600, 3)
    assert ch["gb_hours_used"] == round(
        (600 * 1 + 1200 * 2 + 1800 * 3 + 2400 * 4 + 300 * 5000 / 1024) / 3600, 3
    )
    # left: 1 todo + 1 failed x the median wall 1200 s x 1 core (an estimate)
    assert rep.left["scenes"] == 2 and rep.left["core_hours"] == round(2 * 1200 / 3600, 3)
    text = format_resources(rep)
    assert "4 of 4 done scene(s) measured" in text and "nearest-rank" in text
    assert "left (estimate)" in text and "1 oom" in text


def test_old_runs_without_resources_are_counted_not_guessed(tmp_path: Path) -> None:
    cfg, rd, _ = measured_run(tmp_path, [Scene(), Scene(), Scene(state=None)])
    rep = run_resources(rd, cfg)
    assert rep.overall is None and rep.without_resources == 2 and rep.measured == []
    assert rep.left == {"scenes": 1, "running": 0, "estimate": False}
    text = format_resources(rep)
    assert "0 of 2 done scene(s) measured; 2 done without a resources record" in text
    assert "no estimate" in text


def test_hostile_resource_values_are_ignored_with_a_count(tmp_path: Path) -> None:
    hostile = {
        "wall_s": float("nan"),
        "cpu_s": float("inf"),
        "peak_rss_mb": -5,
        "max_rss_child_mb": 1e30,
        "cores": True,
        "rss_samples": "12",
        "node": "n\x1b[31m",
    }
    values, ignored = clean_resources(hostile)
    assert values == {} and ignored == 7
    assert clean_resources([1, 2]) == ({}, 1) and clean_resources(None) == ({}, 0)
    assert clean_resources({"cores": 2.0, "wall_s": 5})[0] == {"cores": 2, "wall_s": 5.0}
    assert clean_resources({"cores": 2.5})[1] == 1
    assert clean_resources({"wall_s": 10**400, "rss_samples": -(10**400)}) == ({}, 2)  # no OverflowError
    # in state files: NaN and Infinity are what Python's json writes for them
    cfg, rd, names = measured_run(
        tmp_path,
        [Scene(resources=res(100, 50, 1000)), Scene(), Scene()],
        raw_states={1: "", 2: ""},
    )
    torn = {
        "scene": names[1],
        "state": "done",
        "resources": {"wall_s": "NAN", "peak_rss_mb": "INF", "cpu_s": 7},
    }
    text = json.dumps(torn).replace('"NAN"', "NaN").replace('"INF"', "Infinity")
    assert "NaN" in text and "Infinity" in text
    rd.state_file(names[1]).write_text(text, encoding="utf-8")
    rd.state_file(names[2]).write_text(
        json.dumps({"scene": names[2], "state": "done", "resources": {"wall_s": -1, "cpu_s": 1e300}}),
        encoding="utf-8",
    )
    rep = run_resources(rd, cfg)
    assert rep.ignored_values == 2 + 2  # scene 1: wall_s, peak_rss_mb; scene 2: wall_s, cpu_s
    assert rep.overall is not None and rep.overall.wall_s == {"median": 100, "p95": 100, "max": 100}
    assert all(math.isfinite(v) for v in rep.overall.peak_mb.values())  # type: ignore[union-attr]
    assert "value(s) ignored" in format_resources(rep)


def test_missing_keys_and_provenance_only_records_are_read(tmp_path: Path) -> None:
    cfg, rd, names = measured_run(
        tmp_path,
        [Scene(resources={"wall_s": 100}), Scene(resources={"cpu_user_s": 3, "cpu_sys_s": 1}), Scene()],
    )
    rd.provenance_file(names[2]).parent.mkdir(parents=True, exist_ok=True)
    rd.provenance_file(names[2]).write_text(json.dumps({"resources": res(300, 150, 900, cores=2)}))
    rep = run_resources(rd, cfg)
    assert len(rep.done_measured) == 3 and rep.without_resources == 0
    cpu = {m.scene: m.cpu_s for m in rep.measured}
    assert cpu[names[1]] == 4.0  # user + sys when cpu_s is missing
    assert cpu[names[2]] == 150 and rep.overall is not None and rep.overall.cores == [1, 2]
    assert rep.overall.peak_mb == {"median": 900, "p95": 900, "max": 900}


def test_running_task_elapsed_against_walltime_and_its_extension(tmp_path: Path) -> None:
    scenes = [Scene(resources=res(1200, 1100, 2000)), Scene(state="running", started=ago(30))]
    cfg, rd, names = measured_run(tmp_path, scenes, walltime="02:00", jobs=[job("100", 2)])
    rep = run_resources(rd, cfg)
    (row,) = rep.running
    assert row["scene"] == names[1] and row["walltime_minutes"] == 120 and row["job"] == "lsf 100[2]"
    assert 29 * 60 <= row["elapsed_s"] <= 32 * 60 and 0.24 <= row["walltime_used"] <= 0.27
    assert rd.update_job("lsf", "100", {"walltime_minutes": 240})
    rep = run_resources(rd, cfg)
    assert rep.running[0]["walltime_minutes"] == 240 and rep.running[0]["walltime_used"] < 0.14
    assert "of walltime 04:00" in format_resources(rep)
    # the rest of the median for the running scene: 1200 s - 30 min elapsed = nothing more
    assert rep.left["core_hours"] == 0.0


def test_running_time_is_measured_from_the_state_start(tmp_path: Path) -> None:
    cfg, rd, _ = measured_run(tmp_path, [Scene(state="running", started="2026-01-01T00:00:00Z")])
    now = datetime(2026, 1, 1, 1, 30, tzinfo=timezone.utc)
    (row,) = run_resources(rd, cfg, now=now).running
    assert row["elapsed_s"] == 5400 and row["walltime_used"] == 0.75


def test_sizing_groups_follow_the_routed_version_of_the_plan(tmp_path: Path) -> None:
    scenes = [
        Scene(resources=res(600, 500, 1000), extra={"sen2cor": "2.11"}),
        Scene(resources=res(1800, 1500, 3000), extra={"sen2cor": "2.9"}),
    ]
    cfg, rd, _ = measured_run(tmp_path, scenes)
    rep = run_resources(rd, cfg)
    labels = [k.label for k in rep.groups]
    # PlanEntry gains 'sen2cor' with routing (issue 18): until then every scene is one group
    if "sen2cor" in {f for f in getattr(type(rd.read_plan()[0]), "__dataclass_fields__", {})}:
        assert labels == ["60 m, Sen2Cor 2.11", "60 m, Sen2Cor 2.9"]
    else:
        assert labels == ["60 m"]


def test_status_resources_cli_text_and_json(tmp_path: Path) -> None:
    scenes = [Scene(resources=res(600 * k, 500 * k, 1024 * k)) for k in (1, 2, 3)] + [Scene(state=None)]
    _, rd, _ = measured_run(tmp_path, scenes, kind="local")
    runner = CliRunner()
    text = runner.invoke(app, ["status", "--run-dir", str(rd.path), "--resources"])
    assert text.exit_code == 0, text.output
    assert "resources: 3 of 3 done scene(s) measured" in text.output
    assert "tile 46RER" in text.output and "20.0/30.0/30.0" in text.output  # wall minutes 10 20 30
    doc = json.loads(
        runner.invoke(app, ["status", "--run-dir", str(rd.path), "--resources", "--json"]).output
    )
    assert doc["counts"]["done"] == 3 and doc["resources"]["overall"]["wall_s"]["p95"] == 1800
    plain = json.loads(runner.invoke(app, ["status", "--run-dir", str(rd.path), "--json"]).output)
    assert "resources" not in plain


def test_report_has_a_resources_section_and_stays_self_contained(tmp_path: Path) -> None:
    scenes = [Scene(resources=res(600, 500, 1024)), Scene(resources=res(1200, 600, 2048)), Scene()]
    _, rd, _ = measured_run(tmp_path, scenes)
    data = build_report(rd.path, quicklooks=False)
    assert data["resources"]["overall"]["wall_s"] == {"median": 600, "p95": 1200, "max": 1200}
    page = render_html(data)
    section = page.split('<section id="resources">', 1)[1].split("</section>", 1)[0]
    assert "nearest-rank" in section and "46RER" in section and "1 done scene(s) without" in section
    assert "<script" not in page.lower()


def test_scenes_published_before_the_run_are_not_counted_as_unmeasured(tmp_path: Path) -> None:
    cfg, rd, names = measured_run(
        tmp_path,
        [Scene(resources=res(60, 50, 100)), Scene(state=None, extra={"decision": "done"})],
    )
    rep = run_resources(rd, cfg)
    assert rep.done == 2 and rep.without_resources == 0 and len(rep.measured) == 1


def test_a_start_time_in_the_future_is_no_negative_elapsed_time(tmp_path: Path) -> None:
    cfg, rd, _ = measured_run(tmp_path, [Scene(state="running", started="2099-01-01T00:00:00Z")])
    (row,) = run_resources(rd, cfg).running
    assert row["elapsed_s"] == 0.0 and row["walltime_used"] == 0.0
