"""The callback inbox on a real database: group commit, batch application, nothing lost."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.inbox import (
    Inbox,
    apply_waiting,
    mo_item,
    open_own_inbox,
    own_inbox_url,
    report_item,
)
from dispatcher.models import CallbackInbox, InboundMessage, Message, StatusEvent, utcnow
from dispatcher.reports import Report
from dispatcher.states import MessageState
from tests.conftest import Seed

M = MessageState
NOW = utcnow()


def delivered(pid: str) -> dict[str, Any]:
    return report_item(
        Report("bytehand", "callback", "DELIVERED", M.DELIVERED, f"{pid}:d", {"message": pid}, pid)
    )


def states(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(Message.state).order_by(Message.id)))


def waiting(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(CallbackInbox)) or 0)


def seed_submitted(engine: Engine, seed: Seed, count: int) -> list[str]:
    _, ids = seed(*[M.SUBMITTED] * count)
    pids = [f"p{n}" for n in range(count)]
    with Session(engine) as session:
        for mid, pid in zip(ids, pids, strict=True):
            session.get(Message, mid).provider_message_id = pid  # type: ignore[union-attr]
        session.commit()
    return pids


def test_concurrent_appends_share_one_commit(db_engine: Engine, seed: Seed) -> None:
    """Nineteen appends queued while a commit runs are written together by the next one."""
    pids = seed_submitted(db_engine, seed, 20)
    inserts: list[int] = []
    all_queued = threading.Event()

    def hold_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CALLBACK_INBOX"):
            inserts.append(1)
            all_queued.wait(10)

    inbox = Inbox(db_engine, audiences={})
    event.listen(db_engine, "before_cursor_execute", hold_first)
    inbox.start()
    try:

        async def send_all() -> None:
            first = asyncio.ensure_future(inbox.append([delivered(pids[0])]))
            while not inserts:  # the first commit is under way, and held
                await asyncio.sleep(0.01)
            rest = [asyncio.ensure_future(inbox.append([delivered(pid)])) for pid in pids[1:]]
            await asyncio.sleep(0.2)  # every other append is queued behind it
            all_queued.set()
            await asyncio.gather(first, *rest)

        asyncio.run(send_all())
    finally:
        inbox.stop()
        event.remove(db_engine, "before_cursor_execute", hold_first)
    assert len(inserts) == 2
    assert set(states(db_engine)) == {M.DELIVERED}
    assert waiting(db_engine) == 0


def test_what_a_stopped_process_left_is_applied_at_start(db_engine: Engine, seed: Seed) -> None:
    """Rows answered but not applied before the web process stopped are applied by the next."""
    pids = seed_submitted(db_engine, seed, 3)
    mo = mo_item(
        provider="bytehand",
        from_number="+79161234567",
        to_number="+79990000000",
        text="STOP",
        dedup_key="mo:bytehand:1",
    )
    rows = [{"item": item, "received_at": NOW} for item in [*map(delivered, pids), mo]]
    with Session(db_engine) as session:
        session.execute(insert(CallbackInbox).values(rows))
        session.commit()
    inbox = Inbox(db_engine, audiences={})
    inbox.start()
    inbox.stop()
    assert states(db_engine) == [M.DELIVERED] * 3
    with Session(db_engine) as session:
        assert session.scalar(select(InboundMessage.text)) == "STOP"
    assert waiting(db_engine) == 0


def test_a_failed_application_keeps_the_rows(db_engine: Engine, seed: Seed) -> None:
    """When applying fails, the claimed rows stay in the inbox and the next round applies them."""
    pids = seed_submitted(db_engine, seed, 2)
    with Session(db_engine) as session:
        rows = [{"item": delivered(pid), "received_at": NOW} for pid in pids]
        session.execute(insert(CallbackInbox).values(rows))
        session.commit()

    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE MESSAGES"):
            raise RuntimeError("the database refused the write")

    event.listen(db_engine, "before_cursor_execute", fail)
    try:
        with pytest.raises(RuntimeError):
            apply_waiting(sessionmaker(db_engine), NOW, audiences={})
    finally:
        event.remove(db_engine, "before_cursor_execute", fail)
    assert (waiting(db_engine), states(db_engine)) == (2, [M.SUBMITTED] * 2)
    assert apply_waiting(sessionmaker(db_engine), NOW, audiences={}) == 2
    assert states(db_engine) == [M.DELIVERED] * 2


def test_own_inbox_url_is_a_file_beside_a_sqlite_file() -> None:
    """Only a SQLite file gets an inbox file; PostgreSQL and in-memory SQLite keep the table."""
    assert own_inbox_url("sqlite:////var/lib/d/dispatcher.db") == (
        "sqlite:////var/lib/d/dispatcher.db.inbox"
    )
    assert own_inbox_url("sqlite:///relative.db") == "sqlite:///relative.db.inbox"
    assert own_inbox_url("sqlite://") is None
    assert own_inbox_url("sqlite:///:memory:") is None
    assert own_inbox_url("postgresql+psycopg://u:secret@db/x") is None


@pytest.fixture
def own_file(tmp_path: Path) -> Iterator[Engine]:
    engine = open_own_inbox(f"sqlite:///{tmp_path / 'callbacks.db.inbox'}")
    yield engine
    engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_answered_callbacks_in_their_own_file_are_applied_then_deleted(
    db_engine: Engine, own_file: Engine, seed: Seed
) -> None:
    """The append goes to the inbox file, the states to the campaign database, and the file is
    empty once they are applied; the campaign database's own table is never written."""
    pids = seed_submitted(db_engine, seed, 5)
    inbox = Inbox(db_engine, store=own_file, audiences={})
    inbox.start()
    try:

        async def send_all() -> None:
            await asyncio.gather(*(inbox.append([delivered(pid)]) for pid in pids))

        asyncio.run(send_all())
        deadline = time.monotonic() + 10
        while waiting(own_file) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        inbox.stop()
    assert (waiting(own_file), waiting(db_engine)) == (0, 0)
    assert states(db_engine) == [M.DELIVERED] * 5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_rows_applied_again_after_a_crash_move_nothing(
    db_engine: Engine, own_file: Engine, seed: Seed
) -> None:
    """Applying spans two files: rows applied but not deleted (a crash in between, or two web
    processes reading the same rows) are applied again as duplicates, nothing moves twice."""
    pids = seed_submitted(db_engine, seed, 3)
    rows = [{"item": delivered(pid), "received_at": NOW} for pid in pids]
    store = sessionmaker(own_file)
    for _ in range(2):  # the second time: the same rows, as a crash before the delete leaves
        with Session(own_file) as session:
            session.execute(insert(CallbackInbox).values(rows))
            session.commit()
        assert apply_waiting(sessionmaker(db_engine), NOW, audiences={}, store=store) == 3
    assert states(db_engine) == [M.DELIVERED] * 3
    assert waiting(own_file) == 0
    with Session(db_engine) as session:
        events = session.execute(select(StatusEvent.dedup_key, StatusEvent.applied)).all()
    assert sorted(events) == sorted((f"{pid}:d", True) for pid in pids)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_rows_left_in_the_database_table_are_applied_with_an_inbox_file(
    db_engine: Engine, own_file: Engine, seed: Seed
) -> None:
    """An inbox file does not strand what an earlier version left in the database's table."""
    pids = seed_submitted(db_engine, seed, 2)
    with Session(db_engine) as session:
        rows = [{"item": delivered(pid), "received_at": NOW} for pid in pids]
        session.execute(insert(CallbackInbox).values(rows))
        session.commit()
    inbox = Inbox(db_engine, store=own_file, audiences={})
    inbox.start()
    inbox.stop()
    assert (waiting(db_engine), states(db_engine)) == (0, [M.DELIVERED] * 2)


def test_a_failed_append_is_refused_and_the_next_one_commits(db_engine: Engine, seed: Seed) -> None:
    """The writer keeps one connection between commits; after a failed commit (the caller is
    told, the provider will call again) it starts from a fresh one."""
    pids = seed_submitted(db_engine, seed, 2)
    failures = [RuntimeError("disk I/O error")]

    def fail_once(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CALLBACK_INBOX") and failures:
            raise failures.pop()

    inbox = Inbox(db_engine, audiences={})
    event.listen(db_engine, "before_cursor_execute", fail_once)
    inbox.start()
    try:
        with pytest.raises(RuntimeError, match="disk I/O error"):
            asyncio.run(inbox.append([delivered(pids[0])]))
        asyncio.run(inbox.append([delivered(pids[1])]))
    finally:
        inbox.stop()
        event.remove(db_engine, "before_cursor_execute", fail_once)
    assert states(db_engine) == [M.SUBMITTED, M.DELIVERED]
