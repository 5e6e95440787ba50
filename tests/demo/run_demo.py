#!/usr/bin/env python3
"""``make demo``: the whole s2kit lab path on this machine, offline, in well under a minute.

DEMO — Sen2Cor test double, not Sen2Cor. Every L2A this writes is made by the TEST DOUBLE of
``L2A_Process`` in tests/sen2cor_double (placeholder rasters, metadata derived from real ESA
files); never use it as data. That is why this driver lives under tests/.

What runs, each as the real ``s2kit`` command in a subprocess:

1. ``s2kit fetch``        L1C of tile 17SQV, June 2021, from a fake Google bucket on loopback
                          (tests/support/fake_bucket.py: trees from the REAL SAFE listings in
                          data/fixtures/listings, image bytes are stand-ins);
2. ``s2kit dem prepare``  the merged-DEM set of 17SQV from synthetic CGIAR-shaped SRTM tiles
                          (tests/support/srtm_fixtures.py), read from a folder;
3. ``s2kit plan`` + ``s2kit submit`` with the local scheduler and ``runtime = "native"``
   pointing at the test double; ``s2kit status``;
4. ``s2kit validate --consistency``, ``s2kit report``, ``s2kit stac``.

Everything goes into a fresh folder (default ``runs/demo/``, gitignored), emptied at the start
of each run; a folder not made by this script is never emptied, a symlink is refused, and a
second demo started while one runs in the same folder refuses (``.s2kit-demo.lock``, flock). It ends by printing the path of
the HTML report. Exit status: 0 when every step did what it should, 1 otherwise.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
sys.path.insert(0, str(REPO))  # tests.support: the fake servers and SRTM builders

from s2kit.tiles import tile_geometry  # noqa: E402
from tests.support.fake_bucket import FakeBucket, derive_l1c, loopback_server  # noqa: E402
from tests.support.srtm_fixtures import srtm_folder  # noqa: E402

BANNER = "DEMO — Sen2Cor test double, not Sen2Cor"
MARKER = ".s2kit-demo"
LOCK = ".s2kit-demo.lock"  # held (flock) by the running demo: a second one refuses
DOUBLE = TESTS / "sen2cor_double"
TILE = "17SQV"
SRTM_TILES = ("srtm_21_05",)  # what 17SQV needs (s2kit dem footprint 17SQV)

CONFIG = """\
# {banner}
# Written by tests/demo/run_demo.py (make demo). The L2A this batch makes come from the
# Sen2Cor TEST DOUBLE in tests/sen2cor_double: placeholder rasters, NOT Sen2Cor output.

[paths]
l1c_dirs    = ["l1c"]
l2a_dir     = "l2a"
dem_dir     = "dem"
scratch_dir = "scratch"
run_dir     = "run"

[sen2cor]
version         = "2.9"
runtime         = "native"
install_dir     = {double}   # {banner}
resolution      = 60
baseline        = "03.00"
timeout_minutes = 5
retries         = 0

[scheduler]
kind               = "local"
cores_per_task     = 1
memory_per_task_gb = 0.25
walltime           = "00:10"
max_concurrent     = 2

