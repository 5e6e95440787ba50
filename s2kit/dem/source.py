"""Where SRTM zips come from: a local folder or mirror, or a base URL (cached, resumable)."""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from ..errors import InputError, display_path
from ..fsutil import atomic_write_text, flocked
from ..http import HttpClient, HttpNotFound, is_url, redact_url, sha256_file
from ..tiles import (
    parse_srtm_name,
)
from .base import (
    FORMAT_VERSION,
    DemError,
)


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class SourceTile:
    """One ``srtm_XX_YY.zip`` as found at the source (``path`` is None when it is missing)."""

    name: str
    origin: str
    path: Path | None
    size: int | None = None
    sha256: str | None = None

    @property
    def missing(self) -> bool:
        return self.path is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": self.origin,
            "missing": self.missing,
            "size": self.size,
            "sha256": self.sha256,
        }


def _locked(folder: Path, name: str = ".lock") -> contextlib.AbstractContextManager[int]:
    """An advisory lock in *folder* (best effort: file systems without flock just proceed)."""
    return flocked(folder / name, best_effort=True, mode=0o666)


class SrtmSource:
    """Where ``srtm_XX_YY.zip`` files come from: a folder (or ``file://`` URL) or a base URL.

    URL downloads go to *cache_dir* (resumable ``.part``); every file's size and SHA-256 are
    kept in ``<cache_dir>/manifest.json`` and reused while size and mtime are unchanged.
    """

    _WHAT = "srtm_XX_YY.zip files"  # what the folder holds (messages); a subclass names its own
    _MANIFEST_KEY = "s2kit_srtm_cache"

    def __init__(
        self, source: str, cache_dir: str | os.PathLike[str], client: HttpClient | None = None
    ) -> None:
        text = source.strip()
        if not text:
            raise InputError("expected --source to be a folder or a URL, found an empty string")
        self.cache_dir = Path(cache_dir)
        self._client = client
        self._own_client = False
        scheme = urlsplit(text).scheme.lower()
        if is_url(text):
            self.kind: Literal["url", "folder"] = "url"
            self.base = text if text.endswith("/") else text + "/"
            self.description = redact_url(self.base)
        elif scheme == "file":
            self.kind, self.folder = "folder", Path(unquote(urlsplit(text).path))
        elif scheme and len(scheme) > 1:
            raise InputError(
                f"expected --source to be a folder or an http(s) URL, found a {scheme}:// address ({text}); "
                "fetch the files with another client and pass their folder"
            )
        else:
            self.kind, self.folder = "folder", Path(text)
        if self.kind == "folder":
            self.folder = self.folder.expanduser().resolve()
            if not self.folder.is_dir():
                raise InputError(
                    f"expected a folder of {self._WHAT} or a URL, found no folder at "
                    f"{display_path(self.folder)}"
                )
            self.description = str(self.folder)

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient()
            self._own_client = True
        return self._client

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()

    # manifest -------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.cache_dir / "manifest.json"

    def _manifest(self) -> dict[str, Any]:
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as exc:
            raise DemError(
                f"expected a JSON cache manifest, found an unreadable file ({exc})", self.manifest_path
            ) from None
        files = data.get("files") if isinstance(data, dict) else None
        return files if isinstance(files, dict) else {}

    def _record(self, key: str, entry: dict[str, Any]) -> None:
        with _locked(self.cache_dir):
            files = self._manifest()
            files[key] = entry
            document = {self._MANIFEST_KEY: FORMAT_VERSION, "files": dict(sorted(files.items()))}
            atomic_write_text(self.manifest_path, json.dumps(document, indent=2) + "\n")

    def _known_digest(self, key: str, path: Path, origin: str) -> tuple[int, str]:
        """Size and SHA-256 of *path*, from the manifest when size and mtime still match."""
        stat = path.stat()
        entry = self._manifest().get(key)
        if (
            isinstance(entry, dict)
            and entry.get("origin") == origin
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
            and isinstance(entry.get("sha256"), str)
        ):
            return stat.st_size, str(entry["sha256"])
        digest = sha256_file(path)
        self._record(
            key, {"origin": origin, "size": stat.st_size, "sha256": digest, "mtime_ns": stat.st_mtime_ns}
        )
        return stat.st_size, digest

    # fetch ----------------------------------------------------------------------------------
    def get(self, name: str) -> SourceTile:
        """The local, validated ``<name>.zip`` (downloaded if needed), or a missing marker."""
        parse_srtm_name(name)
        zip_name = f"{name}.zip"
        if self.kind == "folder":
            path = self.folder / zip_name
            if not path.is_file():
                return SourceTile(name, str(path), None)
            size, digest = self._known_digest(f"folder:{path}", path, str(path))
            srtm_zip_member(path, name)
            return SourceTile(name, str(path), path, size, digest)
        with _locked(self.cache_dir, ".download.lock"):  # one download per cache at a time
            return self._get_url(name, zip_name)

    def _get_url(self, name: str, zip_name: str) -> SourceTile:
        url = self.base + zip_name
        origin = redact_url(url)
        cached = self.cache_dir / zip_name
        if cached.is_file():
            entry = self._manifest().get(zip_name)
            if isinstance(entry, dict) and entry.get("origin") == origin:
                size, digest = self._known_digest(zip_name, cached, origin)
                if entry.get("sha256") == digest:
                    return SourceTile(name, origin, cached, size, digest)
            cached.unlink()  # not ours, or changed behind our back: fetch again
        try:
            result = self.client.download(url, cached, sha256=True)  # recorded in the cache manifest
        except HttpNotFound:
            return SourceTile(name, origin, None)
        try:
            srtm_zip_member(cached, name)
        except DemError:
            cached.unlink()
            raise
        stat = cached.stat()
        self._record(
            zip_name,
            {
                "origin": origin,
                "size": result.size,
                "sha256": result.sha256,
                "mtime_ns": stat.st_mtime_ns,
                "etag": result.etag,
                "last_modified": result.last_modified,
            },
        )
        return SourceTile(name, origin, cached, result.size, result.sha256)


# ----------------------------------------------------------------------------- zips
def _unsafe_member(member: str) -> bool:
    if "\\" in member or member.startswith("/") or (len(member) > 1 and member[1] == ":"):
        return True
    return any(part == ".." for part in PurePosixPath(member).parts)


def srtm_zip_member(path: Path, name: str) -> zipfile.ZipInfo:
    """The ``<name>.tif`` member of an SRTM zip, after refusing unsafe or corrupt archives."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DemError(
            f"expected a zip archive holding {name}.tif, found a truncated or corrupt file ({exc})", path
        ) from None
    unsafe = [i.filename for i in infos if _unsafe_member(i.filename)]
    if unsafe:
        raise DemError(
            f"expected plain member names, found unsafe path {unsafe[0]!r} in the zip (refused)", path
        )
    wanted = f"{name}.tif"
    hits = [i for i in infos if i.filename == wanted]
    if len(hits) != 1:
        tifs = [i.filename for i in infos if i.filename.lower().endswith((".tif", ".tiff"))]
        raise DemError(f"expected one member {wanted}, found {tifs or [i.filename for i in infos][:5]}", path)
    return hits[0]


def _read_member(path: Path, name: str) -> bytes:
    """The bytes of ``<name>.tif``, inflated in memory (never written out); zipfile checks the
    member's CRC-32 at the end, so a corrupt member is refused here."""
    info = srtm_zip_member(path, name)
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.read(info)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise DemError(
            f"expected an intact {name}.tif in the zip, found a corrupt member ({exc})", path
        ) from None
