"""First occurrences across chunks: the line a number was first seen on, however many chunks ago."""

from __future__ import annotations

import numpy as np

from dispatcher.dedup import FirstLines, number_keys


def test_first_lines_across_chunks() -> None:
    """A number repeated in its own chunk and in later ones points at its very first line."""
    seen = FirstLines()
    first = seen.first_lines(np.array([5, 3, 5], np.uint64), np.array([1, 2, 3]))
    second = seen.first_lines(np.array([3, 9, 9, 5], np.uint64), np.array([4, 5, 6, 7]))
    assert first.tolist() == [1, 2, 1] and second.tolist() == [2, 5, 5, 1]


def test_number_keys_ignores_what_is_not_e164() -> None:
    """Only +digits become keys; other suppression entries can never match a number."""
    keys = number_keys(["+33601020304", "0601020304", "+0123", "junk", "+79161234567"])
    assert keys.tolist() == [33601020304, 79161234567]
