"""s2kit fetch end to end against the fake bucket on loopback: selection, verification,
completion manifests, empty-folder repair, faults, interruption and resume, CLI."""

from __future__ import annotations

import fcntl
import fnmatch
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from s2kit.cli_progress import RichProgress
from s2kit.errors import UsageError
from s2kit.fetch import (
    STATE_DIR,
    FetchError,
    RemoteProduct,
    Selection,
    fetch,
    gcs,
    normalize_tile,
    select_products,
)
from s2kit.fetch import run as fetch_run
from s2kit.fetch.gcs import GcsSource
from s2kit.http import HttpClient, SourceUnreachable
from s2kit.plan import discover
from s2kit.safe import parse_product_name
from tests.support.fake_bucket import (
    REAL_L1C,
    REAL_L2A,
    FakeBucket,
    closed_port,
    derive_l1c,
    expected_dirs,
    listing,
    real_tree,
    tree_of,
)
from tests.support.servers import base_url, make_client

JUNE = (date(2021, 6, 1), date(2021, 6, 30))


@pytest.fixture
def client() -> Iterator[HttpClient]:
    with make_client(retries=3) as c:  # one retry more than the shared client
        yield c


def sel(*tiles: str, start: date = JUNE[0], end: date = JUNE[1], **kw: Any) -> Selection:
    return Selection(tiles or ("17SQV",), start, end, **kw)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.name.endswith((".part", ".part.json", ".tmp")))


def june_bucket(server: Any) -> tuple[FakeBucket, dict[str, Any]]:
    """17SQV in June 2021: a reprocessed datatake (N0300 + N0301), a cloudy one, a PB 04.00 one,
    one in July; plus the REAL T01LAC tree of data/fixtures/listings."""
    bucket = FakeBucket(page_size=4).register(server)
    made = {
        "old_pb": derive_l1c(sensing="20210602T160829", baseline="0300", cloud=12.5),
        "keep": derive_l1c(sensing="20210602T160829", baseline="0301", cloud=12.5),
        "cloudy": derive_l1c(sensing="20210607T160831", baseline="0301", cloud=55.0, spacecraft="S2B"),
        "pb4": derive_l1c(sensing="20210612T160829", baseline="0400", cloud=2.0),
        "july": derive_l1c(sensing="20210712T160829"),
    }
    for d in made.values():
        bucket.add_product("17SQV", d.name, d.files)
    bucket.add_product("01LAC", REAL_L1C, real_tree(REAL_L1C))
    return bucket, made


# ----------------------------------------------------------------------------- selection
def test_normalize_tile() -> None:
    assert [normalize_tile(t) for t in ("17SQV", "t17sqv", " 01LAC ")] == ["17SQV", "17SQV", "01LAC"]
    for bad in ("17SQ", "99SQV", "17SIV", "X17SQV"):
        with pytest.raises(UsageError, match="expected an MGRS tile like 17SQV"):
            normalize_tile(bad)


@pytest.mark.parametrize("tile", ["17SQW", "17AQV", "17SAV"])
def test_fetch_tile_with_letters_mgrs_does_not_use_is_a_usage_error(tile: str) -> None:
    # issue 13: fetch had its own looser rule (any letter but I/O) and accepted these
    with pytest.raises(UsageError, match="expected an MGRS tile like 17SQV"):
        normalize_tile(tile)
    with pytest.raises(UsageError, match="expected an MGRS tile like 17SQV"):
        Selection.parse([tile], "2021-08-01", "2021-08-31")


def test_select_products_reasons() -> None:
    def rp(name: str, cloud: float | None = None) -> RemoteProduct:
        try:
            parsed = parse_product_name(name)
        except Exception:
            parsed = None
        return RemoteProduct(name, parsed, "gcs", f"tiles/x/{name}/", cloud_cover=cloud)

    cands = [
        rp("S2A_MSIL1C_20210602T160829_N0300_R140_T17SQV_20210602T190829.SAFE", 10.0),
        rp("S2A_MSIL1C_20210602T160829_N0301_R140_T17SQV_20210602T190829.SAFE", 10.0),
        rp("S2A_MSIL1C_20210605T160829_N0301_R140_T17SQV_20210605T190829.SAFE", 80.0),
        rp("S2A_MSIL1C_20210606T160829_N0301_R140_T17SQV_20210606T190829.SAFE", None),
        rp("S2A_MSIL1C_20210612T160829_N0400_R140_T17SQV_20210612T190829.SAFE", 1.0),
        rp("S2A_MSIL2A_20210612T160829_N0301_R140_T17SQV_20210612T190829.SAFE", 1.0),
        rp("S2A_MSIL1C_20210712T160829_N0301_R140_T17SQV_20210712T190829.SAFE", 1.0),
        rp("S2A_MSIL1C_20210602T160829_N0301_R140_T18SUJ_20210602T190829.SAFE", 1.0),
        rp("notes.SAFE"),
    ]
    chosen, skipped, not_selected = select_products(cands, sel(max_cloud=30, max_baseline="03.01"))
    assert [p.name[11:26] for p in chosen] == ["20210602T160829", "20210606T160829"]  # unknown cloud: later
    reasons = {r.name[11:26] if r.name != "notes.SAFE" else r.name: r.reason for r in skipped}
    assert reasons == {
        "20210602T160829": "duplicate: superseded by S2A_MSIL1C_20210602T160829_N0301_R140_T17SQV_20210602T190829.SAFE",
        "20210605T160829": "cloudy: 80.0 % > 30 %",
        "20210612T160829": "over-max-baseline: 04.00 > 03.01",
        "notes.SAFE": "not-a-product: not a Sentinel-2 product name",
    } | {"20210612T160829": reasons["20210612T160829"]}
    assert sorted(r.reason_code for r in skipped) == [
        "cloudy",
        "duplicate",
        "not-a-product",
        "not-l1c",
        "over-max-baseline",
    ]
    assert not_selected == 2  # July, and tile 18SUJ


