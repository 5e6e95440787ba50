"""benchmarks/run.py (issue 17 item 1): the harness's rules, and a smoke run of one benchmark.

No timing is asserted: only that the runner times processes in alternating order, in fresh
folders, and writes the one table as JSON and Markdown.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import harness  # noqa: E402


def test_sides_alternate_and_every_run_gets_fresh_folders(tmp_path: Path) -> None:
    order: list[str] = []

    def side(tag: str):  # type: ignore[no-untyped-def]
        def prepare(k: int) -> list[harness.Command]:
            order.append(f"{tag}{k}")
            folder = harness.fresh(tmp_path / tag)
            assert list(folder.iterdir()) == []  # fresh: what the previous run wrote is gone
            return [(["sh", "-c", "echo x > out"], None, folder)]

        return prepare

    pairs = harness.alternate(side("a"), side("b"), 4)
    assert order == ["a0", "b0", "b1", "a1", "a2", "b2", "b3", "a3"]  # A B, B A, ...
    assert len(pairs.a) == len(pairs.b) == 4 and all(t > 0 for t in pairs.a + pairs.b)


def test_a_failing_command_is_reported_with_its_stderr() -> None:
    with pytest.raises(harness.BenchError, match="exit 3: .*boom"):
        harness.run_timed((["sh", "-c", "echo boom >&2; exit 3"], None, None))


def test_row_ratio_is_the_median_of_per_pair_ratios() -> None:
    pairs = harness.Pairs(a=[2.0, 9.0, 3.0], b=[1.0, 3.0, 3.0])  # ratios 2, 3, 1
    row = harness.row_from_pairs(
        "m | x", pairs, target="≤ 2.0×", met=lambda a, b, r: r <= 2.0, reference_name="ref"
    )
    assert (row.ratio, row.ratio_min, row.ratio_max, row.met) == (2.0, 1.0, 3.0, True)
    assert (row.s2kit, row.reference) == (3.0, 3.0)  # medians of each side
    md = harness.markdown_table([row])
    assert md.splitlines()[0] == "| measure | s2kit | reference | ratio (min–max) | target | met |"
    assert "m \\| x" in md and "2.00× (1.00–3.00)" in md


def test_quick_run_of_one_benchmark_writes_the_table(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only", "metadata", "--runs", "1"]
        + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "results-quick.json").read_text(encoding="utf-8"))
    assert doc["meta"]["quick"] is True and doc["meta"]["runs"] == 1
    rows = doc["rows"]
    kinds = ["product MTD", "tile MTD", "manifest"]
    assert [r["measure"].split(" files")[0].split(" ", 3)[-1] for r in rows[:3]] == kinds  # per kind
    assert rows[3]["measure"].startswith("inspect --json: ")
    for row in rows:  # medians of process times: positive by construction
        assert row["runs"] == 1 and row["s2kit"] > 0 and row["reference"] > 0 and row["met"] in (True, False)
    md = (tmp_path / "results-quick.md").read_text(encoding="utf-8")
    assert "| measure | s2kit | reference | ratio (min–max) | target | met |" in md
    assert "QUICK run" in md and all(r["measure"] in proc.stdout for r in rows)
