"""Cells a spreadsheet cannot run: the one guard of every CSV we hand to people.

A marketer opens our exports and reject reports in Excel or LibreOffice. A cell that starts with
``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some importers strip before
looking) is read as a formula, so a recipient file holding ``=HYPERLINK(...)`` or
``+cmd|' /C calc'!A0`` in a name column would run it on the marketer's machine (CSV injection).
Such a cell is written with a leading ``'``, which every spreadsheet shows as text.

A plain number (``+33612345678``, ``-12.5``) is left as it is: it cannot run anything, and a
phone number in E.164 must stay readable by the programs that read our exports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_STARTS", "defuse", "defuse_row", "undo_defuse"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def defuse(value: Any) -> Any:
    """``value`` unchanged, unless it is text a spreadsheet would run: then ``'`` + text."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def defuse_row(row: Iterable[Any]) -> list[Any]:
    """Every cell of a CSV row through :func:`defuse`."""
    return [defuse(cell) for cell in row]


def undo_defuse(value: str) -> str:
    """The cell as it was before :func:`defuse`, to show a report's cell on a web page."""
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value