# ----------------------------------------------------------------------------- end to end
def test_fetch_builds_the_tree_sen2cor_expects(fake_server, client: HttpClient, tmp_path: Path) -> None:
    bucket, made = june_bucket(fake_server)
    out = tmp_path / "l1c"
    report = fetch(
        GcsSource(client, base_url(fake_server)),
        sel("17SQV", "01LAC", start=date(2020, 7, 1)),
        out,
        jobs=4,
    )
    assert report.ok, [p.reason for p in report.products]
    got = {p.name: p for p in report.by("downloaded")}
    assert set(got) == {made["keep"].name, made["cloudy"].name, made["pb4"].name, REAL_L1C}
    # every file byte for byte, and the folders: the listing's plus the empty ones GCS drops
    real_files = real_tree(REAL_L1C)
    files, dirs = tree_of(out / REAL_L1C)
    assert files == real_files
    assert [rel for rel, _size in listing(REAL_L1C)] == sorted(files)  # = the real SAFE listing
    assert dirs == expected_dirs(real_files)
    assert {p.name for p in (out / REAL_L1C).iterdir()} == {
        "AUX_DATA",
        "DATASTRIP",
        "GRANULE",
        "HTML",
        "rep_info",
        "MTD_MSIL1C.xml",
        "manifest.safe",
    }
    # (DATASTRIP/*/QI_DATA has files in this product, so it is not among the recreated ones)
    assert sorted(got[REAL_L1C].created_dirs) == [
        "AUX_DATA",
        "GRANULE/L1C_T01LAC_A026481_20200717T221944/AUX_DATA",
        "HTML",
        "rep_info",
    ]
    # the same folder names as in a real ESA tree that has them (the L2A listing)
    real_l2a_dirs = expected_dirs([rel for rel, _ in listing(REAL_L2A)])
    for pattern in ("GRANULE/*/AUX_DATA", "DATASTRIP/*/QI_DATA"):
        assert fnmatch.filter(real_l2a_dirs, pattern) and fnmatch.filter(dirs, pattern)
    files, dirs = tree_of(out / made["keep"].name)
    assert files == made["keep"].files and dirs == expected_dirs(made["keep"].files)
    # completion manifests, nothing half-written, and the planner takes the products as they are
    manifest = json.loads((out / STATE_DIR / "complete" / f"{REAL_L1C}.json").read_text())
    assert manifest["product"] == REAL_L1C and len(manifest["files"]) == len(real_files)
    assert manifest["files"]["MTD_MSIL1C.xml"][0] == len(real_files["MTD_MSIL1C.xml"])
    assert leftovers(out) == []
    assert list((out / STATE_DIR / "staging").iterdir()) == []
    assert {c.scene for c in discover([out]) if c.problem is None} == {n[:-5] for n in got}
    # one GET per file, none twice
    paths = [h.path for h in bucket.object_hits()]
    assert (
        len(paths)
        == len(set(paths))
        == sum(len(made[k].files) for k in ("keep", "cloudy", "pb4")) + len(real_files)
    )


def test_rerun_finds_everything_complete(fake_server, client: HttpClient, tmp_path: Path) -> None:
    bucket, made = june_bucket(fake_server)
    src = GcsSource(client, base_url(fake_server))
    fetch(src, sel(max_baseline="03.01"), tmp_path)
    before = len(bucket.object_hits())
    report = fetch(src, sel(max_baseline="03.01"), tmp_path)
    assert [p.decision for p in report.by("complete", "downloaded")] == ["complete", "complete"]
    assert len(bucket.object_hits()) == before  # listing only
    assert report.bytes_transferred == 0


