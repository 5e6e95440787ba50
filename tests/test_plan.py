"""s2kit plan: discovery, decisions (duplicates, baseline gate, ...), preflight."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from collections import namedtuple
from pathlib import Path

import pytest

from s2kit.config import BatchConfig, config_from_dict
from s2kit.plan import PreflightError, make_plan
from s2kit.runs import PROVENANCE_SUFFIX, RunDir
from s2kit.tiles import tile_geometry
from tests.support.configs import config_data
from tests.support.safe_trees import build_l1c_tree, zip_tree

# the tiles of the real L1C fixtures (03.01: 46RER, 02.09: 01LAC, 05.09: 34UDD)
DEM_TILES = ("46RER", "01LAC", "34UDD")


def _fake_dem(dem_dir: Path, *tiles: str) -> Path:
    """``dem_dir/<tile>/srtm_XX_YY.zip`` (placeholder bytes) for every SRTM tile each tile needs."""
    for tile in tiles:
        (dem_dir / tile).mkdir(parents=True, exist_ok=True)
        for name in tile_geometry(tile, 0.0).srtm_tiles:
            (dem_dir / tile / f"{name}.zip").write_bytes(b"PK placeholder, not a DEM")
    return dem_dir


def _cfg(tmp: Path, **sections: dict[str, object]) -> BatchConfig:
    _fake_dem(tmp / "dem", *DEM_TILES)
    data = config_data(tmp, install_dir=tmp / "sen2cor", **sections)
    (tmp / "l1c").mkdir(exist_ok=True)
    return config_from_dict(data, tmp)


def _by_scene(result) -> dict[str, tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    return {e.scene: (e.decision, (e.reason or "").split(":", 1)[0] or None) for e in result.entries}


def test_real_baselines_and_gate(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    ok = build_l1c_tree(tmp_path / "l1c", "03.01")
    old = build_l1c_tree(tmp_path / "l1c", "02.09")
    gated = build_l1c_tree(tmp_path / "l1c", "05.09")  # real PB 05.09 L1C with RADIO_ADD_OFFSET
    res = make_plan(cfg, check_resources=False)
    d = _by_scene(res)
    assert d[ok.name[:-5]] == ("todo", None)
    assert d[old.name[:-5]] == ("todo", None)
    assert d[gated.name[:-5]] == ("skipped", "baseline-gate")
    gate_entry = next(e for e in res.entries if e.decision == "skipped")
    assert "05.09 >= 04.00" in (gate_entry.reason or "")
    # the plan file round-trips and the batch holds exactly the todo scenes, in plan order
    rd = RunDir(cfg.paths.run_dir)
    assert rd.read_plan() == res.entries
    assert rd.read_batch("all") == [e.scene for e in res.entries if e.decision == "todo"]
    assert json.loads(rd.config_file.read_text())["sen2cor"]["version"] == "2.9"


def test_gate_only_for_29(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, sen2cor={"version": "2.10"})
    gated = build_l1c_tree(tmp_path / "l1c", "05.09")
    assert _by_scene(make_plan(cfg, check_resources=False))[gated.name[:-5]] == ("todo", None)


def test_duplicates_keep_highest_baseline_then_newest(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    l1c = tmp_path / "l1c"
    first = build_l1c_tree(l1c, "03.01", generation="20210908T070248")
    newer = build_l1c_tree(tmp_path / "b", "03.01", generation="20210909T010101")
    shutil.move(str(newer), l1c / newer.name)
    # the same datatake reprocessed with an older baseline (name DERIVED from the real one)
    older_pb = l1c / first.name.replace("_N0301_", "_N0300_").replace("20210908T070248", "20211201T000000")
    shutil.copytree(first, older_pb)
    d = _by_scene(make_plan(cfg, check_resources=False))
    assert d[newer.name[:-5]] == ("todo", None)
    assert d[first.name[:-5]] == ("skipped", "duplicate")
    assert d[older_pb.name[:-5]] == ("skipped", "duplicate")


def test_bad_inputs_are_skipped_with_reasons(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    l1c = tmp_path / "l1c"
    good = build_l1c_tree(l1c, "03.01")
    (l1c / "S2A_OPER_PRD_MSIL1C_PDMC_20161213T013539_R065_V20161212T084402_20161212T084403.SAFE").mkdir()
    nomtd = l1c / "S2A_MSIL1C_20210909T042701_N0301_R133_T46RER_20210909T070248.SAFE"
    shutil.copytree(good, nomtd)
    (nomtd / "MTD_MSIL1C.xml").unlink()
    (l1c / "S2A_MSIL1C_20210910T042701_N0301_R133_T46RER_20210910T070248.SAFE.zip").write_bytes(
        b"PK\x03\x04trunc"
    )
    (l1c / "S2B_MSIL2A_20210910T042701_N0301_R133_T46RER_20210910T070248.SAFE").mkdir()
    (l1c / "notes.txt").write_text("ignored: not a product")
    d = _by_scene(make_plan(cfg, check_resources=False))
    assert sorted(d.values(), key=str) == sorted(
        [
            ("todo", None),
            ("skipped", "old-format"),
            ("skipped", "corrupt"),
            ("skipped", "corrupt"),
            ("skipped", "not-l1c"),
        ],
        key=str,
    )
    assert len(d) == 5


def test_zip_input_is_planned(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    tree = build_l1c_tree(tmp_path / "src", "03.01")
    z = zip_tree(tree, tmp_path / "l1c" / (tree.name + ".zip"))
    res = make_plan(cfg, check_resources=False)
    (entry,) = res.entries
    assert entry.decision == "todo" and entry.l1c_path == str(z) and entry.size_bytes == z.stat().st_size


def test_gcs_style_input_is_todo_and_untouched(tmp_path: Path) -> None:
    """The planner never writes into the L1C store; the worker repairs GCS-dropped dirs."""
    from s2kit.plan import repair_empty_dirs

    cfg = _cfg(tmp_path)
    tree = build_l1c_tree(tmp_path / "l1c", "03.01", gcs_style=True)
    before = sorted(p.relative_to(tree) for p in tree.rglob("*"))
    (entry,) = make_plan(cfg, check_resources=False).entries
    assert entry.decision == "todo"
    assert sorted(p.relative_to(tree) for p in tree.rglob("*")) == before
    created = repair_empty_dirs(tree)
    assert created[:3] == ["AUX_DATA", "HTML", "rep_info"]
    assert all((g / "AUX_DATA").is_dir() for g in (tree / "GRANULE").iterdir())
    assert all((d / "QI_DATA").is_dir() for d in (tree / "DATASTRIP").iterdir())
    assert repair_empty_dirs(tree) == []


def test_selection(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, select={"tiles": ["T46RER"], "start": "2021-09-09", "end": "2021-09-30"})
    before = build_l1c_tree(tmp_path / "l1c", "03.01")  # 2021-09-08
    inside = build_l1c_tree(tmp_path / "l1c", "03.01", day_offset=5)
    other_tile = build_l1c_tree(tmp_path / "l1c", "02.09")
    d = _by_scene(make_plan(cfg, check_resources=False))
    assert d[before.name[:-5]] == ("skipped", "not-selected")
    assert d[inside.name[:-5]] == ("todo", None)
    assert d[other_tile.name[:-5]] == ("skipped", "not-selected")


def _publish(cfg: BatchConfig, scene: str, validated: bool = True) -> Path:
    product = cfg.paths.l2a_dir / f"{scene.replace('MSIL1C', 'MSIL2A')}.SAFE"
    product.mkdir(parents=True)
    doc = {"l1c": {"scene": scene}, "validated": validated}
    Path(str(product) + PROVENANCE_SUFFIX).write_text(json.dumps(doc))
    return product


def test_done_only_when_published_and_validated(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    a = build_l1c_tree(tmp_path / "l1c", "03.01").name[:-5]
    b = build_l1c_tree(tmp_path / "l1c", "03.01", day_offset=1).name[:-5]
    c = build_l1c_tree(tmp_path / "l1c", "03.01", day_offset=2).name[:-5]
    product = _publish(cfg, a)
    _publish(cfg, b, validated=False)
    partial = _publish(cfg, c)
    shutil.rmtree(partial)  # provenance without a product: not done
    res = make_plan(cfg, check_resources=False)
    d = _by_scene(res)
    assert d == {a: ("done", "valid L2A published"), b: ("todo", None), c: ("todo", None)}
    assert next(e for e in res.entries if e.scene == a).l2a == str(product)
    assert RunDir(cfg.paths.run_dir).read_batch("all") == [b, c]


FakeUsage = namedtuple("FakeUsage", "total used free")


def test_preflight_refuses_short_disk_with_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path)
    build_l1c_tree(tmp_path / "l1c", "03.01")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: FakeUsage(10, 10, 100))
    with pytest.raises(
        PreflightError, match=r"expected at least 0\.0 GB free for 1 L2A product\(s\).*found 0\.0 GB free"
    ):
        make_plan(cfg)
    assert not RunDir(cfg.paths.run_dir).plan_file.exists()  # refused: nothing written


def test_preflight_refuses_short_memory(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, scheduler={"memory_per_task_gb": 4, "max_concurrent": 2})
    build_l1c_tree(tmp_path / "l1c", "03.01")
    with pytest.raises(
        PreflightError, match=r"at least 8192 MB \(4096 MB x 2 concurrent task\(s\)\), found 6000 MB"
    ):
        make_plan(cfg, node_memory_mb=6000)
    res = make_plan(cfg, node_memory_mb=9000)
    assert any("8192 MB needed" in n for n in res.preflight)


def test_cli_plan(s2kit_exe: str, hostile_dir: Path) -> None:
    cfg_file = hostile_dir / "s2kit.toml"
    _fake_dem(hostile_dir / "dem", "46RER")
    (hostile_dir / "l1c").mkdir()
    build_l1c_tree(hostile_dir / "l1c", "03.01")
    build_l1c_tree(hostile_dir / "l1c", "05.09")
    cfg_file.write_text(
        """[paths]
