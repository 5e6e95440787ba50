"""The batch configuration file (``s2kit.toml``), validated with pydantic.

Relative paths are resolved against the directory of the config file, so a
config works from whatever directory ``make batch`` or a job script runs in.
A bad value gives one :class:`~s2kit.errors.ConfigError` line that names the key.

Refused at load, so no scene fails later for it: a control character (C0, DEL, C1, U+2028/2029)
in any string (paths, queue, apptainer, extra_args, ...: a newline would end a ``#SBATCH``/
``#BSUB`` line); an empty path (it would mean the current directory); inf/nan; memory per task
above 16 TiB or below 1 MB; walltime ``0:00`` or above 30 days; ``timeout_minutes`` above 30 days;
``max_concurrent`` above 100000; ``max_array_size`` above 4000001; a baseline the GIPP renderer
refuses (``99.99`` is Sen2Cor's placeholder); an empty ``apptainer``; ``start`` after ``end``.

Example (``examples/s2kit.toml``)::

    [paths]
    l1c_dirs = ["../data/l1c"]
    l2a_dir = "../data/l2a"
    dem_dir = "../data/dem"
    scratch_dir = "/tmp/s2kit-scratch"
    run_dir = "../runs/example"

    [sen2cor]
    version = "2.9"
    runtime = "apptainer"          # or "native"
    image = "../sen2cor-2.9.sif"   # runtime = "apptainer"
    # install_dir = "/opt/Sen2Cor-02.09.00-Linux64"   # runtime = "native"
    resolution = 60
    timeout_minutes = 90
    retries = 1

    [scheduler]
    kind = "local"                 # local | lsf | slurm
    cores_per_task = 1
    memory_per_task_gb = 4
    walltime = "02:00"
    queue = ""
    max_concurrent = 2

Several Sen2Cor versions in one batch (issue 18): ``sen2cor.route`` sends each L1C, by its
processing baseline, to the first entry whose ``below_baseline`` it is below; the last entry has
none and takes the rest. An entry names its ``version`` and may set ``runtime``, ``image``,
``install_dir``, ``baseline``, ``dem``, ``timeout_minutes``; what it does not set is taken from
the ``[sen2cor]`` table at load (the snapshot holds every entry complete), and the table then
reads as the last entry's settings. ``BatchConfig.sen2cor_for(version)`` gives the effective
settings of one version::

    [sen2cor]
    runtime = "apptainer"
    route = [ { below_baseline = "04.00", version = "2.9", image = "../sen2cor-2.9.sif" },
              { version = "2.12", image = "../sen2cor-2.12.sif" } ]

Refused at load (one line naming the entry): an entry after a catch-all (unreachable), the last
entry with ``below_baseline`` (baselines left without a Sen2Cor), ``below_baseline`` values not
increasing (an entry that takes nothing), a version twice, a version past its baseline gate
(2.9 with ``below_baseline`` above 04.00 or as the catch-all), a ``dem`` the version cannot read.
``series = "consistent"`` (no route) processes every scene with ``version``, which must handle
every baseline (2.10 or later).
"""

from __future__ import annotations

import math
import os
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .text import batch_name_problem as batch_name_problem  # re-exported (s2kit.text)
from .text import control_character as control_character
from .text import printable as printable
from .tile_names import TileError, normalize_tile
from .versions import (
    BASELINE_GATE,
    DEFAULT_VERSION,
    DEM_KINDS,
    L1C_BASELINE,
    Sen2CorVersion,
    default_dem_kind,
    default_output_baseline,
    output_baseline,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "L1C_BASELINE",
    "BatchConfig",
    "DemKind",
    "default_output_baseline",
    "output_baseline",
    "PathsConfig",
    "RouteEntry",
    "Sen2CorConfig",
    "SchedulerConfig",
    "SelectConfig",
    "load_config",
]

