"""``s2kit fetch``: get L1C products from a source, verified, resumable, never half-present.

Steps (one :func:`fetch` call):

1. **find** candidates at the source (:mod:`s2kit.gcs` lists ``tiles/UU/L/SS/`` of Google's public
   bucket or reads its ``index.csv.gz``; :mod:`s2kit.cdse` searches the CDSE STAC catalogue);
2. **select** (:func:`select_products`, pure): tile and date window, L1C only, ``--max-baseline``,
   the duplicate policy shared with the planner (:func:`s2kit.dedupe.dedupe`), ``--max-cloud``
   when the cloud cover is already known (index, STAC);
3. **list** each selected product's objects (name, size, MD5, generation) and skip the products
   whose **completion manifest** matches; read the cloud cover from ``MTD_MSIL1C.xml`` when only
   the product's own metadata has it (the bytes are kept and reused, not fetched twice);
4. **download** the missing files in parallel (``--jobs``) through one
   :class:`~s2kit.http.HttpClient` (retries, back-off, timeouts, ``.part`` files resumed with
   HTTP ``Range``, size and MD5 checked while the bytes arrive, atomic rename) into a staging
   folder ``OUT/.s2kit-fetch/staging/<product>``; a journal there records every verified file,
   so an interrupted run (killed, network gone) continues where it stopped and no file is fetched
   twice in full;
5. **finish** a product: recreate the empty folders the bucket does not store (``_$folder$``
   placeholders, then :func:`s2kit.plan.repair_empty_dirs`: ``AUX_DATA``, ``HTML``, ``rep_info``,
   ``GRANULE/*/AUX_DATA``, ``DATASTRIP/*/QI_DATA`` - without them Sen2Cor stops with "Error in
   creating L2A User Product"), write the completion manifest
   ``OUT/.s2kit-fetch/complete/<product>.json`` (every file with size and MD5), then rename the
   staging folder to ``OUT/<product>``. A ``.SAFE`` folder therefore appears in ``OUT`` only
   complete, and a product counts as present only when its manifest exists and matches the
   source's listing and the sizes on disk.

A ``.SAFE`` already in ``OUT`` without a manifest (an older gsutil download, maybe interrupted) is
checked file by file (size, MD5): complete ones are adopted (manifest written, folders repaired),
incomplete ones are moved to staging and completed - only the missing or wrong files are fetched.
One ``fetch`` at a time writes into an ``OUT`` (a lock file). Every error is one line
(:class:`FetchError`); ``--dry-run`` writes nothing.

Nothing is written outside ``OUT``: a product's folder name must be exactly one product name
(:func:`product_folder_problem`; the sources apply it to the listing's folder and to CDSE item
ids, and :func:`select_products` again to every candidate), object paths must stay inside the
product (no ``..``, no absolute path, no control character), and every destination is checked,
after resolving, to lie under ``OUT``. A source that cannot be reached at all
(:class:`~s2kit.http.SourceUnreachable`: the name does not resolve, the connection is refused)
stops the run at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

from .dedupe import dedupe
from .errors import InputError, S2kitError, UsageError, display_path
from .fsutil import atomic_write_bytes, atomic_write_text
from .http import HttpClient, HttpError, SourceUnreachable, md5_bytes
from .safe import ProductName, baseline_key, parse_baseline, parse_product_name

__all__ = [
    "FetchError",
    "FetchInterrupted",
    "FetchReport",
    "ProductReport",
    "RemoteObject",
    "RemoteProduct",
    "Selection",
    "Source",
    "fetch",
    "manifest_matches",
    "normalize_tile",
    "printable",
    "product_folder_problem",
    "select_products",
    "STATE_DIR",
]

STATE_DIR = ".s2kit-fetch"
MANIFEST_VERSION = 1
CHECKSUM_ATTEMPTS = 2  # a file whose MD5 does not match is fetched once more, then it is an error
Decision = Literal["download", "downloaded", "complete", "skipped", "failed"]
# a product folder: one path component, letters, digits and "_" (every Sentinel-2 product name,
# compact or legacy) then ".SAFE"; nothing else can name a folder in OUT
_PRODUCT_FOLDER_RE = re.compile(r"[A-Za-z0-9_]{1,250}\.SAFE")


def printable(text: str, limit: int = 200) -> str:
    """*text* for a one-line message: control characters escaped, long text cut with "..."."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def product_folder_problem(folder: str, parse: bool = True) -> str | None:
    """None when *folder* is exactly one product folder name (``<name>.SAFE``, letters, digits
    and ``_``, and with *parse* a name :func:`s2kit.safe.parse_product_name` accepts); else why
    it cannot name a folder in OUT (one line)."""
    if not _PRODUCT_FOLDER_RE.fullmatch(folder):
        return f"expected one folder named <product>.SAFE, found '{printable(folder)}'"
    if parse:
        try:
            parse_product_name(folder)
        except S2kitError:
            return f"expected a Sentinel-2 product name, found '{printable(folder)}'"
    return None


