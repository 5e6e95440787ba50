"""One fetch run: list, download in parallel, verify, finish each product (steps 3-5)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError, S2kitError, UsageError, display_path
from ..fsutil import atomic_write_bytes, atomic_write_text
from ..http import HttpError, SourceUnreachable
from ..safe import repair_empty_dirs
from .model import (
    CHECKSUM_ATTEMPTS,
    MANIFEST_VERSION,
    STATE_DIR,
    FetchError,
    FetchInterrupted,
    RemoteObject,
    RemoteProduct,
    Selection,
    Source,
    printable,
)
from .report import FetchedProduct, FetchReport
from .select import cloudy, cloudy_reason, select_products
from .store import (
    Journal,
    _check_paths,
    _expected_files,
    _inside,
    _out_lock,
    _safe_rel,
    file_md5,
    flush_to_disk,
    manifest_matches,
    manifest_path,
    md5_hex,
)


class Progress(Protocol):
    """What :func:`fetch` reports while downloading (the CLI shows a rich progress bar)."""

    def start(self, total_bytes: int, done_bytes: int, files: int, products: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def file_done(self) -> None: ...

    def product_done(self) -> None: ...

    def stop(self) -> None: ...


class _Cancelled(Exception):
    """Raised inside a download when the run is being stopped."""


@dataclass
class _Job:
    """One product being downloaded."""

    product: RemoteProduct
    report: FetchedProduct
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


def fetch_products(
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
        raise InputError("expected a folder to fetch into, found a file", out)
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
    decided: dict[str, FetchedProduct] = {}
    for p, err in zip(chosen, listed, strict=True):
        if not isinstance(err, S2kitError):
            err = _check_paths(p)
        if isinstance(err, S2kitError):
            decided[p.name] = FetchedProduct.of(p, "failed", f"listing: {_one_line(source, err)}")
        elif manifest_matches(out, p):
            decided[p.name] = FetchedProduct.of(p, "complete", None)
            decided[p.name].path = str(out / p.target_name)
        else:
            todo.append(p)
    need_cloud = [p for p in todo if sel.max_cloud is not None and p.cloud_cover is None]
    for p, err in zip(need_cloud, _parallel(jobs, source.cloud_cover, need_cloud), strict=True):
        if isinstance(err, S2kitError):
            decided[p.name] = FetchedProduct.of(p, "failed", f"cloud cover: {_one_line(source, err)}")
    todo = [p for p in todo if p.name not in decided]
    for p in todo:
        if cloudy(p, sel):
            decided[p.name] = FetchedProduct.of(p, "skipped", cloudy_reason(p, sel))
    todo = [p for p in todo if p.name not in decided]
    if not dry_run and todo:
        reports, report.bytes_transferred = _download(source, todo, out, state, jobs, progress)
        decided.update(reports)
    for p in todo:
        decided.setdefault(p.name, FetchedProduct.of(p, "download", None))
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
) -> tuple[dict[str, FetchedProduct], int]:
    """Download the missing files of *todo*; returns the reports and the bytes transferred."""
    out.mkdir(parents=True, exist_ok=True)
    (state / "staging").mkdir(parents=True, exist_ok=True)
    reports: dict[str, FetchedProduct] = {}
    work: list[tuple[_Job, RemoteObject, Path]] = []
    jobs_by_name: dict[str, _Job] = {}
    prefetched_bytes = 0
    for p in todo:
        rep = FetchedProduct.of(p, "downloaded")
        try:
            job = _prepare(p, rep, out, state)
            assert p.objects is not None
            dests = [_inside(job.staging / _safe_rel(o.rel, p.target_name), out) for o in p.objects]
        except S2kitError as exc:
            reports[p.name] = FetchedProduct.of(p, "failed", _one_line(source, exc))
            continue
        except OSError as exc:
            reports[p.name] = FetchedProduct.of(p, "failed", f"staging: {_short(exc)}")
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
                result = source.client.download(  # flushed to disk once per product, in _finish
                    o.url, dest, expected_size=o.size, expected_md5=o.md5, progress=seen, fsync=False
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


def _prepare(p: RemoteProduct, rep: FetchedProduct, out: Path, state: Path) -> _Job:
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
    atomic_write_bytes(dest, data, fsync=False)  # flushed with the product's files, in _finish
    journal.add(o)
    return True


def _finish(job: _Job, out: Path, state: Path, reports: dict[str, FetchedProduct]) -> None:
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
    assert p.objects is not None
    objects = p.objects
    try:
        created: list[str] = []
        if p.packaging == "safe":
            for d in sorted(set(p.dirs)):
                target = _inside(job.staging / _safe_rel(d, p.target_name), out)
                if not target.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    created.append(d)
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
        # the durability promise: the manifest reaches the disk only after every file it lists
        flush_to_disk(
            job.staging, [_inside(job.staging / _safe_rel(o.rel, p.target_name), out) for o in objects]
        )
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


#: the name the library used before ``fetch_products`` (kept: ``from s2kit.fetch import fetch``)
fetch = fetch_products
