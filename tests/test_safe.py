"""SAFE metadata model: names, real ESA metadata, product containers, bad input."""

from __future__ import annotations

import io
import json
import os
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from s2kit import xmlsafe
from s2kit.errors import InputError, MetadataError, MetadataTooLargeError, S2kitError, UnsafeXMLError
from s2kit.safe import (
    RECORD_KEYS,
    inspect_path,
    open_product,
    parse_baseline,
    parse_product_name,
    read_metadata_file,
    sen2cor_version_from_gipp,
    to_record,
)
from tests.support.cli_runs import one_error_line, run_exe
from tests.support.safe_trees import FIXTURES, build_l2a_tree, zip_tree

METADATA_FIXTURES = sorted(
    p for folder in ("l1c_mtd", "l2a_mtd", "tile_mtd", "manifest") for p in (FIXTURES / folder).iterdir()
)


# ----------------------------------------------------------------------------- names
def test_compact_name() -> None:
    n = parse_product_name("S2A_MSIL1C_20210815T160829_N0301_R140_T17SQV_20210815T203111.SAFE")
    assert (n.naming, n.level, n.spacecraft) == ("compact", "L1C", "Sentinel-2A")
    assert n.processing_baseline == "03.01"
    assert n.relative_orbit == 140 and n.mgrs_tile == "17SQV"
    assert n.sensing_start.isoformat() == "2021-08-15T16:08:29+00:00"
    assert n.discriminator.isoformat() == "2021-08-15T20:31:11+00:00"
    assert not n.local_sen2cor


def test_local_sen2cor_name() -> None:
    n = parse_product_name("S2B_MSIL2A_20210815T160829_N9999_R140_T17SQV_20240101T120000.SAFE.zip")
    assert n.level == "L2A" and n.local_sen2cor and n.processing_baseline == "99.99"


def test_legacy_name() -> None:
    n = parse_product_name(
        "S2A_OPER_PRD_MSIL1C_PDMC_20161213T013539_R065_V20161212T084402_20161212T084403.SAFE"
    )
    assert (n.naming, n.level, n.relative_orbit) == ("legacy", "L1C", 65)
    assert n.processing_baseline is None and n.mgrs_tile is None
    assert n.sensing_start.isoformat() == "2016-12-12T08:44:02+00:00"
    user = parse_product_name(
        "S2A_USER_MTD_SAFL2A_PDMC_20130621T120000_R065_V20091211T165928_20091211T170025"
    )
    assert user.level == "L2A" and user.local_sen2cor


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "S2A_MSIL1C_2021",
        "LC08_L1TP_042034_20130411",
        "S2A_MSIL1C_20210815T160829_N0301_R140_17SQV_x",
    ],
)
def test_bad_names(bad: str) -> None:
    with pytest.raises(InputError, match="expected a Sentinel-2 product name"):
        parse_product_name(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("03.01", "03.01"), ("N01.01", "01.01"), ("0301", "03.01"), ("N0509", "05.09")],
)
def test_parse_baseline(raw: str, expected: str) -> None:
    assert parse_baseline(raw) == expected


def test_parse_baseline_rejects_garbage() -> None:
    with pytest.raises(MetadataError, match="expected a processing baseline"):
        parse_baseline("3.1")


# Every form below occurs in a real ESA product in data/fixtures, except 0290 (what
# Sen2Cor 2.9 writes by the '%04d' rule of its sources) and the dotted spellings.
@pytest.mark.parametrize(
    ("attr", "version"),
    [
        ("0280", "02.08.00"),
        ("0282", "02.08.02"),
        ("0290", "02.09.00"),
        ("2100", "02.10.00"),
        ("21001", "02.10.01"),
        ("21003", "02.10.03"),
        ("21202", "02.12.02"),
        ("0021001", "02.10.01"),
        ("02.09.00", "02.09.00"),
        ("2.9.0", "02.09.00"),
        ("9999", None),
        ("abc", None),
        ("", None),
        (None, None),
        ("290", None),
    ],
)
def test_sen2cor_version_table(attr: str | None, version: str | None) -> None:
    assert sen2cor_version_from_gipp(attr) == version


