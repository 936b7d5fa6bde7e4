"""The callback inbox: answer the provider once the callback is durable, apply it in batches.

A provider's callback sender has a handful of connections and waits for each answer, so the time
we take per callback caps its rate. The webhook therefore only appends what it parsed to the
``callback_inbox`` table and answers 200 once that row is committed (the provider never sends an
answered callback again, so nothing answered may be lost). Two threads per web process do the
rest:

* the **group-commit writer** takes every append waiting at that moment (from all concurrent
  requests) and writes them with one multi-row INSERT and one COMMIT, then answers them all; the
  more callbacks arrive at once, the fewer commits per callback;
* the **applier** claims the oldest rows (``DELETE ... RETURNING``, ``SKIP LOCKED`` on
  PostgreSQL so several web processes share the inbox) and, in the same transaction, applies the
  status reports as one batch (:func:`dispatcher.reports.apply_reports`) and each incoming SMS
  through :func:`dispatcher.tracking.store_inbound`. Applied and deleted commit together: each
  callback is applied once, or (on any error) stays in the inbox and is tried again.

Items are plain JSON so the inbox survives a restart of the web process: the applier of the next
start drains what the last one left.

**On SQLite the inbox is a file of its own** (:func:`own_inbox_url`), beside the campaign
database. SQLite has one write lock per file: in the campaign database, every append waited
behind the workers' claims and send results and behind each applier batch, and a waiter sleeps
in SQLite's busy handler (1, 2, 5, 10, 15... ms) rather than waking when the lock is free. A
provider calls back over a handful of connections, so that wait was its rate: a 40,000-message
ByteHand campaign's group commits took 4-58 ms on average while the workers were sending. With a
file of its own the append competes only with the applier's delete. Applying then spans two
files, so it is no longer one transaction: the applier reads the oldest rows, applies them in
the campaign database and commits, then deletes them. A crash between the two (or a second web
process applying the same rows) applies them again, which moves nothing: every report and
incoming SMS is recorded once by its ``dedup_key``, and only what is recorded anew is acted on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Connection, Engine, Table, delete, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.schema import CreateTable

from dispatcher import tracking
from dispatcher.bulk import insert_rows
from dispatcher.db import make_engine, session_scope
from dispatcher.models import CallbackInbox, utcnow
from dispatcher.replies import Audience
from dispatcher.reports import Report, apply_reports
from dispatcher.states import MessageState

__all__ = [
    "APPLY_BATCH",
    "Inbox",
    "Item",
    "apply_waiting",
    "mo_item",
    "open_own_inbox",
    "own_inbox_url",
    "report_item",
]

log = logging.getLogger(__name__)

Item = dict[str, Any]
"""One callback as the inbox keeps it: a report or an incoming SMS, JSON-ready."""

APPLY_BATCH: Final = 500
"""Inbox rows one applier transaction claims and applies."""

WRITE_BATCH: Final = 2000
"""Rows one group commit writes at most (2,000 rows x 2 values stay far below SQLite's
parameter limit)."""

_IDLE_WAIT_S: Final = 1.0
"""How often an idle applier looks for rows another process (or a crash) left."""

_RETRY_WAIT_S: Final = 1.0

_LINGER_S: Final = 0.2
"""After a round that found less than a full batch, the applier lets callbacks gather this long:
a batch of 500 costs about what a batch of 20 does, and the lag budget is seconds."""

_INBOX = cast(Table, CallbackInbox.__table__)


def report_item(report: Report) -> Item:
    """A status report as an inbox item."""
    return {
        "kind": "report",
        "provider": report.provider,
        "source": report.source,
        "provider_state": report.provider_state,
        "state": None if report.state is None else str(report.state),
        "dedup_key": report.dedup_key,
        "payload": dict(report.payload),
        "provider_message_id": report.provider_message_id,
        "ext_ref": report.ext_ref,
        "error_code": report.error_code,
    }


def mo_item(
    *,
    provider: str,
    from_number: str,
    to_number: str,
    text: str,
    dedup_key: str,
    provider_message_id: str | None = None,
    reply_to_ext_ref: str | None = None,
    reply_to_provider_id: str | None = None,
) -> Item:
    """An incoming SMS as an inbox item: the arguments of :func:`tracking.store_inbound`."""
    return {
        "kind": "mo",
        "provider": provider,
        "from_number": from_number,
        "to_number": to_number,
        "text": text,
        "dedup_key": dedup_key,
        "provider_message_id": provider_message_id,
        "reply_to_ext_ref": reply_to_ext_ref,
        "reply_to_provider_id": reply_to_provider_id,
    }


def _report(item: Item) -> Report:
    fields = {name: value for name, value in item.items() if name != "kind"}
    state = fields.pop("state")
    return Report(state=None if state is None else MessageState(state), **fields)


def _apply_items(
    session: Session, items: Sequence[Item], now: datetime, audiences: Mapping[str, Audience]
) -> None:
    """Reports as one batch; each incoming SMS through ``store_inbound`` with its provider's
    audience rules (opt-out keywords, reply linking)."""
    apply_reports(session, [_report(item) for item in items if item["kind"] == "report"], now)
    for item in items:
        if item["kind"] == "mo":
            fields = {name: value for name, value in item.items() if name != "kind"}
            audience = audiences.get(str(fields["provider"]))
            tracking.store_inbound(session, now=now, audience=audience, **fields)


def own_inbox_url(database_url: str) -> str | None:
    """The URL of the inbox's own file beside a SQLite database file (``<file>.inbox``); None
    where the inbox is a table of the database itself: PostgreSQL locks rows, not the database,
    and an in-memory SQLite database has no file to put one beside."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.set(database=f"{url.database}.inbox").render_as_string(hide_password=False)


