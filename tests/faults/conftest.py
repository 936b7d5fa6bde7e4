"""The fault suite's judge: never twice, none lost, never more than 20 calls in a second."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from dispatcher.demo import generate_recipients
from dispatcher.loader import create_campaign
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack, StackOptions
from dispatcher.models import Message
from dispatcher.states import FINAL_MESSAGE_STATES, MessageState
from tests.conftest import postgres_schema

M = MessageState
SOAK = os.environ.get("SOAK") == "1"
SIZES = {"bytehand": 20000 if SOAK else 600, "timetochat": 1000 if SOAK else 60}
SETTLE_S = 900 if SOAK else 150
"""How long a scenario's campaigns may take to settle (a soak sends 33x more)."""
FAULT_DISPATCH = {
    "poll_after_s": 2,
    "poll_max_interval_s": 2,
    "poll_deadline_s": 7,
    "sending_timeout_s": 5,
    "queued_timeout_s": 8,
    "http_read_timeout_s": 2,
    "max_attempts": 8,
}
REPORT = Path(os.environ.get("RELIABILITY_LOG", ".state/reliability.jsonl"))
ACCEPTED_STATES = {M.SUBMITTED, M.SENT, M.DELIVERED, M.UNDELIVERABLE, M.UNKNOWN}

StackFactory = Callable[..., LocalStack]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every scenario on both stores: ``sqlite`` (the stack's own file) and a fresh PostgreSQL
    schema (its URL)."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def fault_stack(tmp_path: Path, redis_url: str, database: str) -> Iterator[StackFactory]:
    """Start stacks (on the shared test Redis unless ``own_redis``; on the scenario's database
    unless given one), stopped afterwards."""
    started: list[LocalStack] = []

    def start(own_redis: bool = False, **options: Any) -> LocalStack:
        if not own_redis:
            redis.Redis.from_url(redis_url).flushdb()
        settings = {
            "redis_url": None if own_redis else redis_url,
            "database_url": None if database == "sqlite" else database,
            "dispatch": FAULT_DISPATCH,
            **options,
        }
        stack = LocalStack(tmp_path / f"stack{len(started)}", StackOptions(**settings))
        started.append(stack)
        return stack.__enter__()

    yield start
    for stack in started:
        stack.stop()


def campaign(stack: LocalStack, provider: str, tmp: Path, **extra: Any) -> int:
    """A generated campaign of the scenario size for ``provider``."""
    path = generate_recipients(tmp / f"{provider}.csv", SIZES[provider], seed=len(provider))
    sender = "SMSINFO" if provider == "bytehand" else TIMETOCHAT_ACCOUNT.senders[0]
    return create_campaign(
        stack.runtime.engine,
        stack.settings,
        path,
        provider=provider,
        sender=sender,
        template="Bonjour {first_name} !",
        name=f"faults {provider}",
        **extra,
    ).id


def judge(stack: LocalStack, campaign_id: int, provider: str) -> dict[str, int]:
    """Each valid recipient accepted exactly once, or in doubt (then at most once); none stuck;
    never more than 20 calls in any second; no duplicate at the provider."""
    sandbox = stack.bytehand if provider == "bytehand" else stack.timetochat
    accepted = Counter(entry.to for entry in sandbox.ledger)
    with stack.runtime.sessions() as session:
        messages = session.scalars(select(Message).where(Message.campaign_id == campaign_id)).all()
    stuck = [m for m in messages if m.state not in FINAL_MESSAGE_STATES | {M.IN_DOUBT}]
    assert not stuck, f"{len(stuck)} messages lost in the pipeline, e.g. {stuck[0].state}"
    for message in messages:
        times = accepted[message.phone]
        if message.state == M.IN_DOUBT:
            assert times <= 1, f"{message.phone} in doubt but accepted {times} times"
        elif message.provider_message_id or message.state in ACCEPTED_STATES:
            assert times == 1, f"{message.phone} ({message.state}) accepted {times} times"
        else:
            assert times == 0, f"{message.phone} ({message.state}) accepted {times} times"
    stats = next(iter(sandbox.stats().values()))
    assert stats.duplicates == 0
    assert stats.max_calls_in_window <= 20
    return {
        "recipients": len(messages),
        "duplicates": stats.duplicates,
        "lost": len(stuck),
        "in_doubt": sum(m.state == M.IN_DOUBT for m in messages),
        "max_calls_in_1s": stats.max_calls_in_window,
        "rate_limited": stats.rate_limited,
    }


def record(
    stack: LocalStack, scenario: str, provider: str, figures: dict[str, int], started: float
) -> None:
    """Append a row of docs/reliability.md's table to the reliability log."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    database = stack.runtime.engine.dialect.name
    row = {"scenario": scenario, "database": database, "provider": provider, "soak": SOAK}
    row |= figures
    row["seconds"] = round(time.monotonic() - started, 1)
    with REPORT.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