_WALLTIME_RE = re.compile(r"([0-9]+):([0-5][0-9])(?::([0-5][0-9]))?")
_BASELINE_RE = re.compile(r"([0-9]{2})\.([0-9]{2})", re.ASCII)

#: ``sen2cor.dem``: which DEM a version reads (``s2kit.versions.DEM_KINDS``)
DemKind = Literal["srtm", "cop-dem-glo30", "cop-dem-glo90", "none"]
#: keys a ``sen2cor.route`` entry may set for its version; unset ones inherit from ``[sen2cor]``
ROUTE_KEYS = ("runtime", "image", "install_dir", "baseline", "dem", "timeout_minutes")


# --------------------------------------------------------------------------- checks every key gets
# A value that reaches a job script, a GIPP or a command line is refused here, at config load,
# rather than when the first scene fails (control_character, printable: s2kit.text).

# keys that name a file or folder: an empty string would silently mean the current directory
_PATH_FIELDS = frozenset({"l1c_dirs", "l2a_dir", "dem_dir", "scratch_dir", "run_dir", "image", "install_dir"})

MAX_CONFIG_BYTES = 1024 * 1024  # s2kit.toml is a few hundred bytes
MIN_TIMEOUT_MINUTES = 1  # below a minute Sen2Cor cannot even start
#: a job's walltime must cover one Sen2Cor attempt (timeout_minutes) plus this much for staging,
#: publishing and validation, or the scheduler kills every task (refused at plan for lsf/slurm)
WALLTIME_MARGIN_MINUTES = 5
MAX_MEMORY_GB = 16 * 1024  # 16 TiB per task: more than any node has
MAX_MINUTES = 30 * 24 * 60  # 30 days: walltime and the Sen2Cor timeout
MAX_CONCURRENT = 100_000
MAX_ARRAY_SIZE = 4_000_001  # Slurm's own ceiling for MaxArraySize

# numeric keys -> (largest accepted value, unit for the message); every float must be finite
_UPPER: dict[str, tuple[float, str]] = {
    "memory_per_task_gb": (MAX_MEMORY_GB, " GB (16 TiB)"),
    "timeout_minutes": (MAX_MINUTES, " minutes (30 days)"),
    "max_concurrent": (MAX_CONCURRENT, ""),
    "max_array_size": (MAX_ARRAY_SIZE, ""),
}


def _texts(value: Any) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)] if isinstance(os.fspath(value), str) else []
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _texts(item)]
    return []


def _baseline_for_gipp(value: str) -> None:
    """The baseline GippSettings (what the worker renders) accepts: refused here, not per scene."""
    from .gipp import GippSettings  # lxml: imported only when a config is validated

    try:
        GippSettings(baseline=value)
    except ConfigError as exc:
        raise ValueError(exc.message) from None


