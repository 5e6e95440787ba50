"""Many inputs for one command: arguments, globs and path lists expanded into paths (issue 17).

The one owner of "what did the user point at": :func:`expand_inputs` turns the arguments of
``s2kit inspect``, ``validate`` and ``gipp check`` into a stream of :class:`InputItem`, in
order and de-duplicated:

* a plain path (product folder, ``.zip``, metadata or GIPP file) is itself;
* a shell-style pattern the shell did not expand (quoted ``'/store/*/*.SAFE'``) is expanded
  here, sorted; ``**`` matches any number of folders (never through a symlinked folder, so a
  symlink loop cannot make it run forever); names starting with ``.`` match only a pattern
  that starts with ``.``, as in the shell. A path that exists under its literal name is that
  path, also when it holds ``*``, ``?`` or ``[``;
* ``-`` is a list of paths read from stdin, one per line (with ``null=True``: separated by
  NUL bytes, the only way a path holding a newline can come through, e.g. ``find -print0``);
  the entries of a list are literal paths, never patterns. The list is read as it arrives, so
  ``find ... | s2kit inspect --json -`` streams.

Every problem is one :class:`InputItem` with an ``error`` and the stream goes on: a pattern
that matches nothing, a ``-`` list without a single entry, a path with nothing there, a
dangling symlink, a symlink loop, a FIFO, a socket or a device (never opened, so nothing
hangs), a folder named ``*.zip``, a file named ``*.SAFE``, an over-long list entry. What is
there is said the same way as the planner says it (:func:`what_is_there`, :func:`kind_of_mode`;
:mod:`s2kit.plan` imports them from here).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .errors import InputError, UsageError

__all__ = [
    "InputItem",
    "MAX_ENTRY_BYTES",
    "expand_glob",
    "expand_inputs",
    "has_magic",
    "kind_of_mode",
    "os_reason",
    "path_problem",
    "read_list",
    "what_is_there",
]

#: longest entry of a path list (Linux PATH_MAX); a longer one is an error, not a buffer
MAX_ENTRY_BYTES = 4096
_CHUNK = 1 << 16
_MAGIC_RE = re.compile(r"[*?[]")


@dataclass(frozen=True)
class InputItem:
    """One input: a path to read, or the one-line reason it cannot be read (``error``)."""

    path: str
    error: InputError | None = None


# --------------------------------------------------------------------------- what is there
def os_reason(exc: OSError) -> str:
    """The OS's words for *exc* ("Permission denied"), or its type when it has none."""
    return exc.strerror or exc.__class__.__name__


