"""MGRS tile names: the one rule every command and the config apply (no geometry here).

:mod:`s2kit.tiles` adds the geometry (UTM bounds, SRTM tiles); this module imports nothing heavy
so the config and ``fetch`` can use the same rule.
"""

from __future__ import annotations

import re

from .errors import InputError

__all__ = ["TileError", "normalize_tile"]

# zone, latitude band (C-X without I/O), column letter, row letter
_TILE_RE = re.compile(r"^(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z])([A-HJ-NP-V])\Z", re.ASCII)
# MGRS 100 km column letters cycle with the zone (zone % 3 == 1: A-H, 2: J-R, 0: S-Z)
_COLUMN_SETS = {1: "ABCDEFGH", 2: "JKLMNPQR", 0: "STUVWXYZ"}


class TileError(InputError):
    """An MGRS tile name that is invalid, or a tile that SRTM cannot serve."""


def normalize_tile(text: str) -> str:
    """``'T17SQV'``, ``'17sqv'``, ``' 17SQV '``, ``'7HFE'`` -> ``'17SQV'`` / ``'07HFE'``.

    A bad name raises :class:`TileError`: zone 01-60, a latitude band C-X and the column
    and row letters MGRS allows (the column set depends on the zone).
    """
    raw = text.strip().upper()
    name = raw[1:] if raw.startswith("T") and len(raw) in (5, 6) else raw
    match = _TILE_RE.match(name)
    if match is None:
        raise TileError(
            f"expected an MGRS tile like 17SQV, found {text!r} "
            "(zone, latitude band, two letters; T17SQV is accepted too)"
        )
    zone = int(match.group(1))
    if not 1 <= zone <= 60:
        raise TileError(
            f"expected an MGRS tile like 17SQV with a UTM zone 01-60, found zone {zone} in {text!r}"
        )
    column = match.group(3)
    letters = _COLUMN_SETS[zone % 3]
    if column not in letters:
        raise TileError(
            f"expected an MGRS tile like 17SQV with a column letter of {letters[0]}-{letters[-1]} "
            f"in zone {zone}, found {column!r} in {text!r}"
        )
    return f"{zone:02d}{match.group(2)}{column}{match.group(4)}"
