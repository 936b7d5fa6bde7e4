"""Delivery tracking: reports from callbacks and polls, applied once and only forwards.

Every report is first recorded as a ``status_events`` row keyed by a ``dedup_key`` built from
what the provider said (message, state, time); a repeated callback hits the unique key and
changes nothing. A report then moves its message only if :func:`dispatcher.states.report_applies`
says it is news (a late ``sent`` never overwrites ``delivered``). The batch machinery lives in
:mod:`dispatcher.reports`; :func:`apply_report` is its batch of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dispatcher.backoff import next_poll_at, poll_deadline
from dispatcher.constants import TIMETOCHAT
from dispatcher.models import Campaign, InboundMessage, Message
from dispatcher.replies import Audience, handle_inbound
from dispatcher.reports import (
    DEDUP_KEY_LENGTH,
    Applied,
    Report,
    apply_reports,
    attempt_ref,
    bounded_key,
    split_attempt_ref,
)
from dispatcher.states import MessageState

__all__ = [
    "DEDUP_KEY_LENGTH",
    "SILENT_PAST_DEADLINE",
    "SILENT_PAST_VALIDITY",
    "Applied",
    "Report",
    "apply_report",
    "attempt_ref",
    "bounded_key",
    "claim_due_polls",
    "record_poll_silence",
    "split_attempt_ref",
    "store_inbound",
]

M = MessageState

PROVIDERS_WITH_VALIDITY = frozenset({TIMETOCHAT})
"""Providers sent the campaign's validity, past which they stop trying to deliver."""

SILENT_PAST_DEADLINE = "silent past the polling deadline"
"""The reason of an ``unknown`` message: no report, and polls said nothing final in time."""
SILENT_PAST_VALIDITY = "silent until its validity passed"
"""The reason of an ``unknown`` message the provider was told to stop trying at its validity."""


def _insert_ignoring_duplicates(session: Session, model: Any, values: dict[str, Any]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING on both backends; the new row's id, None if known."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # RETURNING, not rowcount: on PostgreSQL the ORM adds its own RETURNING and the driver then
    # reports rowcount -1, which made every duplicate look new.
    statement = insert(model).values(**values).on_conflict_do_nothing().returning(model.id)
    row = session.execute(statement).first()
    return None if row is None else int(row[0])


def apply_report(session: Session, report: Report, now: datetime) -> Applied:
    """Record a report once, and move its message forward if it is news."""
    [result] = apply_reports(session, [report], now)
    return result


def store_inbound(
    session: Session,
    *,
    provider: str,
    from_number: str,
    to_number: str,
    text: str,
    dedup_key: str,
    now: datetime,
    provider_message_id: str | None = None,
    reply_to_ext_ref: str | None = None,
    reply_to_provider_id: str | None = None,
    audience: Audience | None = None,
) -> bool:
    """Keep an incoming SMS once, linked to the message it answers when the provider says;
    with ``audience``, a new one is then linked, classified and acted on
    (:func:`dispatcher.replies.handle_inbound`: opt-outs)."""
    reply_to = None
    if reply_to_ext_ref or reply_to_provider_id:
        conditions = []
        if reply_to_ext_ref:
            conditions.append(Message.ext_ref == split_attempt_ref(reply_to_ext_ref)[0])
        if reply_to_provider_id:
            # A provider id is unique only within its provider (as _find matches reports).
            conditions.append(
                and_(
                    Message.provider_message_id == reply_to_provider_id,
                    Message.campaign_id.in_(
                        select(Campaign.id).where(Campaign.provider == provider)
                    ),
                )
            )
        reply_to = session.scalar(select(Message.id).where(or_(*conditions)).limit(1))
    stored = _insert_ignoring_duplicates(
        session,
        InboundMessage,
        {
            "provider": provider,
            "provider_message_id": provider_message_id,
            "from_number": from_number,
            "to_number": to_number,
            "text": text,
            "reply_to_id": reply_to,
            "dedup_key": bounded_key(dedup_key),
            "received_at": now,
        },
    )
    if stored is not None and audience is not None:
        handle_inbound(session, stored, audience, now)
    return stored is not None


def claim_due_polls(
    session: Session, provider: str, now: datetime, *, limit: int, lease: timedelta
) -> list[int]:
    """Messages silent past their ``next_poll_at``, leased so no other tick polls them too."""
    due = (
        select(Message.id)
        .join(Campaign)
        .where(
            Campaign.provider == provider,
            Message.state.in_((M.SUBMITTED, M.SENT)),
            Message.next_poll_at <= now,
        )
        .order_by(Message.next_poll_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=Message)
    ids = list(session.scalars(due))
    if not ids:
        return []
    statement = (
        update(Message)
        .where(Message.id.in_(ids), Message.next_poll_at <= now)
        .values(next_poll_at=now + lease)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(row[0] for row in session.execute(statement))


def record_poll_silence(
    session: Session,
    message_ids: Sequence[int],
    now: datetime,
    *,
    first: timedelta,
    ceiling: timedelta,
    deadline: timedelta,
) -> None:
    """After a poll that brought no final news: poll again later, or give up at the deadline.

    Past the deadline a message still in flight is final as ``unknown``: it was handed over, so
    only its provider may say it expired. The deadline is ``deadline`` after submission, or the
    campaign's validity when the provider was given it (TimeToChat's ``validityDate``); ByteHand
    has no validity parameter, so its messages are still at the operator when it passes.
    """
    rows = session.execute(
        select(Message, Campaign.validity, Campaign.provider)
        .join(Campaign)
        .where(Message.id.in_(message_ids), Message.state.in_((M.SUBMITTED, M.SENT)))
    ).all()
    for message, validity, provider in rows:
        submitted = message.submitted_at or now
        handed_validity = validity if provider in PROVIDERS_WITH_VALIDITY else None
        if now >= poll_deadline(submitted, handed_validity, default=deadline):
            # Handed over, so never expired on our side (the provider may still deliver it):
            # unknown, with why nothing final came.
            past_validity = handed_validity is not None and now >= handed_validity
            values: dict[str, Any] = {
                "state": M.UNKNOWN,
                "last_error": SILENT_PAST_VALIDITY if past_validity else SILENT_PAST_DEADLINE,
                "final_at": now,
                "next_poll_at": None,
            }
        else:
            values = {
                "polls": message.polls + 1,
                "next_poll_at": next_poll_at(now, message.polls, first=first, ceiling=ceiling),
            }
        session.execute(
            update(Message)
            .where(Message.id == message.id, Message.state == message.state)
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
