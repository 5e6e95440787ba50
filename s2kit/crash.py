"""What every ``s2kit`` entry point does with a failure: one stderr line, never a traceback.

Shared by the Typer CLI (:func:`s2kit.cli.main`) and the worker's own entry point
(:mod:`s2kit.worker_cli`, which must start without Typer): standard library only.

* an :class:`~s2kit.errors.S2kitError` -> ``s2kit: error: <message>``, its exit code;
* an ``OSError`` -> ``s2kit: error: <strerror>: <path>``, exit 1;
* Ctrl-C -> ``s2kit: interrupted``, exit 130;
* anything else -> ``s2kit: internal error: <Type>: <message>; details in <crash log>``,
  exit 70; the traceback is in the crash log. ``S2KIT_DEBUG=1`` re-raises instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from . import __version__

__all__ = ["EX_SOFTWARE", "crash_dirs", "first_line", "guarded", "printable", "write_crash_log"]

EX_SOFTWARE = 70  # sysexits.h: internal software error
_MAX_SHOWN = 200


def printable(text: str) -> str:
    """*text* with control characters (newline, ESC, ...) escaped: an error stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def first_line(text: str, limit: int = _MAX_SHOWN) -> str:
    """The first line of *text*, control characters escaped, at most *limit* characters."""
    lines = text.strip().splitlines()
    shown = printable(lines[0]) if lines else ""
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def crash_dirs() -> list[Path]:
    import tempfile

    dirs = []
    state = os.environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(state):  # the XDG spec: a relative value is ignored
        dirs.append(Path(state) / "s2kit")
    else:
        home = os.path.expanduser("~")
        if os.path.isabs(home):
            dirs.append(Path(home) / ".local" / "state" / "s2kit")
    return [*dirs, Path(tempfile.gettempdir())]


def write_crash_log(exc: BaseException, argv: list[str]) -> Path | None:
    """Write the full traceback of *exc* to a new mode-0600 crash log; None if nowhere is writable.

    ``${XDG_STATE_HOME:-~/.local/state}/s2kit/crash-<UTC time>-<pid>.log``, else
    ``<temp dir>/s2kit-crash-<UTC time>-<pid>.log``; written atomically.
    """
    import datetime
    import platform
    import traceback

    from .fsutil import atomic_write_bytes

    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        text = (
            f"s2kit {__version__} crash report\n"
            f"time: {now.isoformat()}\n"
            f"python: {platform.python_version()} ({sys.executable})\n"
            f"argv: {argv!r}\n\n" + "".join(traceback.format_exception(exc))
        )
    except Exception as fmt_exc:  # a broken __str__ must not crash the crash handler
        text = f"s2kit {__version__} crash report\n(traceback could not be formatted: {fmt_exc!r})\n"
    data = text.encode("utf-8", "backslashreplace")  # paths may hold undecodable bytes
    name = f"crash-{now:%Y%m%dT%H%M%SZ}-{os.getpid()}.log"
    dirs = crash_dirs()
    for i, folder in enumerate(dirs):
        last = i == len(dirs) - 1
        try:
            if not last:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            return atomic_write_bytes(folder / (f"s2kit-{name}" if last else name), data, mode=0o600)
        except OSError:
            continue
    return None


def guarded(run: Callable[[], object]) -> NoReturn:
    """Run the entry point *run*; turn every way it can fail into one stderr line and an exit code.

    ``SystemExit`` passes through (the command's own exit code); *run* returning is exit 0.
    """
    from .errors import S2kitError, display_path

    def fail(line: str, code: int) -> NoReturn:
        with contextlib.suppress(Exception):
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        raise SystemExit(code)

    try:
        run()
    except KeyboardInterrupt:
        fail("s2kit: interrupted", 130)
    except Exception as exc:
        if os.environ.get("S2KIT_DEBUG") == "1":
            raise
        if isinstance(exc, S2kitError):
            fail(f"s2kit: error: {printable(str(exc))}", exc.exit_code)
        if isinstance(exc, OSError) and exc.strerror:
            # a rename/link names its target second: that is the path the user gave
            path = exc.filename2 if exc.filename2 is not None else exc.filename
            where = f": {display_path(os.fsdecode(path))}" if isinstance(path, (str, bytes)) else ""
            fail(f"s2kit: error: {printable(exc.strerror + where)}", 1)
        try:
            log = write_crash_log(exc, sys.argv)
        except Exception:
            log = None
        try:
            message = first_line(str(exc))
        except Exception:  # an exception whose __str__ fails
            message = ""
        shown = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        details = (
            f"details in {printable(display_path(log))}"  # XDG_STATE_HOME may hold a newline
            if log is not None
            else "no crash log could be written; run with S2KIT_DEBUG=1 for the traceback"
        )
        fail(f"s2kit: internal error: {shown}; {details}", EX_SOFTWARE)
    raise SystemExit(0)
