"""Read-side queries shared by the JSON API, the CLI and the console: plain JSON-ready dicts.

Counts for a page of campaigns come from one grouped query, not one per campaign, so the list
stays cheap with many campaigns of a million recipients each.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher.models import Campaign, Message
from dispatcher.progress import NOT_HANDED_OVER
from dispatcher.states import FINAL_MESSAGE_STATES, CampaignState, MessageState

__all__ = ["campaign_page", "message_json", "message_page", "progress"]


def progress(counts: dict[str, int]) -> float:
    """Share of messages in a final state, 0.0 to 1.0 (0.0 for an empty campaign)."""
    total = sum(counts.values())
    done = sum(n for state, n in counts.items() if state in FINAL_MESSAGE_STATES)
    return round(done / total, 4) if total else 0.0


def campaign_page(
    session: Session,
    *,
    state: CampaignState | None,
    limit: int,
    offset: int,
    provider: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Newest campaigns first, each with its counts by message state and its progress; and
    how many campaigns match in all."""
    where = []
    if state is not None:
        where.append(Campaign.state == state)
    if provider is not None:
        where.append(Campaign.provider == provider)
    total = session.scalar(select(func.count()).select_from(Campaign).where(*where)) or 0
    statement = (
        select(Campaign).where(*where).order_by(Campaign.id.desc()).limit(limit).offset(offset)
    )
    rows = list(session.scalars(statement))
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if rows:
        grouped = session.execute(
            select(Message.campaign_id, Message.state, func.count())
            .where(Message.campaign_id.in_([c.id for c in rows]))
            .group_by(Message.campaign_id, Message.state)
        )
        for campaign_id, message_state, count in grouped:
            counts[campaign_id][message_state] = int(count)
    items = []
    for c in rows:
        mine = counts[c.id]
        items.append(
            {
                "id": c.id,
                "name": c.name,
                "provider": c.provider,
                "state": c.state,
                "created_at": c.created_at,
                "start_at": c.start_at,
                "started_at": c.started_at,
                "pause_reason": c.pause_reason,
                "paused_at": c.paused_at,
                "counts": mine,
                "total": sum(mine.values()),
                "handed_over": sum(n for s, n in mine.items() if s not in NOT_HANDED_OVER),
                "final": sum(n for s, n in mine.items() if s in FINAL_MESSAGE_STATES),
                "progress": progress(mine),
            }
        )
    return items, int(total)


def message_json(message: Message) -> dict[str, Any]:
    """What an operator needs to see of one recipient (not the provider payloads)."""
    return {
        "id": message.id,
        "line": message.line,
        "phone": message.phone,
        "state": message.state,
        "ext_ref": message.ext_ref,
        "provider_message_id": message.provider_message_id,
        "provider_state": message.provider_state,
        "parts": message.parts,
        "attempts": message.attempts,
        "last_error": message.last_error,
        "submitted_at": message.submitted_at,
        "final_at": message.final_at,
    }


def message_page(
    session: Session,
    campaign_id: int,
    *,
    state: MessageState | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """One page of a campaign's messages in file order, and how many match in all."""
    where = [Message.campaign_id == campaign_id]
    if state is not None:
        where.append(Message.state == state)
    total = session.scalar(select(func.count()).select_from(Message).where(*where)) or 0
    items = session.scalars(
        select(Message).where(*where).order_by(Message.id).limit(limit).offset(offset)
    )
    return {
        "items": [message_json(m) for m in items],
        "total": int(total),
        "limit": limit,
        "offset": offset,
    }
