"""s2kit.gcs against the fake public bucket on loopback (JSON API listing shape, paging, index)."""

from __future__ import annotations

import base64
import hashlib
from datetime import date
from pathlib import Path

import pytest

from s2kit.errors import MetadataError, S2kitError
from s2kit.fetch import FetchError, Selection, fetch
from s2kit.fetch.gcs import GcsSource, cloud_from_mtd, tile_prefix
from s2kit.http import HttpClient, HttpNotFound
from tests.support.fake_bucket import REAL_L1C, FakeBucket, derive_l1c, real_tree
from tests.support.servers import base_url

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "fixtures"


def test_tile_prefix_is_the_bucket_layout() -> None:
    assert tile_prefix("17SQV") == "tiles/17/S/QV/"
    assert tile_prefix("01LAC") == "tiles/01/L/AC/"


def test_cloud_cover_from_real_mtd() -> None:
    real = sorted((FIXTURES / "l1c_mtd").glob("S2A_MSIL1C_*_MTD_MSIL1C.xml"))
    assert [cloud_from_mtd(p.read_bytes(), str(p)) for p in real] == [5.4828, 88.2972]
    with pytest.raises(MetadataError, match="expected Cloud_Coverage_Assessment as a number, found none"):
        cloud_from_mtd(b"<Level-1C_User_Product/>", "x.xml")


def test_listing_pages_prefixes_and_placeholders(fake_server, client: HttpClient) -> None:
    bucket = FakeBucket(page_size=2).register(fake_server)
    made = [derive_l1c(sensing=f"202106{d:02d}T160829") for d in (2, 7, 12, 17, 22)]
    for d in made:
        bucket.add_product("17SQV", d.name, d.files)
    bucket.add_product("17SQU", derive_l1c(tile="17SQU").name, {"MTD_MSIL1C.xml": b"x"})
    src = GcsSource(client, base_url(fake_server), page_size=2)
    found = src.candidates(Selection(("17SQV",), date(2021, 1, 1), date(2021, 12, 31)))
    assert sorted(p.name for p in found) == sorted(d.name for d in made)
    assert all(p.ref == f"tiles/17/S/QV/{p.name}/" for p in found)
    hits = bucket.listing_hits()
    assert all(h.query["prefix"] == "tiles/17/S/QV/" and h.query["delimiter"] == "/" for h in hits)
    assert "pageToken" not in hits[0].query and all("pageToken" in h.query for h in hits[1:])
    assert len(hits) >= 5  # 5 prefixes + 5 placeholders at 2 per page


def test_list_objects_real_tree(fake_server, client: HttpClient) -> None:
    bucket = FakeBucket(page_size=3).register(fake_server)
    files = real_tree(REAL_L1C)
    prefix = bucket.add_product("01LAC", REAL_L1C, files, placeholders=("", "GRANULE", "HTML"))
    src = GcsSource(client, base_url(fake_server))
    [product] = src.candidates(Selection(("01LAC",), date(2020, 7, 17), date(2020, 7, 17)))
    src.list_objects(product)
    assert product.objects is not None
    assert {o.rel: o.size for o in product.objects} == {rel: len(b) for rel, b in files.items()}
    assert product.dirs == ["GRANULE", "HTML"]  # from the _$folder$ placeholders, never files
    mtd = next(o for o in product.objects if o.rel == "MTD_MSIL1C.xml")
    assert mtd.md5 == base64.b64encode(hashlib.md5(files["MTD_MSIL1C.xml"]).digest()).decode()  # noqa: S324
    assert mtd.generation == str(bucket.objects[prefix + "MTD_MSIL1C.xml"].generation)
    assert mtd.url == f"{base_url(fake_server)}/gcp-public-data-sentinel-2/{prefix}MTD_MSIL1C.xml"
    assert product.total_size == sum(len(b) for b in files.values())
    # the cloud cover comes from the real MTD, and its bytes are kept for the download
    assert src.cloud_cover(product) == 5.4828
    assert product.prefetched == {"MTD_MSIL1C.xml": files["MTD_MSIL1C.xml"]}