def _minutes(walltime: str) -> int:
    """``H:MM[:SS]`` -> whole minutes, seconds rounded up."""
    m = _WALLTIME_RE.fullmatch(walltime)
    assert m
    return int(m[1]) * 60 + int(m[2]) + (1 if m[3] and int(m[3]) else 0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_text(cls, value: Any, info: ValidationInfo) -> Any:
        for text in _texts(value):
            problem = control_character(text)
            if problem:
                raise ValueError(problem)
            if info.field_name in _PATH_FIELDS and not text.strip():
                raise ValueError(
                    f"expected a path, found {'an empty string' if not text else repr(text)} "
                    "(write '.' for the folder of the config file)"
                )
        if (
            info.field_name == "apptainer"
            and isinstance(value, str)
            and (not value.strip() or value != value.strip())
        ):
            raise ValueError(f"expected the apptainer command (a name on PATH or a path), found {value!r}")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _in_range(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"expected a finite number, found {value}")
        name = info.field_name or ""
        if name in _UPPER and isinstance(value, (int, float)) and value > _UPPER[name][0]:
            top, unit = _UPPER[name]
            raise ValueError(f"expected at most {top}{unit}, found {value}")
        if name == "baseline" and isinstance(value, str) and value != L1C_BASELINE:
            problem = _baseline_problem(value, output=True)
            if problem:
                raise ValueError(problem)
            _baseline_for_gipp(value)
        return value


def _real(path: Path) -> str:
    """*path* with the symlinks of its existing part resolved (a loop: the path as written)."""
    try:
        return os.path.realpath(path)
    except (OSError, RuntimeError, ValueError):
        return os.path.normpath(os.path.abspath(path))


def _inside(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def overlap_problem(l1c_dirs: list[Path], outputs: dict[str, Path]) -> str | None:
    """One line when an output folder (*outputs*: key -> path) equals or nests with an l1c_dir.

    s2kit never writes into the L1C store (issue 12, finding 8): products, the run dir or scratch
    inside it would land among the inputs (and staging would recurse); the store inside an output
    folder would be written over. Symlinks are resolved where the paths exist.
    """
    for i, l1c in enumerate(l1c_dirs):
        store = _real(l1c)
        for key, out in outputs.items():
            where = _real(out)
            if _inside(where, store) or _inside(store, where):
                how = "equal to" if where == store else ("inside" if _inside(where, store) else "containing")
                return (
                    f"expected {key} outside every l1c_dir (s2kit never writes into the L1C store), "
                    f"found {key} {printable(str(out))} {how} l1c_dirs[{i}] {printable(str(l1c))}"
                )
    return None


class PathsConfig(_Strict):
    l1c_dirs: list[Path] = Field(min_length=1)
    l2a_dir: Path
    dem_dir: Path | None = None
    scratch_dir: Path
    run_dir: Path

    @model_validator(mode="after")
    def _outputs_outside_the_store(self) -> PathsConfig:
        problem = overlap_problem(
            self.l1c_dirs, {"l2a_dir": self.l2a_dir, "scratch_dir": self.scratch_dir, "run_dir": self.run_dir}
        )
        if problem:
            raise ValueError(problem)
        return self


def _baseline_problem(value: str, output: bool = False) -> str | None:
    if output and value == L1C_BASELINE:
        return None
    if not _BASELINE_RE.fullmatch(value):
        more = " or 'l1c' (each L1C's own)" if output else ""
        return f"expected a processing baseline like '03.00'{more}, found {value!r}"
    return None


def _bkey(value: str) -> tuple[int, int]:
    m = _BASELINE_RE.fullmatch(value)
    assert m
    return int(m[1]), int(m[2])


def _gate_text(gate: tuple[int, int]) -> str:
    return f"{gate[0]:02d}.{gate[1]:02d}"


def _output_baseline_problem(version: str, baseline: str) -> str | None:
    """The output baseline (GIPP Baseline_Version) a version must not write (2.9: >= 04.00)."""
    gate = BASELINE_GATE.get(version)
    m = _BASELINE_RE.fullmatch(baseline)
    if gate is not None and m and (int(m[1]), int(m[2])) >= gate:
        return (
            f"expected a baseline below {_gate_text(gate)} with Sen2Cor {version}, found "
            f"{baseline!r} (Sen2Cor {version} ignores the radiometric offset baselines "
            f">= {_gate_text(gate)} declare: every product would fail offset-mismatch; "
            "use Sen2Cor 2.10 or later)"
        )
    return None


def _dem_kind_problem(version: str, dem: str | None) -> str | None:
    kinds = DEM_KINDS.get(version)
    if dem is None or kinds is None or dem in kinds:
        return None
    return f"expected a DEM Sen2Cor {version} can use ({', '.join(kinds)}), found {dem!r}"


def _timeout_problem(v: float) -> str | None:
    # below a minute Sen2Cor cannot even start: every scene would fail 'timeout'
    if not v >= MIN_TIMEOUT_MINUTES:
        return f"expected at least {MIN_TIMEOUT_MINUTES} minute, found {v}"
    return None


class RouteEntry(_Strict):
    """One entry of ``sen2cor.route``: the Sen2Cor *version* that processes the L1C whose
    processing baseline is below ``below_baseline`` (and not taken by an earlier entry); the
    last entry has no ``below_baseline`` and takes every other baseline. The keys of
    :data:`ROUTE_KEYS` it does not set are inherited from the ``[sen2cor]`` table at load
    (so the snapshot ``config.json`` holds every entry complete)."""

    version: Sen2CorVersion
    below_baseline: str | None = None
    runtime: Literal["apptainer", "native"] | None = None
    image: Path | None = None
    install_dir: Path | None = None
    baseline: str | None = None
    dem: DemKind | None = None
    timeout_minutes: float | None = None

    @field_validator("below_baseline", "baseline")
    @classmethod
    def _baseline_form(cls, v: str | None, info: ValidationInfo) -> str | None:
        problem = None if v is None else _baseline_problem(v, output=info.field_name == "baseline")
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("timeout_minutes")
    @classmethod
    def _timeout(cls, v: float | None) -> float | None:
        problem = None if v is None else _timeout_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _entry_needs(self) -> RouteEntry:
        problem = (
            self.baseline and _output_baseline_problem(self.version, self.baseline)
        ) or _dem_kind_problem(self.version, self.dem)
        if problem:
            raise ValueError(problem)
        if self.runtime == "apptainer" and self.image is None:
            raise ValueError(f"runtime 'apptainer' needs 'image' (the Sen2Cor {self.version} .sif)")
        if self.runtime == "native" and self.install_dir is None:
            raise ValueError(
                f"runtime 'native' needs 'install_dir' (Sen2Cor {self.version}, bin/L2A_Process)"
            )
        gate = BASELINE_GATE.get(self.version)
        if gate is not None and (self.below_baseline is None or _bkey(self.below_baseline) > gate):
            got = f"below_baseline {self.below_baseline!r}" if self.below_baseline else "no below_baseline"
            raise ValueError(
                f"expected below_baseline at most {_gate_text(gate)!r} for Sen2Cor {self.version}, found "
                f"{got} "
                f"(Sen2Cor {self.version} ignores the radiometric offset of baselines >= {_gate_text(gate)}: "
                "route those to 2.10 or later)"
            )
        return self

    @property
    def takes(self) -> str:
        """Which baselines the entry takes, in words (``below 04.00``, ``every other baseline``)."""
        return f"below {self.below_baseline}" if self.below_baseline else "every other baseline"


class Sen2CorConfig(_Strict):
    """The ``[sen2cor]`` table: one Sen2Cor version for the batch, or (``route``) one per
    processing-baseline range, or (``series = "consistent"``) one version for every baseline."""

    version: Sen2CorVersion = DEFAULT_VERSION
    #: one Sen2Cor per processing-baseline range (first match wins; the last entry takes the rest);
    #: declared before the keys the entries inherit, so a problem is named in its entry first
    route: list[RouteEntry] = Field(default_factory=list)
    #: "consistent": every scene with ``version``, which must handle every baseline (no route);
    #: "routed": the ``route`` (the default when there is one)
    series: Literal["routed", "consistent"] | None = None
    runtime: Literal["apptainer", "native"] = "apptainer"
    image: Path | None = None
    install_dir: Path | None = None
    resolution: Literal[10, 20, 60] | None = 60
    #: the output processing baseline (PB GIPP Baseline_Version): "NN.NN", or "l1c" = each L1C's
    #: own baseline (the L2A keeps it, as ESA's L2A do). Unset: "03.00" for a version that must
    #: not process baselines >= 04.00 (2.9), "l1c" for one that processes every baseline (2.10+).
    baseline: str | None = None
    timeout_minutes: float = Field(default=90)
    retries: int = Field(default=1, ge=0, le=10)
    apptainer: str = "apptainer"
    #: "srtm": every scene needs its tile's DEM folder paths.dem_dir/<tile>/ (plan skips a scene
    #: without one as ``no-dem``); "none": explicit flat terrain (DEM_Directory NONE); the
    #: Copernicus DEM kinds for Sen2Cor 2.12. Unset: the version's default
    #: (:func:`s2kit.versions.default_dem_kind`), filled in at load.
    dem: DemKind | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_in(cls, data: Any) -> Any:
        """Complete every route entry from the table (inherited keys, the version's DEM kind) and,
        with a route, the table from the last entry (``version`` and the keys the table does not
        set): ``cfg.sen2cor`` then reads as the catch-all version's settings."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        routes = data.get("route")
        if isinstance(routes, list) and routes:
            filled: list[Any] = []
            for entry in routes:
                if isinstance(entry, dict):
                    entry = dict(entry)
                    for key in ROUTE_KEYS:
                        if entry.get(key) is None and data.get(key) is not None:
                            entry[key] = data[key]
                        elif entry.get(key) is None and key not in ("dem", "baseline"):
                            entry[key] = cls.model_fields[key].default
                    version = entry.get("version")
                    if entry.get("dem") is None and isinstance(version, str) and version in DEM_KINDS:
                        entry["dem"] = default_dem_kind(version)
                    if entry.get("baseline") is None and isinstance(version, str):
                        entry["baseline"] = default_output_baseline(version)
                filled.append(entry)
            data["route"] = filled
            last = filled[-1]
            if isinstance(last, dict):
                for key in ("version", *ROUTE_KEYS):
                    if data.get(key) is None and last.get(key) is not None:
                        data[key] = last[key]
        version = data.get("version", DEFAULT_VERSION)
        if data.get("dem") is None and isinstance(version, str) and version in DEM_KINDS:
            data["dem"] = default_dem_kind(version)
        if data.get("baseline") is None and isinstance(version, str):
            data["baseline"] = default_output_baseline(version)
        return data

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, v: str | None) -> str | None:
        problem = None if v is None else _baseline_problem(v, output=True)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("timeout_minutes")
    @classmethod
    def _timeout(cls, v: float) -> float:
        problem = _timeout_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("dem")
    @classmethod
    def _dem_for_version(cls, v: str | None, info: ValidationInfo) -> str | None:
        problem = _dem_kind_problem(str(info.data.get("version")), v)
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _baseline_for_version(self) -> Sen2CorConfig:
        problem = self.baseline and _output_baseline_problem(self.version, self.baseline)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _runtime_needs(self) -> Sen2CorConfig:
        if self.runtime == "apptainer" and self.image is None:
            raise ValueError("runtime 'apptainer' needs 'image' (path of the Sen2Cor .sif)")
        if self.runtime == "native" and self.install_dir is None:
            raise ValueError("runtime 'native' needs 'install_dir' (folder with bin/L2A_Process)")
        return self

    @field_validator("route")
    @classmethod
    def _route_shape(cls, route: list[RouteEntry], info: ValidationInfo) -> list[RouteEntry]:
        """A route covers every baseline exactly once, in order; each version once; the table's
        ``version`` is the last entry's."""
        if not route:
            return route
        seen: dict[str, int] = {}
        low: tuple[int, int] = (0, 0)
        last = len(route) - 1
        for i, e in enumerate(route):
            where = f"entry {i} (Sen2Cor {e.version})"
            if e.version in seen:
                raise ValueError(
                    f"expected each Sen2Cor version once, found {e.version} in entries {seen[e.version]} "
                    f"and {i} "
                    "(give one entry a wider below_baseline)"
                )
            seen[e.version] = i
            if e.below_baseline is None and i != last:
                raise ValueError(
                    f"expected below_baseline in every entry but the last, found none in {where}: it "
                    "takes every "
                    f"baseline, so the entries after it are unreachable"
                )
            if e.below_baseline is not None and i == last:
                raise ValueError(
                    "expected the last entry without below_baseline (it takes every baseline the others "
                    "do not), "
                    f"found below_baseline {e.below_baseline!r} in {where}: baselines >= {e.below_baseline} "
                    "would have no Sen2Cor"
                )
            if e.below_baseline is not None:
                if _bkey(e.below_baseline) <= low:
                    left = (
                        ""
                        if low == (0, 0)
                        else f" above what the entries before it take (below {_gate_text(low)})"
                    )
                    raise ValueError(
                        f"expected below_baseline values increasing along the route, found {where} "
                        "below_baseline "
                        f"{e.below_baseline!r}, which takes no baseline{left}: unreachable"
                    )
                low = _bkey(e.below_baseline)
        version = info.data.get("version")
        if version is not None and version != route[-1].version:
            raise ValueError(
                f"expected sen2cor.version unset or the last entry's ({route[-1].version}), found "
                f"{version!r} "
                "(with a route each entry names its version)"
            )
        return route

    @model_validator(mode="after")
    def _series(self) -> Sen2CorConfig:
        if self.route and self.series == "consistent":
            raise ValueError(
                f"expected no sen2cor.route with series 'consistent' (one version for every scene), found "
                f"{len(self.route)} route entries"
            )
        if not self.route and self.series == "routed":
            raise ValueError("series 'routed' needs a sen2cor.route (one entry per Sen2Cor version)")
        gate = BASELINE_GATE.get(self.version)
        if not self.route and self.series == "consistent" and gate is not None:
            raise ValueError(
                "expected a version that processes every baseline with series 'consistent' (2.10 or "
                "later: they "
                f"apply the radiometric offset of baselines >= 04.00), found Sen2Cor {self.version}, "
                "which must "
                f"not process baselines >= {_gate_text(gate)}"
            )
        return self

    @property
    def routed(self) -> bool:
        """Several Sen2Cor versions in one batch (a ``route``)."""
        return bool(self.route)

    def versions(self) -> list[str]:
        """Every version this table may run, in route order (one without a route)."""
        return [e.version for e in self.route] if self.route else [self.version]

    def route_groups(self) -> list[tuple[str, str, str]]:
        """(version, output baseline, which L1C baselines it takes) of every Sen2Cor this table
        runs: what ``validate --consistency`` accepts as groups of one set."""
        if not self.route:
            return [(self.version, str(self.baseline), "every baseline")]
        return [(e.version, str(e.baseline or self.baseline), e.takes) for e in self.route]

    def route_for(self, baseline: str) -> tuple[RouteEntry | None, int]:
        """The route entry (and its 0-based position) that takes an L1C of *baseline*; (None, -1)
        without a route. A baseline that is not ``NN.NN`` goes to the catch-all entry."""
        if not self.route:
            return None, -1
        m = _BASELINE_RE.fullmatch(baseline)
        key = (int(m[1]), int(m[2])) if m else None
        for i, e in enumerate(self.route):
            if e.below_baseline is None or (key is not None and key < _bkey(e.below_baseline)):
                return e, i
        return self.route[-1], len(self.route) - 1  # unreachable: validation leaves a catch-all

    def effective(self, version: str) -> Sen2CorConfig:
        """The settings Sen2Cor *version* runs with: its route entry merged over this table
        (without a route: this table, when *version* is its version)."""
        if not self.route:
            if version != self.version:
                raise ConfigError(
                    f"expected Sen2Cor {self.version} (sen2cor.version; the config has no route), found "
                    f"{version!r}"
                )
            return self
        for e in self.route:
            if e.version == version:
                update: dict[str, Any] = {"version": e.version, "route": [], "series": None}
                for key in ROUTE_KEYS:
                    value = getattr(e, key)
                    update[key] = value if value is not None else getattr(self, key)
                return self.model_copy(update=update)
        raise ConfigError(
            f"expected a Sen2Cor version of sen2cor.route ({', '.join(self.versions())}), found {version!r}"
        )


class SchedulerConfig(_Strict):
    kind: Literal["local", "lsf", "slurm"] = "local"
    cores_per_task: int = Field(default=1, ge=1, le=64)
    memory_per_task_gb: float = Field(default=4, gt=0)
    walltime: str = "02:00"
    queue: str = ""
    max_concurrent: int = Field(default=4, ge=1)
    max_array_size: int | None = Field(default=None, ge=1)
    extra_args: list[str] = Field(default_factory=list)

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, v: str) -> str:
        if not _WALLTIME_RE.fullmatch(v):
            raise ValueError(f"expected HH:MM or HH:MM:SS, found {v!r}")
        minutes = _minutes(v)
        if not 0 < minutes <= MAX_MINUTES:
            raise ValueError(
                f"expected a walltime above 0:00 and at most {MAX_MINUTES // 60}:00 (30 days), found {v!r}"
            )
        return v

    @field_validator("memory_per_task_gb")
    @classmethod
    def _memory(cls, v: float) -> float:
        if math.isfinite(v) and v > 0 and round(v * 1024) < 1:
            raise ValueError(f"expected at least 1 MB ({1 / 1024:.6f} GB) per task, found {v} GB")
        return v

    @property
    def walltime_minutes(self) -> int:
        return _minutes(self.walltime)

    @property
    def memory_per_task_mb(self) -> int:
        return int(round(self.memory_per_task_gb * 1024))


class SelectConfig(_Strict):
    tiles: list[str] = Field(default_factory=list)
    start: date | None = None
    end: date | None = None

    @field_validator("tiles")
    @classmethod
    def _tiles(cls, v: list[str]) -> list[str]:
        out = []
        for t in v:
            if t != t.strip():  # the file says exactly what it means: no blanks, no newline
                raise ValueError(f"expected MGRS tiles like '17SQV', found {t!r}")
            try:
                out.append(normalize_tile(t))
            except TileError as exc:
                raise ValueError(exc.message) from None
        return out

    @model_validator(mode="after")
    def _start_not_after_end(self) -> SelectConfig:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(
                f"expected start on or before end, found start {self.start} after end {self.end}"
            )
        return self


class BatchConfig(_Strict):
    paths: PathsConfig
    sen2cor: Sen2CorConfig
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    source: Path | None = None  # the file this config was read from

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def sen2cor_for(self, version: str | None) -> Sen2CorConfig:
        """The effective Sen2Cor settings of one version (a plan entry's ``sen2cor``): its route
        entry merged over the ``[sen2cor]`` table; ``None`` (a plan written before routing) is
        ``cfg.sen2cor``. A version the config does not name raises ConfigError (one line)."""
        if version is None:
            return self.sen2cor
        try:
            return self.sen2cor.effective(version)
        except ConfigError as exc:
            raise ConfigError(exc.message + "; run `s2kit plan` again", self.source) from None

    def max_timeout_minutes(self) -> float:
        """The longest Sen2Cor timeout of any version this config runs (the walltime must hold it)."""
        return max(self.sen2cor.effective(v).timeout_minutes for v in self.sen2cor.versions())


def walltime_problem(cfg: BatchConfig) -> str | None:
    """One line when a job's walltime cannot hold one Sen2Cor attempt plus the margin."""
    need = cfg.max_timeout_minutes() + WALLTIME_MARGIN_MINUTES
    have = cfg.scheduler.walltime_minutes
    if have >= need:
        return None
    return (
        f"key 'scheduler.walltime': expected at least sen2cor.timeout_minutes + {WALLTIME_MARGIN_MINUTES} "
        f"minutes ({need:g}) with kind '{cfg.scheduler.kind}', found {cfg.scheduler.walltime!r} "
        f"({have} minutes): the scheduler would kill every task before Sen2Cor's timeout"
    )


def check_for_plan(cfg: BatchConfig, run_dir: Path | None = None) -> None:
    """What ``s2kit plan`` refuses before writing anything (issue 12, findings 6 and 8).

    A walltime that cannot hold one attempt (lsf/slurm); an ``--run-dir`` inside the L1C store;
    an l2a_dir, scratch_dir or run dir that exists but is not a directory (or is a symlink loop).
    """
    if cfg.scheduler.kind in ("lsf", "slurm"):
        problem = walltime_problem(cfg)
        if problem:
            raise ConfigError(problem, cfg.source)
    outputs = {"l2a_dir": cfg.paths.l2a_dir, "scratch_dir": cfg.paths.scratch_dir}
    if run_dir is not None:
        problem = overlap_problem(cfg.paths.l1c_dirs, {"--run-dir": run_dir})
        if problem:
            raise ConfigError(problem, cfg.source)
        outputs["--run-dir"] = run_dir
    else:
        outputs["run_dir"] = cfg.paths.run_dir
    for key, path in outputs.items():
        if os.path.lexists(path) and not os.path.isdir(path):
            try:
                os.stat(path)
                found = "a file, not a directory"
            except OSError as exc:
                found = exc.strerror or "an unreadable path"
            raise ConfigError(f"expected {key} to be a directory, found {found}", printable(str(path)))


def _resolve(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value.strip():  # blank: refused by the validators
        # '~' is expanded; environment variables are not (a path may contain '$', and a
        # login node's $TMPDIR is not the compute node's): write the path out.
        p = Path(os.path.expanduser(value))
        return os.path.normpath(p if p.is_absolute() else (base / p))
    return value


_PATH_KEYS = {
    "paths": ("l2a_dir", "dem_dir", "scratch_dir", "run_dir"),
    "sen2cor": ("image", "install_dir"),
}


def _format_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".") or "<top>"
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return f"key '{key}': {msg}{more}"


def config_from_dict(data: dict[str, Any], base: Path, source: Path | None = None) -> BatchConfig:
    """Validate a parsed config; relative paths are taken relative to *base*."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for section, keys in _PATH_KEYS.items():
        sec = data.get(section)
        if isinstance(sec, dict):
            for key in keys:
                if key in sec:
                    sec[key] = _resolve(base, sec[key])
    sen2cor = data.get("sen2cor")
    if isinstance(sen2cor, dict) and isinstance(sen2cor.get("route"), list):
        sen2cor["route"] = [
            {k: (_resolve(base, v) if k in _PATH_KEYS["sen2cor"] else v) for k, v in e.items()}
            if isinstance(e, dict)
            else e
            for e in sen2cor["route"]
        ]
    paths = data.get("paths")
    if isinstance(paths, dict) and isinstance(paths.get("l1c_dirs"), list):
        paths["l1c_dirs"] = [_resolve(base, v) for v in paths["l1c_dirs"]]
    if source is not None:
        data["source"] = str(source)
    try:
        return BatchConfig.model_validate(data)
    except ValidationError as exc:
        # a source path with a control character is named by the message; the prefix stays one line
        where = printable(str(source)) if source is not None and control_character(str(source)) else source
        raise ConfigError(_format_error(exc), where) from None


def load_config(path: str | os.PathLike[str]) -> BatchConfig:
    """Read and validate ``s2kit.toml``."""
    from .errors import MetadataError
    from .xmlsafe import read_capped_file  # lxml: imported with the validators anyway

    p = Path(path)
    try:
        # non-blocking, regular files only, capped: a FIFO never hangs, /dev/zero is never read
        raw = read_capped_file(p, p, limit=MAX_CONFIG_BYTES, what="TOML config file")
    except MetadataError as exc:
        raise ConfigError(exc.message, p) from None
    except OSError as exc:
        raise ConfigError(f"expected a readable TOML config file, found: {exc.strerror}", p) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"expected valid TOML, found: {exc}", p) from exc
    return config_from_dict(data, p.resolve().parent, p.resolve())
