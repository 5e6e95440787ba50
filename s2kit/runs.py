"""The run directory: plan, batches, per-scene state, locks, logs, provenance.

Everything a batch knows lives in one directory, so any process (the CLI on a
login node, a worker on a compute node, ``s2kit status``) reads the same truth::

    RUN_DIR/
      config.json                 resolved config snapshot (written by ``plan``)
      plan.jsonl                  one PlanEntry per line, every L1C found
      batches/<name>.txt          scene ids, one per line: array index i -> line i
      jobs.jsonl                  one JobRecord per submitted array chunk
      jobs/<batch>/               rendered job scripts and scheduler logs
      state/<scene>.json          SceneState (running | done | failed), written atomically
      locks/<scene>.lock          flock(2) held by the worker processing the scene
      logs/<scene>/attempt-<n>.log  Sen2Cor output of each attempt
      provenance/<scene>.json     what made the L2A (also next to the published product)

A scene id is the L1C product name without ``.SAFE``/``.zip``. Published L2A
products sit in the configured L2A dir with ``<name>.SAFE.provenance.json`` beside
them; the planner counts a scene as done only when both exist.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from .errors import InputError, S2kitError
from .fsutil import atomic_write_text

__all__ = [
    "RunDir",
    "PlanEntry",
    "SceneState",
    "JobRecord",
    "Decision",
    "StateName",
    "SceneLocked",
    "PROVENANCE_SUFFIX",
    "pid_alive",
]

Decision = Literal["todo", "done", "skipped"]
StateName = Literal["pending", "running", "done", "failed"]
PROVENANCE_SUFFIX = ".provenance.json"


@dataclass(frozen=True)
class PlanEntry:
    """One L1C product found by ``s2kit plan`` and what to do with it."""

    scene: str  # L1C name without .SAFE / .zip
    l1c_path: str
    decision: Decision
    reason: str | None = None  # why skipped / which L2A makes it done
    mgrs_tile: str | None = None
    sensing_start: str | None = None
    processing_baseline: str | None = None
    relative_orbit: int | None = None
    size_bytes: int = 0
    l2a: str | None = None  # published L2A product path when done

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlanEntry:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class SceneState:
    """What the last worker that touched a scene left behind."""

    scene: str
    state: StateName
    attempt: int = 0
    reason: str | None = None
    host: str | None = None
    pid: int | None = None
    job_id: str | None = None
    started: str | None = None
    ended: str | None = None
    log: str | None = None
    l2a: str | None = None
    exit_code: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True, indent=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneState:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class JobRecord:
    """One submitted array chunk: which scheduler job runs which batch lines."""

    scheduler: str
    job_id: str
    batch: str
    first_index: int  # batch line of the chunk's first task
    count: int
    script: str
    submitted: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)


class SceneLocked(S2kitError):
    """Another worker holds the scene's lock."""


class RunDir:
    """Paths and atomic reads/writes of one run directory."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    # ------------------------------------------------------------------ layout
    @property
    def plan_file(self) -> Path:
        return self.path / "plan.jsonl"

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def jobs_file(self) -> Path:
        return self.path / "jobs.jsonl"

    def batch_file(self, name: str) -> Path:
        return self.path / "batches" / f"{name}.txt"

    def jobs_dir(self, batch: str) -> Path:
        return self.path / "jobs" / batch

    def state_file(self, scene: str) -> Path:
        return self.path / "state" / f"{scene}.json"

    def lock_file(self, scene: str) -> Path:
        return self.path / "locks" / f"{scene}.lock"

    def log_file(self, scene: str, attempt: int) -> Path:
        return self.path / "logs" / scene / f"attempt-{attempt}.log"

    def provenance_file(self, scene: str) -> Path:
        return self.path / "provenance" / f"{scene}.json"

    def require(self) -> RunDir:
        if not self.plan_file.is_file():
            raise InputError(
                "expected a run directory with plan.jsonl (run 's2kit plan' first), found none", self.path
            )
        return self

    # ------------------------------------------------------------------ plan
    def write_plan(self, entries: list[PlanEntry]) -> None:
        atomic_write_text(self.plan_file, "".join(e.to_json() + "\n" for e in entries))

    def read_plan(self) -> list[PlanEntry]:
        self.require()
        out = []
        with open(self.plan_file, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        out.append(PlanEntry.from_dict(json.loads(line)))
                    except (json.JSONDecodeError, TypeError) as exc:
                        raise InputError(
                            f"expected a JSON plan entry on line {n}, found: {exc}", self.plan_file
                        ) from exc
        return out

    # ------------------------------------------------------------------ batches
    def write_batch(self, name: str, scenes: list[str]) -> Path:
        return atomic_write_text(self.batch_file(name), "".join(s + "\n" for s in scenes))

    def read_batch(self, name: str) -> list[str]:
        f = self.batch_file(name)
        try:
            return [line.rstrip("\n") for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as exc:
            raise InputError(f"expected batch file {f.name}, found none ({exc.strerror})", f) from exc

    def scene_for_index(self, batch: str, index: int) -> str:
        scenes = self.read_batch(batch)
        if not 0 <= index < len(scenes):
            raise InputError(
                f"expected an array index in 0..{len(scenes) - 1}, found {index}", self.batch_file(batch)
            )
        return scenes[index]

    # ------------------------------------------------------------------ states
    def write_state(self, st: SceneState) -> None:
        atomic_write_text(self.state_file(st.scene), st.to_json() + "\n")

    def read_state(self, scene: str) -> SceneState | None:
        try:
            return SceneState.from_dict(json.loads(self.state_file(scene).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, TypeError, OSError):
            return None  # a torn state file cannot exist (atomic writes); treat garbage as absent

    def read_states(self) -> dict[str, SceneState]:
        out: dict[str, SceneState] = {}
        sdir = self.path / "state"
        if not sdir.is_dir():
            return out
        for f in sdir.iterdir():
            if f.suffix == ".json":
                st = self.read_state(f.stem)
                if st is not None:
                    out[st.scene] = st
        return out

    # ------------------------------------------------------------------ jobs
    def append_job(self, rec: JobRecord) -> None:
        self.jobs_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.jobs_file, "a", encoding="utf-8") as fh:
            fh.write(rec.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read_jobs(self) -> list[JobRecord]:
        if not self.jobs_file.is_file():
            return []
        out = []
        for line in self.jobs_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(JobRecord(**json.loads(line)))
        return out

    # ------------------------------------------------------------------ locks
    @contextlib.contextmanager
    def lock(self, scene: str) -> Iterator[None]:
        """Hold the scene's flock; raise SceneLocked at once when another process has it.

        flock locks die with their process, so a worker killed with SIGKILL never
        leaves a stale lock behind.
        """
        f = self.lock_file(scene)
        f.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise SceneLocked(
                        "expected the scene to be free, found it locked by another worker", f
                    ) from None
                raise
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.uname().nodename} {os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)


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


def published_provenance(l2a_dir: Path) -> dict[str, Path]:
    """scene -> published L2A product, from the ``*.SAFE.provenance.json`` files of *l2a_dir*."""
    out: dict[str, Path] = {}
    if not l2a_dir.is_dir():
        return out
    with os.scandir(l2a_dir) as it:
        for e in it:
            if not e.name.endswith(PROVENANCE_SUFFIX):
                continue
            product = l2a_dir / e.name[: -len(PROVENANCE_SUFFIX)]
            try:
                doc = json.loads(Path(e.path).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            scene = doc.get("l1c", {}).get("scene") if isinstance(doc.get("l1c"), dict) else None
            if scene and product.is_dir() and doc.get("validated") is True:
                out[scene] = product
    return out
