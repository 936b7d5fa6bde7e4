"""Delivery tracking: reports from callbacks and polls, applied once and only forwards.

Every report is first recorded as a ``status_events`` row keyed by a ``dedup_key`` built from
what the provider said (message, state, time); a repeated callback hits the unique key and
changes nothing. A report then moves its message only if :func:`dispatcher.states.report_applies`
says it is news (a late ``sent`` never overwrites ``delivered``), with a conditional UPDATE on
the state it read, so two concurrent reports cannot both win.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dispatcher.backoff import next_poll_at, poll_deadline
from dispatcher.models import Campaign, InboundMessage, Message, StatusEvent
from dispatcher.states import FINAL_MESSAGE_STATES, MessageState, report_applies

__all__ = [
    "SILENT_PAST_DEADLINE",
    "SILENT_PAST_VALIDITY",
    "Applied",
    "Report",
    "apply_report",
    "bounded_key",
    "claim_due_polls",
    "record_poll_silence",
    "store_inbound",
]

M = MessageState

SILENT_PAST_DEADLINE = "silent past the polling deadline"
"""The reason of an ``unknown`` message: no report, and polls said nothing final in time."""
SILENT_PAST_VALIDITY = "silent until its validity passed"
"""The reason of a message ``expired`` by us (the provider never said it expired)."""


class Applied(enum.StrEnum):
    """What became of a report."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    UNKNOWN_MESSAGE = "unknown_message"


@dataclasses.dataclass(frozen=True)
class Report:
    """One status heard about one message, whatever its source."""

    provider: str
    source: str
    provider_state: str
    state: MessageState | None
    dedup_key: str
    payload: Mapping[str, Any]
    provider_message_id: str | None = None
    ext_ref: str | None = None


def _insert_ignoring_duplicates(session: Session, model: Any, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on both backends; True if the row is new."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # RETURNING, not rowcount: on PostgreSQL the ORM adds its own RETURNING and the driver then
    # reports rowcount -1, which made every duplicate look new.
    statement = insert(model).values(**values).on_conflict_do_nothing().returning(model.id)
    return session.execute(statement).first() is not None


def _find(session: Session, report: Report) -> Message | None:
    if report.ext_ref:
        found = session.scalars(select(Message).where(Message.ext_ref == report.ext_ref)).first()
        if found is not None:
            return found
    if report.provider_message_id:
        statement = (
            select(Message)
            .join(Campaign)
            .where(
                Message.provider_message_id == report.provider_message_id,
                Campaign.provider == report.provider,
            )
        )
        return session.scalars(statement).first()
    return None


DEDUP_KEY_LENGTH = 300
"""The width of the ``dedup_key`` columns."""


def bounded_key(key: str) -> str:
    """``key`` as it fits the column: a longer key keeps its start and ends with the SHA-256
    of the whole, so two keys differing only past the cut stay two events (a plain cut made
    two maximal TimeToChat MOs with different texts one duplicate)."""
    if len(key) <= DEDUP_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: DEDUP_KEY_LENGTH - len(digest) - 1]}#{digest}"


def apply_report(session: Session, report: Report, now: datetime) -> Applied:
    """Record a report once, and move its message forward if it is news."""
    message = _find(session, report)
    event = {
        "message_id": message.id if message else None,
        "provider": report.provider,
        "source": report.source,
        "provider_state": report.provider_state,
        "state": report.state,
        "dedup_key": bounded_key(report.dedup_key),
        "payload": dict(report.payload),
        "received_at": now,
        "applied": False,
    }
    if not _insert_ignoring_duplicates(session, StatusEvent, event):
        return Applied.DUPLICATE
    if message is None:
        return Applied.UNKNOWN_MESSAGE
    current = MessageState(message.state)
    if report.state is None or not report_applies(current, report.state):
        return Applied.STALE
    values: dict[str, Any] = {
        "state": report.state,
        "provider_state": report.provider_state,
        "updated_at": now,
    }
    if report.provider_message_id and not message.provider_message_id:
        values["provider_message_id"] = report.provider_message_id
    if message.submitted_at is None:
        values["submitted_at"] = now
    if report.state in FINAL_MESSAGE_STATES:
        values |= {"final_at": now, "next_poll_at": None}
    elif message.next_poll_at is None:
        # Settled from in_doubt (or sending) without a final word: nothing scheduled a poll,
        # so without one it would stay sent forever and its campaign would never finish.
        values["next_poll_at"] = now
    moved = session.execute(
        update(Message)
        .where(Message.id == message.id, Message.state == current)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not moved:
        return Applied.STALE
    session.execute(
        update(StatusEvent).where(StatusEvent.dedup_key == event["dedup_key"]).values(applied=True)
    )
    return Applied.APPLIED


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
) -> bool:
    """Keep an incoming SMS once, linked to the message it answers when the provider says."""
    reply_to = None
    if reply_to_ext_ref or reply_to_provider_id:
        conditions = []
        if reply_to_ext_ref:
            conditions.append(Message.ext_ref == reply_to_ext_ref)
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
    return _insert_ignoring_duplicates(
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

    Past the deadline a message still in flight is final: ``expired`` when the campaign's
    validity has passed (the provider will not deliver it any more), else ``unknown``.
    """
    rows = session.execute(
        select(Message, Campaign.validity)
        .join(Campaign)
        .where(Message.id.in_(message_ids), Message.state.in_((M.SUBMITTED, M.SENT)))
    ).all()
    for message, validity in rows:
        submitted = message.submitted_at or now
        if now >= poll_deadline(submitted, validity, default=deadline):
            expired = validity is not None and now >= validity
            values: dict[str, Any] = {
                "state": M.EXPIRED if expired else M.UNKNOWN,
                "last_error": SILENT_PAST_VALIDITY if expired else SILENT_PAST_DEADLINE,
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
