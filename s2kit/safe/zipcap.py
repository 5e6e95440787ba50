"""The member cap of product zips, checked before :mod:`zipfile` reads the central directory.

``zipfile.ZipFile`` builds one ``ZipInfo`` (~700 bytes) per central-directory entry up front: a
zip of 300 000 empty members costs ~210 MB before anything can refuse it. Real L1C/L2A
``.SAFE.zip`` files hold a few hundred members (13 bands, their quality masks, metadata, HTML
and rep_info: ~100-200 files plus their folders), so :data:`MAX_PRODUCT_ZIP_MEMBERS` = 10 000 is
a margin of ~50x that still bounds the ``ZipInfo`` objects at ~7 MB. The entries are counted by
walking the central directory's fixed headers (no objects), so an end record that lies about the
count does not get past it either.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from ..errors import InputError

__all__ = ["MAX_PRODUCT_ZIP_MEMBERS", "check_zip_members"]

#: the most members a product zip may have (see the module docstring for why this number)
MAX_PRODUCT_ZIP_MEMBERS = 10_000

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes + comment)
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record (56 bytes)
_LOCATOR64 = 20
_CENTRAL = 46  # fixed part of a central directory header


def _central_directory(fh: BinaryIO) -> tuple[int, int, int] | None:
    """(declared member count, central directory start, its size); None when no end record is
    found (zipfile then says what is wrong)."""
    size = fh.seek(0, os.SEEK_END)
    tail_len = min(size, _EOCD.size + 0xFFFF)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < _EOCD.size:
        return None
    _sig, _d, _dcd, _n, total, cd_size, cd_offset, _c = _EOCD.unpack_from(tail, pos)
    end = size - tail_len + pos
    if end >= _LOCATOR64 + _EOCD64.size:  # a zip64 locator just before it: the zip64 record counts
        at = end - _LOCATOR64 - _EOCD64.size
        fh.seek(at)
        rec = fh.read(_EOCD64.size + 4)
        if rec[_EOCD64.size :] == b"PK\x06\x07" and rec[:4] == b"PK\x06\x06":
            total, cd_size = _EOCD64.unpack(rec[: _EOCD64.size])[7:9]
            end = at
    start = end - cd_size
    return (total, start, cd_size) if start >= 0 else None


def check_zip_members(
    fh: BinaryIO, where: str | os.PathLike[str], limit: int = MAX_PRODUCT_ZIP_MEMBERS
) -> None:
    """Refuse (one line) a zip in *fh* with more than *limit* members, before ``zipfile`` opens it."""
    found = _central_directory(fh)
    fh.seek(0)
    if found is None:
        return
    total, start, cd_size = found
    what = f"expected a product zip of at most {limit} members (real Sentinel-2 zips have a few hundred)"
    if total > limit:
        raise InputError(f"{what}, found {total} members; is this a Sentinel-2 product?", where)
    if cd_size > limit * 1024:  # 1 KiB a member: SAFE names are < 200 characters
        raise InputError(
            f"{what}, found a central directory of {cd_size} bytes; is this a Sentinel-2 product?", where
        )
    fh.seek(start)
    cd = fh.read(cd_size)
    fh.seek(0)
    off = count = 0
    while off + _CENTRAL <= len(cd) and cd[off : off + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack_from("<3H", cd, off + 28)
        off += _CENTRAL + n + m + k
        count += 1
        if count > limit:
            raise InputError(f"{what}, found more than {limit} members; is this a Sentinel-2 product?", where)
