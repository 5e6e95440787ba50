"""Issue 18 items 3-5: one batch, each scene on the Sen2Cor its processing baseline needs.

Config shapes and their one-line refusals, planning a mixed L1C store (PB 02.09, 02.14, 03.01,
04.00, 05.09, 05.11; trees from the REAL L1C metadata fixtures, the 02.14/04.00/05.11 ones
derived from a real one by renaming its baseline), the plan summary of each choice, submit's
one array per (version, chunk), and a batch run end to end with two stand-in installs (each a
wrapper around the Sen2Cor TEST DOUBLE told which version it plays: not Sen2Cor).

Versions used: 2.9 (must not process baselines >= 04.00) and 2.11 (processes every baseline);
the Sen2Cor 2.12 / Copernicus DEM route is the same code with other values.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from s2kit.config import BatchConfig, config_from_dict, load_config
from s2kit.errors import ConfigError
from s2kit.plan import make_plan
from s2kit.runs import PlanEntry, RunDir, plan_entry_from_json
from s2kit.tiles import tile_geometry
from tests.support.configs import DOUBLE, config_data
from tests.support.safe_trees import build_l1c_tree

# real L1C fixture baseline -> its tile
REAL_TILES = {"02.09": "01LAC", "03.01": "46RER", "05.09": "34UDD"}


def _fake_dem(dem_dir: Path, *tiles: str) -> Path:
    """``dem_dir/<tile>/srtm_XX_YY.zip`` (placeholder bytes) for every SRTM tile each tile needs."""
    for tile in tiles:
        (dem_dir / tile).mkdir(parents=True, exist_ok=True)
        for name in tile_geometry(tile, 0.0).srtm_tiles:
            (dem_dir / tile / f"{name}.zip").write_bytes(b"PK placeholder, not a DEM")
    return dem_dir


def _as_baseline(tree: Path, baseline: str) -> Path:
    """DERIVED (test-only): the tree of a real L1C renamed to another processing baseline
    (product name field N.... and PROCESSING_BASELINE in its MTD_MSIL1C.xml)."""
    old = re.search(r"_N(\d{4})_", tree.name)
    assert old
    code = baseline.replace(".", "")
    mtd = tree / "MTD_MSIL1C.xml"
    text = mtd.read_text(encoding="utf-8")
    text = re.sub(
        r"<PROCESSING_BASELINE>[^<]+</PROCESSING_BASELINE>",
        f"<PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>",
        text,
    )
    mtd.write_text(text.replace(f"_N{old[1]}_", f"_N{code}_"), encoding="utf-8")
    return tree.rename(tree.with_name(tree.name.replace(f"_N{old[1]}_", f"_N{code}_")))


def mixed_store(l1c: Path) -> dict[str, str]:
    """Six L1C of PB 02.09, 02.14, 03.01, 04.00, 05.09, 05.11 (distinct datatakes): baseline -> scene."""
    l1c.mkdir(parents=True, exist_ok=True)
    trees = {
        "02.09": build_l1c_tree(l1c, "02.09"),
        "02.14": _as_baseline(build_l1c_tree(l1c, "02.09", day_offset=1), "02.14"),
        "03.01": build_l1c_tree(l1c, "03.01"),
        "04.00": _as_baseline(build_l1c_tree(l1c, "05.09", day_offset=1), "04.00"),
        "05.09": build_l1c_tree(l1c, "05.09"),
        "05.11": _as_baseline(build_l1c_tree(l1c, "05.09", day_offset=2), "05.11"),
    }
    return {pb: t.name[: -len(".SAFE")] for pb, t in trees.items()}


ROUTE = [
    {"below_baseline": "04.00", "version": "2.9", "install_dir": "sen2cor-2.9"},
    {"version": "2.11", "install_dir": "sen2cor-2.11"},
]


def _cfg(tmp: Path, sen2cor: dict[str, Any] | None = None, **sections: dict[str, Any]) -> BatchConfig:
    _fake_dem(tmp / "dem", *REAL_TILES.values())
    data = config_data(tmp, **sections)
    data["sen2cor"] = {"runtime": "native", **(sen2cor if sen2cor is not None else {"route": ROUTE})}
    return config_from_dict(data, tmp)


def _refusal(tmp: Path, sen2cor: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        _cfg(tmp, sen2cor)
    msg = err.value.message
    assert "\n" not in msg
    return msg


# ============================================================================ config
def test_route_entries_inherit_the_table_and_name_their_own_paths(tmp_path: Path) -> None:
    cfg = _cfg(
        tmp_path,
        {
            "timeout_minutes": 30,
            "baseline": "02.99",
            "route": [ROUTE[0], {**ROUTE[1], "timeout_minutes": 120}],
        },
    )
    old, new = cfg.sen2cor_for("2.9"), cfg.sen2cor_for("2.11")
    assert (old.version, old.install_dir, old.timeout_minutes, old.baseline) == (
        "2.9",
        tmp_path / "sen2cor-2.9",
        30,
        "02.99",
    )
    assert (new.version, new.install_dir, new.timeout_minutes, new.baseline) == (
        "2.11",
        tmp_path / "sen2cor-2.11",
        120,
        "02.99",
    )
    assert old.dem == new.dem == "srtm"  # the default DEM kind of each version
    assert old.route == new.route == []  # the effective settings of one version
    # the table reads as the catch-all version's settings; a plan without sen2cor means the table
    assert cfg.sen2cor.version == "2.11" and cfg.sen2cor_for(None) is cfg.sen2cor
    assert cfg.max_timeout_minutes() == 120


def test_route_snapshot_round_trips_to_the_same_config(tmp_path: Path) -> None:
    """config.json holds every route entry complete: validating it gives the same config
    (submit's snapshot check and the workers read it)."""
    cfg = _cfg(tmp_path, {"route": ROUTE, "dem": "none"})
    again = BatchConfig.model_validate(json.loads(json.dumps(cfg.to_json_dict())))
    assert again.to_json_dict() == cfg.to_json_dict()
    assert [e.dem for e in again.sen2cor.route] == ["none", "none"]


def test_single_version_config_is_one_implicit_route(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, {"install_dir": "sen2cor"})
    assert cfg.sen2cor.route == [] and cfg.sen2cor.versions() == ["2.9"]
    assert cfg.sen2cor_for("2.9") is cfg.sen2cor
    with pytest.raises(ConfigError, match="expected Sen2Cor 2.9"):
        cfg.sen2cor_for("2.11")


def test_route_toml_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "l1c").mkdir()
    toml = tmp_path / "s2kit.toml"
    toml.write_text(
        "[paths]\nl1c_dirs = ['l1c']\nl2a_dir = 'l2a'\nscratch_dir = 'scratch'\nrun_dir = 'run'\n"
        "[sen2cor]\nruntime = 'apptainer'\ndem = 'none'\n"
        "route = [ { below_baseline = '04.00', version = '2.9', image = 'img/sen2cor-2.9.sif' },\n"
        "          { version = '2.11', image = 'img/sen2cor-2.11.sif' } ]\n",
        encoding="utf-8",
    )
    cfg = load_config(toml)
    assert [e.image for e in cfg.sen2cor.route] == [
        tmp_path / "img" / "sen2cor-2.9.sif",
        tmp_path / "img" / "sen2cor-2.11.sif",
    ]