l1c_dirs = ["l1c"]
l2a_dir = "l2a"
dem_dir = "dem"
scratch_dir = "scratch"
run_dir = "run"
[sen2cor]
runtime = "native"
install_dir = "/opt/sen2cor"
""",
        encoding="utf-8",
    )
    res = subprocess.run(
        [s2kit_exe, "plan", "--config", str(cfg_file), "--json"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["counts"] == {"todo": 1, "skipped": 1}
    assert doc["skipped_reasons"] == {"baseline-gate": 1}
    assert (hostile_dir / "run" / "plan.jsonl").is_file()


def test_zip_of_real_tree_lists_mtd(tmp_path: Path) -> None:
    tree = build_l1c_tree(tmp_path, "03.01")
    with zipfile.ZipFile(zip_tree(tree)) as zf:
        assert f"{tree.name}/MTD_MSIL1C.xml" in zf.namelist()


# ----------------------------------------------------------------------------- node memory (preflight)
@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("21300", 21300),
        ("21300+", 21300),
        ("64G", 65536),
        ("7.8G", 7987),
        ("65536M", 65536),
        ("-", None),
        ("", None),
    ],
)
def test_parse_memory_mb(text: str, mb: int | None) -> None:
    from s2kit.schedulers.base import parse_memory_mb

    assert parse_memory_mb(text) == mb


def _fake_runner(stdout: str, seen: list[list[str]]):  # type: ignore[no-untyped-def]
    from s2kit.schedulers.base import CommandResult

    def run(argv, **_kw):  # type: ignore[no-untyped-def]
        seen.append(list(argv))
        return CommandResult(tuple(argv), 0, stdout, "")

    return run


def test_node_memory_from_sinfo_and_lshosts() -> None:
    from s2kit.schedulers import get_scheduler

    seen: list[list[str]] = []
    slurm = get_scheduler("slurm", runner=_fake_runner("21300\n64000+\n", seen))
    assert slurm.node_memory_mb("short") == 64000
    assert seen[-1] == ["sinfo", "-h", "-o", "%m", "-p", "short"]
    lshosts = (
        "HOST_NAME                       type       model  cpuf ncpus maxmem maxswp server RESOURCES\n"
        "node001.cluster                 X86_64    Intel_EM64T  60.0    32  251.7G  15.9G    Yes (mg)\n"
        "node002.cluster                 X86_64    Intel_EM64T  60.0    16   62.8G      -    Yes ()\n"
    )
    lsf = get_scheduler("lsf", runner=_fake_runner(lshosts, seen))
    assert lsf.node_memory_mb() == int(251.7 * 1024)


def test_preflight_asks_the_scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """scheduler slurm: a fake `sinfo` on PATH says the nodes have 2000 MB -> 4 GB tasks refused."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sinfo").write_text("#!/bin/sh\necho 2000\n")
    (bin_dir / "sinfo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    cfg = _cfg(tmp_path, scheduler={"kind": "slurm", "memory_per_task_gb": 4})
    build_l1c_tree(tmp_path / "l1c", "03.01")
    with pytest.raises(
        PreflightError, match=r"at least 4096 MB \(4096 MB x 1 concurrent task\(s\)\), found 2000 MB"
    ):
        make_plan(cfg)


@pytest.mark.slurm
def test_node_memory_from_real_slurm() -> None:
    conf = os.environ.get("SLURM_CONF")
    if not conf or not Path(conf).is_file():
        pytest.skip("needs a real Slurm (SLURM_CONF); CI starts one with tests/infra/slurm-single-node.sh")
    from s2kit.schedulers import get_scheduler

    mb = get_scheduler("slurm").node_memory_mb()
    assert mb is not None and mb > 500


# ----------------------------------------------------------------------------- hostile L1C entries (issue 12 item 10)
HOSTILE_NAME = "S2A_MSIL1C_20210910T042701_N0301_R133_T46RER_20210910T070248"


def _hostile_entry(l1c: Path, good: Path, case: str, stem: str = HOSTILE_NAME) -> Path:
    """Make one broken entry next to a good product; return its path."""
    if case == "self-symlink-safe":
        p = l1c / f"{stem}.SAFE"
        p.symlink_to(p.name)
    elif case == "self-symlink-zip":
        p = l1c / f"{stem}.SAFE.zip"
        p.symlink_to(p.name)
    elif case == "symlink-loop-inside-mtd":
        p = l1c / f"{stem}.SAFE"
        shutil.copytree(good, p)
        (p / "MTD_MSIL1C.xml").unlink()
        (p / "MTD_MSIL1C.xml").symlink_to("MTD_MSIL1C.xml")
    elif case == "symlink-loop-inside-granule":
        p = l1c / f"{stem}.SAFE"
        shutil.copytree(good, p)
        shutil.rmtree(p / "GRANULE")
        (p / "GRANULE").symlink_to("GRANULE")
    elif case == "dangling-symlink-safe":
        p = l1c / f"{stem}.SAFE"
        p.symlink_to(l1c / "gone" / "x.SAFE")
    elif case == "dangling-symlink-zip":
        p = l1c / f"{stem}.SAFE.zip"
        p.symlink_to(l1c / "gone.zip")
    elif case == "fifo-zip":
        p = l1c / f"{stem}.SAFE.zip"
        os.mkfifo(p)
    elif case == "dir-named-zip":
        p = l1c / f"{stem}.SAFE.zip"
        shutil.copytree(good, p)
    elif case == "file-named-safe":
        p = l1c / f"{stem}.SAFE"
        p.write_bytes((good / "MTD_MSIL1C.xml").read_bytes())
    else:
        raise AssertionError(case)
    return p


HOSTILE_CASES = {
    "self-symlink-safe": "Too many levels of symbolic links",
    "self-symlink-zip": "Too many levels of symbolic links",
    "symlink-loop-inside-mtd": "Too many levels of symbolic links",
    "symlink-loop-inside-granule": "Too many levels of symbolic links",
    "dangling-symlink-safe": "dangling symlink: No such file or directory",
    "dangling-symlink-zip": "dangling symlink: No such file or directory",
    "fifo-zip": "expected a zip file, found a FIFO",
    "dir-named-zip": "expected a zip file, found a folder",
    "file-named-safe": "expected a .SAFE folder, found a regular file",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CASES))
