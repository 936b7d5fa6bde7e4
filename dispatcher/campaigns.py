"""Campaign life: start, schedule, pause, resume, cancel, retry, settle, finish and report.

Every move is a conditional UPDATE on the campaign's state, so a campaign scheduled for 09:00 is
started once even if two beat processes tick at 09:00 (one UPDATE matches, the other finds the
campaign already running).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from dispatcher.backoff import poll_deadline
from dispatcher.claims import move
from dispatcher.errors import InputError
from dispatcher.gates import waiting_for_window
from dispatcher.models import Campaign, Message, utcnow
from dispatcher.progress import AWAITING, Progress, describe
from dispatcher.reasons import explain
from dispatcher.states import (
    CAMPAIGN_TRANSITIONS,
    FINAL_MESSAGE_STATES,
    CampaignState,
    MessageState,
)

__all__ = [
    "campaign_counts",
    "cancel",
    "delete_draft",
    "due_to_start",
    "failures",
    "finish_if_done",
    "get_campaign",
    "pause",
    "pause_for",
    "progress",
    "report",
    "resolve_in_doubt",
    "resume",
    "retry_failed",
    "start",
    "start_due",
]

C = CampaignState
M = MessageState


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    """The campaign, or an :class:`InputError` an operator can read."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise InputError(f"no campaign with id {campaign_id}", code="not_found")
    return campaign


