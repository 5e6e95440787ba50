"""The fetch state in OUT: completion manifests, the staging journal, path checks and the OUT lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import display_path
from ..http import md5_bytes
from .model import (
    MANIFEST_VERSION,
    STATE_DIR,
    FetchError,
    RemoteObject,
    RemoteProduct,
    printable,
    product_folder_problem,
)


def md5_hex(value: str | None) -> str | None:
    """Normalise an MD5 (hex or base64) to lower-case hex."""
    return md5_bytes(value).hex() if value else None


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def flush_to_disk(root: Path, files: list[Path]) -> None:
    """fsync *files*, then every folder under *root* (and *root*): their bytes and their names
    are on disk when this returns. Called once per product, before its completion manifest is
    written (the downloads themselves do not fsync: one flush per product, not per file)."""
    for path in files:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO put there must not block the run
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    folders = [root, *(Path(d) / n for d, names, _f in os.walk(root) for n in names)]
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
    """Verified files of one staging folder, one JSON line each (survives a killed run).

    A line is written when a file verified (size, MD5), before the file is flushed to disk
    (that happens once per product, see :func:`flush_to_disk`). So a file recorded by an
    earlier run - which may have stopped with a crash before its bytes reached the disk - is
    checked again (size and MD5) before :meth:`has` counts it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.done: dict[str, tuple[int, str | None]] = {}
        with contextlib.suppress(OSError):
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    rec = json.loads(line)
                    self.done[str(rec["rel"])] = (int(rec["size"]), rec.get("md5"))
        self.earlier = set(self.done)  # recorded by an earlier run: checked again before reuse

    def has(self, o: RemoteObject, staged: Path) -> bool:
        entry = self.done.get(o.rel)
        if entry is None or entry != (o.size, md5_hex(o.md5)):
            return False
        try:
            if staged.stat().st_size != o.size:
                return False
            if o.rel in self.earlier and entry[1] is not None and file_md5(staged) != entry[1]:
                return False
        except OSError:
            return False
        self.earlier.discard(o.rel)
        return True

    def add(self, o: RemoteObject) -> None:
        line = json.dumps({"rel": o.rel, "size": o.size, "md5": md5_hex(o.md5)}) + "\n"
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
            self.done[o.rel] = (o.size, md5_hex(o.md5))
            self.earlier.discard(o.rel)


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
