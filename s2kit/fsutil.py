"""Filesystem helpers: atomic writes (temp file in the same directory + rename), file hashes, flock(2)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "NO_FLOCK",
    "atomic_write_bytes",
    "atomic_write_text",
    "flock",
    "flocked",
    "read_json_object",
    "sha256_file",
    "written_beside",
]


@contextlib.contextmanager
def written_beside(
    path: str | os.PathLike[str], data: bytes, mode: int = 0o644, *, fsync: bool = True
) -> Iterator[Path]:
    """A temp file in *path*'s directory holding *data* (fsynced unless *fsync* is false, chmod
    *mode*), for the caller to give *path*'s name (rename, link); whatever is left of it is
    removed on exit."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, mode: int = 0o644, *, fsync: bool = True
) -> Path:
    """Write *data* to *path* so readers see either the old file or the whole new one
    (*fsync* false: atomic for readers, not flushed to disk - for a hint that may be lost)."""
    target = Path(path)
    with written_beside(target, data, mode, fsync=fsync) as tmp:
        os.replace(tmp, target)
    return target


def atomic_write_text(
    path: str | os.PathLike[str], text: str, mode: int = 0o644, *, fsync: bool = True
) -> Path:
    if not fsync:
        return atomic_write_bytes(path, text.encode("utf-8"), mode, fsync=False)
    return atomic_write_bytes(path, text.encode("utf-8"), mode)  # the call shape tests replace


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A JSON object read from *path*, or None when it is missing, unreadable or not an object."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested past the stack
        return None
    return doc if isinstance(doc, dict) else None


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks; an unreadable file raises the ``OSError``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


#: errno values of a file system without flock (NFS without lockd, Lustre mounted without it).
NO_FLOCK = frozenset({errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})


def flock(fd: int, *, shared: bool = False, blocking: bool = True, best_effort: bool = False) -> bool:
    """flock(2) *fd*; True when the lock is held.

    False when *blocking* is off and another process holds it, or (with *best_effort*) when
    the file system has no flock (:data:`NO_FLOCK`): the caller proceeds unlocked. Any other
    OSError is raised. The lock dies with the fd's last close (and with its process).
    """
    op = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, op)
    except OSError as exc:
        if not blocking and exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        if best_effort and exc.errno in NO_FLOCK:
            return False
        raise
    return True


@contextlib.contextmanager
def flocked(path: str | os.PathLike[str], *, best_effort: bool = False, mode: int = 0o644) -> Iterator[int]:
    """Hold an exclusive flock on the lock file *path* (created, with its folder), blocking
    until it is free; yield its fd. See :func:`flock` for *best_effort*."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, mode)
    try:
        flock(fd, best_effort=best_effort)
        yield fd
    finally:
        os.close(fd)  # also releases the lock
