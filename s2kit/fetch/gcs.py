"""Google's public Sentinel-2 bucket (``gcp-public-data-sentinel-2``) over plain HTTPS.

No gsutil, no gcloud, no credentials: the bucket is public, so two HTTP endpoints suffice
(``--base-url`` replaces ``https://storage.googleapis.com`` for a mirror or a test server):

* **listing** - the Cloud Storage JSON API ``Objects: list``,
  ``GET {base}/storage/v1/b/gcp-public-data-sentinel-2/o?prefix=tiles/17/S/QV/&delimiter=/``.
  The response (https://cloud.google.com/storage/docs/json_api/v1/objects/list) has
  ``items[]`` (object resources: ``name``, ``size`` *as a string*, ``md5Hash`` - base64 of the
  16-byte MD5 -, ``generation`` as a string), ``prefixes[]`` (the "sub-folders" when a
  ``delimiter`` is given) and ``nextPageToken`` while more pages follow (passed back as
  ``pageToken``; items + prefixes per page are capped by ``maxResults``, at most 1000).
  ``fields=`` asks only for what is used (a partial response, standard JSON API parameter).
* **download** - the public object URL ``{base}/gcp-public-data-sentinel-2/<object name>``,
  which honours HTTP ``Range`` (resume).

Bucket layout (https://cloud.google.com/storage/docs/public-datasets/sentinel-2 and e.g. the
``BASE_URL`` column of the index): ``tiles/<UTM zone, 2 digits>/<latitude band>/<grid square>/
<PRODUCT>.SAFE/...``, e.g. ``tiles/17/S/QV/S2A_MSIL1C_..._T17SQV_....SAFE/MTD_MSIL1C.xml``.
The bucket stores no empty folders; some folders exist only as zero-byte ``<folder>_$folder$``
placeholder objects (the convention of the old GCS console / S3 tools, see e.g. jets3t's
``isDirectoryPlaceholder``), which are not files of the product: they are skipped and only
remembered as folders to create.

``index.csv.gz`` at the bucket root lists every granule with the columns ``GRANULE_ID,
PRODUCT_ID, DATATAKE_IDENTIFIER, MGRS_TILE, SENSING_TIME, TOTAL_SIZE, CLOUD_COVER,
GEOMETRIC_QUALITY_FLAG, GENERATION_TIME, NORTH_LAT, SOUTH_LAT, WEST_LON, EAST_LON, BASE_URL``
(header as shown in FORCE's documentation, rows as read by fetchLandsatSentinelFromGoogleCloud's
``fels/sentinel2.py``; ``BASE_URL`` is ``gs://gcp-public-data-sentinel-2/tiles/.../X.SAFE``).
With ``--index`` tile, date and cloud cover are filtered from it without listing the tiles.

Without the index the cloud cover of a candidate is read from its own ``MTD_MSIL1C.xml``
(``Cloud_Coverage_Assessment``, as in the real ESA files in ``data/fixtures/l1c_mtd``); those
bytes are checked against the listing's MD5 and reused for the download.

A mirror is not trusted: a product folder must be exactly ``<tile folder>/<product name>.SAFE/``
(anything else - ``..``, another prefix, extra components, a name that does not parse, control
characters - is skipped with the reason ``unsafe-name``), a listing of the wrong JSON shape fails
the product (or the run, for the tile listing) with one line, and the bytes read from the mirror
into memory are capped: a listing page at :data:`MAX_LISTING_BYTES`, ``MTD_MSIL1C.xml`` (real ones
weigh < 1 MB) at :data:`MAX_MTD_BYTES`, refused above that before or while reading.

The bucket receives no new data after late August 2024 (lab experience, issue 8): for later
dates use CDSE (:mod:`s2kit.cdse`).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import InputError, MetadataError
from ..http import HttpClient, HttpError, is_url, md5_bytes
from ..safe import parse_product_name, strip_product_suffix
from ..xmlsafe import first_elements, parse_xml
from .model import FetchError, RemoteObject, RemoteProduct, Selection, printable, product_folder_problem

__all__ = [
    "BUCKET",
    "DEFAULT_BASE_URL",
    "FOLDER_SUFFIX",
    "GcsSource",
    "INDEX_COLUMNS",
    "LAST_DATA",
    "MAX_LISTING_BYTES",
    "MAX_MTD_BYTES",
    "cloud_from_mtd",
    "tile_prefix",
]

BUCKET = "gcp-public-data-sentinel-2"
DEFAULT_BASE_URL = "https://storage.googleapis.com"
FOLDER_SUFFIX = "_$folder$"
INDEX_NAME = "index.csv.gz"
INDEX_COLUMNS = (
    "GRANULE_ID",
    "PRODUCT_ID",
    "DATATAKE_IDENTIFIER",
    "MGRS_TILE",
    "SENSING_TIME",
    "TOTAL_SIZE",
    "CLOUD_COVER",
    "GEOMETRIC_QUALITY_FLAG",
    "GENERATION_TIME",
    "NORTH_LAT",
    "SOUTH_LAT",
    "WEST_LON",
    "EAST_LON",
    "BASE_URL",
)
LAST_DATA = date(2024, 8, 31)  # "no new data after late August 2024"
LIST_FIELDS = "items(name,size,md5Hash,generation),prefixes,nextPageToken"
MAX_PAGES = 100_000
# Caps on what a (possibly hostile) mirror can make s2kit hold in memory. Real MTD_MSIL1C.xml
# files weigh 50-600 kB (data/fixtures/l1c_mtd); a listing page of 1000 objects ~0.5 MB.
# (Own constants: s2kit.xmlsafe gets a shared MAX_METADATA_BYTES in a parallel change.)
MAX_MTD_BYTES = 16 * 1024 * 1024
MAX_LISTING_BYTES = 64 * 1024 * 1024
_MTD_NAMES = ("MTD_MSIL1C.xml",)
_PLAIN_COMPONENT_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,249}")  # no "." or ".."


def tile_prefix(tile: str) -> str:
    """``17SQV`` -> ``tiles/17/S/QV/``."""
    return f"tiles/{tile[:2]}/{tile[2]}/{tile[3:]}/"


def cloud_from_mtd(data: bytes, source: str) -> float:
    """``Cloud_Coverage_Assessment`` of an L1C product MTD, in percent."""
    root = parse_xml(data, source)
    found = first_elements(root, ["Cloud_Coverage_Assessment"])["Cloud_Coverage_Assessment"]
    text = (found[0].text or "").strip() if found else ""
    try:
        return float(text)
    except ValueError:
        raise MetadataError(
            f"expected Cloud_Coverage_Assessment as a number, found {repr(text) if text else 'none'}", source
        ) from None


def _int(value: Any, what: str, where: str) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    if number is None or number < 0:
        raise FetchError(
            f"{printable(where)}: expected {what} as a non-negative integer, "
            f"found {printable(repr(value), 80)}"
        )
    return number


class GcsSource:
    """Listing, selection and object URLs of the public bucket (or a mirror at *base_url*)."""

    name = "gcs"

    def __init__(
        self,
        client: HttpClient,
        base_url: str | None = None,
        *,
        bucket: str = BUCKET,
        index: str | None = None,
        state_dir: Path | None = None,
        page_size: int = 1000,
    ) -> None:
        self.client = client
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if not is_url(self.base_url):
            raise InputError(f"expected --base-url as http(s)://..., found {self.base_url!r}")
        self.bucket = bucket
        self.index = index
        self.state_dir = state_dir
        self.page_size = page_size
        self._dry_run = False
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # ------------------------------------------------------------------ URLs
    @property
    def list_url(self) -> str:
        return f"{self.base_url}/storage/v1/b/{quote(self.bucket, safe='')}/o"

    def object_url(self, name: str) -> str:
        return f"{self.base_url}/{quote(self.bucket, safe='')}/{quote(name, safe='/')}"

    def describe(self) -> str:
        return f"gcs {self.base_url} (bucket {self.bucket})"

    def check_ready(self, dry_run: bool) -> None:
        self._dry_run = dry_run  # a dry run writes nothing: an index is then read from a temp copy

    def explain(self, exc: HttpError) -> str:
        return str(exc)

    def notes(self, sel: Selection) -> list[str]:
        if sel.end > LAST_DATA:
            return [
                f"the public bucket receives no new data after late August 2024: products sensed after "
                f"{LAST_DATA} are on CDSE (--source cdse)"
            ]
        return []

    # ------------------------------------------------------------------ listing
    def pages(self, prefix: str, delimiter: str | None) -> Iterator[dict[str, Any]]:
        """Every page of ``Objects: list`` for *prefix*, following ``nextPageToken``."""
        token: str | None = None
        for _ in range(MAX_PAGES):
            params = {"prefix": prefix, "maxResults": str(self.page_size), "fields": LIST_FIELDS}
            if delimiter:
                params["delimiter"] = delimiter
            if token:
                params["pageToken"] = token
            where = f"{self.list_url}?prefix={printable(prefix)}"
            body, headers = self.client.get_capped(
                self.list_url, MAX_LISTING_BYTES, "a listing page", params=params
            )
            try:
                page = json.loads(body)
            except (ValueError, RecursionError):
                found = headers.get("Content-Type", "no content type")
                raise FetchError(f"{where}: expected a JSON object listing, found {found}") from None
            if not isinstance(page, dict):
                raise FetchError(f"{where}: expected a JSON object listing, found {type(page).__name__}")
            for key in ("items", "prefixes"):
                if not isinstance(page.get(key, []), list):
                    raise FetchError(f"{where}: expected {key!r} as a list, found {type(page[key]).__name__}")
            yield page
            token = page.get("nextPageToken") or None
            if token is None:
                return
            if not isinstance(token, str):
                raise FetchError(
                    f"{where}: expected 'nextPageToken' as a string, found {type(token).__name__}"
                )
        raise FetchError(
            f"{self.list_url}?prefix={prefix}: expected the listing to end, found {MAX_PAGES} pages"
        )

    def candidates(self, sel: Selection) -> list[RemoteProduct]:
        if self.index is not None:
            return self._from_index(sel)
        out: list[RemoteProduct] = []
        for tile in sel.tiles:
            base = tile_prefix(tile)
            for page in self.pages(base, "/"):
                for prefix in page.get("prefixes") or []:
                    product = self._folder(base, prefix)
                    if product is not None:
                        out.append(product)
                # items at this level are ``X.SAFE_$folder$`` placeholders (or stray files): a
                # product with files is in ``prefixes``; a bare placeholder has nothing to fetch
        return out

    def _folder(self, base: str, prefix: Any) -> RemoteProduct | None:
        """The product of one listed folder *prefix* under the tile folder *base*.

        It must be exactly ``<base><product>.SAFE/``; another folder (one plain component that is
        not a ``.SAFE``) is not a product and ignored; anything else is a product skipped as
        ``unsafe-name`` (never a path: nothing is made of it).
        """
        text = prefix if isinstance(prefix, str) else repr(prefix)
        rest = text[len(base) :] if isinstance(prefix, str) and text.startswith(base) else None
        folder = rest[:-1] if rest is not None and rest.endswith("/") else None
        if folder is not None and "/" not in folder:
            if _PLAIN_COMPONENT_RE.fullmatch(folder) and not folder.upper().endswith(".SAFE"):
                return None  # some other folder of the tile, not a product
            problem = product_folder_problem(folder, parse=False)  # unparsed: skipped as not-a-product
            if problem is None:
                return self._product(folder, text)
        else:
            problem = f"expected the folder {base}<product>.SAFE/, found '{printable(text)}'"
        return RemoteProduct(name=printable(text), parsed=None, source=self.name, ref="", unsafe=problem)

    def _product(self, folder: str, prefix: str, **extra: Any) -> RemoteProduct:
        try:
            parsed = parse_product_name(folder)
        except InputError:
            parsed = None
        name = strip_product_suffix(folder) + ".SAFE"
        return RemoteProduct(name=name, parsed=parsed, source=self.name, ref=prefix, **extra)

    def list_objects(self, product: RemoteProduct) -> None:
        """Fill *product*'s objects (files) and dirs (``_$folder$`` and ``x/`` markers)."""
        prefix = product.ref
        objects: list[RemoteObject] = []
        dirs: list[str] = []
        for page in self.pages(prefix, None):
            for item in page.get("items") or []:
                if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                    raise FetchError(
                        f"{self.list_url}?prefix={printable(prefix)}: expected objects with a name, "
                        f"found {printable(repr(item), 80)}"
                    )
                name = item["name"]
                if not name.startswith(prefix):
                    continue
                rel = name[len(prefix) :]
                if rel.endswith(FOLDER_SUFFIX):
                    if rel[: -len(FOLDER_SUFFIX)]:
                        dirs.append(rel[: -len(FOLDER_SUFFIX)])
                    continue
                if rel.endswith("/") or not rel:
                    if rel.rstrip("/"):
                        dirs.append(rel.rstrip("/"))
                    continue
                size = _int(item.get("size"), "size", name)
                md5 = item.get("md5Hash")
                generation = item.get("generation")
                if md5 is not None and not isinstance(md5, str):
                    raise FetchError(
                        f"{printable(name)}: expected md5Hash as base64 text, found {type(md5).__name__}"
                    )
                if md5:
                    try:
                        md5_bytes(md5)
                    except HttpError as exc:
                        raise FetchError(f"{printable(name)}: {exc}") from None
                if generation is not None and not isinstance(generation, (str, int)):
                    raise FetchError(
                        f"{printable(name)}: expected generation as a string, "
                        f"found {type(generation).__name__}"
                    )
                objects.append(
                    RemoteObject(
                        rel=rel,
                        url=self.object_url(name),
                        size=size,
                        md5=str(md5) if md5 else None,
                        generation=str(generation) if generation is not None else None,
                    )
                )
        if not objects:
            raise FetchError(
                f"{self.object_url(prefix)}: expected the product's files, found none in the listing"
            )
        product.objects = sorted(objects, key=lambda o: o.rel)
        product.dirs = sorted(set(dirs))

    def cloud_cover(self, product: RemoteProduct) -> float | None:
        """Read ``Cloud_Coverage_Assessment`` from the product's ``MTD_MSIL1C.xml``."""
        assert product.objects is not None
        mtd = next((o for o in product.objects if o.rel in _MTD_NAMES), None)
        if mtd is None:
            mtd = next(
                (o for o in product.objects if "/" not in o.rel and "_MTD_SAFL1C_" in o.rel.upper()),
                None,
            )
        if mtd is None:
            raise FetchError(f"{product.name}: expected MTD_MSIL1C.xml in the listing, found none")
        if mtd.size > MAX_MTD_BYTES:
            raise FetchError(
                f"{mtd.url}: expected MTD_MSIL1C.xml of at most {MAX_MTD_BYTES} bytes, found {mtd.size} "
                "declared by the listing: refused"
            )
        data = self.client.get_bytes(
            mtd.url, MAX_MTD_BYTES, "MTD_MSIL1C.xml", headers={"Accept-Encoding": "identity"}
        )
        product.cloud_cover = cloud_from_mtd(data, mtd.url)
        product.prefetched[mtd.rel] = data  # stored (after the MD5 check) instead of a second GET
        return product.cloud_cover

    # ------------------------------------------------------------------ index.csv.gz
    def _index_file(self) -> Path:
        assert self.index is not None
        if self.index != "bucket" and not is_url(self.index):
            path = Path(self.index)
            if not path.is_file():
                raise InputError("expected the bucket's index.csv.gz, found no such file", path)
            return path
        url = self.object_url(INDEX_NAME) if self.index == "bucket" else self.index
        cached = self.state_dir / INDEX_NAME if self.state_dir is not None else None
        if cached is not None and cached.is_file():
            return cached
        if cached is None or self._dry_run:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="s2kit-index-")
            cached = Path(self._tmp.name) / INDEX_NAME
            if cached.is_file():
                return cached
        self.client.download(url, cached)
        return cached

    def _from_index(self, sel: Selection) -> list[RemoteProduct]:
        path = self._index_file()
        tiles = set(sel.tiles)
        root = f"gs://{self.bucket}/"
        found: dict[str, RemoteProduct] = {}
        try:
            with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh)
                missing = {"MGRS_TILE", "SENSING_TIME", "BASE_URL"} - set(reader.fieldnames or ())
                if missing:
                    raise InputError(
                        f"expected the index columns {', '.join(INDEX_COLUMNS)}, "
                        f"found no {', '.join(sorted(missing))}",
                        path,
                    )
                for row in reader:
                    tile = (row.get("MGRS_TILE") or "").upper().removeprefix("T")
                    if tile not in tiles:
                        continue
                    sensed = _row_date(row.get("SENSING_TIME") or "")
                    if sensed is None or not sel.start <= sensed <= sel.end:
                        continue
                    base_url = row.get("BASE_URL") or ""
                    rel = base_url[len(root) :] if base_url.startswith(root) else base_url.split("/", 3)[-1]
                    # the same rule as a listing: exactly <tile folder>/<product>.SAFE (the
                    # bucket keeps L2A products under L2/tiles/...: skipped later as not-l1c)
                    base = tile_prefix(tile)
                    base = f"L2/{base}" if rel.startswith(f"L2/{base}") else base
                    product = self._folder(base, rel.rstrip("/") + "/")
                    if product is None or product.name in found:
                        continue
                    product.cloud_cover = _float_or_none(row.get("CLOUD_COVER"))
                    product.size = _int_or_none(row.get("TOTAL_SIZE"))
                    found[product.name] = product
        except (OSError, EOFError, gzip.BadGzipFile, csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"expected a readable index.csv.gz, found: {exc}", path) from None
        return list(found.values())


def _row_date(text: str) -> date | None:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _float_or_none(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _int_or_none(text: str | None) -> int | None:
    value = _float_or_none(text)
    return int(value) if value is not None and value >= 0 else None
