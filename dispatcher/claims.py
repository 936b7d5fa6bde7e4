"""Claims and send outcomes: every move of a message is a conditional UPDATE.

Each function moves rows only from the states :mod:`dispatcher.states` allows, so a task that is
redelivered, duplicated or late finds nothing to do: the database, not the broker, decides who
sends. On PostgreSQL the feeder's window is taken ``FOR UPDATE SKIP LOCKED`` so two feeders
never wait on each other; on SQLite the write lock serialises them and the state guard is enough.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from dispatcher.models import Campaign, Message
from dispatcher.states import MessageState, check_move, sources_of

__all__ = [
    "ClaimedMessage",
    "Retry",
    "claim_for_send",
    "claim_window",
    "in_flight",
    "move",
    "record_failed",
    "record_in_doubt",
    "record_retry",
    "record_submitted",
    "release",
    "sweep_stuck",
]

M = MessageState


@dataclasses.dataclass(frozen=True)
class ClaimedMessage:
    """What a send task needs of a recipient it now owns (state ``sending``)."""

    id: int
    phone: str
    text: str
    ext_ref: str
    encoding: str
    attempts: int


@dataclasses.dataclass(frozen=True)
class Retry:
    """A recipient to try again later, or to fail if it has no attempts left. ``refund``: the
    attempt is given back (the call never left for a reason that is ours, not the provider's)."""

    id: int
    reason: str
    not_before: datetime
    refund: bool = False


def _ids(result: Any) -> list[int]:
    return [row[0] for row in result]


def move(
    session: Session,
    ids: Sequence[int],
    target: MessageState,
    *,
    sources: Collection[MessageState],
    **values: Any,
) -> list[int]:
    """Move those of ``ids`` still in one of ``sources`` (the states the caller chose them in)
    to ``target``; return those moved.

    Never "from any state allowed to reach ``target``": between the caller's SELECT and this
    UPDATE a worker may claim a row, and the sweeper once moved a message being sent from
    ``sending`` back to ``pending``, to be sent again (found by the soak, on PostgreSQL).
    """
    for source in sources:
        check_move(source, target)
    if not ids:
        return []
    statement = (
        update(Message)
        .where(Message.id.in_(ids), Message.state.in_(sources))
        .values(state=target, **values)
        .returning(Message.id)
    )
    return _ids(session.execute(statement))


def claim_window(session: Session, campaign: Campaign, limit: int, now: datetime) -> list[int]:
    """Take up to ``limit`` due pending messages of a campaign: ``pending`` → ``queued``."""
    if limit <= 0:
        return []
    due = (
        select(Message.id)
        .where(
            Message.campaign_id == campaign.id,
            Message.state == M.PENDING,
            or_(Message.not_before.is_(None), Message.not_before <= now),
        )
        .order_by(Message.id)
        .limit(limit)
    )
    chosen: Any = due.scalar_subquery()
    if session.get_bind().dialect.name == "postgresql":
        # Materialised once: as a plain IN (subquery) PostgreSQL may plan a semi-join that
        # rescans the LIMIT ... SKIP LOCKED subquery per row and claims more than ``limit``.
        locked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        chosen = select(locked.c.id)
    statement = (
        update(Message)
        .where(Message.id.in_(chosen), Message.state == M.PENDING)
        .values(state=M.QUEUED, queued_at=now)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(_ids(session.execute(statement)))


def release(session: Session, ids: Sequence[int], now: datetime) -> list[int]:
    """Give queued work back to the feeder (campaign paused or stopped); only ``queued`` rows:
    a redelivered task must not revive anything else (``failed`` may also reach ``pending``)."""
    if not ids:
        return []
    statement = (
        update(Message)
        .where(Message.id.in_(ids), Message.state == M.QUEUED)
        .values(state=M.PENDING, queued_at=None, updated_at=now)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return _ids(session.execute(statement))


def in_flight(session: Session, campaign_id: int) -> int:
    """Messages of a campaign claimed but not yet answered: the broker's share of it."""
    statement = select(func.count()).where(
        Message.campaign_id == campaign_id, Message.state.in_((M.QUEUED, M.SENDING))
    )
    return int(session.scalar(statement) or 0)


def claim_for_send(session: Session, ids: Sequence[int], now: datetime) -> list[ClaimedMessage]:
    """``queued`` → ``sending`` for the ids this task carries; a redelivery gets nothing."""
    if not ids:
        return []
    statement = (
        update(Message)
        .where(Message.id.in_(ids), Message.state == M.QUEUED)
        .values(state=M.SENDING, sending_at=now, attempts=Message.attempts + 1)
        .returning(
            Message.id,
            Message.phone,
            Message.text,
            Message.ext_ref,
            Message.encoding,
            Message.attempts,
        )
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(statement).all()
    return sorted((ClaimedMessage(*row) for row in rows), key=lambda m: m.id)


def _bulk(
    session: Session,
    target: MessageState,
    rows: list[dict[str, Any]],
    fence: Mapping[int, int],
    *,
    sources: frozenset[MessageState] | None = None,
    **values: Any,
) -> int:
    """Per-row values for many messages, each moved only from ``sources`` (default: every
    state allowed to reach ``target``) and only while it is still at the attempt its sender
    claimed (``fence``: message id → attempt); returns how many rows were updated.

    The attempt fences out a stale sender: a worker whose send was made in doubt, resent by ops
    and claimed again by another worker must not move the new attempt's row with its late
    answer (it once put a row being sent back to ``pending``: a third send).
    """
    if not rows:
        return 0
    table = Message.__table__
    statement = (
        update(table)  # type: ignore[arg-type]
        .where(
            and_(
                table.c.id == bindparam("mid"),
                table.c.attempts == bindparam("claimed"),
                # Not ``IN``: an expanding parameter cannot be used with executemany().
                or_(*(table.c.state == s for s in sorted(sources or sources_of(target)))),
            )
        )
        .values(state=target, **values)
    )
    fenced = [row | {"claimed": fence[row["mid"]]} for row in rows]
    result = session.connection().execute(statement, fenced)
    return result.rowcount if isinstance(result, CursorResult) else len(rows)


def record_submitted(
    session: Session,
    accepted: Sequence[tuple[int, str]],
    now: datetime,
    poll_at: datetime,
    *,
    attempts: Mapping[int, int],
) -> int:
    """The provider took these: keep its id, and poll them if nothing is heard by ``poll_at``.

    ``attempts`` (message id → attempt claimed), here and in every ``record_*``: the answer
    belongs to that attempt only."""
    rows = [{"mid": mid, "pid": pid} for mid, pid in accepted]
    return _bulk(
        session,
        M.SUBMITTED,
        rows,
        attempts,
        provider_message_id=bindparam("pid"),
        submitted_at=now,
        next_poll_at=poll_at,
        last_error=None,
        updated_at=now,
    )


def record_failed(
    session: Session,
    failed: Sequence[tuple[int, str]],
    now: datetime,
    *,
    transient: bool,
    attempts: Mapping[int, int],
) -> int:
    """Final failure with the provider's reason; ``transient`` lets ops retry it later."""
    rows = [{"mid": mid, "reason": reason} for mid, reason in failed]
    return _bulk(
        session,
        M.FAILED,
        rows,
        attempts,
        last_error=bindparam("reason"),
        error_transient=transient,
        final_at=now,
        updated_at=now,
    )


def record_retry(
    session: Session, retries: Sequence[Retry], now: datetime, *, attempts: Mapping[int, int]
) -> int:
    """Nothing reached the provider: back to ``pending``, claimable again after ``not_before``."""
    rows = [
        {"mid": r.id, "reason": r.reason, "nb": r.not_before, "refund": int(r.refund)}
        for r in retries
    ]
    # Only the sender's own claim (or the in-doubt the sweeper made of it: the worker knows
    # nothing went out). sources_of(PENDING) would also revive queued and failed messages.
    return _bulk(
        session,
        M.PENDING,
        rows,
        attempts,
        sources=frozenset({M.SENDING, M.IN_DOUBT}),
        last_error=bindparam("reason"),
        not_before=bindparam("nb"),
        attempts=Message.__table__.c.attempts - bindparam("refund"),
        updated_at=now,
    )


def record_in_doubt(
    session: Session,
    doubtful: Sequence[tuple[int, str]],
    now: datetime,
    *,
    attempts: Mapping[int, int],
) -> int:
    """The request may have reached the provider: never resend blindly, reconcile instead."""
    rows = [{"mid": mid, "reason": reason} for mid, reason in doubtful]
    return _bulk(
        session,
        M.IN_DOUBT,
        rows,
        attempts,
        sources=frozenset({M.SENDING}),
        last_error=bindparam("reason"),
        updated_at=now,
    )


def sweep_stuck(
    session: Session, now: datetime, *, sending_timeout: timedelta, queued_timeout: timedelta
) -> tuple[int, int]:
    """Repair what crashed workers and lost broker messages left behind.

    ``sending`` past the timeout became in doubt (the worker may have died after the provider
    answered); ``queued`` past the timeout lost its broker message and goes back to ``pending``
    for the feeder. Returns ``(in_doubt, released)``.
    """
    # Each a single conditional UPDATE: a row claimed or re-queued a moment ago is not touched.
    doubted = session.execute(
        update(Message)
        .where(Message.state == M.SENDING, Message.sending_at < now - sending_timeout)
        .values(state=M.IN_DOUBT, last_error="worker lost during send", updated_at=now)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    in_doubt = len(_ids(doubted))
    released = session.execute(
        update(Message)
        .where(Message.state == M.QUEUED, Message.queued_at < now - queued_timeout)
        .values(state=M.PENDING, queued_at=None, updated_at=now)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return in_doubt, len(_ids(released))
