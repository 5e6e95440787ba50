"""The duplicate policy, as one pure function shared by ``s2kit fetch`` and ``s2kit plan``.

The same datatake over the same tile can exist several times: reprocessed with another
processing baseline (``_N0300_`` and ``_N0301_``), or regenerated with the same baseline (the
last name field, the product discriminator / generation time, differs). Sen2Cor must see one
of them. The rule:

* one product per **datatake + tile**: spacecraft, datatake sensing start, relative orbit and
  MGRS tile - all read from the compact product name (ESA naming convention,
  ``MMM_MSIXXX_YYYYMMDDHHMMSS_Nxxyy_ROOO_Txxxxx_<discriminator>``);
* the **highest processing baseline** wins, then the **newest generation**;
* a tie (the same name twice) keeps the first one seen.

No I/O, no clock: the same input gives the same answer, in the input order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from .safe import ProductName, baseline_key

__all__ = ["Deduped", "Dropped", "datatake_key", "dedupe", "preference"]

T = TypeVar("T")

DatatakeKey = tuple[str, str, int, str]
Preference = tuple[tuple[int, int], datetime]


def datatake_key(name: ProductName) -> DatatakeKey:
    """What makes two products "the same datatake over the same tile"."""
    return (name.spacecraft or "", name.sensing_start.isoformat(), name.relative_orbit, name.mgrs_tile or "")


def preference(name: ProductName) -> Preference:
    """Sort key of the policy: higher wins (baseline first, then generation time)."""
    baseline = baseline_key(name.processing_baseline) if name.processing_baseline else (-1, -1)
    return baseline, name.discriminator


@dataclass(frozen=True)
class Dropped(Generic[T]):
    """A duplicate that is not used, and the product that is used instead."""

    item: T
    winner: T


@dataclass(frozen=True)
class Deduped(Generic[T]):
    """*kept*: one item per datatake + tile (input order); *dropped*: the others, with their winner."""

    kept: list[T]
    dropped: list[Dropped[T]]


def dedupe(items: Iterable[T], name_of: Callable[[T], ProductName]) -> Deduped[T]:
    """Apply the duplicate policy to *items*; *name_of* gives each item's parsed product name."""
    seq = list(items)
    best: dict[DatatakeKey, int] = {}
    for index, item in enumerate(seq):
        name = name_of(item)
        key = datatake_key(name)
        current = best.get(key)
        if current is None or preference(name) > preference(name_of(seq[current])):
            best[key] = index
    winners = set(best.values())
    kept = [item for index, item in enumerate(seq) if index in winners]
    dropped = [
        Dropped(item, seq[best[datatake_key(name_of(item))]])
        for index, item in enumerate(seq)
        if index not in winners
    ]
    return Deduped(kept, dropped)