def open_own_inbox(url: str) -> Engine:
    """An engine on an inbox file, its one table created if missing (by whichever process comes
    first: ``IF NOT EXISTS`` lets a fleet start at once). The file holds callbacks answered
    and not yet applied, nothing else, so it needs no migrations."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(CreateTable(_INBOX, if_not_exists=True))
    return engine


def apply_waiting(
    sessions: sessionmaker[Session],
    now: datetime,
    *,
    audiences: Mapping[str, Audience],
    limit: int = APPLY_BATCH,
    store: sessionmaker[Session] | None = None,
) -> int:
    """Apply up to ``limit`` of the oldest inbox rows and delete them; how many were applied
    (0: the inbox is empty, or other appliers hold what is left).

    ``store`` is the inbox's own file (SQLite), None when the inbox is a table of the
    database: then the rows are claimed, applied and deleted in one transaction."""
    if store is not None:
        return _apply_from_own_file(sessions, store, now, audiences, limit)
    with session_scope(sessions) as session:
        oldest = select(CallbackInbox.id).order_by(CallbackInbox.id).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            oldest = oldest.with_for_update(skip_locked=True)
        claimed = session.execute(
            delete(CallbackInbox)
            .where(CallbackInbox.id.in_(oldest.scalar_subquery()))
            .returning(CallbackInbox.id, CallbackInbox.item)
        ).all()
        _apply_items(session, [item for _, item in sorted(claimed)], now, audiences)
    return len(claimed)


def _apply_from_own_file(
    sessions: sessionmaker[Session],
    store: sessionmaker[Session],
    now: datetime,
    audiences: Mapping[str, Audience],
    limit: int,
) -> int:
    """Read the oldest rows of the inbox file, apply them and commit, then delete them: applied
    again after a crash in between, they are duplicates by their dedup keys (module docstring)."""
    with session_scope(store) as inbox:
        oldest = select(CallbackInbox.id, CallbackInbox.item).order_by(CallbackInbox.id)
        claimed = inbox.execute(oldest.limit(limit)).all()
    if claimed:
        with session_scope(sessions) as session:
            _apply_items(session, [item for _, item in claimed], now, audiences)
        with session_scope(store) as inbox:
            ids = [row_id for row_id, _ in claimed]
            inbox.execute(delete(CallbackInbox).where(CallbackInbox.id.in_(ids)))
    return len(claimed)


@dataclasses.dataclass(frozen=True)
class _Append:
    """One request's items, and the future its coroutine awaits on its event loop."""

    items: list[Item]
    now: datetime
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]


def _settle(appends: list[_Append], error: BaseException | None) -> None:
    """On the event loop: answer every append of one commit (one wake-up for all of them)."""
    for append in appends:
        if append.done.done():
            continue  # the request was cancelled (client gone): nothing awaits it
        if error is None:
            append.done.set_result(None)
        else:
            append.done.set_exception(error)