# ----------------------------------------------------------------------------- real metadata
@pytest.mark.parametrize("path", METADATA_FIXTURES, ids=lambda p: p.name)
def test_every_real_metadata_file(path: Path, data_regression) -> None:  # type: ignore[no-untyped-def]
    record = to_record(read_metadata_file(path))
    assert set(RECORD_KEYS) <= set(record)
    data_regression.check(record, basename=path.name.replace(".", "_"))


def _rec(folder: str, fragment: str) -> dict[str, object]:
    (path,) = [p for p in (FIXTURES / folder).iterdir() if fragment in p.name]
    return to_record(read_metadata_file(path))


def test_l2a_baseline_differs_from_its_l1c_tile_baseline() -> None:
    tile = _rec("tile_mtd", "L2A_T07HFE")
    assert tile["processing_baseline"] == "02.12"
    assert tile["l1c_processing_baseline"] == "02.07"
    assert tile["product_uri"] is None and tile["kind"] == "L2A_TILE"


def test_offsets_only_from_pb04() -> None:
    pb0509 = _rec("l1c_mtd", "N0509")
    assert pb0509["radiometric_offsets"] == {str(i): -1000 for i in range(13)}
    assert _rec("l1c_mtd", "N0301")["radiometric_offsets"] is None
    assert _rec("l2a_mtd", "N0400")["radiometric_offsets"] == {str(i): -1000 for i in range(13)}
    assert _rec("l2a_mtd", "N0214")["radiometric_offsets"] is None


def test_sen2cor_versions_of_real_l2a() -> None:
    got = {
        fragment: _rec("l2a_mtd", fragment)["sen2cor_version"]
        for fragment in ("N0212_R013", "N0214", "N0400", "N0510", "N0511")
    }
    assert got == {
        "N0212_R013": "02.08.00",
        "N0214": "02.08.02",
        "N0400": "02.10.01",
        "N0510": "02.10.03",
        "N0511": "02.12.02",
    }


def test_manifest_checksum_algorithms() -> None:
    assert _rec("manifest", "T01LAC")["checksum_algorithms"] == ["MD5"]
    assert _rec("manifest", "T01KAB")["checksum_algorithms"] == ["SHA3-256"]


def test_old_format_parses_and_is_flagged() -> None:
    rec = _rec("l1c_mtd", "PSD13")
    assert rec["format"] == "legacy" and rec["psd_version"] == "13"
    assert rec["processing_baseline"] == "01.01" and rec["product_uri"] is None
    rec2 = _rec("l2a_mtd", "PSD12")
    assert rec2["format"] == "legacy" and rec2["local_sen2cor"] is True
    assert rec2["boa_quantification_value"] == 2000


def test_s2msi2ap_product_uri_1c_2a(tmp_path: Path) -> None:
    """Old local Sen2Cor (2.3/2.4) products write PRODUCT_URI_1C/_2A and S2MSI2Ap.

    No such real file is in the public set (data/fixtures/README.md), so this one is
    DERIVED from the real PB 02.12 MTD by renaming exactly those elements.
    """
    src = next((FIXTURES / "l2a_mtd").glob("*T07HFE*")).read_text(encoding="utf-8")
    uri = "S2A_MSIL2A_20190212T192651_N0212_R013_T07HFE_20201007T160857.SAFE"
    l1c = "S2A_MSIL1C_20190212T192651_N0207_R013_T07HFE_20190212T223712.SAFE"
    assert f"<PRODUCT_URI>{uri}</PRODUCT_URI>" in src
    derived = src.replace(
        f"<PRODUCT_URI>{uri}</PRODUCT_URI>",
        f"<PRODUCT_URI_1C>{l1c}</PRODUCT_URI_1C><PRODUCT_URI_2A>{uri}</PRODUCT_URI_2A>",
    ).replace("<PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>", "<PRODUCT_TYPE>S2MSI2Ap</PRODUCT_TYPE>")
    f = tmp_path / "MTD_MSIL2A.xml"
    f.write_text(derived, encoding="utf-8")
    rec = to_record(read_metadata_file(f))
    assert rec["product_uri"] == uri
    assert rec["l1c_processing_baseline"] == "02.07"  # from PRODUCT_URI_1C, not GIP_PROBAS
    assert rec["local_sen2cor"] is True and rec["product_type"] == "S2MSI2Ap"