class FetchError(S2kitError):
    """Selecting or downloading products failed; the message says which and why."""


class FetchInterrupted(FetchError):
    """The run was interrupted (Ctrl-C, SIGTERM); what was verified is kept for the next run."""

    exit_code = 130


# ----------------------------------------------------------------------------- model
@dataclass(frozen=True)
class RemoteObject:
    """One file of a product at the source."""

    rel: str  # path inside the product folder (for a zipped product: the zip's own name)
    url: str
    size: int
    md5: str | None  # base64 (GCS md5Hash) or hex; None: only the size can be checked
    generation: str | None = None


@dataclass
class RemoteProduct:
    """A product at the source; *objects* is filled by :meth:`Source.list_objects`."""

    name: str  # "S2A_MSIL1C_..._<generation>.SAFE"
    parsed: ProductName | None
    source: str
    ref: str  # GCS: object prefix "tiles/17/S/QV/<name>/"; CDSE: the product UUID
    packaging: Literal["safe", "zip"] = "safe"
    cloud_cover: float | None = None
    size: int | None = None  # announced by the index / catalogue, before listing
    md5: str | None = None  # announced by the catalogue (zipped products)
    objects: list[RemoteObject] | None = None
    dirs: list[str] = field(default_factory=list)  # folders the listing marks (``_$folder$``, ``x/``)
    prefetched: dict[str, bytes] = field(default_factory=dict)  # verified bytes fetched while selecting
    unsafe: str | None = None  # why the source's folder/id cannot name a folder in OUT (then skipped)

    @property
    def target_name(self) -> str:
        """What appears in OUT: ``X.SAFE`` (a folder) or ``X.SAFE.zip``."""
        return self.name + ".zip" if self.packaging == "zip" else self.name

    @property
    def tile(self) -> str | None:
        return self.parsed.mgrs_tile if self.parsed is not None else None

    @property
    def total_size(self) -> int | None:
        if self.objects is not None:
            return sum(o.size for o in self.objects)
        return self.size


@dataclass(frozen=True)
class Selection:
    """What to fetch: tiles, an inclusive sensing-date window, optional cloud and baseline caps."""

    tiles: tuple[str, ...]
    start: date
    end: date
    max_cloud: float | None = None
    max_baseline: str | None = None

    def __post_init__(self) -> None:
        if not self.tiles:
            raise UsageError("expected at least one --tile, found none")
        if self.end < self.start:
            raise UsageError(f"expected --end on or after --start, found {self.start} .. {self.end}")
        if self.max_cloud is not None and not 0 <= self.max_cloud <= 100:
            raise UsageError(f"expected --max-cloud between 0 and 100, found {self.max_cloud:g}")
        if self.max_baseline is not None:
            try:
                object.__setattr__(self, "max_baseline", parse_baseline(self.max_baseline))
            except S2kitError as exc:
                raise UsageError(f"--max-baseline: {exc.message}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tiles": list(self.tiles),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "max_cloud": self.max_cloud,
            "max_baseline": self.max_baseline,
        }


class Source(Protocol):
    """Where products come from (:class:`s2kit.gcs.GcsSource`, :class:`s2kit.cdse.CdseSource`)."""

    name: str
    base_url: str
    client: HttpClient

    def describe(self) -> str: ...

    def check_ready(self, dry_run: bool) -> None: ...

    def candidates(self, sel: Selection) -> list[RemoteProduct]: ...

    def list_objects(self, product: RemoteProduct) -> None: ...

    def cloud_cover(self, product: RemoteProduct) -> float | None: ...

    def explain(self, exc: HttpError) -> str: ...

    def notes(self, sel: Selection) -> list[str]: ...


_TILE_CHARS = set("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")


def normalize_tile(text: str) -> str:
    """``17SQV``/``T17sqv`` -> ``17SQV``; anything else is a usage error."""
    tile = text.strip().upper()
    tile = tile[1:] if len(tile) == 6 and tile.startswith("T") else tile
    ok = len(tile) == 5 and tile[:2].isdigit() and 1 <= int(tile[:2]) <= 60 and set(tile[2:]) <= _TILE_CHARS
    if not ok:
        raise UsageError(f"expected an MGRS tile like 17SQV, found {text!r}")
    return tile