def test_index_selects_without_listing(fake_server, client: HttpClient, tmp_path: Path) -> None:
    bucket = FakeBucket().register(fake_server)
    a = derive_l1c(sensing="20210602T160829", cloud=3.0)
    b = derive_l1c(sensing="20210802T160829", cloud=70.0)
    c = derive_l1c(tile="18SUJ", sensing="20210602T160829")
    for d in (a, b, c):
        bucket.add_product(d.name.split("_")[5][1:], d.name, d.files)
    bucket.add_index(
        [bucket.index_row("17SQV", a.name, 3.0), bucket.index_row("17SQV", b.name, 70.0)]
        + [bucket.index_row("18SUJ", c.name, 1.0)] * 2  # one row per granule: duplicates happen
    )
    src = GcsSource(client, base_url(fake_server), index="bucket", state_dir=tmp_path / "state")
    found = src.candidates(Selection(("17SQV", "18SUJ"), date(2021, 6, 1), date(2021, 6, 30)))
    assert sorted((p.name, p.cloud_cover) for p in found) == sorted([(a.name, 3.0), (c.name, 1.0)])
    assert next(p for p in found if p.name == a.name).size == a.size
    assert bucket.listing_hits() == []
    assert (tmp_path / "state" / "index.csv.gz").is_file()  # cached for the next run
    dry = GcsSource(
        client, base_url(fake_server), index="bucket", state_dir=tmp_path / "dry" / ".s2kit-fetch"
    )
    report = fetch(
        dry, Selection(("17SQV",), date(2021, 6, 1), date(2021, 6, 30)), tmp_path / "dry", dry_run=True
    )
    assert (
        report.summary_dict()["download"] == 1 and not (tmp_path / "dry").exists()
    )  # dry run: nothing written
    again = GcsSource(client, base_url(fake_server), index=str(tmp_path / "state" / "index.csv.gz"))
    assert len(again.candidates(Selection(("17SQV",), date(2021, 1, 1), date(2021, 12, 31)))) == 2
    assert len(bucket.object_hits("index.csv.gz")) == 2  # the cached copy, and the dry run's temporary one


def test_bad_index_and_listing_are_one_line_errors(fake_server, client: HttpClient, tmp_path: Path) -> None:
    bucket = FakeBucket().register(fake_server)
    bad = tmp_path / "index.csv.gz"
    bad.write_bytes(b"not gzip")
    sel = Selection(("17SQV",), date(2021, 1, 1), date(2021, 1, 2))
    for index, pattern in (
        (str(bad), "expected a readable index.csv.gz"),
        (str(tmp_path / "no"), "no such file"),
    ):
        with pytest.raises(S2kitError, match=pattern) as info:
            GcsSource(client, base_url(fake_server), index=index).candidates(sel)
        assert "\n" not in str(info.value)
    bucket.listing_faults = [("garbage", None)]
    with pytest.raises(FetchError, match="expected a JSON object listing, found text/html"):
        GcsSource(client, base_url(fake_server)).candidates(sel)
    with pytest.raises(HttpNotFound, match="expected the file, found HTTP 404"):
        GcsSource(client, base_url(fake_server), bucket="no-such-bucket").candidates(sel)
    with pytest.raises(S2kitError, match="expected --base-url as http"):
        GcsSource(client, "ftp://mirror")


def test_transient_listing_errors_are_retried(fake_server, client: HttpClient) -> None:
    bucket = FakeBucket().register(fake_server)
    d = derive_l1c()
    bucket.add_product("17SQV", d.name, d.files)
    bucket.listing_faults = [("status", 503), ("status", 500)]
    found = GcsSource(client, base_url(fake_server)).candidates(
        Selection(("17SQV",), date(2021, 6, 1), date(2021, 6, 30))
    )
    assert [p.name for p in found] == [d.name]
    assert [h.status for h in bucket.listing_hits()] == [503, 500, 200]