# ----------------------------------------------------------------------------- products
def test_product_dir_and_zip_agree(tmp_path: Path) -> None:
    root = build_l2a_tree(tmp_path)
    z = zip_tree(root, tmp_path / "copy" / (root.name + ".zip"))
    before = sorted(p.name for p in z.parent.iterdir())
    rec_dir, rec_zip = inspect_path(root), inspect_path(z)
    assert sorted(p.name for p in z.parent.iterdir()) == before  # nothing extracted
    for r in (rec_dir, rec_zip):
        r.pop("path")
    assert rec_dir == rec_zip
    # the tile MTD is authoritative for the L1C baseline of an L2A product
    assert rec_dir["l1c_processing_baseline"] == "02.07"
    assert rec_dir["granules"] == 1 and rec_dir["manifest"] is True


def test_lowercase_mtd_name_is_found(tmp_path: Path) -> None:
    root = build_l2a_tree(tmp_path, "07HFE")
    (root / "MTD_MSIL2A.xml").rename(root / "MTD_MSIL2a.xml")
    product = open_product(root)
    assert product.metadata_path == "MTD_MSIL2a.xml"
    assert product.metadata.processing_baseline == "02.12"


# ----------------------------------------------------------------------------- bad input
def test_dir_that_is_not_a_product(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a Sentinel-2 product"):
        inspect_path(tmp_path)


def test_folder_of_many_mtds_is_not_a_product(tmp_path: Path) -> None:
    for folder, name in (("l1c_mtd", "MTD_MSIL1C.xml"), ("l2a_mtd", "MTD_MSIL2A.xml")):
        src = next((FIXTURES / folder).glob("*N0509*"))
        (tmp_path / name).write_bytes(src.read_bytes())
    with pytest.raises(InputError, match="expected one product metadata file"):
        open_product(tmp_path)


def test_truncated_zip(tmp_path: Path) -> None:
    root = build_l2a_tree(tmp_path)
    z = zip_tree(root)
    data = z.read_bytes()
    bad = tmp_path / "cut.SAFE.zip"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="truncated or corrupt zip"):
        inspect_path(bad)


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<n1:Level-1C_User_Product xmlns:n1="x"><PROCESSING_BASELINE>&lol3;</PROCESSING_BASELINE></n1:Level-1C_User_Product>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<n1:Level-1C_User_Product xmlns:n1="x"><PRODUCT_URI>&xxe;</PRODUCT_URI></n1:Level-1C_User_Product>
"""


@pytest.mark.parametrize("payload", [BOMB, XXE], ids=["entity-bomb", "xxe"])
def test_doctype_is_refused(tmp_path: Path, payload: bytes) -> None:
    f = tmp_path / "MTD_MSIL1C.xml"
    f.write_bytes(payload)
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        read_metadata_file(f)


def test_wrong_kind_of_xml(fixtures_dir: Path) -> None:
    gipp = next((fixtures_dir / "gipp").glob("*2.9.0_L2A_GIPP_pristine*"))
    with pytest.raises(InputError, match="found root element <Level-2A_Ground_Image_Processing_Parameter>"):
        inspect_path(gipp)


def test_missing_required_value_names_the_element(tmp_path: Path) -> None:
    src = next((FIXTURES / "l1c_mtd").glob("*N0301*")).read_text(encoding="utf-8")
    f = tmp_path / "MTD_MSIL1C.xml"
    f.write_text(src.replace("<PROCESSING_BASELINE>03.01</PROCESSING_BASELINE>", ""), encoding="utf-8")
    with pytest.raises(MetadataError, match="expected element PROCESSING_BASELINE"):
        read_metadata_file(f)


# ----------------------------------------------------------------------------- CLI
def test_cli_inspect_json_contract(s2kit_exe: str, hostile_dir: Path) -> None:
    root = build_l2a_tree(hostile_dir, "33XWJ")
    res = run_exe(s2kit_exe, "inspect", "--json", root)
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout)
    assert rec["kind"] == "L2A" and rec["processing_baseline"] == "04.00"
    assert rec["mgrs_tile"] == "33XWJ" and rec["sen2cor_version"] == "02.10.01"
    assert rec["path"] == str(root)


def test_cli_inspect_table(s2kit_exe: str) -> None:
    res = run_exe(s2kit_exe, "inspect", next((FIXTURES / "l1c_mtd").glob("*N0509*")))
    assert res.returncode == 0
    out = res.stdout.decode()
    assert "processing_baseline" in out and "05.09" in out and "13 bands, -1000" in out


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    notprod = tmp / "not a product"
    notprod.mkdir()
    (notprod / "x.txt").write_text("x")
    trunc = tmp / "trunc.SAFE.zip"
    trunc.write_bytes(b"PK\x03\x04" + b"\0" * 20)
    bomb = tmp / "bomb.xml"
    bomb.write_bytes(BOMB)
    png = tmp / "image.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    nonutf8 = Path(os.fsdecode(bytes(tmp) + b"/caf\xe9.SAFE"))
    nonutf8.mkdir()
    return {
        "not-a-product": notprod,
        "truncated-zip": trunc,
        "entity-bomb": bomb,
        "wrong-kind": png,
        "non-utf8-path": nonutf8,
    }


@pytest.mark.parametrize(
    "case", ["not-a-product", "truncated-zip", "entity-bomb", "wrong-kind", "non-utf8-path"]
)
def test_cli_bad_input_one_line(s2kit_exe: str, tmp_path: Path, case: str) -> None:
    path = _bad_inputs(tmp_path)[case]
    before = sorted(os.listdir(os.fsencode(tmp_path)))
    res = run_exe(s2kit_exe, "inspect", "--json", path)
    assert res.returncode != 0
    assert res.stdout == b""
    lines = res.stderr.decode("utf-8").splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("s2kit: error: ") and "expected" in lines[0]
    assert "Traceback" not in lines[0]
    assert sorted(os.listdir(os.fsencode(tmp_path))) == before  # nothing touched


def test_zip_members_not_extracted_to_disk(tmp_path: Path) -> None:
    root = build_l2a_tree(tmp_path / "a")
    z = zip_tree(root, tmp_path / "p.SAFE.zip")
    with zipfile.ZipFile(z) as zf:
        assert any(n.endswith("MTD_MSIL2A.xml") for n in zf.namelist())
    assert open_product(z).metadata.mgrs_tile == "07HFE"


# ----------------------------------------------------------------------------- size caps (issue 12 item 13)
L1C_NAME = "S2A_MSIL1C_20210815T160829_N0301_R140_T17SQV_20210815T203111"
GiB = 1024**3


def _zip_bomb(dest: Path, member: str, real_size: int, declared_size: int | None = None) -> Path:
    """A zip whose one deflated member inflates to *real_size* zero bytes, built without inflating it.

    Zeros are compressed 1 MiB at a time with a full flush, which resets the compressor: every
    block is then byte-identical, so the stream is one block repeated (3 GiB -> ~3 MB of zip).
    The CRC is left 0 (nothing may ever read to the end). *declared_size* is what the headers
    claim (a hostile zip lies).
    """
    chunk = 1024 * 1024
    assert real_size % chunk == 0
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(b"\0" * chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)
    data_len = len(block) * (real_size // chunk) + len(tail)
    usize = real_size if declared_size is None else declared_size
    name = member.encode()
    with open(dest, "wb") as fh:
        fh.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, 0, data_len, usize, len(name), 0))
        fh.write(name)
        for _ in range(real_size // chunk):
            fh.write(block)
        fh.write(tail)
        cd_offset = fh.tell()
        fields = (0x02014B50, 20, 20, 0, 8, 0, 0x21, 0, data_len, usize, len(name), 0, 0, 0, 0, 0, 0)
        central = struct.pack("<IHHHHHHIIIHHHHHII", *fields)
        fh.write(central + name)
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(name), cd_offset, 0))
    return dest


def _peak_bytes(fn, *args):  # type: ignore[no-untyped-def]
    """Run fn(*args), expecting an S2kitError; return (error, peak traced allocation)."""
    tracemalloc.start()
    try:
        with pytest.raises(S2kitError) as info:
            fn(*args)
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zip_bomb_mtd_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """A ~3 MB .SAFE.zip whose MTD_MSIL1C.xml inflates to 3 GiB: refused before inflating it."""
    z = _zip_bomb(tmp_path / f"{L1C_NAME}.SAFE.zip", f"{L1C_NAME}.SAFE/MTD_MSIL1C.xml", 3 * GiB)
    assert z.stat().st_size < 8 * 1024 * 1024
    err, peak = _peak_bytes(inspect_path, z)
    assert isinstance(err, MetadataTooLargeError)
    assert "expected metadata ≤ 16 MiB, found ≥ 3221225472 bytes (3.0 GiB)" in str(err)
    assert "MTD_MSIL1C.xml" in str(err) and "\n" not in str(err)
    assert peak < xmlsafe.MAX_METADATA_BYTES


def test_zip_member_whose_declared_size_lies_is_never_inflated_past_the_cap(tmp_path: Path) -> None:
    """Headers claim 1 KiB, the deflate stream holds 3 GiB: at most the declared size is inflated."""
    z = _zip_bomb(tmp_path / f"{L1C_NAME}.SAFE.zip", f"{L1C_NAME}.SAFE/MTD_MSIL1C.xml", 3 * GiB, 1024)
    err, peak = _peak_bytes(inspect_path, z)
    assert isinstance(err, InputError) and "corrupt" in str(err)
    assert peak < xmlsafe.MAX_METADATA_BYTES


def test_zip_member_declared_under_the_cap_but_inflating_past_it_is_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declared size == cap passes the header check; the stream is still cut after cap + 1 bytes."""
    monkeypatch.setattr(xmlsafe, "MAX_METADATA_BYTES", 1024 * 1024)
    z = _zip_bomb(tmp_path / f"{L1C_NAME}.SAFE.zip", f"{L1C_NAME}.SAFE/MTD_MSIL1C.xml", 64 * 1024 * 1024)
    with zipfile.ZipFile(z) as zf, zf.open(zf.infolist()[0]) as member:
        read = 0

        class Counting(io.RawIOBase):
            def read(self, n: int = -1) -> bytes:
                nonlocal read
                data = member.read(n)
                read += len(data)
                return data

        with pytest.raises(MetadataTooLargeError, match="expected metadata ≤ 1 MiB, found ≥ 1048577 bytes"):
            xmlsafe.read_capped(Counting(), z)  # type: ignore[arg-type]
    assert read == 1024 * 1024 + 1