def test_hostile_l1c_entry_is_skipped_corrupt_and_plan_goes_on(tmp_path: Path, case: str) -> None:
    """A symlink loop, dangling link, FIFO, ... in an L1C dir: skipped 'corrupt' with the OS message."""
    cfg = _cfg(tmp_path)
    l1c = tmp_path / "l1c"
    good = build_l1c_tree(l1c, "03.01")
    _hostile_entry(l1c, good, case)
    res = make_plan(cfg, check_resources=False)
    by = {e.scene: e for e in res.entries}
    assert by[good.name[: -len(".SAFE")]].decision == "todo"
    bad = by[HOSTILE_NAME]
    assert bad.decision == "skipped"
    assert bad.reason is not None and bad.reason.startswith("corrupt: ")
    assert HOSTILE_CASES[case] in bad.reason and "\n" not in bad.reason
    assert {e.scene for e in RunDir(res.run_dir).read_plan()} == set(by) == {good.name[:-5], HOSTILE_NAME}


def test_unreadable_l1c_product_folder_is_skipped_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreadable .SAFE folder (EACCES; simulated, as root ignores modes) is 'corrupt', not a crash."""
    cfg = _cfg(tmp_path)
    l1c = tmp_path / "l1c"
    good = build_l1c_tree(l1c, "03.01")
    bad = l1c / f"{HOSTILE_NAME}.SAFE"
    shutil.copytree(good, bad)
    real_listdir = os.listdir

    def listdir(path):  # type: ignore[no-untyped-def]
        if Path(path) == bad:
            raise PermissionError(13, "Permission denied", str(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    by = {e.scene: e for e in make_plan(cfg, check_resources=False).entries}
    assert by[HOSTILE_NAME].decision == "skipped"
    assert by[HOSTILE_NAME].reason == "corrupt: unreadable product folder: Permission denied"
    assert by[good.name[: -len(".SAFE")]].decision == "todo"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads mode-000 files")
def test_unreadable_l1c_zip_is_skipped_corrupt(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    tree = build_l1c_tree(tmp_path / "src", "03.01")
    z = zip_tree(tree, tmp_path / "l1c" / (tree.name + ".zip"))
    z.chmod(0)
    try:
        (entry,) = make_plan(cfg, check_resources=False).entries
    finally:
        z.chmod(0o644)
    assert entry.decision == "skipped" and entry.reason == "corrupt: unreadable zip: Permission denied"


def test_product_folder_with_newline_before_safe_is_skipped_not_todo(tmp_path: Path) -> None:
    """A folder '<valid name>\\n.SAFE' was 'todo' forever ('$' matched before the newline)."""
    cfg = _cfg(tmp_path)
    good = build_l1c_tree(tmp_path / "l1c", "03.01")
    evil = good.with_name(good.name[: -len(".SAFE")] + "\n.SAFE")
    good.rename(evil)
    res = make_plan(cfg, check_resources=False)
    (entry,) = res.entries
    assert entry.decision == "skipped"
    assert entry.reason == "corrupt: not a Sentinel-2 L1C product name"
    assert RunDir(res.run_dir).read_batch("all") == []


@pytest.mark.parametrize("case", ["dangling-symlink-safe", "self-symlink-safe", "file-named-safe"])
def test_broken_entry_does_not_shadow_the_same_product_as_zip(tmp_path: Path, case: str) -> None:
    """'<scene>.SAFE' (broken) sorts before '<scene>.SAFE.zip': the usable zip is planned."""
    cfg = _cfg(tmp_path)
    tree = build_l1c_tree(tmp_path / "src", "03.01")
    z = zip_tree(tree, tmp_path / "l1c" / (tree.name + ".zip"))
    assert _hostile_entry(tmp_path / "l1c", tree, case, stem=tree.name[: -len(".SAFE")]).name == tree.name
    (entry,) = make_plan(cfg, check_resources=False).entries
    assert (entry.decision, entry.l1c_path) == ("todo", str(z))


def test_unreadable_l1c_dir_is_one_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An L1C dir that cannot be listed (EACCES; simulated, as root ignores modes): an S2kitError."""
    from s2kit.errors import InputError

    cfg = _cfg(tmp_path)
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path) == tmp_path / "l1c":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(InputError, match="expected a readable L1C directory, found: Permission denied"):
        make_plan(cfg, check_resources=False)