[select]
tiles = ["{tile}"]
start = 2021-06-01
end   = 2021-06-30
"""


# (sensing, baseline, cloud %, spacecraft): the demo bucket of tests/support/fake_bucket.py (a datatake
# reprocessed N0300 -> N0301, a cloudy one, a PB 04.00 one the planner's 2.9 gate skips)
PRODUCTS = (
    ("20210602T160829", "0300", 12.5, "S2A"),
    ("20210602T160829", "0301", 12.5, "S2A"),
    ("20210607T160831", "0301", 55.0, "S2B"),
    ("20210612T160829", "0400", 2.0, "S2A"),
    ("20210617T160829", "0301", 21.0, "S2B"),
)
ORBIT = 140


class DemoFailed(Exception):
    pass


def _iso(compact: str) -> str:
    return f"{compact[0:4]}-{compact[4:6]}-{compact[6:8]}T{compact[9:11]}:{compact[11:13]}:{compact[13:15]}"


def consistent_l1c(
    sensing: str, baseline: str, cloud: float, spacecraft: str
) -> tuple[str, dict[str, bytes]]:
    """A product of tests/support/fake_bucket.py's derive_l1c whose METADATA also says what its name says.

    derive_l1c renames files only; its MTD_MSIL1C.xml / MTD_TL.xml keep the real T01LAC product's
    date, orbit, baseline and UTM zone, so Sen2Cor (and the test double) would name the L2A after
    T01LAC. Here the sensing/generation times, orbit, baseline, spacecraft, tile, EPSG code and
    upper-left corner are set to those of the name (the rest stays the real ESA text).
    """
    d = derive_l1c(
        tile=TILE, sensing=sensing, baseline=baseline, cloud=cloud, spacecraft=spacecraft, orbit=ORBIT
    )
    gen = d.name.split("_")[6].removesuffix(".SAFE")
    geo = tile_geometry(TILE)
    pb = f"{baseline[:2]}.{baseline[2:]}"
    subs = [
        ("2020-07-17T22:19:41", _iso(sensing)),
        ("2020-07-17T22:20:29", _iso(sensing)),
        ("2020-07-17T23:41:35", _iso(gen)),
        ("20200717T234135", gen),
        ("20200717T221941", sensing),
        ("20200717T221944", sensing),
        ("T01LAC", f"T{TILE}"),
        ("N02.09", f"N{pb}"),
        ("<PROCESSING_BASELINE>02.09<", f"<PROCESSING_BASELINE>{pb}<"),
        ("<SENSING_ORBIT_NUMBER>29<", f"<SENSING_ORBIT_NUMBER>{ORBIT}<"),
        ("EPSG:32701", f"EPSG:{geo.epsg}"),
        ("UTM zone 01S", f"UTM zone {geo.zone:02d}{geo.hemisphere}"),
        ("<ULX>99960<", f"<ULX>{geo.utm_bounds[0]:.0f}<"),
        ("<ULY>8300020<", f"<ULY>{geo.utm_bounds[3]:.0f}<"),
    ]
    if spacecraft != "S2A":
        subs += [("Sentinel-2A", f"Sentinel-2{spacecraft[-1]}"), ("S2A_", f"{spacecraft}_")]
    files = dict(d.files)
    for rel, data in d.files.items():
        if rel == "MTD_MSIL1C.xml" or rel.endswith("/MTD_TL.xml"):
            text = data.decode("utf-8")
            for old, new in subs:
                text = text.replace(old, new)
            files[rel] = text.encode("utf-8")
    return d.name, files


def say(text: str = "") -> None:
    print(text, flush=True)


def fresh_folder(out: Path) -> int:
    """Empty *out* for a new run, but only if this script made it (or it is empty), and only while
    no other demo runs there: returns the fd of the held lock ``out/.s2kit-demo.lock`` (kept open
    for the whole run; the kernel drops the lock when this process ends)."""
    if out.is_symlink():
        raise DemoFailed(
            f"expected a folder for the demo at {out}, found a symlink (to {os.readlink(out)}); "
            "pass --out NEW_FOLDER or remove the link"
        )
    if out.exists():
        if not out.is_dir():
            raise DemoFailed(f"expected a folder for the demo at {out}, found a file")
        others = [p for p in out.iterdir() if p.name != LOCK]
        if others and not (out / MARKER).is_file():
            raise DemoFailed(
                f"expected {out} to be a folder made by make demo (with {MARKER}), found other files; "
                "pass --out NEW_FOLDER"
            )
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise DemoFailed(
            f"expected no other make demo running in {out}, found one (it holds {out / LOCK}); "
            "wait for it or pass --out NEW_FOLDER"
        ) from None
    for child in out.iterdir():
        if child.name == LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    (out / MARKER).write_text(f"{BANNER}\nmade by tests/demo/run_demo.py; emptied by the next run\n")
    return fd


def s2kit_exe() -> str:
    exe = Path(sys.executable).with_name("s2kit")
    if exe.is_file():
        return str(exe)
    found = shutil.which("s2kit")
    if not found:
        raise DemoFailed(
            "expected the s2kit command next to this Python or on PATH, found none: run make install"
        )
    return found


class Runner:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.exe = s2kit_exe()
        # the demo must not inherit a scheduler job's environment (Nr_Threads etc.)
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LSB_", "S2KIT_DOUBLE"))
        }
        self.step = 0

    def run(self, title: str, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        self.step += 1
        say()
        say(f"== [{BANNER}] step {self.step}: {title}")
        say("$ s2kit " + " ".join(args))
        proc = subprocess.run(
            [self.exe, *args],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        for line in proc.stdout.splitlines():
            say(f"  {line}")
        if proc.returncode not in ok:
            raise DemoFailed(f"step {self.step} ({title}): s2kit {args[0]} exited {proc.returncode}")
        return proc


def mark_report(html: Path) -> None:
    """Put the DEMO banner into the report's <title> and heading (report.py has no title option)."""
    text = html.read_text(encoding="utf-8")
    marked = text.replace("<title>s2kit report:", f"<title>{BANNER} — s2kit report:", 1).replace(
        "<h1>s2kit report:", f"<h1>{BANNER} — s2kit report:", 1
    )
    if marked == text:
        raise DemoFailed(f"expected the report title in {html}, found none to mark as DEMO")
    tmp = html.with_name(html.name + ".demo-tmp")
    tmp.write_text(marked, encoding="utf-8")
    os.replace(tmp, html)


