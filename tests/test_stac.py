"""s2kit stac: Items + Collection from a run of the Sen2Cor TEST DOUBLE and from real ESA metadata.

Validation is offline against the OFFICIAL schemas: STAC 1.1.0 core from the pystac wheel,
every extension from the copies s2kit ships (s2kit/schemas/stac). The network is never used:
sockets and urllib are made to fail in every test of this file.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pystac
import pytest

from s2kit import __version__
from s2kit.errors import InputError
from s2kit.stac import (
    CLASSIFICATION,
    EO,
    EXTENSIONS,
    GRID,
    ITEM_ASSETS,
    MGRS,
    PROCESSING,
    S2,
    SAT,
    VIEW,
    StacValidationFailed,
    make_item,
    stac_for,
    validate_stac,
)
from tests.support.l2a_rasters import make_demo_run
from tests.support.safe_trees import build_l2a_tree

CORE_ITEM = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"
CORE_COLLECTION = "https://schemas.stacspec.org/v1.1.0/collection-spec/json-schema/collection.json"
SHIPPED = "official schema shipped with s2kit"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args[:2]}")

    def refuse_read(self: Any, source: Any, *args: Any, **kwargs: Any) -> str:
        if str(source).startswith("http"):
            raise AssertionError(f"network access attempted: {source}")
        return str(Path(str(source)).read_text(encoding="utf-8"))

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(pystac.stac_io.DefaultStacIO, "read_text", refuse_read)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_demo_run(tmp_path_factory.mktemp("stac-batch"), n=3, crash=2, real_rasters=0)


def test_run_dir_to_collection_and_items(demo: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "stac"
    result = stac_for(demo["run"], out)
    assert len(result.items) == 2 and result.skipped == []
    # what validated what: official core schemas (pystac wheel), official extension schemas (s2kit)
    assert result.validation[CORE_ITEM] == "official schema shipped in the pystac wheel"
    assert result.validation[CORE_COLLECTION] == "official schema shipped in the pystac wheel"
    for uri in EXTENSIONS:
        assert result.validation[uri].startswith(SHIPPED), uri
    assert result.validation[ITEM_ASSETS].startswith(SHIPPED)

    coll = pystac.Collection.from_file(str(result.collection))
    items = list(coll.get_items())
    assert sorted(i.id + ".SAFE" for i in items) == sorted(p.name for p in demo["l2a"])
    assert coll.extent.temporal.intervals[0][0] == min(i.datetime for i in items)
    assert coll.summaries.lists["processing:software"] == [{"Sen2Cor": "2.9", "s2kit": __version__}]
    for item in items:
        p = item.properties
        assert set(item.stac_extensions) == set(EXTENSIONS)
        assert p["processing:software"] == {"Sen2Cor": "2.9", "s2kit": __version__}
        assert p["processing:level"] == "L2A"
        assert "S2A_MSIL1C_" in p["processing:lineage"] and "03.01" in p["processing:lineage"]
        assert p["s2:processing_baseline"] == "03.00"  # the worker's Baseline_Version
        assert p["s2:mgrs_tile"] == "46RER" and p["proj:code"] == "EPSG:32646"
        assert p["grid:code"] == "MGRS-46RER" and (p["mgrs:utm_zone"], p["mgrs:latitude_band"]) == (46, "R")
        assert p["platform"] == "sentinel-2a" and p["instruments"] == ["msi"]
        # the double copies the 07HFE footprint into a 46RER product: s2kit notices and says so
        assert p["s2kit:geometry"] == "MGRS tile bounds: Product_Footprint lies outside tile 46RER"
        assert item.geometry["type"] == "Polygon"
        b02 = item.assets["blue_60m"]
        assert Path(b02.href).is_file() and b02.media_type == pystac.MediaType.JPEG2000
        assert b02.extra_fields["eo:bands"][0]["common_name"] == "blue"
        assert b02.extra_fields["raster:bands"][0] == {
            "nodata": 0, "data_type": "uint16", "spatial_resolution": 60.0, "scale": 0.0001, "offset": 0.0,
        }  # fmt: skip
        assert b02.extra_fields["proj:shape"] == [1830, 1830]
        assert item.assets["s2kit_provenance"].href.endswith(".SAFE.provenance.json")
        # links are relative: the folder can be moved
        raw = json.loads(Path(item.get_self_href() or "").read_text())
        assert all(not link["href"].startswith("/") for link in raw["links"])
    raw_coll = json.loads(result.collection.read_text())
    assert [link["rel"] for link in raw_coll["links"]].count("item") == 2


def test_single_esa_product_with_offsets(tmp_path: Path) -> None:
    """REAL ESA PB 04.00 metadata: offset -1000 becomes raster offset -0.1; cloud cover from the MTD."""
    product = build_l2a_tree(tmp_path / "esa", "33XWJ")
    item = make_item(product)
    p = item.properties
    assert p["eo:cloud_cover"] == pytest.approx(98.944211)
    assert p["processing:software"] == {"Sen2Cor": "02.10.01"}  # no s2kit provenance
    assert p["processing:lineage"] == "ESA processing (no s2kit provenance)"
    assert p["s2:processing_baseline"] == "04.00"
    assert "s2kit:dem" not in p  # not made by s2kit: nothing to say about its DEM
    band = item.assets["red"].extra_fields["raster:bands"][0]
    assert band["offset"] == pytest.approx(-0.1) and band["scale"] == pytest.approx(1e-4)
    assert item.assets["scl"].extra_fields["raster:bands"][0]["data_type"] == "uint8"
    assert item.assets["visual"].roles == ["visual"]
    assert item.assets["aot"].extra_fields["raster:bands"][0]["scale"] == pytest.approx(0.001)
    result = stac_for(product, tmp_path / "out")
    assert len(result.items) == 1
    assert json.loads(result.items[0].read_text())["properties"]["eo:cloud_cover"] == pytest.approx(98.944211)


def test_stactools_style_asset_keys(tmp_path: Path) -> None:
    """Band assets are keyed like stactools-sentinel2: common names at the native resolution, _20m/_60m else."""
    item = make_item(build_l2a_tree(tmp_path, "01KAB"))
    keys = set(item.assets)
    assert {"blue", "blue_20m", "blue_60m", "red", "nir", "nir08", "nir09", "coastal", "coastal_20m"} <= keys
    assert {"rededge1", "rededge2", "rededge3", "swir16", "swir22", "visual", "aot", "wvp", "scl"} <= keys
    assert {"scl_60m", "aot_10m", "wvp_60m", "visual_20m", "visual_60m"} <= keys
    assert {"product_metadata", "granule_metadata", "safe_manifest"} <= keys
    assert not any(k.startswith(("B0", "B1", "B8", "TCI", "SCL")) for k in keys)  # the old s2kit keys
    assert item.assets["nir08"].extra_fields["eo:bands"][0]["name"] == "B8A"
    assert item.assets["rededge2"].extra_fields["eo:bands"][0]["common_name"] == "rededge"
    assert [b["name"] for b in item.assets["visual"].extra_fields["eo:bands"]] == ["B04", "B03", "B02"]
    classes = item.assets["scl"].extra_fields["raster:bands"][0]["classification:classes"]
    assert [c["value"] for c in classes] == list(range(12)) and classes[0]["nodata"] is True
    assert CLASSIFICATION in item.stac_extensions
    # proj:shape / proj:transform per resolution, from MTD_TL.xml
    assert item.assets["blue"].extra_fields["proj:shape"] == [10980, 10980]
    assert item.assets["blue_20m"].extra_fields["proj:transform"] == [
        20.0,
        0.0,
        99960.0,
        0.0,
        -20.0,
        8200000.0,
    ]


def test_missing_sat_view_mgrs_grid_and_s2_fields_are_written(tmp_path: Path) -> None:
    """Issue 16 item 2, on the REAL 01KAB product (values read from its MTD files)."""
    item = make_item(build_l2a_tree(tmp_path, "01KAB"))
    p = item.properties
    assert {SAT, VIEW, MGRS, GRID, S2} <= set(item.stac_extensions)
    assert (p["sat:relative_orbit"], p["sat:orbit_state"], p["sat:absolute_orbit"]) == (
        29,
        "descending",
        42640,
    )
    assert p["view:sun_azimuth"] == pytest.approx(43.3009058473725)
    assert p["view:sun_elevation"] == pytest.approx(51.5825609938211)
    assert p["view:incidence_angle"] == pytest.approx(2.7752190171935607)
    assert p["view:azimuth"] == pytest.approx(177.2921, abs=0.01)
    assert (p["mgrs:utm_zone"], p["mgrs:latitude_band"], p["mgrs:grid_square"]) == (1, "K", "AB")
    assert p["grid:code"] == "MGRS-01KAB"
    assert p["s2:nodata_pixel_percentage"] == 0.0
    assert p["s2:water_percentage"] == pytest.approx(31.683847)
    assert p["s2:reflectance_conversion_factor"] == pytest.approx(0.976023471600241)
    assert p["s2:datastrip_id"] == "S2A_OPER_MSI_L2A_DS_2APS_20230822T021825_S20230821T221944_N05.09"
    assert p["s2:datatake_type"] == "INS-NOBS"
    assert p["proj:centroid"] == {
        "lat": pytest.approx(-16.7515, abs=1e-3),
        "lon": pytest.approx(179.7633, abs=1e-3),
    }


def test_antimeridian_tile_is_split(tmp_path: Path) -> None:
    item = make_item(build_l2a_tree(tmp_path, "01KAB"))
    assert item.geometry["type"] == "MultiPolygon"
    west, _south, east, _north = item.bbox
    assert west > east  # STAC: bbox across the antimeridian
    for poly in item.geometry["coordinates"]:
        lons = [pt[0] for pt in poly[0]]
        assert max(lons) <= 180 and min(lons) >= -180
        assert max(lons) - min(lons) < 180  # each part stays on its side
    validate_stac([item])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ({"mode": "none", "note": "no DEM: flat terrain", "dir": None, "files": []}, "none: flat terrain"),
        ({"mode": "srtm", "dir": "/dem/07HFE", "files": ["srtm_01_16.zip"]}, "srtm"),
        ({"dir": None, "staged_as": None, "files": []}, "none: flat terrain"),  # before the "mode" key
    ],
)
def test_items_say_when_no_dem_was_used(tmp_path: Path, mode: dict[str, Any], expected: str) -> None:
    """A hand-made provenance with dem mode none: the Item says flat terrain; with srtm: srtm."""
    product = build_l2a_tree(tmp_path, "07HFE")
    provenance = {
        "schema": "s2kit-provenance/1",
        "l1c": {
            "scene": "S2A_MSIL1C_20190212T192651_N0207_R013_T07HFE_20190212T211203",
            "processing_baseline": "02.07",
        },
        "sen2cor": {"version": "2.8"},  # the fixture's own (its metadata: 02.08.00)
        "dem": mode,
        "s2kit_version": "0.1.0",
        "host": "node17",
    }
    item = make_item(product, provenance)
    p = item.properties
    assert p["s2kit:dem"] == expected
    assert p["processing:lineage"].endswith(f"; DEM: {expected}")
    assert p["processing:software"] == {"Sen2Cor": "2.8", "s2kit": "0.1.0"}
    assert p["processing:facility"] == "node17"
    assert [pr["roles"] for pr in p["providers"]] == [["producer", "licensor"], ["processor"]]
    validate_stac([item])


def test_item_named_the_sen2cor_version_of_a_provenance_the_product_contradicts(tmp_path: Path) -> None:
    """review2: the Item's processing:software took the provenance's Sen2Cor version as found; a
    provenance edited to 2.12 (or beside another product) made a 2.8 product's Item say 2.12. The
    product's own metadata (its GIPP version) must agree, else one line naming `s2kit validate`."""
    product = build_l2a_tree(tmp_path, "07HFE")  # metadata: Sen2Cor 02.08.00
    provenance = {
        "schema": "s2kit-provenance/1",
        "l1c": {"scene": "S2A_MSIL1C_20190212T192651_N0207_R013_T07HFE_20190212T211203"},
        "sen2cor": {"version": "2.12"},
        "dem": {"mode": "cop-dem-glo90"},
        "s2kit_version": "0.1.0",
    }
    with pytest.raises(InputError) as err:
        make_item(product, provenance)
    msg = str(err.value)
    assert "\n" not in msg and "found 02.08.00" in msg and "s2kit validate --expect-sen2cor 2.12" in msg
    assert make_item(product, {**provenance, "sen2cor": {"version": "02.08.00"}}).properties[
        "processing:software"
    ] == {"Sen2Cor": "02.08.00", "s2kit": "0.1.0"}


