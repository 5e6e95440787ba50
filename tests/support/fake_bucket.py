"""A fake Google public bucket and a fake CDSE on loopback (pytest-httpserver), for s2kit fetch.

**What is real:** the product trees come from the REAL SAFE listings in
``data/fixtures/listings`` (file names and sizes as ESA shipped them) and the metadata files
whose real bytes are in ``data/fixtures`` (MTD_MSIL1C.xml, manifest.safe, MTD_TL.xml) are served
byte for byte. The wire format follows the real APIs: the Cloud Storage JSON API
``Objects: list`` (``items[]`` with ``name``, ``size`` as a string, ``md5Hash`` base64,
``generation`` as a string; ``prefixes[]`` with a delimiter; ``nextPageToken`` paging, items +
prefixes per page capped by ``maxResults``), public object URLs with HTTP ``Range``,
``<folder>_$folder$`` placeholder objects and no empty folders; the bucket's ``index.csv.gz``
columns; CDSE STAC ``/v1/search`` (POST, CQL2-JSON filter, ``links[rel=next]`` with a POST
body) and OData ``/odata/v1/Products(<uuid>)/$value`` behind a Bearer token.

**What is faked:** the bytes of image/QI files (deterministic pseudo-random data of the listed
size; ``n/a`` sizes become *na_size*), products for other tiles/dates (DERIVED from the real
L1C tree by renaming, their MTD_MSIL1C.xml derived from the real one with the cloud cover set by
the test), and the faults (500s, dropped connections, corrupted bodies, slow responses).
``crc32c`` is not served (s2kit checks MD5).
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import logging
import random
import re
import socket
import threading
import time
import uuid as uuidlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from . import FIXTURES

LISTINGS = FIXTURES / "listings"
REAL_L1C = "S2A_MSIL1C_20200717T221941_N0209_R029_T01LAC_20200717T234135.SAFE"
REAL_L2A = "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE"
BUCKET = "gcp-public-data-sentinel-2"
FOLDER = "_$folder$"

# real bytes for files of the real L1C listing (sizes checked against the listing)
REAL_BYTES = {
    "MTD_MSIL1C.xml": FIXTURES / "l1c_mtd" / f"{REAL_L1C[:-5]}_MTD_MSIL1C.xml",
    "manifest.safe": FIXTURES / "manifest" / f"{REAL_L1C[:-5]}_manifest.safe",
    "GRANULE/L1C_T01LAC_A026481_20200717T221944/MTD_TL.xml": FIXTURES
    / "tile_mtd"
    / "L1C_T01LAC_A026481_20200717T221944_N02.09_MTD_TL.xml",
}


# ----------------------------------------------------------------------------- SAFE trees
def parse_listing(path: Path) -> list[tuple[str, int | None]]:
    """``(relative path, size or None for n/a)`` of a listing in data/fixtures/listings."""
    out: list[tuple[str, int | None]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        size, rel = line.split(None, 1)
        out.append((rel.strip(), None if size == "n/a" else int(size)))
    return out


def listing(name: str) -> list[tuple[str, int | None]]:
    return parse_listing(LISTINGS / f"{name}.txt")


def pseudo_bytes(key: str, size: int) -> bytes:
    return random.Random(key).randbytes(size)  # noqa: S311 - test data, not crypto


def real_tree(name: str, na_size: int = 48_000) -> dict[str, bytes]:
    """The files of a real listing; real bytes where data/fixtures has them, else stand-ins."""
    files: dict[str, bytes] = {}
    for rel, size in listing(name):
        real = REAL_BYTES.get(rel) if name == REAL_L1C else None
        if real is not None and real.stat().st_size == size:
            files[rel] = real.read_bytes()
        else:
            files[rel] = pseudo_bytes(f"{name}/{rel}", size if size is not None else na_size)
    return files


@dataclass(frozen=True)
class Derived:
    """A product DERIVED from the real L1C tree (test-only): its name and its files."""

    name: str
    files: dict[str, bytes]

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def derive_l1c(
    tile: str = "17SQV",
    sensing: str = "20210602T160829",
    baseline: str = "0301",
    generation: str | None = None,
    orbit: int = 140,
    cloud: float = 12.5,
    spacecraft: str = "S2A",
    band_size: int = 40_000,
    bands: int = 13,
) -> Derived:
    """A GCS-style L1C tree for another tile/date/baseline, derived from the real T01LAC listing.

    Paths are renamed (granule, datastrip, band files), MTD_MSIL1C.xml is the real one with the
    product URI, image entries and Cloud_Coverage_Assessment replaced; *bands* IMG_DATA files
    (named from the real MTD's IMAGE_FILE entries) of *band_size* bytes are added.
    """
    gen = generation or (datetime.strptime(sensing, "%Y%m%dT%H%M%S") + timedelta(hours=3)).strftime(
        "%Y%m%dT%H%M%S"
    )
    name = f"{spacecraft}_MSIL1C_{sensing}_N{baseline}_R{orbit:03d}_T{tile}_{gen}.SAFE"
    old_granule, new_granule = "L1C_T01LAC_A026481_20200717T221944", f"L1C_T{tile}_A031000_{sensing}"
    old_ds, new_ds = "DS_SGS__20200717T234135_S20200717T221944", f"DS_SGS__{gen}_S{sensing}"
    subs = [
        (REAL_L1C, name),
        (REAL_L1C[:-5], name[:-5]),
        (old_granule, new_granule),
        (old_ds, new_ds),
        ("T01LAC_20200717T221941", f"T{tile}_{sensing}"),
    ]

    def rename(text: str) -> str:
        for a, b in subs:
            text = text.replace(a, b)
        return text

    real = real_tree(REAL_L1C)
    files: dict[str, bytes] = {}
    for rel, data in real.items():
        new_rel = rename(rel)
        if rel == "MTD_MSIL1C.xml":
            text = rename(data.decode("utf-8"))
            text = re.sub(
                r"<Cloud_Coverage_Assessment>[^<]*<",
                f"<Cloud_Coverage_Assessment>{cloud}<",
                text,
            )
            files[new_rel] = text.encode("utf-8")
            images = re.findall(r"<IMAGE_FILE>([^<]+)</IMAGE_FILE>", text)
            for image in images[:bands]:
                files[image + ".jp2"] = pseudo_bytes(f"{name}/{image}", band_size)
        elif rel in REAL_BYTES:  # real metadata text: names inside renamed too
            files[new_rel] = rename(data.decode("utf-8")).encode("utf-8")
        else:
            files[new_rel] = data
    return Derived(name, files)


def expected_dirs(files: dict[str, bytes] | list[str]) -> set[str]:
    """Folders implied by the file paths plus the empty ones Sen2Cor needs."""
    dirs: set[str] = set()
    for rel in files:
        parts = rel.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    dirs |= {"AUX_DATA", "HTML", "rep_info"}
    dirs |= {
        f"GRANULE/{d.split('/')[1]}/AUX_DATA" for d in dirs if d.count("/") == 1 and d.startswith("GRANULE/")
    }
    dirs |= {
        f"DATASTRIP/{d.split('/')[1]}/QI_DATA"
        for d in dirs
        if d.count("/") == 1 and d.startswith("DATASTRIP/")
    }
    return dirs


def tree_of(root: Path) -> tuple[dict[str, bytes], set[str]]:
    """Files (bytes) and folders under *root*, relative POSIX paths."""
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    dirs = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}
    return files, dirs


def tile_prefix(tile: str) -> str:
    return f"tiles/{tile[:2]}/{tile[2]}/{tile[3:]}/"


def zip_product(name: str, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for rel, data in sorted(files.items()):
            zf.writestr(f"{name}/{rel}", data)
    return buf.getvalue()


# ----------------------------------------------------------------------------- serving bytes
@dataclass
class Hit:
    kind: str  # list | object | stac | odata
    path: str
    range: str | None
    status: int = 200
    sent: int = 0
    query: dict[str, str] = field(default_factory=dict)


class Recorder:
    """Request log and fault queues shared by the fakes."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.faults: dict[str, list[tuple[str, Any]]] = {}  # key -> faults consumed per request
        self.always: dict[str, tuple[str, Any]] = {}  # key -> fault on every request

    def fault(self, key: str) -> tuple[str, Any] | None:
        with self.lock:
            queue = self.faults.get(key) or []
            if queue:
                return queue.pop(0)
        return self.always.get(key)

    def hit(self, kind: str, request: Request) -> Hit:
        h = Hit(kind, request.path, request.headers.get("Range"), query=dict(request.args))
        with self.lock:
            self.hits.append(h)
        return h

    def of(self, kind: str, path_contains: str = "") -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.kind == kind and path_contains in h.path]


