"""Build synthetic SAFE trees for tests from REAL ESA metadata files.

The metadata files (MTD_MSIL2A.xml, MTD_TL.xml, manifest.safe) are copied byte
for byte from data/fixtures; only the raster files are tiny placeholders (the
tests check structure and metadata, not pixels).
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import FIXTURES

PLACEHOLDER = b"placeholder raster written by tests/safe_trees.py, not image data\n"


@dataclass(frozen=True)
class RealL2A:
    """A consistent set of real metadata files of one ESA L2A product."""

    product_uri: str
    mtd: Path
    tile: Path
    manifest: Path


def _one(folder: str, pattern: str) -> Path:
    hits = sorted((FIXTURES / folder).glob(pattern))
    assert len(hits) == 1, (folder, pattern, hits)
    return hits[0]


def real_l2a(tile: str) -> RealL2A:
    """Real L2A products of which data/fixtures has MTD + MTD_TL + manifest."""
    mtd = _one("l2a_mtd", f"S2*_MSIL2A_*_T{tile}_*_MTD_MSIL2*.xml")
    uri = re.sub(r"_MTD_MSIL2[aA]\.xml$", ".SAFE", mtd.name)
    return RealL2A(
        product_uri=uri,
        mtd=mtd,
        tile=_one("tile_mtd", f"L2A_T{tile}_*_MTD_TL.xml"),
        manifest=_one("manifest", f"S2*_MSIL2A_*_T{tile}_*_manifest.safe"),
    )


# tile -> processing baseline of the real product
REAL_L2A_TILES = {"07HFE": "02.12", "33XWJ": "04.00", "01KAB": "05.09", "33TVM": "05.11"}


def _image_files(mtd_text: str) -> list[str]:
    return re.findall(r"<IMAGE_FILE>([^<]+)</IMAGE_FILE>", mtd_text)


def build_l2a_tree(dest_parent: Path, tile: str = "07HFE", name: str | None = None) -> Path:
    """A complete L2A .SAFE tree: real metadata + placeholder band and QI files."""
    real = real_l2a(tile)
    root = dest_parent / (name or real.product_uri)
    root.mkdir(parents=True)
    mtd_text = real.mtd.read_text(encoding="utf-8")
    shutil.copyfile(real.mtd, root / "MTD_MSIL2A.xml")
    shutil.copyfile(real.manifest, root / "manifest.safe")
    images = _image_files(mtd_text)
    granule = images[0].split("/")[1]
    gdir = root / "GRANULE" / granule
    (gdir / "QI_DATA").mkdir(parents=True)
    (gdir / "AUX_DATA").mkdir()
    shutil.copyfile(real.tile, gdir / "MTD_TL.xml")
    for rel in images:
        f = root / (rel + ".jp2")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(PLACEHOLDER)
    for mask in ("MSK_CLDPRB_20m", "MSK_CLDPRB_60m", "MSK_SNWPRB_20m", "MSK_SNWPRB_60m"):
        (gdir / "QI_DATA" / f"{mask}.jp2").write_bytes(PLACEHOLDER)
    for d in ("AUX_DATA", "HTML", "rep_info", "DATASTRIP"):
        (root / d).mkdir(exist_ok=True)
    return root


def band_files(root: Path) -> list[Path]:
    return sorted(root.glob("GRANULE/*/IMG_DATA/R*m/*.jp2"))


def zip_tree(root: Path, dest: Path | None = None) -> Path:
    """Zip a .SAFE tree the way ESA ships it (top folder X.SAFE inside X.SAFE.zip)."""
    out = dest or root.with_name(root.name + ".zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(root.rglob("*")):
            arc = f"{root.name}/{f.relative_to(root).as_posix()}"
            if f.is_dir():
                zf.writestr(arc + "/", b"")
            else:
                zf.write(f, arc)
    return out


# ----------------------------------------------------------------------------- L1C trees
REAL_L1C = {  # baseline -> fixture fragment; all real ESA MTD_MSIL1C.xml
    "02.09": "N0209_R029_T01LAC",
    "03.01": "N0301_R133_T46RER",
    "05.09": "N0509_R079_T34UDD",
}


def build_l1c_tree(
    dest_parent: Path,
    baseline: str = "03.01",
    day_offset: int = 0,
    generation: str | None = None,
    gcs_style: bool = False,
) -> Path:
    """An L1C .SAFE tree from a REAL MTD_MSIL1C.xml, with placeholder band files.

    ``day_offset`` != 0 DERIVES another acquisition (test-only) by shifting every
    occurrence of the sensing date in the real MTD and in the product name, so a
    batch can hold several distinct scenes of the real product. ``generation``
    replaces the generation time (the name's last field) to model reprocessings.
    ``gcs_style`` drops the empty folders Google's bucket omits.
    """
    import datetime as dt

    src = _one("l1c_mtd", f"*{REAL_L1C[baseline]}*")
    text = src.read_text(encoding="utf-8")
    uri = re.search(r"<PRODUCT_URI>([^<]+)</PRODUCT_URI>", text)
    assert uri
    name = uri.group(1)
    day = name.split("_")[2][:8]
    if day_offset:
        new_day = (dt.datetime.strptime(day, "%Y%m%d") + dt.timedelta(days=day_offset)).strftime("%Y%m%d")
        text = text.replace(day, new_day).replace(
            f"{day[:4]}-{day[4:6]}-{day[6:]}", f"{new_day[:4]}-{new_day[4:6]}-{new_day[6:]}"
        )
        name = name.replace(day, new_day)
    if generation:
        old_gen = name[:-5].rsplit("_", 1)[1]
        text = text.replace(old_gen, generation)
        name = name.replace(old_gen, generation)
    root = dest_parent / name
    root.mkdir(parents=True)
    (root / "MTD_MSIL1C.xml").write_text(text, encoding="utf-8")
    (root / "manifest.safe").write_bytes(
        b"<?xml version='1.0'?><xfdu:XFDU xmlns:xfdu='urn:ccsds:schema:xfdu:1'/>\n"
    )
    for entry in re.findall(r"<IMAGE_FILE>([^<]+)</IMAGE_FILE>", text):
        f = root / (entry + ".jp2")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(PLACEHOLDER)
    granule = next((root / "GRANULE").iterdir())
    ds = re.search(r'datastripIdentifier="[^"]*_DS_(\w{4})_(\d{8}T\d{6})_(S\d{8}T\d{6})', text)
    assert ds
    (root / "DATASTRIP" / f"DS_{ds.group(1)}_{ds.group(2)}_{ds.group(3)}").mkdir(parents=True)
    if not gcs_style:
        for d in ("AUX_DATA", "HTML", "rep_info"):
            (root / d).mkdir()
        (granule / "AUX_DATA").mkdir()
        (granule / "QI_DATA").mkdir()
        next((root / "DATASTRIP").iterdir()).joinpath("QI_DATA").mkdir()
    return root