def test_invalid_item_is_refused_with_the_schema_that_caught_it(tmp_path: Path) -> None:
    item = make_item(build_l2a_tree(tmp_path, "07HFE"))
    item.properties["eo:cloud_cover"] = 150
    with pytest.raises(
        StacValidationFailed, match=r"eo/v1.1.0/schema.json \[official schema shipped.*maximum of 100"
    ):
        validate_stac([item])
    item.properties["eo:cloud_cover"] = 10
    item.properties["view:sun_elevation"] = 120
    with pytest.raises(StacValidationFailed, match=r"view/v1.0.0.*/properties/view:sun_elevation"):
        validate_stac([item])
    item.properties["view:sun_elevation"] = 40
    item.assets["scl"].extra_fields["raster:bands"][0]["classification:classes"][1]["name"] = "not a name"
    with pytest.raises(StacValidationFailed, match=r"classification/v2.0.0.*does not match"):
        validate_stac([item])
    item.assets["scl"].extra_fields["raster:bands"][0]["classification:classes"][1]["name"] = (
        "saturated_or_defective"
    )
    del item.properties["datetime"]  # core schema: datetime is required without start/end
    item.datetime = None
    with pytest.raises(StacValidationFailed, match="item.json"):
        validate_stac([item])


def test_s2kit_checks_what_the_official_schemas_do_not(tmp_path: Path) -> None:
    """mgrs v1.0.0 allows any integer zone; the time pattern is unchecked without rfc3339-validator."""
    item = make_item(build_l2a_tree(tmp_path, "07HFE"))
    item.properties["mgrs:utm_zone"] = 99
    with pytest.raises(StacValidationFailed, match=r"s2kit's checks: properties/mgrs:utm_zone"):
        validate_stac([item])
    item.properties["mgrs:utm_zone"] = 7
    item.properties["s2:generation_time"] = "2020-10-07 16:08:57"
    with pytest.raises(StacValidationFailed, match="RFC 3339 UTC"):
        validate_stac([item])