def test_endless_stream_is_cut_after_cap_plus_one_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xmlsafe, "MAX_METADATA_BYTES", 4096)
    served = 0

    class Endless(io.RawIOBase):
        def read(self, n: int = -1) -> bytes:
            nonlocal served
            assert n >= 0, "an unbounded read of an endless stream"
            served += n
            return b"<" * n

    with pytest.raises(MetadataTooLargeError):
        xmlsafe.read_capped(Endless(), "<stream>")  # type: ignore[arg-type]
    assert served == 4097


@pytest.mark.parametrize("where", ["bare-file", "in-dir", "tile-in-dir"])
def test_huge_metadata_file_is_refused_before_reading(tmp_path: Path, where: str) -> None:
    """A 3 GiB (sparse) MTD as a bare file or inside a .SAFE dir: refused from its size alone."""
    if where == "bare-file":
        target = tmp_path / "MTD_MSIL1C.xml"
        arg = target
    else:
        root = build_l2a_tree(tmp_path)
        rel = (
            "MTD_MSIL2A.xml"
            if where == "in-dir"
            else next(str(p.relative_to(root)) for p in root.glob("GRANULE/*/MTD_TL.xml"))
        )
        target, arg = root / rel, root
    with open(target, "wb") as fh:
        fh.truncate(3 * GiB)  # sparse: costs no disk
    err, peak = _peak_bytes(inspect_path, arg)
    assert isinstance(err, MetadataTooLargeError)
    assert "found ≥ 3221225472 bytes (3.0 GiB)" in str(err) and target.name in str(err)
    assert peak < 8 * 1024 * 1024  # the real metadata read before it; never the 3 GiB