def kind_of_mode(mode: int) -> str:
    """ "a folder", "a FIFO", "a socket", "a device" or "a regular file" for an ``st_mode``."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a regular file"


def what_is_there(path: str | os.PathLike[str]) -> str:
    """What a path is: "none", "a symlink loop", "a dangling symlink", "a folder", "a FIFO", ..."""
    try:
        return kind_of_mode(os.stat(path).st_mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        if exc.errno == errno.ENOENT:
            return "a dangling symlink" if os.path.islink(path) else "none"
        return os_reason(exc)


def path_problem(path: str) -> str | None:
    """``None`` for a regular file or a folder whose name agrees with its kind, else one line.

    One ``stat`` (following symlinks); nothing is opened, so a FIFO never blocks.
    """
    if not path:
        return "expected a path, found an empty string (not the current directory)"
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as exc:  # ValueError: an embedded NUL byte
        found = what_is_there(path) if isinstance(exc, OSError) else "a path with a NUL byte"
        return f"expected a file or folder, found {'nothing there' if found == 'none' else found}"
    low = path.rstrip("/").lower()
    if stat.S_ISDIR(mode):
        if low.endswith(".zip"):
            return "expected a zip file, found a folder"
        return None
    if not stat.S_ISREG(mode):
        return f"expected a file or folder, found {kind_of_mode(mode)}"
    if low.endswith(".safe") and not low.endswith("manifest.safe"):
        return "expected a .SAFE folder, found a regular file"
    return None


# --------------------------------------------------------------------------- patterns
def has_magic(text: str) -> bool:
    """Whether *text* holds a pattern character (``*``, ``?``, ``[``)."""
    return _MAGIC_RE.search(text) is not None


def _join(prefix: str, name: str) -> str:
    return os.path.join(prefix, name) if prefix else name


def _names(folder: str) -> list[tuple[str, bool]]:
    """(name, is a folder following symlinks) of every entry; [] when unreadable."""
    out = []
    try:
        with os.scandir(folder or ".") as it:
            for e in it:
                try:
                    is_dir = e.is_dir()
                except OSError:
                    is_dir = False
                out.append((e.name, is_dir))
    except OSError:
        pass
    return out


def _below(prefix: str) -> Iterator[str]:
    """*prefix* and every folder below it, not entering symlinked folders nor hidden ones."""
    yield prefix
    stack = [prefix]
    while stack:
        folder = stack.pop()
        subs = []
        try:
            with os.scandir(folder or ".") as it:
                for e in it:
                    try:
                        if not e.name.startswith(".") and e.is_dir(follow_symlinks=False):
                            subs.append(_join(folder, e.name))
                    except OSError:
                        continue
        except OSError:
            continue
        yield from subs
        stack.extend(subs)


def expand_glob(pattern: str) -> list[str]:
    """The paths matching a shell-style *pattern*, sorted (``**``: any folders, no symlinked ones)."""
    prefixes = ["/"] if pattern.startswith("/") else [""]
    parts = [p for p in pattern.split("/") if p]
    want_dir = pattern.endswith("/")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        found: list[str] = []
        if part == "**":
            for prefix in prefixes:
                folders = list(_below(prefix))
                if not last:
                    found += folders
                    continue
                found += folders[1:]  # a final '**': everything below the prefix, files too
                for folder in folders:
                    found += [_join(folder, n) for n, d in _names(folder) if not d and not n.startswith(".")]
        elif not has_magic(part):
            for prefix in prefixes:
                path = _join(prefix, part)
                if os.path.isdir(path) or (last and os.path.lexists(path)):
                    found.append(path)
        else:
            hidden = part.startswith(".")
            for prefix in prefixes:
                for name, is_dir in _names(prefix):
                    visible = hidden or not name.startswith(".")
                    if visible and (is_dir or (last and not want_dir)) and fnmatch.fnmatchcase(name, part):
                        found.append(_join(prefix, name))
        prefixes = list(dict.fromkeys(found))
        if not prefixes:
            return []
    return sorted(p for p in prefixes if p)


# --------------------------------------------------------------------------- path lists
def read_list(stream: BinaryIO, *, null: bool = False, limit: int = MAX_ENTRY_BYTES) -> Iterator[InputItem]:
    """The entries of a path list as they arrive: one per line, or per NUL byte with *null*.

    Empty entries are skipped; bytes are decoded as the file system does (``os.fsdecode``), so
    any name round-trips. An entry longer than *limit* bytes is one error item (it is not kept
    in memory), and reading goes on after its end.
    """
    sep = b"\0" if null else b"\n"
    read = getattr(stream, "read1", stream.read)

    def too_long(head: bytes) -> InputItem:
        shown = os.fsdecode(head[:60]) + "…"
        message = f"expected a list entry of at most {limit} bytes, found a longer one"
        return InputItem(shown, InputError(message, shown))

    buf = b""
    skipping = False  # inside an over-long entry: drop bytes up to its end
    while True:
        chunk = read(_CHUNK)
        if not chunk:
            break
        buf += chunk
        *entries, buf = buf.split(sep)
        for entry in entries:
            if skipping:  # the end of the over-long entry already reported
                skipping = False
            elif len(entry) > limit:
                yield too_long(entry)
            elif entry:
                yield InputItem(os.fsdecode(entry))
        if len(buf) > limit:
            if not skipping:
                yield too_long(buf)
            skipping = True
            buf = b""
    if buf and not skipping:
        yield too_long(buf) if len(buf) > limit else InputItem(os.fsdecode(buf))


# --------------------------------------------------------------------------- the stream
def _items(args: Iterable[str], stdin: BinaryIO | None, null: bool) -> Iterator[InputItem]:
    stdin_used = False
    for arg in args:
        if arg == "-":
            if stdin_used:
                continue  # stdin can be read once
            stdin_used = True
            if stdin is None:
                raise UsageError("expected a list of paths on stdin for '-', found no stdin")
            entries = 0
            for entry in read_list(stdin, null=null):
                entries += 1
                yield entry
            if not entries:  # like a pattern that matches nothing: never an empty success
                sep = "NUL-separated" if null else "one a line"
                message = f"expected at least one path in the list on stdin ({sep}), found none"
                yield InputItem(arg, InputError(message, arg))
        elif has_magic(arg) and not os.path.lexists(arg):
            matches = expand_glob(arg)
            if not matches:
                message = "expected at least one path matching the pattern, found none"
                yield InputItem(arg, InputError(message, arg))
            for match in matches:
                yield InputItem(match)
        else:
            yield InputItem(arg)


def expand_inputs(
    args: Iterable[str],
    *,
    stdin: BinaryIO | None = None,
    null: bool = False,
    check: bool = True,
) -> Iterator[InputItem]:
    """Every input of *args* (paths, patterns, ``-`` = the list on *stdin*), in order.

    Lazy: a list is read as it arrives. A path seen before (same absolute path) is skipped.
    With *check*, each path gets :func:`path_problem` as its error (``None`` when usable).
    Raises :class:`~s2kit.errors.UsageError` only for ``-`` without a *stdin*.
    """
    seen: set[str] = set()
    for item in _items(args, stdin, null):
        if item.error is None:  # an error is never dropped: two over-long entries may show alike
            key = os.path.abspath(item.path)
            if key in seen:
                continue
            seen.add(key)
        if item.error is None and check:
            problem = path_problem(item.path)
            if problem is not None:
                item = InputItem(item.path, InputError(problem, item.path or None))
        yield item
