#!/usr/bin/env python3
"""Regenerate the command transcripts shown in the docs (``make transcripts``), or check them.

A fenced block in ``docs/**/*.md`` or ``README.md`` preceded by ``<!-- transcript: NAME -->``
is produced here: the session that makes ``NAME`` builds its fixtures in a temporary folder,
runs each command (the installed ``s2kit`` and a few shell tools, no shell) and records
``$ command`` followed by what a terminal shows (stdout and stderr). Output is normalised so a
re-run gives the same text: the temporary folder becomes ``/tmp/demo``, loopback ports
``PORT``, local job ids ``HOST:PID:TIME``, generation times of test-double L2A names
``YYYYMMDDTHHMMSS``, durations, free space and memory ``N``.

    python scripts/docs/transcripts.py           # rewrite the blocks
    python scripts/docs/transcripts.py --check   # exit 1 and show a diff when a block is stale

The fixtures come from tests/ (real ESA metadata, the fake bucket, synthetic SRTM tiles, the
Sen2Cor TEST DOUBLE): that is why this script imports from tests/. Output made with the test
double is labelled so in the surrounding text; it is never Sen2Cor's.
"""

from __future__ import annotations

import argparse
import difflib
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
FIXTURES = REPO / "data" / "fixtures"
sys.path.insert(0, str(REPO))  # tests.support: the builders the transcripts reuse

SHOWN_TMP = "/tmp/demo"
MARK_RE = re.compile(r"(<!-- transcript: ([a-z0-9-]+) -->\n```[a-z]*\n)(.*?)(^```$)", re.S | re.M)


