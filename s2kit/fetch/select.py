"""Which candidates to fetch (pure): tiles, dates, L1C only, baseline cap, duplicates, known cloud cover."""

from __future__ import annotations

from collections.abc import Sequence

from ..dedupe import dedupe
from ..safe import ProductName, baseline_key, parse_baseline
from .model import RemoteProduct, Selection, product_folder_problem
from .report import FetchedProduct


def select_products(
    cands: Sequence[RemoteProduct], sel: Selection
) -> tuple[list[RemoteProduct], list[FetchedProduct], int]:
    """Apply tiles, dates, L1C-only, ``max_baseline``, the duplicate policy and a known cloud cover.

    Returns ``(chosen, skipped, not_selected)``: *skipped* lists every product that matched the
    tiles and dates but is not fetched, with the reason; *not_selected* counts the others.
    Pure: no I/O; cloud covers that are not known yet are checked later.
    """
    tiles = set(sel.tiles)
    cap = baseline_key(parse_baseline(sel.max_baseline, "--max-baseline")) if sel.max_baseline else None
    skipped: list[FetchedProduct] = []
    eligible: list[RemoteProduct] = []
    not_selected = 0
    seen: set[str] = set()
    for p in cands:
        if p.name in seen:
            continue
        seen.add(p.name)
        unsafe = p.unsafe or product_folder_problem(p.name, parse=False)  # unparsed: not-a-product
        if unsafe is not None:
            skipped.append(FetchedProduct.of(p, "skipped", f"unsafe-name: {unsafe}: refused"))
            continue
        n = p.parsed
        if n is None:
            skipped.append(FetchedProduct.of(p, "skipped", "not-a-product: not a Sentinel-2 product name"))
            continue
        if n.mgrs_tile is not None and n.mgrs_tile not in tiles:
            not_selected += 1
            continue
        if not sel.start <= n.sensing_start.date() <= sel.end:
            not_selected += 1
            continue
        if n.level != "L1C":
            skipped.append(FetchedProduct.of(p, "skipped", f"not-l1c: a {n.level} product"))
            continue
        if n.naming != "compact" or n.processing_baseline is None:
            skipped.append(FetchedProduct.of(p, "skipped", "old-format: pre-December-2016 long name"))
            continue
        if cap is not None and baseline_key(n.processing_baseline) > cap:
            skipped.append(
                FetchedProduct.of(
                    p, "skipped", f"over-max-baseline: {n.processing_baseline} > {sel.max_baseline}"
                )
            )
            continue
        eligible.append(p)
    result = dedupe(eligible, _parsed)
    for drop in result.dropped:
        skipped.append(
            FetchedProduct.of(drop.item, "skipped", f"duplicate: superseded by {drop.winner.target_name}")
        )
    chosen: list[RemoteProduct] = []
    for p in result.kept:
        if cloudy(p, sel):
            skipped.append(FetchedProduct.of(p, "skipped", cloudy_reason(p, sel)))
        else:
            chosen.append(p)
    return chosen, skipped, not_selected


def _parsed(p: RemoteProduct) -> ProductName:
    assert p.parsed is not None
    return p.parsed


def cloudy(p: RemoteProduct, sel: Selection) -> bool:
    return sel.max_cloud is not None and p.cloud_cover is not None and p.cloud_cover > sel.max_cloud


def cloudy_reason(p: RemoteProduct, sel: Selection) -> str:
    return f"cloudy: {p.cloud_cover:.1f} % > {sel.max_cloud:g} %"
