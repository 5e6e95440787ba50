"""``s2kit plan``: find every L1C, decide what to do with it, check resources first.

Decisions (one :class:`~s2kit.runs.PlanEntry` per L1C, JSON Lines in the run dir):

* ``done``    a valid L2A made from it is already published (provenance says validated);
* ``todo``    it will be processed;
* ``skipped`` with a reason: ``duplicate`` (same datatake and tile: the highest
  processing baseline wins, then the newest generation), ``baseline-gate``
  (Sen2Cor 2.9 must not process L1C of baseline >= 04.00: it ignores the
  radiometric offset), ``baseline-side`` (a fixed ``sen2cor.baseline`` on the other side of
  04.00 than the L1C's: the L2A would fail offset-mismatch; ``"l1c"`` never is),
  ``old-format``, ``corrupt`` (no MTD_MSIL1C.xml / GRANULE, bad
  zip, a name that is not a product name, or an entry that is not what its name says:
  symlink loop, dangling symlink, FIFO, folder named ``*.zip``, unreadable; the OS
  message is in the reason), ``not-l1c``, ``not-selected``, ``no-dem`` (``sen2cor.dem = "srtm"``, the default,
  and the tile has no DEM folder ``paths.dem_dir/<tile>/`` holding the SRTM zips its
  footprint needs; checked once per tile, nothing hashed). With ``sen2cor.dem = "none"``
  every todo scene says ``no DEM: flat terrain``. Copernicus DEM kinds (Sen2Cor 2.12) are
  checked under ``paths.dem_dir/<kind>/<tile>/``. Empty folders that Google's bucket drops are
  not a reason: the worker recreates them (``repair_empty_dirs``); the planner reads
  the L1C store and never writes into it.

Which Sen2Cor processes a todo scene (``PlanEntry.sen2cor``, and why: ``PlanEntry.route``):
the ``sen2cor.route`` entry that takes its processing baseline (first match wins; the
last entry takes the rest), else ``sen2cor.version``. ``baseline-gate`` applies only when
no route takes the scene, i.e. with one version that must not process the baseline (a route
sending a baseline to such a version is refused at config load). The summary says which
choice was made (one version, a consistent series, or mixed versions) and what it means for
comparability.

The scan is O(n) over directory entries and reads no metadata for well-named
products (the compact name carries baseline, tile, orbit and times), so 100 000
scenes plan in seconds. Preflight refuses, with the numbers, when the L2A disk
cannot take the planned output or a node's memory cannot hold ``mem x tasks``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shlex
import stat
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .config_view import write_config_view
from .dedupe import dedupe
from .dem import dem_problem
from .dem.base import NO_DEM_NOTE as NO_DEM_NOTE  # status and the report show it
from .errors import ConfigError, InputError, S2kitError, display_path
from .fsutil import atomic_write_text
from .inputs import kind_of_mode as _kind_of_mode
from .inputs import os_reason as _os_reason
from .inputs import what_is_there as _what_is_there
from .provenance import published_provenance
from .runs import BatchImmutable, PlanEntry, RunDir, writing
from .safe import (
    EMPTY_DIRS,
    ProductName,
    baseline_key,
    iso_utc,
    parse_product_name,
    repair_empty_dirs,
    strip_product_suffix,
)
from .safe.zipcap import check_zip_members
from .versions import BASELINE_GATE, L1C_BASELINE

if TYPE_CHECKING:  # pydantic: not on the worker's start-up path (issue 17)
    from .config import BatchConfig, Sen2CorConfig

__all__ = [
    "PlanResult",
    "PreflightError",
    "discover",
    "decide",
    "make_plan",
    "EMPTY_DIRS",
    "repair_empty_dirs",
    "GATE",
]

# Sen2Cor version -> first L1C processing baseline it must not process (owned by s2kit.versions).
GATE = BASELINE_GATE


class PreflightError(S2kitError):
    """Resources are short for the planned batch; the message carries the numbers."""


@dataclass(frozen=True)
class Candidate:
    scene: str
    path: Path
    name: ProductName | None
    problem: tuple[str, str] | None  # (reason-code, detail) found while scanning


@dataclass
class PlanResult:
    entries: list[PlanEntry]
    run_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    todo_bytes: int = 0
    preflight: list[str] = field(default_factory=list)
    batch: str = "all"  # the batch file this plan wrote (batches/<batch>.txt)
    batch_scenes: int = 0
    live: int = 0  # todo scenes left out of the batch: queued/running in a live job
    batch_written: bool = True  # False: every todo scene is in a live job, no batch written
    notes: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)  # which Sen2Cor choice, what it means

    def summary(self) -> str:
        parts = [f"{n} {k}" for k, n in sorted(self.counts.items())]
        why = ", ".join(f"{k}: {n}" for k, n in sorted(self.reasons.items()))
        lines = [
            f"plan: {len(self.entries)} L1C product(s): {', '.join(parts) or 'none'}"
            + (f" (skipped: {why})" if why else ""),
            f"plan: written to {display_path(self.run_dir / 'plan.jsonl')}",
        ]
        if not self.batch_written:
            lines.append(
                f"plan: nothing new to submit: {self.live} scene(s) queued/running in live jobs "
                f"(batch {self.batch} unchanged)"
            )
        elif self.batch != "all" or self.live:
            lines.append(
                f"plan: batch {self.batch}: {self.batch_scenes} scene(s)"
                + (f"; {self.live} queued/running in live jobs left out" if self.live else "")
            )
        lines += [f"plan: {n}" for n in self.notes]
        lines += [f"plan: {n}" for n in self.series]
        lines += _dem_summary(self.entries)
        lines += [f"preflight: {p}" for p in self.preflight]
        return "\n".join(lines)


def _dem_summary(entries: list[PlanEntry]) -> list[str]:
    """The plan's lines about DEMs: scenes skipped ``no-dem`` (and the command that fixes it),
    scenes that will run with ``no DEM: flat terrain``."""
    lines = []
    missing = [e for e in entries if e.decision == "skipped" and (e.reason or "").startswith("no-dem:")]
    if missing:
        tiles = sorted({e.mgrs_tile or "?" for e in missing})
        out = (missing[0].reason or "").rpartition(" --out ")[2] or "DEM_DIR"
        kinds = sorted({_fix_kind(e.reason or "") for e in missing})
        fixes = " and ".join(
            _dem_fix(sorted({e.mgrs_tile or "?" for e in missing if _fix_kind(e.reason or "") == k}), out, k)
            for k in kinds
        )
        lines.append(
            f"plan: {len(missing)} scene(s) skipped no-dem (no DEM for tile(s) {', '.join(tiles)}); "
            f"fix: {fixes}, then plan again"
        )
    flat = sum(1 for e in entries if e.decision == "todo" and e.reason == NO_DEM_NOTE)
    if flat:
        lines.append(f'plan: {flat} todo scene(s) with {NO_DEM_NOTE} (sen2cor.dem = "none")')
    return lines


def _fix_kind(reason: str) -> str:
    """The DEM kind a ``no-dem`` reason's fix command prepares (``--source KIND`` / SRTM)."""
    head, sep, tail = reason.partition(" --source ")
    kind = tail.split(" ", 1)[0] if sep else ""
    return kind if kind.startswith("cop-dem-") else "srtm"


