"""Numbers: the fast path gives phonenumbers' answers, spreadsheet damage is undone or refused."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.phones import (
    AMBIGUOUS,
    INVALID,
    MISSING,
    NOT_MOBILE,
    PhoneNormalizer,
    reference_normalize,
    undo_spreadsheet,
)

CASES = [
    ("FR", "0601020304", "+33601020304", None),
    ("FR", "06 01 02 03 04", "+33601020304", None),
    ("FR", "06.01.02.03.04", "+33601020304", None),
    ("FR", "+33 6 01 02 03 04", "+33601020304", None),
    ("FR", "0033601020304", "+33601020304", None),
    ("FR", "33601020304", "+33601020304", None),
    ("FR", "601020304", "+33601020304", None),  # leading zero lost by a spreadsheet
    ("FR", "6.01020304E8", "+33601020304", None),  # Excel scientific display
    ("FR", "33601020304.0", "+33601020304", None),  # float column
    ("FR", "3.36012E+10", None, AMBIGUOUS),  # digits rounded away
    ("FR", "0140000000", None, NOT_MOBILE),  # Paris landline
    ("FR", "0800123456", None, NOT_MOBILE),  # toll free
    ("FR", "0612", None, INVALID),
    ("FR", "n/a", None, INVALID),
    ("FR", "", None, MISSING),
    ("FR", "+7 916 123-45-67", "+79161234567", None),
    ("RU", "8 (916) 123-45-67", "+79161234567", None),
    ("RU", "89161234567", "+79161234567", None),
    ("RU", "79161234567", "+79161234567", None),
    ("RU", "+7 9161234567", "+79161234567", None),
    ("RU", "8 (495) 123-45-67", None, NOT_MOBILE),  # Moscow landline
    ("RU", "8 10 33 6 01 02 03 04", "+33601020304", None),
]


@pytest.mark.parametrize(("region", "raw", "e164", "reason"), CASES)
def test_cases(region: str, raw: str, e164: str | None, reason: str | None) -> None:
    """Each shape gives the expected number or reason, on both paths."""
    assert PhoneNormalizer(region).normalize(raw) == (e164, reason)
    assert reference_normalize(raw, region) == (e164, reason)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("6.01020304E8", "601020304"),
        ("6,01020304E+08", "601020304"),
        ("3.3E10", None),
        ("601020304.00", "601020304"),
        ("06 01", "06 01"),
    ],
)
def test_undo_spreadsheet(raw: str, expected: str | None) -> None:
    """Scientific notation is recovered only when every digit is there."""
    assert undo_spreadsheet(raw) == expected


def _shapes(rnd: random.Random) -> str:
    n9 = str(rnd.randrange(1, 10)) + f"{rnd.randrange(10**8):08d}"
    ru = f"{rnd.randrange(10**10):010d}"
    junk = "".join(rnd.choice("0123456789+ -().") for _ in range(rnd.randrange(1, 16)))
    return rnd.choice(
        [
            f"0{n9}",
            f"0{n9[0]} {n9[1:3]} {n9[3:5]} {n9[5:7]} {n9[7:]}",
            f"+33 {n9}",
            f"0033{n9}",
            f"33{n9}",
            n9,
            f"8 ({ru[:3]}) {ru[3:6]}-{ru[6:8]}-{ru[8:]}",
            f"+7{ru}",
            f"7{ru}",
            f"8{ru}",
            f"810{rnd.randrange(1, 999)}{n9}",
            junk,
            f"{n9[0]}.{n9[1:]}E8",
            f"+{rnd.randrange(1, 999)}{ru}",
            f"00{rnd.randrange(1, 999)}{ru}",
        ]
    )


@pytest.mark.parametrize("region", ["FR", "RU", "DE", "US"])
def test_fast_path_equals_phonenumbers_on_random_sample(region: str) -> None:
    """5,000 random numbers in every common shape: fast == phonenumbers, row by row."""
    rnd = random.Random(region)
    fast = PhoneNormalizer(region)
    for _ in range(5_000):
        raw = _shapes(rnd)
        assert fast.normalize(raw) == reference_normalize(raw, region), raw


@settings(max_examples=400, deadline=None)
@given(
    region=st.sampled_from(["FR", "RU"]),
    raw=st.from_regex(r"\A[(]?\+?[0-9][0-9 ().\-/]{0,18}\Z"),
)
def test_fast_path_equals_phonenumbers_property(region: str, raw: str) -> None:
    """Any digits-and-punctuation string: fast == phonenumbers."""
    assert PhoneNormalizer(region).normalize(raw) == reference_normalize(raw, region)
