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
from dispatcher.windows import SendRules, openings

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
    suppressions.suppress_claimed(session, ids, scope, now)
    # Still queued: an opt-out stored meanwhile may have suppressed some already.
    rows = session.execute(
        select(Message.id, Message.phone, Message.timezone)
        .where(Message.id.in_(list(ids)), Message.state == M.QUEUED)
        .order_by(Message.id)
    ).all()
    rules = SendRules.from_json(campaign.send_rules)
    if rules is None:
        return [row.id for row in rows]
    found = openings(now, rules, [r.phone for r in rows], [r.timezone for r in rows])
    held: list[dict[str, Any]] = [
        {"mid": row.id, "nb": opening}
        for row, opening in zip(rows, found, strict=True)
        if opening > now
    ]
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
    return [row.id for row in rows if row.id not in waiting]


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
