"""Process control in one place: child processes in their own process group with a timeout
and a kill with grace, and what this host's ``/proc`` says about a pid.

* :func:`run_logged` -- run a command in its own session (so its own process group),
  stdout+stderr appended to a log file, with a timeout that kills the WHOLE process group
  (SIGTERM, then SIGKILL after a grace period, :func:`kill_grace_seconds`). The direct child
  also gets ``PR_SET_PDEATHSIG`` so it dies with the worker.
  Its :class:`~s2kit.accounting.Meter` measures the group meanwhile: ``RunResult.resources``
  (wall, CPU user/system of the group incl. its children, peak summed RSS, node).
* :func:`kill_process_group`, :func:`group_members` -- the group kill itself.
* :func:`pid_alive`, :func:`started_after` -- whether a pid is a live process, and whether it
  started after a time (then it is not the process that wrote a state at that time).
* :func:`kill_by_env_prefix` -- SIGKILL orphans of a dead worker, found by their environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .accounting import Meter, sample_interval

__all__ = [
    "DEFAULT_KILL_GRACE_SECONDS",
    "RunResult",
    "group_members",
    "kill_by_env_prefix",
    "kill_grace_seconds",
    "kill_process_group",
    "pid_alive",
    "run_logged",
    "signal_name",
    "started_after",
]

DEFAULT_KILL_GRACE_SECONDS = 30.0


def kill_grace_seconds(env: Mapping[str, str] | None = None) -> float:
    env = os.environ if env is None else env
    text = env.get("S2KIT_KILL_GRACE_SECONDS", "").strip()
    try:
        return max(0.0, float(text)) if text else DEFAULT_KILL_GRACE_SECONDS
    except ValueError:
        return DEFAULT_KILL_GRACE_SECONDS


# --------------------------------------------------------------------------- process groups
@dataclass
class RunResult:
    argv: list[str]
    returncode: int | None  # negative: killed by that signal
    timed_out: bool
    seconds: float
    pid: int
    survivors_killed: int = 0  # processes of the group still alive after the leader exited
    signals: list[str] = field(default_factory=list)
    resources: dict[str, Any] | None = None  # s2kit.accounting: wall, CPU, peak memory of the group


def _pdeathsig() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _proc_stat(pid: str) -> tuple[str, int] | None:
    """(state, process group) of a process from ``/proc/<pid>/stat``; None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    try:
        return fields[0].decode(), int(fields[2])
    except (IndexError, ValueError):  # pragma: no cover - malformed stat
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group *pgid*.

    Zombies do not count: where PID 1 does not reap orphans (some container inits), an
    orphaned, killed member stays a zombie forever although it is dead.
    """
    if not os.path.isdir("/proc"):  # pragma: no cover - not Linux
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(name)
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
                out.append(int(name))
    return out


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def kill_process_group(pgid: int, grace: float, proc: subprocess.Popen[bytes] | None = None) -> list[str]:
    """SIGTERM the group, wait up to *grace* seconds for it to empty, then SIGKILL it."""
    sent: list[str] = []
    if not _group_alive(pgid):
        return sent
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
        sent.append("SIGTERM")
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()  # reap the leader, else it lingers as a zombie member of the group
        if not _group_alive(pgid):
            return sent
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
        sent.append("SIGKILL")
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    return sent


def run_logged(
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str],
    timeout: float,
    grace: float = DEFAULT_KILL_GRACE_SECONDS,
    cwd: Path | None = None,
    meter: Meter | None = None,
) -> RunResult:
    """Run *argv* in a new session, output appended to *log_path*; kill its group on timeout.

    Also kills the group when the caller is interrupted (an exception such as the
    worker's SIGTERM handler raising) and any process the command left behind.
    *meter* (default: a new one) measures the group; ``RunResult.resources`` is its result,
    and a caller that passed its own meter can read ``meter.result()`` after an exception.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if meter is None:
        meter = Meter(interval=sample_interval(env))
    start = time.monotonic()
    meter.begin()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_pdeathsig if sys.platform.startswith("linux") else None,
        )
    pgid = proc.pid  # start_new_session: the child leads its own session and process group
    meter.start(pgid)
    result = RunResult(argv=list(argv), returncode=None, timed_out=False, seconds=0.0, pid=proc.pid)
    try:
        try:
            result.returncode = wait_for(proc, timeout)
        except subprocess.TimeoutExpired:
            result.timed_out = True
            result.signals = kill_process_group(pgid, grace, proc)
            result.returncode = proc.wait()
    except BaseException:
        meter.sample()
        kill_process_group(pgid, min(grace, 5.0), proc)
        meter.stop()
        raise
    if _group_alive(pgid):  # the leader exited but left children behind: they go too
        meter.sample()  # their CPU so far (orphans are not in the leader's rusage)
        result.survivors_killed = 1
        kill_process_group(pgid, min(grace, 5.0))
    result.resources = meter.stop()
    result.seconds = time.monotonic() - start
    return result


def wait_for(proc: subprocess.Popen[Any], timeout: float) -> int:
    """``proc.wait(timeout)`` that wakes the moment the child exits: Popen.wait with a timeout
    polls with sleeps growing to 50 ms (about 25 ms lost per scene on average); a pidfd
    (Linux 5.3+) is readable exactly when the process ends. Falls back to Popen.wait."""
    pidfd_open = getattr(os, "pidfd_open", None)
    try:
        fd = pidfd_open(proc.pid) if pidfd_open is not None else None
    except OSError:  # old kernel, or the child is already reaped
        fd = None
    if fd is None:
        return proc.wait(timeout=timeout)
    try:
        waiter = select.poll()
        waiter.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while not waiter.poll(max(0, min(deadline - time.monotonic(), 3600.0)) * 1000):
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (zombies count as dead)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except (OSError, ValueError):  # no /proc: ask the kernel
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def started_after(pid: int, when: str | None, slack: float = 2.0) -> bool:
    """Whether process *pid* started more than *slack* seconds after the ISO time *when*
    (then it cannot be the worker that wrote a state at *when*: its pid was reused)."""
    if not when:
        return False
    try:
        t = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])
        with open("/proc/stat", "rb") as fh:
            btime = next(int(ln.split()[1]) for ln in fh if ln.startswith(b"btime "))
        start = btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return start > t + slack


def kill_by_env_prefix(var: str, prefixes: list[str]) -> int:
    """SIGKILL live processes of this host whose *var* lies under one of *prefixes* (e.g. the
    ``SEN2COR_HOME`` of a dead worker's scratch: its orphaned Sen2Cor processes)."""
    killed = 0
    if not os.path.isdir("/proc"):  # pragma: no cover - not Linux
        return killed
    marks = [os.fsencode(f"{var}=") + os.fsencode(p) for p in prefixes]
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                environ = fh.read().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(m) for v in environ for m in marks):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(name), signal.SIGKILL)
                killed += 1
    return killed
