"""Benchmark: s2kit fetch throughput vs curl, and listing + planning of 10 000 products.

1. Throughput. One loopback server (the fake bucket of tests/support/fake_bucket.py: pytest-httpserver,
   threaded) serves one product of FILES x SIZE bytes. In the same run, alternating, best of
   ROUNDS: ``s2kit fetch`` (library call, --jobs JOBS, every file's size and MD5 verified,
   atomic rename, manifest) and ``curl --parallel --parallel-max JOBS`` of the same URLs (no
   checks), and curl followed by ``md5sum``. Target: s2kit >= 0.9 x curl.
2. Listing + planning of a tile folder with 10 000 products (JSON API pages of 1000 prefixes,
   duplicates, baselines, dates), then the selection (dedupe, baseline cap); and the same from
   an index.csv.gz of 10 000 rows. Target < 10 s.

Prints numbers and ratios; asserts nothing. ``python benchmarks/bench_fetch.py [--quick]``.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from s2kit.fetch import Selection, fetch, select_products  # noqa: E402
from s2kit.fetch.gcs import GcsSource  # noqa: E402
from s2kit.http import HttpClient  # noqa: E402
from tests.support.fake_bucket import FakeBucket, loopback_server, tile_prefix  # noqa: E402

QUICK = "--quick" in sys.argv
FILES = 8 if QUICK else 12
SIZE = (16 if QUICK else 48) << 20
JOBS = 4
ROUNDS = 2 if QUICK else 3
PRODUCT = "S2A_MSIL1C_20210602T160829_N0301_R140_T17SQV_20210602T190829.SAFE"


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def _serve(conn: Connection, files: int, size: int, per_stream: float | None) -> None:
    """The fake bucket in a process of its own (it must not share a GIL with the client).

    *per_stream*: bytes/s each response is paced to (a link-limited server), None: flat out."""
    gen = loopback_server()
    server = next(gen)
    bucket = FakeBucket().register(server)
    data = {
        f"GRANULE/L1C_T17SQV_A031000_20210602T160829/IMG_DATA/B{i:02d}.jp2": os.urandom(size)
        for i in range(files)
    }
    data["MTD_MSIL1C.xml"] = b"<placeholder/>"
    prefix = bucket.add_product("17SQV", PRODUCT, data)
    if per_stream is not None:
        for rel in data:
            bucket.rec.always[prefix + rel] = ("throttle", (1 << 20, (1 << 20) / per_stream))
    base = server.url_for("/").rstrip("/")
    conn.send(
        (
            base,
            [f"{base}/{bucket.bucket}/{prefix}{rel}" for rel in sorted(data)],
            sum(map(len, data.values())),
        )
    )
    conn.recv()  # until the parent is done
    gen.close()


def throughput(files: int, size: int, per_stream: float | None = None) -> None:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, files, size, per_stream), daemon=True)
    proc.start()
    try:
        base, urls, total = parent.recv()
        sel = Selection(("17SQV",), date(2021, 6, 1), date(2021, 6, 30))
        work = Path(tempfile.mkdtemp(prefix="s2kit-bench-fetch-"))
        best = {"s2kit": 1e9, "curl": 1e9, "curl+md5sum": 1e9}
        try:
            for _ in range(ROUNDS):
                out = work / "s2kit"
                with HttpClient(retries=2, pool_maxsize=JOBS) as client:
                    t = time.perf_counter()
                    report = fetch(GcsSource(client, base), sel, out, jobs=JOBS)
                    best["s2kit"] = min(best["s2kit"], time.perf_counter() - t)
                assert report.ok and report.by("downloaded")
                shutil.rmtree(out)
                cdir = work / "curl"
                cdir.mkdir()
                cmd = [
                    "curl",
                    "-sS",
                    "--fail",
                    "--parallel",
                    "--parallel-immediate",
                    "--parallel-max",
                    str(JOBS),
                ]
                for i, url in enumerate(urls):
                    cmd += ["-o", str(cdir / f"f{i}"), url]
                t = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                dt = time.perf_counter() - t
                best["curl"] = min(best["curl"], dt)
                t = time.perf_counter()
                subprocess.run(
                    ["md5sum", *[str(cdir / f"f{i}") for i in range(len(urls))]],
                    check=True,
                    capture_output=True,
                )
                best["curl+md5sum"] = min(best["curl+md5sum"], dt + time.perf_counter() - t)
                shutil.rmtree(cdir)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        paced = f", each response paced to {per_stream / 1e6:.0f} MB/s" if per_stream else ", flat out"
        print(
            f"throughput: {files} files x {size >> 20} MiB = {total / 1e6:.0f} MB from a loopback server "
            f"(own process{paced}), --jobs {JOBS}, best of {ROUNDS}"
        )
        for name, seconds in best.items():
            print(f"  {name:<12} {seconds:6.2f} s  {mbps(total, seconds):7.0f} MB/s")
        print(
            f"  ratio s2kit/curl = {best['curl'] / best['s2kit']:.2f}  (target >= 0.9; s2kit verifies size + MD5 of every file)"
        )
        print(f"  ratio s2kit/(curl+md5sum) = {best['curl+md5sum'] / best['s2kit']:.2f}")
    finally:
        parent.send("stop")
        proc.join(timeout=10)


def planning(n: int = 10_000) -> None:
    gen = loopback_server()
    server = next(gen)
    try:
        bucket = FakeBucket().register(server)
        t0 = datetime(2017, 1, 1, 16, 8, 29)
        names = []
        for i in range(n):
            sensing = (t0 + timedelta(hours=5 * (i // 2))).strftime("%Y%m%dT%H%M%S")
            baseline = ("0300", "0301")[i % 2] if i % 10 < 6 else ("0400", "0509")[i % 2]
            gen_time = (t0 + timedelta(hours=5 * (i // 2) + 3 + i % 2)).strftime("%Y%m%dT%H%M%S")
            names.append(
                f"S2{'AB'[i % 3 == 0]}_MSIL1C_{sensing}_N{baseline}_R{i % 143:03d}_T17SQV_{gen_time}.SAFE"
            )
        prefix = tile_prefix("17SQV")
        for name in names:
            bucket.put(f"{prefix}{name}/MTD_MSIL1C.xml", b"")
            bucket.put(f"{prefix}{name}_$folder$", b"")
        base = server.url_for("/").rstrip("/")
        sel = Selection(("17SQV",), date(2017, 1, 1), date(2024, 12, 31), max_baseline="04.00")
        with HttpClient(retries=2) as client:
            t = time.perf_counter()
            cands = GcsSource(client, base).candidates(sel)
            t_list = time.perf_counter() - t
            t = time.perf_counter()
            chosen, skipped, _ = select_products(cands, sel)
            t_sel = time.perf_counter() - t
        pages = len(bucket.listing_hits())
        print(
            f"listing + planning of {len(cands)} products: listing {t_list:.2f} s ({pages} pages), "
            f"selection {t_sel:.3f} s, total {t_list + t_sel:.2f} s (target < 10 s); "
            f"{len(chosen)} chosen, {len(skipped)} skipped"
        )
        rows = [bucket.index_row("17SQV", name, 10.0) for name in names[:n]]
        bucket.add_index(rows)
        with HttpClient(retries=2) as client, tempfile.TemporaryDirectory() as tmp:
            src = GcsSource(client, base, index="bucket", state_dir=Path(tmp))
            src.candidates(sel)  # downloads and caches index.csv.gz
            t = time.perf_counter()
            chosen, skipped, _ = select_products(src.candidates(sel), sel)
            dt = time.perf_counter() - t
        print(f"index.csv.gz of {len(rows)} rows: read + select {dt:.2f} s; {len(chosen)} chosen")
    finally:
        gen.close()


if __name__ == "__main__":
    planning()
    throughput(FILES, SIZE)
    # a link-limited server (4 streams x 25 MB/s ~ a 1 Gbit/s uplink): what a login node sees
    throughput(8, 16 << 20, per_stream=25e6)
