"""Quicklook thumbnails of L2A products: a small PNG from the 60 m true-colour image.

Source, first found wins (all read at reduced resolution, so JPEG 2000 overviews do the work):

1. ``R60m/*_TCI_60m.jp2`` (Sen2Cor's 8-bit true-colour image);
2. ``R60m/*_B04/B03/B02_60m.jp2`` as RGB: BOA reflectance = (DN + BOA_ADD_OFFSET) /
   BOA_QUANTIFICATION_VALUE, shown linearly from 0 to 0.3;
3. ``R20m`` / ``R10m`` TCI (a product processed without 60 m output).

Pixels with DN 0 (no data) are transparent. A product without a readable source raises
:class:`QuicklookError` with a one-line reason (the report shows "no quicklook: <reason>").
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import struct
import tempfile
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import S2kitError
from .safe import Product, open_product

__all__ = [
    "DEFAULT_SIZE",
    "Quicklook",
    "QuicklookError",
    "band_files",
    "cached_quicklook",
    "render_quicklook",
]

DEFAULT_SIZE = 128
#: zlib level of the quicklook PNGs: level 1 is ~25 % faster than 6 and ~3 % larger on 128 px
#: thumbnails (issue 17); the pixels are the same (PNG is lossless)
PNG_ZLIB_LEVEL = 1
RGB_MAX_REFLECTANCE = 0.3
_BAND_RE = re.compile(r"^GRANULE/[^/]+/IMG_DATA/R(10|20|60)m/[^/]*_([A-Z0-9]{3})_(?:10|20|60)m\.jp2\Z", re.I)


class QuicklookError(S2kitError):
    """No quicklook could be made for a product; the message says why."""


@dataclass(frozen=True)
class Quicklook:
    png: bytes
    width: int
    height: int
    method: str  # "TCI 60m", "RGB B04/B03/B02 60m", ...
    sources: tuple[str, ...]  # product-relative paths read


def band_files(files: Mapping[str, int]) -> dict[tuple[int, str], str]:
    """(resolution in m, band name) -> product-relative path of each IMG_DATA band file."""
    out: dict[tuple[int, str], str] = {}
    for rel in files:
        m = _BAND_RE.match(rel)
        if m:
            out[(int(m[1]), m[2].upper())] = rel
    return out


def _thumb_shape(height: int, width: int, size: int) -> tuple[int, int]:
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _read_small(path: Path, size: int, rel: str, bands: int | None = None) -> np.ndarray[Any, Any]:
    """Read a raster at thumbnail size (averaged from overviews where the file has them)."""
    import rasterio  # type: ignore[import-untyped]
    from rasterio.enums import Resampling  # type: ignore[import-untyped]
    from rasterio.errors import RasterioError  # type: ignore[import-untyped]

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NotGeoreferencedWarning and the like
            with rasterio.open(path) as src:
                count = src.count if bands is None else bands
                if src.count < count:
                    raise QuicklookError(f"{rel}: expected {count} band(s), found {src.count}")
                h, w = _thumb_shape(src.height, src.width, size)
                data: np.ndarray[Any, Any] = src.read(
                    list(range(1, count + 1)), out_shape=(count, h, w), resampling=Resampling.average
                )
                return data
    except RasterioError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        first = re.sub(r"'[^']*'\s*", "", first).strip() or type(exc).__name__
        raise QuicklookError(f"{rel.rsplit('/', 1)[-1]}: not a readable raster ({first})") from None


def _encode_png(rgba: np.ndarray[Any, Any], text: Mapping[str, str] | None = None) -> bytes:
    """8-bit RGB PNG ("Up" filter, zlib) whose pure black is transparent (tRNS): no data.

    Pixels with alpha 0 become (0, 0, 0); valid pixels that are pure black become (1, 1, 1).
    *text* goes into tEXt chunks (the cache keeps how the quicklook was made there).
    """
    count, height, width = rgba.shape
    if count != 4 or rgba.dtype != np.uint8:
        raise QuicklookError(f"expected 4 bands of uint8 to encode, found {count} of {rgba.dtype}")
    rgb = np.moveaxis(rgba[:3], 0, -1).copy()
    valid = rgba[3] > 0
    rgb[valid & ~rgb.any(axis=-1)] = 1
    rgb[~valid] = 0
    rows = rgb.reshape(height, width * 3)
    up = rows.copy()
    up[1:] -= rows[:-1]  # filter 2 ("Up"): difference to the row above, modulo 256
    raw = np.concatenate([np.full((height, 1), 2, dtype=np.uint8), up], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bit RGB
    texts = b"".join(
        chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1", "replace"))
        for k, v in (text or {}).items()
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tRNS", b"\0\0\0\0\0\0")
        + texts
        + chunk(b"IDAT", zlib.compress(raw, PNG_ZLIB_LEVEL))
        + chunk(b"IEND", b"")
    )


def _png_info(data: bytes) -> tuple[int, int, dict[str, str]]:
    """Width, height and tEXt entries of a PNG written by :func:`_encode_png`."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, width, height, text = 8, 0, 0, {}
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"tEXt":
            k, _, v = body.partition(b"\0")
            text[k.decode("latin-1")] = v.decode("latin-1")
        elif kind == b"IDAT":
            break
        pos += 12 + n
    if not width:
        raise ValueError("no IHDR")
    return width, height, text