def serve_bytes(rec: Recorder, hit: Hit, data: bytes, fault: tuple[str, Any] | None, etag: str) -> Response:
    """*data* with Range support and an optional injected fault."""
    if fault and fault[0] == "status":
        hit.status = int(fault[1])
        return Response(json.dumps({"error": {"code": fault[1], "message": "injected"}}), status=fault[1])
    if fault and fault[0] == "slow":
        time.sleep(float(fault[1]))
    if fault and fault[0] == "corrupt":
        data = bytes([data[0] ^ 0xFF]) + data[1:] if data else b"x"
    headers = {"Accept-Ranges": "bytes", "ETag": etag}
    start = 0
    rng = hit.range
    if rng and not (fault and fault[0] == "ignore-range"):
        start = int(rng.removeprefix("bytes=").split("-")[0])
        if start >= len(data):
            hit.status = 416
            return Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
    body = data[start:]
    status = 206 if start else 200
    hit.status = status
    headers["Content-Length"] = str(len(body))
    if fault and fault[0] in ("truncate", "throttle"):
        kind, arg = fault

        def stream() -> Iterator[bytes]:
            if kind == "truncate":
                hit.sent += int(arg)
                yield body[: int(arg)]
                raise ConnectionAbortedError("injected: connection dropped")
            chunk, delay = arg
            for i in range(0, len(body), chunk):
                time.sleep(delay)
                piece = body[i : i + chunk]
                hit.sent += len(piece)
                yield piece

        return Response(stream(), status=status, headers=headers, direct_passthrough=True)
    hit.sent = len(body)
    return Response(body, status=status, headers=headers, content_type="application/octet-stream")