def test_local_official_schema_copies_are_used(tmp_path: Path) -> None:
    """A local copy under --schemas replaces the shipped one (here a deliberately stricter one)."""
    item = make_item(build_l2a_tree(tmp_path / "p", "07HFE"))
    schemas = tmp_path / "schemas"
    copy = schemas / "stac-extensions.github.io" / "eo" / "v1.1.0" / "schema.json"
    copy.parent.mkdir(parents=True)
    copy.write_text(json.dumps({
        "$schema": "http://json-schema.org/draft-07/schema#", "$id": EO, "type": "object",
        "properties": {"properties": {"properties": {"eo:cloud_cover": {"maximum": 10}}}},
    }))  # fmt: skip
    with pytest.raises(StacValidationFailed, match=r"local copy .*schema\.json"):
        validate_stac([item], schemas)
    item.properties["eo:cloud_cover"] = 5.0
    used = validate_stac([item], schemas)
    assert used[EO].startswith("official schema, local copy")
    assert used[S2].startswith(SHIPPED) and used[PROCESSING].startswith(SHIPPED)


def test_unknown_extension_is_an_error_not_a_download(tmp_path: Path) -> None:
    item = make_item(build_l2a_tree(tmp_path, "07HFE"))
    item.stac_extensions.append("https://stac-extensions.github.io/file/v2.1.0/schema.json")
    with pytest.raises(InputError, match="not available offline"):
        validate_stac([item])