def test_metadata_just_under_the_cap_is_still_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = next((FIXTURES / "l1c_mtd").glob("*N0301*")).read_bytes()
    monkeypatch.setattr(xmlsafe, "MAX_METADATA_BYTES", len(src))
    f = tmp_path / "MTD_MSIL1C.xml"
    f.write_bytes(src)
    assert read_metadata_file(f).processing_baseline == "03.01"
    f.write_bytes(src + b" ")
    with pytest.raises(MetadataTooLargeError):
        read_metadata_file(f)


def test_fifo_named_like_metadata_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "MTD_MSIL1C.xml"
    os.mkfifo(fifo)
    with pytest.raises(S2kitError, match="expected a regular"):
        read_metadata_file(fifo)


def test_cli_inspect_zip_bomb_one_line(s2kit_exe: str, tmp_path: Path) -> None:
    z = _zip_bomb(tmp_path / f"{L1C_NAME}.SAFE.zip", f"{L1C_NAME}.SAFE/MTD_MSIL1C.xml", 3 * GiB)
    line = one_error_line(run_exe(s2kit_exe, "inspect", z))
    assert "expected metadata ≤ 16 MiB, found ≥ 3221225472 bytes" in line


# ----------------------------------------------------------------------------- names with a newline (issue 12 item 16)
@pytest.mark.parametrize(
    "name",
    [
        "S2A_MSIL1C_20210815T160829_N0301_R140_T17SQV_20210815T203111\n.SAFE",
        "S2A_MSIL1C_20210815T160829_N0301_R140_T17SQV_20210815T203111\n",
        "S2A_OPER_PRD_MSIL1C_PDMC_20161213T013539_R065_V20161212T084402_20161212T084403\n.SAFE",
    ],
    ids=["compact-newline-before-SAFE", "compact-trailing-newline", "legacy-newline-before-SAFE"],
)
def test_product_name_ending_in_newline_is_not_a_product_name(name: str) -> None:
    """'$' also matches before a trailing newline: such a name must not parse as a product."""
    with pytest.raises(InputError, match="expected a Sentinel-2 product name"):
        parse_product_name(name)


