"""s2kit.process: waiting for Sen2Cor."""

from __future__ import annotations

import os

import pytest


def test_wait_for_a_child_without_popen_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """wait_for (issue 17: Popen.wait(timeout) sleeps up to 50 ms between checks) returns the
    exit status, raises TimeoutExpired for a child still running at the deadline, and falls back to
    Popen.wait where there is no pidfd."""
    import subprocess
    import sys

    from s2kit.process import wait_for

    quick = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert wait_for(quick, 30) == 3
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_for(slow, 0.2)
        assert slow.poll() is None  # still running: the caller kills its group
    finally:
        slow.kill()
        slow.wait()

    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    again = subprocess.Popen([sys.executable, "-c", "raise SystemExit(5)"])
    assert wait_for(again, 30) == 5
