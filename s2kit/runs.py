"""The run directory: plan, batches, per-scene state, locks, logs, provenance.

Everything a batch knows lives in one directory, so any process (the CLI on a
login node, a worker on a compute node, ``s2kit status``) reads the same truth::

    RUN_DIR/
      config.json                 resolved config snapshot (written by ``plan``)
      plan.jsonl                  one PlanEntry per line, every L1C found
      plan.batch                  name of the batch the latest ``plan`` wrote (all, all-2, ...)
      batches/<name>.txt          scene ids, one per line: array index i -> line i; written
                                  once, never rewritten (a job in jobs.jsonl may index it)
      jobs.jsonl                  one JobRecord per submitted array chunk (appended whole
                                  lines; a torn last line is ignored with a warning)
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
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import InputError, S2kitError, display_path
from .fsutil import atomic_write_text, flock, written_beside
from .process import pid_alive, started_after
from .provenance import PROVENANCE_SUFFIX, published_provenance

if TYPE_CHECKING:
    from .config import BatchConfig

__all__ = [
    "RunDir",
    "PlanEntry",
    "SceneState",
    "JobRecord",
    "Decision",
    "StateName",
    "SceneLocked",
    "PROVENANCE_SUFFIX",
    "published_provenance",
    "pid_alive",
    "BatchImmutable",
    "RunDirNotWritable",
    "REASON_MAX",
    "one_line",
    "is_stale",
    "held_flocks",
    "lock_held_here",
    "writing",
]

Decision = Literal["todo", "done", "skipped"]
StateName = Literal["pending", "running", "done", "failed"]

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _as_dict(record: Any) -> dict[str, Any]:
    """The fields of a dataclass *record* as a dict, for ``json.dumps`` (what
    ``dataclasses.asdict`` gave for these flat records, without its recursive deep copy: a
    ``to_json`` takes about half the time, and ``plan`` writes one per L1C). The field names are
    read once per class, so a field added to the class is serialised without more code."""
    names = _FIELD_NAMES.get(type(record))
    if names is None:
        names = _FIELD_NAMES[type(record)] = tuple(f.name for f in fields(record))
    return {name: getattr(record, name) for name in names}


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
    #: the Sen2Cor version (``"2.12"``) that processes the scene, for todo scenes; None in plans
    #: written before routing (the worker then uses ``cfg.sen2cor``: BatchConfig.sen2cor_for)
    sen2cor: str | None = None
    route: str | None = None  # one line: why that version (which route entry took the baseline)

    def to_json(self) -> str:
        return json.dumps(_as_dict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlanEntry:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


_PLAN_TYPES: dict[str, tuple[type, ...]] = {
    "scene": (str,),
    "l1c_path": (str,),
    "decision": (str,),
    "reason": (str,),
    "mgrs_tile": (str,),
    "sensing_start": (str,),
    "processing_baseline": (str,),
    "relative_orbit": (int,),
    "size_bytes": (int,),
    "l2a": (str,),
    "sen2cor": (str,),
    "route": (str,),
}


def plan_entry_from_json(doc: Any) -> PlanEntry:
    """A :class:`PlanEntry` from a parsed ``plan.jsonl`` line; ValueError says what is wrong."""
    entry: PlanEntry = _checked(PlanEntry, doc, _PLAN_TYPES, ("scene", "l1c_path", "decision"))
    if entry.decision not in ("todo", "done", "skipped"):
        raise ValueError(f"decision = {entry.decision!r}")
    return entry


#: Longest failure reason kept in a state file or printed by status (the full text is in the log).
REASON_MAX = 300
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")
_SPACE_RE = re.compile(r"\s+")


def one_line(text: str, limit: int = REASON_MAX) -> str:
    """*text* as one line of at most *limit* characters: whitespace runs and control
    characters collapse to one space; longer text keeps its start (the stable reason
    prefix) and its end (what happened, after a long path) around a '…'."""
    flat = _SPACE_RE.sub(" ", _CONTROL_RE.sub(" ", text)).strip()
    if len(flat) <= limit:
        return flat
    head = limit // 3
    tail = limit - head - 1
    return flat[:head] + "…" + (flat[-tail:] if tail > 0 else "")


_PLAN_AGAIN = "run `s2kit plan` again (it rewrites plan.jsonl and config.json)"


def _what(doc: Any) -> str:
    """How a wrong-shaped JSON value is named in a message: 'a JSON list', 'null', ..."""
    if doc is None:
        return "null"
    kind = {list: "list", str: "string", int: "number", float: "number", bool: "boolean", dict: "object"}
    return f"a JSON {kind.get(type(doc), type(doc).__name__)}"


def _checked(cls: Any, doc: Any, types: dict[str, tuple[type, ...]], required: tuple[str, ...]) -> Any:
    """*cls* from the JSON object *doc*, or ValueError naming (without Python internals) the
    first key that is missing or of the wrong type."""
    if not isinstance(doc, dict):
        raise ValueError(_what(doc))
    missing = [k for k in required if k not in doc]
    if missing:
        raise ValueError(f"an object without {', '.join(missing)}")
    for key, allowed in types.items():
        value = doc.get(key)
        if (
            key in doc
            and value is not None
            and (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed))
        ):
            raise ValueError(f"{key} = {_what(value)}")
    if key_none := [k for k in required if doc.get(k) is None]:
        raise ValueError(f"{key_none[0]} = null")
    return cls.from_dict(doc)


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
    # s2kit.accounting of the last attempt that ran Sen2Cor (done and failed): wall_s, cpu_s,
    # peak_rss_mb, ... (None: old runs, or the attempt failed before Sen2Cor started)
    resources: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # a reason is one line of at most REASON_MAX characters (the whole text is in the log)
        if self.reason is not None:
            self.reason = one_line(str(self.reason))

    def to_json(self) -> str:
        return json.dumps(_as_dict(self), ensure_ascii=False, sort_keys=True, indent=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneState:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


_STATE_TYPES: dict[str, tuple[type, ...]] = {
    "scene": (str,),
    "state": (str,),
    "attempt": (int,),
    "reason": (str,),
    "host": (str,),
    "pid": (int,),
    "job_id": (str,),
    "started": (str,),
    "ended": (str,),
    "log": (str,),
    "l2a": (str,),
    "exit_code": (int,),
    "resources": (dict,),
}


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
        return json.dumps(_as_dict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


_JOB_TYPES: dict[str, tuple[type, ...]] = {
    "scheduler": (str,),
    "job_id": (str,),
    "batch": (str,),
    "first_index": (int,),
    "count": (int,),
    "script": (str,),
    "submitted": (str,),
    "extra": (dict,),
}
_JOB_REQUIRED = ("scheduler", "job_id", "batch", "first_index", "count", "script", "submitted")


class SceneLocked(S2kitError):
    """Another worker holds the scene's lock."""


