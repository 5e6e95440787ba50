"""Copernicus Data Space Ecosystem (CDSE): STAC search + OData download, for dates after the
Google bucket stopped (late August 2024).

* **search** - the CDSE STAC API (https://documentation.dataspace.copernicus.eu/APIs/STAC.html,
  endpoint ``https://stac.dataspace.copernicus.eu/v1``), ``POST /search`` with
  ``collections: ["sentinel-2-l1c"]``, ``datetime: "<start>/<end>"``, ``limit`` and a CQL2-JSON
  ``filter`` (STAC API Filter extension, basic CQL2 ``=``/``<=``/``and``/``or``) on
  ``grid:code`` (``"MGRS-17SQV"``) and ``eo:cloud_cover``. Pages follow the ``links[rel=next]``
  link (``method``/``body`` for POST, as the STAC API spec allows). An item's ``id`` is the
  product name; its ``Product`` asset carries the OData product URL
  (``.../odata/v1/Products(<uuid>)/$value``), ``file:size`` and ``file:checksum`` (a
  multihash: ``d50110`` + the MD5 in hex; the OData ``Checksum`` entries give the same MD5).
  The filter is applied again here, so a server that ignores it cannot widen the selection.
* **download** - OData ``GET https://zipper.dataspace.copernicus.eu/odata/v1/Products(<uuid>)/$value``
  with ``Authorization: Bearer <token>`` (https://documentation.dataspace.copernicus.eu/APIs/OData.html).
  The product arrives as ``<name>.SAFE.zip`` and is stored as such (the planner and the worker
  take zips); size and MD5 are verified, resume and atomic rename are those of every fetch.
* **token** - read from the environment variable ``CDSE_ACCESS_TOKEN`` (an access token made as
  in https://documentation.dataspace.copernicus.eu/APIs/Token.html; it lives about ten
  minutes). Searching and ``--dry-run`` need none; downloading without one is a clear error.

The server is not trusted: an item ``id`` must be exactly one product name (else the product
is skipped as ``unsafe-name`` and nothing is made of it), the OData id must be a plain id,
and a search page is read with a cap (:data:`MAX_SEARCH_BYTES`).

``--base-url URL`` points both at one server: STAC at ``URL/v1``, OData at ``URL/odata/v1``.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError
from ..http import RETRY_STATUSES, HttpClient, HttpError, is_url
from ..safe import parse_product_name, strip_product_suffix
from .model import FetchError, RemoteObject, RemoteProduct, Selection, printable, product_folder_problem

__all__ = [
    "COLLECTION",
    "CdseSource",
    "STAC_URL",
    "TOKEN_ENV",
    "ZIPPER_URL",
    "md5_from_checksum",
    "stac_filter",
]

STAC_URL = "https://stac.dataspace.copernicus.eu/v1"
ZIPPER_URL = "https://zipper.dataspace.copernicus.eu/odata/v1"
COLLECTION = "sentinel-2-l1c"
TOKEN_ENV = "CDSE_ACCESS_TOKEN"  # noqa: S105 - the name of the variable, not a secret
TOKEN_DOC = "https://documentation.dataspace.copernicus.eu/APIs/Token.html"  # noqa: S105
PAGE_LIMIT = 100
RETRIES = 3
MAX_PAGES = 1000
MAX_SEARCH_BYTES = 64 * 1024 * 1024  # a page of 100 items is ~0.5 MB
_UUID_RE = re.compile(r"Products\(([^)/]+)\)")
_ODATA_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,100}")
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}\Z")


def md5_from_checksum(value: Any) -> str | None:
    """The hex MD5 in a STAC ``file:checksum`` (multihash ``d50110...``) or a bare hex MD5."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower().startswith("d50110") and _HEX32.match(text[6:]):
        return text[6:].lower()
    return text.lower() if _HEX32.match(text) else None


