"""Benchmark: `s2kit plan` over 100 000 synthetic L1C entries (target < 60 s, O(n)).

Each entry is a small .SAFE.zip holding one member named MTD_MSIL1C.xml (the
planner opens the zip's central directory, it does not parse metadata when the
compact name carries the facts). Sizes 10 000 and 100 000 are timed in the same
run; the ratio shows linear scaling. Prints numbers, asserts nothing.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from s2kit.config import config_from_dict
from s2kit.plan import make_plan


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("X.SAFE/MTD_MSIL1C.xml", b"<placeholder/>")
    return buf.getvalue()


def build(root: Path, n: int) -> None:
    data = _zip_bytes()
    l1c = root / "l1c"
    l1c.mkdir(parents=True)
    t0 = datetime(2017, 1, 1)
    tiles = ["17SQV", "17SPV", "18SUJ", "32TNS"]
    for i in range(n):
        sensing = (t0 + timedelta(hours=i)).strftime("%Y%m%dT%H%M%S")
        baseline = "0301" if i % 10 else "0400"  # 10 % gated
        name = f"S2A_MSIL1C_{sensing}_N{baseline}_R{i % 143:03d}_T{tiles[i % 4]}_{sensing}.SAFE.zip"
        (l1c / name).write_bytes(data)


FIXTURES = Path(__file__).resolve().parent.parent / "data" / "fixtures"
REAL_L1C = "S2A_MSIL1C_20200717T221941_N0209_R029_T01LAC_20200717T234135"


def build_folders(root: Path, n: int) -> None:
    """*n* ``.SAFE`` folders under ``root/l1c``, each a minimal real-looking L1C tree: the REAL
    ``MTD_MSIL1C.xml`` and ``manifest.safe`` of the T01LAC fixture product at the top and its
    real ``MTD_TL.xml`` in ``GRANULE/<granule>/`` (hard links to a copy: the planner reads
    names, folders and sizes, not the metadata, when the product name carries the facts).
    Same names, tiles and baselines as :func:`build`."""
    files = {
        "MTD_MSIL1C.xml": FIXTURES / "l1c_mtd" / f"{REAL_L1C}_MTD_MSIL1C.xml",
        "manifest.safe": FIXTURES / "manifest" / f"{REAL_L1C}_manifest.safe",
        "MTD_TL.xml": FIXTURES / "tile_mtd" / "L1C_T01LAC_A026481_20200717T221944_N02.09_MTD_TL.xml",
    }

    def seed_for(i: int) -> Path:  # a fresh copy every 50 000 products: ext4 allows 65 000 links
        seed = root / f"seed-{i // 50_000}"
        if not seed.is_dir():
            seed.mkdir(parents=True)
            for name, src in files.items():
                shutil.copyfile(src, seed / name)
        return seed

    l1c = root / "l1c"
    l1c.mkdir(parents=True)
    t0 = datetime(2017, 1, 1)
    tiles = ["17SQV", "17SPV", "18SUJ", "32TNS"]
    for i in range(n):
        sensing = (t0 + timedelta(hours=i)).strftime("%Y%m%dT%H%M%S")
        baseline = "0301" if i % 10 else "0400"  # 10 % gated
        tile = tiles[i % 4]
        product = l1c / f"S2A_MSIL1C_{sensing}_N{baseline}_R{i % 143:03d}_T{tile}_{sensing}.SAFE"
        granule = product / "GRANULE" / f"L1C_T{tile}_A{i:06d}_{sensing}"
        granule.mkdir(parents=True)
        seed = seed_for(i)
        os.link(seed / "MTD_MSIL1C.xml", product / "MTD_MSIL1C.xml")
        os.link(seed / "manifest.safe", product / "manifest.safe")
        os.link(seed / "MTD_TL.xml", granule / "MTD_TL.xml")


def run(n: int) -> float:
    root = Path(tempfile.mkdtemp(prefix="s2kit-bench-plan-"))
    try:
        build(root, n)
        cfg = config_from_dict(
            {
                "paths": {"l1c_dirs": ["l1c"], "l2a_dir": "l2a", "scratch_dir": "scratch", "run_dir": "run"},
                "sen2cor": {"runtime": "native", "install_dir": "/opt/sen2cor"},
            },
            root,
        )
        t = time.perf_counter()
        res = make_plan(cfg, check_resources=False)
        dt = time.perf_counter() - t
        print(f"plan of {n:>7} entries: {dt:6.2f} s  ({dt / n * 1e6:.0f} us/entry)  counts={res.counts}")
        return dt
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    times = [run(n) for n in sizes]
    if len(sizes) == 2:
        print(
            f"scaling: {sizes[1] // sizes[0]}x entries took {times[1] / times[0]:.1f}x time (1.0 per x = linear)"
        )
        print(
            f"target: 100 000 entries < 60 s -> {'met' if sizes[1] == 100_000 and times[1] < 60 else 'see above'}"
        )