# ----------------------------------------------------------------------------- reports
@dataclass
class ProductReport:
    name: str
    decision: Decision
    reason: str | None = None
    tile: str | None = None
    sensing_date: str | None = None
    processing_baseline: str | None = None
    cloud_cover: float | None = None
    size: int | None = None
    files: int | None = None
    path: str | None = None
    files_downloaded: int = 0
    files_resumed: int = 0
    files_reused: int = 0
    created_dirs: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, p: RemoteProduct, decision: Decision, reason: str | None = None) -> ProductReport:
        n = p.parsed
        return cls(
            name=p.target_name,
            decision=decision,
            reason=reason,
            tile=p.tile,
            sensing_date=n.sensing_start.date().isoformat() if n is not None else None,
            processing_baseline=n.processing_baseline if n is not None else None,
            cloud_cover=p.cloud_cover,
            size=p.total_size,
            files=len(p.objects) if p.objects is not None else None,
        )

    @property
    def reason_code(self) -> str:
        return (self.reason or "").split(":", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "decision": self.decision,
            "reason": self.reason,
            "tile": self.tile,
            "sensing_date": self.sensing_date,
            "processing_baseline": self.processing_baseline,
            "cloud_cover": self.cloud_cover,
            "size": self.size,
            "files": self.files,
            "path": self.path,
            "files_downloaded": self.files_downloaded,
            "files_resumed": self.files_resumed,
            "files_reused": self.files_reused,
            "created_dirs": self.created_dirs,
        }


@dataclass
class FetchReport:
    source: str
    base_url: str
    out: Path
    selection: Selection
    dry_run: bool
    products: list[ProductReport] = field(default_factory=list)
    not_selected: int = 0  # candidates outside the tiles / dates (not listed one by one)
    notes: list[str] = field(default_factory=list)
    bytes_transferred: int = 0
    seconds: float = 0.0

    def by(self, *decisions: Decision) -> list[ProductReport]:
        return [p for p in self.products if p.decision in decisions]

    @property
    def ok(self) -> bool:
        return not self.by("failed")

    def summary_dict(self) -> dict[str, Any]:
        todo = self.by("download", "downloaded")
        return {
            "download" if self.dry_run else "downloaded": len(todo),
            "complete": len(self.by("complete")),
            "skipped": dict(sorted(Counter(p.reason_code for p in self.by("skipped")).items())),
            "failed": len(self.by("failed")),
            "not_selected": self.not_selected,
            "bytes": sum(p.size or 0 for p in todo),
            "files": sum(p.files or 0 for p in todo),
            "bytes_transferred": self.bytes_transferred,
            "seconds": round(self.seconds, 3),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "base_url": self.base_url,
            "out": str(self.out),
            "dry_run": self.dry_run,
            "selection": self.selection.to_dict(),
            "products": [p.to_dict() for p in self.products],
            "summary": self.summary_dict(),
            "notes": self.notes,
        }

    def lines(self) -> Iterator[str]:
        """The human report: one line per product, then the summary."""
        label = {"download": "get", "downloaded": "got", "complete": "have", "skipped": "skip"}
        label["failed"] = "FAIL"
        width = max((len(p.name) for p in self.products), default=0)
        for p in self.products:
            detail: list[str] = []
            if p.decision in ("download", "downloaded", "complete") and p.size is not None:
                detail.append(f"{human_bytes(p.size):>9}  {p.files or 0:>3} files")
            if p.cloud_cover is not None and p.decision != "skipped":
                detail.append(f"cloud {p.cloud_cover:.1f} %")
            if p.decision == "downloaded":
                parts = [f"{p.files_downloaded} fetched"]
                if p.files_resumed:
                    parts.append(f"{p.files_resumed} resumed")
                if p.files_reused:
                    parts.append(f"{p.files_reused} kept")
                if p.created_dirs:
                    parts.append(f"{len(p.created_dirs)} empty folders recreated")
                detail.append(", ".join(parts))
            if p.reason:
                detail.append(p.reason)
            yield f"{label[p.decision]:<4}  {p.name:<{width}}  {'  '.join(detail)}".rstrip()
        s = self.summary_dict()
        todo_word = "to download" if self.dry_run else "downloaded"
        todo_n = s["download" if self.dry_run else "downloaded"]
        skipped = s["skipped"]
        skip_text = f"{sum(skipped.values())} skipped" + (
            f" ({', '.join(f'{n} {k}' for k, n in skipped.items())})" if skipped else ""
        )
        parts = [
            f"{todo_n} {todo_word} ({human_bytes(s['bytes'])} in {s['files']} files)",
            f"{s['complete']} already complete",
            skip_text,
        ]
        if s["failed"]:
            parts.append(f"{s['failed']} failed")
        if self.not_selected:
            parts.append(f"{self.not_selected} outside tiles/dates")
        tail = (
            "dry run: nothing written"
            if self.dry_run
            else f"{human_bytes(self.bytes_transferred)} transferred in {self.seconds:.1f} s"
        )
        yield f"fetch: {', '.join(parts)}; {tail}"


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