def stac_filter(sel: Selection) -> dict[str, Any]:
    """CQL2-JSON for the tiles and the cloud cap."""
    tiles: list[Any] = [{"op": "=", "args": [{"property": "grid:code"}, f"MGRS-{t}"]} for t in sel.tiles]
    args: list[Any] = [tiles[0] if len(tiles) == 1 else {"op": "or", "args": tiles}]
    if sel.max_cloud is not None:
        args.append({"op": "<=", "args": [{"property": "eo:cloud_cover"}, sel.max_cloud]})
    return args[0] if len(args) == 1 else {"op": "and", "args": args}


class CdseSource:
    """STAC search and OData download of CDSE (or of one server at *base_url*)."""

    name = "cdse"

    def __init__(
        self,
        client: HttpClient,
        base_url: str | None = None,
        *,
        token: str | None = None,
        page_limit: int = PAGE_LIMIT,
    ) -> None:
        self.client = client
        if base_url is not None:
            base = base_url.rstrip("/")
            if not is_url(base):
                raise InputError(f"expected --base-url as http(s)://..., found {base_url!r}")
            self.stac_url, self.odata_url, self.base_url = f"{base}/v1", f"{base}/odata/v1", base
        else:
            self.stac_url, self.odata_url, self.base_url = STAC_URL, ZIPPER_URL, STAC_URL
        self.token = token if token is not None else (os.environ.get(TOKEN_ENV) or "").strip() or None
        self.page_limit = page_limit
        if self.token:
            self.client.session.headers["Authorization"] = f"Bearer {self.token}"

    def describe(self) -> str:
        return f"cdse STAC {self.stac_url}, OData {self.odata_url}"

    def check_ready(self, dry_run: bool) -> None:
        if not dry_run and not self.token:
            raise FetchError(
                f"CDSE downloads need an access token: expected {TOKEN_ENV} in the environment, found none "
                f"(make one as in {TOKEN_DOC}; --dry-run works without)"
            )

    def explain(self, exc: HttpError) -> str:
        text = str(exc)
        if " 401" in text or " 403" in text:
            return (
                f"{text} (the CDSE token was refused: tokens expire after about 10 minutes; export a fresh "
                f"{TOKEN_ENV} and run again - downloads resume)"
            )
        return text

    def notes(self, sel: Selection) -> list[str]:
        return []

    def product_url(self, uuid: str) -> str:
        return f"{self.odata_url}/Products({uuid})/$value"

    # ------------------------------------------------------------------ search
    def candidates(self, sel: Selection) -> list[RemoteProduct]:
        body: dict[str, Any] = {
            "collections": [COLLECTION],
            "datetime": f"{sel.start.isoformat()}T00:00:00Z/{sel.end.isoformat()}T23:59:59.999Z",
            "limit": self.page_limit,
            "filter-lang": "cql2-json",
            "filter": stac_filter(sel),
        }
        url: str | None = f"{self.stac_url}/search"
        method, payload = "POST", body
        out: list[RemoteProduct] = []
        for _ in range(MAX_PAGES):
            assert url is not None
            if method == "POST":
                body_bytes = self._post(url, payload)
            else:
                body_bytes = self.client.get_bytes(url, MAX_SEARCH_BYTES, "a STAC search page")
            try:
                page = json.loads(body_bytes)
            except (ValueError, RecursionError):
                raise FetchError(
                    f"{url}: expected a STAC ItemCollection (JSON), found something else"
                ) from None
            features = page.get("features") if isinstance(page, dict) else None
            if not isinstance(features, list):
                raise FetchError(f"{url}: expected a STAC ItemCollection with 'features', found none")
            out += [p for p in (self._product(f, sel) for f in features) if p is not None]
            links = page.get("links")
            nxt = next(
                (
                    link
                    for link in (links if isinstance(links, list) else [])
                    if isinstance(link, dict) and link.get("rel") == "next"
                ),
                None,
            )
            if nxt is None or not nxt.get("href"):
                return out
            if not isinstance(nxt["href"], str) or not is_url(nxt["href"]):
                raise FetchError(
                    f"{url}: expected the next page as an http(s) URL, found {printable(repr(nxt['href']))}"
                )
            url = str(nxt["href"])
            method = str(nxt.get("method", "GET")).upper()
            if method == "POST":
                raw = nxt.get("body")
                extra: dict[str, Any] = raw if isinstance(raw, dict) else {}
                payload = {**body, **extra} if nxt.get("merge", False) else (extra or body)
        raise FetchError(f"{self.stac_url}/search: expected the result pages to end, found {MAX_PAGES}")

    def _post(self, url: str, payload: dict[str, Any]) -> bytes:
        """POST a search; transient statuses are retried here (urllib3 retries only GET/HEAD)."""
        for attempt in range(RETRIES + 1):
            response = self.client.request("POST", url, json=payload, stream=True)
            if response.status_code == 200:
                return self.client.read_capped(response, url, MAX_SEARCH_BYTES, "a STAC search page")
            status = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
            response.close()
            if response.status_code not in RETRY_STATUSES or attempt == RETRIES:
                raise HttpError(f"{url}: expected HTTP 200 from the STAC search, found {status}")
            time.sleep(self.client.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _product(self, item: Any, sel: Selection) -> RemoteProduct | None:
        if not isinstance(item, dict):
            return None
        props = item.get("properties") if isinstance(item.get("properties"), dict) else {}
        assert isinstance(props, dict)
        raw_id = item.get("id")
        ident = raw_id if isinstance(raw_id, str) else repr(raw_id)
        folder = strip_product_suffix(ident) + ".SAFE"
        # one clean folder name, or skipped as unsafe-name (clean but unparsed: not-a-product)
        unsafe = product_folder_problem(folder, parse=False)
        try:
            parsed = parse_product_name(ident) if unsafe is None else None
        except InputError:
            parsed = None
        assets = item.get("assets")
        asset = assets.get("Product") if isinstance(assets, dict) else None
        asset = asset if isinstance(asset, dict) else {}
        href = asset.get("href") if isinstance(asset.get("href"), str) else ""
        match = _UUID_RE.search(urlsplit(href).path) if href else None
        uuid = match.group(1) if match else str(props.get("id") or "")
        if not _ODATA_ID_RE.fullmatch(uuid):
            uuid = ""  # list_objects fails the product: expected an OData product id
        cloud = props.get("eo:cloud_cover")
        size = asset.get("file:size")
        md5 = md5_from_checksum(asset.get("file:checksum"))
        product = RemoteProduct(
            name=folder if unsafe is None else printable(ident),
            parsed=parsed,
            source=self.name,
            ref=uuid,
            packaging="zip",
            cloud_cover=_finite(cloud),
            size=int(size_f) if (size_f := _finite(size)) is not None and size_f >= 0 else None,
            md5=md5,
            unsafe=unsafe,
        )
        grid = str(props.get("grid:code", ""))
        tile = grid.removeprefix("MGRS-") if grid else (parsed.mgrs_tile if parsed else None)
        if tile and tile not in sel.tiles:
            return None
        when = _item_date(props.get("datetime"))
        if when is not None and not sel.start <= when <= sel.end:
            return None
        return product

    def list_objects(self, product: RemoteProduct) -> None:
        """One object: the zipped product, from OData."""
        if not product.ref:
            raise FetchError(f"{product.name}: expected an OData product id in the STAC item, found none")
        if product.size is None:
            raise FetchError(
                f"{product.name}: expected file:size in the STAC item's Product asset, found none"
            )
        product.objects = [
            RemoteObject(
                rel=product.target_name, url=self.product_url(product.ref), size=product.size, md5=product.md5
            )
        ]

    def cloud_cover(self, product: RemoteProduct) -> float | None:
        return product.cloud_cover


def _finite(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (text, bool, NaN, infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _item_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None