class _GroupCommitWriter:
    """One thread writing every waiting append with one INSERT and one COMMIT.

    The thread keeps one connection between commits: at a few callbacks a commit (a provider's
    handful of connections), checking a connection out of the pool and building an ORM session
    for each commit cost more CPU than the insert itself."""

    def __init__(self, engine: Engine, on_commit: Callable[[], None]) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Append | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def submit(self, items: list[Item], now: datetime) -> asyncio.Future[None]:
        """Queue ``items``; the returned future (of the running loop) is done once committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Append(items, now, loop, done))
        return done

    def _take(self, first: _Append) -> tuple[list[_Append], bool]:
        """``first`` and every append already waiting, up to :data:`WRITE_BATCH` rows."""
        group, rows, stopping = [first], len(first.items), False
        while rows < WRITE_BATCH:
            try:
                waiting = self._queue.get_nowait()
            except queue.Empty:
                break
            if waiting is None:
                stopping = True
                break
            group.append(waiting)
            rows += len(waiting.items)
        return group, stopping

    def _commit(self, rows: list[dict[str, Any]]) -> None:
        if self._connection is None:
            self._connection = self._engine.connect()
            if self._connection.dialect.name == "postgresql":
                # The insert is one statement (json_to_recordset), atomic on its own: in
                # autocommit it is one round trip to the server instead of three (BEGIN, the
                # INSERT, COMMIT), and the provider's sender waits for every one of them.
                # SQLite's insert is an executemany, a transaction per row in autocommit.
                self._connection = self._connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            insert_rows(self._connection, _INBOX, rows)
            self._connection.commit()
        except Exception:
            self._connection.close()  # the next commit starts from a fresh connection
            self._connection = None
            raise

    def _write(self, group: list[_Append]) -> None:
        rows = [{"item": item, "received_at": a.now} for a in group for item in a.items]
        error: BaseException | None = None
        try:
            self._commit(rows)
        except Exception as exc:
            log.exception("callback inbox: append of %d callbacks failed", len(rows))
            error = exc
        by_loop: dict[asyncio.AbstractEventLoop, list[_Append]] = {}
        for append in group:
            by_loop.setdefault(append.loop, []).append(append)
        for loop, appends in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, appends, error)
            except RuntimeError:  # that loop is closed: nothing awaits its appends any more
                continue
        if error is None:
            self._on_commit()

    def _run(self) -> None:
        try:
            while (first := self._queue.get()) is not None:
                group, stopping = self._take(first)
                self._write(group)
                if stopping:
                    return
        finally:
            if self._connection is not None:
                self._connection.close()


class Inbox:
    """The inbox of one web process: its group-commit writer and its applier thread.

    ``store`` is the inbox's own file (:func:`open_own_inbox`), None to keep the inbox in the
    database of ``engine``."""

    def __init__(
        self,
        engine: Engine,
        *,
        audiences: Mapping[str, Audience],
        store: Engine | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._store = None if store is None else sessionmaker(store, expire_on_commit=False)
        self._audiences = audiences
        self._clock = clock
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._writer = _GroupCommitWriter(store or engine, self._wake.set)
        self._applier = threading.Thread(
            target=self._apply_forever, name="inbox-applier", daemon=True
        )

    def start(self) -> None:
        """Start both threads; the applier first drains what an earlier process left."""
        self._writer.start()
        self._applier.start()

    def stop(self) -> None:
        """Write what is queued, apply what is written, then end both threads."""
        self._writer.stop()
        self._stopping.set()
        self._wake.set()
        self._applier.join(timeout=30)

    async def append(self, items: list[Item]) -> None:
        """Return once ``items`` are committed to the inbox (raise if they could not be)."""
        if items:
            await self._writer.submit(items, self._clock())

    def _apply_round(self, store: sessionmaker[Session] | None) -> bool:
        """Apply until less than a full batch is left; False if applying failed."""
        try:
            while (
                apply_waiting(self._sessions, self._clock(), audiences=self._audiences, store=store)
                == APPLY_BATCH
            ):
                pass
        except Exception:
            # The rows stay in the inbox: nothing is lost, the next round tries again.
            log.exception("callback inbox: applying failed; retrying")
            return False
        return True

    def _apply_forever(self) -> None:
        if self._store is not None:
            # Rows an earlier version left in the database's own table, before the file.
            self._apply_round(None)
        while not self._stopping.is_set():
            self._wake.clear()
            if not self._apply_round(self._store):
                self._stopping.wait(_RETRY_WAIT_S)
            elif not self._stopping.wait(_LINGER_S):
                self._wake.wait(_IDLE_WAIT_S)
        self._apply_round(self._store)  # what was written before the stop