def test_dry_run_reports_and_writes_nothing(
    fake_server, client: HttpClient, tmp_path: Path, data_regression
) -> None:
    bucket, made = june_bucket(fake_server)
    out = tmp_path / "l1c"
    report = fetch(
        GcsSource(client, base_url(fake_server)), sel(max_cloud=30, max_baseline="03.01"), out, dry_run=True
    )
    assert not out.exists()
    doc = report.to_dict()
    assert doc["summary"]["download"] == 1 and doc["summary"]["skipped"] == {
        "cloudy": 1,
        "duplicate": 1,
        "over-max-baseline": 1,
    }
    doc["base_url"] = "http://127.0.0.1:PORT"
    doc["out"] = "OUT"
    doc["summary"]["seconds"] = 0
    data_regression.check(doc)
    text = "\n".join(report.lines())
    assert "dry run: nothing written" in text and "1 to download (" in text
    # only MTD_MSIL1C.xml of the candidates was read (cloud cover), nothing else
    assert {h.path.rsplit("/", 1)[1] for h in bucket.object_hits()} == {"MTD_MSIL1C.xml"}


def test_faults_are_retried_resumed_or_one_clear_error(fake_server, tmp_path: Path) -> None:
    bucket, made = june_bucket(fake_server)
    keep = made["keep"]
    prefix = f"tiles/17/S/QV/{keep.name}/"
    bands = sorted(r for r in keep.files if r.endswith(".jp2"))
    bucket.rec.faults = {
        prefix + bands[0]: [("status", 500), ("status", 503)],
        prefix + bands[1]: [("truncate", 10_000)],
        prefix + bands[2]: [("corrupt", None)],
        prefix + bands[3]: [("slow", 1.5)],
        prefix + "manifest.safe": [("truncate", 100), ("truncate", 5_000)],
    }
    with HttpClient(retries=3, backoff=0.0, timeout=(2.0, 0.5)) as c:
        report = fetch(GcsSource(c, base_url(fake_server)), sel(max_baseline="03.01"), tmp_path, jobs=3)
    assert report.ok and (tmp_path / keep.name).is_dir()
    assert tree_of(tmp_path / keep.name)[0] == keep.files
    hits = {b: [(h.range, h.status) for h in bucket.object_hits(b)] for b in bands[:4]}
    assert [s for _r, s in hits[bands[0]]] == [500, 503, 200]
    assert hits[bands[1]][0] == (None, 200) and hits[bands[1]][1][0] == "bytes=10000-"  # resumed
    assert [s for _r, s in hits[bands[2]]] == [200, 200]  # corrupt body: discarded, fetched again
    assert len(hits[bands[3]]) == 2  # too slow: timed out, retried
    ranges = [h.range for h in bucket.object_hits(prefix + "manifest.safe")]
    assert ranges == [None, "bytes=100-", "bytes=5100-"]
    assert leftovers(tmp_path) == []


def test_persistent_bad_checksum_fails_cleanly_then_resumes(
    fake_server, client: HttpClient, tmp_path: Path
) -> None:
    bucket, made = june_bucket(fake_server)
    keep = made["keep"]
    bad = f"tiles/17/S/QV/{keep.name}/" + sorted(r for r in keep.files if r.endswith(".jp2"))[0]
    bucket.bad_md5.add(bad)
    src = GcsSource(client, base_url(fake_server))
    report = fetch(src, sel(max_baseline="03.01"), tmp_path)
    [failed] = report.by("failed")
    assert failed.name == keep.name and "expected MD5 AAAAAAAAAAAAAAAAAAAAAA==, found" in str(failed.reason)
    assert "run again to resume" in str(failed.reason) and "\n" not in str(failed.reason)
    assert not (tmp_path / keep.name).exists()  # nothing partial counts as present
    assert not (tmp_path / STATE_DIR / "complete" / f"{keep.name}.json").exists()
    assert len(bucket.object_hits(bad)) == 2  # fetched twice, then given up
    before = {h.path for h in bucket.object_hits(keep.name)}
    bucket.bad_md5.clear()
    report = fetch(src, sel(max_baseline="03.01"), tmp_path)
    assert report.ok and tree_of(tmp_path / keep.name)[0] == keep.files
    again = [h.path for h in bucket.object_hits(keep.name)][len(before) + 1 :]
    assert again == [f"/gcp-public-data-sentinel-2/{bad}"]  # only the failed file
    [done] = report.by("downloaded")
    assert done.files_reused == len(keep.files) - 1


