"""s2kit stac: Items + Collection from a run of the Sen2Cor TEST DOUBLE and from real ESA metadata.

Validation is offline: the official STAC 1.1.0 core schemas come from the pystac wheel, the
extension schemas from s2kit's field rules unless a local official copy is given. The
network is never used (pystac's StacIO is made to fail in these tests).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pystac
import pytest
from l2a_rasters import make_demo_run
from safe_trees import build_l2a_tree

from s2kit import __version__
from s2kit.errors import InputError
from s2kit.stac import (
    EO,
    EXTENSIONS,
    PROCESSING,
    S2,
    StacValidationFailed,
    make_item,
    stac_for,
    validate_stac,
)

CORE_ITEM = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"
CORE_COLLECTION = "https://schemas.stacspec.org/v1.1.0/collection-spec/json-schema/collection.json"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, source: Any, *args: Any, **kwargs: Any) -> str:
        if str(source).startswith("http"):
            raise AssertionError(f"network access attempted: {source}")
        return str(Path(str(source)).read_text(encoding="utf-8"))

    monkeypatch.setattr(pystac.StacIO.default(), "read_text", refuse, raising=False)
    monkeypatch.setattr(pystac.stac_io.DefaultStacIO, "read_text", refuse)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_demo_run(tmp_path_factory.mktemp("stac-batch"), n=3, crash=2, real_rasters=0)


def test_run_dir_to_collection_and_items(demo: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "stac"
    result = stac_for(demo["run"], out)
    assert len(result.items) == 2 and result.skipped == []
    # what validated what: official core schemas (pystac wheel), s2kit rules for extensions
    assert result.validation[CORE_ITEM] == "official schema shipped in the pystac wheel"
    assert result.validation[CORE_COLLECTION] == "official schema shipped in the pystac wheel"
    for uri in EXTENSIONS:
        assert result.validation[uri].startswith("s2kit field rules"), uri

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
        assert p["platform"] == "sentinel-2a" and p["instruments"] == ["msi"]
        assert item.geometry["type"] == "Polygon"
        b02 = item.assets["B02_60m"]
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
    band = item.assets["B04_10m"].extra_fields["raster:bands"][0]
    assert band["offset"] == pytest.approx(-0.1) and band["scale"] == pytest.approx(1e-4)
    assert item.assets["SCL_20m"].extra_fields["raster:bands"][0]["data_type"] == "uint8"
    assert item.assets["TCI_10m"].roles == ["visual"]
    result = stac_for(product, tmp_path / "out")
    assert len(result.items) == 1
    assert json.loads(result.items[0].read_text())["properties"]["eo:cloud_cover"] == pytest.approx(98.944211)


def test_antimeridian_tile_is_split(tmp_path: Path) -> None:
    item = make_item(build_l2a_tree(tmp_path, "01KAB"))
    assert item.geometry["type"] == "MultiPolygon"
    west, _south, east, _north = item.bbox
    assert west > east  # STAC: bbox across the antimeridian
    validate_stac([item])


def test_invalid_item_is_refused_with_the_schema_that_caught_it(tmp_path: Path) -> None:
    item = make_item(build_l2a_tree(tmp_path, "07HFE"))
    item.properties["eo:cloud_cover"] = 150
    with pytest.raises(StacValidationFailed, match=r"maximum of 100.*s2kit field rules"):
        validate_stac([item])
    item.properties["eo:cloud_cover"] = 10
    del item.properties["datetime"]  # core schema: datetime is required without start/end
    item.datetime = None
    with pytest.raises(StacValidationFailed, match="item.json"):
        validate_stac([item])


def test_local_official_schema_copies_are_used(tmp_path: Path) -> None:
    """A local copy under --schemas replaces s2kit's rules (here a deliberately stricter one)."""
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
    assert used[S2].startswith("s2kit field rules") and used[PROCESSING].startswith("s2kit field rules")


def test_unknown_extension_is_an_error_not_a_download(tmp_path: Path) -> None:
    item = make_item(build_l2a_tree(tmp_path, "07HFE"))
    item.stac_extensions.append("https://stac-extensions.github.io/view/v1.0.0/schema.json")
    with pytest.raises(InputError, match="not available offline"):
        validate_stac([item])


def test_nothing_to_describe(tmp_path: Path, s2kit_exe: str) -> None:
    with pytest.raises(InputError, match="neither"):
        stac_for(tmp_path, tmp_path / "out")
    r = subprocess.run([s2kit_exe, "stac", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 1 and r.stderr.startswith("s2kit: error: ") and r.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_cli_json(demo: dict[str, Any], tmp_path: Path, s2kit_exe: str) -> None:
    r = subprocess.run([s2kit_exe, "stac", str(demo["run"]), "--out", str(tmp_path / "o"), "--json"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["items"]) == 2 and Path(doc["collection"]).is_file()
    assert doc["validated_with"][CORE_ITEM] == "official schema shipped in the pystac wheel"