# ----------------------------------------------------------------------------- DEM (issue 12 item 4)
@pytest.mark.parametrize("dem_dir", [None, "no dem here"], ids=["not-configured", "missing-folder"])
def test_plan_refuses_without_dem_dir(tmp_path: Path, dem_dir: str | None) -> None:
    """sen2cor.dem = "srtm" (the default) and no paths.dem_dir: one line naming the key and the fix,
    nothing written."""
    from s2kit.errors import ConfigError

    cfg = _cfg(tmp_path)
    paths = cfg.paths.model_copy(update={"dem_dir": tmp_path / dem_dir if dem_dir else None})
    cfg = cfg.model_copy(update={"paths": paths})
    build_l1c_tree(tmp_path / "l1c", "03.01")
    with pytest.raises(ConfigError) as exc:
        make_plan(cfg, check_resources=False)
    msg = str(exc.value)
    assert "\n" not in msg and "paths.dem_dir" in msg and 'sen2cor.dem = "none"' in msg
    assert ("no key 'paths.dem_dir'" if dem_dir is None else "no dem here") in msg
    assert not cfg.paths.run_dir.exists()


def test_scene_whose_tile_has_no_dem_is_skipped_no_dem_and_never_run(tmp_path: Path) -> None:
    """dem_dir exists but holds only another tile's folder and loose zips at its root: the scene
    is skipped ``no-dem`` (not in the batch), and the summary says how many and how to fix it."""
    cfg = _cfg(tmp_path)
    dem = cfg.paths.dem_dir
    assert dem is not None
    shutil.rmtree(dem / "46RER")
    (dem / "srtm_55_07.zip").write_bytes(b"PK loose zip at the root: must not count")
    build_l1c_tree(tmp_path / "l1c", "03.01")
    build_l1c_tree(tmp_path / "l1c", "03.01", day_offset=1)
    other = build_l1c_tree(tmp_path / "l1c", "02.09")  # 01LAC has its DEM
    res = make_plan(cfg, check_resources=False)
    d = _by_scene(res)
    assert sorted(d.values()) == [("skipped", "no-dem"), ("skipped", "no-dem"), ("todo", None)]
    assert d[other.name[:-5]] == ("todo", None)
    skipped = [e for e in res.entries if e.decision == "skipped"]
    assert all(f"{dem}/46RER/, found none" in (e.reason or "") for e in skipped)
    assert RunDir(cfg.paths.run_dir).read_batch("all") == [other.name[:-5]]
    summary = res.summary()
    assert "2 scene(s) skipped no-dem" in summary
    assert f"s2kit dem prepare --tile 46RER --source SRTM_ZIPS_OR_URL --out {dem}" in summary