@pytest.mark.parametrize(
    ("route", "key", "words"),
    [
        (  # 2.9 past its gate
            [
                {"below_baseline": "05.00", "version": "2.9", "install_dir": "a"},
                {"version": "2.11", "install_dir": "b"},
            ],
            "sen2cor.route[0]",
            "expected below_baseline at most '04.00' for Sen2Cor 2.9",
        ),
        (  # 2.9 as the catch-all
            [
                {"below_baseline": "03.00", "version": "2.11", "install_dir": "a"},
                {"version": "2.9", "install_dir": "b"},
            ],
            "sen2cor.route[1]",
            "found no below_baseline",
        ),
        (  # a catch-all before the end: the rest unreachable
            [{"version": "2.10", "install_dir": "a"}, {"version": "2.11", "install_dir": "b"}],
            "sen2cor.route",
            "the entries after it are unreachable",
        ),
        (  # overlapping: the second range lies inside the first
            [
                {"below_baseline": "04.00", "version": "2.9", "install_dir": "a"},
                {"below_baseline": "03.00", "version": "2.10", "install_dir": "b"},
                {"version": "2.11", "install_dir": "c"},
            ],
            "sen2cor.route",
            "which takes no baseline above what the entries before it take (below 04.00): unreachable",
        ),
        (  # uncovered: nothing takes 05.00 and above
            [
                {"below_baseline": "04.00", "version": "2.9", "install_dir": "a"},
                {"below_baseline": "05.00", "version": "2.11", "install_dir": "b"},
            ],
            "sen2cor.route",
            "baselines >= 05.00 would have no Sen2Cor",
        ),
        (  # one version twice
            [
                {"below_baseline": "03.00", "version": "2.11", "install_dir": "a"},
                {"version": "2.11", "install_dir": "b"},
            ],
            "sen2cor.route",
            "expected each Sen2Cor version once",
        ),
        (  # a DEM the version cannot read
            [
                {"below_baseline": "04.00", "version": "2.9", "install_dir": "a"},
                {"version": "2.11", "install_dir": "b", "dem": "cop-dem-glo30"},
            ],
            "sen2cor.route[1]",
            "expected a DEM Sen2Cor 2.11 can use (srtm, none)",
        ),
        (  # a 2.9 entry writing an output baseline it must not
            [
                {"below_baseline": "04.00", "version": "2.9", "install_dir": "a", "baseline": "05.00"},
                {"version": "2.11", "install_dir": "b"},
            ],
            "sen2cor.route[0]",
            "expected a baseline below 04.00 with Sen2Cor 2.9",
        ),
        (  # a batch-wide key in an entry
            [
                {"below_baseline": "04.00", "version": "2.9", "install_dir": "a", "resolution": 10},
                {"version": "2.11", "install_dir": "b"},
            ],
            "sen2cor.route[0].resolution",
            "Extra inputs are not permitted",
        ),
        (
            [
                {"below_baseline": "4.0", "version": "2.9", "install_dir": "a"},
                {"version": "2.11", "install_dir": "b"},
            ],
            "sen2cor.route[0].below_baseline",
            "expected a processing baseline like '03.00', found '4.0'",
        ),
        (  # no runtime path for an entry
            [{"below_baseline": "04.00", "version": "2.9"}, {"version": "2.11", "install_dir": "b"}],
            "sen2cor.route[0]",
            "runtime 'native' needs 'install_dir'",
        ),
    ],
)
def test_route_refused_at_load_with_one_line(
    tmp_path: Path, route: list[dict[str, Any]], key: str, words: str
) -> None:
    msg = _refusal(tmp_path, {"route": route})
    assert msg.startswith(f"key '{key}': ") and words in msg


def test_route_with_another_table_version_refused(tmp_path: Path) -> None:
    msg = _refusal(tmp_path, {"version": "2.9", "route": ROUTE})
    assert msg.startswith(
        "key 'sen2cor.route': expected sen2cor.version unset or the last entry's (2.11), found '2.9'"
    )


def test_series_refusals(tmp_path: Path) -> None:
    assert "found Sen2Cor 2.9, which must not process baselines >= 04.00" in _refusal(
        tmp_path, {"series": "consistent", "install_dir": "a"}
    )
    assert "expected no sen2cor.route with series 'consistent'" in _refusal(
        tmp_path, {"series": "consistent", "route": ROUTE}
    )
    assert "series 'routed' needs a sen2cor.route" in _refusal(
        tmp_path, {"series": "routed", "install_dir": "a"}
    )


def test_walltime_must_hold_the_longest_route_timeout(tmp_path: Path) -> None:
    from s2kit.config import walltime_problem

    cfg = _cfg(
        tmp_path,
        {"route": [ROUTE[0], {**ROUTE[1], "timeout_minutes": 200}]},
        scheduler={"kind": "slurm", "walltime": "02:00"},
    )
    problem = walltime_problem(cfg)
    assert problem is not None and "(205)" in problem


# ============================================================================ plan
def test_plan_of_a_mixed_store_routes_each_baseline(tmp_path: Path) -> None:
    scenes = mixed_store(tmp_path / "l1c")
    cfg = _cfg(tmp_path)
    res = make_plan(cfg, check_resources=False)
    by = {e.scene: e for e in res.entries}
    assert {pb: (by[s].decision, by[s].sen2cor) for pb, s in scenes.items()} == {
        "02.09": ("todo", "2.9"),
        "02.14": ("todo", "2.9"),
        "03.01": ("todo", "2.9"),
        "04.00": ("todo", "2.11"),
        "05.09": ("todo", "2.11"),
        "05.11": ("todo", "2.11"),
    }
    assert by[scenes["02.14"]].route == "sen2cor.route[0]: baseline 02.14 is below 04.00"
    assert by[scenes["05.11"]].route == "sen2cor.route[1]: baseline 05.11, every other baseline"
    # no scene is skipped baseline-gate: a route takes every baseline
    assert res.counts == {"todo": 6} and res.reasons == {}
    # the batch holds version-homogeneous runs of lines, in route order
    rd = RunDir(cfg.paths.run_dir)
    versions = [by[s].sen2cor for s in rd.read_batch(res.batch)]
    assert versions == ["2.9"] * 3 + ["2.11"] * 3
    # plan.jsonl records both fields
    assert [(e.sen2cor, e.route) for e in rd.read_plan()] == [(e.sen2cor, e.route) for e in res.entries]


