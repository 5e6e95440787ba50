"""``make bench``: every benchmark of issue 17, as whole processes, in one table.

    python benchmarks/run.py [--quick] [--only metadata,fetch,worker,dem,report,plan]
                             [--runs N] [--out DIR] [--keep]

Each measure times what a user runs (``.venv/bin/s2kit ...`` started as a process) against a
reference started the same way, A and B alternating, >= 5 pairs (harness.py says how). Prints
one table (measure, s2kit, reference, ratio, target, met) and writes it to
``OUT/results.json`` and ``OUT/results.md`` (OUT defaults to this folder; the docs page
docs/performance.md includes results.md). ``--quick``: small inputs, for a ~1-minute run whose
numbers are NOT for the docs (written as results-quick.*). benchmarks/README.md describes every
reference. Asserts nothing about time; a target is "met" or "not met" as measured.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # tests.support: the SAFE-tree and raster builders
sys.path.insert(0, str(HERE))

from harness import (  # noqa: E402
    BenchError,
    Command,
    Pairs,
    Row,
    alternate,
    fresh,
    markdown_table,
    row_from_pairs,
    run_all,
    text_table,
)

PY = sys.executable
S2KIT = str(Path(sys.executable).parent / "s2kit")
PROCS = str(HERE / "procs.py")
DOUBLE = ROOT / "tests" / "sen2cor_double"  # the Sen2Cor TEST DOUBLE: an instant stand-in, not Sen2Cor


@dataclass
class Ctx:
    work: Path
    quick: bool
    runs: int

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def cmd(*argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> Command:
    return ([str(a) for a in argv], env, cwd)


# ----------------------------------------------------------------------------- metadata
def bench_metadata(ctx: Ctx) -> list[Row]:
    from tests.support.safe_trees import REAL_L2A_TILES, build_l2a_tree

    n = ctx.size(1000, 50)
    base = ctx.work / "metadata"
    seeds = [build_l2a_tree(base / "seed" / t, t) for t in REAL_L2A_TILES]
    products = []
    for i in range(n):
        dst = base / "set" / f"{i:04d}" / seeds[i % len(seeds)].name
        shutil.copytree(seeds[i % len(seeds)], dst)
        products.append(dst)
    kinds = {
        "product MTD": [p / "MTD_MSIL2A.xml" for p in products],
        "tile MTD": [f for p in products for f in p.glob("GRANULE/*/MTD_TL.xml")],
        "manifest": [p / "manifest.safe" for p in products],
    }
    rows = []
    for kind, files in kinds.items():
        listing = base / f"{kind.replace(' ', '-')}.txt"
        listing.write_text("".join(f"{f}\n" for f in files), encoding="utf-8")
        pairs = alternate(
            lambda k, lst=listing: [cmd(PY, PROCS, "s2kit-read", lst)],
            lambda k, lst=listing: [cmd(PY, PROCS, "lxml-parse", lst)],
            ctx.runs,
        )
        rows.append(
            row_from_pairs(
                f"metadata read: {len(files)} {kind} files",
                pairs,
                target="≤ 2.0×",
                met=lambda a, b, r: r <= 2.0,
                reference_name="bare lxml.etree.parse of the same files, parse and discard, same parser "
                "settings; one process each side",
                note="s2kit side: s2kit.safe.read_metadata_file on each file (no CLI command reads bare "
                "metadata files in bulk); interpreter start and imports count on both sides",
            )
        )
    everything = base / "products.txt"
    everything.write_text("".join(f"{p}\n" for p in products), encoding="utf-8")
    reference = [cmd(PY, PROCS, "s2kit-inspect-loop", everything)]
    reference_name = "the library loop (inspect_path + the same JSON Lines) over all products in one process"
    pattern = str(base / "set" / "*" / "*.SAFE")
    sides = {
        f"inspect --json: {n} products": (
            [cmd(S2KIT, "inspect", "--json", *products)],
            f"s2kit: ONE `s2kit inspect --json PATH...` process with the {n} paths as arguments, "
            "streaming one JSON line per product",
        ),
        f"inspect --json - (stdin list): {n} products": (
            [cmd("sh", "-c", f"exec {shlex.quote(S2KIT)} inspect --json - < {shlex.quote(str(everything))}")],
            f"s2kit: ONE `s2kit inspect --json -` process reading the {n} paths from stdin (sh execs it)",
        ),
        f"inspect --json 'PATTERN': {n} products": (
            [cmd(S2KIT, "inspect", "--json", pattern)],
            f"s2kit: ONE `s2kit inspect --json '{base.name}/set/*/*.SAFE'` process; s2kit expands the "
            "quoted pattern (sorted) itself",
        ),
    }
    for measure, (s2kit_cmds, note) in sides.items():
        pairs = alternate(lambda k, c=s2kit_cmds: c, lambda k: reference, ctx.runs)
        rows.append(
            row_from_pairs(
                measure,
                pairs,
                target=f"< 5 s for {n}" if n != 1000 else "< 5 s",
                met=lambda a, b, r: a < 5.0,
                reference_name=reference_name,
                note=note,
            )
        )
    return rows


# ----------------------------------------------------------------------------- fetch
def bench_fetch(ctx: Ctx) -> list[Row]:
    if shutil.which("curl") is None:
        return [Row("fetch vs curl --parallel", None, None, None, None, None, "≥ 0.9× curl", None,
                    note="reference unavailable here: curl is not installed")]  # fmt: skip
    import bench_fetch as legacy  # its loopback fake-bucket server process

    files, size, jobs = ctx.size(12, 4), ctx.size(48, 4) << 20, 4
    mp = multiprocessing.get_context("fork")
    parent, child = mp.Pipe()
    server = mp.Process(target=legacy._serve, args=(child, files, size, None), daemon=True)
    server.start()
    rows = []
    try:
        base, urls, total = parent.recv()
        out = ctx.work / "fetch"

        def s2kit_side(k: int) -> list[Command]:
            dest = fresh(out / f"s2kit-{k}")
            return [
                cmd(S2KIT, "fetch", "--tile", "17SQV", "--start", "2021-06-01", "--end", "2021-06-30",
                    "--out", dest / "l1c", "--base-url", base, "--jobs", str(jobs), "--retries", "2")
            ]  # fmt: skip

        def curl_argv(dest: Path) -> list[str]:
            argv = [
                "curl",
                "-sS",
                "--fail",
                "--parallel",
                "--parallel-immediate",
                "--parallel-max",
                str(jobs),
            ]
            for i, url in enumerate(urls):
                argv += ["-o", str(dest / f"f{i}"), url]
            return argv

        def curl_side(k: int) -> list[Command]:
            return [cmd(*curl_argv(fresh(out / f"curl-{k}")))]

        def curl_md5_side(k: int) -> list[Command]:
            dest = fresh(out / f"curlmd5-{k}")
            script = (
                " ".join(map(_sh, curl_argv(dest)))
                + " && md5sum "
                + " ".join(_sh(str(dest / f"f{i}")) for i in range(len(urls)))
            )
            return [cmd("sh", "-c", script)]

        def cleanup(k: int) -> None:
            for d in out.glob(f"*-{k}"):
                shutil.rmtree(d, ignore_errors=True)

        what = f"{len(urls)} files, {total / 1e6:.0f} MB, {jobs} streams, loopback"
        for label, ref, ref_name in (
            ("curl --parallel", curl_side, "curl --parallel --parallel-max 4 (no checks)"),
            ("curl --parallel + md5sum", curl_md5_side, "curl --parallel, then md5sum of every file"),
        ):
            pairs = alternate(s2kit_side, ref, ctx.runs, after=cleanup)
            rows.append(
                row_from_pairs(
                    f"fetch vs {label}: {what}",
                    pairs,
                    target="≤ 1.11× (≥ 0.9× curl's speed)" if ref is curl_side else "—",
                    met=(lambda a, b, r: r <= 1 / 0.9) if ref is curl_side else None,
                    reference_name=ref_name,
                    note="s2kit fetch lists the tile (JSON API), downloads with --jobs 4, checks size and MD5 of "
                    "every file while it arrives, renames atomically, flushes the product to disk (fsync, "
                    "once per product), writes the manifest; curl neither hashes nor flushes; server: "
                    "tests/fake_bucket.py in its own process, on the same 2 cores",
                )
            )
    finally:
        parent.send("stop")
        server.join(timeout=10)
    return rows


def _sh(text: str) -> str:
    import shlex

    return shlex.quote(text)


# ----------------------------------------------------------------------------- worker
def _toml(doc: dict[str, dict[str, object]]) -> str:
    lines = []
    for table, values in doc.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _bytecode() -> None:
    """Compile s2kit's bytecode cache (untimed), as ``pip install`` does for a user: this
    environment may set PYTHONDONTWRITEBYTECODE, and every process would compile s2kit anew."""
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "s2kit")], check=True, stdout=subprocess.DEVNULL)


def bench_worker(ctx: Ctx) -> list[Row]:
    from tests.support.safe_trees import build_l1c_tree

    _bytecode()
    n = ctx.size(16, 3)
    base = ctx.work / "batch"
    l1c = base / "l1c"
    l1c.mkdir(parents=True)
    scenes = [build_l1c_tree(l1c, "03.01", day_offset=k) for k in range(n)]

    def s2kit_side(k: int) -> list[Command]:
        root = fresh(base / f"a{k}")
        config = root / "s2kit.toml"
        config.write_text(
            _toml(
                {
                    "paths": {
                        "l1c_dirs": [str(l1c)],
                        "l2a_dir": str(root / "l2a"),
                        "scratch_dir": str(root / "scratch"),
                        "run_dir": str(root / "run"),
                    },
                    "sen2cor": {"runtime": "native", "install_dir": str(DOUBLE), "retries": 0, "dem": "none"},
                    "scheduler": {"kind": "local", "max_concurrent": 1, "memory_per_task_gb": 0.5},
                }
            ),  # fmt: skip
            encoding="utf-8",
        )
        return [cmd(S2KIT, "plan", "-c", config, "--no-preflight"), cmd(S2KIT, "submit", "-c", config)]

    def program_side(k: int) -> list[Command]:
        root = fresh(base / f"b{k}")
        out = []
        for p in scenes:
            (root / p.name).mkdir()
            out.append(
                cmd(DOUBLE / "bin" / "L2A_Process", p, "--output_dir", root / p.name, "--resolution", "60")
            )
        return out

    def cleanup(k: int) -> None:
        for d in (base / f"a{k}", base / f"b{k}"):
            shutil.rmtree(d, ignore_errors=True)

    pairs = alternate(s2kit_side, program_side, ctx.runs, after=cleanup)
    per_scene = Pairs([a / n for a in pairs.a], [b / n for b in pairs.b])
    overhead = [a - b for a, b in zip(per_scene.a, per_scene.b, strict=True)]
    med = statistics.median(overhead)
    row = row_from_pairs(
        f"worker overhead: {n} scenes, local, one at a time (per scene)",
        per_scene,
        target="≤ 0.15 s/scene over the program",
        met=lambda a, b, r: med <= 0.15,
        reference_name="the program alone, one process per scene, same inputs",
        note=f"overhead = (plan + submit + workers − the program alone) / scenes: median {med:.3f} s "
        f"(min {min(overhead):.3f}, max {max(overhead):.3f}); the program is the Sen2Cor TEST DOUBLE "
        "(tests/sen2cor_double, an instant stand-in, not Sen2Cor); s2kit's bytecode compiled first, "
        "as an installed s2kit has it",
    )
    return [row, *_worker_startup(ctx)]


def _worker_startup(ctx: Ctx) -> list[Row]:
    """Issue 17 item 4: the worker's start-up over Python's own, two ways (each sample = the
    mean of 10 processes in a row)."""
    reps = ctx.size(10, 3)
    bare = [cmd(PY, "-c", "pass")] * reps
    rows = []
    for label, argv, what in (
        (
            "worker start-up: `python -m s2kit.worker_cli --help`",
            (PY, "-m", "s2kit.worker_cli", "--help"),
            "the worker's entry point answering --help (its own imports, the parser, the help page)",
        ),
        (
            "worker start-up: import of the worker (entry point + s2kit.worker + config view)",
            (PY, "-c", "import s2kit.worker_cli, s2kit.worker, s2kit.config_view"),
            "everything a task imports before its scene's work starts (lxml included)",
        ),
    ):
        pairs = alternate(lambda k, a=argv: [cmd(*a)] * reps, lambda k: bare, ctx.runs)
        per = Pairs([a / reps for a in pairs.a], [b / reps for b in pairs.b])
        extra = statistics.median(per.a) - statistics.median(per.b)
        rows.append(
            row_from_pairs(
                label,
                per,
                target="≤ 0.1 s over Python's own",
                met=lambda a, b, r: a - b <= 0.1,
                reference_name="`python -c pass` (the same interpreter and venv)",
                note=f"{what}; {extra * 1000:.0f} ms over Python's own start (medians); each sample is the "
                f"mean of {reps} processes in a row; s2kit's bytecode compiled first",
            )
        )
    return rows


# ----------------------------------------------------------------------------- dem
DEM_TILE = "19FDV"


def _srtm_sources(folder: Path, per_tile: int) -> list[str]:
    """The 4 CGIAR-shaped SRTM zips 19FDV needs: Int16, nodata -32768, uncompressed GeoTIFF with
    one-row strips in a DEFLATE zip; synthetic relief + noise + sea."""
    import numpy as np
    import rasterio
    from affine import Affine

    from s2kit.tiles import srtm_tile_bounds, tile_geometry

    folder.mkdir(parents=True)
    names = list(tile_geometry(DEM_TILE).srtm_tiles)
    for name in names:
        i, j = (int(x) for x in name.removeprefix("srtm_").split("_"))
        rows = np.arange((j - 1) * per_tile, j * per_tile, dtype=np.float32)[:, None] * (6000 / per_tile)
        cols = np.arange((i - 1) * per_tile, i * per_tile, dtype=np.float32)[None, :] * (6000 / per_tile)
        relief = 900 + 650 * np.sin(cols / 700.0) * np.cos(rows / 900.0) + 280 * np.sin((cols + rows) / 240.0)
        relief += np.random.default_rng(i * 100 + j).normal(0, 6, size=relief.shape).astype(np.float32)
        data = relief.astype(np.int16)
        data[relief < 350] = -32768
        west, _, _, north = srtm_tile_bounds(name)
        res = 5.0 / per_tile
        tif = folder / f"{name}.tif"
        profile = {"driver": "GTiff", "width": per_tile, "height": per_tile, "count": 1, "dtype": "int16",
                   "crs": "EPSG:4326", "transform": Affine(res, 0.0, west, 0.0, -res, north),
                   "nodata": -32768, "blockysize": 1}  # fmt: skip
        with rasterio.open(tif, "w", **profile) as dst:
            dst.write(data, 1)
        with zipfile.ZipFile(folder / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(tif, f"{name}.tif")
            zf.writestr(f"{name}.hdr", b"header\n")
            zf.writestr(f"{name}.tfw", b"tfw\n")
        tif.unlink()
    return names


def bench_dem(ctx: Ctx) -> list[Row]:
    per_tile = ctx.size(6000, 600)
    base = ctx.work / "dem"
    src = base / "srtm"
    names = _srtm_sources(src, per_tile)
    warm = base / "warm"
    subprocess.run([S2KIT, "dem", "prepare", "--tile", DEM_TILE, "--source", str(src), "--out", str(warm)],
                   check=True, capture_output=True)  # fmt: skip
    dem = json.loads((warm / DEM_TILE / "dem.json").read_text())["dem"]
    (west, south, east, north), res = dem["bounds"], dem["res_deg"]
    window = [repr(v) for v in (west, south, east, north, res)]
    gdalwarp = shutil.which("gdalwarp")

    def s2kit_side(k: int) -> list[Command]:
        return [
            cmd(
                S2KIT,
                "dem",
                "prepare",
                "--tile",
                DEM_TILE,
                "--source",
                src,
                "--out",
                fresh(base / f"a{k}") / "out",
            )
        ]

    def zips() -> str:
        return (
            "mkdir set && for n in " + " ".join(names) + '; do ln merged.tif "set/$n.tif"; '
            '(cd set && zip -q -0 "$n.zip" "$n.tif" && rm "$n.tif"); done'
        )

    def crop(sources: list[str]) -> str:
        if gdalwarp:
            w, s, e, n, r = window
            return " ".join(["gdalwarp", "-q", "-te", w, s, e, n, "-tr", r, r, "-ot", "Int16", "-srcnodata",
                             "-32768", "-dstnodata", "-32768", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=2",
                             *map(_sh, sources), "merged.tif"])  # fmt: skip
        return " ".join(["$PY", "$PROCS", "warp-crop", "merged.tif", *window, *map(_sh, sources)])

    env = {"SRC": str(src), "PY": PY, "PROCS": PROCS}

    def extract_side(k: int) -> list[Command]:
        unzip = "for n in " + " ".join(names) + '; do unzip -q -o "$SRC/$n.zip" "$n.tif"; done'
        script = f"set -e; {unzip}; {crop([f'{n}.tif' for n in names])}; {zips()}"
        return [cmd("sh", "-c", script, env=env, cwd=fresh(base / f"b{k}"))]

    def vsizip_side(k: int) -> list[Command]:
        script = f"set -e; {crop([f'/vsizip/{src}/{n}.zip/{n}.tif' for n in names])}; {zips()}"
        return [cmd("sh", "-c", script, env=env, cwd=fresh(base / f"c{k}"))]

    def cleanup(k: int) -> None:
        for d in base.glob(f"[abc]{k}"):
            shutil.rmtree(d, ignore_errors=True)

    tool = "gdalwarp" if gdalwarp else "GDAL's warper via rasterio (gdalwarp is not installed here)"
    what = f"{DEM_TILE}, 4 SRTM tiles {per_tile}×{per_tile}, cold"
    note = ("s2kit: `s2kit dem prepare` into a fresh folder (hashes the source zips, reads the 4 members, "
            "merges, writes the DEFLATE GeoTIFF, 4 stored zips and dem.json)")  # fmt: skip
    rows = [
        row_from_pairs(
            f"dem prepare vs unzip + crop: {what}",
            alternate(s2kit_side, extract_side, ctx.runs, after=cleanup),
            target="≤ 0.8×",
            met=lambda a, b, r: r <= 0.8,
            reference_name=f"unzip the 4 tifs, crop + mosaic with {tool} to the same window and pixel size "
            "(DEFLATE, predictor 2), zip -0 the result under the 4 names; one shell process",
            note=note,
        ),
        row_from_pairs(
            f"dem prepare vs crop from /vsizip/: {what}",
            alternate(s2kit_side, vsizip_side, ctx.runs, after=cleanup),
            target="—",
            met=None,
            reference_name=f"the same crop with {tool} reading /vsizip/ in place (no unzip, no CRC check), "
            "zip -0 under the 4 names",
            note=note,
        ),
    ]
    return rows


# ----------------------------------------------------------------------------- report
def bench_report(ctx: Ctx) -> list[Row]:
    import bench_report as legacy  # its synthetic run dir builder
    import numpy as np

    from tests.support.l2a_rasters import write_jp2

    n = ctx.size(1000, 40)
    legacy.N_SCENES, legacy.N_DONE, legacy.N_FAILED = n, n * 95 // 100, n * 4 // 100
    base = ctx.work / "report"
    base.mkdir()
    y, x = np.mgrid[0:1830, 0:1830].astype(np.float64)
    rgb = np.stack(
        [np.clip(120 + 90 * np.sin(x / (90 + 20 * k)) * np.cos(y / (130 + 15 * k)), 1, 255) for k in range(3)]
    )
    tci = write_jp2(base / "tci.jp2", rgb.astype(np.uint8), 32646, 600000.0, 3400020.0, 60.0)
    run = legacy.make_run(base, tci)

    def cold(k: int) -> list[Command]:
        shutil.rmtree(run / "quicklooks", ignore_errors=True)
        return [cmd(S2KIT, "report", run, "--out", fresh(base / f"a{k}") / "report.html", "--jobs", "2")]

    def bare(k: int) -> list[Command]:
        return [cmd(S2KIT, "report", run, "--no-quicklooks", "--out", fresh(base / f"b{k}") / "report.html")]

    done = legacy.N_DONE
    row = row_from_pairs(
        f"report: {n} scenes, cold quicklooks, --jobs 2",
        alternate(cold, bare, ctx.runs),
        target="< 5 s" if n == 1000 else f"< 5 s for 1000 ({n} here)",
        met=lambda a, b, r: a < 5.0 if n == 1000 else None,  # type: ignore[return-value]
        reference_name="the same report with --no-quicklooks",
        note=f"{done} quicklooks rendered from a 1830×1830 lossless TCI_60m (GDAL's JPEG 2000 tiling, "
        "hard-linked into every product, so it is in the page cache); the quicklook cache is deleted "
        f"before each run; {os.cpu_count()} cores",
    )
    return [row]


# ----------------------------------------------------------------------------- plan
def bench_plan(ctx: Ctx) -> list[Row]:
    """Two rows: the L1C store as ``.SAFE.zip`` files, then as ``.SAFE`` folders (the planner
    opens each zip's central directory; it lists each folder, checks MTD_MSIL1C.xml and GRANULE,
    and walks the todo trees for their size)."""
    import bench_plan as legacy  # its synthetic .SAFE.zip and .SAFE folder builders

    return [
        _plan_row(ctx, "plan-zip", ".SAFE.zip", legacy.build),
        _plan_row(ctx, "plan-safe", ".SAFE folders", legacy.build_folders),
    ]


def _plan_row(ctx: Ctx, tag: str, kind: str, build: Callable[[Path, int], None]) -> Row:
    small, big, tiny = ctx.size(10_000, 2_000), ctx.size(100_000, 20_000), 10
    base = ctx.work / tag
    install = base / "no-sen2cor"  # plan does not run Sen2Cor
    install.mkdir(parents=True)
    folders = {}
    for size in (tiny, small, big):
        folders[size] = base / f"in-{size}"
        build(folders[size], size)

    def side(size: int, tag: str) -> Callable[[int], list[Command]]:
        def prepare(k: int) -> list[Command]:
            root = fresh(base / f"{tag}{k}")
            config = root / "s2kit.toml"
            config.write_text(
                _toml(
                    {
                        "paths": {
                            "l1c_dirs": [str(folders[size] / "l1c")],
                            "l2a_dir": str(root / "l2a"),
                            "scratch_dir": str(root / "scratch"),
                            "run_dir": str(root / "run"),
                        },
                        "sen2cor": {"runtime": "native", "install_dir": str(install), "dem": "none"},
                    }
                ),  # fmt: skip
                encoding="utf-8",
            )
            return [cmd(S2KIT, "plan", "-c", config, "--no-preflight")]

        return prepare

    def cleanup(k: int) -> None:
        for d in base.glob(f"[abc]{k}"):
            shutil.rmtree(d, ignore_errors=True)

    # three sides in rotation: big, small, and a 10-entry plan for the fixed cost (start-up,
    # imports, config); linear means big - fixed = factor x (small - fixed)
    times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    sides = {"a": side(big, "a"), "b": side(small, "b"), "c": side(tiny, "c")}
    try:
        for k in range(ctx.runs):
            order = "abc"[k % 3 :] + "abc"[: k % 3]
            for t in order:
                times[t].append(run_all(sides[t](k)))
            cleanup(k)
    finally:
        shutil.rmtree(base, ignore_errors=True)  # 100 000 folders: do not keep them for the next measure
    fixed = statistics.median(times["c"])
    factor = (big - tiny) / (small - tiny)
    linear = Pairs(times["a"], [fixed + factor * (b - fixed) for b in times["b"]])
    per_big = (statistics.median(times["a"]) - fixed) / (big - tiny) * 1e6
    per_small = (statistics.median(times["b"]) - fixed) / (small - tiny) * 1e6
    tree = (
        " Each folder: the real MTD_MSIL1C.xml and manifest.safe of a fixture product and its real "
        "MTD_TL.xml under GRANULE/<granule>/ (hard links); the todo trees are walked for their size."
        if kind == ".SAFE folders"
        else ""
    )
    return row_from_pairs(
        f"plan: {big} entries ({kind}), against linear scaling from {small}",
        linear,
        target="linear (≤ 1.2×), < 60 s",
        met=lambda a, b, r: r <= 1.2 and a < 60.0,
        reference_name=f"linear prediction: fixed cost + {factor:.3g} × (time of {small} entries − fixed cost); "
        f"fixed cost = `s2kit plan` of {tiny} entries ({fixed:.2f} s)",
        note=f"`s2kit plan --no-preflight` into a fresh run dir; net {per_big:.0f} µs/entry at {big}, "
        f"{per_small:.0f} µs/entry at {small}.{tree}",
    )


# ----------------------------------------------------------------------------- main
BENCHES: dict[str, Callable[[Ctx], list[Row]]] = {
    "metadata": bench_metadata,
    "fetch": bench_fetch,
    "worker": bench_worker,
    "dem": bench_dem,
    "report": bench_report,
    "plan": bench_plan,
}


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


#: measure-name prefixes of rows written before rows named their benchmark
_BENCH_OF_PREFIX = (
    ("metadata read", "metadata"),
    ("inspect", "metadata"),
    ("fetch", "fetch"),
    ("worker", "worker"),
    ("import", "worker"),
    ("python -m s2kit", "worker"),
    ("dem prepare", "dem"),
    ("report", "report"),
    ("plan", "plan"),
)


def _merged(rows: list[Row], only: list[str], old_file: Path) -> list[Row]:
    """*rows* (the benchmarks in *only*) with the rows of every other benchmark kept from
    *old_file*, in the order of :data:`BENCHES`; a kept row keeps the date it was measured."""
    try:
        old = json.loads(old_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return rows
    meta = old.get("meta", {}) if isinstance(old, dict) else {}
    when = f"{meta.get('date', '?')}, commit {meta.get('commit', '?')}, load {meta.get('load_before', '?')}"
    kept: list[Row] = []
    for d in old.get("rows", []) if isinstance(old, dict) else []:
        row = Row.from_dict(d)
        if not row.bench:
            row.bench = next((b for p, b in _BENCH_OF_PREFIX if row.measure.startswith(p)), "")
        row.measured = row.measured or when
        if row.bench and row.bench not in only:
            kept.append(row)
    order = list(BENCHES)
    return sorted(kept + rows, key=lambda r: order.index(r.bench) if r.bench in order else len(order))


def _commit() -> str:
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return proc.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs (~1 minute); not for the docs")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--runs", type=int, help="A/B pairs per measure (default 5; --quick: 3)")
    parser.add_argument(
        "--out", type=Path, default=HERE, help="folder for results.json/.md (default: benchmarks/)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: keep the other benchmarks' rows of the existing results (each says when "
        "and at which commit it was measured)",
    )
    args = parser.parse_args(argv)
    only = [o for o in args.only.split(",") if o] or list(BENCHES)
    unknown = [o for o in only if o not in BENCHES]
    if unknown:
        parser.error(f"expected --only from {','.join(BENCHES)}, found {','.join(unknown)}")
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.runs < 1:
        parser.error(f"expected --runs >= 1, found {args.runs}")
    work = Path(tempfile.mkdtemp(prefix="s2kit-bench-"))
    ctx = Ctx(work, args.quick, args.runs)
    started = datetime.now(timezone.utc)
    load_before = _load()
    measured = f"{started.strftime('%Y-%m-%d %H:%M UTC')}, commit {_commit()}, load {load_before}"
    rows: list[Row] = []
    t0 = time.perf_counter()
    try:
        for name in only:
            t = time.perf_counter()
            try:
                got = BENCHES[name](ctx)
            except (BenchError, subprocess.CalledProcessError) as exc:
                got = [Row(name, None, None, None, None, None, "—", None, note=f"failed: {exc}")]
            for r in got:
                r.bench, r.measured = name, measured
            rows += got
            print(f"[{name}: {time.perf_counter() - t:.0f} s]", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    meta = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "quick": args.quick,
        "runs": args.runs,
        "cores": os.cpu_count(),
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "load_before": load_before,
        "load_after": _load(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.merge:
        rows = _merged(rows, only, args.out / ("results-quick.json" if args.quick else "results.json"))
    header = (
        f"{meta['date']}, commit {meta['commit']}, {meta['cores']} cores, {meta['machine']}; "
        f"{meta['runs']} A/B pairs per measure, whole processes, medians; load average (1/5/15 min) "
        f"{meta['load_before']} before, {meta['load_after']} after{'; QUICK run: small inputs' if args.quick else ''}"
    )
    print(header)
    print(text_table(rows))
    for i, r in enumerate(rows, 1):
        print(f"  [{i}] {r.measure}: reference = {r.reference_name or '—'}. {r.note}".rstrip())
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "results-quick" if args.quick else "results"
    (args.out / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "rows": [r.to_dict() for r in rows]}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    notes = "\n".join(
        f"{i}. **{r.measure}**: reference = {r.reference_name or '—'}. {r.note}".rstrip()
        + (f" *(measured {r.measured})*" if r.measured else "")
        for i, r in enumerate(rows, 1)
    )
    (args.out / f"{stem}.md").write_text(
        f"<!-- generated by benchmarks/run.py ({'make bench' if not args.quick else '--quick'}); do not edit -->\n"
        f"{header}.\n\n{markdown_table(rows)}\n\n{notes}\n",
        encoding="utf-8",
    )
    return 1 if any(r.note.startswith("failed:") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
