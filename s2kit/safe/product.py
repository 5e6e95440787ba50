"""A product on disk (a ``.SAFE`` directory or a ``.SAFE.zip``): its files and its metadata."""

from __future__ import annotations

import fnmatch
import os
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import InputError
from ..xmlsafe import check_declared_size, read_capped, read_capped_file
from .manifest import Manifest
from .metadata import read_metadata_bytes
from .names import strip_product_suffix
from .product_mtd import ProductMetadata
from .tile_mtd import TileMetadata
from .zipcap import check_zip_members


class ProductSource(Protocol):
    """A product's files, wherever they are (directory or zip)."""

    path: Path
    name: str

    def files(self) -> dict[str, int]:
        """Relative POSIX path -> size in bytes, for every regular file."""
        ...

    def read(self, relpath: str) -> bytes: ...


class DirSource:
    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        self._files: dict[str, int] | None = None

    def files(self) -> dict[str, int]:
        if self._files is None:
            out: dict[str, int] = {}
            base = str(self.path)
            for dirpath, _dirs, names in os.walk(base):
                rel_dir = os.path.relpath(dirpath, base)
                for n in names:
                    full = os.path.join(dirpath, n)
                    try:
                        st = os.stat(full)
                    except OSError:
                        continue  # dangling link
                    rel = n if rel_dir == "." else f"{rel_dir}/{n}".replace(os.sep, "/")
                    out[rel] = st.st_size
            self._files = out
        return self._files

    def read(self, relpath: str) -> bytes:
        try:
            return read_capped_file(self.path / relpath)
        except OSError as exc:
            raise InputError(f"expected a readable file, found: {exc.strerror}", self.path / relpath) from exc


class ZipSource:
    """A ``.SAFE.zip``: members are read on demand, nothing is extracted."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._fh = open(path, "rb")  # noqa: SIM115 - closed by close() (or below on a refusal)
        except OSError as exc:
            raise InputError(
                f"expected a readable .SAFE.zip, found a truncated or corrupt zip ({exc})", path
            ) from exc
        try:
            check_zip_members(self._fh, path)  # before zipfile builds a ZipInfo per member
            self._zip = zipfile.ZipFile(self._fh)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            self._fh.close()
            raise InputError(
                f"expected a readable .SAFE.zip, found a truncated or corrupt zip ({exc})", path
            ) from exc
        except BaseException:
            self._fh.close()
            raise
        tops = {i.filename.split("/", 1)[0] for i in infos if i.filename}
        safe_tops = [t for t in tops if t.upper().endswith(".SAFE")]
        self._prefix = f"{safe_tops[0]}/" if len(safe_tops) == 1 else ""
        self.name = safe_tops[0] if len(safe_tops) == 1 else strip_product_suffix(path.name) + ".SAFE"
        self._infos = {
            i.filename[len(self._prefix) :]: i
            for i in infos
            if not i.is_dir() and i.filename.startswith(self._prefix)
        }

    def files(self) -> dict[str, int]:
        return {k: v.file_size for k, v in self._infos.items()}

    def read(self, relpath: str) -> bytes:
        info = self._infos.get(relpath)
        if info is None:
            raise InputError(f"expected member {relpath} in the zip, found none", self.path)
        where = self.path / relpath
        check_declared_size(info.file_size, where)  # cheap refusal of an honest giant
        try:
            with self._zip.open(info) as fh:  # the declared size may lie: cap the stream itself
                return read_capped(fh, where)
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            EOFError,
            zlib.error,
            NotImplementedError,  # unsupported compression method
            RuntimeError,  # encrypted member
        ) as exc:
            raise InputError(
                f"expected a readable zip member {relpath}, found a corrupt one ({exc})", self.path
            ) from exc

    def close(self) -> None:
        self._zip.close()
        self._fh.close()


_PRODUCT_MTD_PATTERNS = (
    "MTD_MSIL1C.xml",
    "MTD_MSIL2A.xml",
    "MTD_MSIL2AP.xml",
    "S2?_*_MTD_SAF*.xml",
)
_TILE_MTD_PATTERNS = ("GRANULE/*/MTD_TL.xml", "GRANULE/*/S2?_*_MTD_L*_TL_*.xml")


def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # case-insensitive: real products ship MTD_MSIL2a.xml; '*' never crosses '/'
    parts = [fnmatch.translate(p).replace(".*", "[^/]*") for p in patterns]
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)


_PRODUCT_MTD_RE = _compile(_PRODUCT_MTD_PATTERNS)
_TILE_MTD_RE = _compile(_TILE_MTD_PATTERNS)


def _match(files: Mapping[str, int], pattern: re.Pattern[str]) -> list[str]:
    return sorted(rel for rel in files if rel.count("/") <= 2 and pattern.match(rel))


@dataclass(frozen=True)
class Product:
    """A product on disk: its source, its metadata, and the files it holds."""

    path: Path
    name: str
    metadata: ProductMetadata
    metadata_path: str
    tiles: tuple[TileMetadata, ...]
    tile_paths: tuple[str, ...]
    manifest: Manifest | None
    files: Mapping[str, int] = field(repr=False)


def _open_source(path: Path) -> ProductSource:
    if path.is_dir():
        return DirSource(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        return ZipSource(path)
    raise InputError("expected a .SAFE directory or a .SAFE.zip, found neither", path)


def open_product(path: str | os.PathLike[str]) -> Product:
    """Open a ``.SAFE`` directory or ``.SAFE.zip`` and read its metadata (not its rasters)."""
    p = Path(path)
    if not p.exists():
        raise InputError("expected an existing path, found nothing there", p)
    src = _open_source(p)
    try:
        return _read_source(p, src)
    finally:
        if isinstance(src, ZipSource):
            src.close()


def _read_source(p: Path, src: ProductSource) -> Product:
    files = src.files()
    mtds = _match(files, _PRODUCT_MTD_RE)
    if not mtds:
        raise InputError(
            "not a Sentinel-2 product: expected MTD_MSIL1C.xml or MTD_MSIL2A.xml at its top level, "
            f"found {len(files)} file(s) and none of them",
            p,
        )
    if len(mtds) > 1:
        raise InputError(
            f"expected one product metadata file at the top level, found {len(mtds)} "
            f"({', '.join(mtds[:3])}{', ...' if len(mtds) > 3 else ''}): a folder of metadata, not a product",
            p,
        )
    mtd_rel = mtds[0]
    md = read_metadata_bytes(src.read(mtd_rel), p / mtd_rel)
    if not isinstance(md, ProductMetadata):
        raise InputError(f"expected product metadata in {mtd_rel}, found {md.__class__.__name__}", p)
    tile_rels = _match(files, _TILE_MTD_RE)
    tiles = []
    for rel in tile_rels:
        t = read_metadata_bytes(src.read(rel), p / rel)
        if isinstance(t, TileMetadata):
            tiles.append(t)
    manifest = None
    man_rel = next((r for r in files if r.lower() == "manifest.safe"), None)
    if man_rel is not None:
        m = read_metadata_bytes(src.read(man_rel), p / man_rel)
        manifest = m if isinstance(m, Manifest) else None
    return Product(
        path=p,
        name=src.name,
        metadata=md,
        metadata_path=mtd_rel,
        tiles=tuple(tiles),
        tile_paths=tuple(tile_rels),
        manifest=manifest,
        files=files,
    )