def series_summary(cfg: BatchConfig, entries: list[PlanEntry]) -> list[str]:
    """What the Sen2Cor choice of the config means for the todo scenes, in plain words: a
    routed batch (mixed versions: counts per version, and that they are not strictly
    comparable) or a consistent series (one version for every baseline). One version without
    ``series`` says how to process the scenes it skips ``baseline-gate``, if any."""
    sc = cfg.sen2cor
    todo = Counter(e.sen2cor for e in entries if e.decision == "todo")
    total = sum(todo.values())
    if sc.route:
        parts = [f"{e.version} for {todo.get(e.version, 0)} ({e.takes})" for e in sc.route]
        return [
            f"mixed Sen2Cor versions (sen2cor.route), todo scene(s): {'; '.join(parts)}",
            "L2A from different Sen2Cor versions are not strictly comparable (algorithms, look-up tables "
            "and DEM change between versions): keep the version as a variable of a time series "
            '(status, report and STAC name it per scene), or set series = "consistent" with one '
            "version that processes every baseline",
        ]
    if sc.series == "consistent":
        return [
            f'consistent series (series = "consistent"): all {total} todo scene(s) with Sen2Cor '
            f"{sc.version}, which applies the -1000 radiometric offset of baselines >= 04.00 and none below: "
            "one processor for the whole series, comparable across baselines"
        ]
    gated = sum(
        1 for e in entries if e.decision == "skipped" and (e.reason or "").startswith("baseline-gate:")
    )
    if gated:  # one version that must not process some baselines: say how to process them
        return [
            f"{gated} scene(s) skipped baseline-gate: Sen2Cor {sc.version} must not process their baseline; "
            "to process them, route them to 2.10 or later (sen2cor.route) or process every scene with one "
            'such version (series = "consistent"): see the batch guide'
        ]
    return []


