"""Checks for text that reaches a job script, a GIPP or a command line (no dependencies).

:mod:`s2kit.config` refuses such values at load time, and the pure renderers
(:mod:`s2kit.schedulers`) refuse them again; both use these functions.
"""

from __future__ import annotations

import re

__all__ = ["CONTROL_RE", "batch_name_problem", "control_character", "escaped", "printable"]

# Control characters: C0, DEL, C1 and the Unicode line and paragraph separators (a newline in
# a path would end a #SBATCH/#BSUB line, and bash would run the rest as a command).
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_character(text: str) -> str | None:
    """``None`` if *text* has no control character, else one line saying which and where."""
    m = CONTROL_RE.search(text)
    if m is None:
        return None
    return f"expected no control characters, found {m.group()!r} at position {m.start()} in {text!r}"


def printable(text: str) -> str:
    """*text* with every control character replaced by ``?`` (for text s2kit does not control)."""
    return CONTROL_RE.sub("?", text)


def escaped(text: str) -> str:
    """*text* with every control character written as its escape (``\\n``, ``\\x1b``): one line, readable."""
    return CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], text)


_BATCH_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")


def batch_name_problem(name: str) -> str | None:
    """``None`` for a plain batch name (letters, digits, ``._-``, not starting with ``-``/``.``)."""
    if _BATCH_NAME_RE.fullmatch(name):
        return None
    return (
        "expected a batch name of letters, digits, '.', '_' and '-' (at most 100, "
        f"not starting with '-' or '.'), found {name!r}"
    )
