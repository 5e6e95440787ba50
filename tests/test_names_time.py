"""Product-name timestamps are parsed by slicing (issue 17 item 7): the result, and what is
refused, must be exactly what ``datetime.strptime`` gave, over many generated names."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timezone

import pytest

from s2kit.errors import InputError
from s2kit.safe import parse_product_name
from s2kit.safe.names import _compact_time

FORMAT = "%Y%m%dT%H%M%S"


def by_strptime(text: str) -> datetime | None:
    """The old parse: strptime, UTC; None when it refused."""
    try:
        return datetime.strptime(text, FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def by_slicing(text: str) -> datetime | None:
    try:
        return _compact_time(text)
    except ValueError:
        return None


def stamp(y: int, mo: int, d: int, h: int = 10, mi: int = 20, s: int = 30, t: str = "T") -> str:
    return f"{y:04d}{mo:02d}{d:02d}{t}{h:02d}{mi:02d}{s:02d}"


def names_of(sensing: str, generation: str) -> list[str]:
    """The same stamps in a compact and in a legacy product name."""
    return [
        f"S2A_MSIL1C_{sensing}_N0301_R140_T17SQV_{generation}.SAFE",
        f"S2A_OPER_PRD_MSIL1C_PDMC_{generation}_R065_V{sensing}_{sensing}",
    ]


def old_parse(name: str) -> tuple[datetime, datetime] | None:
    """What parse_product_name gave with strptime: None when it refused."""
    stem = name.removesuffix(".SAFE")
    if "_OPER_" in stem:
        generation, sensing = stem.split("_")[5], stem.split("_")[7].removeprefix("V")
    else:
        sensing, generation = stem.split("_")[2], stem.split("_")[6]
    a, b = by_strptime(sensing), by_strptime(generation)
    return None if a is None or b is None else (a, b)


def new_parse(name: str) -> tuple[datetime, datetime] | None:
    try:
        n = parse_product_name(name)
    except ValueError:  # strptime's ValueError before, the same class now
        return None
    return n.sensing_start, n.discriminator


# every field through its edges: zero, the last valid value, one past it
DATE_EDGES = list(
    itertools.product(
        (0, 1, 1999, 2000, 2021, 2024, 2100, 9999),  # years: 0 refused, leap years, 2100 not leap
        (0, 1, 2, 4, 12, 13, 19, 99),  # months
        (0, 1, 28, 29, 30, 31, 32, 99),  # days: 30 February, 31 April
    )
)
TIME_EDGES = list(itertools.product((0, 9, 23, 24, 29, 99), (0, 59, 60, 99), (0, 59, 60, 61, 99)))


def test_slicing_refuses_exactly_what_strptime_refused_dates() -> None:
    for y, mo, d in DATE_EDGES:
        text = stamp(y, mo, d)
        assert by_slicing(text) == by_strptime(text), text
        for name in names_of(text, stamp(2021, 6, 2)):
            assert new_parse(name) == old_parse(name), name


def test_slicing_refuses_exactly_what_strptime_refused_times() -> None:
    for h, mi, s in TIME_EDGES:
        text = stamp(2021, 6, 2, h, mi, s)
        assert by_slicing(text) == by_strptime(text), text
        for name in names_of(stamp(2021, 6, 2), text):
            assert new_parse(name) == old_parse(name), name


def test_slicing_matches_strptime_over_many_random_names() -> None:
    rng = random.Random(17)
    for _ in range(20_000):
        text = stamp(
            rng.choice((rng.randint(0, 9999), rng.randint(2015, 2030))),
            rng.randint(0, 14),
            rng.randint(0, 33),
            rng.randint(0, 25),
            rng.randint(0, 61),
            rng.randint(0, 62),
            t=rng.choice("Tt"),
        )
        assert by_slicing(text) == by_strptime(text), text
        for name in names_of(text, stamp(2021, 6, 2)):
            assert new_parse(name) == old_parse(name), name


def test_month_13_and_30_february_are_refused() -> None:
    for bad in (stamp(2021, 13, 1), stamp(2021, 2, 30), stamp(2023, 2, 29)):
        assert by_strptime(bad) is None
        with pytest.raises(ValueError):
            _compact_time(bad)
        with pytest.raises(ValueError):
            parse_product_name(f"S2A_MSIL1C_{bad}_N0301_R140_T17SQV_20210602T190829.SAFE")
    assert _compact_time(stamp(2024, 2, 29)) == datetime(2024, 2, 29, 10, 20, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("digits", ["٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"])
def test_non_ascii_digits_are_refused(digits: str) -> None:
    ascii_stamp = stamp(2021, 6, 2)
    table = str.maketrans("0123456789", digits)
    in_year = ascii_stamp[:4].translate(table) + ascii_stamp[4:]  # strptime took these (its %Y is \d)
    assert by_strptime(in_year) is not None
    for text in (ascii_stamp.translate(table), in_year):
        with pytest.raises(ValueError):
            _compact_time(text)
        # the name patterns (re.ASCII) never let them through: the names stay refused
        with pytest.raises(InputError):
            parse_product_name(f"S2A_MSIL1C_{text}_N0301_R140_T17SQV_20210602T190829.SAFE")
        with pytest.raises(InputError):
            parse_product_name(f"S2A_MSIL1C_{ascii_stamp}_N0301_R140_T17SQV_{text}.SAFE")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "20210602T10203",
        "20210602T1020300",
        "20210602X102030",
        "2021060２T102030",
        " 0210602T102030",
        "+0210602T102030",
        "2021-602T102030",
    ],
)
def test_malformed_stamps_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        _compact_time(bad)
