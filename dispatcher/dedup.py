"""Which numbers a file has already given, and on which line: the duplicates of a recipient file.

Numbers are kept as the integers of their E.164 digits (a valid number has at most 19, so they
fit an unsigned 64-bit integer, and E.164 has no leading zero, so the integer is exact) in
sorted numpy arrays: a chunk is looked up and merged in a few whole-array operations.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import numpy as np

__all__ = ["FirstLines", "number_keys"]

_E164 = re.compile(r"\+[1-9][0-9]{0,18}")


class FirstLines:
    """Every number seen so far, as sorted E.164 digits, with the line it was first seen on.

    Sorted arrays rather than a dict of strings: a million numbers take 16 MB, not ~150, and a
    chunk is looked up and merged in a few whole-array operations.
    """

    def __init__(self) -> None:
        self.keys: np.ndarray[Any, np.dtype[np.uint64]] = np.empty(0, dtype=np.uint64)
        self.lines: np.ndarray[Any, np.dtype[np.int64]] = np.empty(0, dtype=np.int64)

    def first_lines(
        self, keys: np.ndarray[Any, np.dtype[np.uint64]], lines: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The first line of each number (its own line for a first occurrence); the new
        numbers are recorded."""
        if not len(keys):
            return np.empty(0, dtype=np.int64)
        distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        if len(self.keys):
            where = np.minimum(np.searchsorted(self.keys, distinct), len(self.keys) - 1)
            known = self.keys[where] == distinct
            firsts = np.where(known, self.lines[where], lines[first])
        else:
            known = np.zeros(len(distinct), dtype=bool)
            firsts = lines[first]
        where = np.searchsorted(self.keys, distinct[~known])  # sorted, so one O(n) insert
        self.keys = np.insert(self.keys, where, distinct[~known])
        self.lines = np.insert(self.lines, where, lines[first][~known])
        return np.asarray(firsts[inverse.ravel()], dtype=np.int64)


def number_keys(numbers: Collection[str]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """E.164 numbers as integers of their digits (a valid number has at most 19); anything
    else can never equal a normalised number."""
    digits = [int(number[1:]) for number in numbers if _E164.fullmatch(number)]
    return np.array(sorted(digits), dtype=np.uint64)