def test_damaged_or_foreign_copies_are_completed_not_refetched(
    fake_server, client: HttpClient, tmp_path: Path
) -> None:
    bucket, made = june_bucket(fake_server)
    keep = made["keep"]
    src = GcsSource(client, base_url(fake_server))
    # a gsutil-style copy: some files, one truncated, no empty folders, no manifest
    final = tmp_path / keep.name
    rels = sorted(keep.files)
    for rel in rels[: len(rels) // 2]:
        (final / rel).parent.mkdir(parents=True, exist_ok=True)
        (final / rel).write_bytes(keep.files[rel])
    (final / rels[0]).write_bytes(keep.files[rels[0]][:-1])
    report = fetch(src, sel(max_baseline="03.01"), tmp_path)
    [done] = [p for p in report.by("downloaded") if p.name == keep.name]
    assert done.files_reused == len(rels) // 2 - 1 and done.files_downloaded == len(rels) - done.files_reused
    assert tree_of(final)[0] == keep.files and tree_of(final)[1] == expected_dirs(keep.files)
    # complete, then damaged on disk: the manifest no longer matches, one file is fetched again
    n = len(bucket.object_hits())
    (final / rels[3]).write_bytes(b"oops")
    report = fetch(src, sel(max_baseline="03.01"), tmp_path)
    assert [(p.name, p.files_downloaded) for p in report.by("downloaded")] == [(keep.name, 1)]
    assert [h.path.endswith(rels[3]) for h in bucket.object_hits()[n:]] == [True]
    # manifest lost: the copy is verified (MD5) and adopted without a download
    (tmp_path / STATE_DIR / "complete" / f"{keep.name}.json").unlink()
    n = len(bucket.object_hits())
    report = fetch(src, sel(max_baseline="03.01"), tmp_path)
    [adopted] = report.by("downloaded")
    assert adopted.files_reused == len(rels) and len(bucket.object_hits()) == n


def test_hostile_object_names_are_refused(fake_server, client: HttpClient, tmp_path: Path) -> None:
    bucket = FakeBucket().register(fake_server)
    d = derive_l1c()
    prefix = bucket.add_product("17SQV", d.name, d.files)
    bucket.put(prefix + "GRANULE/../../../../escape.txt", b"x")
    report = fetch(GcsSource(client, base_url(fake_server)), sel(), tmp_path / "out")
    [failed] = report.by("failed")
    assert "expected object paths inside the product, found 'GRANULE/../../../../escape.txt': refused" in str(
        failed.reason
    )
    assert not (tmp_path / "escape.txt").exists() and bucket.object_hits() == []


def outside(root: Path, out: Path) -> list[str]:
    """Every path under *root* that is neither *out* (or inside it) nor one of its parents."""
    keep = {out, *out.parents}
    return sorted(
        str(p) for p in root.rglob("*") if p not in keep and out not in p.parents and not p.is_symlink()
    ) + sorted(str(p) for p in root.rglob("*") if p.is_symlink())


def deep_out(tmp_path: Path) -> Path:
    return tmp_path / "a" / "b" / "c" / "out"  # so "../" escapes still land inside tmp_path


def good_and_another(fake_server: Any) -> tuple[FakeBucket, Any, Any]:
    """A bucket serving one good product of 17SQV, and a second L1C (ten days later) that the
    test serves in some broken way."""
    bucket = FakeBucket().register(fake_server)
    good = derive_l1c(sensing="20210602T160829")
    bucket.add_product("17SQV", good.name, good.files)
    return bucket, good, derive_l1c(sensing="20210612T160829")


HOSTILE_FOLDERS = {
    "dotdot": "tiles/17/S/QV/../../../../escape/{name}/",
    "absolute": "XXXXXXXXXXXXXX{tmp}/abs/{name}/",  # as long as "tiles/17/S/QV/": slicing leaves "/..."
    "extra-component": "tiles/17/S/QV/extra/{name}/",
    "other-prefix": "elsewhere/17/S/QV/{name}/",
    "nul": "tiles/17/S/QV/{stem}\x00.SAFE/",
    "newline": "tiles/17/S/QV/{stem}\n.SAFE/",
    "backslash": "tiles/17/S/QV/..\\..\\{name}/",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_FOLDERS))
def test_listing_with_dotdot_prefix_writes_nothing_outside_out(
    fake_server, client: HttpClient, tmp_path: Path, kind: str
) -> None:
    bucket, good, evil = good_and_another(fake_server)
    folder = HOSTILE_FOLDERS[kind].format(name=evil.name, stem=evil.name[:-5], tmp=tmp_path)
    for rel, data in evil.files.items():  # the mirror serves the files under the hostile folder too
        bucket.put(folder + rel, data)
    bucket.extra_prefixes["tiles/17/S/QV/"] = [folder]
    out = deep_out(tmp_path)
    src = GcsSource(client, base_url(fake_server))
    dry = fetch(src, sel(max_cloud=50), out, dry_run=True)
    assert dry.by("skipped")  # (a "../" folder of the object names is listed too: skipped as well)
    for skip in dry.by("skipped"):
        assert skip.reason is not None and skip.reason.startswith("unsafe-name: expected ")
        assert skip.reason.endswith(": refused") and "\n" not in skip.reason and "\x00" not in skip.reason
    assert any(line.startswith("skip") and "unsafe-name" in line for line in dry.lines())
    report = fetch(src, sel(max_cloud=50), out)
    assert [p.name for p in report.by("downloaded")] == [good.name]
    assert {p.reason_code for p in report.by("skipped")} == {"unsafe-name"} and report.ok
    assert outside(tmp_path, out) == []
    assert bucket.object_hits(evil.name[:-5]) == []  # not even the MTD was read


