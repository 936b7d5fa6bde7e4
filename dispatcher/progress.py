"""What a campaign's progress means, as two figures and one sentence.

*Handed over*: messages the provider has (submitted, or already final after a send; a failure
refused at send counts too, since nothing is left for us to do). *Final*: messages whose fate is
settled. A campaign whose sends are all handed over but whose delivery reports are still due
says so, with the time the last one may arrive (the polling deadline), instead of sitting at
99 % for two days; a cancelled campaign's cancelled messages are final but never handed over,
so its bar is not a full green one; a scheduled campaign says when it starts.

Pure: counts, times and ``now`` in, a :class:`Progress` out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispatcher.states import FINAL_MESSAGE_STATES, CampaignState, MessageState

__all__ = ["NOT_HANDED_OVER", "Progress", "describe"]

M = MessageState
C = CampaignState

NOT_HANDED_OVER = frozenset({M.PENDING, M.QUEUED, M.SENDING, M.IN_DOUBT, M.CANCELLED})
"""States in which the provider does not (knowingly) have the message."""

AWAITING = frozenset({M.SUBMITTED, M.SENT})


@dataclass(frozen=True)
class Progress:
    """``phase`` is a stable word for programs; ``summary`` the sentence for people."""

    total: int
    handed_over: int
    final: int
    awaiting: int
    awaiting_until: datetime | None
    phase: str
    summary: str

    @property
    def handed_over_percent(self) -> float:
        return round(100 * self.handed_over / self.total, 1) if self.total else 0.0

    @property
    def final_percent(self) -> float:
        return round(100 * self.final / self.total, 1) if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "handed_over": self.handed_over,
            "final": self.final,
            "handed_over_percent": self.handed_over_percent,
            "final_percent": self.final_percent,
            "awaiting": self.awaiting,
            "awaiting_until": self.awaiting_until.isoformat() if self.awaiting_until else None,
            "phase": self.phase,
            "summary": self.summary,
        }


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value is not None else "?"


def describe(
    state: str,
    counts: Mapping[str, int],
    *,
    start_at: datetime | None,
    paused_at: datetime | None,
    pause_reason: str | None,
    awaiting_until: datetime | None,
    now: datetime,
) -> Progress:
    """The progress of a campaign in ``state`` with messages ``counts`` (by state)."""
    total = sum(counts.values())
    final = sum(n for s, n in counts.items() if s in FINAL_MESSAGE_STATES)
    handed = sum(n for s, n in counts.items() if s not in NOT_HANDED_OVER)
    awaiting = sum(n for s, n in counts.items() if s in AWAITING)
    in_doubt = counts.get(M.IN_DOUBT, 0)
    unsent = total - handed - counts.get(M.CANCELLED, 0) - in_doubt
    if state == C.DRAFT:
        phase, summary = "draft", f"draft: {total} recipients, not started"
    elif state == C.SCHEDULED:
        when = start_at if start_at is not None and start_at > now else None
        phase = "scheduled"
        summary = f"scheduled: starts at {_when(when)}" if when else "scheduled: starting"
    elif state == C.PAUSED:
        phase = "paused"
        summary = f"paused since {_when(paused_at)}: {pause_reason or 'no reason given'}"
    elif state == C.CANCELLED:
        phase, summary = "cancelled", f"cancelled: {handed} of {total} handed over"
    elif unsent == 0 and in_doubt:
        phase, summary = "in_doubt", f"sent; {in_doubt} in doubt, waiting for ops to settle them"
    elif unsent == 0 and awaiting:
        phase = "awaiting_reports"
        summary = f"sent; awaiting {awaiting} delivery reports until {_when(awaiting_until)}"
    elif state == C.COMPLETED:
        phase, summary = "completed", f"completed: {final} of {total} final"
    else:
        phase, summary = "sending", f"sending: {handed} of {total} handed over, {final} final"
    return Progress(total, handed, final, awaiting, awaiting_until, phase, summary)
