"""What the console's pages show, gathered from the same use cases as the CLI and the API.

Each function takes a session and ``now`` and returns plain dicts for the templates; no HTML
here, and nothing the JSON API could not say (the console holds no logic of its own).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher import campaigns
from dispatcher.models import InboundMessage, Message, Suppression
from dispatcher.reasons import explain
from dispatcher.states import CampaignState, MessageState
from dispatcher.web.queries import message_page

__all__ = [
    "ACTIONS",
    "PAGE_SIZE",
    "allowed_actions",
    "campaign_view",
    "chart",
    "optouts_view",
    "recipients_view",
    "replies_view",
]

C = CampaignState
M = MessageState

PAGE_SIZE = 50

ACTIONS = ("start", "pause", "resume", "cancel", "retry-failed")
"""The operator's buttons, in the order shown."""

_CHART_POINTS = 50_000
"""A chart reads at most about this many messages (a regular sample of larger campaigns)."""


def allowed_actions(state: str, counts: dict[str, int]) -> dict[str, bool]:
    """Which buttons the campaign's state allows (the use cases refuse the others anyway)."""
    return {
        "start": state == C.DRAFT,
        "pause": state == C.RUNNING,
        "resume": state == C.PAUSED,
        "cancel": state in (C.DRAFT, C.SCHEDULED, C.RUNNING, C.PAUSED),
        "retry-failed": state in (C.RUNNING, C.PAUSED, C.COMPLETED) and counts.get(M.FAILED, 0) > 0,
        "delete": state == C.DRAFT,
        "resolve": counts.get(M.IN_DOUBT, 0) > 0 and state != C.CANCELLED,
    }


def campaign_view(
    session: Session, campaign_id: int, now: datetime, *, deadline: timedelta
) -> dict[str, Any]:
    """The live part of the campaign page: settings, progress, counts, failures, in doubt."""
    campaign = campaigns.get_campaign(session, campaign_id)
    report = campaigns.report(session, campaign_id)
    progress = campaigns.progress(session, campaign_id, now, deadline=deadline)
    counts = report["counts"]
    final_failed = sum(counts.get(s, 0) for s in (M.FAILED, M.UNDELIVERABLE, M.EXPIRED, M.UNKNOWN))
    total = progress.total or 1
    delivered = 100 * counts.get(M.DELIVERED, 0) / total
    failed = 100 * final_failed / total
    segments = {
        "delivered": delivered,
        "failed": failed,
        "awaiting": max(0.0, 100 * progress.handed_over / total - delivered - failed),
        "cancelled": 100 * counts.get(M.CANCELLED, 0) / total,
    }
    in_doubt = message_page(session, campaign_id, state=M.IN_DOUBT, limit=20, offset=0)
    return {
        "campaign": campaign,
        "report": report,
        "progress": progress,
        "counts": counts,
        "segments": segments,
        "actions": allowed_actions(campaign.state, counts),
        "in_doubt": in_doubt,
        "sent": progress.handed_over,
        "delivered": counts.get(M.DELIVERED, 0),
        "failed": final_failed,
    }


def recipients_view(
    session: Session, campaign_id: int, provider: str, state: str | None, page: int
) -> dict[str, Any]:
    """One page of the recipient table, optionally of one state, with each one's reason."""
    chosen = MessageState(state) if state in set(M) else None
    found = message_page(
        session, campaign_id, state=chosen, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    for item in found["items"]:
        shown = item["state"] in (M.FAILED, M.UNDELIVERABLE, M.EXPIRED, M.UNKNOWN, M.IN_DOUBT)
        item["reason"] = (
            explain(item["state"], provider, item["last_error"], item["provider_state"]).text
            if shown
            else ""
        )
    pages = max(1, -(-found["total"] // PAGE_SIZE))
    return {**found, "state": chosen, "page": page, "pages": pages}


def chart(
    session: Session, campaign_id: int, width: int = 640, height: int = 160
) -> dict[str, Any]:
    """Sends (submissions) and deliveries per time bucket, as SVG polyline points."""
    total = (
        session.scalar(
            select(func.count()).where(
                Message.campaign_id == campaign_id, Message.submitted_at.is_not(None)
            )
        )
        or 0
    )
    if not total:
        return {"empty": True}
    step = max(1, total // _CHART_POINTS)
    rows = session.execute(
        select(Message.submitted_at, Message.final_at, Message.state).where(
            Message.campaign_id == campaign_id,
            Message.submitted_at.is_not(None),
            Message.id % step == 0,
        )
    ).all()
    starts: list[datetime] = [r[0] for r in rows if r[0] is not None]
    delivered: list[datetime] = [r[1] for r in rows if r[2] == M.DELIVERED and r[1] is not None]
    first = min(starts)
    last = max([*starts, *delivered])
    span = max((last - first).total_seconds(), 1.0)
    buckets = 40
    sends = [0] * buckets
    deliveries = [0] * buckets
    for when in starts:
        sends[min(buckets - 1, int((when - first).total_seconds() / span * buckets))] += step
    for when in delivered:
        deliveries[min(buckets - 1, int((when - first).total_seconds() / span * buckets))] += step
    peak = max([*sends, *deliveries, 1])

    def points(series: list[int]) -> str:
        return " ".join(
            f"{i * width / (buckets - 1):.1f},{height - value * (height - 10) / peak:.1f}"
            for i, value in enumerate(series)
        )

    return {
        "empty": False,
        "width": width,
        "height": height,
        "sends": points(sends),
        "deliveries": points(deliveries),
        "peak": peak,
        "bucket_s": span / buckets,
        "first": first,
        "last": last,
    }


def replies_view(session: Session, page: int) -> dict[str, Any]:
    """Incoming SMS, newest first, with the campaign and message they answer."""
    total = session.scalar(select(func.count()).select_from(InboundMessage)) or 0
    rows = session.execute(
        select(InboundMessage, Message.campaign_id, Message.line)
        .outerjoin(Message, Message.id == InboundMessage.reply_to_id)
        .order_by(InboundMessage.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    items = [
        {"inbound": inbound, "campaign_id": campaign_id, "line": line}
        for inbound, campaign_id, line in rows
    ]
    return {"items": items, "page": page, "pages": max(1, -(-total // PAGE_SIZE)), "total": total}


def optouts_view(session: Session, page: int) -> dict[str, Any]:
    """The suppression list, newest first."""
    total = session.scalar(select(func.count()).select_from(Suppression)) or 0
    items = list(
        session.scalars(
            select(Suppression)
            .order_by(Suppression.created_at.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    )
    return {"items": items, "page": page, "pages": max(1, -(-total // PAGE_SIZE)), "total": total}
