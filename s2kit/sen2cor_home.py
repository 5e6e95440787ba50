"""Where did Sen2Cor write its log? The per-task ``SEN2COR_HOME`` proved after each run.

The worker gives every attempt its own ``SEN2COR_HOME`` (scratch) so tasks never share one. A
Sen2Cor launcher may override it: ESA's ``bin/L2A_Process`` sources ``L2A_Bashrc``, which the
installer wrote with the installing user's ``$HOME/sen2cor/<version>`` hard-coded. Then every
task shares one home, or writes into a folder that does not exist on the node.

:func:`check_home` looks, after a run, for what Sen2Cor wrote:

* in the task's places (the attempt's home minus the ``cfg/`` s2kit wrote, the work dir, and
  ``*.log`` files at the top of the staged input, where Sen2Cor's TOOLBOX mode
  puts its work directory);
* in the homes a launcher could have used instead: ``$HOME/sen2cor`` and the value the
  installation's ``L2A_Bashrc`` assigns to ``SEN2COR_HOME``.

A file written since the attempt began in another home, or nothing in the task's places, is
the failure ``sen2cor-home-ignored``. The record goes into the provenance either way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import display_path

__all__ = ["REASON", "bashrc_home", "check_home", "foreign_homes"]

REASON = "sen2cor-home-ignored"
_MAX_ENTRIES = 5000  # per folder walked: a user's old ~/sen2cor may hold years of logs
_SHOWN = 5
_ASSIGN_RE = re.compile(r"^\s*(?:export\s+)?SEN2COR_HOME=(?:\"([^\"]*)\"|'([^']*)'|([^\s;]*))")


def _walk(root: Path, since: float, skip: Path | None = None) -> Iterator[Path]:
    """Regular files under *root* modified at or after *since* (at most _MAX_ENTRIES looked at)."""
    seen = 0
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            seen += 1
            if seen > _MAX_ENTRIES:
                return
            p = Path(e.path)
            try:
                if e.is_symlink():
                    continue
                if e.is_dir():
                    if p != skip:
                        stack.append(p)
                elif e.is_file() and e.stat().st_mtime >= since:
                    yield p
            except OSError:
                continue


def bashrc_home(exe: str | os.PathLike[str], env: Mapping[str, str]) -> Path | None:
    """The ``SEN2COR_HOME`` the installation's ``L2A_Bashrc`` (beside ``bin/``) would use when
    the environment sets none, ``$HOME`` expanded; None when there is no such file or line."""
    bashrc = Path(exe).resolve().parent.parent / "L2A_Bashrc"
    try:
        text = bashrc.read_text(encoding="utf-8", errors="replace")[:65536]
    except OSError:
        return None
    for line in text.splitlines():
        m = _ASSIGN_RE.match(line)
        if m:
            value = next(g for g in m.groups() if g is not None)
            inner = re.fullmatch(r"\$\{SEN2COR_HOME:-(.*)\}", value)
            value = inner.group(1) if inner else value
            home = env.get("HOME", "")
            value = value.replace("${HOME}", home).replace("$HOME", home)
            return Path(value) if value.startswith("/") else None
    return None


def foreign_homes(task_home: Path, exe: str | os.PathLike[str], env: Mapping[str, str]) -> list[Path]:
    """Homes a launcher could use instead of *task_home*: ``$HOME/sen2cor``, L2A_Bashrc's value."""
    out: list[Path] = []
    if env.get("HOME", "").startswith("/"):
        out.append(Path(env["HOME"]) / "sen2cor")
    named = bashrc_home(exe, env)
    if named is not None:
        out.append(named)
    task = task_home.resolve()
    return [p for p in dict.fromkeys(out) if p.resolve() != task and p.resolve() not in task.parents]


def check_home(
    home: Path,
    work: Path | None,
    input_dir: Path | None,
    exe: str | os.PathLike[str],
    env: Mapping[str, str],
    since: float | None = None,
) -> dict[str, Any]:
    """What Sen2Cor wrote where during this attempt; ``problem`` is None when it used *home*.

    *since*: when the attempt's files were set up (default: the mtime of ``home/cfg``, written
    by s2kit right before Sen2Cor started).
    """
    if since is None:
        try:
            since = (home / "cfg").stat().st_mtime - 1.0
        except OSError:
            since = home.stat().st_mtime - 1.0 if home.exists() else 0.0
    own: dict[str, list[str]] = {"home": [], "work_dir": [], "input_dir": []}
    own["home"] = [str(p) for p in _walk(home, since, skip=home / "cfg")]
    if work is not None:
        own["work_dir"] = [str(p) for p in _walk(work, since)]
    if input_dir is not None:
        with os.scandir(input_dir) as it:
            own["input_dir"] = [
                e.path
                for e in it
                if e.is_file(follow_symlinks=False)
                and e.name.lower().endswith(".log")  # a report there says nothing about the home
                and e.stat(follow_symlinks=False).st_mtime >= since
            ]
    foreign = [str(p) for h in foreign_homes(home, exe, env) if h.is_dir() for p in _walk(h, since)]
    where = next((k for k in ("home", "work_dir", "input_dir") if own[k]), None)
    problem = None
    if foreign:
        problem = (
            f"Sen2Cor wrote into another home than its SEN2COR_HOME: {display_path(foreign[0])} "
            "(the launcher overrides it; fix: install-sen2cor.sh --rewrite-home or a rebuilt image)"
        )
    elif where is None:
        problem = (
            f"Sen2Cor wrote no log under its SEN2COR_HOME {display_path(home)} nor its work dir "
            "(the launcher may override it; check: s2kit doctor --sen2cor-smoke)"
        )
    return {
        "sen2cor_home": str(home),
        "log_in": where,
        "files": {k: v[:_SHOWN] for k, v in own.items() if v},
        "foreign": foreign[:_SHOWN],
        "problem": problem,
    }