def test_index_row_with_dotdot_base_url_writes_nothing_outside_out(
    fake_server, client: HttpClient, tmp_path: Path
) -> None:
    bucket = FakeBucket().register(fake_server)
    evil = derive_l1c()
    bucket.add_product("17SQV", evil.name, evil.files)
    row = bucket.index_row("17SQV", evil.name, 10.0)
    row["BASE_URL"] = f"gs://{bucket.bucket}/tiles/17/S/QV/../../../../escape/{evil.name}"
    bucket.add_index([row])
    out = deep_out(tmp_path)
    report = fetch(
        GcsSource(client, base_url(fake_server), index="bucket", state_dir=out / STATE_DIR), sel(), out
    )
    assert [p.reason_code for p in report.products] == ["unsafe-name"]
    assert outside(tmp_path, out) == [] and bucket.object_hits(evil.name[:-5]) == []


HOSTILE_LISTINGS: dict[str, Any] = {
    "items-not-a-list": {"items": "notalist"},
    "item-not-an-object": {"items": [1, "x"]},
    "name-not-a-string": {"items": [{"name": 5, "size": "1"}]},
    "size-negative": {"items": [{"name": "{prefix}MTD_MSIL1C.xml", "size": "-1"}]},
    "size-not-a-number": {"items": [{"name": "{prefix}MTD_MSIL1C.xml", "size": [1]}]},
    "md5-not-text": {"items": [{"name": "{prefix}MTD_MSIL1C.xml", "size": "3", "md5Hash": 7}]},
    "md5-not-an-md5": {"items": [{"name": "{prefix}MTD_MSIL1C.xml", "size": "3", "md5Hash": "zz"}]},
    "token-not-text": {"items": [], "nextPageToken": {"a": 1}},
    "nested-too-deep": "[" * 100_000,
    "not-json": "{",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_LISTINGS))
def test_listing_of_wrong_json_shape_fails_one_product_without_a_crash(
    fake_server, client: HttpClient, tmp_path: Path, kind: str
) -> None:
    bucket, good, bad = good_and_another(fake_server)
    prefix = bucket.add_product("17SQV", bad.name, bad.files)
    doc = HOSTILE_LISTINGS[kind]
    bucket.listing_docs[prefix] = (
        doc if isinstance(doc, str) else json.loads(json.dumps(doc).replace("{prefix}", prefix))
    )
    out = deep_out(tmp_path)
    report = fetch(GcsSource(client, base_url(fake_server)), sel(), out)
    assert [p.name for p in report.by("downloaded")] == [good.name]
    [failed] = report.by("failed")
    assert failed.name == bad.name and str(failed.reason).startswith("listing: ")
    assert "\n" not in str(failed.reason) and outside(tmp_path, out) == []


def test_object_name_with_nul_byte_fails_one_product_without_a_crash(
    fake_server, client: HttpClient, tmp_path: Path
) -> None:
    bucket = FakeBucket().register(fake_server)
    d = derive_l1c()
    prefix = bucket.add_product("17SQV", d.name, d.files)
    bucket.put(prefix + "GRANULE/a\x00b.jp2", b"x")
    bucket.put(prefix + "GRANULE/line\nbreak.jp2", b"y")
    report = fetch(GcsSource(client, base_url(fake_server)), sel(), tmp_path / "out")
    [failed] = report.by("failed")
    assert "expected object paths inside the product, found 'GRANULE/a\\x00b.jp2': refused" in str(
        failed.reason
    )
    assert bucket.object_hits() == [] and sorted(os.listdir(tmp_path)) == ["out"]


def test_destination_resolving_outside_out_is_refused(
    fake_server, client: HttpClient, tmp_path: Path
) -> None:
    bucket = FakeBucket().register(fake_server)
    d = derive_l1c()
    bucket.add_product("17SQV", d.name, d.files)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / STATE_DIR / "staging").mkdir(parents=True)
    (out / STATE_DIR / "staging" / d.name).symlink_to(elsewhere)  # planted: staging leads out of OUT
    report = fetch(GcsSource(client, base_url(fake_server)), sel(), out)
    [failed] = report.by("failed")
    assert f"under {out.resolve()}, found one resolving to {elsewhere.resolve()}: refused" in str(
        failed.reason
    )
    assert os.listdir(elsewhere) == [] and bucket.object_hits() == []


def test_tile_listing_of_wrong_json_shape_is_one_line_error(
    fake_server, client: HttpClient, tmp_path: Path
) -> None:
    bucket = FakeBucket().register(fake_server)
    bucket.listing_docs["tiles/17/S/QV/"] = {"prefixes": "notalist"}
    with pytest.raises(FetchError, match=r"expected 'prefixes' as a list, found str") as info:
        fetch(GcsSource(client, base_url(fake_server)), sel(), tmp_path / "out")
    assert "\n" not in str(info.value) and os.listdir(tmp_path / "out") == [STATE_DIR]