def route_of(sc: Sen2CorConfig, baseline: str) -> tuple[str, str]:
    """(version, why) for an L1C of *baseline*: the route entry that takes it, else the one
    version of the config (``PlanEntry.sen2cor`` / ``PlanEntry.route``)."""
    entry, i = sc.route_for(baseline)
    if entry is not None:
        if entry.below_baseline is not None:
            return entry.version, f"sen2cor.route[{i}]: baseline {baseline} is below {entry.below_baseline}"
        return entry.version, f"sen2cor.route[{i}]: baseline {baseline}, every other baseline"
    if sc.series == "consistent":
        return sc.version, f'series = "consistent": every scene with Sen2Cor {sc.version}'
    return sc.version, f"sen2cor.version = {sc.version} (one version for the batch)"


def route_problem(sc: Sen2CorConfig, entry: PlanEntry) -> str | None:
    """One line when a todo plan entry names another Sen2Cor version than the config routes its
    L1C baseline to, or a version whose baseline gate it passes (a hand-edited plan.jsonl line:
    Sen2Cor 2.9 on an L1C >= 04.00 writes an L2A without the -1000 offset that validates clean);
    None when it is the plan's own choice (or a plan written before routing: ``sen2cor`` unset)."""
    if entry.decision != "todo" or entry.processing_baseline is None:
        return None
    version, why = route_of(sc, entry.processing_baseline)
    if entry.sen2cor is not None and entry.sen2cor != version:
        return (
            f"expected Sen2Cor {version} for {entry.scene} in plan.jsonl ({why}), found {entry.sen2cor!r} "
            "(the plan was edited, or made with another config); run `s2kit plan` again"
        )
    runs = entry.sen2cor or sc.version  # what the worker runs (BatchConfig.sen2cor_for)
    gate = GATE.get(runs)
    pb = entry.processing_baseline
    if gate is not None and re.fullmatch(r"[0-9]{2}\.[0-9]{2}", pb) and baseline_key(pb) >= gate:
        return (
            f"expected {entry.scene} in plan.jsonl skipped baseline-gate (Sen2Cor {runs} ignores the "
            f"radiometric offset of baseline {pb}), found it todo with Sen2Cor {runs} "
            "(the plan was edited, or made with another config); run `s2kit plan` again"
        )
    return None


