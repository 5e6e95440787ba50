"""Benchmark: inspect/validate of 1 000 metadata sets, and `s2kit --help` start-up.

Run with `make bench`. Prints numbers and ratios; it is not a test and asserts
nothing about time. Targets (issue 3):
  * inspect + validate of 1 000 product metadata sets < 10 s in total;
  * per-file metadata parse cost within 2x of a bare lxml.etree.parse of the
    same files, measured in the same process (ratio printed);
  * `s2kit --help` wall time < 0.3 s.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from s2kit.safe import inspect_path, read_metadata_file  # noqa: E402
from s2kit.validate import validate_products  # noqa: E402
from tests.support.safe_trees import REAL_L2A_TILES, build_l2a_tree  # noqa: E402

N = 1000


def _best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="s2kit-bench-"))
    try:
        seeds = [build_l2a_tree(work / "seed" / t, t) for t in REAL_L2A_TILES]
        products = []
        for i in range(N):
            dst = work / "set" / f"{i:04d}" / seeds[i % len(seeds)].name
            shutil.copytree(seeds[i % len(seeds)], dst)
            products.append(dst)
        meta_files = [
            f
            for p in products
            for f in (p / "MTD_MSIL2A.xml", *p.glob("GRANULE/*/MTD_TL.xml"), p / "manifest.safe")
        ]
        parser = etree.XMLParser(resolve_entities=False, no_network=True)

        bare = _best(lambda: [etree.parse(str(f), parser) for f in meta_files])
        ours = _best(lambda: [read_metadata_file(f) for f in meta_files])
        inspect_t = _best(lambda: [inspect_path(p) for p in products], repeat=1)
        validate_t = _best(lambda: validate_products(products, consistency=True), repeat=1)

        help_times = []
        exe = shutil.which("s2kit", path=str(Path(sys.executable).parent)) or "s2kit"
        for _ in range(7):
            t0 = time.perf_counter()
            subprocess.run([exe, "--help"], check=True, capture_output=True)
            help_times.append(time.perf_counter() - t0)

        print(f"metadata files parsed          : {len(meta_files)} ({N} products x MTD + MTD_TL + manifest)")
        print(f"bare lxml.etree.parse          : {bare:.3f} s  ({bare / len(meta_files) * 1e6:.0f} us/file)")
        print(f"s2kit read_metadata_file       : {ours:.3f} s  ({ours / len(meta_files) * 1e6:.0f} us/file)")
        print(f"  ratio s2kit / bare parse     : {ours / bare:.2f}x   (target <= 2.0x)")
        print(f"inspect of {N} products         : {inspect_t:.2f} s  (target < 10 s)")
        print(f"validate --consistency of {N}   : {validate_t:.2f} s  (target < 10 s)")
        print(f"  inspect+validate total       : {inspect_t + validate_t:.2f} s")
        print(f"s2kit --help wall time (median): {statistics.median(help_times):.3f} s  (target < 0.3 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
