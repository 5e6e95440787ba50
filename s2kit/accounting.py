"""Per-scene accounting: wall time, CPU time and peak memory of Sen2Cor's whole process group.

:class:`Meter` measures one child command that :func:`s2kit.process.run_logged` started in its
own session (so its own process group):

* **wall** -- the monotonic clock from start to the end of the wait.
* **CPU (user + system)** -- two views, the larger one wins:

  1. the kernel's: ``getrusage(RUSAGE_CHILDREN)`` of this process after minus before the run,
     i.e. the child and every descendant that was waited for by its parent (Sen2Cor's
     multiprocessing workers are). An orphan re-parented to init is NOT in it;
  2. /proc's: every ``/proc/<pid>/stat`` of the group is sampled every ``interval`` seconds;
     ``utime + stime`` of each process (keyed by pid and start time, so a reused pid is
     another process) at its last sample, summed. It sees orphans, but misses the CPU a
     process burns between its last sample and its exit (at most ``interval`` each).

* **peak memory** -- the largest SUM of the group's RSS over the samples (``peak_rss_mb``)
  and ``ru_maxrss`` of the largest waited-for descendant (``max_rss_child_mb``).
  RSS, not PSS: a page shared by several members (the interpreter and libraries of a forked
  child, copy-on-write data) is counted once per member, so the sum OVER-states the memory
  the group really uses (by about the shared part of each forked child). It is still the
  number to plan memory with: it is what Slurm's ``jobacct_gather/linux`` sums (without
  ``UsePss``) and enforces with ``OverMemoryKill``, and what LSF's memory limit checks sum
  up. PSS (``/proc/<pid>/smaps_rollup``) would need a walk of each process's page tables at
  every sample, which costs far more than the one ``stat`` read per process used here.

Cost: one ``listdir("/proc")`` plus one ``stat`` read per process of the host per sample:
measured 3.5 ms of CPU per sample with 380 processes on the host (:func:`sample_cost`), so
0.7 % of one core at the default interval of 0.5 s (``S2KIT_SAMPLE_SECONDS``).
Linux only: elsewhere only ``wall_s`` (and the rusage view, where the platform has it) is
known, the other fields are None.

The result is the ``resources`` dict of a scene state and its provenance (CONTRACTS issue 19):
``wall_s``, ``cpu_user_s``, ``cpu_sys_s``, ``cpu_s``, ``peak_rss_mb``, ``rss_samples``,
``cores``, ``node``, ``max_rss_child_mb``. Stdlib only (the worker imports it).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_INTERVAL_S",
    "RESOURCE_KEYS",
    "Meter",
    "cgroup_oom_kills",
    "group_usage",
    "sample_cost",
    "sample_interval",
    "walltime_reached",
]

DEFAULT_INTERVAL_S = 0.5
#: the keys of a ``resources`` dict, in order
RESOURCE_KEYS = (
    "wall_s",
    "cpu_user_s",
    "cpu_sys_s",
    "cpu_s",
    "peak_rss_mb",
    "rss_samples",
    "cores",
    "node",
    "max_rss_child_mb",
)

_LINUX = sys.platform.startswith("linux") and os.path.isdir("/proc")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MB = 1024 * 1024


def sample_interval(env: Mapping[str, str] | None = None) -> float:
    """Seconds between samples: ``S2KIT_SAMPLE_SECONDS`` (0.05 .. 60), else 0.5."""
    env = os.environ if env is None else env
    try:
        value = float(env.get("S2KIT_SAMPLE_SECONDS", "").strip() or DEFAULT_INTERVAL_S)
    except ValueError:
        return DEFAULT_INTERVAL_S
    return min(60.0, max(0.05, value)) if value == value else DEFAULT_INTERVAL_S  # nan -> default


def walltime_reached(env: Mapping[str, str] | None = None, now: float | None = None) -> bool:
    """Whether the job's time limit has come (a SIGTERM now is the scheduler's walltime kill).

    Slurm >= 23.02 exports ``SLURM_JOB_END_TIME`` (epoch seconds) to the job; Slurm 22.05
    and LSF export no end time, so there the worker cannot tell and records ``signal``:
    ``s2kit status`` then names the reason the scheduler gives (``task_end_reasons``).
    """
    env = os.environ if env is None else env
    text = env.get("SLURM_JOB_END_TIME", "").strip()
    if not text.isascii() or not text.isdigit():
        return False
    return (time.time() if now is None else now) >= int(text) - 5


def _read_stat(pid: str) -> tuple[int, int, int, int, int] | None:
    """(pgid, session, utime+stime ticks, start time ticks, rss pages) of a live process; None
    when it is gone (a race: it may exit between listdir and open), a zombie or unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    f = data[data.rfind(b")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces and ")"
    try:
        if f[0] in (b"Z", b"X"):
            return None
        # fields (man 5 proc) counted from state = 0: pgrp 2, session 3, utime 11, stime 12,
        # starttime 19, rss 21 (pages)
        return int(f[2]), int(f[3]), int(f[11]) + int(f[12]), int(f[19]), int(f[21])
    except (IndexError, ValueError):
        return None


def group_usage(pgid: int) -> tuple[dict[tuple[int, int], int], int]:
    """One sample of process group (or session) *pgid*: ({(pid, start): cpu ticks}, rss bytes)."""
    cpu: dict[tuple[int, int], int] = {}
    rss = 0
    try:
        names = os.listdir("/proc")
    except OSError:
        return cpu, rss
    for name in names:
        if not name.isdigit():
            continue
        st = _read_stat(name)
        if st is None or (st[0] != pgid and st[1] != pgid):
            continue
        cpu[(int(name), st[3])] = st[2]
        rss += st[4] * _PAGE
    return cpu, rss


CGROUP_ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"


def cgroup_oom_kills(root: str | None = None, proc_cgroup: str | None = None) -> int | None:
    """How many processes of this process's memory cgroup the kernel's OOM killer has killed
    so far (``oom_kill`` of ``memory.events``, cgroup v2, or of ``memory.oom_control``, v1);
    None when it cannot be told (no cgroup memory controller, the cgroup is not mounted here).

    Under a scheduler that enforces memory with cgroups (Slurm ``task/cgroup``, LSF
    ``LSB_RESOURCE_ENFORCE``) the kernel kills a process of the task's cgroup at the limit;
    when the count went up while Sen2Cor ran and Sen2Cor died of SIGKILL, that is an ``oom``.
    """
    root = CGROUP_ROOT if root is None else root
    try:
        with open(PROC_CGROUP if proc_cgroup is None else proc_cgroup, encoding="utf-8") as fh:
            lines = fh.read(64 * 1024).splitlines()
    except OSError:
        return None
    for line in lines:
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        rel = path.strip().lstrip("/")
        if hid == "0" and controllers == "":
            candidate = os.path.join(root, rel, "memory.events")
        elif "memory" in controllers.split(","):
            candidate = os.path.join(root, "memory", rel, "memory.oom_control")
        else:
            continue
        try:
            with open(candidate, encoding="utf-8") as fh:
                for row in fh.read(64 * 1024).splitlines():
                    key, _, value = row.partition(" ")
                    if key == "oom_kill" and value.strip().isdigit():
                        return int(value.strip())
        except OSError:
            continue
    return None


def _children_rusage() -> Any:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    return resource.getrusage(resource.RUSAGE_CHILDREN)


class Meter:
    """Measure one process group: :meth:`start` right after the child started, :meth:`stop`
    once it was waited for (also after an exception); :meth:`result` is the ``resources`` dict.

    Sampling runs in a daemon thread every *interval* seconds (also once at stop), so the
    caller's own wait (with its timeout) stays as it is.
    """

    def __init__(self, interval: float = DEFAULT_INTERVAL_S, cores: int | None = None) -> None:
        self.interval = interval
        self.cores = cores
        self.node = os.uname().nodename if hasattr(os, "uname") else None
        self.pgid: int | None = None
        self._t0 = 0.0
        self._t1: float | None = None
        self._ru0: Any = None
        self._ru1: Any = None
        self._cpu: dict[tuple[int, int], int] = {}  # (pid, start) -> last seen utime+stime ticks
        self._peak = 0
        self._samples = 0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._oom0: int | None = None
        #: OOM kills in this process's memory cgroup while the child ran (None: unknown)
        self.oom_kills: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def begin(self) -> None:
        """Before the child starts: the rusage baseline and the wall clock."""
        self._t0 = time.monotonic()
        self._ru0 = _children_rusage()
        self._oom0 = cgroup_oom_kills() if _LINUX else None

    def start(self, pgid: int) -> None:
        """The child (leader of process group *pgid*) has started: sample it from now on."""
        if not self._t0:
            self.begin()
        self.pgid = pgid
        if _LINUX:
            self.sample()
            thread = threading.Thread(target=self._loop, name="s2kit-meter", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had: the samples at start and stop only
                return
            self._thread = thread

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """Read the group once: remember each member's CPU, keep the peak of the summed RSS."""
        if self.pgid is None or not _LINUX:
            return
        cpu, rss = group_usage(self.pgid)
        with self._lock:
            if not cpu:
                return  # the group is gone (or not started): no sample
            self._samples += 1
            self._peak = max(self._peak, rss)
            for key, ticks in cpu.items():
                if ticks >= self._cpu.get(key, 0):
                    self._cpu[key] = ticks

    def stop(self) -> dict[str, Any]:
        """The child was waited for: stop sampling; return :meth:`result`."""
        if self._t1 is None:
            self._t1 = time.monotonic()
            self._done.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._ru1 = _children_rusage()
            oom1 = cgroup_oom_kills() if self._oom0 is not None else None
            self.oom_kills = oom1 - self._oom0 if oom1 is not None and self._oom0 is not None else None
        return self.result()

    # ------------------------------------------------------------------ result
    def result(self) -> dict[str, Any]:
        """The ``resources`` dict (CONTRACTS issue 19); partial (up to now) before :meth:`stop`."""
        end = self._t1 if self._t1 is not None else time.monotonic()
        ru1 = self._ru1 if self._ru1 is not None else _children_rusage()
        user = sys_ = max_child = None
        if self._ru0 is not None and ru1 is not None:
            user = max(0.0, ru1.ru_utime - self._ru0.ru_utime)
            sys_ = max(0.0, ru1.ru_stime - self._ru0.ru_stime)
            # Linux: kilobytes; the largest descendant this process ever waited for
            max_child = ru1.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
        with self._lock:
            proc_cpu = sum(self._cpu.values()) / _TICK if self._cpu else None
            peak = self._peak / _MB if self._samples else None
            samples = self._samples
        cpu = None
        if user is not None and sys_ is not None:
            cpu = user + sys_
        if proc_cpu is not None and (cpu is None or proc_cpu > cpu):
            # the /proc view saw more (orphans re-parented to init are not in the rusage):
            # scale user and sys up in their kernel proportion, or keep it all as user time
            if cpu and user is not None and sys_ is not None:
                user, sys_ = user * proc_cpu / cpu, sys_ * proc_cpu / cpu
            else:
                user, sys_ = proc_cpu, (0.0 if sys_ is not None else None)
            cpu = proc_cpu
        return {
            "wall_s": round(max(0.0, end - self._t0), 3) if self._t0 else None,
            "cpu_user_s": round(user, 3) if user is not None else None,
            "cpu_sys_s": round(sys_, 3) if sys_ is not None else None,
            "cpu_s": round(cpu, 3) if cpu is not None else None,
            "peak_rss_mb": round(peak, 1) if peak is not None else None,
            "rss_samples": samples if _LINUX else None,
            "cores": self.cores,
            "node": self.node,
            "max_rss_child_mb": round(max_child, 1) if max_child is not None and _LINUX else None,
        }


def sample_cost(samples: int = 50) -> float:
    """Seconds of CPU (this process) one :func:`group_usage` of the whole host costs."""
    with contextlib.suppress(Exception):
        t0 = time.process_time()
        for _ in range(samples):
            group_usage(os.getpid())
        return (time.process_time() - t0) / samples
    return float("nan")
