"""What a claim checks besides the state: the suppression list and the recipient's window.

The feeder claims a window of ``pending`` messages (``queued``); :func:`screen` then ends the
suppressed ones ``suppressed`` and gives back those outside their recipient's sending window:
``pending`` again, with ``not_before`` at the window's next opening, so the feeder's own
``not_before <= now`` filter skips them until then. No ETA task holds them: the database does.
Checked at every claim, not only at start, so a campaign that runs past 20:00 stops sending to
those recipients and resumes at the next opening.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from dispatcher import suppressions
from dispatcher.models import Campaign, Message
from dispatcher.states import MessageState
from dispatcher.windows import SendRules, opening_for

__all__ = ["WAITING_FOR_WINDOW", "screen", "waiting_for_window"]

WAITING_FOR_WINDOW = "waiting for the recipient's sending window"
"""``last_error`` of a pending message held by its quiet hours."""

M = MessageState


def screen(
    session: Session, campaign: Campaign, ids: Sequence[int], scope: str, now: datetime
) -> list[int]:
    """Of just-claimed (``queued``) ids, those that may be sent now; the others are suppressed
    or held for their window."""
    if not ids:
        return []
    gone = set(suppressions.suppress_claimed(session, ids, scope, now))
    remaining = [i for i in ids if i not in gone]
    rules = SendRules.from_json(campaign.send_rules)
    if rules is None or not remaining:
        return remaining
    rows = session.execute(
        select(Message.id, Message.phone, Message.timezone).where(Message.id.in_(remaining))
    ).all()
    held: list[dict[str, Any]] = []
    for message_id, phone, zone in rows:
        opening = opening_for(now, rules, phone, zone)
        if opening > now:
            held.append({"mid": message_id, "nb": opening})
    if held:
        table: Any = Message.__table__
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("mid"), table.c.state == M.QUEUED)
            .values(
                state=M.PENDING,
                queued_at=None,
                not_before=bindparam("nb"),
                last_error=WAITING_FOR_WINDOW,
                updated_at=now,
            ),
            held,
        )
    waiting = {row["mid"] for row in held}
    return [i for i in remaining if i not in waiting]


def waiting_for_window(
    session: Session, campaign_id: int, now: datetime
) -> tuple[int, datetime | None]:
    """How many messages of a campaign wait for their window, and when the next one opens."""
    count, first = session.execute(
        select(func.count(), func.min(Message.not_before)).where(
            Message.campaign_id == campaign_id,
            Message.state == M.PENDING,
            Message.last_error == WAITING_FOR_WINDOW,
            Message.not_before > now,
        )
    ).one()
    return int(count), first