def _tree_size(path: Path) -> int:
    """Bytes of a zip, or of the files in a product folder (what ``os.walk`` + ``os.stat`` of each
    file gave: symlinks to files count with their target's size, symlinked folders are not
    entered, what cannot be read counts 0) - by ``os.scandir``, without a path join per file:
    for .SAFE folders this walk was the planner's largest cost."""
    if path.is_file():
        return path.stat().st_size
    return _folder_size(os.fspath(path))


def _folder_size(folder: str) -> int:
    total = 0
    todo = [folder]  # a stack, not recursion: a hostile deep tree cannot exhaust the Python stack
    while todo:
        try:
            with os.scandir(todo.pop()) as it:
                entries = list(it)
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir():
                    if not e.is_symlink():
                        todo.append(e.path)
                    continue
                total += e.stat().st_size
            except OSError:
                continue
    return total


def _check_dir_product(path: Path) -> tuple[str, str] | None:
    try:
        names = {n.upper(): n for n in os.listdir(path)}
    except OSError as exc:
        return ("corrupt", f"unreadable product folder: {_os_reason(exc)}")
    if "MTD_MSIL1C.XML" not in names:
        return ("corrupt", "no MTD_MSIL1C.xml at its top level")
    if "GRANULE" not in names:
        return ("corrupt", "no GRANULE folder")
    modes: dict[str, int] = {}
    for key in ("MTD_MSIL1C.XML", "GRANULE"):
        try:
            modes[key] = os.stat(path / names[key]).st_mode
        except OSError as exc:  # a dangling or looping symlink inside the product
            return ("corrupt", f"{display_path(names[key])}: {_os_reason(exc)}")
    if not stat.S_ISREG(modes["MTD_MSIL1C.XML"]):
        return ("corrupt", f"{display_path(names['MTD_MSIL1C.XML'])} is not a regular file")
    if not stat.S_ISDIR(modes["GRANULE"]):
        return ("corrupt", "GRANULE is not a folder")
    # Empty folders GCS drops (AUX_DATA, HTML, ...) are NOT a reason to skip: the worker
    # recreates them (in place, or in a scratch symlink tree when the input is read-only).
    # The planner itself never writes into the L1C store.
    return None


def _check_zip_product(path: Path) -> tuple[str, str] | None:
    try:
        # O_NONBLOCK: opening a FIFO named *.zip must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return ("corrupt", f"unreadable zip: {_os_reason(exc)}")
    with os.fdopen(fd, "rb") as fh:
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                return ("corrupt", f"expected a zip file, found {_kind_of_mode(mode)}")
            check_zip_members(fh, path)  # before zipfile builds a ZipInfo per member
            with zipfile.ZipFile(fh) as zf:
                names = {n.rstrip("/").rsplit("/", 1)[-1].upper() for n in zf.namelist()}
        except InputError as exc:
            return ("corrupt", exc.message)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            return ("corrupt", f"unreadable zip ({exc})")
    if "MTD_MSIL1C.XML" not in names:
        return ("corrupt", "no MTD_MSIL1C.xml in the zip")
    return None


def _entry_kind(e: os.DirEntry[str]) -> tuple[int | None, str | None]:
    """(st_mode following symlinks, or None; the OS error text when it cannot be stat'ed)."""
    try:
        if not e.is_symlink():  # the common case: d_type from the directory listing, no stat
            if e.is_dir(follow_symlinks=False):
                return stat.S_IFDIR, None
            if e.is_file(follow_symlinks=False):
                return stat.S_IFREG, None
        return e.stat().st_mode, None
    except OSError as exc:  # dangling link, symlink loop, unreadable parent
        try:
            link = e.is_symlink()
        except OSError:
            link = False
        if link:
            what = "dangling" if exc.errno == errno.ENOENT else "unusable"
            return None, f"{what} symlink: {_os_reason(exc)}"
        return None, _os_reason(exc)


