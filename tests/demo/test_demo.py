"""`make demo` end to end: fetch -> dem prepare -> plan -> submit -> status -> validate -> report
-> stac, offline, with the Sen2Cor TEST DOUBLE, and everything it writes says DEMO."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parent / "run_demo.py"
BANNER = "DEMO — Sen2Cor test double, not Sen2Cor"


def run_demo(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.demo
def test_demo_runs_the_whole_lab_path_offline_and_says_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run_demo(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for command in ("fetch", "dem prepare", "plan", "submit", "status", "validate", "report", "stac"):
        assert any(line.startswith(f"$ s2kit {command} ") for line in lines), command
    assert lines[0] == f"== {BANNER} =="
    assert lines[-1] == f"HTML report: {out / 'run' / 'report.html'}"
    assert "local: 2 done" in proc.stdout and "2 product(s), 2 valid, 0 error(s)" in proc.stdout
    assert "skipped: baseline-gate: 1" in proc.stdout  # the PB 04.00 product meets the 2.9 gate

    html = (out / "run" / "report.html").read_text(encoding="utf-8")
    collection = json.loads((out / "stac" / "collection.json").read_text(encoding="utf-8"))
    assert any(
        link["rel"] == "related" and link["href"].endswith("report.html") for link in collection["links"]
    )
    assert f"<title>{BANNER}" in html and f"<h1>{BANNER}" in html
    assert BANNER in (out / "s2kit.toml").read_text(encoding="utf-8")
    collection = json.loads((out / "stac" / "collection.json").read_text(encoding="utf-8"))
    assert collection["title"].startswith(BANNER) and collection["description"].startswith(BANNER)
    items = [json.loads(p.read_text(encoding="utf-8")) for p in (out / "stac").glob("*/*.json")]
    assert len(items) == 2 and all(i["properties"]["title"].startswith(BANNER) for i in items)
    assert all(BANNER in i["properties"]["processing:software"]["Sen2Cor"] for i in items)
    assert len(list((out / "l2a").glob("*.SAFE"))) == 2


@pytest.mark.demo
def test_demo_reruns_into_its_own_folder_but_never_empties_a_foreign_one(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert run_demo(out).returncode == 0
    again = run_demo(out)  # a re-run starts afresh in its own folder
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(list((out / "l2a").glob("*.SAFE"))) == 2

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep")
    refused = run_demo(foreign)
    assert refused.returncode == 1
    assert "made by make demo" in refused.stderr and (foreign / "precious.txt").read_text() == "keep"


def test_demo_folder_that_is_a_symlink_is_refused_in_one_line(tmp_path: Path) -> None:
    """Finding 15: runs/demo as a symlink gave a traceback from fresh_folder (rmtree on a link)."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / ".s2kit-demo").write_text("made by an earlier demo\n")  # a demo folder, linked
    (target / "precious.txt").write_text("keep")
    link = tmp_path / "demo"
    link.symlink_to(target)
    proc = run_demo(link)
    assert proc.returncode == 1
    assert proc.stderr.startswith("demo: error: expected a folder for the demo at ")
    assert "found a symlink" in proc.stderr and proc.stderr.count("\n") == 1  # no traceback
    assert link.is_symlink() and sorted(p.name for p in target.iterdir()) == [".s2kit-demo", "precious.txt"]


def test_second_demo_in_a_folder_another_demo_holds_refuses(tmp_path: Path) -> None:
    """Finding 15: two concurrent demos in one folder clobbered each other. A demo holds an flock on
    OUT/.s2kit-demo.lock for its whole run; here the test holds it, as a running demo would."""
    import fcntl
    import os

    out = tmp_path / "demo"
    out.mkdir()
    (out / ".s2kit-demo").write_text("made by the first demo\n")
    (out / "l2a").mkdir()
    fd = os.open(out / ".s2kit-demo.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run_demo(out)
    finally:
        os.close(fd)
    assert proc.returncode == 1
    assert "expected no other make demo running in" in proc.stderr and proc.stderr.count("\n") == 1
    assert (out / "l2a").is_dir()  # the running demo's files are untouched
