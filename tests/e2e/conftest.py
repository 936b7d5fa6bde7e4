"""The end-to-end harness: a LocalStack on the real Redis and a real database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from dispatcher.localstack import LocalStack, StackOptions
from dispatcher.models import Message
from dispatcher.providers import bytehand, timetochat
from dispatcher.sandbox import outcome_for
from dispatcher.sandbox.remote import RemoteSandbox
from dispatcher.states import MessageState

FAST_POLLING = {
    "poll_after_s": 2,
    "poll_max_interval_s": 2,
    "poll_deadline_s": 6,
    "sending_timeout_s": 20,
    "queued_timeout_s": 30,
    "http_read_timeout_s": 3,
}


@pytest.fixture
def stack_factory(tmp_path: Path, redis_url: str) -> Iterator[object]:
    """Start stacks on the shared test Redis (flushed) and SQLite unless told otherwise."""
    started: list[LocalStack] = []

    def start(**options: object) -> LocalStack:
        redis.Redis.from_url(redis_url).flushdb()
        settings = {"redis_url": redis_url, "dispatch": FAST_POLLING, **options}
        stack = LocalStack(tmp_path / f"stack{len(started)}", StackOptions(**settings))  # type: ignore[arg-type]
        started.append(stack)
        return stack.__enter__()

    yield start
    for stack in started:
        stack.stop()


def expected_state(provider: str, phone: str) -> MessageState:
    """What the simulators' documented rules, read through our state maps, must produce."""
    outcome = outcome_for(phone)
    if outcome.refused_at_send or (provider == "bytehand" and outcome.bytehand_refusal):
        return MessageState.FAILED
    final = outcome.bytehand_final if provider == "bytehand" else outcome.timetochat_final
    if final is None:
        return MessageState.UNKNOWN
    return (bytehand if provider == "bytehand" else timetochat).map_state(final)


def check_ledger(stack: LocalStack, campaign_id: int, provider: str) -> dict[str, int]:
    """Every submitted message accepted exactly once; every state as the rules predict."""
    sandbox: RemoteSandbox = stack.bytehand if provider == "bytehand" else stack.timetochat
    ledger = Counter(entry.to for entry in sandbox.ledger)
    with stack.runtime.sessions() as session:
        messages = session.scalars(select(Message).where(Message.campaign_id == campaign_id)).all()
    wrong = [
        (m.phone, m.state, expected_state(provider, m.phone))
        for m in messages
        if m.state != expected_state(provider, m.phone)
    ]
    assert not wrong, f"{len(wrong)} messages in an unexpected state, e.g. {wrong[:5]}"
    for message in messages:
        accepted = ledger[message.phone]
        if message.state == MessageState.FAILED:
            assert accepted == 0, f"{message.phone} failed but the provider accepted it"
        else:
            assert accepted == 1, f"{message.phone} accepted {accepted} times"
    account = next(iter(sandbox.stats()))
    stats = sandbox.stats()[account]
    assert stats.duplicates == 0
    assert stats.max_calls_in_window <= 20
    return {
        "messages": len(messages),
        "calls": stats.calls_served,
        "rate_limited": stats.rate_limited,
    }
