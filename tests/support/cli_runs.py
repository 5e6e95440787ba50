"""The installed ``s2kit`` run as a process on byte paths, and the one-line error it must print."""

from __future__ import annotations

import os
import subprocess

__all__ = ["one_error_line", "run_exe"]


def run_exe(exe: str, *args: str | os.PathLike[str], **env: str) -> subprocess.CompletedProcess[bytes]:
    """*exe* with *args* (paths passed as their bytes), the environment plus *env*; output captured."""
    return subprocess.run(
        [exe, *map(os.fsencode, args)], capture_output=True, timeout=60, env={**os.environ, **env}
    )


def one_error_line(res: subprocess.CompletedProcess[bytes]) -> str:
    """The error of a failed run: exit 1, nothing on stdout, one ``s2kit: error: `` line on stderr."""
    assert res.returncode == 1 and res.stdout == b"", res
    lines = res.stderr.decode("utf-8").splitlines()
    assert len(lines) == 1 and lines[0].startswith("s2kit: error: "), lines
    return lines[0]