def _move_campaign(
    session: Session, campaign_id: int, target: CampaignState, now: datetime, **values: Any
) -> bool:
    sources = [s for s, targets in CAMPAIGN_TRANSITIONS.items() if target in targets]
    moved = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.state.in_(sources))
        .values(state=target, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.expire_all()
    return bool(moved)


def _refuse(campaign: Campaign, action: str) -> InputError:
    return InputError(
        f"campaign {campaign.id} is {campaign.state}: cannot {action} it", code="conflict"
    )


def start(session: Session, campaign_id: int, now: datetime) -> CampaignState:
    """Start now, or wait for ``start_at`` when it is in the future (beat starts it)."""
    campaign = get_campaign(session, campaign_id)
    if campaign.state not in (C.DRAFT, C.SCHEDULED):
        raise _refuse(campaign, "start")
    target = C.SCHEDULED if campaign.start_at and campaign.start_at > now else C.RUNNING
    if target == C.SCHEDULED and campaign.state == C.SCHEDULED:
        return target
    # Only a campaign that runs has started: a scheduled one gets started_at from start_due.
    started = {"started_at": now} if target == C.RUNNING else {}
    if not _move_campaign(session, campaign_id, target, now, **started):
        raise _refuse(get_campaign(session, campaign_id), "start")
    return target


def due_to_start(session: Session, now: datetime) -> list[Campaign]:
    """Scheduled campaigns whose time has come (to be checked, then started)."""
    return list(
        session.scalars(
            select(Campaign).where(Campaign.state == C.SCHEDULED, Campaign.start_at <= now)
        )
    )


def start_due(session: Session, now: datetime, ids: list[int] | None = None) -> list[int]:
    """Scheduled campaigns whose time has come (of ``ids`` when given): each started once."""
    due = [c.id for c in due_to_start(session, now)]
    chosen = due if ids is None else [cid for cid in due if cid in ids]
    return [cid for cid in chosen if _move_campaign(session, cid, C.RUNNING, now, started_at=now)]


def pause(session: Session, campaign_id: int, now: datetime, reason: str = "paused by ops") -> None:
    """Stop feeding; work already queued goes back to pending when its task claims it."""
    campaign = get_campaign(session, campaign_id)
    # Ops pause what runs; a scheduled campaign is paused only by a failed pre-start check.
    paused = campaign.state == C.RUNNING and _move_campaign(
        session, campaign_id, C.PAUSED, now, pause_reason=reason, paused_at=now
    )
    if not paused:
        raise _refuse(campaign, "pause")


def pause_for(session: Session, campaign_id: int, reason: str, now: datetime) -> bool:
    """Pause a running or scheduled campaign for a problem found by the system, never raising.

    Called after a provider's answer is recorded: a campaign another thread already paused (or
    ops cancelled) is no error, and must not roll back the recording. True when this call
    paused it.
    """
    return _move_campaign(session, campaign_id, C.PAUSED, now, pause_reason=reason, paused_at=now)


def resume(session: Session, campaign_id: int, now: datetime) -> None:
    """Feed again from where the campaign stopped; nothing already sent is sent again."""
    campaign = get_campaign(session, campaign_id)
    resumed = campaign.state == C.PAUSED and _move_campaign(
        session, campaign_id, C.RUNNING, now, pause_reason=None, paused_at=None
    )
    if not resumed:
        raise _refuse(campaign, "resume")


def cancel(session: Session, campaign_id: int, now: datetime) -> int:
    """Cancel the campaign and every message not yet handed to a provider."""
    campaign = get_campaign(session, campaign_id)
    if not _move_campaign(session, campaign_id, C.CANCELLED, now, finished_at=now):
        raise _refuse(campaign, "cancel")
    unsent = select(Message.id).where(
        Message.campaign_id == campaign_id, Message.state.in_((M.PENDING, M.QUEUED))
    )
    unsent_ids = list(session.scalars(unsent))
    return len(
        move(
            session,
            unsent_ids,
            M.CANCELLED,
            sources={M.PENDING, M.QUEUED},
            final_at=now,
            updated_at=now,
        )
    )


def retry_failed(session: Session, campaign_id: int, now: datetime) -> int:
    """Re-queue recipients that failed for transient reasons only (never a permanent refusal)."""
    campaign = _lock(session, campaign_id)
    if campaign.state == C.CANCELLED:
        raise _refuse(campaign, "retry")
    failed = select(Message.id).where(
        Message.campaign_id == campaign_id,
        Message.state == M.FAILED,
        Message.error_transient.is_(True),
    )
    moved = move(
        session,
        list(session.scalars(failed)),
        M.PENDING,
        sources={M.FAILED},
        attempts=0,
        final_at=None,
        not_before=None,
        updated_at=now,
    )
    if moved:
        _reopen(session, campaign_id, now)
    return len(moved)


def resolve_in_doubt(session: Session, campaign_id: int, now: datetime, *, resend: bool) -> int:
    """Ops settle sends whose outcome cannot be known.

    ``resend``: the operator has checked (provider dashboard, recipient) that they did not go
    out, and sends them again. Otherwise they are declared sent: final as ``unknown`` (they went
    out, but without a provider id no delivery report can ever be matched to them).
    """
    _lock(session, campaign_id)
    doubtful = list(
        session.scalars(
            select(Message.id).where(
                Message.campaign_id == campaign_id, Message.state == M.IN_DOUBT
            )
        )
    )
    if resend:
        moved = move(
            session, doubtful, M.PENDING, sources={M.IN_DOUBT}, not_before=None, updated_at=now
        )
        if moved:
            _reopen(session, campaign_id, now)
    else:
        moved = move(
            session,
            doubtful,
            M.UNKNOWN,
            sources={M.IN_DOUBT},
            last_error="marked sent by ops",
            submitted_at=now,
            final_at=now,
            next_poll_at=None,
            updated_at=now,
        )
    return len(moved)


def campaign_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Messages of a campaign by state."""
    rows = session.execute(
        select(Message.state, func.count())
        .where(Message.campaign_id == campaign_id)
        .group_by(Message.state)
    ).all()
    return {state: int(count) for state, count in rows}


def failures(session: Session, campaign_id: int) -> list[dict[str, Any]]:
    """Recipients not delivered, grouped by the provider's own code with a plain label."""
    campaign = get_campaign(session, campaign_id)
    grouped: Counter[tuple[str, str, str]] = Counter()
    for state, error, provider_state, count in session.execute(
        select(Message.state, Message.last_error, Message.provider_state, func.count())
        .where(
            Message.campaign_id == campaign_id,
            Message.state.in_((M.FAILED, M.UNDELIVERABLE, M.IN_DOUBT, M.EXPIRED, M.UNKNOWN)),
        )
        .group_by(Message.state, Message.last_error, Message.provider_state)
    ):
        reason = explain(state, campaign.provider, error, provider_state)
        grouped[(reason.state, reason.code, reason.label)] += int(count)
    return [
        {"state": state, "code": code, "label": label, "count": count}
        for (state, code, label), count in grouped.most_common()
    ]


def report(session: Session, campaign_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Counts by state and by reason, parts and cost: what marketing and ops look at; also how
    many recipients wait for their sending window (quiet hours) and when the next opens."""
    campaign = get_campaign(session, campaign_id)
    waiting, next_opening = waiting_for_window(session, campaign_id, now or utcnow())
    broken_down = failures(session, campaign_id)
    reasons: Counter[str] = Counter()
    for item in broken_down:
        label = f"{item['label']} ({item['code']})" if item["code"] else item["label"]
        reasons[f"{item['state']}: {label}"] += item["count"]
    parts = session.scalar(
        select(func.coalesce(func.sum(Message.parts), 0)).where(
            Message.campaign_id == campaign_id,
            Message.state.notin_(
                (M.PENDING, M.QUEUED, M.FAILED, M.CANCELLED, M.EXPIRED, M.SUPPRESSED)
            ),
        )
    )
    price = float(campaign.estimate.get("price_per_part", 0.0))
    return {
        "id": campaign.id,
        "name": campaign.name,
        "provider": campaign.provider,
        "state": campaign.state,
        "counts": campaign_counts(session, campaign_id),
        "reasons": dict(reasons.most_common()),
        "failures": broken_down,
        "parts_sent": int(parts or 0),
        "cost": round(int(parts or 0) * price, 4),
        "waiting_for_window": waiting,
        "next_window_opens": next_opening.isoformat() if next_opening else None,
        "pause_reason": campaign.pause_reason,
        "paused_at": campaign.paused_at.isoformat() if campaign.paused_at else None,
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }


def progress(session: Session, campaign_id: int, now: datetime, *, deadline: timedelta) -> Progress:
    """Handed over and final, and until when delivery reports may still come (``deadline``
    after the last submission, or the validity: the polling deadline)."""
    campaign = get_campaign(session, campaign_id)
    counts = campaign_counts(session, campaign_id)
    last_submitted = session.scalar(
        select(func.max(Message.submitted_at)).where(
            Message.campaign_id == campaign_id, Message.state.in_(AWAITING)
        )
    )
    until = (
        poll_deadline(last_submitted, campaign.validity, default=deadline)
        if last_submitted is not None
        else None
    )
    return describe(
        campaign.state,
        counts,
        start_at=campaign.start_at,
        paused_at=campaign.paused_at,
        pause_reason=campaign.pause_reason,
        awaiting_until=until,
        now=now,
    )


def delete_draft(session: Session, campaign_id: int) -> str:
    """Delete a draft and its recipients (nothing was sent); the kept source file's path, for
    the caller to remove after the commit. Any other state is a conflict: history stays."""
    campaign = get_campaign(session, campaign_id)
    if campaign.state != C.DRAFT:
        raise _refuse(campaign, "delete")
    source = campaign.source_file
    session.execute(delete(Message).where(Message.campaign_id == campaign_id))
    deleted = session.execute(
        delete(Campaign).where(Campaign.id == campaign_id, Campaign.state == C.DRAFT)
    ).rowcount  # type: ignore[attr-defined]
    if not deleted:
        raise _refuse(get_campaign(session, campaign_id), "delete")
    session.expire_all()
    return source


def _lock(session: Session, campaign_id: int) -> Campaign:
    """The campaign row, locked until commit on PostgreSQL (SQLite's write lock serialises).

    Finishing and reopening both take it before they look at messages: a ``retry-failed``
    moving messages back to ``pending`` while the feeder finished the campaign once left it
    ``completed`` with recipients no command could revive.
    """
    campaign = session.scalars(
        select(Campaign)
        .where(Campaign.id == campaign_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if campaign is None:
        raise InputError(f"no campaign with id {campaign_id}", code="not_found")
    return campaign


def _open_messages(campaign_id: int) -> Any:
    return exists().where(
        Message.campaign_id == campaign_id, Message.state.notin_(FINAL_MESSAGE_STATES)
    )


def _reopen(session: Session, campaign_id: int, now: datetime) -> bool:
    """A completed campaign with open messages again runs: one conditional statement."""
    moved = session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.state == C.COMPLETED,
            _open_messages(campaign_id),
        )
        .values(state=C.RUNNING, finished_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.expire_all()
    return bool(moved)


def finish_if_done(session: Session, campaign_id: int, now: datetime) -> bool:
    """Complete a running campaign once every message is final, storing its report.

    In-doubt messages are not final: a campaign with any waits for ops to settle them. The
    check and the move are one conditional statement (``NOT EXISTS`` open messages), run after
    taking the campaign's lock so that on PostgreSQL it reads every message committed by a
    reopening that held the lock before it.
    """
    _lock(session, campaign_id)
    finished = session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.state == C.RUNNING,
            ~_open_messages(campaign_id),
        )
        .values(state=C.COMPLETED, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.expire_all()
    if not finished:
        return False
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(report=report(session, campaign_id))
    )
    return True
