"""The fault suite's judge: never twice, none lost, never more than 20 calls in a second; the
brokers and databases each scenario runs on; how long a killed worker's recipients wait."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from dispatcher.demo import generate_recipients
from dispatcher.embedded import free_port
from dispatcher.loader import create_campaign
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack, StackOptions
from dispatcher.models import Campaign, Message
from dispatcher.states import FINAL_MESSAGE_STATES, MessageState
from tests.conftest import postgres_schema
from tests.rabbitmq import RabbitNode, rabbitmq_vhost

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


@pytest.fixture(params=["redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """The scenario's broker: ``redis`` (the stack's Redis) or ``rabbitmq`` (a vhost of its
    own on the machine's RabbitMQ: its URL)."""
    if request.param == "rabbitmq":
        with rabbitmq_vhost() as url:
            yield url
    else:
        yield "redis"


@pytest.fixture
def rabbit_node() -> Iterator[RabbitNode]:
    """A RabbitMQ node of the test's own, that it may restart."""
    directory = Path(tempfile.mkdtemp(prefix="dispatcher-rabbitmq-"))
    node = RabbitNode(directory, free_port())
    try:
        yield node.start()
    finally:
        node.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def fault_stack(
    tmp_path: Path, redis_url: str, database: str, broker: str
) -> Iterator[StackFactory]:
    """Start stacks (on the shared test Redis unless ``own_redis``; on the scenario's database
    and broker unless given others), stopped afterwards."""
    started: list[LocalStack] = []

    def start(own_redis: bool = False, **options: Any) -> LocalStack:
        if not own_redis:
            redis.Redis.from_url(redis_url).flushdb()
        settings = {
            "redis_url": None if own_redis else redis_url,
            "broker_url": None if broker == "redis" else broker,
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


def unsent(stack: LocalStack) -> dict[int, str]:
    """Messages waiting to be sent (pending or queued), of every campaign: their provider."""
    with stack.runtime.sessions() as session:
        rows = session.execute(
            select(Message.id, Campaign.provider)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Message.state.in_((M.PENDING, M.QUEUED)))
        )
        return {message_id: provider for message_id, provider in rows}


def budget_s(stack: LocalStack, waiting: dict[int, str]) -> float:
    """How long the providers' 20 calls/s alone take to send ``waiting``."""
    calls = 0
    for provider in set(waiting.values()):
        count = sum(1 for p in waiting.values() if p == provider)
        per_call = stack.settings.bytehand.batch_size if provider == "bytehand" else 1
        calls += -(-count // per_call)
    return calls / stack.settings.dispatch.calls_per_second


def resume_seconds(
    stack: LocalStack, kills: list[tuple[float, dict[int, str]]], timeout: float
) -> tuple[float, float]:
    """Kill-to-resume of the kills (``(monotonic time, unsent() then)``): how long the
    recipients waiting at a kill kept waiting after it, at most, polled every 0.2 s; and that
    time less what the providers' budget alone needed to send them (the delay the kill caused).
    """
    waiting = [(killed_at, set(ids), budget_s(stack, ids)) for killed_at, ids in kills]
    longest = beyond_budget = 0.0
    deadline = time.monotonic() + timeout
    while any(ids for _, ids, _ in waiting):
        if time.monotonic() > deadline:
            raise TimeoutError(f"recipients still waiting {timeout:.0f} s after a kill")
        still = unsent(stack)
        now = time.monotonic()
        for killed_at, ids, budget in waiting:
            if ids:
                ids.intersection_update(still)
                longest = max(longest, now - killed_at)
                beyond_budget = max(beyond_budget, now - killed_at - budget)
        time.sleep(0.2)
    return round(longest, 1), round(beyond_budget, 1)


def record(
    stack: LocalStack,
    scenario: str,
    provider: str,
    figures: dict[str, int],
    started: float,
    **extra: Any,
) -> None:
    """Append a row of docs/reliability.md's table to the reliability log."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    database = stack.runtime.engine.dialect.name
    broker = "RabbitMQ" if stack.settings.broker_url else "Redis"
    row = {"scenario": scenario, "database": database, "provider": provider, "soak": SOAK}
    row |= {"broker": broker, **extra}
    row |= figures
    row["seconds"] = round(time.monotonic() - started, 1)
    with REPORT.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
