"""The demo's final report: one row per figure, one column per provider, readable at any width.

Every message state has its row, so the state rows add up to the recipients; the provider's own
figures (calls, the busiest ten seconds, refusals, duplicates) come from the simulators' ledgers,
and a note under the table says why a small campaign's calls/s is below the 20 calls/s budget.
Pure: the figures come in, a rich table and plain lines go out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from dispatcher.states import MessageState

__all__ = ["STATE_LABELS", "explain_rates", "report_table", "state_rows_total"]

STATE_LABELS: Mapping[str, str] = {
    MessageState.PENDING: "pending",
    MessageState.QUEUED: "queued",
    MessageState.SENDING: "sending",
    MessageState.SUBMITTED: "submitted, no report yet",
    MessageState.SENT: "sent, not yet delivered",
    MessageState.DELIVERED: "delivered",
    MessageState.UNDELIVERABLE: "undeliverable (by provider)",
    MessageState.EXPIRED: "expired",
    MessageState.FAILED: "failed (refused, not sent)",
    MessageState.UNKNOWN: "unknown (silent past the polling deadline)",
    MessageState.IN_DOUBT: "in doubt",
    MessageState.CANCELLED: "cancelled",
}
"""Every message state, in lifecycle order, with what it means to a reader of the demo."""

_PROVIDER_ROWS = (
    ("calls", "provider calls"),
    ("sustained_calls_per_s", "calls/s, busiest 10 s"),
    ("max_calls_in_1s", "most calls in any 1 s"),
    ("rejections", "rate-limit refusals (429/17)"),
    ("duplicates", "messages accepted twice"),
)

BUDGET_CALLS_PER_S = 20


def state_rows_total(report: Mapping[str, Any]) -> int:
    """The sum of the state rows: equal to the recipients, or the report is wrong."""
    return sum(int(report["counts"].get(state, 0)) for state in STATE_LABELS)


def report_table(
    reports: Mapping[str, Mapping[str, Any]], rates: Mapping[str, Mapping[str, Any]], title: str
) -> Table:
    """Rows of figures, a column per provider; cells fold rather than being cut with '…'."""
    table = Table(title=title, title_justify="left")
    table.add_column("", overflow="fold")
    for provider in reports:
        table.add_column(provider, justify="right", overflow="fold")
    table.add_row("recipients", *(str(sum(r["counts"].values())) for r in reports.values()))
    for state, label in STATE_LABELS.items():
        table.add_row(f"  {label}", *(str(r["counts"].get(state, 0)) for r in reports.values()))
    table.add_section()
    for key, label in _PROVIDER_ROWS:
        cells = []
        for provider in reports:
            value = rates[provider][key]
            cells.append(f"{value:.1f}" if isinstance(value, float) else str(value))
        table.add_row(label, *cells)
    return table


def explain_rates(provider: str, rate: Mapping[str, Any], batch_size: int | None) -> str:
    """Why this run's calls/s is what it is, next to the README's steady-state figures."""
    calls, sustained = int(rate["calls"]), float(rate["sustained_calls_per_s"])
    batches = f" (a send_multi call takes up to {batch_size} recipients)" if batch_size else ""
    if sustained >= BUDGET_CALLS_PER_S * 0.9:
        return (
            f"{provider}: {calls} calls{batches}, enough to keep the {BUDGET_CALLS_PER_S} "
            f"calls/s budget full: {sustained:.1f} calls/s over the busiest 10 s."
        )
    return (
        f"{provider}: {calls} calls in all{batches}, too few to keep the "
        f"{BUDGET_CALLS_PER_S} calls/s budget busy for 10 s, hence {sustained:.1f} calls/s. "
        "The README's steady-state figures come from bench/throughput.py: 19.3 calls/s for a "
        "40,000-recipient ByteHand campaign, 20.0 for 600 TimeToChat recipients."
    )
