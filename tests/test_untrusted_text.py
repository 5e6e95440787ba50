"""Text from products and names: ASCII digits only, and nothing unprintable reaches a terminal.

Issue 12, findings 12 and 13 (hostile review): ``inspect`` printed product metadata text
unfiltered (C1 CSI escapes, U+2028, ``&#10;``); a fullwidth '７' in an L1C name passed the name
check (``\\d`` without ``re.ASCII``) and was planned todo.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2kit import cli
from s2kit.config import load_config
from s2kit.errors import InputError, MetadataError
from s2kit.plan import make_plan
from s2kit.safe import parse_product_name
from s2kit.safe.names import parse_baseline
from s2kit.text import CONTROL_RE
from s2kit.tile_names import TileError, normalize_tile
from tests.support.safe_trees import FIXTURES, build_l1c_tree

NAME = "S2A_MSIL1C_20200717T221941_N0209_R029_T01LAC_20200717T234135.SAFE"
FULLWIDTH_7 = "\uff17"


def test_fullwidth_digit_in_product_name_is_not_a_product_name() -> None:
    parse_product_name(NAME)  # the ASCII name parses
    for i in (len("S2A_MSIL1C_2020071"), len(NAME) - len("4.SAFE")):  # sensing and generation time
        bad = NAME[:i] + FULLWIDTH_7 + NAME[i + 1 :]
        with pytest.raises(InputError):
            parse_product_name(bad)


def test_fullwidth_digit_in_tile_and_baseline_is_refused() -> None:
    with pytest.raises(TileError):
        normalize_tile(FULLWIDTH_7 + "7SQV")
    with pytest.raises(MetadataError):
        parse_baseline("0" + FULLWIDTH_7 + ".01")


def test_fullwidth_digit_l1c_is_not_planned_todo(tmp_path: Path) -> None:
    l1c = tmp_path / "l1c"
    l1c.mkdir()
    build_l1c_tree(l1c, baseline="03.01", generation="2021090" + FULLWIDTH_7 + "T070248")
    cfg_file = tmp_path / "s2kit.toml"
    cfg_file.write_text(
        '[paths]\nl1c_dirs = ["l1c"]\nl2a_dir = "l2a"\nscratch_dir = "scratch"\nrun_dir = "run"\n'
        '[sen2cor]\nruntime = "native"\ninstall_dir = "/opt/sen2cor"\ndem = "none"\n',
        encoding="utf-8",
    )
    plan = make_plan(load_config(cfg_file), check_resources=False)
    assert plan.counts.get("todo", 0) == 0, plan.counts
    assert [e.decision for e in plan.entries] in ([], ["skipped"])


HOSTILE = "Sentinel-2A\x9b31m&#10;line two\u2028third\x85fourth"


@pytest.fixture
def hostile_mtd(tmp_path: Path) -> Path:
    src = FIXTURES / "l1c_mtd" / NAME.replace(".SAFE", "_MTD_MSIL1C.xml")
    text = src.read_text(encoding="utf-8")
    assert "<SPACECRAFT_NAME>Sentinel-2A</SPACECRAFT_NAME>" in text
    dest = tmp_path / "MTD_MSIL1C.xml"
    dest.write_text(
        text.replace("Sentinel-2A</SPACECRAFT_NAME>", HOSTILE + "</SPACECRAFT_NAME>"), encoding="utf-8"
    )
    return dest


def _inspect(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    monkeypatch.setattr("sys.argv", ["s2kit", "inspect", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code in (0, None)
    return capsys.readouterr().out


def test_inspect_prints_product_control_characters_as_printable_text(
    hostile_mtd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _inspect(monkeypatch, capsys, str(hostile_mtd))
    assert not CONTROL_RE.search(out.replace("\n", "")), repr(out)
    (line,) = [ln for ln in out.splitlines() if ln.startswith("spacecraft")]
    assert line.endswith("Sentinel-2A?31m?line two?third?fourth")
    # every row is one key: nothing split the table
    assert all(ln.split(maxsplit=1)[0].isidentifier() for ln in out.splitlines())


def test_inspect_json_keeps_product_text_exact(
    hostile_mtd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _inspect(monkeypatch, capsys, "--json", str(hostile_mtd))
    assert json.loads(out)["spacecraft"] == HOSTILE.replace("&#10;", "\n")
