"""Provenance of the GIPP templates shipped in ``s2kit/templates/gipp/``.

Every template is either a byte-for-byte copy of a real file in ``data/fixtures/`` or the
documented derivation of one (Sen2Cor 2.9 XSDs and PB/SC/AC GIPPs: no real ones exist).
The derivation lives here, next to the tests that prove it:

    .venv/bin/python tests/test_gipp_templates.py --write   # re-derive s2kit/templates/gipp/2.9/ and 2.12/

The derived 2.9 ``L2A_GIPP.xsd`` must accept every real 2.9 GIPP and reject element-order
and typo defects; the real 2.8.0 and 2.10.01 XSDs must both reject the real 2.9 GIPP (that
is why a derived one is needed at all).

Sen2Cor 2.12: only its ``L2A_GIPP.xml`` exists publicly (brazil-data-cube/sen2cor-docker
``2.12.0/``, written by the ``Sen2Cor-02.12.03-Linux64.run`` installer). It validates against
the real 2.10.01 ``L2A_GIPP.xsd`` unchanged, so the 2.12 set is that real GIPP, the four 2.10.01
XSDs, the 2.10.01 SC/AC GIPPs, and the 2.10.01 PB GIPP with ``Idp_Sc_Version`` 02.12.03
(:func:`derive_212`).
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections import Counter

import pytest
from lxml import etree

from s2kit.xmlsafe import parse_xml
from tests.support import REPO

FIXTURES = REPO / "data" / "fixtures"
TEMPLATES = REPO / "s2kit" / "templates" / "gipp"
KINDS = ("L2A_GIPP", "L2A_PB_GIPP", "L2A_CAL_SC_GIPP", "L2A_CAL_AC_GIPP")

REAL_29_GIPPS = (
    "sen2cor-2.9.0_L2A_GIPP_pristine_brazil-data-cube.xml",
    "sen2cor-2.9.0_L2A_GIPP_user-edited_ewoc.xml",
)


def fixture(sub: str, name: str) -> bytes:
    return (FIXTURES / sub / name).read_bytes()


# --------------------------------------------------------------------------- derivation
def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _element_block(lines: list[bytes], name: str) -> tuple[int, int]:
    """[start, end) of the global ``<xs:element name="NAME">`` declaration in an XSD."""
    opener = f'<xs:element name="{name}"'.encode()
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(opener)]
    assert len(starts) == 1, f"expected one declaration of {name}, found {len(starts)}"
    start = starts[0]
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    for end in range(start + 1, len(lines)):
        line = lines[end]
        if line.rstrip(b"\r\n") == indent + b"</xs:element>":
            return start, end + 1
    raise AssertionError(f"no closing tag for the declaration of {name}")


def _ref_line(lines: list[bytes], name: str) -> int:
    ref = f'<xs:element ref="{name}"/>'.encode()
    hits = [i for i, line in enumerate(lines) if line.strip() == ref]
    assert len(hits) == 1, f"expected one reference to {name}, found {len(hits)}"
    return hits[0]


def derive_l2a_gipp_xsd_29(xsd_280: bytes, xsd_21001: bytes) -> bytes:
    """Sen2Cor 2.9 ``L2A_GIPP.xsd`` = real 2.8.0 XSD + the two 2.9 elements, taken verbatim from 2.10.01.

    Sen2Cor 2.9 added ``Region_Of_Interest`` (after ``Log_Level``) and ``Force_Exit_On_DEM_Error``
    (after ``Generate_DEM_Output``) to ``Common_Section``.  Both declarations and both
    ``<xs:element ref=.../>`` lines are copied unchanged from the real 2.10.01 XSD and inserted at
    the same places 2.10.01 has them; nothing else of 2.10.01 (Product_DOI, PSD_Version, ...)
    is taken, and nothing of 2.8.0 is changed or removed.
    """
    old, new = _lines(xsd_280), _lines(xsd_21001)
    # (element added in 2.9, element whose declaration / reference it follows)
    additions = (("Force_Exit_On_DEM_Error", "Generate_DEM_Output"), ("Region_Of_Interest", "Log_Level"))
    # Insert bottom-up so earlier indices stay valid: references (in Common_Section, near the
    # end) first, then the declarations, latest in the file first.
    for added, after in additions:
        ref_line = new[_ref_line(new, added)]
        at = _ref_line(old, after) + 1
        old[at:at] = [ref_line]
    for added, after in sorted(additions, key=lambda a: _element_block(old, a[1])[1], reverse=True):
        start, end = _element_block(new, added)
        # 2.10.01 declares the added element right after the one it follows: keep that placement.
        assert _element_block(new, after)[1] == start, f"{added} does not follow {after} in 2.10.01"
        at = _element_block(old, after)[1]
        old[at:at] = new[start:end]
    return b"".join(old)


def derive_29() -> dict[str, bytes]:
    """The complete Sen2Cor 2.9 template set, from real files only."""
    pb_280 = fixture("gipp", "sen2cor-2.8.0_L2A_PB_GIPP_c-core-labs.xml")
    version_280 = b"<Idp_Sc_Version>02.08.00</Idp_Sc_Version>"
    assert pb_280.count(version_280) == 1
    return {
        # copied: the real, pristine 2.9.0 GIPP
        "L2A_GIPP.xml": fixture("gipp", "sen2cor-2.9.0_L2A_GIPP_pristine_brazil-data-cube.xml"),
        "L2A_GIPP.xsd": derive_l2a_gipp_xsd_29(
            fixture("xsd", "sen2cor-2.8.0_L2A_GIPP.xsd"),
            fixture("xsd", "sen2cor-2.10.01_L2A_GIPP.xsd"),
        ),
        # derived: 2.8.0 PB with the 2.9 processor version
        "L2A_PB_GIPP.xml": pb_280.replace(version_280, b"<Idp_Sc_Version>02.09.00</Idp_Sc_Version>"),
        # 2.8.0 copies: SC already carries the ESACCI names of the 2.9 how-to; AC and the three
        # XSDs are even byte-identical in 2.8.0 and 2.10.01.
        "L2A_CAL_SC_GIPP.xml": fixture("gipp", "sen2cor-2.8.0_L2A_CAL_SC_GIPP_c-core-labs.xml"),
        "L2A_CAL_AC_GIPP.xml": fixture("gipp", "sen2cor-2.8.0_L2A_CAL_AC_GIPP_c-core-labs.xml"),
        "L2A_PB_GIPP.xsd": fixture("xsd", "sen2cor-2.8.0_L2A_PB_GIPP.xsd"),
        "L2A_CAL_SC_GIPP.xsd": fixture("xsd", "sen2cor-2.8.0_L2A_CAL_SC_GIPP.xsd"),
        "L2A_CAL_AC_GIPP.xsd": fixture("xsd", "sen2cor-2.8.0_L2A_CAL_AC_GIPP.xsd"),
    }


#: the release ESA's 2.12 Linux installer is (s2kit.versions.INSTALLER_RELEASES["2.12"])
RELEASE_212 = "02.12.03"
REAL_212_GIPP = "sen2cor-2.12.0_L2A_GIPP_brazil-data-cube.xml"


def derive_212() -> dict[str, bytes]:
    """The complete Sen2Cor 2.12 template set: one real file, seven from the real 2.10.01 set.

    * ``L2A_GIPP.xml``: **copied**, the real 2.12 GIPP (installed by Sen2Cor-02.12.03-Linux64.run);
    * ``L2A_GIPP.xsd``: the real 2.10.01 XSD unchanged -- it accepts the real 2.12 GIPP as is
      (2.12 changed only comments, ``Handle_L1C_QLT_Mask`` TRUE and four more ``PSD_Scheme``
      entries, which the 2.10.01 XSD already allows: ``maxOccurs="unbounded"``);
    * ``L2A_PB_GIPP.xml``: the 2.10.01 PB with ``Idp_Sc_Version`` 02.10.01 -> 02.12.03, nothing else;
    * SC/AC GIPPs and the PB/SC/AC XSDs: the real 2.10.01 files unchanged (no 2.12 ones are public).
    """
    pb_21001 = fixture("gipp", "sen2cor-2.10.01_L2A_PB_GIPP_win-install.xml")
    version_21001 = b"<Idp_Sc_Version>02.10.01</Idp_Sc_Version>"
    assert pb_21001.count(version_21001) == 1
    files = copied_210()
    files["L2A_GIPP.xml"] = fixture("gipp", REAL_212_GIPP)
    files["L2A_PB_GIPP.xml"] = pb_21001.replace(
        version_21001, f"<Idp_Sc_Version>{RELEASE_212}</Idp_Sc_Version>".encode()
    )
    return files


def copied_210() -> dict[str, bytes]:
    """Sen2Cor 2.10.01: all eight files are real (mtmiran/batch_sen2cor install tree)."""
    files = {
        "L2A_GIPP.xml": fixture("gipp", "sen2cor-2.10.01_L2A_GIPP_pristine_win-install.xml"),
    }
    for kind in KINDS[1:]:
        files[f"{kind}.xml"] = fixture("gipp", f"sen2cor-2.10.01_{kind}_win-install.xml")
    for kind in KINDS:
        files[f"{kind}.xsd"] = fixture("xsd", f"sen2cor-2.10.01_{kind}.xsd")
    return files


# --------------------------------------------------------------------------- helpers
def schema_of(data: bytes) -> etree.XMLSchema:
    return etree.XMLSchema(parse_xml(data, "<xsd>"))


def valid(schema: etree.XMLSchema, data: bytes) -> bool:
    return bool(schema.validate(parse_xml(data, "<gipp>")))


def errors(schema: etree.XMLSchema, data: bytes) -> list[str]:
    schema.validate(parse_xml(data, "<gipp>"))
    return [e.message for e in schema.error_log]


@pytest.fixture(scope="module")
def xsd29() -> etree.XMLSchema:
    return schema_of((TEMPLATES / "2.9" / "L2A_GIPP.xsd").read_bytes())


# --------------------------------------------------------------------------- stored == derived
@pytest.mark.parametrize("name", sorted(derive_29()))
def test_stored_29_template_equals_derivation(name: str) -> None:
    assert (TEMPLATES / "2.9" / name).read_bytes() == derive_29()[name]


@pytest.mark.parametrize("name", sorted(copied_210()))
def test_stored_210_template_is_real_file(name: str) -> None:
    assert (TEMPLATES / "2.10" / name).read_bytes() == copied_210()[name]


@pytest.mark.parametrize("name", sorted(derive_212()))
def test_stored_212_template_equals_derivation(name: str) -> None:
    assert (TEMPLATES / "2.12" / name).read_bytes() == derive_212()[name]


def test_212_derivation_changes_only_the_pb_version_of_the_210_set() -> None:
    """Of the eight 2.12 files only L2A_GIPP.xml is real 2.12; of the seven taken from 2.10.01
    only the PB differs, in exactly its Idp_Sc_Version line."""
    derived, real_210 = derive_212(), copied_210()
    changed = {name for name in derived if derived[name] != real_210[name]}
    assert changed == {"L2A_GIPP.xml", "L2A_PB_GIPP.xml"}
    old, new = _lines(real_210["L2A_PB_GIPP.xml"]), _lines(derived["L2A_PB_GIPP.xml"])
    diff = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert diff == [
        (
            b"\t\t\t<Idp_Sc_Version>02.10.01</Idp_Sc_Version>\n",
            b"\t\t\t<Idp_Sc_Version>02.12.03</Idp_Sc_Version>\n",
        )
    ]


def test_212_installer_release_is_the_pb_version() -> None:
    from s2kit.versions import INSTALLER_RELEASES

    assert INSTALLER_RELEASES["2.12"] == RELEASE_212


def test_real_212_gipp_passes_the_real_21001_xsd_unchanged() -> None:
    """Why no derived 2.12 XSD is needed (unlike 2.9): the real one of 2.10.01 accepts it."""
    schema = schema_of(fixture("xsd", "sen2cor-2.10.01_L2A_GIPP.xsd"))
    assert errors(schema, fixture("gipp", REAL_212_GIPP)) == []


def test_real_212_gipp_names_the_copernicus_dem_references() -> None:
    """The DEM_Reference values s2kit renders for 2.12 come from this comment of the real file."""
    text = fixture("gipp", REAL_212_GIPP).decode()
    assert "'CDSE-GLO-30' or 'CDSE-GLO-90'" in text


def test_template_dirs_hold_exactly_the_expected_files() -> None:
    expected = {f"{k}.{ext}" for k in KINDS for ext in ("xml", "xsd")}
    for version in ("2.9", "2.10", "2.12"):
        assert {p.name for p in (TEMPLATES / version).iterdir()} == expected
    assert not (TEMPLATES / "2.11").exists(), "2.11 is an alias of 2.10 (byte-identical GIPP)"


def test_derived_xsd_only_adds_lines_of_the_real_2_10_xsd() -> None:
    old = _lines(fixture("xsd", "sen2cor-2.8.0_L2A_GIPP.xsd"))
    new = _lines(fixture("xsd", "sen2cor-2.10.01_L2A_GIPP.xsd"))
    derived = _lines((TEMPLATES / "2.9" / "L2A_GIPP.xsd").read_bytes())
    # every 2.8.0 line is kept, in order
    it = iter(derived)
    assert all(any(line == d for d in it) for line in old)
    added = len(derived) - len(old)
    assert added == 93 + 9 + 2  # Region_Of_Interest decl + Force_Exit decl + two refs
    # ... and every added line is a line of the real 2.10.01 XSD
    assert not (Counter(derived) - Counter(old)) - Counter(new)
    text = b"".join(derived).decode()
    assert 'name="Region_Of_Interest"' in text and 'name="Force_Exit_On_DEM_Error"' in text
    for later in ("Product_DOI", "Product_Generator", "Handle_L1C_QLT_Mask", "PSD_Version", "QI_Scheme"):
        assert f'<xs:element name="{later}"' not in text
        assert f'ref="{later}"' not in text


def test_readme_table_lists_every_template_with_its_sha256() -> None:
    readme = (TEMPLATES / "README.md").read_text()
    rows = re.findall(r"^\| `(2\.\d+/[A-Za-z0-9_]+\.(?:xml|xsd))` \|.*\| `([0-9a-f]{64})` \|$", readme, re.M)
    listed = dict(rows)
    on_disk = {
        f"{p.parent.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in TEMPLATES.glob("*/*")
        if p.suffix in (".xml", ".xsd")
    }
    assert listed == on_disk


# --------------------------------------------------------------------------- the derived XSD, proven
@pytest.mark.parametrize("name", REAL_29_GIPPS)
def test_derived_29_xsd_accepts_every_real_29_gipp(xsd29: etree.XMLSchema, name: str) -> None:
    data = fixture("gipp", name)
    assert errors(xsd29, data) == []


@pytest.mark.parametrize("version", ["2.8.0", "2.10.01"])
@pytest.mark.parametrize("name", REAL_29_GIPPS)
def test_real_280_and_21001_xsds_reject_real_29_gipps(version: str, name: str) -> None:
    schema = schema_of(fixture("xsd", f"sen2cor-{version}_L2A_GIPP.xsd"))
    assert not valid(schema, fixture("gipp", name))


@pytest.mark.parametrize(
    "name",
    [
        "sen2cor-2.8.0_L2A_GIPP_pristine_c-core-labs.xml",
        "sen2cor-2.10.01_L2A_GIPP_pristine_win-install.xml",
        "sen2cor-2.12.0_L2A_GIPP_brazil-data-cube.xml",
        "sen2cor-2.5.5_L2A_GIPP_brazil-data-cube.xml",
    ],
)
def test_derived_29_xsd_rejects_other_versions(xsd29: etree.XMLSchema, name: str) -> None:
    assert not valid(xsd29, fixture("gipp", name))


@pytest.mark.parametrize("kind", KINDS[1:])
@pytest.mark.parametrize("version", ["2.8.0", "2.10.01"])
def test_29_pb_sc_ac_xsds_accept_real_files(kind: str, version: str) -> None:
    schema = schema_of((TEMPLATES / "2.9" / f"{kind}.xsd").read_bytes())
    assert valid(
        schema,
        fixture(
            "gipp", f"sen2cor-{version}_{kind}_{'c-core-labs' if version == '2.8.0' else 'win-install'}.xml"
        ),
    )
    assert valid(schema, (TEMPLATES / "2.9" / f"{kind}.xml").read_bytes())


@pytest.mark.parametrize("version", ["2.9", "2.10", "2.12"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_template_passes_its_own_xsd(version: str, kind: str) -> None:
    schema = schema_of((TEMPLATES / version / f"{kind}.xsd").read_bytes())
    assert errors(schema, (TEMPLATES / version / f"{kind}.xml").read_bytes()) == []


PRISTINE_29 = fixture("gipp", REAL_29_GIPPS[0])
FORCE_EXIT = b"    <Force_Exit_On_DEM_Error>FALSE</Force_Exit_On_DEM_Error>\n"
GEN_DEM = b"    <Generate_DEM_Output>FALSE</Generate_DEM_Output>\n"


def _swap_force_exit_and_generate_dem(data: bytes) -> bytes:
    assert data.count(FORCE_EXIT) == 1 and data.count(GEN_DEM) == 1
    return data.replace(GEN_DEM, b"@@GEN@@").replace(FORCE_EXIT, GEN_DEM).replace(b"@@GEN@@", FORCE_EXIT)


DEFECTS = {
    "order: Force_Exit before Generate_DEM_Output": _swap_force_exit_and_generate_dem,
    "order: Region_Of_Interest after Nr_Threads": lambda d: re.sub(
        rb"(    <Region_Of_Interest>.*?</Region_Of_Interest>\n)(    <Nr_Threads>AUTO</Nr_Threads>\n)",
        rb"\2\1",
        d,
        flags=re.S,
    ),
    "typo: Force_Exit_On_DEM_Eror": lambda d: d.replace(
        b"Force_Exit_On_DEM_Error>", b"Force_Exit_On_DEM_Eror>"
    ),
    "typo: Nr_Thread": lambda d: d.replace(b"Nr_Threads>", b"Nr_Thread>"),
    "typo: lower-case value true": lambda d: d.replace(
        b"<Force_Exit_On_DEM_Error>FALSE<", b"<Force_Exit_On_DEM_Error>true<"
    ),
    "missing: Region_Of_Interest": lambda d: re.sub(
        rb"    <Region_Of_Interest>.*?</Region_Of_Interest>\n", b"", d, flags=re.S
    ),
    "missing: Force_Exit_On_DEM_Error": lambda d: d.replace(FORCE_EXIT, b""),
    "threads: 9": lambda d: d.replace(b"<Nr_Threads>AUTO<", b"<Nr_Threads>9<"),
    "threads: 0": lambda d: d.replace(b"<Nr_Threads>AUTO<", b"<Nr_Threads>0<"),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_derived_29_xsd_rejects_order_and_typo_defects(xsd29: etree.XMLSchema, defect: str) -> None:
    broken = DEFECTS[defect](PRISTINE_29)
    assert broken != PRISTINE_29, "the defect was not planted"
    assert not valid(xsd29, broken)


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(__doc__)
        return 2
    for version, files in (("2.9", derive_29()), ("2.12", derive_212())):
        out = TEMPLATES / version
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (out / name).write_bytes(data)
            print(f"wrote {out / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