def mark_stac(folder: Path) -> int:
    """Title every STAC document written as DEMO (``title`` is a STAC common field)."""
    count = 0
    for path in sorted(folder.rglob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("type") == "Collection":
            doc["title"] = f"{BANNER} — {doc.get('title', '')}".rstrip(" —")
            doc["description"] = (
                f"{BANNER}. These L2A were made by the Sen2Cor TEST DOUBLE (tests/sen2cor_double): "
                f"placeholder rasters, not Sen2Cor output. [s2kit's text: {doc.get('description', '')}]"
            )
        elif doc.get("type") == "Feature":
            props = doc.setdefault("properties", {})
            props["title"] = f"{BANNER}: {doc.get('id', '')}"
            software = props.get("processing:software")
            if isinstance(software, dict) and "Sen2Cor" in software:
                software["Sen2Cor"] = f"{software['Sen2Cor']} ({BANNER})"
        else:
            continue
        tmp = path.with_name(path.name + ".demo-tmp")
        tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        count += 1
    return count


def run_demo(out: Path) -> Path:
    lock = fresh_folder(out)
    try:
        return _run_demo(out)
    finally:
        os.close(lock)  # drops the flock


def _run_demo(out: Path) -> Path:
    (out / "README.txt").write_text(
        f"{BANNER}\n\nEverything in this folder was made by `make demo` (tests/demo/run_demo.py).\n"
        "l2a/ holds products of the Sen2Cor TEST DOUBLE (placeholder rasters): not L2A data.\n",
        encoding="utf-8",
    )
    config = out / "s2kit.toml"
    config.write_text(
        CONFIG.format(banner=BANNER, double=json.dumps(str(DOUBLE)), tile=TILE), encoding="utf-8"
    )
    srtm_folder(out / "srtm-source", list(SRTM_TILES), per_tile=600)
    run = Runner(out)

    server_gen = loopback_server()
    server = next(server_gen)
    try:
        bucket = FakeBucket().register(server)
        for product in PRODUCTS:
            bucket.add_product(TILE, *consistent_l1c(*product))
        base = server.url_for("/").rstrip("/")
        say(
            f"[{BANNER}] fake Google bucket on loopback: {base} (tests/support/fake_bucket.py, real SAFE listings)"
        )
        run.run(
            "L1C from the (fake, loopback) public bucket",
            "fetch", "--tile", TILE, "--start", "2021-06-01", "--end", "2021-06-30",
            "--max-cloud", "30", "--out", "l1c", "--base-url", base,
        )  # fmt: skip
    finally:
        server_gen.close()

    run.run("DEM set of the tile (synthetic SRTM tiles)", "dem", "prepare", "--tile", TILE,
            "--source", "srtm-source", "--out", "dem")  # fmt: skip
    run.run("plan the batch", "plan", "--config", "s2kit.toml")
    run.run(
        "submit (local scheduler, Sen2Cor TEST DOUBLE as runtime native)", "submit", "--config", "s2kit.toml"
    )
    run.run("status", "status", "--config", "s2kit.toml")
    products = sorted(p.name for p in (out / "l2a").glob("*.SAFE"))
    if not products:
        raise DemoFailed(f"expected L2A products in {out / 'l2a'}, found none")
    run.run("validate the products as a set", "validate", "--expect-sen2cor", "2.9", "--consistency",
            *(f"l2a/{p}" for p in products))  # fmt: skip
    # the report goes into the run dir, where the STAC Collection links it from
    run.run("HTML report", "report", "run", "--out", "run/report.html")
    run.run("STAC catalogue, validated offline", "stac", "run", "--out", "stac")
    html = out / "run" / "report.html"
    mark_report(html)
    mark_stac(out / "stac")
    return html


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=f"make demo: the s2kit lab path offline ({BANNER}).")
    ap.add_argument(
        "--out", type=Path, default=REPO / "runs" / "demo", help="demo folder (default runs/demo)"
    )
    args = ap.parse_args(argv)
    out = args.out.absolute()
    say(f"== {BANNER} ==")
    say("The L2A made here come from tests/sen2cor_double (placeholder rasters, NOT Sen2Cor).")
    t0 = time.monotonic()
    try:
        html = run_demo(out)
    except DemoFailed as exc:
        print(f"demo: error: {exc} ({BANNER})", file=sys.stderr)
        return 1
    except OSError as exc:  # a folder the demo cannot write or empty: one line, no traceback
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"demo: error: {exc.strerror or exc}{where} ({BANNER})", file=sys.stderr)
        return 1
    say()
    say(f"== {BANNER}: the whole path ran in {time.monotonic() - t0:.1f} s ==")
    say(f"demo folder: {out}")
    say(f"HTML report: {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