# ----------------------------------------------------------------------------- selection (pure)
def select_products(
    cands: Sequence[RemoteProduct], sel: Selection
) -> tuple[list[RemoteProduct], list[ProductReport], int]:
    """Apply tiles, dates, L1C-only, ``max_baseline``, the duplicate policy and a known cloud cover.

    Returns ``(chosen, skipped, not_selected)``: *skipped* lists every product that matched the
    tiles and dates but is not fetched, with the reason; *not_selected* counts the others.
    Pure: no I/O; cloud covers that are not known yet are checked later.
    """
    tiles = set(sel.tiles)
    cap = baseline_key(parse_baseline(sel.max_baseline, "--max-baseline")) if sel.max_baseline else None
    skipped: list[ProductReport] = []
    eligible: list[RemoteProduct] = []
    not_selected = 0
    seen: set[str] = set()
    for p in cands:
        if p.name in seen:
            continue
        seen.add(p.name)
        unsafe = p.unsafe or product_folder_problem(p.name, parse=False)  # unparsed: not-a-product
        if unsafe is not None:
            skipped.append(ProductReport.of(p, "skipped", f"unsafe-name: {unsafe}: refused"))
            continue
        n = p.parsed
        if n is None:
            skipped.append(ProductReport.of(p, "skipped", "not-a-product: not a Sentinel-2 product name"))
            continue
        if n.mgrs_tile is not None and n.mgrs_tile not in tiles:
            not_selected += 1
            continue
        if not sel.start <= n.sensing_start.date() <= sel.end:
            not_selected += 1
            continue
        if n.level != "L1C":
            skipped.append(ProductReport.of(p, "skipped", f"not-l1c: a {n.level} product"))
            continue
        if n.naming != "compact" or n.processing_baseline is None:
            skipped.append(ProductReport.of(p, "skipped", "old-format: pre-December-2016 long name"))
            continue
        if cap is not None and baseline_key(n.processing_baseline) > cap:
            skipped.append(
                ProductReport.of(
                    p, "skipped", f"over-max-baseline: {n.processing_baseline} > {sel.max_baseline}"
                )
            )
            continue
        eligible.append(p)
    result = dedupe(eligible, _parsed)
    for drop in result.dropped:
        skipped.append(
            ProductReport.of(drop.item, "skipped", f"duplicate: superseded by {drop.winner.target_name}")
        )
    chosen: list[RemoteProduct] = []
    for p in result.kept:
        if cloudy(p, sel):
            skipped.append(ProductReport.of(p, "skipped", cloudy_reason(p, sel)))
        else:
            chosen.append(p)
    return chosen, skipped, not_selected


def _parsed(p: RemoteProduct) -> ProductName:
    assert p.parsed is not None
    return p.parsed


def cloudy(p: RemoteProduct, sel: Selection) -> bool:
    return sel.max_cloud is not None and p.cloud_cover is not None and p.cloud_cover > sel.max_cloud


def cloudy_reason(p: RemoteProduct, sel: Selection) -> str:
    return f"cloudy: {p.cloud_cover:.1f} % > {sel.max_cloud:g} %"


# ----------------------------------------------------------------------------- manifests, journal
def md5_hex(value: str | None) -> str | None:
    """Normalise an MD5 (hex or base64) to lower-case hex."""
    return md5_bytes(value).hex() if value else None


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _expected_files(p: RemoteProduct) -> dict[str, list[Any]]:
    assert p.objects is not None
    return {o.rel: [o.size, md5_hex(o.md5)] for o in p.objects}


def _final_file(out: Path, p: RemoteProduct, rel: str) -> Path:
    return out / p.target_name if p.packaging == "zip" else out / p.target_name / rel


def manifest_path(out: Path, p: RemoteProduct) -> Path:
    return out / STATE_DIR / "complete" / f"{p.target_name}.json"


