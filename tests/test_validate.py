"""`s2kit validate` on synthetic L2A trees built from real ESA metadata.

Each negative copy is named by its defect; the report must carry the matching
stable finding code (and only the expected ones).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from s2kit.validate import validate_product, validate_products
from tests.support.safe_trees import FIXTURES, REAL_L2A_TILES, build_l2a_tree, zip_tree


@pytest.mark.parametrize("tile", sorted(REAL_L2A_TILES))
def test_real_products_are_valid(tmp_path: Path, tile: str) -> None:
    root = build_l2a_tree(tmp_path, tile)
    report = validate_product(root)
    assert report.valid, report.findings
    assert report.findings == []
    assert report.processing_baseline == REAL_L2A_TILES[tile]
    zreport = validate_product(zip_tree(root))
    assert zreport.valid and zreport.findings == []


def _first(root: Path, pattern: str) -> Path:
    hits = sorted(root.glob(pattern))
    assert hits, pattern
    return hits[0]


def _edit_mtd(root: Path, fn: Callable[[str], str]) -> None:
    mtd = root / "MTD_MSIL2A.xml"
    text = mtd.read_text(encoding="utf-8")
    new = fn(text)
    assert new != text
    mtd.write_text(new, encoding="utf-8")


def _drop_offsets(text: str) -> str:
    return re.sub(r"<BOA_ADD_OFFSET_VALUES_LIST>.*?</BOA_ADD_OFFSET_VALUES_LIST>", "", text, flags=re.S)


def _add_offsets(text: str) -> str:
    offsets = "".join(f'<BOA_ADD_OFFSET band_id="{i}">-1000</BOA_ADD_OFFSET>' for i in range(13))
    return text.replace(
        "</QUANTIFICATION_VALUES_LIST>",
        f"</QUANTIFICATION_VALUES_LIST><BOA_ADD_OFFSET_VALUES_LIST>{offsets}</BOA_ADD_OFFSET_VALUES_LIST>",
    )


# defect name -> (tile, mutation, expected codes)
DEFECTS: dict[str, tuple[str, Callable[[Path], None], list[str]]] = {
    "missing-band-B04_10m": (
        "07HFE",
        lambda r: _first(r, "GRANULE/*/IMG_DATA/R10m/*_B04_10m.jp2").unlink(),
        ["missing-band"],
    ),
    "empty-band-SCL_20m": (
        "33XWJ",
        lambda r: _first(r, "GRANULE/*/IMG_DATA/R20m/*_SCL_20m.jp2").write_bytes(b""),
        ["missing-band"],
    ),
    "no-R60m-folder": (
        "01KAB",
        lambda r: shutil.rmtree(_first(r, "GRANULE/*/IMG_DATA/R60m")),
        ["missing-band"],
    ),
    "missing-qi-folder": (
        "07HFE",
        lambda r: shutil.rmtree(_first(r, "GRANULE/*/QI_DATA")),
        ["missing-qi"],
    ),
    "missing-qi-cldprb20": (
        "33TVM",
        lambda r: _first(r, "GRANULE/*/QI_DATA/MSK_CLDPRB_20m.jp2").unlink(),
        ["missing-qi"],
    ),
    "missing-mtd": ("07HFE", lambda r: (r / "MTD_MSIL2A.xml").unlink(), ["missing-metadata"]),
    "missing-tile-mtd": (
        "07HFE",
        lambda r: _first(r, "GRANULE/*/MTD_TL.xml").unlink(),
        ["missing-metadata"],
    ),
    "truncated-mtd": (
        "07HFE",
        lambda r: (r / "MTD_MSIL2A.xml").write_bytes((r / "MTD_MSIL2A.xml").read_bytes()[:5000]),
        ["unparseable-metadata"],
    ),
    "pb04-without-offsets": ("33XWJ", lambda r: _edit_mtd(r, _drop_offsets), ["offset-mismatch"]),
    "pb0212-with-offsets": ("07HFE", lambda r: _edit_mtd(r, _add_offsets), ["offset-mismatch"]),
    "baseline-99.99": (
        "07HFE",
        lambda r: _edit_mtd(
            r, lambda t: t.replace("<PROCESSING_BASELINE>02.12<", "<PROCESSING_BASELINE>99.99<")
        ),
        ["offset-mismatch"],
    ),
    "no-manifest": ("07HFE", lambda r: (r / "manifest.safe").unlink(), ["missing-manifest"]),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_negative_copies(tmp_path: Path, defect: str) -> None:
    tile, mutate, codes = DEFECTS[defect]
    root = build_l2a_tree(tmp_path, tile, name=f"{defect}.SAFE")
    mutate(root)
    report = validate_product(root)
    assert sorted({f.code for f in report.findings}) == codes, report.findings
    assert report.valid == (codes == ["missing-manifest"])  # the only warning-level defect


def test_defect_matrix_snapshot(tmp_path: Path, data_regression) -> None:  # type: ignore[no-untyped-def]
    """All findings (code, severity, message with tmp paths removed) of the matrix."""
    out = {}
    for defect, (tile, mutate, _codes) in sorted(DEFECTS.items()):
        root = build_l2a_tree(tmp_path / defect, tile, name=f"{defect}.SAFE")
        mutate(root)
        out[defect] = [
            {
                "code": f.code,
                "severity": f.severity,
                "message": f.message.replace(str(tmp_path), "<tmp>"),
            }
            for f in validate_product(root).findings
        ]
    data_regression.check(out)


def test_99_99_hint_names_the_gipp(tmp_path: Path) -> None:
    root = build_l2a_tree(tmp_path, "07HFE")
    DEFECTS["baseline-99.99"][1](root)
    (finding,) = validate_product(root).findings
    assert "L2A_PB_GIPP.xml" in finding.message


def test_missing_band_inside_zip(tmp_path: Path) -> None:
    root = build_l2a_tree(tmp_path / "src", "33XWJ")
    good = zip_tree(root)
    bad = tmp_path / "missing-B8A_60m.SAFE.zip"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            if not info.filename.endswith("_B8A_60m.jp2"):
                zout.writestr(info, zin.read(info))
    report = validate_product(bad)
    assert [f.code for f in report.findings] == ["missing-band"]
    assert "_B8A_60m.jp2" in report.findings[0].message


def test_l1c_is_not_l2a(tmp_path: Path) -> None:
    root = tmp_path / "S2B_MSIL1C_20230601T094549_N0509_R079_T34UDD_20230601T115221.SAFE"
    root.mkdir()
    shutil.copyfile(next((FIXTURES / "l1c_mtd").glob("*N0509*")), root / "MTD_MSIL1C.xml")
    assert [f.code for f in validate_product(root).findings] == ["not-l2a"]


def _local_29(tmp_path: Path, tile: str = "07HFE", name: str | None = None) -> Path:
    """A tree whose MTD says Sen2Cor 2.9 the way Sen2Cor 2.9 writes it (version '0290').

    DERIVED from the real PB 02.12 product: only the GIP_L2ACSC version attribute changes.
    """
    root = build_l2a_tree(tmp_path, tile, name=name)
    _edit_mtd(
        root,
        lambda t: t.replace('type="GIP_L2ACSC" version="0280"', 'type="GIP_L2ACSC" version="0290"'),
    )
    return root


def test_expect_sen2cor(tmp_path: Path) -> None:
    esa = build_l2a_tree(tmp_path, "07HFE")  # Sen2Cor 2.8.0 per its metadata
    local = _local_29(tmp_path, name="local29.SAFE")
    assert [f.code for f in validate_product(esa, expect_sen2cor="2.9").findings] == [
        "sen2cor-version-mismatch"
    ]
    assert validate_product(local, expect_sen2cor="2.9").findings == []
    assert validate_product(local, expect_sen2cor="2.9.0").findings == []
    assert [f.code for f in validate_product(local, expect_sen2cor="2.10").findings] == [
        "sen2cor-version-mismatch"
    ]


def test_real_pb_0511_product_validates_as_sen2cor_212(tmp_path: Path) -> None:
    """The real ESA L2A of PB 05.11 (GIP_L2ACSC version 21202: Sen2Cor 2.12.02) is a 2.12
    product: --expect-sen2cor 2.12 passes, with the 2.10+ band set (B01 at 20 m) and the offsets."""
    root = build_l2a_tree(tmp_path, "33TVM")
    report = validate_product(root, expect_sen2cor="2.12")
    assert report.sen2cor_version == "02.12.02"
    assert report.valid and report.findings == []
    assert validate_product(root, expect_sen2cor="2.12.02").findings == []
    assert [f.code for f in validate_product(root, expect_sen2cor="2.11").findings] == [
        "sen2cor-version-mismatch"
    ]
    assert list(root.glob("GRANULE/*/IMG_DATA/R20m/*_B01_20m.jp2"))


def test_consistency(tmp_path: Path) -> None:
    same = [_local_29(tmp_path / str(i), name=f"p{i}.SAFE") for i in range(3)]
    assert validate_products(same, expect_sen2cor="2.9", consistency=True).set_findings == []
    mixed = [*same, build_l2a_tree(tmp_path / "x", "33XWJ")]
    report = validate_products(mixed, consistency=True)
    assert sorted(f.code for f in report.set_findings) == [
        "mixed-baseline",
        "mixed-sen2cor-version",
    ]
    assert "02.12: 3" in report.set_findings[0].message and "04.00: 1" in report.set_findings[0].message
    assert validate_products(mixed, consistency=False).set_findings == []


def test_two_l2a_of_one_datatake_and_tile_are_a_duplicate_product(tmp_path: Path) -> None:
    real = build_l2a_tree(tmp_path / "a", "07HFE")
    stem = real.name.removesuffix(".SAFE")
    head, gen = stem.rsplit("_", 1)
    again = build_l2a_tree(tmp_path / "b", "07HFE", name=f"{head}_{gen[:-1]}{(int(gen[-1]) + 1) % 10}.SAFE")
    other = build_l2a_tree(tmp_path / "c", "33XWJ")
    report = validate_products([real, again, other], consistency=True)
    dups = [f for f in report.set_findings if f.code == "duplicate-product"]
    assert len(dups) == 1 and dups[0].severity == "error"
    assert (
        real.name.removesuffix(".SAFE") in dups[0].message
        and again.name.removesuffix(".SAFE") in dups[0].message
    )
    assert other.name.removesuffix(".SAFE") not in dups[0].message
    assert not report.valid
    assert not any(
        f.code == "duplicate-product" for f in validate_products([real, other], consistency=True).set_findings
    )
    assert not any(f.code == "duplicate-product" for f in validate_products([real, again]).set_findings)


# ----------------------------------------------------------------------------- CLI
def _run(exe: str, *args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_cli_exit_codes_and_json(s2kit_exe: str, tmp_path: Path, hostile_dir: Path) -> None:
    good = _local_29(hostile_dir, name="good.SAFE")
    res = _run(s2kit_exe, "validate", good, "--expect-sen2cor", "2.9")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK" in res.stdout

    bad = build_l2a_tree(hostile_dir, "07HFE", name="bad.SAFE")
    _first(bad, "GRANULE/*/IMG_DATA/R10m/*_B04_10m.jp2").unlink()
    out = hostile_dir / "report dir" / "report.json"
    res = _run(s2kit_exe, "validate", good, bad, "--consistency", "--json", out)
    assert res.returncode == 1
    doc = json.loads(out.read_text())
    assert doc["valid"] is False and doc["summary"]["products"] == 2
    codes = {f["code"] for p in doc["products"] for f in p["findings"]} | {
        f["code"] for f in doc["set_findings"]
    }
    assert codes == {"missing-band", "mixed-sen2cor-version"}

    res = _run(s2kit_exe, "validate", good, "--json", "-")
    assert res.returncode == 0 and json.loads(res.stdout)["valid"] is True


def test_cli_usage_errors_exit_2(s2kit_exe: str, tmp_path: Path) -> None:
    good = build_l2a_tree(tmp_path, "07HFE")
    res = _run(s2kit_exe, "validate", good, "--expect-sen2cor", "two.nine")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "s2kit: error: expected a Sen2Cor version like 2.9 or 2.10.01, found 'two.nine'"
    ]
    # a missing product is no usage error since validate streams many inputs (issue 17): it is
    # the product's missing-metadata finding, and the other products are still validated
    res = _run(s2kit_exe, "validate", tmp_path / "nope.SAFE", good)
    assert res.returncode == 1 and res.stderr == ""
    assert "missing-metadata: expected a file or folder, found nothing there" in res.stdout.splitlines()[1]


def test_cli_validate_of_many_products_streams_json_lines_then_the_summary(
    s2kit_exe: str, tmp_path: Path
) -> None:
    """Issue 17 item 2: --jsonl (was: no such option) and '-' (was: a missing path, exit 2)."""
    products = [build_l2a_tree(tmp_path, tile) for tile in REAL_L2A_TILES]
    missing = tmp_path / "gone.SAFE"
    listing = "".join(f"{p}\n" for p in [products[1], missing, products[0]])
    res = subprocess.run(
        [s2kit_exe, "validate", "--jsonl", "--consistency", "-", f"{tmp_path}/*_T33*.SAFE"],
        input=listing,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1 and res.stderr == ""
    *lines, summary = [json.loads(line) for line in res.stdout.splitlines()]
    t33 = sorted(str(p) for p in products if "_T33" in p.name and p != products[1])
    assert [r["path"] for r in lines] == [str(products[1]), str(missing), str(products[0]), *t33]
    assert lines[0] == validate_product(products[1]).to_dict()  # the library's report, one line
    assert [f["code"] for f in lines[1]["findings"]] == ["missing-metadata"]
    whole = validate_products([products[1], missing, products[0], *t33], consistency=True).to_dict()
    assert summary == {k: whole[k] for k in ("summary", "set_findings", "valid")}
    assert {f["code"] for f in summary["set_findings"]} == {"mixed-baseline", "mixed-sen2cor-version"}


def test_cli_validate_text_is_the_same_streamed(s2kit_exe: str, tmp_path: Path) -> None:
    from s2kit.validate import format_report

    products = [build_l2a_tree(tmp_path, tile) for tile in REAL_L2A_TILES]
    res = _run(s2kit_exe, "validate", "--consistency", *products)
    assert res.stdout == format_report(validate_products(products, consistency=True)) + "\n"
    both = _run(s2kit_exe, "validate", "--jsonl", "--json", tmp_path / "r.json", products[0])
    assert both.returncode == 2 and "expected --json FILE or --jsonl, found both" in both.stderr


# ----------------------------------------------------------------------------- size caps (issue 12 item 13)
@pytest.mark.parametrize("member", ["MTD_MSIL2A.xml", "GRANULE/*/MTD_TL.xml", "manifest.safe"])
def test_oversized_metadata_is_an_unparseable_metadata_finding(tmp_path: Path, member: str) -> None:
    """A 3 GiB (sparse) metadata file in an L2A: one finding naming the cap, nothing read."""
    root = build_l2a_tree(tmp_path)
    target = _first(root, member)
    with open(target, "wb") as fh:
        fh.truncate(3 * 1024**3)
    report = validate_product(root)
    (finding,) = report.findings
    assert finding.code == "unparseable-metadata" and finding.severity == "error"
    assert finding.message == "expected metadata ≤ 16 MiB, found ≥ 3221225472 bytes (3.0 GiB)"
    assert finding.path == str(target)


def test_metadata_symlinked_to_a_device_is_refused_not_read(tmp_path: Path) -> None:
    """MTD_MSIL2A.xml -> /dev/zero (stat size 0, endless content) was read until memory ran out."""
    root = build_l2a_tree(tmp_path)
    (root / "MTD_MSIL2A.xml").unlink()
    (root / "MTD_MSIL2A.xml").symlink_to("/dev/zero")
    (finding,) = validate_product(root).findings
    assert finding.code == "unparseable-metadata"
    assert finding.message == "expected a regular metadata file, found a FIFO, socket or device"


def test_validate_of_an_empty_stdin_list_is_not_valid() -> None:
    """`find L2A -name '*.SAFE' | s2kit validate -` over an empty (or mistyped) folder said
    "0 product(s), 0 valid" and exit 0, and --jsonl "valid": true (review1)."""
    from typer.testing import CliRunner

    from s2kit.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["validate", "-"], input=b"")
    assert res.exit_code == 1 and "expected at least one path in the list on stdin" in res.stdout
    res = runner.invoke(app, ["validate", "--jsonl", "-"], input=b"")
    last = json.loads(res.stdout.splitlines()[-1])
    assert res.exit_code == 1 and last["valid"] is False


def test_empty_expect_sen2cor_is_refused_not_silently_ignored(tmp_path: Path) -> None:
    """`--expect-sen2cor "$SEN2COR"` with the variable unset passed a product of any Sen2Cor
    version (exit 0): the empty value turned the check off (review1)."""
    from typer.testing import CliRunner

    from s2kit.cli import app
    from s2kit.errors import UsageError

    root = build_l2a_tree(tmp_path, "33TVM")  # a valid product of Sen2Cor 02.12.02
    res = CliRunner().invoke(app, ["validate", "--expect-sen2cor", "", str(root)])
    assert res.exit_code == 2 and "expected a Sen2Cor version like 2.9" in res.stderr
    with pytest.raises(UsageError):
        validate_products([root], expect_sen2cor="")
    with pytest.raises(UsageError):
        validate_product(root, expect_sen2cor="")


@pytest.mark.parametrize("version", ["2.\u00b2", "\u0662.\u0661\u0662", "2.1\u00b2"])
def test_expect_sen2cor_with_non_ascii_digits_is_a_usage_error_not_a_crash(version: str) -> None:
    """'2.²' passed str.isdigit() and crashed int() (internal error, exit 70); Arabic-Indic
    digits were taken as a version (review1)."""
    from typer.testing import CliRunner

    from s2kit.cli import app

    res = CliRunner().invoke(app, ["validate", "--expect-sen2cor", version, "nothere.SAFE"])
    assert res.exit_code == 2
    assert res.stderr == f"s2kit: error: expected a Sen2Cor version like 2.9 or 2.10.01, found {version!r}\n"


def test_validate_json_report_on_a_full_disk_names_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`validate --json FILE` on a full (or read-only) file system ended with the bare
    "s2kit: error: No space left on device": no path, no expected/found (review1)."""
    import errno

    from typer.testing import CliRunner

    from s2kit.cli import app

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    root = build_l2a_tree(tmp_path, "33TVM")
    monkeypatch.setattr(os, "fsync", fsync)
    res = CliRunner().invoke(app, ["validate", "--json", str(tmp_path / "report.json"), str(root)])
    assert res.exit_code == 1 and not (tmp_path / "report.json").exists()
    assert res.stderr == (
        f"s2kit: error: {tmp_path / 'report.json'}: expected to write the JSON report, found No space left on device\n"
    )


@pytest.mark.parametrize("option", ["--consistency", "--jsonl", "-0"])
def test_validate_json_swallowing_the_next_option_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    """`validate --json --consistency L2A/*.SAFE` (--json as in inspect) wrote the report to a
    file named '--consistency' and ran without the consistency check, exit 0 (review1)."""
    from typer.testing import CliRunner

    from s2kit.cli import app

    monkeypatch.chdir(tmp_path)
    root = build_l2a_tree(tmp_path, "33TVM")
    res = CliRunner().invoke(app, ["validate", "--json", option, str(root)])
    assert res.exit_code == 2 and not (tmp_path / option).exists()
    assert res.stderr.startswith(f"s2kit: error: --json: expected a report FILE or '-', found {option!r}")
    res = CliRunner().invoke(app, ["validate", "--json", f"./{option}", str(root)])  # a file of that name
    assert res.exit_code == 0 and json.loads((tmp_path / option).read_text())["valid"] is True