def test_plan_three_routes_split_02_03_and_04(tmp_path: Path) -> None:
    scenes = mixed_store(tmp_path / "l1c")
    route = [
        {"below_baseline": "03.00", "version": "2.9", "install_dir": "a"},
        {"below_baseline": "04.00", "version": "2.10", "install_dir": "b"},
        {"version": "2.11", "install_dir": "c"},
    ]
    res = make_plan(_cfg(tmp_path, {"route": route}), check_resources=False)
    by = {e.scene: e.sen2cor for e in res.entries}
    assert [by[scenes[pb]] for pb in ("02.09", "02.14", "03.01", "04.00", "05.09", "05.11")] == [
        "2.9",
        "2.9",
        "2.10",
        "2.11",
        "2.11",
        "2.11",
    ]


def test_plan_summary_of_a_routed_batch_says_mixed_and_not_comparable(tmp_path: Path) -> None:
    mixed_store(tmp_path / "l1c")
    text = make_plan(_cfg(tmp_path), check_resources=False).summary()
    assert (
        "plan: mixed Sen2Cor versions (sen2cor.route), todo scene(s): 2.9 for 3 (below 04.00); "
        "2.11 for 3 (every other baseline)"
    ) in text
    assert "plan: L2A from different Sen2Cor versions are not strictly comparable" in text


def test_plan_consistent_series_takes_every_baseline_with_one_version(tmp_path: Path) -> None:
    scenes = mixed_store(tmp_path / "l1c")
    cfg = _cfg(tmp_path, {"series": "consistent", "version": "2.11", "install_dir": "sen2cor-2.11"})
    res = make_plan(cfg, check_resources=False)
    assert {e.sen2cor for e in res.entries} == {"2.11"} and res.counts == {"todo": len(scenes)}
    assert {e.route for e in res.entries} == {'series = "consistent": every scene with Sen2Cor 2.11'}
    assert (
        'plan: consistent series (series = "consistent"): all 6 todo scene(s) with Sen2Cor 2.11, which '
        "applies "
        "the -1000 radiometric offset of baselines >= 04.00 and none below"
    ) in res.summary()


def test_plan_single_version_keeps_the_gate_and_says_how_to_process_the_rest(tmp_path: Path) -> None:
    scenes = mixed_store(tmp_path / "l1c")
    res = make_plan(_cfg(tmp_path, {"install_dir": "sen2cor"}), check_resources=False)
    by = {e.scene: e for e in res.entries}
    assert [by[scenes[pb]].decision for pb in ("02.09", "02.14", "03.01")] == ["todo"] * 3
    assert {(by[scenes[pb]].reason or "").split(":")[0] for pb in ("04.00", "05.09", "05.11")} == {
        "baseline-gate"
    }
    assert {by[scenes[pb]].sen2cor for pb in ("04.00", "05.09", "05.11")} == {None}
    assert by[scenes["02.09"]].route == "sen2cor.version = 2.9 (one version for the batch)"
    assert res.series == [
        "3 scene(s) skipped baseline-gate: Sen2Cor 2.9 must not process their baseline; to process them, "
        "route them to 2.10 or later (sen2cor.route) or process every scene with one such version "
        '(series = "consistent"): see the batch guide'
    ]
    assert "Sen2Cor versions" not in res.summary()


def test_plan_checks_the_dem_of_each_route(tmp_path: Path) -> None:
    """A route with dem = "none" needs no DEM; the other route's scenes still do."""
    scenes = mixed_store(tmp_path / "l1c")
    route = [{**ROUTE[0], "dem": "none"}, ROUTE[1]]
    cfg = _cfg(tmp_path, {"route": route})
    for tile in REAL_TILES.values():  # no DEM at all
        for f in (tmp_path / "dem" / tile).iterdir():
            f.unlink()
    by = {e.scene: e for e in make_plan(cfg, check_resources=False).entries}
    assert {pb: by[scenes[pb]].decision for pb in scenes} == {
        "02.09": "todo",
        "02.14": "todo",
        "03.01": "todo",
        "04.00": "skipped",
        "05.09": "skipped",
        "05.11": "skipped",
    }
    assert by[scenes["02.09"]].reason == "no DEM: flat terrain"
    assert (by[scenes["05.09"]].reason or "").startswith("no-dem: ")


def test_old_plan_line_without_sen2cor_loads_and_means_the_table(tmp_path: Path) -> None:
    line = {"scene": "S", "l1c_path": "/x/S.SAFE", "decision": "todo", "size_bytes": 1}
    entry = plan_entry_from_json(line)
    assert entry == PlanEntry(scene="S", l1c_path="/x/S.SAFE", decision="todo", size_bytes=1)
    assert entry.sen2cor is None
    cfg = _cfg(tmp_path, {"install_dir": "sen2cor"})
    assert cfg.sen2cor_for(entry.sen2cor) is cfg.sen2cor
    with pytest.raises(ValueError, match="sen2cor = a JSON number"):
        plan_entry_from_json({**line, "sen2cor": 2.9})


def test_double_install_dir_is_the_test_double() -> None:
    # the stand-in installs below wrap this file; make sure the path the helpers use is right
    assert (DOUBLE / "bin" / "L2A_Process").is_file()


# ============================================================================ submit
IMAGES_ROUTE = [
    {"below_baseline": "04.00", "version": "2.9", "image": "/data/img/sen2cor-2.9.sif"},
    {"version": "2.11", "image": "/data/img/sen2cor-2.11.sif", "timeout_minutes": 150},
]


def _golden_cfg(kind: str) -> BatchConfig:
    scheduler = {"kind": kind, "walltime": "03:00", "max_concurrent": 5, "cores_per_task": 2}
    data = config_data("/data/x", runtime="apptainer", image=None, scheduler=scheduler)
    data["sen2cor"] = {"runtime": "apptainer", "route": IMAGES_ROUTE}
    return BatchConfig.model_validate(data)


@pytest.mark.parametrize("kind", ["slurm", "lsf", "local"])
@pytest.mark.parametrize("version", ["2.9", "2.11"])
def test_golden_routed_job_script_runs_its_versions_image(file_regression, kind: str, version: str) -> None:  # type: ignore[no-untyped-def]
    """One array per (version, chunk): the job script of a version binds and runs that version's image."""
    from s2kit.jobs import job_spec
    from s2kit.schedulers.local import render_local
    from s2kit.schedulers.lsf import LsfSite, render_lsf
    from s2kit.schedulers.slurm import render_slurm

    cfg = _golden_cfg(kind)
    offset, count = (0, 3) if version == "2.9" else (3, 4)
    log_dir = cfg.paths.run_dir / "jobs" / "all"
    spec = job_spec(cfg, cfg.paths.run_dir, "all", offset, count, log_dir, sc=cfg.sen2cor_for(version))
    other = "2.11" if version == "2.9" else "2.9"
    if kind == "slurm":
        text, ext = render_slurm(spec, 1001, "scontrol show config"), ".slurm"
    elif kind == "lsf":
        text, ext = render_lsf(spec, LsfSite()), ".lsf"
    else:
        text, ext = render_local(spec), ".sh"
    assert f"/data/img/sen2cor-{version}.sif" in text and f"/data/img/sen2cor-{other}.sif" not in text
    assert f"--offset {offset}" in text
    file_regression.check(text, basename=f"routed_{kind}_{version.replace('.', '_')}", extension=ext)


