"""Quicklooks made fast but unchanged to the eye (issue 17, item 6).

The JPEG 2000 is decoded at the reduced resolution level that covers the thumbnail (GDAL's
JP2OpenJPEG overviews, taken by ``read(out_shape=...)``), and the PNG is compressed at zlib
level 1. The thumbnail must look like the full-resolution image averaged down: compared here
with a tolerance against a full-resolution decode averaged in numpy.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2kit.quicklook import render_quicklook
from tests.support.l2a_rasters import r60_files, write_jp2
from tests.support.safe_trees import build_l2a_tree

REAL = 1830  # a real 60 m grid


def idat(png: bytes) -> bytes:
    pos, out = 8, b""
    while pos + 8 <= len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        if png[pos + 4 : pos + 8] == b"IDAT":
            out += png[pos + 8 : pos + 8 + n]
        pos += 12 + n
    return out


def png_rgb(png: bytes, width: int, height: int) -> np.ndarray:
    """The RGB pixels of an s2kit quicklook PNG (8-bit RGB, every row filtered "Up")."""
    raw = np.frombuffer(zlib.decompress(idat(png)), dtype=np.uint8).reshape(height, 1 + width * 3)
    assert np.all(raw[:, 0] == 2)
    rows = np.cumsum(raw[:, 1:].astype(np.uint64), axis=0) % 256  # undo "Up", modulo 256
    return np.moveaxis(rows.astype(np.uint8).reshape(height, width, 3), -1, 0)


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    root = build_l2a_tree(tmp_path_factory.mktemp("ql"), "33XWJ")
    y, x = np.mgrid[0:REAL, 0:REAL].astype(np.float64)
    rng = np.random.default_rng(17)
    tci = np.stack(
        [
            np.clip(
                120 + 90 * np.sin(x / (90 + 20 * k)) * np.cos(y / (130 + 15 * k)) + rng.normal(0, 4, x.shape),
                1,
                255,
            )
            for k in range(3)
        ]
    ).astype(np.uint8)
    tci[:, :200, :300] = 0  # no data in a corner
    write_jp2(r60_files(root)["TCI"], tci, 32633, 399960.0, 9000000.0, 60.0)  # lossless, GDAL's tiling
    return root, tci


def test_quicklook_png_is_compressed_at_zlib_level_1(product: tuple[Path, np.ndarray]) -> None:
    """Defect: the PNG was deflated at zlib level 6 (~25 % slower than 1 for ~3 % smaller files)."""
    ql = render_quicklook(product[0])
    header = idat(ql.png)[:2]
    assert header[0] == 0x78 and (header[0] << 8 | header[1]) % 31 == 0
    assert header[1] >> 6 == 0, f"FLEVEL {header[1] >> 6}: expected 0 (zlib level 1, the fastest)"


def test_reduced_resolution_quicklook_looks_like_the_full_resolution_average(
    product: tuple[Path, np.ndarray],
) -> None:
    root, tci = product
    tci_file = r60_files(root)["TCI"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(tci_file) as src:
            overviews = src.overviews(1)
            assert np.array_equal(src.read(), tci)  # lossless: the full-resolution decode is the image
    assert overviews and max(overviews) >= 8  # reduced levels exist (what the thumbnail decodes)
    ql = render_quicklook(root)
    assert (ql.width, ql.height) == (128, 128) and ql.method == "TCI 60m"
    ours = png_rgb(ql.png, ql.width, ql.height).astype(np.float64)
    # reference: each thumbnail pixel = the mean of the full-resolution pixels it covers
    edges = np.linspace(0, REAL, 129).round().astype(int)
    ref = np.empty((3, 128, 128))
    for i in range(128):
        for j in range(128):
            ref[:, i, j] = tci[:, edges[i] : edges[i + 1], edges[j] : edges[j + 1]].mean(axis=(1, 2))
    inside = np.ones((128, 128), dtype=bool)
    inside[: int(np.ceil(200 / REAL * 128)) + 1, : int(np.ceil(300 / REAL * 128)) + 1] = (
        False  # the corner's edge
    )
    diff = np.abs(ours - ref)[:, inside]
    assert diff.mean() < 3.0, f"mean difference {diff.mean():.2f} of 255"
    assert diff.max() <= 12, f"max difference {diff.max():.1f} of 255"
    corner = ours[:, : int(200 / REAL * 128) - 1, : int(300 / REAL * 128) - 1]
    assert np.all(corner == 0)  # no data stays transparent black