def discover(l1c_dirs: Iterable[Path], check: bool = True) -> list[Candidate]:
    """Every ``*.SAFE`` and ``*.zip`` entry at the top of the L1C dirs, each with a problem or none.

    A hostile or broken entry (symlink loop, dangling symlink, FIFO, a folder named
    ``*.zip``, a file named ``*.SAFE``, an unreadable entry) is never an exception: it
    becomes a candidate skipped as ``corrupt`` with the OS message, and the scan goes on.
    """
    out: list[Candidate] = []
    index: dict[str, int] = {}  # scene -> its candidate in out
    broken: set[str] = set()  # scenes whose kept entry is itself unusable (dangling link, FIFO, ...)
    for d in l1c_dirs:
        if not d.is_dir():
            raise InputError(f"expected an L1C directory, found {_what_is_there(d)}", d)
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise InputError(f"expected a readable L1C directory, found: {_os_reason(exc)}", d) from exc
        for e in entries:
            low = e.name.lower()
            if not (low.endswith(".safe") or low.endswith(".zip")):
                continue
            scene = strip_product_suffix(e.name)
            if scene in index and scene not in broken:
                continue  # same product as folder and zip: the first dir in the list wins
            mode, entry_problem = _entry_kind(e)
            if entry_problem is None and low.endswith(".safe") and not stat.S_ISDIR(mode or 0):
                entry_problem = f"expected a .SAFE folder, found {_kind_of_mode(mode or 0)}"
            elif entry_problem is None and low.endswith(".zip") and not stat.S_ISREG(mode or 0):
                entry_problem = f"expected a zip file, found {_kind_of_mode(mode or 0)}"
            if scene in index and entry_problem is not None:
                continue  # a broken entry never replaces another
            cand = _candidate(scene, Path(e.path), e.name, mode or 0, entry_problem, check)
            if scene in index:  # a usable entry replaces a broken one of the same scene
                out[index[scene]] = cand
                broken.discard(scene)
                continue
            index[scene] = len(out)
            out.append(cand)
            if entry_problem is not None:
                broken.add(scene)
    return out


def _candidate(
    scene: str, path: Path, entry_name: str, mode: int, entry_problem: str | None, check: bool
) -> Candidate:
    try:
        name: ProductName | None = parse_product_name(entry_name)
    except InputError:
        name = None
    problem = None
    if entry_problem is not None:
        problem = ("corrupt", entry_problem)
    elif name is not None and name.naming == "legacy":
        problem = ("old-format", "pre-December-2016 long-name product (PSD 13): unsupported")
    elif name is not None and name.level != "L1C":
        problem = ("not-l1c", f"a {name.level} product, not L1C")
    elif name is None:
        problem = ("corrupt", "not a Sentinel-2 L1C product name")
    elif check:
        problem = _check_dir_product(path) if stat.S_ISDIR(mode) else _check_zip_product(path)
    return Candidate(scene, path, name, problem)


def _candidate_name(c: Candidate) -> ProductName:
    assert c.name is not None
    return c.name