# ----------------------------------------------------------------------------- the bucket
@dataclass
class Obj:
    name: str
    data: bytes
    generation: int
    md5_b64: str = ""

    def __post_init__(self) -> None:  # computed once, as GCS stores it with the object
        self.md5_b64 = base64.b64encode(hashlib.md5(self.data).digest()).decode()  # noqa: S324
        self.md5_hex = hashlib.md5(self.data).hexdigest()  # noqa: S324


class FakeBucket:
    """Objects of a public bucket, served as the JSON API listing and public object URLs."""

    def __init__(self, bucket: str = BUCKET, page_size: int = 1000) -> None:
        self.bucket = bucket
        self.page_size = page_size
        self.objects: dict[str, Obj] = {}
        self.rec = Recorder()
        self.listing_faults: list[tuple[str, Any]] = []
        self.bad_md5: set[str] = set()  # names whose listed md5Hash is wrong
        # a hostile mirror (test-only): folders it lists that are not derived from object names,
        # whole listing documents it serves for a prefix, sizes it declares that are not the bytes'
        self.extra_prefixes: dict[str, list[str]] = {}  # listed prefix -> folder prefixes added
        self.listing_docs: dict[str, Any] = {}  # listed prefix -> JSON document (or raw text) served
        self.declared_size: dict[str, int] = {}  # object name -> "size" the listing claims
        self._gen = 1_600_000_000_000_000

    # -------------------------------------------------------------- content
    def put(self, name: str, data: bytes) -> Obj:
        self._gen += 1
        obj = Obj(name, data, self._gen)
        self.objects[name] = obj
        return obj

    def add_product(
        self, tile: str, name: str, files: dict[str, bytes], placeholders: tuple[str, ...] = ("", "GRANULE")
    ) -> str:
        """Store a product GCS-style (no empty folders) with some ``_$folder$`` placeholders."""
        prefix = f"{tile_prefix(tile)}{name}/"
        for rel, data in files.items():
            self.put(prefix + rel, data)
        for folder in placeholders:
            self.put(f"{prefix}{folder}".rstrip("/") + FOLDER, b"")
        return prefix

    def add_index(self, rows: list[dict[str, str]]) -> None:
        self.put("index.csv.gz", index_bytes(rows))

    def index_row(self, tile: str, name: str, cloud: float) -> dict[str, str]:
        size = sum(
            len(o.data) for n, o in self.objects.items() if n.startswith(f"{tile_prefix(tile)}{name}/")
        )
        sensing = datetime.strptime(name.split("_")[2], "%Y%m%dT%H%M%S")
        return {
            "GRANULE_ID": f"L1C_T{tile}_A031000_{name.split('_')[2]}",
            "PRODUCT_ID": name[:-5],
            "DATATAKE_IDENTIFIER": f"G{name[:3]}_{name.split('_')[2]}_031000_N{name.split('_')[3][1:3]}.{name.split('_')[3][3:]}",
            "MGRS_TILE": tile,
            "SENSING_TIME": sensing.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "TOTAL_SIZE": str(size),
            "CLOUD_COVER": f"{cloud}",
            "GEOMETRIC_QUALITY_FLAG": "PASSED",
            "GENERATION_TIME": datetime.strptime(name[:-5].split("_")[6], "%Y%m%dT%H%M%S").strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            ),
            "NORTH_LAT": "36.1",
            "SOUTH_LAT": "35.1",
            "WEST_LON": "-78.9",
            "EAST_LON": "-77.6",
            "BASE_URL": f"gs://{self.bucket}/{tile_prefix(tile)}{name}",
        }

    # -------------------------------------------------------------- HTTP
    def register(self, server: HTTPServer) -> FakeBucket:
        server.expect_request(re.compile(r"^/storage/v1/b/[^/]+/o$")).respond_with_handler(self.handle_list)
        server.expect_request(re.compile(rf"^/{re.escape(self.bucket)}/.+")).respond_with_handler(
            self.handle_object
        )
        return self

    def handle_list(self, request: Request) -> Response:
        hit = self.rec.hit("list", request)
        if request.path != f"/storage/v1/b/{self.bucket}/o":
            hit.status = 404
            error = {"error": {"code": 404, "message": "The specified bucket does not exist."}}
            return Response(json.dumps(error), status=404, content_type="application/json")
        with self.rec.lock:
            fault = self.listing_faults.pop(0) if self.listing_faults else None
        if fault and fault[0] == "status":
            hit.status = int(fault[1])
            return Response("injected", status=fault[1])
        if fault and fault[0] == "garbage":
            return Response("<html>not json</html>", content_type="text/html")
        prefix = request.args.get("prefix", "")
        delimiter = request.args.get("delimiter") or None
        if prefix in self.listing_docs:
            doc = self.listing_docs[prefix]
            return Response(doc if isinstance(doc, str) else json.dumps(doc), content_type="application/json")
        limit = min(int(request.args.get("maxResults", "1000")), self.page_size, 1000)
        after = (
            base64.urlsafe_b64decode(request.args["pageToken"]).decode()
            if "pageToken" in request.args
            else ""
        )
        items: list[dict[str, Any]] = []
        prefixes: list[str] = []
        count = 0
        next_token = None
        after_key = ""
        for name in sorted(self.objects):
            if not name.startswith(prefix) or (after and name <= after):
                continue
            rest = name[len(prefix) :]
            if delimiter and delimiter in rest:
                sub = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if sub in prefixes:
                    continue
                if count == limit:
                    next_token = after_key
                    break
                prefixes.append(sub)
                after_key = sub + "\U0010ffff"
            else:
                if count == limit:
                    next_token = after_key
                    break
                items.append(self._resource(self.objects[name], request))
                after_key = name
            count += 1
        if delimiter and "pageToken" not in request.args:
            prefixes += [p for p in self.extra_prefixes.get(prefix, []) if p not in prefixes]
        page: dict[str, Any] = {"kind": "storage#objects"}
        if next_token is not None:
            page["nextPageToken"] = base64.urlsafe_b64encode(next_token.encode()).decode()
        if prefixes:
            page["prefixes"] = prefixes
        if items:
            page["items"] = items
        return Response(json.dumps(page), content_type="application/json; charset=UTF-8")

    def _resource(self, obj: Obj, request: Request) -> dict[str, Any]:
        host = request.host_url.rstrip("/")
        quoted = obj.name.replace("/", "%2F")
        md5 = obj.md5_b64 if obj.name not in self.bad_md5 else base64.b64encode(b"\0" * 16).decode()
        return {
            "kind": "storage#object",
            "id": f"{self.bucket}/{obj.name}/{obj.generation}",
            "selfLink": f"{host}/storage/v1/b/{self.bucket}/o/{quoted}",
            "mediaLink": f"{host}/download/storage/v1/b/{self.bucket}/o/{quoted}?generation={obj.generation}&alt=media",
            "name": obj.name,
            "bucket": self.bucket,
            "generation": str(obj.generation),
            "metageneration": "1",
            "contentType": "application/octet-stream",
            "storageClass": "STANDARD",
            "size": str(self.declared_size.get(obj.name, len(obj.data))),
            "md5Hash": md5,
            "etag": "CK" + base64.b64encode(str(obj.generation).encode()).decode()[:10],
            "timeCreated": "2021-06-02T19:31:07.441Z",
            "updated": "2021-06-02T19:31:07.441Z",
        }

    def handle_object(self, request: Request) -> Response:
        hit = self.rec.hit("object", request)
        name = request.path[len(self.bucket) + 2 :]
        obj = self.objects.get(name)
        if obj is None:
            hit.status = 404
            return Response("<Error><Code>NoSuchKey</Code></Error>", status=404)
        return serve_bytes(self.rec, hit, obj.data, self.rec.fault(name), f'"{obj.md5_hex}"')

    # -------------------------------------------------------------- assertions
    def object_hits(self, name_contains: str = "") -> list[Hit]:
        return self.rec.of("object", name_contains)

    def listing_hits(self) -> list[Hit]:
        return self.rec.of("list")


