"""Batched report application on a real database: races, statement counts, bounded storage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from dispatcher import reports as reports_module
from dispatcher.models import Message, StatusEvent, utcnow
from dispatcher.reports import Applied, Report, apply_reports
from dispatcher.states import MessageState
from dispatcher.tracking import apply_report
from tests.conftest import Seed

M = MessageState
NOW = utcnow()


def report(state: MessageState, pid: str, *, key: str | None = None) -> Report:
    return Report(
        provider="bytehand",
        source="callback",
        provider_state=str(state).upper(),
        state=state,
        dedup_key=key or f"{pid}:{state}",
        payload={"message": pid},
        provider_message_id=pid,
    )


def state_of(engine: Engine, mid: int) -> str:
    with Session(engine) as session:
        return session.execute(select(Message.state).where(Message.id == mid)).scalar_one()


@contextmanager
def before_first(engine: Engine, prefix: str, action: Any) -> Iterator[None]:
    """Run ``action`` once, just before the first statement starting with ``prefix``."""
    fired: list[bool] = []

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not fired and statement.lstrip().upper().startswith(prefix):
            fired.append(True)
            action()

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    assert fired, f"no statement starting with {prefix!r} ran"


def commit_report(engine: Engine, racing: Report) -> None:
    with Session(engine) as session:
        assert apply_report(session, racing, NOW) == Applied.APPLIED
        session.commit()


def test_delivery_racing_an_acceptance_is_not_lost(db_engine: Engine, seed: Seed) -> None:
    """A DELIVERED that read the message before a racing ACCEPTED committed still applies."""
    _, [mid] = seed(M.SUBMITTED, provider_message_id="p1")
    accepted = report(M.SENT, "p1")
    with (
        before_first(
            db_engine, "INSERT INTO STATUS_EVENTS", lambda: commit_report(db_engine, accepted)
        ),
        Session(db_engine) as session,
    ):
        result = apply_report(session, report(M.DELIVERED, "p1"), NOW)
        session.commit()
    assert result == Applied.APPLIED
    assert state_of(db_engine, mid) == M.DELIVERED


def test_acceptance_racing_a_delivery_does_not_undo_it(db_engine: Engine, seed: Seed) -> None:
    """An ACCEPTED that read the message before a racing DELIVERED committed moves nothing."""
    _, [mid] = seed(M.SUBMITTED, provider_message_id="p1")
    delivered = report(M.DELIVERED, "p1")
    with (
        before_first(
            db_engine, "INSERT INTO STATUS_EVENTS", lambda: commit_report(db_engine, delivered)
        ),
        Session(db_engine) as session,
    ):
        result = apply_report(session, report(M.SENT, "p1"), NOW)
        session.commit()
    assert result == Applied.STALE
    assert state_of(db_engine, mid) == M.DELIVERED


def test_a_batch_moves_messages_with_one_update_per_state(db_engine: Engine, seed: Seed) -> None:
    """Forty reports of two states move their twenty messages with two UPDATEs of messages."""
    pids = [f"p{n}" for n in range(20)]
    _, ids = seed(*[M.SUBMITTED] * 20)
    with Session(db_engine) as session:
        for mid, pid in zip(ids, pids, strict=True):
            session.get(Message, mid).provider_message_id = pid  # type: ignore[union-attr]
        session.commit()
    batch = [report(M.SENT, pid) for pid in pids] + [report(M.DELIVERED, pid) for pid in pids]
    updates: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE MESSAGES"):
            updates.append(statement)

    event.listen(db_engine, "before_cursor_execute", count)
    try:
        with Session(db_engine) as session:
            results = apply_reports(session, batch, NOW)
            session.commit()
    finally:
        event.remove(db_engine, "before_cursor_execute", count)
    assert len(updates) == 2
    assert set(results) == {Applied.APPLIED}
    assert {state_of(db_engine, mid) for mid in ids} == {M.DELIVERED}


def test_a_repeat_inside_one_batch_is_a_duplicate(db_engine: Engine, seed: Seed) -> None:
    """The same event twice in one batch is recorded once."""
    seed(M.SUBMITTED, provider_message_id="p1")
    with Session(db_engine) as session:
        results = apply_reports(session, [report(M.SENT, "p1")] * 2, NOW)
        session.commit()
        stored = session.scalar(select(func.count()).select_from(StatusEvent))
    assert results == [Applied.APPLIED, Applied.DUPLICATE]
    assert stored == 1


def test_reports_for_unknown_messages_are_kept_up_to_the_cap(
    db_engine: Engine, seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap, reports naming no message of ours are answered but not stored."""
    monkeypatch.setattr(reports_module, "UNMATCHED_EVENTS_CAP", 2)
    seed(M.SUBMITTED, provider_message_id="p1")
    with Session(db_engine) as session:
        batch = [report(M.DELIVERED, f"stranger-{n}") for n in range(3)]
        results = apply_reports(session, [*batch, report(M.DELIVERED, "p1")], NOW)
        session.commit()
        stored = session.scalar(
            select(func.count()).select_from(StatusEvent).where(StatusEvent.message_id.is_(None))
        )
    assert results == [Applied.UNKNOWN_MESSAGE] * 3 + [Applied.APPLIED]
    assert stored == 2


def test_a_late_report_inside_one_batch_is_stale(db_engine: Engine, seed: Seed) -> None:
    """A DELIVERED then a late ACCEPTED in one batch: delivered, the ACCEPTED stale."""
    _, [mid] = seed(M.SUBMITTED, provider_message_id="p1")
    with Session(db_engine) as session:
        results = apply_reports(session, [report(M.DELIVERED, "p1"), report(M.SENT, "p1")], NOW)
        session.commit()
    assert results == [Applied.APPLIED, Applied.STALE]
    assert state_of(db_engine, mid) == M.DELIVERED