def decide(cands: list[Candidate], cfg: BatchConfig, published: dict[str, Path]) -> list[PlanEntry]:
    """Pure decision step (no I/O besides sizes of todo products)."""
    sel = cfg.select
    entries: dict[str, PlanEntry] = {}
    eligible: list[Candidate] = []  # the duplicate policy (s2kit.dedupe) runs over these
    for c in cands:
        n = c.name
        if n is None:
            base = PlanEntry(scene=c.scene, l1c_path=str(c.path), decision="todo")
        else:  # one constructor call, not a replace() per entry (a hot spot at 100 000 entries)
            base = PlanEntry(
                scene=c.scene,
                l1c_path=str(c.path),
                decision="todo",
                mgrs_tile=n.mgrs_tile,
                sensing_start=iso_utc(n.sensing_start),
                processing_baseline=n.processing_baseline,
                relative_orbit=n.relative_orbit,
            )
        if c.problem is not None:
            entries[c.scene] = replace(base, decision="skipped", reason=f"{c.problem[0]}: {c.problem[1]}")
            continue
        assert n is not None and n.mgrs_tile is not None and n.processing_baseline is not None
        if sel.tiles and n.mgrs_tile not in sel.tiles:
            entries[c.scene] = replace(base, decision="skipped", reason=f"not-selected: tile {n.mgrs_tile}")
            continue
        day = n.sensing_start.date()
        if (sel.start and day < sel.start) or (sel.end and day > sel.end):
            entries[c.scene] = replace(base, decision="skipped", reason=f"not-selected: date {day}")
            continue
        version, why = route_of(cfg.sen2cor, n.processing_baseline)
        gate = GATE.get(version)  # only without a route: a route never sends a baseline past a gate
        if gate is not None and baseline_key(n.processing_baseline) >= gate:
            entries[c.scene] = replace(
                base,
                decision="skipped",
                reason=(
                    f"baseline-gate: processing baseline {n.processing_baseline} >= "
                    f"{gate[0]:02d}.{gate[1]:02d} carries a radiometric offset Sen2Cor {version} "
                    "ignores"
                ),
            )
            continue
        entries[c.scene] = replace(base, sen2cor=version, route=why)
        eligible.append(c)
    # one product per datatake + tile: highest baseline, then newest generation
    for drop in dedupe(eligible, _candidate_name).dropped:
        reason = f"duplicate: superseded by {drop.winner.scene}"
        entries[drop.item.scene] = replace(entries[drop.item.scene], decision="skipped", reason=reason)
    out = []
    dem_checked: dict[tuple[str | None, str], str | None] = {}  # (tile, kind) -> problem: one check each
    kinds: dict[str | None, tuple[str, str]] = {}  # version -> (DEM kind, output baseline): one merge each
    for c in cands:
        e = entries[c.scene]
        if e.decision == "todo":
            if e.sen2cor not in kinds:
                sc = cfg.sen2cor_for(e.sen2cor)
                kinds[e.sen2cor] = (sc.dem or "srtm", str(sc.baseline))
            kind, output = kinds[e.sen2cor]
            side = _baseline_side_problem(output, e.processing_baseline)
            if side is not None and c.scene not in published:
                out.append(replace(e, decision="skipped", reason=side, sen2cor=None, route=None))
                continue
            if c.scene in published:
                e = replace(
                    e,
                    decision="done",
                    reason="valid L2A published",
                    l2a=str(published[c.scene]),
                    sen2cor=None,  # the provenance beside it says which version made it
                    route=None,
                )
            elif kind == "none":
                e = replace(e, reason=NO_DEM_NOTE, size_bytes=_tree_size(c.path))
            else:
                _require_dem_dir(cfg)
                if (e.mgrs_tile, kind) not in dem_checked:
                    dem_checked[(e.mgrs_tile, kind)] = _dem_problem(cfg.paths.dem_dir, e.mgrs_tile, kind)
                problem = dem_checked[(e.mgrs_tile, kind)]
                if problem is not None:
                    assert cfg.paths.dem_dir is not None
                    fix = _dem_fix([e.mgrs_tile or "?"], shlex.quote(display_path(cfg.paths.dem_dir)), kind)
                    e = replace(e, decision="skipped", reason=f"no-dem: {problem}; fix: {fix}")
                else:
                    e = replace(e, size_bytes=_tree_size(c.path))
        out.append(e)
    return out