def index_bytes(rows: list[dict[str, str]]) -> bytes:
    from s2kit.fetch.gcs import INDEX_COLUMNS

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(INDEX_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return gzip.compress(buf.getvalue().encode("utf-8"), mtime=0)


# ----------------------------------------------------------------------------- CDSE
@dataclass
class CdseProduct:
    uuid: str
    name: str  # without .SAFE
    data: bytes
    cloud: float
    tile: str
    when: str
    stac_id: str | None = None  # the item "id" served, when a test makes it differ from the name


class FakeCdse:
    """STAC ``/v1/search`` + OData ``/odata/v1/Products(<uuid>)/$value`` (Bearer token)."""

    def __init__(self, token: str = "test-token-123") -> None:
        self.token = token
        self.products: dict[str, CdseProduct] = {}
        self.rec = Recorder()
        self.checksum_style = "multihash"

    def add(self, derived: Derived, cloud: float) -> CdseProduct:
        name = derived.name[:-5]
        parts = name.split("_")
        when = datetime.strptime(parts[2], "%Y%m%dT%H%M%S").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        uid = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, name))
        p = CdseProduct(uid, name, zip_product(derived.name, derived.files), cloud, parts[5][1:], when)
        self.products[uid] = p
        return p

    def register(self, server: HTTPServer) -> FakeCdse:
        server.expect_request("/v1/search", method="POST").respond_with_handler(self.handle_search)
        server.expect_request(re.compile(r"^/odata/v1/Products\(.+\)/\$value$")).respond_with_handler(
            self.handle_odata
        )
        return self

    def _item(self, p: CdseProduct, host: str) -> dict[str, Any]:
        md5 = hashlib.md5(p.data).hexdigest()  # noqa: S324
        checksum = "d50110" + md5 if self.checksum_style == "multihash" else md5
        return {
            "type": "Feature",
            "stac_version": "1.1.0",
            "id": p.name if p.stac_id is None else p.stac_id,
            "collection": "sentinel-2-l1c",
            "bbox": [-78.9, 35.1, -77.6, 36.1],
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[-78.9, 35.1], [-77.6, 35.1], [-77.6, 36.1], [-78.9, 35.1]]],
            },
            "properties": {
                "datetime": p.when,
                "platform": "sentinel-" + p.name[1:3].lower(),
                "grid:code": f"MGRS-{p.tile}",
                "eo:cloud_cover": p.cloud,
                "product:type": "S2MSI1C",
                "processing:version": p.name.split("_")[3][1:3] + "." + p.name.split("_")[3][3:],
            },
            "assets": {
                "Product": {
                    "href": f"{host}/odata/v1/Products({p.uuid})/$value",
                    "type": "application/zip",
                    "title": "Product",
                    "roles": ["data", "metadata", "archive"],
                    "file:size": len(p.data),
                    "file:checksum": checksum,
                    "auth:refs": ["oidc"],
                }
            },
            "links": [],
        }

    def handle_search(self, request: Request) -> Response:
        self.rec.hit("stac", request)
        body = json.loads(request.get_data() or b"{}")
        start, _, end = str(body.get("datetime", "/")).partition("/")
        limit = int(body.get("limit", 10))
        offset = int(body.get("token", 0))
        chosen = [
            p
            for p in sorted(self.products.values(), key=lambda p: p.name)
            if "sentinel-2-l1c" in body.get("collections", [])
            and start <= p.when <= end.replace(".999Z", ".999999Z")
            and _cql(body.get("filter"), p)
        ]
        page = chosen[offset : offset + limit]
        host = request.host_url.rstrip("/")
        links: list[dict[str, Any]] = [{"rel": "self", "href": f"{host}/v1/search"}]
        if offset + limit < len(chosen):
            links.append(
                {
                    "rel": "next",
                    "href": f"{host}/v1/search",
                    "method": "POST",
                    "body": {"token": offset + limit},
                    "merge": True,
                }
            )
        doc = {
            "type": "FeatureCollection",
            "features": [self._item(p, host) for p in page],
            "links": links,
            "numberReturned": len(page),
        }
        return Response(json.dumps(doc), content_type="application/geo+json")

    def handle_odata(self, request: Request) -> Response:
        hit = self.rec.hit("odata", request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            hit.status = 401
            return Response(
                json.dumps({"detail": "Expired signature!"}), status=401, content_type="application/json"
            )
        uid = request.path.split("(", 1)[1].split(")", 1)[0]
        p = self.products.get(uid)
        if p is None:
            hit.status = 404
            return Response(json.dumps({"detail": "Not found"}), status=404)
        etag = '"' + hashlib.md5(p.data).hexdigest() + '"'  # noqa: S324
        return serve_bytes(self.rec, hit, p.data, self.rec.fault(uid), etag)


def _cql(expr: Any, p: CdseProduct) -> bool:
    if expr is None:
        return True
    op, args = expr["op"], expr["args"]
    if op == "and":
        return all(_cql(a, p) for a in args)
    if op == "or":
        return any(_cql(a, p) for a in args)
    prop = {"grid:code": f"MGRS-{p.tile}", "eo:cloud_cover": p.cloud}[args[0]["property"]]
    if op == "=":
        return bool(prop == args[1])
    if op == "<=":
        return bool(prop <= args[1])
    raise AssertionError(f"unsupported CQL2 op {op}")


# ----------------------------------------------------------------------------- fixtures
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def count_connections(monkeypatch: Any) -> list[str]:
    """Record every connection attempt urllib3 makes ("host:port"), at the socket layer; use
    as a fixture body: ``connects = pytest.fixture(...)`` returning ``count_connections(mp)``."""
    import urllib3.util.connection as u3conn

    attempts: list[str] = []
    real = u3conn.create_connection

    def counting(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(f"{address[0]}:{address[1]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(u3conn, "create_connection", counting)
    return attempts


def loopback_server() -> Iterator[HTTPServer]:
    """A threaded loopback server of its own (downloads run in parallel); use as a fixture body:
    ``fake_server = pytest.fixture(...)`` in the test module, ``yield from loopback_server()``."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on stderr
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


# ----------------------------------------------------------------------------- demo server
def demo_bucket(server: HTTPServer) -> FakeBucket:
    """17SQV, June 2021 (derived products: a datatake reprocessed N0300 -> N0301, a cloudy one,
    a PB 04.00 one) and the REAL T01LAC tree; as used for the README's output."""
    bucket = FakeBucket().register(server)
    for d in (
        derive_l1c(sensing="20210602T160829", baseline="0300", cloud=12.5),
        derive_l1c(sensing="20210602T160829", baseline="0301", cloud=12.5),
        derive_l1c(sensing="20210607T160831", baseline="0301", cloud=55.0, spacecraft="S2B"),
        derive_l1c(sensing="20210612T160829", baseline="0400", cloud=2.0),
        derive_l1c(sensing="20210617T160829", baseline="0301", cloud=21.0, spacecraft="S2B"),
    ):
        bucket.add_product("17SQV", d.name, d.files)
    bucket.add_product("01LAC", REAL_L1C, real_tree(REAL_L1C))
    return bucket


if __name__ == "__main__":  # python -m tests.support.fake_bucket: serve the demo bucket until Ctrl-C
    gen = loopback_server()
    srv = next(gen)
    demo_bucket(srv)
    print(f"fake bucket on loopback: --base-url {srv.url_for('/').rstrip('/')}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        gen.close()