def manifest_matches(out: Path, p: RemoteProduct) -> bool:
    """True when *p* is present: its completion manifest exists, lists exactly the source's files
    (names, sizes, MD5) and every file is on disk with its size."""
    try:
        data = json.loads(manifest_path(out, p).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        return False
    if data.get("product") != p.target_name or data.get("files") != _expected_files(p):
        return False
    assert p.objects is not None
    for o in p.objects:
        try:
            if _final_file(out, p, o.rel).stat().st_size != o.size:
                return False
        except OSError:
            return False
    return True


class Journal:
    """Verified files of one staging folder, one JSON line each (survives a killed run)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.done: dict[str, tuple[int, str | None]] = {}
        with contextlib.suppress(OSError):
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    rec = json.loads(line)
                    self.done[str(rec["rel"])] = (int(rec["size"]), rec.get("md5"))

    def has(self, o: RemoteObject, staged: Path) -> bool:
        entry = self.done.get(o.rel)
        if entry is None or entry != (o.size, md5_hex(o.md5)):
            return False
        try:
            return staged.stat().st_size == o.size
        except OSError:
            return False

    def add(self, o: RemoteObject) -> None:
        line = json.dumps({"rel": o.rel, "size": o.size, "md5": md5_hex(o.md5)}) + "\n"
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
            self.done[o.rel] = (o.size, md5_hex(o.md5))


def _safe_rel(rel: str, product: str) -> PurePosixPath:
    bad = not isinstance(rel, str) or not rel or rel.startswith("/")
    bad = bad or any(part in ("", ".", "..") for part in rel.split("/"))
    bad = bad or any(not c.isprintable() for c in rel)  # NUL, newline, other control characters
    if bad:
        raise FetchError(
            f"{product}: expected object paths inside the product, found '{printable(str(rel))}': refused"
        )
    return PurePosixPath(rel)


def _inside(path: Path, out: Path) -> Path:
    """*path*, after checking that it resolves (symlinks followed) to a place under *out*."""
    root = out.resolve()
    where = path.resolve()
    if where != root and root not in where.parents:
        raise FetchError(
            f"expected every destination under {display_path(root)}, found one resolving to "
            f"{display_path(where)}: refused",
            path,
        )
    return path


def _check_paths(p: RemoteProduct) -> FetchError | None:
    """Every object and folder of *p* must stay inside the product (no ``..``, no ``/x``)."""
    assert p.objects is not None
    problem = product_folder_problem(p.name)
    if problem is not None:
        return FetchError(f"{problem}: refused")
    try:
        if p.packaging == "zip" and [o.rel for o in p.objects] != [p.target_name]:
            raise FetchError(f"{p.target_name}: expected one object, the zipped product: refused")
        for rel in [o.rel for o in p.objects] + p.dirs:
            _safe_rel(rel, p.target_name)
    except FetchError as exc:
        return exc
    return None


@contextlib.contextmanager
def _out_lock(state: Path) -> Iterator[None]:
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise FetchError(
                f"expected no other 's2kit fetch' writing into this folder, found one running (pid {holder})",
                state.parent,
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- progress
class Progress(Protocol):
    """What :func:`fetch` reports while downloading (the CLI shows a rich progress bar)."""

    def start(self, total_bytes: int, done_bytes: int, files: int, products: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def file_done(self) -> None: ...

    def product_done(self) -> None: ...

    def stop(self) -> None: ...


class RichProgress:
    """A rich progress bar on stderr: bytes, rate, files, products, ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichBar

        self._bar = RichBar(
            TextColumn("fetch"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[files]} files, {task.fields[products]} products"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: Any = None
        self._files = [0, 0]
        self._products = [0, 0]
        self._lock = threading.Lock()

    def _files_text(self) -> str:
        return f"{self._files[0]}/{self._files[1]}"

    def _products_text(self) -> str:
        return f"{self._products[0]}/{self._products[1]}"

    def start(self, total_bytes: int, done_bytes: int, files: int, products: int) -> None:
        self._files, self._products = [0, files], [0, products]
        self._bar.start()
        self._task = self._bar.add_task(
            "fetch",
            total=total_bytes,
            completed=done_bytes,
            files=self._files_text(),
            products=self._products_text(),
        )

    def advance(self, nbytes: int) -> None:
        self._bar.advance(self._task, nbytes)

    def file_done(self) -> None:
        with self._lock:
            self._files[0] += 1
            self._bar.update(self._task, files=self._files_text(), products=self._products_text())

    def product_done(self) -> None:
        with self._lock:
            self._products[0] += 1
            self._bar.update(self._task, files=self._files_text(), products=self._products_text())

    def stop(self) -> None:
        self._bar.stop()


class _Cancelled(Exception):
    """Raised inside a download when the run is being stopped."""


# ----------------------------------------------------------------------------- the run
@dataclass
class _Job:
    """One product being downloaded."""

    product: RemoteProduct
    report: ProductReport
    staging: Path
    journal: Journal
    pending: int = 0
    error: str | None = None


def _parallel(jobs: int, fn: Callable[[RemoteProduct], Any], items: Sequence[RemoteProduct]) -> list[Any]:
    """``fn`` over *items* with *jobs* threads; an exception becomes the item's result."""

    def safe(p: RemoteProduct) -> Any:
        try:
            return fn(p)
        except SourceUnreachable:
            raise  # no connection at all: the run stops (see below), no product is tried further
        except S2kitError as exc:
            return exc
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            # a source's answer of the wrong shape: this product fails, the run goes on
            return FetchError(f"{p.target_name}: expected a well-formed answer, found {_short(exc)}")

    if len(items) <= 1 or jobs <= 1:
        return [safe(p) for p in items]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="s2kit-fetch") as pool:
        futures = [pool.submit(safe, p) for p in items]
        try:
            return [f.result() for f in futures]
        except SourceUnreachable:
            for f in futures:
                f.cancel()
            raise


def _short(exc: BaseException) -> str:
    return printable(f"{type(exc).__name__}: {exc}", 160)


def fetch(
    source: Source,
    sel: Selection,
    out: Path,
    *,
    jobs: int = 8,
    dry_run: bool = False,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> FetchReport:
    """Select, then (unless *dry_run*) download, verify and finish the products; see the module doc."""
    if jobs < 1:
        raise UsageError(f"expected --jobs >= 1, found {jobs}")
    if out.exists() and not out.is_dir():
        raise InputError("expected a folder for --out, found a file", out)
    say = log or (lambda _msg: None)
    t0 = time.monotonic()
    report = FetchReport(source.name, source.base_url, out, sel, dry_run, notes=source.notes(sel))
    for note in report.notes:
        say(f"note: {note}")
    source.check_ready(dry_run)
    state = out / STATE_DIR
    lock = contextlib.nullcontext() if dry_run else _out_lock(state)
    try:
        with lock:
            _run(source, sel, out, state, jobs, dry_run, progress, report)
    except KeyboardInterrupt:
        raise FetchInterrupted(
            "interrupted: verified files and partial downloads are kept; run the same command again to resume"
        ) from None
    report.seconds = time.monotonic() - t0
    return report


def _run(
    source: Source,
    sel: Selection,
    out: Path,
    state: Path,
    jobs: int,
    dry_run: bool,
    progress: Progress | None,
    report: FetchReport,
) -> None:
    """Steps 1-5 of the module doc, filling *report*."""
    chosen, skipped, report.not_selected = select_products(source.candidates(sel), sel)
    listed = _parallel(jobs, source.list_objects, chosen)
    todo: list[RemoteProduct] = []
    decided: dict[str, ProductReport] = {}
    for p, err in zip(chosen, listed, strict=True):
        if not isinstance(err, S2kitError):
            err = _check_paths(p)
        if isinstance(err, S2kitError):
            decided[p.name] = ProductReport.of(p, "failed", f"listing: {_one_line(source, err)}")
        elif manifest_matches(out, p):
            decided[p.name] = ProductReport.of(p, "complete", None)
            decided[p.name].path = str(out / p.target_name)
        else:
            todo.append(p)
    need_cloud = [p for p in todo if sel.max_cloud is not None and p.cloud_cover is None]
    for p, err in zip(need_cloud, _parallel(jobs, source.cloud_cover, need_cloud), strict=True):
        if isinstance(err, S2kitError):
            decided[p.name] = ProductReport.of(p, "failed", f"cloud cover: {_one_line(source, err)}")
    todo = [p for p in todo if p.name not in decided]
    for p in todo:
        if cloudy(p, sel):
            decided[p.name] = ProductReport.of(p, "skipped", cloudy_reason(p, sel))
    todo = [p for p in todo if p.name not in decided]
    if not dry_run and todo:
        reports, report.bytes_transferred = _download(source, todo, out, state, jobs, progress)
        decided.update(reports)
    for p in todo:
        decided.setdefault(p.name, ProductReport.of(p, "download", None))
    order = {p.name: i for i, p in enumerate(chosen)}
    report.products = sorted(decided.values(), key=lambda r: order.get(_stem(r.name), 0))
    report.products += sorted(skipped, key=lambda r: r.name)


def _stem(target_name: str) -> str:
    return target_name.removesuffix(".zip")


def _one_line(source: Source, exc: S2kitError) -> str:
    text = source.explain(exc) if isinstance(exc, HttpError) else str(exc)
    return " ".join(text.split())


def _download(
    source: Source,
    todo: list[RemoteProduct],
    out: Path,
    state: Path,
    jobs: int,
    progress: Progress | None,
) -> tuple[dict[str, ProductReport], int]:
    """Download the missing files of *todo*; returns the reports and the bytes transferred."""
    out.mkdir(parents=True, exist_ok=True)
    (state / "staging").mkdir(parents=True, exist_ok=True)
    reports: dict[str, ProductReport] = {}
    work: list[tuple[_Job, RemoteObject, Path]] = []
    jobs_by_name: dict[str, _Job] = {}
    prefetched_bytes = 0
    for p in todo:
        rep = ProductReport.of(p, "downloaded")
        try:
            job = _prepare(p, rep, out, state)
            assert p.objects is not None
            dests = [_inside(job.staging / _safe_rel(o.rel, p.target_name), out) for o in p.objects]
        except S2kitError as exc:
            reports[p.name] = ProductReport.of(p, "failed", _one_line(source, exc))
            continue
        except OSError as exc:
            reports[p.name] = ProductReport.of(p, "failed", f"staging: {_short(exc)}")
            continue
        jobs_by_name[p.name] = job
        for o, dest in zip(p.objects, dests, strict=True):
            if job.journal.has(o, dest):
                rep.files_reused += 1
                continue
            if o.rel in p.prefetched and _store_prefetched(p, o, dest, job.journal):
                rep.files_downloaded += 1
                prefetched_bytes += o.size
                continue
            work.append((job, o, dest))
            job.pending += 1
    for job in jobs_by_name.values():
        if job.pending == 0:
            _finish(job, out, state, reports)

    cancel = threading.Event()
    counted: dict[Path, int] = {}
    counted_lock = threading.Lock()
    transferred = [prefetched_bytes]

    def part_size(dest: Path) -> int:
        with contextlib.suppress(OSError, ValueError):
            return dest.with_name(dest.name + ".part").stat().st_size
        return 0

    def one(job: _Job, o: RemoteObject, dest: Path) -> bool:
        def seen(written: int, _total: int | None) -> None:
            if cancel.is_set():
                raise _Cancelled()
            with counted_lock:
                last = counted.get(dest, 0)
                delta = written - last if written >= last else written
                counted[dest] = written
                transferred[0] += delta
            if progress is not None:
                progress.advance(written - last)

        if cancel.is_set():
            raise _Cancelled()
        resumed = False
        for attempt in range(1, CHECKSUM_ATTEMPTS + 1):
            try:
                result = source.client.download(
                    o.url, dest, expected_size=o.size, expected_md5=o.md5, progress=seen
                )
            except SourceUnreachable:
                cancel.set()  # no connection at all: no other file is tried
                raise
            except HttpError as exc:
                if str(exc).endswith("discarded") and attempt < CHECKSUM_ATTEMPTS:  # size/checksum
                    with counted_lock:
                        back = counted.pop(dest, 0)
                    if progress is not None:
                        progress.advance(-back)
                    continue
                raise
            resumed = resumed or result.resumed
            break
        job.journal.add(o)
        return resumed

    pending_bytes = sum(o.size for _j, o, _d in work)
    already = 0
    for _j, o, dest in work:
        counted[dest] = min(part_size(dest), o.size)
        already += counted[dest]
    if progress is not None and work:
        progress.start(pending_bytes, already, len(work), len(jobs_by_name))
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="s2kit-fetch")
    futures: dict[Future[bool], tuple[_Job, RemoteObject, Path]] = {}
    try:
        for item in work:
            futures[pool.submit(one, *item)] = item
        waiting = set(futures)
        while waiting:
            finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for fut in finished:
                job, o, _dest = futures[fut]
                job.pending -= 1
                try:
                    if fut.result():
                        job.report.files_resumed += 1
                    job.report.files_downloaded += 1
                except SourceUnreachable:
                    raise
                except S2kitError as exc:
                    job.error = job.error or f"{o.rel}: {_one_line(source, exc)}"
                except OSError as exc:  # e.g. a name the file system refuses, a full disk
                    job.error = job.error or f"{o.rel}: {_short(exc)}"
                except _Cancelled:  # the run is stopping (the source became unreachable)
                    job.error = job.error or f"{o.rel}: not fetched (the run stopped)"
                if progress is not None:
                    progress.file_done()
                if job.pending == 0:
                    _finish(job, out, state, reports)
                    if progress is not None:
                        progress.product_done()
    except KeyboardInterrupt:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        if progress is not None:
            progress.stop()
        raise FetchInterrupted(
            "interrupted: verified files and partial downloads are kept in "
            f"{display_path(state / 'staging')}; run the same command again to resume"
        ) from None
    except SourceUnreachable as exc:  # no connection at all: stop at once, keep what verified
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        if progress is not None:
            progress.stop()
        raise SourceUnreachable(
            f"{exc}; verified files are kept in {display_path(state / 'staging')}: run the same "
            "command again to resume"
        ) from None
    pool.shutdown(wait=True)
    if progress is not None and work:
        progress.stop()
    return reports, transferred[0]


def _prepare(p: RemoteProduct, rep: ProductReport, out: Path, state: Path) -> _Job:
    """The staging folder and journal of *p*; an incomplete copy already in OUT is taken over."""
    staging = _inside(state / "staging" / p.target_name, out)
    journal = Journal(_inside(state / "staging" / f"{p.target_name}.journal", out))
    final = _inside(out / p.target_name, out)
    _inside(manifest_path(out, p), out)
    if final.exists() or final.is_symlink():
        _take_over(p, final, staging, journal)
    staging.mkdir(parents=True, exist_ok=True)
    return _Job(p, rep, staging, journal)


def _take_over(p: RemoteProduct, final: Path, staging: Path, journal: Journal) -> None:
    """A copy in OUT without a matching manifest: keep what verifies, move it to staging."""
    assert p.objects is not None
    if final.is_symlink() or (p.packaging == "safe") != final.is_dir():
        raise FetchError(
            f"expected {'a folder' if p.packaging == 'safe' else 'a file'} or nothing, found something else: "
            "move it away and run again",
            final,
        )
    if staging.exists():
        raise FetchError(
            f"expected one copy, found an unfinished download in {display_path(staging)} too: "
            "remove one of them and run again",
            final,
        )
    staging.parent.mkdir(parents=True, exist_ok=True)
    if p.packaging == "zip":
        staging.mkdir(parents=True)
        os.replace(final, staging / p.target_name)
    else:
        os.rename(final, staging)
    for o in p.objects:
        staged = staging / _safe_rel(o.rel, p.target_name)
        with contextlib.suppress(OSError):
            same = staged.is_file() and staged.stat().st_size == o.size
            if same and (o.md5 is None or file_md5(staged) == md5_hex(o.md5)):
                journal.add(o)


def _store_prefetched(p: RemoteProduct, o: RemoteObject, dest: Path, journal: Journal) -> bool:
    """Store bytes read while selecting (the MTD) if they verify; False: download them."""
    data = p.prefetched[o.rel]
    good_md5 = o.md5 is None or hashlib.md5(data, usedforsecurity=False).hexdigest() == md5_hex(o.md5)
    if len(data) != o.size or not good_md5:
        return False
    atomic_write_bytes(dest, data)
    journal.add(o)
    return True


def _finish(job: _Job, out: Path, state: Path, reports: dict[str, ProductReport]) -> None:
    """All files are in staging: folders, manifest, rename into OUT."""
    p, rep = job.product, job.report
    if job.error is not None:
        rep.decision = "failed"
        rep.reason = (
            f"{job.error}; verified files are kept in {display_path(job.staging)}: run again to resume"
        )
        reports[p.name] = rep
        return
    final = out / p.target_name
    try:
        created: list[str] = []
        if p.packaging == "safe":
            for d in sorted(set(p.dirs)):
                target = _inside(job.staging / _safe_rel(d, p.target_name), out)
                if not target.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    created.append(d)
            from .plan import repair_empty_dirs

            created += repair_empty_dirs(job.staging)
        manifest = {
            "version": MANIFEST_VERSION,
            "product": p.target_name,
            "source": p.source,
            "ref": p.ref,
            "completed": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "size": p.total_size,
            "created_dirs": created,
            "files": _expected_files(p),
        }
        if final.exists():
            raise FetchError("expected nothing at the destination, found a new copy: not overwritten", final)
        atomic_write_text(manifest_path(out, p), json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if p.packaging == "zip":
            os.replace(job.staging / p.target_name, final)
            shutil.rmtree(job.staging)
        else:
            os.rename(job.staging, final)
        with contextlib.suppress(FileNotFoundError):
            job.journal.path.unlink()
    except (OSError, S2kitError) as exc:
        rep.decision = "failed"
        rep.reason = f"finishing: {exc}"
        reports[p.name] = rep
        return
    rep.created_dirs = created
    rep.path = str(final)
    reports[p.name] = rep
