"""Exit codes of one worker task (``s2kit worker``), read back by the schedulers and the CLI."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """What ``s2kit worker`` exits with; an IntEnum, so it compares equal to the plain number."""

    DONE = 0  # the scene is done (or was already done)
    FAILED = 1  # the scene failed (its state file says why)
    USAGE = 2  # no scene for this index, bad run dir
    LOCKED = 75  # EX_TEMPFAIL: another worker has the scene; try again later
