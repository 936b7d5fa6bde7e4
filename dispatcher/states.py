"""The message and campaign state machines, and nothing else.

Every state change in the database is a conditional update "from the state I expect to the state
I want"; these tables say which of those updates are legal. They are pure so they can be tested as
tables, and so the SQL layer can build its ``WHERE state IN (...)`` clauses from them.

Message life::

    pending ─▶ queued ─▶ sending ─▶ submitted ─▶ sent ─▶ delivered | undeliverable | expired
       ▲          │          │            └──────────────▶ unknown (polling deadline passed)
       │          │          ├─▶ sent/delivered/undeliverable (a report overtook our commit)
       │          │          ├─▶ failed (permanent, or retries exhausted) ─▶ pending (retry-failed)
       └──────────┴──────────┤   (transient error before the request left: back to pending)
                             └─▶ in_doubt ─▶ submitted/sent/delivered/... (a report settles it)
                                          ─▶ pending (ops: resend) | unknown (ops: mark sent)

    pending | queued ─▶ suppressed (the number opted out, or the provider says it is
                        blacklisted, before the message was handed to the provider)

Ops marking an in-doubt send as sent makes it final as ``unknown``: it went out, but without a
provider id no poll can follow it (a TimeToChat report naming its extRef still settles it).
Only recipients not yet handed over (``pending``, ``queued``) expire on our side; a message in
flight ends ``unknown`` when polling gives up, and a late delivery report applies to either.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = [
    "CAMPAIGN_TRANSITIONS",
    "FINAL_MESSAGE_STATES",
    "MESSAGE_TRANSITIONS",
    "CampaignState",
    "IllegalTransition",
    "MessageState",
    "can_move",
    "check_campaign_move",
    "check_move",
    "delivery_rank",
    "report_applies",
    "sources_of",
]


class MessageState(enum.StrEnum):
    """Where one recipient's message is. Stored as its string value."""

    PENDING = "pending"
    QUEUED = "queued"
    SENDING = "sending"
    SUBMITTED = "submitted"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    IN_DOUBT = "in_doubt"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"


class CampaignState(enum.StrEnum):
    """Where a campaign is."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


M = MessageState

FINAL_MESSAGE_STATES: frozenset[MessageState] = frozenset(
    {M.DELIVERED, M.UNDELIVERABLE, M.FAILED, M.EXPIRED, M.UNKNOWN, M.CANCELLED, M.SUPPRESSED}
)
"""States a campaign can finish with. ``in_doubt`` is deliberately not one: ops must settle it."""

_DELIVERY_REPORTS = (M.SUBMITTED, M.SENT, M.DELIVERED, M.UNDELIVERABLE, M.EXPIRED, M.UNKNOWN)

MESSAGE_TRANSITIONS: Mapping[MessageState, frozenset[MessageState]] = {
    M.PENDING: frozenset({M.QUEUED, M.CANCELLED, M.EXPIRED, M.SUPPRESSED}),
    M.QUEUED: frozenset({M.SENDING, M.PENDING, M.CANCELLED, M.EXPIRED, M.SUPPRESSED}),
    # A provider report can overtake our own commit of the send (a stalled answer, a worker
    # killed after the request left): it proves the message was accepted, so it applies.
    M.SENDING: frozenset(
        {
            M.SUBMITTED,
            M.SENT,
            M.DELIVERED,
            M.UNDELIVERABLE,
            M.FAILED,
            M.PENDING,
            M.IN_DOUBT,
            M.EXPIRED,
        }
    ),
    M.SUBMITTED: frozenset({M.SENT, M.DELIVERED, M.UNDELIVERABLE, M.EXPIRED, M.UNKNOWN}),
    M.SENT: frozenset({M.DELIVERED, M.UNDELIVERABLE, M.EXPIRED, M.UNKNOWN}),
    # A report that names the message (TimeToChat extRef) settles a send we were unsure of;
    # ops may resend it (back to pending), declare it sent, or cancel it.
    M.IN_DOUBT: frozenset({*_DELIVERY_REPORTS, M.PENDING, M.CANCELLED}),
    M.FAILED: frozenset({M.PENDING}),
    # A report arriving after the polling deadline still tells the truth: take it.
    M.UNKNOWN: frozenset({M.DELIVERED, M.UNDELIVERABLE, M.EXPIRED}),
    M.DELIVERED: frozenset(),
    M.UNDELIVERABLE: frozenset(),
    # A provider's final word on a message that expired (on our side, or by its own earlier
    # report) still tells the truth: a late DELIVERED means the recipient has it.
    M.EXPIRED: frozenset({M.DELIVERED, M.UNDELIVERABLE}),
    M.CANCELLED: frozenset(),
    M.SUPPRESSED: frozenset(),
}

C = CampaignState

CAMPAIGN_TRANSITIONS: Mapping[CampaignState, frozenset[CampaignState]] = {
    C.DRAFT: frozenset({C.SCHEDULED, C.RUNNING, C.CANCELLED}),
    # A scheduled campaign whose pre-start checks fail at start_at is paused with the reason.
    C.SCHEDULED: frozenset({C.RUNNING, C.DRAFT, C.CANCELLED, C.PAUSED}),
    C.RUNNING: frozenset({C.PAUSED, C.COMPLETED, C.CANCELLED}),
    C.PAUSED: frozenset({C.RUNNING, C.CANCELLED}),
    # retry-failed and late in-doubt resends reopen a finished campaign.
    C.COMPLETED: frozenset({C.RUNNING}),
    C.CANCELLED: frozenset(),
}


class IllegalTransition(ValueError):
    """A move the state machine forbids: a programming error, not an input error."""


def can_move(current: MessageState, target: MessageState) -> bool:
    """Whether a message may go from ``current`` to ``target``."""
    return target in MESSAGE_TRANSITIONS[current]


def check_move(current: MessageState, target: MessageState) -> None:
    """Raise :class:`IllegalTransition` unless the message move is allowed."""
    if not can_move(current, target):
        raise IllegalTransition(f"message cannot go from {current} to {target}")


def check_campaign_move(current: CampaignState, target: CampaignState) -> None:
    """Raise :class:`IllegalTransition` unless the campaign move is allowed."""
    if target not in CAMPAIGN_TRANSITIONS[current]:
        raise IllegalTransition(f"campaign cannot go from {current} to {target}")


def sources_of(target: MessageState) -> frozenset[MessageState]:
    """Every state a message may reach ``target`` from: the ``WHERE state IN`` of an update."""
    return frozenset(s for s, targets in MESSAGE_TRANSITIONS.items() if target in targets)


_RANK = {
    M.SUBMITTED: 1,
    M.SENT: 2,
    M.UNKNOWN: 3,
    M.EXPIRED: 4,
    M.DELIVERED: 5,
    M.UNDELIVERABLE: 5,
}


def delivery_rank(state: MessageState) -> int:
    """How far along delivery a state is; reports only ever move a message forward."""
    return _RANK.get(state, 0)


def report_applies(current: MessageState, reported: MessageState) -> bool:
    """Whether a delivery report (callback or poll) should change a message.

    Reports are applied monotonically: a late ``sent`` never overwrites ``delivered``, a repeated
    report changes nothing, and a report about a message not yet known as submitted (in doubt, or
    still sending when the callback overtakes our commit) moves it forward. ``expired`` ranks
    below the provider's final word: a delivery after it applies, the recipient has it.
    """
    if reported not in _DELIVERY_REPORTS or not can_move(current, reported):
        return False
    return delivery_rank(reported) > delivery_rank(current)