class BatchImmutable(S2kitError):
    """A batch file exists with other scenes: batch files are written once, never rewritten."""


class RunDirNotWritable(S2kitError):
    """The run dir (or another output) cannot be written: full, read-only or no permission."""


#: errno values that mean "this place cannot be written" (disk full, quota, read-only, permission).
NOT_WRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], what: str = "a writable run dir") -> Iterator[None]:
    """Turn an OSError of a write to *path* (full, read-only, no permission) into one line."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NOT_WRITABLE:
            raise
        why = exc.strerror or os.strerror(exc.errno or 0)
        err = RunDirNotWritable(f"expected {what}, found {why} writing {display_path(path)}")
        err.path = Path(path)
        raise err from exc


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key in _warned:
        return
    _warned.add(key)
    print(f"s2kit: warning: {message}", file=sys.stderr, flush=True)


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

    @property
    def plan_batch_file(self) -> Path:
        return self.path / "plan.batch"

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

    def config(self) -> BatchConfig:
        """The config snapshot ``s2kit plan`` wrote (``config.json``; its paths are absolute).

        Validated as written (no path resolution: the snapshot's paths are resolved already).
        """
        from pydantic import ValidationError

        from .config import BatchConfig
        from .errors import ConfigError

        data = self.config_data()
        try:
            return BatchConfig.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "<top>"
            raise ConfigError(
                f"key '{key}': {one_line(str(err['msg']), 120)} in the config snapshot; {_PLAN_AGAIN}",
                self.config_file,
            ) from None

    def config_data(self) -> dict[str, Any]:
        """The parsed ``config.json`` (not validated; :meth:`config` validates it)."""
        from .errors import ConfigError

        try:
            data = json.loads(self.config_file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise InputError(
                f"expected config.json (written by 's2kit plan'), found none; {_PLAN_AGAIN}", self.config_file
            ) from exc
        except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(
                f"expected a readable JSON config snapshot, found: {one_line(why, 120)}; {_PLAN_AGAIN}",
                self.config_file,
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(
                f"expected a JSON object in the config snapshot, found {_what(data)}; {_PLAN_AGAIN}",
                self.config_file,
            )
        return data

    def check_snapshot(self, cfg: BatchConfig) -> None:
        """Refuse when *cfg* differs from the plan's snapshot (``config.json``) in any key.

        The workers read the snapshot, never the config file: submitting with an edited
        config would render scheduler values from one config and run Sen2Cor with another.
        A missing or unreadable snapshot is refused too (naming ``s2kit plan``). ``source``
        (where the config was read from) is not compared.
        """
        from .errors import ConfigError

        snapshot = self.config_data()
        if cfg.source is not None and Path(cfg.source) == self.config_file:
            return  # the snapshot itself (--run-dir without --config)
        mine = json.loads(json.dumps(cfg.to_json_dict()))
        mine_flat, snap_flat = _flat(mine), _flat(snapshot)
        # a key a snapshot of an older s2kit does not have, at its empty default here (e.g.
        # sen2cor.route = [], sen2cor.series = null): the same config, not a difference
        diffs = [
            k
            for k in _differing_keys(mine, snapshot)
            if k != "source" and not (k not in snap_flat and mine_flat.get(k, _ABSENT) in (None, []))
        ]
        if not diffs:
            return
        name = display_path(cfg.source) if cfg.source is not None else "the config"

        def show(flat: dict[str, Any], key: str) -> str:
            return one_line(json.dumps(flat[key], ensure_ascii=False), 60) if key in flat else "(absent)"

        shown = ", ".join(
            f"{k} ({name}: {show(mine_flat, k)}, snapshot: {show(snap_flat, k)})" for k in diffs[:3]
        ) + (f" and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        again = f"s2kit plan --config {shlex.quote(name)}" if cfg.source is not None else "s2kit plan"
        raise ConfigError(
            one_line(
                f"expected {name} to match the plan's config snapshot, found {len(diffs)} key(s) differing: "
                f"{shown}; run `{again}` again (the workers use the plan's snapshot); nothing was submitted",
                600,
            ),
            self.config_file,
        )

    def find_entry(self, scene: str) -> PlanEntry:
        """The scene's line of ``plan.jsonl`` (streamed: one JSON parse per candidate line)."""
        self.require()
        with open(self.plan_file, encoding="utf-8") as fh:
            for line in fh:
                if scene not in line:
                    continue
                try:
                    entry = plan_entry_from_json(json.loads(line))
                except (ValueError, RecursionError):  # JSONDecodeError too; read_plan names the line
                    continue
                if entry.scene == scene:
                    return entry
        raise InputError(f"expected scene {scene} in the plan, found no such entry", self.plan_file)

    def require(self) -> RunDir:
        if not self.plan_file.is_file():
            raise InputError(
                "expected a run directory with plan.jsonl (run 's2kit plan' first), found none", self.path
            )
        return self

    # ------------------------------------------------------------------ plan
    def write_plan(self, entries: list[PlanEntry]) -> None:
        with writing(self.plan_file):
            atomic_write_text(self.plan_file, "".join(e.to_json() + "\n" for e in entries))

    def plan_batch(self) -> str:
        """The batch the latest ``plan`` wrote (``all`` for run dirs planned before it was recorded)."""
        try:
            name = self.plan_batch_file.read_text(encoding="utf-8").strip()
        except OSError:
            return "all"
        return name if name and _CONTROL_RE.search(name) is None and "/" not in name else "all"

    def set_plan_batch(self, name: str) -> None:
        with writing(self.plan_batch_file):
            atomic_write_text(self.plan_batch_file, name + "\n")

    def read_plan(self) -> list[PlanEntry]:
        self.require()
        out = []
        with open(self.plan_file, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        out.append(plan_entry_from_json(json.loads(line)))
                    except (ValueError, RecursionError) as exc:  # JSONDecodeError too
                        raise InputError(
                            f"expected a plan entry (a JSON object with scene, l1c_path, decision) on "
                            f"line {n}, found {one_line(str(exc), 120)}; {_PLAN_AGAIN}",
                            self.plan_file,
                        ) from exc
        return out

    # ------------------------------------------------------------------ batches
    def write_batch(self, name: str, scenes: list[str]) -> Path:
        """Write ``batches/<name>.txt`` once; the same scenes again are a no-op.

        A batch file is never rewritten with other scenes: a queued array maps its task
        index i to line i of it, so a changed file would send tasks to the wrong scenes.
        Raises BatchImmutable when the file exists with other content.
        """
        target = self.batch_file(name)
        data = "".join(s + "\n" for s in scenes).encode("utf-8")
        with writing(target), written_beside(target, data) as tmp:
            try:
                os.link(tmp, target)  # atomic and exclusive: fails when the name exists
            except FileExistsError:
                try:
                    same = target.read_bytes() == data
                except OSError:
                    same = False
                if not same:
                    raise BatchImmutable(
                        "expected a new batch name, found this batch file already written with "
                        "other scenes (batch files are never rewritten: queued array tasks index them)",
                        target,
                    ) from None
        return target

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
        f = self.state_file(st.scene)
        with writing(f):
            atomic_write_text(f, st.to_json() + "\n")

    def read_state(self, scene: str) -> SceneState | None:
        """The scene's state; None when there is none, or when the file is not a scene state
        (garbage counts as absent, with a warning once: atomic writes never leave a torn file;
        the worker still finds an L2A already published for the scene and never makes two)."""
        f = self.state_file(scene)
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            st: SceneState = _checked(SceneState, doc, _STATE_TYPES, ("scene", "state"))
            if st.state not in ("pending", "running", "done", "failed"):
                raise ValueError(f"state = {st.state!r}")
            return st
        except FileNotFoundError:
            return None
        except OSError:
            return None
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, a wrong shape
            _warn_once(
                f"state:{f}",
                f"{display_path(f)}: ignoring a state file that is not a scene state "
                f"({one_line(str(exc), 80)}); the scene counts as not started",
            )
            return None

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
        """Append one whole line to jobs.jsonl: one write(2) with O_APPEND, then fsync.

        Appenders take the file's flock, so a torn last line left by a killed writer (or
        a full disk) is cut off before the new line goes after it: a torn line never
        ends up in the middle of the file.
        """
        f = self.jobs_file
        line = (rec.to_json() + "\n").encode("utf-8")
        with writing(f):
            f.parent.mkdir(parents=True, exist_ok=True)
            fd = _open_locked(f, os.O_RDWR | os.O_APPEND | os.O_CREAT)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    _cut_torn_tail(fd, size, f)
                n = os.write(fd, line)
                if n != len(line):  # a short write (disk full): take it back, report it
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, os.fstat(fd).st_size - n)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))
                os.fsync(fd)
            finally:
                os.close(fd)  # also releases the flock

    def update_job(self, scheduler: str, job_id: str, extra: dict[str, Any]) -> bool:
        """Merge *extra* into the ``extra`` of the job record(s) of *scheduler* *job_id*.

        jobs.jsonl is rewritten atomically (temp file + rename) while its flock is held; an
        appender waiting for that flock sees the file replaced and appends to the new one
        (:func:`_open_locked`). Other lines stay byte for byte. False: no such record.
        """
        f = self.jobs_file
        with writing(f):
            try:
                fd = _open_locked(f, os.O_RDWR)
            except FileNotFoundError:
                return False
            try:
                size = os.fstat(fd).st_size
                lines = os.pread(fd, size, 0).decode("utf-8", "replace").split("\n")
                found = False
                for i, line in enumerate(lines):
                    try:
                        rec = _checked(JobRecord, json.loads(line), _JOB_TYPES, _JOB_REQUIRED)
                    except (ValueError, RecursionError):  # blank, torn: kept as it is
                        continue
                    if rec.scheduler == scheduler and rec.job_id == job_id:
                        merged = {**json.loads(rec.to_json()), "extra": {**rec.extra, **extra}}
                        lines[i] = JobRecord.from_dict(merged).to_json()
                        found = True
                if found:
                    atomic_write_text(f, "\n".join(lines))
                return found
            finally:
                os.close(fd)

    def read_jobs(self) -> list[JobRecord]:
        """Every JobRecord of jobs.jsonl; a torn LAST line is ignored (warning on stderr, once)."""
        f = self.jobs_file
        try:
            text = f.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise InputError(f"expected a readable jobs file, found {exc.strerror}", f) from exc
        out = []
        lines = text.split("\n")
        last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                out.append(_checked(JobRecord, json.loads(line), _JOB_TYPES, _JOB_REQUIRED))
            except (ValueError, RecursionError) as exc:  # JSONDecodeError too
                if i == last:
                    _warn_once(
                        f"torn:{f}:{i}",
                        f"{display_path(f)}: ignoring its torn last line {i + 1} "
                        f"(an interrupted write): {one_line(str(exc), 120)}",
                    )
                    continue
                raise InputError(
                    f"expected a JSON job record on line {i + 1}, found {one_line(str(exc), 120)}; "
                    f"repair or delete line {i + 1} (or move the file aside: status then forgets "
                    "the jobs, the scenes' states stay)",
                    f,
                ) from exc
        return out

    # ------------------------------------------------------------------ locks
    def lock_probe(self, scene: str) -> bool:
        """Whether some worker holds the scene's lock, asked of the kernel without writing.

        Takes a shared flock for an instant (never creates or truncates the lock file), so
        it sees locks of other hosts too where the filesystem shares flock locks.
        """
        f = self.lock_file(scene)
        if lock_held_here(f):
            return True
        try:
            fd = os.open(f, os.O_RDONLY)
        except OSError:
            return False  # no lock file: no worker ever locked it
        try:
            return not flock(fd, shared=True, blocking=False)
        except OSError:
            return False
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def lock(self, scene: str) -> Iterator[None]:
        """Hold the scene's flock; raise SceneLocked at once when another process has it.

        flock locks die with their process, so a worker killed with SIGKILL never
        leaves a stale lock behind.
        """
        f = self.lock_file(scene)
        with writing(f):
            f.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not flock(fd, blocking=False):
                raise SceneLocked("expected the scene to be free, found it locked by another worker", f)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.uname().nodename} {os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)


