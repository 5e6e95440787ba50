"""The measuring rules every benchmark of ``benchmarks/run.py`` follows (issue 17).

* Both sides are whole processes started with ``subprocess`` (what a user runs: interpreter
  start, imports, the work, exit), timed from start to exit with ``time.perf_counter``.
* A and B alternate, and the order flips every pair (A B, B A, A B, ...) so that a slow spell
  of the machine lands on both; at least 5 pairs.
* Every run gets a fresh output folder, made before the clock starts (not timed).
* Reported: the median of each side, and the median, min and max of the per-pair ratios A/B
  (time, so lower is better for s2kit); no "best of".
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: (argv list, env overrides or None, cwd or None)
Command = tuple[Sequence[str], Mapping[str, str] | None, Path | None]


class BenchError(RuntimeError):
    """A benchmark command failed (its stderr's last line says why)."""


def run_timed(cmd: Command) -> float:
    argv, env, cwd = cmd
    full_env = {**os.environ, **env} if env else None
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(argv), env=full_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise BenchError(f"exit {proc.returncode}: {' '.join(map(str, argv))[:200]}: {' | '.join(tail)}")
    return dt


def run_all(cmds: Sequence[Command]) -> float:
    """Several processes one after the other (e.g. ``plan`` then ``submit``), timed together."""
    return sum(run_timed(c) for c in cmds)


@dataclass
class Pairs:
    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [x / y for x, y in zip(self.a, self.b, strict=True)]


def alternate(
    prepare_a: Callable[[int], Sequence[Command]],
    prepare_b: Callable[[int], Sequence[Command]],
    runs: int,
    after: Callable[[int], None] | None = None,
) -> Pairs:
    """*runs* pairs; ``prepare_x(k)`` makes run k's fresh folders (untimed) and returns its commands."""
    pairs = Pairs()
    for k in range(runs):
        sides = ("a", "b") if k % 2 == 0 else ("b", "a")
        for side in sides:
            cmds = (prepare_a if side == "a" else prepare_b)(k)
            getattr(pairs, side).append(run_all(cmds))
        if after is not None:
            after(k)
    return pairs


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@dataclass
class Row:
    """One line of the table. ``s2kit``/``reference`` in seconds (medians) unless ``unit`` says."""

    measure: str
    s2kit: float | None
    reference: float | None
    ratio: float | None  # median of the per-pair ratios s2kit/reference
    ratio_min: float | None
    ratio_max: float | None
    target: str
    met: bool | None  # None: no target, or no reference here
    reference_name: str = ""
    note: str = ""
    unit: str = "s"
    runs: int = 0
    samples: dict[str, list[float]] = field(default_factory=dict)
    bench: str = ""  # which benchmark of run.py measured it (metadata, fetch, ...)
    measured: str = ""  # "<date>, commit <sha>, load <1/5/15>" of the run that measured it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


def row_from_pairs(
    measure: str,
    pairs: Pairs,
    *,
    target: str,
    met: Callable[[float, float, float], bool] | None,
    reference_name: str,
    note: str = "",
    scale_a: float = 1.0,
) -> Row:
    """A row from A/B pairs; *met(s2kit, reference, ratio)* decides the target; *scale_a*
    multiplies A (an extrapolation, which the note must say)."""
    a = [x * scale_a for x in pairs.a]
    ratios = [x / y for x, y in zip(a, pairs.b, strict=True)]
    ma, mb, mr = statistics.median(a), statistics.median(pairs.b), statistics.median(ratios)
    return Row(
        measure=measure,
        s2kit=ma,
        reference=mb,
        ratio=mr,
        ratio_min=min(ratios),
        ratio_max=max(ratios),
        target=target,
        met=met(ma, mb, mr) if met is not None else None,
        reference_name=reference_name,
        note=note,
        runs=len(ratios),
        samples={"s2kit": pairs.a, "reference": pairs.b},
    )


# ----------------------------------------------------------------------------- the table
def _num(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "—"
    if unit != "s":
        return f"{value:.3g} {unit}"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def _ratio(row: Row) -> str:
    if row.ratio is None:
        return "—"
    spread = f" ({row.ratio_min:.2f}–{row.ratio_max:.2f})" if row.ratio_min is not None else ""
    return f"{row.ratio:.2f}×{spread}"


def _met(row: Row) -> str:
    return {True: "met", False: "not met", None: "—"}[row.met]


def cells(row: Row) -> list[str]:
    return [
        row.measure,
        _num(row.s2kit, row.unit),
        _num(row.reference, row.unit),
        _ratio(row),
        row.target,
        _met(row),
    ]


HEADER = ["measure", "s2kit", "reference", "ratio (min–max)", "target", "met"]


def text_table(rows: Sequence[Row]) -> str:
    table = [HEADER, *[cells(r) for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(rows: Sequence[Row]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(esc(c) for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)