def test_tile_dem_folder_without_the_needed_zip_is_no_dem(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    dem = cfg.paths.dem_dir
    assert dem is not None
    (dem / "46RER" / "srtm_55_07.zip").rename(dem / "46RER" / "srtm_58_06.zip")
    build_l1c_tree(tmp_path / "l1c", "03.01")
    (entry,) = make_plan(cfg, check_resources=False).entries
    assert entry.decision == "skipped" and (entry.reason or "").startswith("no-dem: expected srtm_55_07.zip")


def test_dem_json_sizes_are_checked_without_hashing(tmp_path: Path) -> None:
    """An s2kit dem.json whose zip has another size than recorded (a half-copied set): no-dem."""
    cfg = _cfg(tmp_path)
    dem = cfg.paths.dem_dir
    assert dem is not None
    size = (dem / "46RER" / "srtm_55_07.zip").stat().st_size
    doc = {"s2kit_dem": 1, "zips": [{"name": "srtm_55_07.zip", "size": size, "sha256": "0" * 64}]}
    (dem / "46RER" / "dem.json").write_text(json.dumps(doc))
    build_l1c_tree(tmp_path / "l1c", "03.01")
    (entry,) = make_plan(cfg, check_resources=False).entries
    assert entry.decision == "todo"  # the checksum is s2kit dem check's job, not the planner's
    doc["zips"][0]["size"] = size + 1
    (dem / "46RER" / "dem.json").write_text(json.dumps(doc))
    (entry,) = make_plan(cfg, check_resources=False).entries
    assert entry.decision == "skipped" and f"of {size + 1} bytes" in (entry.reason or "")


def test_dem_is_checked_once_per_tile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import s2kit.plan as plan_mod

    calls: list[str | None] = []
    real = plan_mod.dem_problem

    def counting(dem_dir: Path | None, tile: str | None, kind: str = "srtm") -> str | None:
        calls.append(tile)
        return real(dem_dir, tile, kind=kind)

    monkeypatch.setattr(plan_mod, "dem_problem", counting)
    cfg = _cfg(tmp_path)
    for k in range(4):
        build_l1c_tree(tmp_path / "l1c", "03.01", day_offset=k)
    res = make_plan(cfg, check_resources=False)
    assert [e.decision for e in res.entries] == ["todo"] * 4
    assert calls == ["46RER"]


def test_dem_none_plans_flat_terrain_and_says_so(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, sen2cor={"dem": "none"})
    cfg = cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"dem_dir": None})})
    build_l1c_tree(tmp_path / "l1c", "03.01")
    res = make_plan(cfg, check_resources=False)
    (entry,) = res.entries
    assert (entry.decision, entry.reason) == ("todo", "no DEM: flat terrain")
    assert 'plan: 1 todo scene(s) with no DEM: flat terrain (sen2cor.dem = "none")' in res.summary()


