"""Constants and factories shared by the web tests (rows inserted with the models)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from dispatcher.db import session_scope
from dispatcher.models import CallbackInbox, Campaign, InboundMessage, Message, StatusEvent
from dispatcher.runtime import Runtime
from tests.conftest import insert_campaign

BYTEHAND_ID = "4242"
BYTEHAND_KEY = "bytehand-secret-key-0123456789abcdef"
SERVICE_ID = "123456"
WEBHOOK_SECRET = "push-secret-7f3a9c"
API_TOKEN = "api-token-5e1d0b"

NOW = datetime(2024, 3, 25, 14, 0, tzinfo=UTC)

SIMULATOR_URLS: dict[str, str] = {}
"""Filled by ``tests/web/conftest.py``: the ByteHand simulator the pre-start checks ask."""


def env_for(db_url: str, redis_url: str, state_dir: Path, **overrides: str) -> dict[str, str]:
    """Settings environment of a test app; an override of ``""`` unsets a variable."""
    env = {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "DISPATCHER_STATE_DIR": str(state_dir),
        "DISPATCHER_BYTEHAND_ID": BYTEHAND_ID,
        "DISPATCHER_BYTEHAND_KEY": BYTEHAND_KEY,
        "DISPATCHER_TIMETOCHAT_SERVICE_ID": SERVICE_ID,
        "DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DISPATCHER_API_TOKEN": API_TOKEN,
        "DISPATCHER_BYTEHAND_URL": SIMULATOR_URLS.get("bytehand", ""),
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v}


def add_campaign(
    runtime: Runtime,
    *,
    provider: str = "bytehand",
    name: str = "spring sale",
    state: str = "running",
    messages: Sequence[tuple[str, str | None]] = (("submitted", None),),
) -> tuple[int, list[int]]:
    """A campaign with one message per ``(state, provider_message_id)``; their ids."""
    rows = [{"state": s, "provider_message_id": pid} for s, pid in messages]
    with session_scope(runtime.sessions) as session:
        return insert_campaign(
            session, rows, name=name, provider=provider, sender="SHOP", state=state
        )


def inbox_drained(runtime: Runtime, timeout: float = 60.0) -> None:
    """Wait until the app's inbox applier has applied every callback answered so far (it deletes
    the rows it applies once they are applied; on SQLite the inbox is a file of its own)."""
    deadline = time.monotonic() + timeout
    inbox = runtime.inbox_engine or runtime.engine
    while True:
        with inbox.connect() as connection:
            if not connection.scalar(select(func.count()).select_from(CallbackInbox)):
                return
        assert time.monotonic() < deadline, "the inbox applier did not drain the inbox"
        time.sleep(0.02)


def message(runtime: Runtime, message_id: int) -> Message:
    """The message as it is once every answered callback is applied."""
    inbox_drained(runtime)
    with session_scope(runtime.sessions) as session:
        found = session.get(Message, message_id)
        assert found is not None
        return found


def events(runtime: Runtime) -> list[StatusEvent]:
    """Every status event, once every answered callback is applied."""
    inbox_drained(runtime)
    with session_scope(runtime.sessions) as session:
        return list(session.scalars(select(StatusEvent).order_by(StatusEvent.id)))


def inbound(runtime: Runtime) -> list[InboundMessage]:
    """Every incoming SMS, once every answered callback is applied."""
    inbox_drained(runtime)
    with session_scope(runtime.sessions) as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def campaign_count(runtime: Runtime) -> int:
    with session_scope(runtime.sessions) as session:
        return len(list(session.scalars(select(Campaign.id))))
