"""Whole-column normalisation gives PhoneNormalizer's answers, cell by cell."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.phone_columns import normalize_column
from dispatcher.phones import PhoneNormalizer
from tests.test_phones import CASES, _shapes

EDGES = [
    "",
    " 06",
    "\u00a006 01 02 03 04",
    "06\u00a001 02 03 04",
    "601020304.0",
    "(06) 01 02 03 04",
    "((+33) 6 01 02 03 04",
    "+800 1234 5678",  # non-geographic: left to phonenumbers
    "n/a",
    "n/a",
]


def _column_answers(region: str, cells: list[str]) -> list[tuple[str | None, str | None]]:
    numbers, reasons = normalize_column(PhoneNormalizer(region), pa.array(cells, pa.string()))
    return [(number, reasons.get(row)) for row, number in enumerate(numbers.to_pylist())]


@pytest.mark.parametrize("region", ["FR", "RU", "DE", "US", "GB", "BR", "AR", "KZ"])
def test_column_equals_row_by_row(region: str) -> None:
    """10,000 random cells of every common shape, plus edge cases: the same answer per cell."""
    rnd = random.Random(region)
    cells = [_shapes(rnd) for _ in range(10_000)] + [case[1] for case in CASES] + EDGES
    normalizer = PhoneNormalizer(region)
    assert _column_answers(region, cells) == [normalizer.normalize(cell) for cell in cells]


@settings(max_examples=60, deadline=None)
@given(
    region=st.sampled_from(["FR", "RU", "US"]),
    cells=st.lists(st.from_regex(r"\A[( ]?\+?[0-9][0-9 ().\-/]{0,18}\Z"), max_size=40),
)
def test_column_equals_row_by_row_property(region: str, cells: list[str]) -> None:
    """Any digits-and-punctuation cells: column answers == PhoneNormalizer.normalize."""
    normalizer = PhoneNormalizer(region)
    assert _column_answers(region, cells) == [normalizer.normalize(cell) for cell in cells]