def _flat(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of nested JSON objects -> leaf values (lists are leaves)."""
    if not isinstance(doc, dict):
        return {prefix: doc}
    out: dict[str, Any] = {}
    for k, v in doc.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(_flat(v, key) if isinstance(v, dict) and v else {key: v})
    return out


def _differing_keys(a: Any, b: Any) -> list[str]:
    """The dotted keys whose values differ between two JSON objects, in sorted order."""
    fa, fb = _flat(a), _flat(b)
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k, _ABSENT) != fb.get(k, _ABSENT))


_ABSENT = object()


def _open_locked(path: Path, flags: int) -> int:
    """*path* opened with *flags* and its flock held (best effort: a file system without flock
    proceeds unlocked), retried while the name was replaced under us (:meth:`RunDir.update_job`)."""
    while True:
        fd = os.open(path, flags, 0o644)
        try:
            flock(fd, best_effort=True)
            held, now = os.fstat(fd), os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
            return fd
        os.close(fd)


def _cut_torn_tail(fd: int, size: int, path: Path) -> None:
    """Truncate an unterminated last line (caller holds the flock)."""
    start = max(0, size - (1 << 20))
    tail = os.pread(fd, size - start, start)
    keep = start + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
    _warn_once(
        f"cut:{path}:{keep}",
        f"{display_path(path)}: dropping a torn last line ({size - keep} bytes, an interrupted write)",
    )
    os.ftruncate(fd, keep)


def held_flocks() -> frozenset[tuple[int, int, int]]:
    """(major, minor, inode) of every file a process on this host holds a flock on (/proc/locks)."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            rows = fh.read().splitlines()
    except OSError:
        return frozenset()
    out = set()
    for row in rows:
        parts = row.split()
        if len(parts) < 6 or parts[1] != "FLOCK":  # "->" rows are waiters, not holders
            continue
        dev = parts[5].split(":")
        with contextlib.suppress(ValueError, IndexError):
            out.add((int(dev[0], 16), int(dev[1], 16), int(dev[2])))
    return frozenset(out)


def lock_held_here(path: Path, held: frozenset[tuple[int, int, int]] | None = None) -> bool:
    """Whether a process on this host holds a flock on *path* (read from /proc/locks; no locking)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    key = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    return key in (held if held is not None else held_flocks())


def is_stale(
    st: SceneState | None,
    *,
    task: str | None = None,
    host: str | None = None,
    alive: Callable[[int], bool] | None = None,
    lock: bool | None = None,
) -> bool:
    """THE definition of a stale scene (``status``, ``resubmit --failed`` and the worker use it).

    A scene is stale when its state says ``running`` but its worker is gone. Evidence,
    strongest first:

    1. the scene's lock is held (*lock* True): not stale;
    2. the state names this *host* and a pid: stale exactly when that pid is dead, or
       belongs to a process started after the state was written (the pid was reused); a
       live worker process here wins over anything the scheduler says about its job;
    3. the lock is known free (*lock* False: nobody holds it): stale;
    4. the job task that ran it ended or vanished (*task* done / failed / gone): stale.

    Otherwise (no job to ask, the scheduler cannot be asked, the job is still active) it
    is not stale.
    """
    if st is None or st.state != "running":
        return False
    if lock is True:
        return False
    if host is not None and st.host == host and st.pid is not None:
        if alive is not None:
            return not alive(st.pid)
        return not (pid_alive(st.pid) and not started_after(st.pid, st.started))
    if lock is False:
        return True
    return task in ("done", "failed", "gone")