def test_no_module_regex_is_anchored_with_dollar() -> None:
    """Every compiled s2kit regex anchors its end with \\Z (or is used with fullmatch), never '$'."""
    import importlib
    import pkgutil
    import re

    import s2kit

    offenders = []
    for mod in pkgutil.walk_packages(s2kit.__path__, "s2kit."):
        module = importlib.import_module(mod.name)
        for attr, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str | bytes):
                text = value.pattern if isinstance(value.pattern, str) else value.pattern.decode("latin-1")
                if re.search(r"(?<!\\)\$(\)|$)", text) and not value.flags & re.MULTILINE:
                    offenders.append(f"{mod.name}.{attr}: {text!r}")
    assert offenders == []


def test_names_from_before_the_safe_package_still_import() -> None:
    # issue 13 moved safe.py into s2kit/safe/ and the empty-folder repair out of plan.py
    import s2kit.plan
    import s2kit.safe
    from s2kit import versions

    assert s2kit.plan.repair_empty_dirs is s2kit.safe.repair_empty_dirs
    assert s2kit.plan.EMPTY_DIRS == s2kit.safe.EMPTY_DIRS == ("AUX_DATA", "HTML", "rep_info")
    assert s2kit.safe.sen2cor_version_from_gipp is versions.sen2cor_version_from_gipp
    assert s2kit.plan.GATE == versions.BASELINE_GATE == {"2.9": (4, 0)}


