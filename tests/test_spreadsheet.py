"""Cells a spreadsheet would run are written as text; numbers and plain text are untouched."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from dispatcher.config import load_settings
from dispatcher.loader import estimate
from dispatcher.spreadsheet import defuse, defuse_row


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x","clic")', '\'=HYPERLINK("http://x","clic")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("+33612345678", "+33612345678"),
        ("-12.5", "-12.5"),
        ("Bonjour", "Bonjour"),
        ("a=b", "a=b"),
        ("", ""),
        (42, 42),
        (None, None),
    ],
)
def test_defuse(cell: object, written: object) -> None:
    """A formula start gets a leading quote; a plain number or text is left alone."""
    assert defuse(cell) == written


def test_defuse_row() -> None:
    """Every cell of a row is checked."""
    assert defuse_row([1, "=1", "x"]) == [1, "'=1", "x"]


def test_reject_report_cells_cannot_run(tmp_path: Path) -> None:
    """A rejected row whose number cell is a formula is written to the report as text."""
    source = tmp_path / "r.csv"
    source.write_text('phone;first_name\n=1+cmd|"/C calc"!A0;Ann\n0612345678;Bob\n')
    rejects = tmp_path / "rejects.csv"
    estimate(
        load_settings({}),
        source,
        provider="bytehand",
        template="Bonjour {first_name}",
        rejects_path=rejects,
    )
    rows = list(csv.reader(io.StringIO(rejects.read_text(encoding="utf-8"))))
    assert rows[1][:2] == ["2", '\'=1+cmd|"/C calc"!A0']