def _find(root: Path) -> dict[tuple[int, str], str]:
    """The product's IMG_DATA band files, found by listing R10m/R20m/R60m (no metadata parsing)."""
    out: dict[tuple[int, str], str] = {}
    for res_dir in root.glob("GRANULE/*/IMG_DATA/R[126]0m"):
        rel_dir = res_dir.relative_to(root).as_posix()
        try:
            names = os.listdir(res_dir)
        except OSError:
            continue
        for name in names:
            m = _BAND_RE.match(f"{rel_dir}/{name}")
            if m:
                out[(int(m[1]), m[2].upper())] = f"{rel_dir}/{name}"
    return out


def render_quicklook(product: str | os.PathLike[str] | Product, size: int = DEFAULT_SIZE) -> Quicklook:
    """A PNG thumbnail (longest side *size* px) of an L2A product; QuicklookError if none can be made."""
    return _render(product, size)


def _render(
    product: str | os.PathLike[str] | Product, size: int, found: dict[tuple[int, str], str] | None = None
) -> Quicklook:
    """:func:`render_quicklook`; *found*: the band files already listed by :func:`_find`."""
    if size < 8 or size > 4096:
        raise QuicklookError(f"expected a quicklook size of 8-4096 px, found {size}")
    root = product.path if isinstance(product, Product) else Path(product)
    if not root.is_dir():
        raise QuicklookError("expected an unzipped .SAFE folder, found none (zipped products are not read)")
    if isinstance(product, Product):
        files = band_files(product.files)
    else:
        files = found if found is not None else _find(root)
    tci = files.get((60, "TCI"))
    rgb = [files.get((60, b)) for b in ("B04", "B03", "B02")]
    if tci is not None:
        return _made(_tci_rgba(root / tci, tci, size), "TCI 60m", (tci,))
    if all(rgb):
        from .compare import band_scaling  # one definition of how DN becomes reflectance

        prod = product if isinstance(product, Product) else open_product(root)
        rels = tuple(r for r in rgb if r)
        layers: list[np.ndarray[Any, Any]] = []
        valid = None
        for band, rel in zip(("B04", "B03", "B02"), rels, strict=True):
            dn = _read_small(root / rel, size, rel, bands=1)[0].astype(np.float32)
            offset, quant = band_scaling(prod, band)
            refl = (dn + offset) / quant
            if layers and layers[0].shape != refl.shape:
                raise QuicklookError(f"{rel}: expected the size of the other 60 m bands, found another")
            layers.append(np.clip(np.rint(refl / RGB_MAX_REFLECTANCE * 255.0), 0, 255))
            ok = dn > 0
            valid = ok if valid is None else valid & ok
        assert valid is not None
        rgba = np.stack([*layers, np.where(valid, 255, 0)]).astype(np.uint8)
        return _made(rgba, "RGB B04/B03/B02 60m", rels)
    for res in (20, 10):
        other = files.get((res, "TCI"))
        if other is not None:
            return _made(_tci_rgba(root / other, other, size), f"TCI {res}m", (other,))
    raise QuicklookError("no TCI and no B04/B03/B02 band file at 60 m in IMG_DATA")


def _tci_rgba(path: Path, rel: str, size: int) -> np.ndarray[Any, Any]:
    rgb = _read_small(path, size, rel, bands=3)
    if rgb.dtype != np.uint8:
        raise QuicklookError(f"{rel}: expected an 8-bit true-colour image, found {rgb.dtype}")
    alpha = np.where(rgb.any(axis=0), 255, 0).astype(np.uint8)
    return np.concatenate([rgb, alpha[None]], axis=0)


def _made(rgba: np.ndarray[Any, Any], method: str, sources: tuple[str, ...]) -> Quicklook:
    _, h, w = rgba.shape
    png = _encode_png(rgba, {"s2kit:method": method, "s2kit:sources": "\n".join(sources)})
    return Quicklook(png=png, width=w, height=h, method=method, sources=sources)


def cached_quicklook(product: str | os.PathLike[str], cache_dir: Path, size: int = DEFAULT_SIZE) -> Quicklook:
    """:func:`render_quicklook`, kept in *cache_dir* keyed by the source files' size and mtime."""
    root = Path(product)
    if not root.is_dir():
        raise QuicklookError("expected an unzipped .SAFE folder, found none (zipped products are not read)")
    files = _find(root)
    candidates = [files.get((60, b)) for b in ("TCI", "B04", "B03", "B02")] + [
        files.get((20, "TCI")),
        files.get((10, "TCI")),
    ]
    key = hashlib.sha256(f"{size}".encode())
    for rel in candidates:
        if rel is None:
            continue
        try:
            st = (root / rel).stat()
        except OSError:
            continue
        key.update(f"|{rel}|{st.st_size}|{st.st_mtime_ns}".encode())
    png = cache_dir / f"{root.name}-{key.hexdigest()[:16]}.png"
    try:
        data = png.read_bytes()
        w, h, text = _png_info(data)
        method, sources = text["s2kit:method"], text.get("s2kit:sources", "")
        return Quicklook(data, w, h, method, tuple(s for s in sources.split("\n") if s))
    except (OSError, ValueError, KeyError, struct.error):
        pass
    ql = _render(root, size, files)  # the listing above, not a second one
    _write_cache(png, ql.png)
    return ql


def _write_cache(path: Path, data: bytes) -> None:
    """Temp file + rename (readers never see half a file); no fsync: a cache may be lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