def test_collection_extent_summaries_item_assets_providers_and_report_link(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    report = Path(demo["run"]) / "report.html"
    report.write_text("<html>placeholder written by the test, not an s2kit report</html>\n")
    try:
        result = stac_for(demo["run"], tmp_path / "stac")
    finally:
        report.unlink()
    coll = json.loads(result.collection.read_text())
    items = [json.loads(p.read_text()) for p in result.items]
    bbox = coll["extent"]["spatial"]["bbox"][0]
    assert bbox == [
        min(i["bbox"][0] for i in items), min(i["bbox"][1] for i in items),
        max(i["bbox"][2] for i in items), max(i["bbox"][3] for i in items),
    ]  # fmt: skip
    s = coll["summaries"]
    assert s["platform"] == ["sentinel-2a"] and s["s2:processing_baseline"] == ["03.00"]
    assert s["s2kit:sen2cor_version"] == ["2.9"]
    names = [b["name"] for b in s["eo:bands"]]
    assert {"B02", "B03", "B04", "B8A", "B12"} <= set(names)
    assert names.index("B04") < names.index("B8A") < names.index("B11")  # in wavelength order
    assert ITEM_ASSETS in coll["stac_extensions"]
    blue = coll["item_assets"]["blue_60m"]
    assert blue["roles"] == ["data", "reflectance"] and "href" not in blue and "proj:transform" not in blue
    esa, lab = coll["providers"]
    assert esa["name"] == "ESA" and esa["roles"] == ["producer", "licensor"]
    assert lab["roles"] == ["processor"] and lab["processing:software"] == {"s2kit": __version__}
    assert coll["license"] == "other"
    (related,) = [link for link in coll["links"] if link["rel"] == "related"]
    assert related["type"] == "text/html"
    assert (result.collection.parent / related["href"]).resolve() == report.resolve()
    assert result.notes == []


def test_out_folder_named_like_a_safe_is_the_folder_written(tmp_path: Path, s2kit_exe: str) -> None:
    """Issue 16 item 5: ``--out X.SAFE`` wrote into X.SAFE's parent and printed the wrong folder."""
    product = build_l2a_tree(tmp_path / "in", "33XWJ")
    parent = tmp_path / "catalogs"
    parent.mkdir()
    out = parent / "mycatalog.SAFE"
    r = subprocess.run([s2kit_exe, "stac", str(product), "--out", str(out)],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (out / "collection.json").is_file()
    assert sorted(p.name for p in parent.iterdir()) == ["mycatalog.SAFE"]  # nothing beside it
    item_id = product.name[:-5]
    assert (out / item_id / f"{item_id}.json").is_file()
    assert f"written to {out}" in r.stdout and f"collection: {out / 'collection.json'}" in r.stdout


def test_nothing_to_describe(tmp_path: Path, s2kit_exe: str) -> None:
    with pytest.raises(InputError, match="neither"):
        stac_for(tmp_path, tmp_path / "out")
    r = subprocess.run([s2kit_exe, "stac", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 1 and r.stderr.startswith("s2kit: error: ") and r.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    product = build_l2a_tree(tmp_path / "in", "07HFE")
    target = tmp_path / "taken.json"
    target.write_text("{}\n")
    with pytest.raises(InputError, match="expected --out to be a folder"):
        stac_for(product, target)
    assert target.read_text() == "{}\n"


def test_cli_json(demo: dict[str, Any], tmp_path: Path, s2kit_exe: str) -> None:
    r = subprocess.run([s2kit_exe, "stac", str(demo["run"]), "--out", str(tmp_path / "o"), "--json"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["items"]) == 2 and Path(doc["collection"]).is_file()
    assert doc["validated_with"][CORE_ITEM] == "official schema shipped in the pystac wheel"
    assert doc["validated_with"][EO].startswith(SHIPPED)


def test_a_moved_catalog_still_resolves(demo: dict[str, Any], tmp_path: Path) -> None:
    result = stac_for(demo["run"], tmp_path / "a")
    moved = tmp_path / "b"
    shutil.move(str(tmp_path / "a"), moved)
    coll = pystac.Collection.from_file(str(moved / "collection.json"))
    assert len(list(coll.get_items())) == len(result.items)


def test_run_dir_product_without_provenance_is_not_called_esa_processing(
    tmp_path: Path, s2kit_exe: str
) -> None:
    """Finding 7: a product the run dir says s2kit made (state done), its provenance missing and its
    sidecar torn, was called "ESA processing (no s2kit provenance)" and lost its flat-terrain flag,
    silently (exit 0, no warning). Now: s2kit:provenance "missing", DEM from config.json, warnings."""
    from tests.test_report import _flat_run_without_provenance

    rd, lost, kept = _flat_run_without_provenance(tmp_path / "run")
    result = stac_for(rd.path, tmp_path / "stac")
    items = {json.loads(p.read_text())["properties"]["s2:product_uri"]: json.loads(p.read_text())
             for p in result.items}  # fmt: skip
    states = rd.read_states()
    lost_p = items[Path(states[lost].l2a or "").name]["properties"]
    kept_p = items[Path(states[kept].l2a or "").name]["properties"]
    assert lost_p["s2kit:provenance"] == "missing" and "s2kit:provenance" not in kept_p
    assert "ESA processing" not in lost_p["processing:lineage"]
    assert "run by s2kit (s2kit provenance missing)" in lost_p["processing:lineage"]
    assert lost_p["s2kit:dem"] == kept_p["s2kit:dem"] == "none: flat terrain"
    assert [pr["roles"] for pr in lost_p["providers"]] == [["producer", "licensor"], ["processor"]]
    assert len(result.warnings) == 2
    assert result.warnings[0].startswith(f"{lost}: done in the run dir, but no readable s2kit provenance")
    assert result.warnings[1].startswith("1 of 2 product(s) without readable s2kit provenance")
    assert 'sen2cor.dem = "none"' in result.warnings[1]
    coll = json.loads(result.collection.read_text())
    assert coll["summaries"]["s2kit:provenance"] == ["missing"]
    r = subprocess.run([s2kit_exe, "stac", str(rd.path), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("s2kit: warning: ") for line in lines)
