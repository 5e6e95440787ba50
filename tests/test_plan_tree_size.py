"""The planner's size of a todo product (issue 17 item 7: scandir instead of os.walk + a stat per
file) must stay what os.walk gave, hostile trees included."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from s2kit.plan import _tree_size


def walk_size(path: Path) -> int:
    """The old implementation, kept here as the reference."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, f)).st_size
    return total


def test_tree_size_is_what_os_walk_gave_with_links_fifos_and_unicode(
    hostile_dir: Path, tmp_path: Path
) -> None:
    root = hostile_dir / "S2A_MSIL1C_20210602T160829_N0301_R140_T17SQV_20210602T190829.SAFE"
    granule = root / "GRANULE" / "L1C_T17SQV_A031000_20210602T160829" / "IMG_DATA"
    granule.mkdir(parents=True)
    (root / "MTD_MSIL1C.xml").write_bytes(b"x" * 1234)
    (granule / "B01.jp2").write_bytes(b"y" * 5000)
    (root / "AUX_DATA").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big.bin").write_bytes(b"z" * 70_000)
    (root / "link-to-file").symlink_to(outside / "big.bin")  # counts with its target's size
    (root / "link-to-folder").symlink_to(outside)  # not entered
    (root / "dangling").symlink_to(tmp_path / "nothing")  # counts 0
    os.mkfifo(root / "fifo")
    (root / "ünïcødé $(x) 'q'.txt").write_bytes(b"u" * 17)
    deep = root / "deep"
    for i in range(40):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "leaf").write_bytes(b"l" * 3)
    assert _tree_size(root) == walk_size(root) == 1234 + 5000 + 70_000 + 17 + 3
    zipped = tmp_path / "p.zip"
    zipped.write_bytes(b"PK" * 50)
    assert _tree_size(zipped) == walk_size(zipped) == 100
