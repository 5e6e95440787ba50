"""The duplicate policy (s2kit.dedupe), shared by the planner and fetch."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from s2kit.config import config_from_dict
from s2kit.dedupe import datatake_key, dedupe, preference
from s2kit.fetch import RemoteProduct, Selection, select_products
from s2kit.plan import Candidate, decide
from s2kit.safe import ProductName, parse_product_name

# names follow the real product of data/fixtures/l1c_mtd (S2A ... N0301 R133 T46RER); the
# other baselines / generations are DERIVED variants of it (the reprocessings the policy is for)
REAL = "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248"
N0300 = "S2A_MSIL1C_20210908T042701_N0300_R133_T46RER_20211201T000000"
N0301_NEWER = "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210909T010101"
N0400 = "S2A_MSIL1C_20210908T042701_N0400_R133_T46RER_20230101T000000"
OTHER_TILE = "S2A_MSIL1C_20210908T042701_N0300_R133_T46REQ_20210908T070248"
OTHER_ORBIT = "S2A_MSIL1C_20210908T042701_N0300_R134_T46RER_20210908T070248"
OTHER_SAT = "S2B_MSIL1C_20210908T042701_N0300_R133_T46RER_20210908T070248"
OTHER_TIME = "S2A_MSIL1C_20210908T042711_N0300_R133_T46RER_20210908T070248"


def names(*items: str) -> list[ProductName]:
    return [parse_product_name(n) for n in items]


def run(*items: str) -> tuple[list[str], dict[str, str]]:
    result = dedupe(names(*items), lambda n: n)
    return [n.name for n in result.kept], {d.item.name: d.winner.name for d in result.dropped}


def test_highest_baseline_wins_over_newer_generation() -> None:
    kept, dropped = run(REAL, N0300)
    assert kept == [REAL]
    assert dropped == {N0300: REAL}  # N0300 is newer (2021-12) but has the lower baseline


def test_same_baseline_newest_generation_wins() -> None:
    kept, dropped = run(REAL, N0301_NEWER)
    assert kept == [N0301_NEWER] and dropped == {REAL: N0301_NEWER}


def test_losers_name_the_final_winner() -> None:
    kept, dropped = run(N0300, REAL, N0301_NEWER, N0400)
    assert kept == [N0400]
    assert dropped == {N0300: N0400, REAL: N0400, N0301_NEWER: N0400}


def test_other_tile_orbit_spacecraft_or_time_is_not_a_duplicate() -> None:
    kept, dropped = run(REAL, OTHER_TILE, OTHER_ORBIT, OTHER_SAT, OTHER_TIME)
    assert kept == [REAL, OTHER_TILE, OTHER_ORBIT, OTHER_SAT, OTHER_TIME] and dropped == {}


def test_tie_keeps_the_first_and_order_is_kept() -> None:
    a, b = parse_product_name(REAL), parse_product_name(REAL + ".SAFE")
    result = dedupe([("first", a), ("second", b)], lambda t: t[1])
    assert [t[0] for t in result.kept] == ["first"]
    assert [(d.item[0], d.winner[0]) for d in result.dropped] == [("second", "first")]


def test_key_and_preference() -> None:
    n = parse_product_name(REAL)
    assert datatake_key(n) == ("Sentinel-2A", "2021-09-08T04:27:01+00:00", 133, "46RER")
    assert preference(n) > preference(parse_product_name(N0300))


POOL = [REAL, N0300, N0301_NEWER, N0400, OTHER_TILE, OTHER_ORBIT, OTHER_SAT, OTHER_TIME]


@settings(max_examples=60, deadline=None)
@given(st.permutations(POOL), st.integers(min_value=1, max_value=len(POOL)))
def test_property_one_per_datatake_and_order_independent(perm: list[str], k: int) -> None:
    items = names(*perm[:k])
    result = dedupe(items, lambda n: n)
    keys = [datatake_key(n) for n in result.kept]
    assert len(keys) == len(set(keys)) == len({datatake_key(n) for n in items})
    assert len(result.kept) + len(result.dropped) == len(items)
    for d in result.dropped:
        assert datatake_key(d.item) == datatake_key(d.winner) and preference(d.winner) >= preference(d.item)
    shuffled = dedupe(list(reversed(items)), lambda n: n)
    assert {n.name for n in shuffled.kept} == {n.name for n in result.kept}


def test_planner_and_fetch_pick_the_same_products(tmp_path: Path) -> None:
    """The planner's decide() and fetch's selection use the one policy."""
    pool = [REAL, N0300, N0301_NEWER, OTHER_TILE, OTHER_ORBIT]
    cfg = config_from_dict(
        {
            "paths": {"l1c_dirs": ["l1c"], "l2a_dir": "l2a", "scratch_dir": "scratch", "run_dir": "run"},
            "sen2cor": {"runtime": "native", "install_dir": "/opt/sen2cor", "dem": "none"},  # no DEM check
        },
        tmp_path,
    )
    cands = [Candidate(n, tmp_path / f"{n}.SAFE", parse_product_name(n), None) for n in pool]
    planned = {e.scene for e in decide(cands, cfg, {}) if e.decision == "todo"}
    remote = [RemoteProduct(f"{n}.SAFE", parse_product_name(n), "gcs", f"x/{n}.SAFE/") for n in pool]
    sel = Selection(("46RER", "46REQ"), date(2021, 9, 1), date(2021, 9, 30))
    chosen, skipped, _ = select_products(remote, sel)
    assert {p.name[:-5] for p in chosen} == planned == {N0301_NEWER, OTHER_TILE, OTHER_ORBIT}
    assert {s.name[:-5] for s in skipped if s.reason_code == "duplicate"} == {REAL, N0300}