def test_replan_while_every_todo_scene_is_in_a_live_array_writes_no_empty_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 15: a re-plan while all its todo scenes were queued/running in a live array wrote an
    empty batch all-2 and pointed plan.batch at it. Now: no batch, plan.batch unchanged, one line.
    (Which scenes are live is status's job, tested in test_rundir.py; here it is given.)"""
    import s2kit.plan as plan_mod
    from s2kit.runs import JobRecord
    from tests.support.configs import batch_config

    cfg = batch_config(tmp_path, 3)
    rd = RunDir(cfg.paths.run_dir)
    make_plan(cfg, check_resources=False)
    scenes = rd.read_batch("all")
    rd.append_job(JobRecord("local", "h:1:1", "all", 0, 3, "/x.sh", "2026-01-01T00:00:00Z"))
    monkeypatch.setattr(plan_mod, "_live_scenes", lambda _cfg, _rd: (set(scenes), set()))
    again = make_plan(cfg, check_resources=False)
    assert again.live == 3 and again.batch == "all" and not again.batch_written
    assert rd.plan_batch() == "all" and rd.read_batch("all") == scenes
    assert sorted(p.name for p in (rd.path / "batches").iterdir()) == ["all.txt"]  # no all-2
    assert "plan: nothing new to submit: 3 scene(s) queued/running in live jobs (batch all unchanged)" in (
        again.summary()
    )


def test_symlink_loop_as_an_l1c_dir_is_named_a_symlink_loop(tmp_path: Path) -> None:
    """Finding 14: an l1c_dirs entry that is a symlink loop said "expected an L1C directory, found
    none", as if nothing were there."""
    from s2kit.errors import InputError
    from s2kit.plan import discover

    loop = tmp_path / "l1c"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match=r"expected an L1C directory, found a symlink loop"):
        discover([loop])
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"found a dangling symlink"):
        discover([dangling])
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match=r"found a regular file"):
        discover([tmp_path / "f"])
    with pytest.raises(InputError, match=r"found none"):
        discover([tmp_path / "missing"])