def _baseline_side_problem(output: str, l1c: str | None) -> str | None:
    """``baseline-side: ...`` when a fixed output baseline (``sen2cor.baseline``) is on the other
    side of 04.00 than the L1C's: Sen2Cor writes the -1000 BOA offset exactly for L1C >= 04.00,
    so that L2A would fail offset-mismatch after a whole Sen2Cor run. ``l1c`` never is."""
    if output == L1C_BASELINE or l1c is None:
        return None
    mo, ml = re.fullmatch(r"([0-9]{2})\.([0-9]{2})", output), re.fullmatch(r"([0-9]{2})\.([0-9]{2})", l1c)
    if not (mo and ml):
        return None
    offset = (4, 0)
    if ((int(mo[1]), int(mo[2])) >= offset) == ((int(ml[1]), int(ml[2])) >= offset):
        return None
    return (
        f"baseline-side: expected sen2cor.baseline on the same side of 04.00 as the L1C's {l1c}, found "
        f"{output} (Sen2Cor writes the -1000 offset exactly for L1C >= 04.00: the L2A would fail "
        'offset-mismatch); set sen2cor.baseline = "l1c" (each L1C\'s own)'
    )


def _dem_problem(dem_dir: Path | None, tile: str | None, kind: str) -> str | None:
    """:func:`s2kit.dem.dem_problem` for the DEM *kind* a scene's Sen2Cor reads."""
    return dem_problem(dem_dir, tile, kind=kind)


def _dem_fix(tiles: Iterable[str], out: str, kind: str = "srtm") -> str:
    flags = " ".join(f"--tile {t}" for t in tiles)
    source = "SRTM_ZIPS_OR_URL" if kind == "srtm" else kind
    return f"s2kit dem prepare {flags} --source {source} --out {out}"


def _require_dem_dir(cfg: BatchConfig) -> None:
    """``sen2cor.dem = "srtm"`` needs ``paths.dem_dir``: refuse (one line) when it is not there."""
    dem_dir = cfg.paths.dem_dir
    if dem_dir is not None and dem_dir.is_dir():
        return
    found = "no key 'paths.dem_dir'" if dem_dir is None else f"no folder at {display_path(dem_dir)}"
    raise ConfigError(
        "expected key 'paths.dem_dir' to name a folder of DEM sets (<dem_dir>/<tile>/srtm_XX_YY.zip, "
        f"made by 's2kit dem prepare'), found {found}; or set sen2cor.dem = \"none\" to process with "
        "flat terrain",
        cfg.source,
    )


def _gb(n: float) -> str:
    return f"{n / 1024**3:.1f} GB"


def preflight(cfg: BatchConfig, todo: list[PlanEntry], node_memory_mb: int | None) -> list[str]:
    """Check disk and memory; raise PreflightError with the numbers, else return notes.

    The checks are ``s2kit doctor``'s (:func:`s2kit.doctor.disk_check`, :func:`memory_check`).
    """
    from .doctor import FAIL, disk_check, existing_parent, memory_check

    disk = disk_check(cfg.paths.l2a_dir, sum(e.size_bytes for e in todo), len(todo))
    if disk.status == FAIL:
        raise PreflightError(disk.value, existing_parent(cfg.paths.l2a_dir))
    memory = memory_check(cfg, node_memory_mb)
    if memory.status == FAIL:
        raise PreflightError(memory.value, cfg.source)
    return [disk.value, memory.value]


