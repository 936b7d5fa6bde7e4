"""Faults between a provider's answer and our database, and in the limiter: every answer is
kept and no recipient pays for our own outage (rows of ``docs/reliability.md``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, select, text

from dispatcher.constants import BYTEHAND, TIMETOCHAT, limiter_key
from dispatcher.localstack import LocalStack
from dispatcher.models import Message
from dispatcher.states import MessageState
from tests.faults.conftest import SETTLE_S, StackFactory, campaign, judge, record

pytestmark = pytest.mark.slow
PROVIDERS = (BYTEHAND, TIMETOCHAT)

_REFUSE = """
CREATE FUNCTION refuse_recording() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'fault injected: database refuses writes' USING ERRCODE = '53000';
END $$;
CREATE TRIGGER refuse_recording BEFORE UPDATE ON messages FOR EACH ROW
    WHEN (NEW.provider_message_id IS DISTINCT FROM OLD.provider_message_id)
    EXECUTE FUNCTION refuse_recording();
"""


@contextmanager
def recordings_refused(engine: Engine) -> Iterator[None]:
    """While inside, PostgreSQL refuses every write of a provider id (SQLSTATE 53000,
    insufficient resources: an OperationalError to the workers); nothing else is touched."""
    with engine.begin() as connection:
        connection.execute(text(_REFUSE))
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TRIGGER refuse_recording ON messages"))
            connection.execute(text("DROP FUNCTION refuse_recording()"))


def _start_both(stack: LocalStack, tmp_path: Path) -> dict[str, int]:
    ids = {provider: campaign(stack, provider, tmp_path) for provider in PROVIDERS}
    for campaign_id in ids.values():
        stack.start_campaign(campaign_id)
    return ids


def _worker_logs(stack: LocalStack) -> str:
    return "".join(
        path.read_text(errors="replace") for path in (stack.directory / "logs").glob("worker*.log")
    )


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_recording_refused_after_the_provider_accepted(
    fault_stack: StackFactory, tmp_path: Path, database: str
) -> None:
    """The database refuses the recording of accepted sends for 4 s: every answer is kept (no
    send in doubt, none twice), retried in process until the database takes it."""
    stack = fault_stack(workers=2)
    started = time.monotonic()
    ids = _start_both(stack, tmp_path)
    time.sleep(1.0)
    with recordings_refused(stack.runtime.engine):
        time.sleep(4)
    stack.wait_settled(list(ids.values()), timeout=SETTLE_S)
    scenario = "recording refused 4 s after the provider accepted"
    for provider, campaign_id in ids.items():
        figures = judge(stack, campaign_id, provider)
        record(stack, scenario, provider, figures, started)
        assert figures["in_doubt"] == 0, f"{provider}: an accepted answer was not kept"
    assert "recording a provider's answer failed (OperationalError); retrying" in _worker_logs(
        stack
    ), "the fault never hit a recording"


def test_limiter_down_for_30_seconds(fault_stack: StackFactory, tmp_path: Path) -> None:
    """The limiter's Redis answers every script with an error for 30 s (the broker still
    works): nothing is sent meanwhile, no attempt is spent, nobody fails for it."""
    stack = fault_stack(workers=2)
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    keys = [
        f"dispatcher:limit:{limiter_key(BYTEHAND, stack.settings.bytehand.client_id)}",
        f"dispatcher:limit:{limiter_key(TIMETOCHAT, stack.settings.timetochat.service_id)}",
    ]
    for key in keys:  # a string where a sorted set belongs: every limiter script fails
        client.set(key, "fault injected")
    started = time.monotonic()
    ids = _start_both(stack, tmp_path)
    time.sleep(30)
    calls = sum(
        account.calls_served
        for simulator in (stack.bytehand, stack.timetochat)
        for account in simulator.stats().values()
    )
    client.delete(*keys)
    client.close()
    stack.wait_settled(list(ids.values()), timeout=SETTLE_S)
    for provider, campaign_id in ids.items():
        record(stack, "limiter down 30 s", provider, judge(stack, campaign_id, provider), started)
    with stack.runtime.sessions() as session:
        spent = session.scalars(
            select(Message.attempts).where(Message.campaign_id.in_(list(ids.values())))
        ).all()
        failed_for_it = session.scalar(
            select(Message.id).where(
                Message.state == MessageState.FAILED, Message.last_error.contains("limiter")
            )
        )
    assert calls == 0, "a provider call was made without the limiter"
    assert failed_for_it is None, "a recipient failed for the limiter's outage"
    assert max(spent) <= 1, "the outage spent attempts"