class Session:
    """Runs commands in one temporary folder and records them as a terminal would show them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.cwd = tmp
        self.exe = str(Path(sys.executable).with_name("s2kit"))
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLURM_", "LSB_", "S2KIT_", "CDSE_")) and k not in ("COLUMNS", "LINES")
        }
        self.env.update({"LC_ALL": "C.UTF-8", "TZ": "UTC", "COLUMNS": "120"})
        self.text: list[str] = []
        self.rc = 0
        self.subs: list[tuple[str, str]] = []
        self.double_names = False  # normalise generation times of L2A names (test-double output)

    def run(self, command: str, *, show: str | None = None, env: dict[str, str] | None = None) -> str:
        """Run *command* (split like a shell, globs expanded in cwd); record ``$ show-or-command``."""
        argv: list[str] = []
        for word in shlex.split(command):
            if any(c in word for c in "*?[") and not word.startswith("-"):
                hits = sorted(glob.glob(word, root_dir=self.cwd))
                argv.extend(hits or [word])
            else:
                argv.append(word)
        if argv[0] == "s2kit":
            argv[0] = self.exe
        elif argv[0] == "python":
            argv[0] = sys.executable
        proc = subprocess.run(
            argv,
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            check=False,
        )
        self.rc = proc.returncode
        self.text.append(f"$ {show or command}\n{proc.stdout}")
        return proc.stdout

    def echo_rc(self) -> None:
        self.text.append(f"$ echo $?\n{self.rc}\n")

    def show(self, line: str) -> None:
        """A line shown as typed but not run (e.g. ``...same command again...``)."""
        self.text.append(line.rstrip("\n") + "\n")

    def take(self) -> str:
        out, self.text = "".join(self.text), []
        return normalise(out, self.tmp, self.subs, self.double_names)


def normalise(text: str, tmp: Path, subs: list[tuple[str, str]], double_names: bool = False) -> str:
    for real in {str(tmp.resolve()), str(tmp)}:
        text = text.replace(real, SHOWN_TMP)
    for old, new in subs:
        text = text.replace(old, new)
    rules = [
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
        (r"\b[\w.-]+:\d+:\d{10,}\b", "HOST:PID:TIME"),
        (r"transferred in \d+(\.\d+)? s", "transferred in T s"),
        (r"[\d.]+ GB free", "N GB free"),
        (r"\d+ MB available", "N MB available"),
        (r"\d+(\.\d+)? s \(\d+ scene", "T s (N scene"),
    ]
    if double_names:  # the test double stamps its L2A with the time it ran
        rules.append((r"(S2[ABC]_MSIL2A_\d{8}T\d{6}_N\d{4}_R\d{3}_T\w{5}_)\d{8}T\d{6}", r"\1YYYYMMDDTHHMMSS"))
    for pattern, repl in rules:
        text = re.sub(pattern, repl, text)
    return text.rstrip("\n") + "\n"


# ----------------------------------------------------------------------------- sessions
def s_files(s: Session) -> dict[str, str]:
    """Golden job scripts of the test suite, shown as they are rendered."""
    return {
        "golden-slurm": (TESTS / "test_slurm" / "test_golden_slurm_script.slurm").read_text(encoding="utf-8"),
        "golden-lsf": (TESTS / "test_lsf" / "test_golden_mb_per_host.lsf").read_text(encoding="utf-8"),
    }


def s_inspect(s: Session) -> dict[str, str]:
    from tests.support.safe_trees import build_l2a_tree

    s.cwd = REPO
    s.run("s2kit inspect --json data/fixtures/tile_mtd/L2A_T07HFE_A019029_20190212T192646_N02.12_MTD_TL.xml")
    out = {"inspect-json": s.take()}
    s.cwd = s.tmp
    tree = build_l2a_tree(s.tmp, "33XWJ")
    s.run(f"s2kit inspect {tree.name}")
    out["inspect-safe"] = s.take()
    s.run("s2kit inspect --json gone.SAFE 'nothing/**/*.SAFE'")  # error records: short lines
    s.echo_rc()
    out["inspect-errors"] = s.take()

    bad = build_l2a_tree(s.tmp, "07HFE")
    next(bad.glob("GRANULE/*/IMG_DATA/R10m/*_B04_10m.jp2")).unlink()
    s.run("s2kit validate --expect-sen2cor 2.10 --consistency *.SAFE")
    s.echo_rc()
    out["validate"] = s.take()
    return out


def s_gipp(s: Session) -> dict[str, str]:
    from tests.support.srtm_fixtures import srtm_folder

    srtm_folder(s.tmp / "dem" / "srtm", ["srtm_21_05"])
    gipps = FIXTURES / "gipp"
    shutil.copy(gipps / "sen2cor-2.9.0_L2A_GIPP_user-edited_ewoc.xml", s.tmp / "ewoc_L2A_GIPP.xml")
    shutil.copy(gipps / "sen2cor-2.8.0_L2A_PB_GIPP_c-core-labs.xml", s.tmp / "old_L2A_PB_GIPP.xml")
    s.show("$ export LSB_DJOB_NUMPROC=4")
    four = {"LSB_DJOB_NUMPROC": "4"}
    s.run("s2kit gipp render --sen2cor 2.9 --out task-0001/cfg --dem-dir dem/srtm", env=four)
    s.run("s2kit gipp render --out x --threads 12", env=four)
    s.run("s2kit gipp render --out x --set UP_Scheme_1C=S2", env=four)
    out = {"gipp-render": s.take()}
    s.run("s2kit gipp check --strict task-0001/cfg/*.xml", env=four)
    s.run("s2kit gipp check ewoc_L2A_GIPP.xml", env=four)
    s.echo_rc()
    s.run("s2kit gipp check --sen2cor 2.9 old_L2A_PB_GIPP.xml", env=four)
    out["gipp-check"] = s.take()
    s.run("s2kit gipp diff ewoc_L2A_GIPP.xml")
    s.run("s2kit gipp diff task-0001/cfg/L2A_GIPP.xml")
    out["gipp-diff"] = s.take()
    return out


def s_dem(s: Session) -> dict[str, str]:
    from tests.support.srtm_fixtures import srtm_folder

    srtm_folder(s.tmp / "srtm-mirror", ["srtm_21_05", "srtm_37_02", "srtm_38_02"], per_tile=600)
    s.run("s2kit dem footprint --tile 17SQV --tile 31UFS --tile 19FDV --tile 01KAB")
    s.run("s2kit dem prepare --tile 31UFS --tile T17SQV --source srtm-mirror --out dem")
    s.run("s2kit dem prepare --tile 31UFS --tile T17SQV --source srtm-mirror --out dem")
    s.run("s2kit dem prepare --tile 19FDV --source srtm-mirror --out dem")
    s.echo_rc()
    s.run("s2kit dem check dem/31UFS dem/17SQV")
    s.run("python -m zipfile -l dem/31UFS/srtm_38_02.zip")
    s.run("s2kit dem prepare --tile 33XWJ --source srtm-mirror --out dem")
    out = {"dem": s.take()}
    out["copdem"] = _copdem(s)
    return out


def _copdem(s: Session) -> str:
    """Copernicus DEM cells for Sen2Cor 2.12: synthetic cells, from a mirror folder and from a
    loopback server in the AWS layout that lacks two cells (answers 404, as the real bucket does
    for cells that do not exist)."""
    from s2kit.dem.copdem import copdem_footprint
    from tests.support.copdem_fixtures import aws_files, mirror_folder
    from tests.support.fake_bucket import loopback_server
    from tests.support.srtm_fixtures import serve_files

    mirror_folder(s.tmp / "copdem-mirror", "cop-dem-glo90", copdem_footprint("31UFS").cells)
    kab = copdem_footprint("01KAB").cells
    gen = loopback_server()
    server = next(gen)
    try:
        serve_files(server, aws_files("cop-dem-glo90", [c for c in kab if c.lon == 179]))
        url = server.url_for("/")
        s.run("s2kit dem footprint --tile 31UFS --tile 01KAB --source cop-dem-glo90")
        s.run("s2kit dem prepare --tile 31UFS --source cop-dem-glo90 --from copdem-mirror --out dem")
        s.run("s2kit dem prepare --tile 31UFS --source cop-dem-glo90 --from copdem-mirror --out dem")
        s.run(f"s2kit dem prepare --tile 01KAB --source cop-dem-glo90 --from {url} --out dem")
        s.run("s2kit dem check dem/cop-dem-glo90/31UFS dem/cop-dem-glo90/01KAB")
        s.run("s2kit dem prepare --tile 17SQV --source cop-dem-glo90 --from copdem-mirror --out dem")
        s.echo_rc()
    finally:
        gen.close()
    return s.take()


def s_batch(s: Session) -> dict[str, str]:
    from tests.support.configs import batch_config, write_toml
    from tests.support.safe_trees import build_l1c_tree

    s.double_names = True
    cfg = batch_config(s.tmp, 4, {2: "crash"}, max_concurrent=1)  # one at a time: a stable order
    build_l1c_tree(s.tmp / "l1c", "05.09")
    write_toml(cfg, s.tmp / "s2kit.toml")
    s.run("s2kit plan --config s2kit.toml")
    s.run("s2kit submit --config s2kit.toml")
    s.run("s2kit status --config s2kit.toml")
    for fault in (s.tmp / "l1c").glob("*/S2KIT_DOUBLE_FAULT"):
        fault.unlink()
    s.run(
        "s2kit resubmit --failed --config s2kit.toml",
        show="s2kit resubmit --failed --config s2kit.toml      # after removing the fault",
    )
    s.run("s2kit plan --config s2kit.toml")
    s.run("s2kit submit --config s2kit.toml")
    s.run("s2kit validate --expect-sen2cor 2.9 --consistency l2a/*.SAFE")
    out = {"batch": s.take()}
    s.run("s2kit report run")
    s.run("s2kit stac run --out stac")
    out["report-stac"] = s.take()
    return out


def s_fetch(s: Session) -> dict[str, str]:
    from tests.support.fake_bucket import demo_bucket, loopback_server

    gen = loopback_server()
    server = next(gen)
    try:
        demo_bucket(server)
        base = server.url_for("/").rstrip("/")
        common = (
            "--tile 17SQV --start 2021-06-01 --end 2021-06-30 --max-cloud 30 --max-baseline 03.01 "
            f"--out L1C --base-url {base}"
        )
        s.run(f"s2kit fetch {common} --dry-run")
        s.run(f"s2kit fetch {common}")
        s.run(f"s2kit fetch {common}", show="s2kit fetch ...same command again...")
        s.run("ls -A L1C L1C/S2A_MSIL1C_20210602T160829_N0301_R140_T17SQV_20210602T190829.SAFE")
        late = "--tile 17SQV --start 2024-09-01 --end 2024-09-30 --out L1C"
        s.run(f"s2kit fetch {late} --base-url {base} --dry-run")
        s.run(f"s2kit fetch --source cdse {late}")
    finally:
        gen.close()
    return {"fetch": s.take()}


def s_esacci(s: Session) -> dict[str, str]:
    from tests.support.esacci_fixtures import write_standin_zip

    write_standin_zip(s.tmp / "standin-ESACCI-LC-L4-ALL-FOR-SEN2COR.zip")
    aux = "Sen2Cor-02.09.00-Linux64/lib/python2.7/site-packages/sen2cor/aux_data"
    (s.tmp / aux).mkdir(parents=True)
    install = f"s2kit aux esacci --source standin-ESACCI-LC-L4-ALL-FOR-SEN2COR.zip --dest {aux}"
    s.run(install)
    s.run(install)
    wb = "ESACCI-LC-L4-WB-Map-150m-P13Y-2000-v4.0.tif"
    s.run(f"rm {aux}/{wb}", show=f"rm .../aux_data/{wb}")
    s.run(f"s2kit aux esacci --check {aux}")
    s.echo_rc()
    return {"esacci": s.take()}


def s_compare(s: Session) -> dict[str, str]:
    from tests.support.l2a_rasters import BANDS_60, SIZE, esa_pb04, local_29, pattern, write_l2a_rasters

    official, local = esa_pb04(s.tmp / "esa"), local_29(s.tmp / "local")
    write_l2a_rasters(official)
    write_l2a_rasters(local, {b: pattern(SIZE, b) + 0.01 for b in BANDS_60})
    s.run(f"s2kit compare local/{local.name} esa/{official.name} --band B02 --band B8A")
    return {"compare": s.take()}


SESSIONS: list[Callable[[Session], dict[str, str]]] = [
    s_files, s_inspect, s_gipp, s_dem, s_esacci, s_batch, s_compare, s_fetch
]  # fmt: skip


@contextmanager
def session() -> Iterator[Session]:
    with tempfile.TemporaryDirectory(prefix="s2kit-transcript-") as tmp:
        yield Session(Path(tmp))


def generate(names: set[str] | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for make in SESSIONS:
        with session() as s:
            produced = make(s)
        out.update(produced)
    return {k: v for k, v in out.items() if names is None or k in names}


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def marked(text: str) -> list[str]:
    return [m[2] for m in MARK_RE.finditer(text)]


def rewrite(text: str, blocks: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m[2]
        if name not in blocks:
            raise SystemExit(f"transcripts: error: no session makes transcript {name!r}")
        return m[1] + blocks[name] + m[4]

    return MARK_RE.sub(one, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 when a transcript is stale")
    args = ap.parse_args(argv)
    files = {p: p.read_text(encoding="utf-8") for p in doc_files()}
    wanted = {n for t in files.values() for n in marked(t)}
    blocks = generate()
    unknown = wanted - blocks.keys()
    if unknown:
        print(f"transcripts: error: no session makes {sorted(unknown)}", file=sys.stderr)
        return 1
    stale = 0
    for path, text in files.items():
        new = rewrite(text, blocks)
        if new == text:
            continue
        rel = path.relative_to(REPO)
        if args.check:
            stale += 1
            sys.stdout.writelines(
                difflib.unified_diff(text.splitlines(True), new.splitlines(True), f"a/{rel}", f"b/{rel}")
            )
        else:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, path)
            print(f"transcripts: rewrote {rel}")
    if stale:
        print(
            f"transcripts: {stale} file(s) out of date: run `make transcripts` and review the diff",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