def _planned_routed(
    tmp_path: Path, route: list[dict[str, Any]], **scheduler: Any
) -> tuple[BatchConfig, RunDir, dict[str, str]]:
    scenes = mixed_store(tmp_path / "l1c")
    cfg = _cfg(tmp_path, {"route": route}, scheduler={"memory_per_task_gb": 0.5, **scheduler})
    make_plan(cfg, check_resources=False)
    return cfg, RunDir(cfg.paths.run_dir), scenes


def test_submit_sends_one_array_per_version_and_chunk(tmp_path: Path) -> None:
    from s2kit.batch import submit_batch
    from s2kit.schedulers import get_scheduler
    from tests.support.batch_runs import FakeSlurm

    for v in ("2.9", "2.11"):
        exe = tmp_path / f"sen2cor-{v}" / "bin" / "L2A_Process"
        exe.parent.mkdir(parents=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    cfg, rd, _ = _planned_routed(tmp_path, ROUTE, kind="slurm", walltime="02:00", max_array_size=2)
    fake = FakeSlurm()
    res = submit_batch(cfg, rd, scheduler=get_scheduler("slurm", runner=fake))
    # 3 scenes per version, arrays of at most 2: 2 + 1 for 2.9, then 2 + 1 for 2.11; never mixed
    assert [(c.offset, c.count, c.sen2cor) for c in res.chunks] == [
        (0, 2, "2.9"),
        (2, 1, "2.9"),
        (3, 2, "2.11"),
        (5, 1, "2.11"),
    ]
    assert len(fake.sbatch_calls()) == 4
    records = rd.read_jobs()
    assert [(r.first_index, r.count, r.extra.get("sen2cor")) for r in records] == [
        (c.offset, c.count, c.sen2cor) for c in res.chunks
    ]
    plan = {e.scene: e.sen2cor for e in rd.read_plan()}
    lines = rd.read_batch(res.batch)
    for r in records:  # every task of an array runs a scene of the array's version
        assert {plan[s] for s in lines[r.first_index : r.first_index + r.count]} == {r.extra["sen2cor"]}
    assert "  lines 3-4 Sen2Cor 2.11 job 502: " in res.summary()


def test_submit_refuses_when_one_routes_sen2cor_is_missing(tmp_path: Path) -> None:
    from s2kit.batch import Sen2CorMissing, submit_batch

    exe = tmp_path / "sen2cor-2.9" / "bin" / "L2A_Process"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    cfg, rd, _ = _planned_routed(tmp_path, ROUTE)
    with pytest.raises(Sen2CorMissing) as err:
        submit_batch(cfg, rd)
    assert (
        "Sen2Cor 2.11 not installed" in err.value.message
        and "(sen2cor.route[1].install_dir" in err.value.message
    )
    assert not rd.jobs_file.exists()


def _edit_plan_line(rd: RunDir, scene: str, **changes: Any) -> None:
    """Hand-edit one plan.jsonl line (what a user with an editor can do)."""
    lines = []
    for line in (rd.path / "plan.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        if d.get("scene") == scene:
            d.update(changes)
        lines.append(json.dumps(d))
    (rd.path / "plan.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_submit_refuses_a_plan_line_hand_edited_to_another_sen2cor_version(tmp_path: Path) -> None:
    """review2: a plan.jsonl line of an L1C 05.09 edited to "2.9" was submitted in the 2.9 array,
    and Sen2Cor 2.9 wrote an L2A 03.00 without the -1000 offset that validates clean (a wrong L2A
    that looks right); submit now checks every todo line against the route, nothing is submitted."""
    from s2kit.batch import submit_batch
    from s2kit.schedulers import get_scheduler
    from tests.support.batch_runs import FakeSlurm

    for v in ("2.9", "2.11"):
        stand_in_install(tmp_path, v)
    cfg, rd, scenes = _planned_routed(tmp_path, ROUTE, kind="slurm", walltime="02:00")
    _edit_plan_line(rd, scenes["05.09"], sen2cor="2.9")
    fake = FakeSlurm()
    with pytest.raises(ConfigError) as err:
        submit_batch(cfg, rd, scheduler=get_scheduler("slurm", runner=fake))
    msg = str(err.value)
    assert "\n" not in msg and "plan.jsonl" in msg and "run `s2kit plan` again" in msg
    assert f"expected Sen2Cor 2.11 for {scenes['05.09']}" in msg and "found '2.9'" in msg
    assert fake.sbatch_calls() == [] and not rd.jobs_file.exists()
    # a 02.09 line sent to the catch-all 2.11 is refused too (the route names 2.9)
    _edit_plan_line(rd, scenes["05.09"], sen2cor="2.11")
    _edit_plan_line(rd, scenes["02.09"], sen2cor="2.11")
    with pytest.raises(ConfigError, match=f"expected Sen2Cor 2.9 for {scenes['02.09']}"):
        submit_batch(cfg, rd, scheduler=get_scheduler("slurm", runner=fake))
    # the plan's own choice submits
    _edit_plan_line(rd, scenes["02.09"], sen2cor="2.9")
    assert [
        c.sen2cor for c in submit_batch(cfg, rd, scheduler=get_scheduler("slurm", runner=fake)).chunks
    ] == [
        "2.9",
        "2.11",
    ]


def test_submit_refuses_a_baseline_gate_skip_hand_edited_to_todo(tmp_path: Path) -> None:
    """review2: with one Sen2Cor 2.9 (no route), an L1C >= 04.00 is skipped baseline-gate; its line
    edited to todo (sen2cor unset, as plans before routing) would have run 2.9 on it."""
    from s2kit.batch import submit_batch
    from s2kit.schedulers import get_scheduler
    from tests.support.batch_runs import FakeSlurm

    install = stand_in_install(tmp_path, "2.9")
    scenes = mixed_store(tmp_path / "l1c")
    cfg = _cfg(
        tmp_path,
        {"version": "2.9", "install_dir": str(install)},
        scheduler={"memory_per_task_gb": 0.5, "kind": "slurm", "walltime": "02:00"},
    )
    make_plan(cfg, check_resources=False)
    rd = RunDir(cfg.paths.run_dir)
    entry = next(e for e in rd.read_plan() if e.scene == scenes["05.09"])
    assert entry.decision == "skipped" and (entry.reason or "").startswith("baseline-gate")
    _edit_plan_line(rd, scenes["05.09"], decision="todo", reason=None)
    (rd.path / "batches" / "all.txt").write_text(scenes["05.09"] + "\n", encoding="utf-8")
    fake = FakeSlurm()
    with pytest.raises(ConfigError, match="skipped baseline-gate .*run `s2kit plan` again"):
        submit_batch(cfg, rd, batch="all", scheduler=get_scheduler("slurm", runner=fake))
    assert fake.sbatch_calls() == []


def test_resubmit_batch_keeps_versions_in_runs(tmp_path: Path) -> None:
    from s2kit.batch import _by_version

    cfg = _cfg(tmp_path)
    versions = {"a": "2.11", "b": "2.9", "c": "2.11", "d": "2.9"}
    assert _by_version(cfg, ["a", "b", "c", "d"], versions) == ["b", "d", "a", "c"]


# ============================================================================ end to end
def stand_in_install(root: Path, version: str) -> Path:
    """A Sen2Cor install dir whose bin/L2A_Process is the TEST DOUBLE told it plays *version*
    (S2KIT_DOUBLE_VERSION): a stand-in, NOT Sen2Cor."""
    exe = root / f"sen2cor-{version}" / "bin" / "L2A_Process"
    exe.parent.mkdir(parents=True)
    exe.write_text(
        f"#!/bin/sh\n# stand-in for Sen2Cor {version}: the s2kit TEST DOUBLE, not Sen2Cor\n"
        f'S2KIT_DOUBLE_VERSION={version} exec {DOUBLE / "bin" / "L2A_Process"} "$@"\n',
        encoding="utf-8",
    )
    exe.chmod(0o755)
    return exe.parent.parent


@pytest.fixture(scope="module")
def routed_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A mixed store (PB 02.09 ... 05.11) planned with the 2.9/2.11 route and run on the local
    scheduler with two stand-in installs (the TEST DOUBLE, told which version it plays)."""
    from s2kit.batch import submit_batch

    tmp = tmp_path_factory.mktemp("routed")
    for v in ("2.9", "2.11"):
        stand_in_install(tmp, v)
    cfg, rd, scenes = _planned_routed(tmp, ROUTE, kind="local", max_concurrent=2)
    res = submit_batch(cfg, rd)
    return {"cfg": cfg, "rd": rd, "scenes": scenes, "submit": res, "root": tmp}


def test_routed_batch_end_to_end_on_the_local_scheduler(routed_run: dict[str, Any]) -> None:
    from s2kit.provenance import Provenance

    rd, scenes, res = routed_run["rd"], routed_run["scenes"], routed_run["submit"]
    assert [(c.offset, c.count, c.sen2cor) for c in res.chunks] == [(0, 3, "2.9"), (3, 3, "2.11")]
    states = rd.read_states()
    assert {s: states[s].state for s in scenes.values()} == {s: "done" for s in scenes.values()}
    made_by = {}
    for pb, scene in scenes.items():
        prov = Provenance.read(rd.provenance_file(scene))
        assert prov is not None
        made_by[pb] = (prov.sen2cor["version"], prov.sen2cor["version_in_metadata"])
        assert prov.sen2cor["executable"].startswith(
            str(routed_run["root"] / f"sen2cor-{prov.sen2cor['version']}")
        )
    assert made_by == {
        "02.09": ("2.9", "02.09.00"),
        "02.14": ("2.9", "02.09.00"),
        "03.01": ("2.9", "02.09.00"),
        "04.00": ("2.11", "02.11.00"),
        "05.09": ("2.11", "02.11.00"),
        "05.11": ("2.11", "02.11.00"),
    }
    # the output baseline: 2.9 writes the batch's 03.00; 2.11 keeps each L1C's own (its default
    # "l1c"), so an L1C >= 04.00 gives an L2A >= 04.00 with the -1000 offset, never offset-mismatch
    out_pb = {
        pb: Provenance.read(rd.provenance_file(s)).doc["l2a"]["processing_baseline"]
        for pb, s in scenes.items()
    }  # type: ignore[union-attr]
    assert out_pb == {
        "02.09": "03.00",
        "02.14": "03.00",
        "03.01": "03.00",
        "04.00": "04.00",
        "05.09": "05.09",
        "05.11": "05.11",
    }
    # the GIPPs each worker rendered are its version's (2.11 ships 2.10's templates)
    assert Provenance.read(rd.provenance_file(scenes["05.09"])).sen2cor["route"] == (  # type: ignore[union-attr]
        "sen2cor.route[1]: baseline 05.09, every other baseline"
    )


def test_status_counts_per_version_and_names_the_version_of_each_array(routed_run: dict[str, Any]) -> None:
    from s2kit.status import format_status, run_status

    report = run_status(routed_run["cfg"], routed_run["rd"])
    assert report.versions == {"2.9": {"done": 3}, "2.11": {"done": 3}}
    assert report.to_dict()["sen2cor"] == report.versions
    text = format_status(report)
    assert "sen2cor:\n  2.9    3 done\n  2.11   3 done" in text
    assert re.search(r"batch all lines 0-2 Sen2Cor 2\.9, ended: 3 done", text)
    assert re.search(r"batch all lines 3-5 Sen2Cor 2\.11, ended: 3 done", text)


def _l2a(run: dict[str, Any]) -> list[Path]:
    return sorted(Path(run["cfg"].paths.l2a_dir).glob("*.SAFE"))


def test_validate_consistency_with_the_config_groups_by_version(routed_run: dict[str, Any]) -> None:
    from s2kit.validate import format_report, validate_products

    products = _l2a(routed_run)
    assert len(products) == 6
    # without the config: two versions in one set is mixing, and so are the output baselines
    # (the 2.11 route keeps each L1C's baseline: sen2cor.baseline defaults to "l1c" from 2.10)
    plain = validate_products(products, consistency=True)
    assert [f.code for f in plain.set_findings] == ["mixed-baseline", "mixed-sen2cor-version"]
    # with the config's routes: the mixing it asked for is an info line listing the groups
    routed = validate_products(products, consistency=True, routes=routed_run["cfg"].sen2cor.route_groups())
    assert routed.valid and routed.set_findings == []
    assert routed.notes == [
        "sen2cor-version-groups: Sen2Cor 2.9: 3 (below 04.00), 2.11: 3 (every other baseline); "
        "as the config routes them",
        "processing baselines follow each L1C's own (sen2cor.baseline = 'l1c')",
    ]
    assert "SET  info    sen2cor-version-groups: Sen2Cor 2.9: 3" in format_report(routed)


def test_validate_flags_a_version_the_config_did_not_route(
    routed_run: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    from s2kit.validate import validate_products

    products = _l2a(routed_run)
    odd = shutil.copytree(products[0], tmp_path / products[0].name)
    mtd = odd / "MTD_MSIL2A.xml"
    mtd.write_text(
        re.sub(r'type="GIP_L2ACSC" version="[^"]*"', 'type="GIP_L2ACSC" version="21001"', mtd.read_text()),
        encoding="utf-8",
    )
    report = validate_products(
        [*products[1:], odd], consistency=True, routes=routed_run["cfg"].sen2cor.route_groups()
    )
    (finding,) = report.set_findings
    assert finding.code == "mixed-sen2cor-version"
    assert finding.message.startswith(
        "expected the Sen2Cor versions the config routes to (2.9, 2.11), found 3"
    )
    assert finding.message.endswith(": 2.10 not routed")


def test_validate_cli_takes_the_routes_from_the_run_dir(routed_run: dict[str, Any]) -> None:
    from tests.support.batch_runs import s2kit_cli

    products = [str(p) for p in _l2a(routed_run)]
    rd = routed_run["rd"]
    ok = s2kit_cli("validate", "--consistency", "--run-dir", str(rd.path), *products)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "sen2cor-version-groups: Sen2Cor 2.9: 3 (below 04.00), 2.11: 3" in ok.stdout
    mixed = s2kit_cli("validate", "--consistency", *products)
    assert mixed.returncode == 1 and "mixed-sen2cor-version" in mixed.stdout


def test_report_counts_per_version_and_compares_within_each(
    routed_run: dict[str, Any], tmp_path: Path
) -> None:
    from s2kit.report import write_report

    data = write_report(routed_run["rd"].path, tmp_path / "r.html", quicklooks=False).data
    assert data["sen2cor_versions"] == {"2.9": {"done": 3}, "2.11": {"done": 3}}
    by = {r["scene"]: r["sen2cor"] for r in data["scenes"]}
    assert {by[s] for s in routed_run["scenes"].values()} == {"2.9", "2.11"}
    # two versions by design: no scene deviates from "the majority"
    assert data["provenance"]["deviations"] == []
    assert data["provenance"]["notes"][0] == (
        "several Sen2Cor versions (2.11: 3, 2.9: 3): compared within each version (sen2cor.route)"
    )
    assert "Per Sen2Cor version (sen2cor.route)" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_report_flags_a_scene_made_by_another_version_than_routed(routed_run: dict[str, Any]) -> None:
    from s2kit.provenance import Provenance
    from s2kit.report import _checks_per_version

    rd, scenes = routed_run["rd"], routed_run["scenes"]
    prov = {s: Provenance.read(rd.provenance_file(s)) for s in scenes.values()}
    planned = {e.scene: e.sen2cor for e in rd.read_plan()}
    planned[scenes["02.09"]] = "2.11"  # as if the plan had routed it to 2.11
    checks = _checks_per_version({s: p for s, p in prov.items() if p is not None}, planned)
    assert checks["deviations"] == [
        {
            "scene": scenes["02.09"],
            "what": "sen2cor version (plan's route)",
            "value": "2.9",
            "majority": "2.11",
        }
    ]


def test_report_did_not_flag_sen2cor_2_9_on_an_l1c_past_its_gate_when_the_plan_agreed(
    routed_run: dict[str, Any],
) -> None:
    """review2: a plan.jsonl line edited to 2.9 for an L1C 05.09 and run by `s2kit worker` gave an
    L2A without the -1000 offset that validates clean; the report compared the version only with
    the (edited) plan, so nothing was flagged. Now any scene made by a version past its baseline
    gate is a deviation, whatever the plan says."""
    from s2kit.provenance import Provenance
    from s2kit.report import _checks_per_version

    rd, scenes = routed_run["rd"], routed_run["scenes"]
    prov = {s: Provenance.read(rd.provenance_file(s)) for s in scenes.values()}
    got = {s: p for s, p in prov.items() if p is not None}
    bad = scenes["05.09"]
    doc = dict(got[bad])
    doc["sen2cor"] = {**doc["sen2cor"], "version": "2.9"}  # what a 2.9 run of it records
    got[bad] = Provenance.of(doc)
    planned = {e.scene: e.sen2cor for e in rd.read_plan()}
    planned[bad] = "2.9"  # the edited plan agrees
    for plan in (planned, {bad: "2.9"}):  # routed; one version planned
        checks = _checks_per_version(got, plan)
        flagged = [d for d in checks["deviations"] if "ignores the offset" in d["what"]]
        assert [(d["scene"], d["value"], d["majority"]) for d in flagged] == [(bad, "2.9", "2.10 or later")]
        assert "on L1C baseline 05.09" in flagged[0]["what"]


def test_stac_item_names_the_version_and_the_route(routed_run: dict[str, Any]) -> None:
    from s2kit.provenance import Provenance
    from s2kit.stac.item import make_item

    for product in _l2a(routed_run):
        prov = Provenance.read_sidecar(product)
        assert prov is not None
        p = make_item(product, prov.doc).properties
        assert p["processing:software"]["Sen2Cor"] == prov["sen2cor"]["version"]
        assert p["s2kit:sen2cor_route"] == prov["sen2cor"]["route"]


def test_doctor_checks_every_routes_install(tmp_path: Path) -> None:
    from s2kit.doctor import apptainer_checks

    stand_in_install(tmp_path, "2.9")
    cfg = _cfg(tmp_path)
    checks = {c.name: c for c in apptainer_checks(cfg)}
    assert checks["sen2cor install (Sen2Cor 2.9)"].status == "PASS"
    missing = checks["sen2cor install (Sen2Cor 2.11)"]
    assert (
        missing.status == "FAIL"
        and missing.fix == "set sen2cor.route[1].install_dir to the folder of bin/L2A_Process"
    )


# ============================================================================ real Slurm
def _slurm_marks():  # type: ignore[no-untyped-def]
    from tests.test_slurm import real

    return real


@pytest.mark.slurm
@_slurm_marks()
def test_real_slurm_routed_batch_runs_each_version_in_its_own_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mixed store on a real Slurm: 2.9 and 2.11 stand-in installs, arrays of at most 2 tasks,
    each array on one version; every scene published by the version its baseline routes to."""
    from s2kit.batch import submit_batch
    from s2kit.provenance import Provenance
    from s2kit.status import format_status
    from tests.test_slurm import slurm_env, wait_idle

    slurm_env(monkeypatch)
    for v in ("2.9", "2.11"):
        stand_in_install(tmp_path, v)
    cfg, rd, scenes = _planned_routed(
        tmp_path,
        [{**ROUTE[0], "timeout_minutes": 5}, {**ROUTE[1], "timeout_minutes": 5}],
        kind="slurm",
        walltime="00:15",
        max_concurrent=2,
        max_array_size=2,
    )
    res = submit_batch(cfg, rd)
    assert [(c.offset, c.count, c.sen2cor) for c in res.chunks] == [
        (0, 2, "2.9"),
        (2, 1, "2.9"),
        (3, 2, "2.11"),
        (5, 1, "2.11"),
    ]
    rep = wait_idle(cfg, rd)
    assert rep.counts["done"] == 6, format_status(rep)
    assert rep.versions == {"2.9": {"done": 3}, "2.11": {"done": 3}}
    made = {}
    for pb, scene in scenes.items():
        prov = Provenance.read(rd.provenance_file(scene))
        assert prov is not None and prov.doc.get("job_id")
        made[pb] = (prov.sen2cor["version"], prov.sen2cor["version_in_metadata"])
    assert made == {
        "02.09": ("2.9", "02.09.00"),
        "02.14": ("2.9", "02.09.00"),
        "03.01": ("2.9", "02.09.00"),
        "04.00": ("2.11", "02.11.00"),
        "05.09": ("2.11", "02.11.00"),
        "05.11": ("2.11", "02.11.00"),
    }
    print("\n" + format_status(rep))


def test_snapshot_of_an_older_s2kit_without_route_keys_still_matches(tmp_path: Path) -> None:
    """A run dir planned before routing has no sen2cor.route / sen2cor.series in config.json:
    submit must not refuse the same config as 'differing' for keys at their empty default."""
    cfg = _cfg(tmp_path, {"install_dir": "sen2cor"})
    rd = RunDir(cfg.paths.run_dir)
    rd.path.mkdir(parents=True)
    old = cfg.to_json_dict()
    del old["sen2cor"]["route"], old["sen2cor"]["series"]
    rd.config_file.write_text(json.dumps(old), encoding="utf-8")
    rd.check_snapshot(cfg)  # no ConfigError
    routed = _cfg(tmp_path)  # a config that does route is a difference
    with pytest.raises(ConfigError, match="sen2cor.route"):
        rd.check_snapshot(routed)


def test_plan_cli_prints_the_series_choice(tmp_path: Path) -> None:
    from tests.support.batch_runs import s2kit_cli

    mixed_store(tmp_path / "l1c")
    _fake_dem(tmp_path / "dem", *REAL_TILES.values())
    toml = tmp_path / "s2kit.toml"
    toml.write_text(
        "[paths]\nl1c_dirs = ['l1c']\nl2a_dir = 'l2a'\ndem_dir = 'dem'\nscratch_dir = 'scratch'\nrun_dir = 'run'\n"
        "[sen2cor]\nruntime = 'native'\n"
        "route = [ { below_baseline = '04.00', version = '2.9', install_dir = 'sen2cor-2.9' },\n"
        "          { version = '2.11', install_dir = 'sen2cor-2.11' } ]\n",
        encoding="utf-8",
    )
    out = s2kit_cli("plan", "--config", str(toml), "--no-preflight")
    assert out.returncode == 0, out.stderr
    assert "plan: 6 L1C product(s): 6 todo\n" in out.stdout
    assert (
        "plan: mixed Sen2Cor versions (sen2cor.route), todo scene(s): 2.9 for 3 (below 04.00); 2.11 for 3"
        in (out.stdout)
    )
    js = s2kit_cli("plan", "--config", str(toml), "--no-preflight", "--json")
    assert json.loads(js.stdout)["series"][0].startswith("mixed Sen2Cor versions (sen2cor.route)")


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ({"install_dir": "a\n#SBATCH --wrap=x"}, "sen2cor.route[0].install_dir", "control character"),
        ({"install_dir": ""}, "sen2cor.route[0].install_dir", "expected a path, found an empty string"),
        (
            {"install_dir": "a", "timeout_minutes": float("nan")},
            "sen2cor.route[0].timeout_minutes",
            "expected",
        ),
        ({"install_dir": "a", "timeout_minutes": float("inf")}, "sen2cor.route[0].timeout_minutes", "finite"),
        ({"install_dir": "a", "below_baseline": "0٤.00"}, "sen2cor.route[0].below_baseline", "like '03.00'"),
    ],
)
def test_hostile_route_entry_values_refused_at_load(
    tmp_path: Path, entry: dict[str, Any], key: str, words: str
) -> None:
    first = {"below_baseline": "04.00", "version": "2.9", **entry}
    msg = _refusal(tmp_path, {"route": [first, ROUTE[1]]})
    assert msg.startswith(f"key '{key}': ") and words in msg, msg


def test_route_that_is_not_a_list_of_tables_refused(tmp_path: Path) -> None:
    assert _refusal(tmp_path, {"route": "2.9"}).startswith("key 'sen2cor.route': ")
    assert _refusal(tmp_path, {"route": ["2.9", ROUTE[1]]}).startswith("key 'sen2cor.route[0]': ")


def test_output_baseline_of_a_version_for_every_baseline_was_a_fixed_03_00(tmp_path: Path) -> None:
    """2.10+ write the -1000 offset exactly for L1C >= 04.00: a fixed output baseline 03.00 made
    every such L2A fail offset-mismatch. Unset, their output baseline is each L1C's own ("l1c");
    2.9 keeps 03.00; "l1c" may be set explicitly; anything else is refused in one line."""
    from s2kit.errors import ConfigError
    from s2kit.versions import output_baseline

    assert _cfg(tmp_path, {"install_dir": str(tmp_path), "version": "2.9"}).sen2cor.baseline == "03.00"
    for version in ("2.10", "2.11", "2.12"):
        assert _cfg(tmp_path, {"install_dir": str(tmp_path), "version": version}).sen2cor.baseline == "l1c"
    assert (
        _cfg(tmp_path, {"install_dir": str(tmp_path), "version": "2.9", "baseline": "l1c"}).sen2cor.baseline
        == "l1c"
    )
    assert (
        _cfg(
            tmp_path, {"install_dir": str(tmp_path), "version": "2.12", "baseline": "05.00"}
        ).sen2cor.baseline
        == "05.00"
    )
    with pytest.raises(ConfigError, match="or 'l1c'"):
        _cfg(tmp_path, {"install_dir": str(tmp_path), "version": "2.12", "baseline": "L1C2"})
    assert output_baseline("l1c", "05.09") == "05.09"
    assert output_baseline("03.00", "05.09") == "03.00"


ROUTE_212 = [
    {"below_baseline": "04.00", "version": "2.9", "install_dir": "sen2cor-2.9"},
    {"version": "2.12", "install_dir": "sen2cor-2.12", "dem": "cop-dem-glo90"},
]


@pytest.fixture(scope="module")
def routed_212_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The issue's case: one mixed store (PB 02.09 ... 05.11), one batch, 2.9 with its SRTM set
    below 04.00 and 2.12 with the Copernicus DEM (GLO-90 cells staged by `dem prepare`) for the
    rest, on the local scheduler with two stand-in installs (the TEST DOUBLE, not Sen2Cor)."""
    from s2kit.batch import submit_batch
    from s2kit.dem import copdem_footprint, prepare_copdem
    from tests.support.copdem_fixtures import mirror_folder

    tmp = tmp_path_factory.mktemp("routed212")
    for v in ("2.9", "2.12"):
        stand_in_install(tmp, v)
    fp = copdem_footprint("34UDD")  # every scene >= 04.00 of mixed_store is on 34UDD
    mirror = mirror_folder(tmp / "mirror", "cop-dem-glo90", fp.cells)
    prepare_copdem(["34UDD"], "cop-dem-glo90", tmp / "dem", source=str(mirror))
    cfg, rd, scenes = _planned_routed(tmp, ROUTE_212, kind="local", max_concurrent=2)
    res = submit_batch(cfg, rd)
    return {"cfg": cfg, "rd": rd, "scenes": scenes, "submit": res, "root": tmp}


def test_mixed_store_runs_2_9_with_srtm_and_2_12_with_the_copernicus_dem_in_one_batch(
    routed_212_run: dict[str, Any],
) -> None:
    from s2kit.provenance import Provenance
    from s2kit.status import run_status

    rd, scenes, res = routed_212_run["rd"], routed_212_run["scenes"], routed_212_run["submit"]
    assert [(c.count, c.sen2cor) for c in res.chunks] == [(3, "2.9"), (3, "2.12")]
    states = rd.read_states()
    assert {pb: states[s].state for pb, s in scenes.items()} == {pb: "done" for pb in scenes}, {
        pb: states[s].reason for pb, s in scenes.items()
    }
    made = {}
    for pb, scene in scenes.items():
        prov = Provenance.read(rd.provenance_file(scene))
        assert prov is not None
        settings = json.dumps(prov.doc["gipp"]["settings"])
        made[pb] = (
            prov.sen2cor["version"],
            prov.sen2cor["version_in_metadata"],
            prov.doc["dem"]["mode"],
            prov.doc["l2a"]["processing_baseline"],
            "CDSE-GLO-90" in settings,
        )
    assert made == {
        "02.09": ("2.9", "02.09.00", "srtm", "03.00", False),
        "02.14": ("2.9", "02.09.00", "srtm", "03.00", False),
        "03.01": ("2.9", "02.09.00", "srtm", "03.00", False),
        "04.00": ("2.12", "02.12.03", "cop-dem-glo90", "04.00", True),
        "05.09": ("2.12", "02.12.03", "cop-dem-glo90", "05.09", True),
        "05.11": ("2.12", "02.12.03", "cop-dem-glo90", "05.11", True),
    }
    assert run_status(routed_212_run["cfg"], rd).versions == {"2.9": {"done": 3}, "2.12": {"done": 3}}


def test_worker_ran_the_sen2cor_a_hand_edited_plan_line_named(tmp_path: Path) -> None:
    """review2: with plan.jsonl edited after submit (the 05.09 line to "2.9", or its baseline to
    "03.00"), `s2kit worker` ran Sen2Cor 2.9 on an L1C 05.09 and published an L2A 03.00 without the
    -1000 offset that validates clean. The worker now checks the line against the route, the
    baseline gate and the product name's own baseline: failed `route`, nothing run or published."""
    import subprocess
    import sys

    for v in ("2.9", "2.11"):
        stand_in_install(tmp_path, v)
    cfg, rd, scenes = _planned_routed(tmp_path, ROUTE, kind="local")
    scene = scenes["05.09"]
    index = rd.read_batch("all").index(scene)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LSB_", "S2KIT_", "SEN2COR_"))}
    for edit, expected in (
        ({"sen2cor": "2.9"}, "expected Sen2Cor 2.11 for baseline 05.09 (sen2cor.route), found '2.9'"),
        (
            {"sen2cor": "2.9", "processing_baseline": "03.00"},
            f"expected the baseline of {scene} (05.09) in plan.jsonl, found 03.00",
        ),
    ):
        _edit_plan_line(rd, scene, **edit)
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "s2kit",
                "worker",
                "--run-dir",
                str(rd.path),
                "--batch",
                "all",
                "--index",
                str(index),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert res.returncode == 1, res.stderr
        st = rd.read_state(scene)
        assert st is not None and st.state == "failed" and st.reason is not None
        assert st.reason.startswith("route: " + expected), st.reason
        assert not list(cfg.paths.l2a_dir.glob("*MSIL2A*")) if cfg.paths.l2a_dir.exists() else True
        rd.state_file(scene).unlink()


def test_json_nested_past_the_stack_in_the_run_dir_was_an_internal_error(tmp_path: Path) -> None:
    """review2: a state file, plan line or config.json of "[[[[..." gave "internal error:
    RecursionError", exit 70, in status / status --resources / advise / worker. Now a bad file
    like any other: a warning or one error line naming it, never exit 70."""
    from typer.testing import CliRunner

    from s2kit.cli import app

    for v in ("2.9", "2.11"):
        stand_in_install(tmp_path, v)
    cfg, rd, scenes = _planned_routed(tmp_path, ROUTE, kind="local")
    deep = "[" * 200_000
    rd.state_file(scenes["05.09"]).parent.mkdir(parents=True, exist_ok=True)
    rd.state_file(scenes["05.09"]).write_text(deep, encoding="utf-8")
    for args in (["status"], ["status", "--resources"], ["advise"]):
        res = CliRunner().invoke(app, [*args, "--run-dir", str(rd.path)])
        assert res.exit_code not in (70,) and "RecursionError" not in res.output, (args, res.output)
    (rd.path / "config.json").write_text(deep, encoding="utf-8")
    res = CliRunner().invoke(app, ["status", "--run-dir", str(rd.path)])
    assert res.exit_code not in (0, 70) and "RecursionError" not in res.output, res.output
    assert "config.json" in res.output


def test_fixed_output_baseline_across_04_00_ran_sen2cor_only_to_fail_offset_mismatch(tmp_path: Path) -> None:
    """review2: Sen2Cor 2.10+ with a fixed sen2cor.baseline on the other side of 04.00 than the
    L1C (03.00 for an L1C 05.09, 05.00 for an L1C 02.09) ran a whole Sen2Cor attempt per scene,
    then failed offset-mismatch. The plan now skips those `baseline-side` and says how to fix it;
    the same side, and "l1c", stay todo."""
    stand_in_install(tmp_path, "2.11")
    scenes = mixed_store(tmp_path / "l1c")
    install = str(tmp_path / "sen2cor-2.11")
    for baseline, skipped in (
        ("03.00", {"04.00", "05.09", "05.11"}),
        ("05.00", {"02.09", "02.14", "03.01"}),
        ("l1c", set()),
    ):
        cfg = _cfg(tmp_path, {"version": "2.11", "install_dir": install, "baseline": baseline})
        make_plan(cfg, check_resources=False)
        entries = {e.scene: e for e in RunDir(cfg.paths.run_dir).read_plan()}
        got = {pb for pb, s in scenes.items() if (entries[s].reason or "").startswith("baseline-side:")}
        assert got == skipped, baseline
        for pb in skipped:
            assert entries[scenes[pb]].decision == "skipped"
            assert 'set sen2cor.baseline = "l1c"' in (entries[scenes[pb]].reason or "")
        assert all(entries[scenes[pb]].decision == "todo" for pb in set(scenes) - skipped)