def _many_member_zip(dest: Path, members: int, declared: int | None = None) -> Path:
    """A zip of *members* empty stored members (``X.SAFE/f<i>``), written header by header (fast);
    *declared* is the member count its end record claims (a hostile zip lies)."""
    local, central = bytearray(), bytearray()
    for i in range(members):
        name = f"{L1C_NAME}.SAFE/f{i}".encode()
        offset = len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0) + name
        fields = (0x02014B50, 20, 20, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0, 0, 0, 0, 0, offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", *fields) + name
    count = min(members if declared is None else declared, 0xFFFF)  # past 0xFFFF: zip64 is not needed to lie
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(local), 0)
    dest.write_bytes(bytes(local) + bytes(central) + eocd)
    return dest


def test_zip_with_300000_members_is_refused_before_zipfile_reads_its_central_directory(
    tmp_path: Path, s2kit_exe: str
) -> None:
    """review2 (b): inspect of a zip of 300 000 empty members built a ZipInfo for each (~210 MB RSS)
    before anything looked at it; now the member count is capped (MAX_PRODUCT_ZIP_MEMBERS) first,
    also when the end record lies about the count, and plan skips such a zip as corrupt."""
    from s2kit.plan import _check_zip_product
    from s2kit.safe.zipcap import MAX_PRODUCT_ZIP_MEMBERS

    z = _many_member_zip(tmp_path / f"{L1C_NAME}.SAFE.zip", 300_000)
    err, peak = _peak_bytes(inspect_path, z)
    assert isinstance(err, InputError) and "\n" not in str(err)
    assert f"expected a product zip of at most {MAX_PRODUCT_ZIP_MEMBERS} members" in str(err)
    assert peak < xmlsafe.MAX_METADATA_BYTES  # the central directory bytes, no ZipInfo per member
    kind, reason = _check_zip_product(z) or ("", "")
    assert kind == "corrupt" and f"at most {MAX_PRODUCT_ZIP_MEMBERS} members" in reason
    # an end record claiming one member does not get 20 000 past the cap
    (tmp_path / "liar").mkdir()
    liar = _many_member_zip(
        tmp_path / "liar" / f"{L1C_NAME}.SAFE.zip", 2 * MAX_PRODUCT_ZIP_MEMBERS, declared=1
    )
    with pytest.raises(InputError, match=f"found more than {MAX_PRODUCT_ZIP_MEMBERS} members"):
        inspect_path(liar)
    line = one_error_line(run_exe(s2kit_exe, "inspect", z))
    assert f"at most {MAX_PRODUCT_ZIP_MEMBERS} members" in line
    # a real-sized product zip still opens
    ok = zip_tree(build_l2a_tree(tmp_path / "a"), tmp_path / "p.SAFE.zip")
    assert open_product(ok).metadata.mgrs_tile == "07HFE"