def make_plan(
    cfg: BatchConfig,
    run_dir: Path | None = None,
    check_resources: bool = True,
    node_memory_mb: int | None = None,
) -> PlanResult:
    """Scan, decide, preflight, then write ``config.json``, ``plan.jsonl`` and the batch file.

    The batch holds the todo scenes that are not queued/running in a live job of this run
    dir; it is ``batches/all.txt`` for the first plan and ``all-2``, ``all-3``, ... after
    that (see :func:`_plan_batch_name`); ``plan.batch`` names it for ``submit``. When every
    todo scene is in a live job no (empty) batch is written and ``plan.batch`` is unchanged.
    """
    rd = RunDir(run_dir or cfg.paths.run_dir)
    cands = discover(cfg.paths.l1c_dirs)
    entries = decide(cands, cfg, published_provenance(cfg.paths.l2a_dir))
    todo = [e for e in entries if e.decision == "todo"]
    result = PlanResult(entries=entries, run_dir=rd.path)
    result.counts = dict(Counter(e.decision for e in entries))
    result.reasons = dict(
        Counter((e.reason or "").split(":", 1)[0] for e in entries if e.decision == "skipped")
    )
    result.todo_bytes = sum(e.size_bytes for e in todo)
    result.series = series_summary(cfg, entries)
    if check_resources:
        if node_memory_mb is None:
            from .schedulers import get_scheduler

            node_memory_mb = get_scheduler(cfg.scheduler.kind).node_memory_mb(cfg.scheduler.queue)
        result.preflight = preflight(cfg, todo, node_memory_mb)
    # version-homogeneous runs of lines, in route order: submit sends one array per (version, chunk)
    order = {v: i for i, v in enumerate(cfg.sen2cor.versions())}
    batch_scenes = [e.scene for e in sorted(todo, key=lambda e: order.get(e.sen2cor or "", -1))]
    if rd.plan_file.is_file() and rd.jobs_file.is_file():
        live, unconfirmed = _live_scenes(cfg, rd)
        result.live = sum(sc in live for sc in batch_scenes)
        batch_scenes = [sc for sc in batch_scenes if sc not in live]
        if unconfirmed:
            result.notes.append(
                f"{len(unconfirmed)} scene(s) of earlier jobs whose scheduler cannot be asked are planned "
                "again; the worker's scene lock keeps a scene from running twice"
            )
    with writing(rd.path):
        rd.path.mkdir(parents=True, exist_ok=True)
    with writing(rd.config_file):
        atomic_write_text(rd.config_file, json.dumps(cfg.to_json_dict(), indent=2, sort_keys=True) + "\n")
    write_config_view(rd, cfg)  # what the worker reads without pydantic (s2kit.config_view)
    rd.write_plan(entries)
    if not batch_scenes and result.live and rd.batch_file(rd.plan_batch()).is_file():
        # every todo scene is queued/running in a live array: an empty batch would only be a
        # file that submit finds nothing in; the latest plan batch stays the one to submit
        result.batch, result.batch_written = rd.plan_batch(), False
        return result
    while True:
        result.batch = _plan_batch_name(rd, batch_scenes)
        try:
            rd.write_batch(result.batch, batch_scenes)
        except BatchImmutable:  # a concurrent plan took the name with other scenes
            continue
        break
    result.batch_scenes = len(batch_scenes)
    rd.set_plan_batch(result.batch)
    return result


def _plan_batch_name(rd: RunDir, scenes: list[str]) -> str:
    """``all`` for the first plan of a run dir; a re-plan writes ``all-2``, ``all-3``, ...

    Batch files are never rewritten (a queued array may index them); the latest plan
    batch is reused only when it holds exactly these scenes.
    """
    current = rd.plan_batch()
    f = rd.batch_file(current)
    if not f.exists():
        return current
    with contextlib.suppress(OSError):
        if f.read_bytes() == "".join(s + "\n" for s in scenes).encode("utf-8"):
            return current
    n = 2
    while rd.batch_file(f"all-{n}").exists():
        n += 1
    return f"all-{n}"


def _live_scenes(cfg: BatchConfig, rd: RunDir) -> tuple[set[str], set[str]]:
    """Scenes queued or running in a live job of this run dir (not to be planned into
    another batch), and those whose job's scheduler cannot be asked (planned again)."""
    from .schedulers import ACTIVE
    from .status import run_status

    report = run_status(cfg, rd)
    unreachable = {e.split(":", 1)[0] for e in report.scheduler_errors}
    live: set[str] = set()
    unconfirmed: set[str] = set()
    for s in report.scenes:
        if s.status not in ACTIVE:
            continue
        if s.task == "unknown" and (s.job or "").split(" ", 1)[0] in unreachable:
            unconfirmed.add(s.scene)
        else:
            live.add(s.scene)
    return live, unconfirmed
