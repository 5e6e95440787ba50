"""s2kit.cdse: STAC search + OData download against a fake CDSE on loopback."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from s2kit.fetch import STATE_DIR, FetchError, Selection, fetch
from s2kit.fetch.cdse import CdseSource, md5_from_checksum, stac_filter
from s2kit.http import HttpClient
from s2kit.plan import discover
from tests.support.fake_bucket import FakeCdse, derive_l1c
from tests.support.servers import base_url

TOKEN = "test-token-123"  # noqa: S105 - a fake token for the fake server


def sep2024(server: Any) -> tuple[FakeCdse, dict[str, Any]]:
    cdse = FakeCdse(token=TOKEN).register(server)
    made = {
        "a": derive_l1c(sensing="20240905T160829", baseline="0511", cloud=4.0),
        "a_old": derive_l1c(sensing="20240905T160829", baseline="0510", cloud=4.0),
        "cloudy": derive_l1c(sensing="20240910T160831", baseline="0511", cloud=80.0, spacecraft="S2B"),
        "b": derive_l1c(sensing="20240915T160829", baseline="0511", cloud=20.0),
        "other": derive_l1c(tile="18SUJ", sensing="20240905T160829", baseline="0511"),
        "oct": derive_l1c(sensing="20241005T160829", baseline="0511"),
    }
    for d in made.values():
        cdse.add(
            d, cloud=float(d.files["MTD_MSIL1C.xml"].split(b"<Cloud_Coverage_Assessment>")[1].split(b"<")[0])
        )
    return cdse, made


SEL = Selection(("17SQV",), date(2024, 9, 1), date(2024, 9, 30), max_cloud=30)


def test_checksum_and_filter_shapes() -> None:
    md5 = hashlib.md5(b"x").hexdigest()  # noqa: S324
    assert md5_from_checksum("d50110" + md5) == md5 == md5_from_checksum(md5.upper())
    assert md5_from_checksum("1220" + "ab" * 32) is None and md5_from_checksum(None) is None
    assert stac_filter(SEL) == {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "grid:code"}, "MGRS-17SQV"]},
            {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 30]},
        ],
    }
    two = stac_filter(Selection(("17SQV", "18SUJ"), date(2024, 9, 1), date(2024, 9, 2)))
    assert two["op"] == "or" and len(two["args"]) == 2


def test_search_pages_and_filters(fake_server, client: HttpClient) -> None:
    cdse, made = sep2024(fake_server)
    src = CdseSource(client, base_url(fake_server), token="", page_limit=1)
    found = src.candidates(SEL)
    assert sorted(p.name for p in found) == sorted(made[k].name for k in ("a", "a_old", "b"))
    searches = cdse.rec.of("stac")
    assert len(searches) == 3  # 3 matches, 1 per page, following links[rel=next] (POST body)
    p = next(p for p in found if p.name == made["a"].name)
    assert p.packaging == "zip" and p.target_name == made["a"].name + ".zip"
    assert p.cloud_cover == 4.0 and p.size == len(cdse.products[p.ref].data)
    assert p.md5 == hashlib.md5(cdse.products[p.ref].data).hexdigest()  # noqa: S324
    src.list_objects(p)
    assert (
        p.objects is not None
        and p.objects[0].url == f"{base_url(fake_server)}/odata/v1/Products({p.ref})/$value"
    )


def test_download_verified_zip_and_dedupe(fake_server, client: HttpClient, tmp_path: Path) -> None:
    cdse, made = sep2024(fake_server)
    report = fetch(CdseSource(client, base_url(fake_server), token=TOKEN), SEL, tmp_path)
    assert report.ok
    got = sorted(p.name for p in report.by("downloaded"))
    assert got == sorted(made[k].name + ".zip" for k in ("a", "b"))
    [dup] = [p for p in report.by("skipped") if p.reason_code == "duplicate"]
    assert dup.name == made["a_old"].name + ".zip"
    with zipfile.ZipFile(tmp_path / got[0]) as zf:
        assert f"{made['a'].name}/MTD_MSIL1C.xml" in zf.namelist()
    manifest = json.loads((tmp_path / STATE_DIR / "complete" / f"{got[0]}.json").read_text())
    assert manifest["source"] == "cdse" and list(manifest["files"]) == [got[0]]
    assert {c.scene for c in discover([tmp_path]) if c.problem is None} == {n[:-9] for n in got}
    odata = cdse.rec.of("odata")
    assert len(odata) == 2 and all(h.status == 200 for h in odata)
    again = fetch(CdseSource(client, base_url(fake_server), token=TOKEN), SEL, tmp_path)
    assert [p.decision for p in again.by("complete")] == ["complete", "complete"]
    assert len(cdse.rec.of("odata")) == 2


def test_resume_and_corruption(fake_server, client: HttpClient, tmp_path: Path) -> None:
    cdse, made = sep2024(fake_server)
    uid_a = next(u for u, p in cdse.products.items() if p.name == made["a"].name[:-5])
    uid_b = next(u for u, p in cdse.products.items() if p.name == made["b"].name[:-5])
    cdse.rec.faults = {uid_a: [("truncate", 50_000)], uid_b: [("corrupt", None)]}
    report = fetch(CdseSource(client, base_url(fake_server), token=TOKEN), SEL, tmp_path)
    assert report.ok
    ranges = [h.range for h in cdse.rec.of("odata", uid_a)]
    assert ranges == [None, "bytes=50000-"]
    assert len(cdse.rec.of("odata", uid_b)) == 2
    for key in ("a", "b"):
        data = (tmp_path / (made[key].name + ".zip")).read_bytes()
        assert data == next(p.data for p in cdse.products.values() if p.name == made[key].name[:-5])


def test_no_token_is_a_clear_error_and_dry_run_needs_none(
    fake_server, client: HttpClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cdse, made = sep2024(fake_server)
    monkeypatch.delenv("CDSE_ACCESS_TOKEN", raising=False)
    with pytest.raises(FetchError, match="expected CDSE_ACCESS_TOKEN in the environment, found none") as info:
        fetch(CdseSource(client, base_url(fake_server)), SEL, tmp_path / "out")
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()
    assert cdse.rec.hits == []  # refused before any request
    dry = fetch(CdseSource(client, base_url(fake_server)), SEL, tmp_path / "out", dry_run=True)
    assert dry.summary_dict()["download"] == 2 and not (tmp_path / "out").exists()


def test_refused_token_says_what_to_do(fake_server, client: HttpClient, tmp_path: Path) -> None:
    sep2024(fake_server)
    report = fetch(CdseSource(client, base_url(fake_server), token="expired"), SEL, tmp_path)
    failed = report.by("failed")
    assert len(failed) == 2
    assert "found HTTP 401" in str(failed[0].reason) and "export a fresh CDSE_ACCESS_TOKEN" in str(
        failed[0].reason
    )
    assert not any(p.suffix == ".zip" for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    "hostile",
    ["../../../../escape/{name}", "{tmp}/abs/{name}", "sub/{name}", "{name}\n", "{name}\x00x", ".."],
)
def test_stac_item_id_with_dotdot_writes_nothing_outside_out(
    fake_server, client: HttpClient, tmp_path: Path, hostile: str
) -> None:
    cdse = FakeCdse(token=TOKEN).register(fake_server)
    good = derive_l1c(sensing="20240905T160829", baseline="0511", cloud=4.0)
    evil = derive_l1c(sensing="20240915T160829", baseline="0511", cloud=4.0)
    cdse.add(good, cloud=4.0)
    item = cdse.add(evil, cloud=4.0)
    item.stac_id = hostile.format(name=item.name, tmp=tmp_path)
    out = tmp_path / "a" / "b" / "c" / "out"
    report = fetch(CdseSource(client, base_url(fake_server), token=TOKEN), SEL, out)
    assert [p.name for p in report.by("downloaded")] == [good.name + ".zip"]
    [skip] = report.by("skipped")
    assert skip.reason_code == "unsafe-name" and "\n" not in skip.name + str(skip.reason)
    keep = {out, *out.parents}
    assert [str(p) for p in tmp_path.rglob("*") if p not in keep and out not in p.parents] == []
    assert [h.path for h in cdse.rec.of("odata")] == [
        f"/odata/v1/Products({next(iter(cdse.products))})/$value"
    ]


def test_cli_cdse(fake_server, s2kit_exe: str, tmp_path: Path) -> None:
    sep2024(fake_server)
    cmd = [s2kit_exe, "fetch", "--source", "cdse", "--tile", "17SQV", "--start", "2024-09-01"]
    cmd += [
        "--end",
        "2024-09-30",
        "--max-cloud",
        "30",
        "--out",
        str(tmp_path),
        "--base-url",
        base_url(fake_server),
    ]
    env = {"PATH": "/usr/bin:/bin", "CDSE_ACCESS_TOKEN": TOKEN}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\ngot ") + proc.stdout.startswith("got ") == 2
    no_token = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert no_token.returncode == 1 and no_token.stderr.count("\n") == 1
    assert "CDSE_ACCESS_TOKEN" in no_token.stderr
