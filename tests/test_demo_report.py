"""The demo's final report: every state a row adding up, readable at any width, rates explained."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dispatcher.demo_report import STATE_LABELS, explain_rates, report_table, state_rows_total

REPORTS = {
    "bytehand": {
        "counts": {
            "delivered": 4700,
            "undeliverable": 50,
            "expired": 48,
            "failed": 52,
            "unknown": 50,
            "in_doubt": 0,
        },
    },
    "timetochat": {"counts": {"delivered": 950, "undeliverable": 10, "failed": 20, "unknown": 10}},
}
RATES = {
    "bytehand": {"calls": 52, "sustained_calls_per_s": 5.0, "max_calls_in_1s": 20,
                 "rejections": 0, "duplicates": 0},
    "timetochat": {"calls": 1000, "sustained_calls_per_s": 20.0, "max_calls_in_1s": 20,
                   "rejections": 0, "duplicates": 0},
}  # fmt: skip


def _render(width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False).print(
        report_table(REPORTS, RATES, "demo: both campaigns in 95 s")
    )
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [40, 80, 200])
def test_nothing_is_cut_at_any_width(width: int) -> None:
    """No line wider than the console and no '…': cells fold instead of being truncated."""
    lines = _render(width)
    assert all(len(line) <= width for line in lines)
    assert not any("…" in line for line in lines)
    text = "".join(line.replace("│", "").strip() for line in lines)
    assert "bytehand" in text and "timetochat" in text


def test_every_state_has_a_row_and_they_add_up() -> None:
    """At 80 columns each state is a row of its own; their sum is the recipients row."""
    rows = {
        cells[1].strip(): [cell.strip() for cell in cells[2:4]]
        for cells in (line.split("│") for line in _render(80))
        if len(cells) == 5
    }
    states = [rows[label] for label in STATE_LABELS.values()]
    assert "unknown (silent past the polling deadline)" in rows
    for column in (0, 1):
        assert sum(int(row[column]) for row in states) == int(rows["recipients"][column])
    assert rows["recipients"] == ["4900", "990"]
    assert state_rows_total(REPORTS["bytehand"]) == 4900


def test_a_small_campaign_explains_its_rate() -> None:
    """5 calls/s next to a README saying 19.3 comes with the reason and the source."""
    note = explain_rates("bytehand", RATES["bytehand"], 100)
    assert "52 calls in all (a send_multi call takes up to 100 recipients)" in note
    assert "too few to keep the 20 calls/s budget busy for 10 s, hence 5.0 calls/s" in note
    assert "bench/throughput.py: 19.3 calls/s" in note
    assert "budget full: 20.0 calls/s" in explain_rates("timetochat", RATES["timetochat"], None)
