"""ESACCI-LC auxiliary data for Sen2Cor 2.9: unpack, put in place, verify.

Sen2Cor reads three ESA CCI Land Cover products from its ``aux_data`` folder, named in
``L2A_CAL_SC_GIPP.xml`` (``s2kit/templates/gipp/2.9``) and joined to ``aux_data`` by
``L2A_Config`` (2.8.0 source, c-core-labs/sen2cor): ``ESACCI_LandCover_Map``
(``ESACCI-LC-L4-LCCS-Map-300m-P1Y-2015-v2.0.7.tif``), ``ESACCI_WaterBodies_Map``
(``ESACCI-LC-L4-WB-Map-150m-P13Y-2000-v4.0.tif``) and ``ESACCI_SnowCondition_Map_Dir``
(``ESACCI-LC-L4-Snow-Cond-500m-P13Y7D-2000-2012-v2.0``). A missing one is *not* an error for
Sen2Cor: it logs a warning and classifies without it - hence the checks here.
``L2A_Tables.gdalCCI_snowc`` globs ``ESACCI-LC-L4-Snow-Cond-AggOcc-500m-P13Y7D-2000-2012-2000*-v2.0.tif``
in the snow folder, parses each name with ``...-%Y%m%d-v2.0.tif`` (a name that does not parse
makes Sen2Cor fail) and takes the 9th file for day-of-year 61.

The distribution ``ESACCI-LC-L4-ALL-FOR-SEN2COR.zip`` (UCLouvain, via the CCI-LC viewer
download page) unzips to a ``CCI4SEN2COR/`` folder holding ``ESACCI-LC-L4-ALL-FOR-SEN2COR.tar``
(6 GB) and ``ESACCI-LC-L4-LCCS-WB-FOR-SEN2COR.tar`` (595 MB), plus macOS ``._*`` resource
files (listing in brazil-data-cube's collection-builder configuration docs). The SEAL lab
how-to ("Manual Batch S2 L2A sen2cor conversion", 2021) extracts both tars and moves the snow
folder and the two maps into ``aux_data``. Which tar holds which item is not documented
publicly, so items are located by name in every tar (and among plain zip members).

Safety: zip and tar member names with absolute or ``..`` paths, and tar links or device
files, make the archive refused; files are written under names chosen here, never under the
archive's paths. Everything is unpacked into a staging folder inside the destination and
checked before it is renamed into place, so ``aux_data`` never holds a half-written item; the
sizes and SHA-256 of what was installed go to ``aux_data/.s2kit-esacci.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from .errors import InputError, S2kitError, display_path
from .findings import Finding, Severity
from .fsutil import atomic_write_text
from .http import HttpClient, is_url, redact_url, sha256_file

__all__ = [
    "ESACCI_ARCHIVE",
    "LCCS_MAP",
    "MANIFEST",
    "SNOW_DIR",
    "WB_MAP",
    "EsacciCheck",
    "EsacciError",
    "EsacciResult",
    "check_esacci",
    "install_esacci",
]

ESACCI_ARCHIVE = "ESACCI-LC-L4-ALL-FOR-SEN2COR.zip"
LCCS_MAP = "ESACCI-LC-L4-LCCS-Map-300m-P1Y-2015-v2.0.7.tif"
WB_MAP = "ESACCI-LC-L4-WB-Map-150m-P13Y-2000-v4.0.tif"
SNOW_DIR = "ESACCI-LC-L4-Snow-Cond-500m-P13Y7D-2000-2012-v2.0"
SNOW_GLOB = "ESACCI-LC-L4-Snow-Cond-AggOcc-500m-P13Y7D-2000-2012-2000*-v2.0.tif"
SNOW_PATTERN = "ESACCI-LC-L4-Snow-Cond-AggOcc-500m-P13Y7D-2000-2012-%Y%m%d-v2.0.tif"
SNOW_MIN_FILES = 9  # Sen2Cor takes listSnowConditionFiles[8] for day-of-year 61
MANIFEST = ".s2kit-esacci.json"
FORMAT_VERSION = 1
CHUNK = 1 << 20


class EsacciError(S2kitError):
    """The ESACCI-LC archive or an installed aux_data item is not what Sen2Cor needs."""


# ----------------------------------------------------------------------------- checks
EsacciFinding = Finding  # the shared record of s2kit.findings


@dataclass
class EsacciCheck:
    """What :func:`check_esacci` found in an ``aux_data`` folder."""

    path: Path
    findings: list[EsacciFinding] = field(default_factory=list)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def errors(self) -> list[EsacciFinding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, severity: Severity, code: str, message: str) -> None:
        self.findings.append(EsacciFinding(code=code, severity=severity, message=message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "items": self.items,
            "findings": [f.to_dict() for f in self.findings],
        }

    def lines(self) -> Iterator[str]:
        where = display_path(self.path)
        n_err = len(self.errors)
        n_warn = len(self.findings) - n_err
        state = "OK" if self.ok else f"{n_err} error(s)"
        yield f"{where}: ESACCI-LC aux data for Sen2Cor 2.9: {state}, {n_warn} warning(s)"
        for name, info in self.items.items():
            what = f"{info['files']} weekly files, " if "files" in info else ""
            slash = "/" if "files" in info else ""
            state = "ok" if info.get("ok") else "BAD"
            yield f"  {state:<4} {name}{slash} ({what}{_mb(info.get('size', 0))})"
        for f in self.findings:
            yield f"  {f.severity:<7} {f.code:<16} {f.message}"


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size} bytes"


def _raster_problem(path: Path) -> str | None:
    """Why *path* is not a global, one-band, 8-bit WGS 84 GeoTIFF (None when it is)."""
    import rasterio  # type: ignore[import-untyped]

    try:
        with rasterio.open(path) as ds:
            if ds.driver != "GTiff":
                return f"expected a GeoTIFF, found a {ds.driver} raster"
            if ds.count != 1 or ds.dtypes[0] != "uint8":
                return f"expected 1 band of Byte (uint8) classes, found {ds.count} band(s) of {ds.dtypes[0]}"
            if ds.crs is None or not ds.crs.is_geographic:
                return f"expected WGS 84 lon/lat, found CRS {ds.crs}"
            w, s, e, n = ds.bounds
            if max(abs(w + 180), abs(s + 90), abs(e - 180), abs(n - 90)) > 1e-3:
                return f"expected the global extent -180,-90,180,90, found {w:.4f},{s:.4f},{e:.4f},{n:.4f}"
    except rasterio.errors.RasterioIOError as exc:
        return f"expected a readable GeoTIFF, found {str(exc)[:200]}"
    return None


def _snow_date_problem(name: str) -> str | None:
    try:
        datetime.strptime(name, SNOW_PATTERN)
    except ValueError:
        return (
            f"expected a name of Sen2Cor's date pattern {SNOW_PATTERN}, found one that its glob "
            "matches but strptime refuses (Sen2Cor would fail)"
        )
    return None


def check_esacci(aux_dir: str | os.PathLike[str], *, deep: bool = False) -> EsacciCheck:
    """Check the three ESACCI-LC items in *aux_dir*; with *deep*, also their recorded SHA-256."""
    folder = Path(aux_dir)
    if not folder.is_dir():
        raise InputError(f"expected Sen2Cor's aux_data folder, found no folder at {display_path(folder)}")
    report = EsacciCheck(folder)
    manifest = _read_manifest(folder)
    recorded: dict[str, Any] = manifest.get("files", {}) if manifest else {}
    for name in (LCCS_MAP, WB_MAP):
        path = folder / name
        if not path.is_file():
            report.add(
                "error", "missing", f"{name}: expected in aux_data (Sen2Cor would run without it), found none"
            )
            continue
        info: dict[str, Any] = {"size": path.stat().st_size, "ok": True}
        report.items[name] = info
        problem = _raster_problem(path)
        if problem:
            report.add("error", "bad-raster", f"{name}: {problem}")
            info["ok"] = False
        _compare_recorded(report, info, name, path, recorded.get(name), deep)
    snow = folder / SNOW_DIR
    if not snow.is_dir():
        report.add(
            "error", "missing", f"{SNOW_DIR}/: expected in aux_data (no snow condition map), found none"
        )
        return report
    files = sorted(snow.glob(SNOW_GLOB))
    info = {"size": sum(p.stat().st_size for p in files), "files": len(files), "ok": True}
    report.items[SNOW_DIR] = info
    if len(files) < SNOW_MIN_FILES:
        info["ok"] = False
        report.add(
            "error",
            "snow-files",
            f"{SNOW_DIR}/: expected at least {SNOW_MIN_FILES} weekly files {SNOW_GLOB} "
            f"(Sen2Cor takes the 9th for day 61), found {len(files)}",
        )
    for path in files:
        problem = _snow_date_problem(path.name) or _raster_problem(path)
        if problem:
            info["ok"] = False
            report.add("error", "bad-snow-file", f"{SNOW_DIR}/{path.name}: {problem}")
            continue
        key = f"{SNOW_DIR}/{path.name}"
        _compare_recorded(report, info, key, path, recorded.get(key), deep)
    if recorded:
        for key in sorted(k for k in recorded if k.startswith(SNOW_DIR + "/")):
            if not (folder / key).is_file():
                info["ok"] = False
                report.add("error", "missing", f"{key}: expected (installed by s2kit), found none")
    return report


def _compare_recorded(
    report: EsacciCheck, info: dict[str, Any], key: str, path: Path, entry: Any, deep: bool
) -> None:
    if not isinstance(entry, dict):
        return
    size = path.stat().st_size
    if entry.get("size") != size:
        info["ok"] = False
        report.add("error", "size", f"{key}: expected {entry.get('size')} bytes (as installed), found {size}")
    elif deep and entry.get("sha256") != sha256_file(path):
        info["ok"] = False
        report.add(
            "error",
            "checksum",
            f"{key}: expected SHA-256 {entry.get('sha256')} (as installed), found another",
        )


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("s2kit_esacci") == FORMAT_VERSION else {}


# ----------------------------------------------------------------------------- unpack
def _unsafe(name: str) -> bool:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return True
    return any(part == ".." for part in PurePosixPath(name).parts)


def _junk(name: str) -> bool:
    """macOS resource forks and folders that ride along in the real archive."""
    parts = PurePosixPath(name).parts
    return bool(parts) and (parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store")


def _target(name: str) -> str | None:
    """Where an archive member goes in aux_data (relative), or None when it is not needed."""
    parts = PurePosixPath(name).parts
    if not parts or _junk(name):
        return None
    if parts[-1] in (LCCS_MAP, WB_MAP):
        return parts[-1]
    if len(parts) >= 2 and parts[-2] == SNOW_DIR:
        return f"{SNOW_DIR}/{parts[-1]}"
    return None


@dataclass
class _Unpacked:
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    tars: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)


def _copy(src: IO[bytes], dest: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(dest, "wb") as out:
        while block := src.read(CHUNK):
            out.write(block)
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _take(unpacked: _Unpacked, staging: Path, rel: str, src: IO[bytes], where: str, expect: int) -> None:
    if rel in unpacked.files:
        if unpacked.files[rel]["size"] != expect:
            raise EsacciError(
                f"{where}: expected one version of {rel}, found two of different sizes "
                f"({unpacked.files[rel]['size']} and {expect} bytes) in the archive"
            )
        return  # the same file in two tars: keep the first
    dest = staging / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    size, digest = _copy(src, dest)
    if size != expect:
        raise EsacciError(f"{where}: expected {expect} bytes for {rel}, found {size} (truncated archive)")
    unpacked.files[rel] = {"size": size, "sha256": digest, "from": where}


def _unpack_tar(stream: IO[bytes], tar_name: str, staging: Path, unpacked: _Unpacked, archive: Path) -> None:
    where = f"{archive.name}:{tar_name}"
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                name = member.name
                unpacked.seen.append(name)
                if _unsafe(name):
                    raise EsacciError(
                        f"{where}: expected plain member names, found unsafe path {name!r} (refused)"
                    )
                if member.isdir():
                    continue
                if not member.isreg():
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise EsacciError(f"{where}: expected regular files, found a {kind} {name!r} (refused)")
                rel = _target(name)
                if rel is None:
                    continue
                fh = tar.extractfile(member)
                if fh is None:  # pragma: no cover - regular members always have data
                    continue
                _take(unpacked, staging, rel, fh, where, member.size)
    except tarfile.TarError as exc:
        raise EsacciError(
            f"{where}: expected a tar archive, found a corrupt or truncated one ({exc})"
        ) from None


def _unpack(archive: Path, staging: Path) -> _Unpacked:
    unpacked = _Unpacked()
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            unsafe = [i.filename for i in infos if _unsafe(i.filename)]
            if unsafe:
                raise EsacciError(
                    f"expected plain member names, found unsafe path {unsafe[0]!r} in the zip (refused)",
                    archive,
                )
            for info in infos:
                name = info.filename
                if info.is_dir() or _junk(name):
                    continue
                if name.lower().endswith((".tar", ".tar.gz", ".tgz")):
                    unpacked.tars.append(name)
                    with zf.open(info) as stream:
                        _unpack_tar(stream, name, staging, unpacked, archive)
                        while stream.read(CHUNK):  # read to the end: zipfile checks the CRC there
                            pass
                    continue
                unpacked.seen.append(name)
                rel = _target(name)
                if rel is not None:
                    with zf.open(info) as stream:
                        _take(unpacked, staging, rel, stream, archive.name, info.file_size)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise EsacciError(
            f"expected a zip archive, found a truncated or corrupt file ({exc})", archive
        ) from None
    return unpacked


# ----------------------------------------------------------------------------- install
@dataclass(frozen=True)
class EsacciResult:
    dest: Path
    action: Literal["installed", "up-to-date"]
    items: dict[str, dict[str, Any]]
    source: str

    def lines(self) -> Iterator[str]:
        where = display_path(self.dest)
        if self.action == "up-to-date":
            yield f"{where}: ESACCI-LC aux data already installed from {self.source}, nothing to do"
            return
        yield f"{where}: installed ESACCI-LC aux data from {self.source}"
        for name, info in self.items.items():
            what = f"{info['files']} weekly files, " if "files" in info else ""
            yield f"  {name}{'/' if 'files' in info else ''} ({what}{_mb(info['size'])})"


def _origin(source: str) -> tuple[str, Path | None]:
    """How a source is recorded (password-free URL or absolute path), and its local path."""
    text = source.strip()
    if is_url(text):
        return redact_url(text), None
    path = Path(text).expanduser().absolute()
    return str(path), path


def _source_archive(
    source: str, dest: Path, cache_dir: Path | None, client: HttpClient | None
) -> tuple[Path, str, bool]:
    """Local path of the archive, its printable origin, and whether to delete it afterwards."""
    text = source.strip()
    if is_url(text):
        cache = cache_dir if cache_dir is not None else dest / ".s2kit-download"
        name = PurePosixPath(urlsplit(text).path).name or ESACCI_ARCHIVE
        own = client is None
        http = client if client is not None else HttpClient()
        try:
            result = http.download(text, cache / name)
        finally:
            if own:
                http.close()
        return result.path, redact_url(text), cache_dir is None
    scheme = urlsplit(text).scheme.lower()
    if scheme and len(scheme) > 1:
        raise InputError(
            f"expected --source to be a file or an http(s) URL, found a {scheme}:// address ({text}); "
            "download the archive with another client and pass the file"
        )
    path = Path(text).expanduser()
    if not path.is_file():
        raise InputError(f"expected the {ESACCI_ARCHIVE} archive, found no file at {display_path(path)}")
    return path.absolute(), str(path.absolute()), False


def install_esacci(
    source: str,
    dest: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    client: HttpClient | None = None,
    log: Callable[[str], None] | None = None,
) -> EsacciResult:
    """Unpack the ESACCI-LC archive (file or URL) into Sen2Cor's ``aux_data`` folder *dest*."""
    target = Path(dest).expanduser().absolute()
    if not target.is_dir():
        raise InputError(
            "expected Sen2Cor's aux_data folder (…/lib/python2.7/site-packages/sen2cor/aux_data), "
            f"found no folder at {display_path(target)}"
        )
    say = log or (lambda _m: None)
    manifest = _read_manifest(target)
    origin, local = _origin(source)
    same_file = local is None or (local.is_file() and local.stat().st_size == manifest.get("archive_size"))
    if not force and manifest and manifest.get("source") == origin and same_file:
        report = check_esacci(target)
        if report.ok:
            return EsacciResult(target, "up-to-date", report.items, origin)
    archive, _, delete_after = _source_archive(
        source, target, Path(cache_dir).expanduser().absolute() if cache_dir is not None else None, client
    )
    say(f"unpacking {archive}")
    staging = Path(tempfile.mkdtemp(prefix=".esacci-staging-", dir=target))
    try:
        unpacked = _unpack(archive, staging)
        missing = [n for n in (LCCS_MAP, WB_MAP) if n not in unpacked.files]
        if not any(k.startswith(SNOW_DIR + "/") for k in unpacked.files):
            missing.append(SNOW_DIR + "/")
        if missing:
            found = ", ".join(unpacked.tars) or "no inner tar"
            raise EsacciError(
                f"expected {', '.join(missing)} in the archive (or its inner tars), found none "
                f"(inner tars: {found}; {len(unpacked.seen)} other members)",
                archive,
            )
        check = check_esacci(staging)
        if not check.ok:
            raise EsacciError(f"{check.errors[0].message} (in the archive; nothing installed)", archive)
        _move_into_place(staging, target)
        document = {
            "s2kit_esacci": FORMAT_VERSION,
            "source": origin,
            "archive_size": archive.stat().st_size,
            "files": {
                k: {"size": v["size"], "sha256": v["sha256"]} for k, v in sorted(unpacked.files.items())
            },
        }
        atomic_write_text(target / MANIFEST, json.dumps(document, indent=2) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if delete_after:
        with contextlib.suppress(OSError):
            archive.unlink()
            archive.parent.rmdir()
    return EsacciResult(target, "installed", check.items, origin)


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the staged items into *target*; replaced ones are moved aside, then deleted
    (and put back if a rename fails half-way)."""
    old = target / f".esacci-old-{uuid.uuid4().hex[:8]}"
    old.mkdir()
    done: list[str] = []
    try:
        for name in (LCCS_MAP, WB_MAP, SNOW_DIR):
            if (target / name).exists() or (target / name).is_symlink():
                os.replace(target / name, old / name)
            os.replace(staging / name, target / name)
            done.append(name)
    except BaseException:
        for name in (LCCS_MAP, WB_MAP, SNOW_DIR):
            if name in done:
                os.replace(target / name, staging / name)
            if (old / name).exists() or (old / name).is_symlink():
                os.replace(old / name, target / name)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
