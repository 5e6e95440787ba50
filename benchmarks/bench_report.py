"""Benchmark: `s2kit report` for 1 000 scenes, and one quicklook from real-size R60m bands.

Run with `python benchmarks/bench_report.py`. Prints numbers; asserts nothing.
Targets (issue 9): report for 1 000 scenes < 30 s; quicklook per scene < 1 s.

1. Quicklook of one product from REAL-SIZE 60 m rasters (1830 x 1830, lossless JPEG 2000,
   synthetic values): (a) from TCI_60m (3 x uint8), (b) RGB from B04/B03/B02 (3 x uint16,
   BOA_ADD_OFFSET applied). Median of several runs.
2. Report of a synthetic run dir of 1 000 planned scenes (950 done with provenance and a
   published L2A whose TCI_60m is a hard link to one real-size TCI file, 40 failed with
   200-line logs, 10 skipped; 10 tiles, 2 L1C baselines): cold (every quicklook rendered,
   --jobs 2), warm (quicklooks from the run dir's cache), and without quicklooks.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from s2kit.quicklook import render_quicklook  # noqa: E402
from s2kit.report import write_report  # noqa: E402
from s2kit.runs import PlanEntry, RunDir, SceneState  # noqa: E402
from tests.support.l2a_rasters import r60_files, write_l2a_rasters  # noqa: E402
from tests.support.safe_trees import build_l2a_tree  # noqa: E402

N_SCENES = 1000
N_DONE, N_FAILED = 950, 40
TILES = ["46RER", "46RES", "46REQ", "46RFR", "46RFS", "46RFQ", "46RGR", "46RGS", "46RGQ", "46RDR"]
REAL = 1830


def _field(size: int, k: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    return 0.05 + 0.1 * (1 + np.sin(x / (40 + 9 * k)) * np.cos(y / (55 + 7 * k)))


def bench_quicklook(work: Path) -> Path:
    product = build_l2a_tree(work / "ql", "33XWJ")  # REAL PB 04.00 metadata: offset -1000
    refl = {b: _field(REAL, k) for k, b in enumerate(("B04", "B03", "B02"))}
    t = time.perf_counter()
    write_l2a_rasters(product, refl, size=REAL)
    print(f"  (wrote real-size 60 m rasters in {time.perf_counter() - t:.1f} s)")
    tci = r60_files(product)["TCI"]
    times = []
    for _ in range(7):
        t = time.perf_counter()
        ql = render_quicklook(product)
        times.append(time.perf_counter() - t)
    print(f"quicklook from TCI_60m {REAL}x{REAL}: median {statistics.median(times) * 1000:.0f} ms "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}), {ql.width}x{ql.height} PNG {len(ql.png)} B")  # fmt: skip
    keep = tci.with_suffix(".keep")
    tci.rename(keep)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        ql = render_quicklook(product)
        times.append(time.perf_counter() - t)
    keep.rename(tci)
    print(f"quicklook RGB from B04/B03/B02 60m {REAL}x{REAL} uint16: median {statistics.median(times) * 1000:.0f} ms "
          f"({ql.method})")  # fmt: skip
    return tci


def make_run(work: Path, tci: Path) -> Path:
    rd = RunDir(work / "run")
    l2a_dir = work / "l2a"
    t0 = datetime(2021, 1, 1, tzinfo=timezone.utc)
    entries, n = [], 0
    for i in range(N_SCENES):
        tile = TILES[i % len(TILES)]
        day = t0 + timedelta(days=i // len(TILES))
        pb = "03.01" if i % 3 else "02.09"
        scene = f"S2A_MSIL1C_{day:%Y%m%d}T042701_N{pb.replace('.', '')}_R133_T{tile}_{day:%Y%m%d}T070248"
        decision = "skipped" if i >= N_DONE + N_FAILED else "todo"
        entries.append(
            PlanEntry(scene=scene, l1c_path=f"/l1c/{scene}.SAFE", decision=decision,  # type: ignore[arg-type]
                      reason="duplicate: older" if decision == "skipped" else None, mgrs_tile=tile,
                      sensing_start=day.isoformat(), processing_baseline=pb, relative_orbit=133)
        )  # fmt: skip
        if decision == "skipped":
            continue
        start = day + timedelta(hours=8)
        log = rd.log_file(scene, 1)
        log.parent.mkdir(parents=True, exist_ok=True)
        if i < N_DONE:
            name = scene.replace("MSIL1C", "MSIL2A").replace(f"N{pb.replace('.', '')}", "N0300")
            l2a = l2a_dir / f"{name}.SAFE"
            r60 = l2a / "GRANULE" / f"L2A_T{tile}_A000001_{day:%Y%m%d}T042701" / "IMG_DATA" / "R60m"
            r60.mkdir(parents=True)
            os.link(tci, r60 / f"T{tile}_{day:%Y%m%d}T042701_TCI_60m.jp2")
            log.write_text("s2kit: worker\nProgress[%]: 100.00 : Application terminated successfully.\n")
            secs = 300 + (i * 37) % 240
            rd.write_state(SceneState(scene=scene, state="done", attempt=1, host="node1", pid=1000 + i,
                                      started=row_time(start), ended=row_time(start + timedelta(seconds=secs + 20)),
                                      log=str(log), l2a=str(l2a), exit_code=0))  # fmt: skip
            prov = {
                "schema": "s2kit-provenance/1", "scene": scene, "validated": True,
                "l1c": {"scene": scene, "processing_baseline": pb, "mgrs_tile": tile},
                "l2a": {"name": l2a.name, "path": str(l2a), "processing_baseline": "03.00"},
                "sen2cor": {"version": "2.9", "version_in_metadata": "02.09.00", "seconds": float(secs)},
                "gipp": {"threads": 4, "files": {"L2A_GIPP.xml": f"{hash(tile) & 0xFFFF:064x}",
                                                 "L2A_PB_GIPP.xml": "a" * 64, "L2A_CAL_SC_GIPP.xml": "b" * 64,
                                                 "L2A_CAL_AC_GIPP.xml": "c" * 64 if i % 200 else "d" * 64}},
                "dem": {"dir": f"/dem/{tile}"}, "container": {"image": "/img/sen2cor.sif", "sha256": "e" * 64},
                "s2kit_version": "0.1.0", "host": "node1", "started": row_time(start), "ended": row_time(start),
            }  # fmt: skip
            rd.provenance_file(scene).parent.mkdir(parents=True, exist_ok=True)
            rd.provenance_file(scene).write_text(json.dumps(prov, indent=1))
            n += 1
        else:
            log.write_text(
                "".join(f"Progress[%]: {k / 2:.2f} : step {k}\n" for k in range(200)) + "CRITICAL: boom\n"
            )
            rd.write_state(SceneState(scene=scene, state="failed", attempt=2, reason="log-error: CRITICAL: boom",
                                      started=row_time(start), ended=row_time(start + timedelta(seconds=90)),
                                      log=str(log), exit_code=0))  # fmt: skip
    rd.write_plan(entries)
    return rd.path


def row_time(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def bench_report(work: Path, tci: Path) -> None:
    t = time.perf_counter()
    run = make_run(work, tci)
    print(f"  (made a run dir of {N_SCENES} scenes in {time.perf_counter() - t:.1f} s)")
    for label, kwargs in (
        ("cold: 950 quicklooks rendered, --jobs 2", {"jobs": 2}),
        ("warm: 950 quicklooks from the cache", {"jobs": 2}),
        ("no quicklooks", {"quicklooks": False}),
    ):
        t = time.perf_counter()
        result = write_report(run, work / "report.html", **kwargs)  # type: ignore[arg-type]
        dt = time.perf_counter() - t
        ok = sum(1 for r in result.data["scenes"] if r.get("quicklook", {}).get("ok"))
        size = result.html.stat().st_size
        print(f"report {N_SCENES} scenes, {label}: {dt:.1f} s ({ok} thumbnails, HTML {size / 1e6:.1f} MB, "
              f"{len(result.data['provenance']['deviations'])} provenance differences)")  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="s2kit-bench-report-") as tmp:
        work = Path(tmp)
        print(f"bench_report: {os.cpu_count()} cores")
        tci = bench_quicklook(work)
        keep = work / "tci.jp2"
        os.link(tci, keep)
        bench_report(work, keep)


if __name__ == "__main__":
    main()