def test_max_cloud_mtd_declared_huge_is_refused_without_reading_it(
    fake_server, client: HttpClient, tmp_path: Path
) -> None:
    bucket = FakeBucket().register(fake_server)
    d = derive_l1c()
    prefix = bucket.add_product("17SQV", d.name, d.files)
    bucket.declared_size[prefix + "MTD_MSIL1C.xml"] = 3 * 1024**3  # "3 GiB", says the mirror
    report = fetch(GcsSource(client, base_url(fake_server)), sel(max_cloud=50), tmp_path, dry_run=True)
    [failed] = report.by("failed")
    assert str(failed.reason).startswith("cloud cover: ") and str(failed.reason).endswith(
        f"expected MTD_MSIL1C.xml of at most {gcs.MAX_MTD_BYTES} bytes, found {3 * 1024**3} declared by "
        "the listing: refused"
    )
    assert bucket.object_hits() == []  # refused before a byte was read


def test_max_cloud_mtd_larger_than_declared_is_cut_at_the_cap(
    fake_server, client: HttpClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = FakeBucket().register(fake_server)
    d = derive_l1c()
    prefix = bucket.add_product("17SQV", d.name, d.files)
    mtd = prefix + "MTD_MSIL1C.xml"
    assert len(d.files["MTD_MSIL1C.xml"]) > 2000
    monkeypatch.setattr(gcs, "MAX_MTD_BYTES", 2000)  # a small cap: the real MTD is over it
    bucket.declared_size[mtd] = 1000  # the mirror lies about the size
    report = fetch(GcsSource(client, base_url(fake_server)), sel(max_cloud=50), tmp_path, dry_run=True)
    [failed] = report.by("failed")
    assert "expected MTD_MSIL1C.xml of at most 2000 bytes, found Content-Length" in str(failed.reason)
    assert len(bucket.object_hits("MTD_MSIL1C.xml")) == 1


def test_unreachable_source_stops_the_run_at_once(tmp_path: Path, connects: list[str]) -> None:
    port = closed_port()
    with HttpClient(retries=5, backoff=10.0) as http, pytest.raises(SourceUnreachable) as info:
        fetch(GcsSource(http, f"http://127.0.0.1:{port}"), sel("17SQV", "01LAC"), tmp_path / "out")
    assert connects == [f"127.0.0.1:{port}"]  # one attempt: no retry, no second tile
    assert str(info.value).startswith(f"expected to reach 127.0.0.1:{port} (what was tried: ")
    assert os.listdir(tmp_path / "out") == [STATE_DIR]  # the lock only


def test_unreachable_download_host_stops_the_run_at_once(
    fake_server, tmp_path: Path, connects: list[str]
) -> None:
    bucket, made = june_bucket(fake_server)
    port = closed_port()

    class ObjectsElsewhere(GcsSource):  # listing on the fake bucket, objects behind a dead port
        def object_url(self, name: str) -> str:
            return f"http://127.0.0.1:{port}/{self.bucket}/{name}"

    with HttpClient(retries=5, backoff=10.0) as http, pytest.raises(SourceUnreachable) as info:
        fetch(ObjectsElsewhere(http, base_url(fake_server)), sel(), tmp_path / "out", jobs=1)
    assert [c for c in connects if c.endswith(f":{port}")] == [f"127.0.0.1:{port}"]  # one file tried
    assert "connection refused" in str(info.value) and "run the same command again to resume" in str(
        info.value
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] == [STATE_DIR]  # nothing half-present


def test_one_writer_per_folder(fake_server, client: HttpClient, tmp_path: Path) -> None:
    june_bucket(fake_server)
    (tmp_path / STATE_DIR).mkdir()
    with open(tmp_path / STATE_DIR / "lock", "w") as fh:
        fh.write("4242\n")
        fh.flush()
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(FetchError, match=r"found one running \(pid 4242\)"):
            fetch(GcsSource(client, base_url(fake_server)), sel(), tmp_path)
    assert fetch(GcsSource(client, base_url(fake_server)), sel(), tmp_path, dry_run=True).ok  # reads only


def test_progress_bar_and_bucket_end_note(fake_server, client: HttpClient, tmp_path: Path) -> None:
    june_bucket(fake_server)
    notes: list[str] = []
    report = fetch(
        GcsSource(client, base_url(fake_server)),
        sel(end=date(2024, 10, 1)),
        tmp_path,
        progress=RichProgress(),
        log=notes.append,
    )
    assert report.ok and len(report.by("downloaded")) == 4
    assert notes == [
        "note: the public bucket receives no new data after late August 2024: products sensed after "
        "2024-08-31 are on CDSE (--source cdse)"
    ]


# ----------------------------------------------------------------------------- kill and resume
def test_killed_fetch_resumes_without_fetching_anything_twice(
    fake_server, s2kit_exe: str, tmp_path: Path
) -> None:
    bucket = FakeBucket().register(fake_server)
    d = derive_l1c(band_size=2_000)
    big_rel = sorted(r for r in d.files if r.endswith(".jp2"))[0]
    files = dict(d.files)
    files[big_rel] = os.urandom(3_000_000)
    prefix = bucket.add_product("17SQV", d.name, files)
    big = prefix + big_rel
    bucket.rec.faults[big] = [("throttle", (32_768, 0.03))]  # ~3 s for the whole file
    out = tmp_path / "l1c"
    cmd = [s2kit_exe, "fetch", "--tile", "17SQV", "--start", "2021-06-01", "--end", "2021-06-30"]
    cmd += ["--out", str(out), "--base-url", base_url(fake_server), "--jobs", "2", "--retries", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staging = out / STATE_DIR / "staging" / d.name
    journal = out / STATE_DIR / "staging" / f"{d.name}.journal"
    part = staging / (big_rel + ".part")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = journal.read_text().count("\n") if journal.exists() else 0
        if lines == len(files) - 1 and part.exists() and part.stat().st_size >= 300_000:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"the first run did not get going: {proc.communicate()}")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    kept = part.stat().st_size
    assert 0 < kept < len(files[big_rel]) and not (out / d.name).exists()  # nothing half-present
    first_run = len(bucket.object_hits())
    # second run: the small files are in the journal, the big one continues from the .part
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"got   {d.name}" in done.stdout
    again = bucket.object_hits()[first_run:]
    assert [(h.path, h.range) for h in again] == [(f"/gcp-public-data-sentinel-2/{big}", f"bytes={kept}-")]
    assert again[0].sent == len(files[big_rel]) - kept
    assert tree_of(out / d.name)[0] == files and leftovers(out) == []


# ----------------------------------------------------------------------------- CLI
def test_cli_text_json_and_hostile_out(fake_server, s2kit_exe: str, hostile_dir: Path) -> None:
    june_bucket(fake_server)
    args = [s2kit_exe, "fetch", "--tile", "T17SQV", "--start", "2021-06-01", "--end", "2021-06-30"]
    args += ["--out", str(hostile_dir), "--base-url", base_url(fake_server), "--max-baseline", "03.01"]
    dry = subprocess.run([*args, "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0 and "dry run: nothing written" in dry.stdout and dry.stderr == ""
    assert os.listdir(hostile_dir) == []
    run = subprocess.run([*args, "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert list(doc) == ["source", "base_url", "out", "dry_run", "selection", "products", "summary", "notes"]
    assert doc["summary"]["downloaded"] == 2 and doc["summary"]["failed"] == 0
    assert all(Path(p["path"]).is_dir() for p in doc["products"] if p["decision"] == "downloaded")


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--tile", "17SQ"], 2, "expected an MGRS tile like 17SQV, found '17SQ'"),
        (["--start", "2021-13-01"], 2, "expected --start/--end as YYYY-MM-DD"),
        (["--end", "2021-05-01"], 2, "expected --end on or after --start"),
        (["--max-cloud", "120"], 2, "expected --max-cloud between 0 and 100"),
        (
            ["--max-baseline", "three"],
            2,
            "--max-baseline: expected a processing baseline like '03.01', found 'three'",
        ),
        (["--source", "aws"], 2, "expected --source gcs or cdse, found 'aws'"),
        (["--source", "cdse", "--index", "bucket"], 2, "expected --index only with --source gcs"),
        (["--base-url", "ftp://x"], 1, "expected --base-url as http(s)://..., found 'ftp://x'"),
        (["--jobs", "0"], 2, "expected --jobs >= 1 and <= 256, found 0"),
    ],
)
def test_cli_errors_are_one_line(
    s2kit_exe: str, tmp_path: Path, extra: list[str], code: int, message: str
) -> None:
    args = {"--tile": "17SQV", "--start": "2021-06-01", "--end": "2021-06-30", "--out": str(tmp_path / "o")}
    for key, value in zip(extra[::2], extra[1::2], strict=True):
        args[key] = value
    cmd = [
        s2kit_exe,
        "fetch",
        *[x for kv in args.items() for x in kv],
        "--base-url",
        args.get("--base-url", "http://127.0.0.1:9"),
    ]
    if "--base-url" in args:
        cmd = cmd[:-2]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.startswith("s2kit: error: ") and message in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1:{port}", "connection refused - no server listens there"),
        ("nonexistent.invalid", "name does not resolve - this machine seems offline"),
    ],
)
def test_cli_unreachable_source_exits_3_with_one_whole_line(
    s2kit_exe: str, tmp_path: Path, host: str, why: str
) -> None:
    host = host.format(port=closed_port())
    cmd = [s2kit_exe, "fetch", "--tile", "17SQV", "--start", "2021-06-01", "--end", "2021-06-30"]
    cmd += ["--out", str(tmp_path / "o"), "--base-url", f"http://{host}"]  # default retries: none used
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr == (
        f"s2kit: error: expected to reach {host} (what was tried: http://{host}/storage/v1/b/"
        f"gcp-public-data-sentinel-2/o), found no connection: {why}" + proc.stderr.split(why, 1)[1]
    )
    assert proc.stderr.endswith(")\n") and os.listdir(tmp_path / "o") == [STATE_DIR]  # the lock only
    helptext = subprocess.run([s2kit_exe, "fetch", "--help"], capture_output=True, text=True).stdout
    assert "3 source unreachable" in " ".join(helptext.split())


def test_sigterm_stops_cleanly_with_130_then_resumes(fake_server, s2kit_exe: str, tmp_path: Path) -> None:
    bucket = FakeBucket().register(fake_server)
    d = derive_l1c(band_size=2_000)
    big_rel = sorted(r for r in d.files if r.endswith(".jp2"))[0]
    files = {**d.files, big_rel: os.urandom(2_000_000)}
    prefix = bucket.add_product("17SQV", d.name, files)
    bucket.rec.faults[prefix + big_rel] = [("throttle", (32_768, 0.03))]
    cmd = [s2kit_exe, "fetch", "--tile", "17SQV", "--start", "2021-06-01", "--end", "2021-06-30"]
    cmd += ["--out", str(tmp_path), "--base-url", base_url(fake_server), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = tmp_path / STATE_DIR / "staging" / d.name / (big_rel + ".part")
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size > 100_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.startswith("s2kit: error: interrupted:") and err.count("\n") == 1
    assert "run the same command again to resume" in err and not (tmp_path / d.name).exists()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ranges = [h.range for h in bucket.object_hits(big_rel)]
    assert ranges[0] is None and ranges[1] is not None and len(ranges) == 2
    assert tree_of(tmp_path / d.name)[0] == files


def test_names_from_before_the_fetch_package_still_import() -> None:
    # issue 13 moved fetch.py, gcs.py and cdse.py into s2kit/fetch/: the old names keep working
    import s2kit.cdse
    import s2kit.fetch
    import s2kit.gcs
    from s2kit.cli_progress import RichProgress as MovedProgress
    from s2kit.fetch import FetchedProduct, fetch_products
    from s2kit.fetch.cdse import CdseSource

    assert s2kit.gcs.GcsSource is GcsSource and s2kit.cdse.CdseSource is CdseSource
    assert s2kit.fetch.ProductReport is FetchedProduct and s2kit.fetch.fetch is fetch_products
    assert s2kit.fetch.RichProgress is MovedProgress


# ----------------------------------------------------------------------------- durability
def test_journal_entry_of_an_earlier_run_is_rechecked_before_reuse(
    fake_server, client: HttpClient, tmp_path: Path
) -> None:
    # files are flushed to disk once per product: a file the journal of a stopped run lists may
    # not have reached the disk (a crash); it must be checked again, not trusted by its size
    bucket = FakeBucket().register(fake_server)
    d = derive_l1c()
    prefix = bucket.add_product("17SQV", d.name, d.files)
    rels = sorted(r for r in d.files if r.endswith(".jp2"))
    bucket.bad_md5.add(prefix + rels[0])
    src = GcsSource(client, base_url(fake_server))
    assert fetch(src, sel(), tmp_path).by("failed")
    staged = tmp_path / STATE_DIR / "staging" / d.name / rels[1]
    journal = (tmp_path / STATE_DIR / "staging" / f"{d.name}.journal").read_text()
    assert f'"{rels[1]}"' in journal
    staged.write_bytes(bytes(len(d.files[rels[1]])))  # same size, the bytes lost
    bucket.bad_md5.clear()
    n = len(bucket.object_hits())
    report = fetch(src, sel(), tmp_path)
    assert report.ok and tree_of(tmp_path / d.name)[0] == d.files
    assert sorted(h.path.rsplit("/", 1)[1] for h in bucket.object_hits()[n:]) == sorted(
        r.rsplit("/", 1)[1] for r in rels[:2]
    )


def test_manifest_is_written_only_after_every_file_is_flushed(
    fake_server, client: HttpClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = FakeBucket().register(fake_server)
    d = derive_l1c()
    bucket.add_product("17SQV", d.name, d.files)
    flushed: set[str] = set()
    at_manifest: list[set[str]] = []
    real_fsync, real_write = os.fsync, fetch_run.atomic_write_text

    def fsync(fd: int) -> None:
        real_fsync(fd)
        flushed.add(os.readlink(f"/proc/self/fd/{fd}").removesuffix(".part"))

    def write(path: Path, text: str, *args: Any, **kwargs: Any) -> Path:
        if path.parent.name == "complete":
            at_manifest.append(set(flushed))
        return real_write(path, text, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(fetch_run, "atomic_write_text", write)
    report = fetch(GcsSource(client, base_url(fake_server)), sel(), tmp_path)
    assert report.ok and len(at_manifest) == 1
    staging = (tmp_path / STATE_DIR / "staging" / d.name).resolve()
    assert {str(staging / rel) for rel in d.files} <= at_manifest[0]
    assert str(staging) in at_manifest[0]  # the folder holding the names too
