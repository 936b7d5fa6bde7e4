"""End to end: real Redis, two real worker processes, beat, web, simulators over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatcher import campaigns as campaign_ops
from dispatcher import pipeline
from dispatcher.db import session_scope
from dispatcher.demo import generate_recipients
from dispatcher.loader import create_campaign
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack
from dispatcher.models import Message, utcnow
from tests.e2e.conftest import check_ledger

pytestmark = pytest.mark.slow


def _campaign(stack: LocalStack, path: Path, provider: str, **extra: object) -> int:
    sender = "SMSINFO" if provider == "bytehand" else TIMETOCHAT_ACCOUNT.senders[0]
    summary = create_campaign(
        stack.runtime.engine,
        stack.settings,
        path,
        provider=provider,
        sender=sender,
        template="Bonjour {first_name}, offre -20% !",
        name=f"e2e {provider}",
        **extra,
    )
    return summary.id


def test_both_providers_end_to_end(
    stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    """2,000 ByteHand and 300 TimeToChat recipients: each final as predicted, each accepted
    once, never more than 20 calls in a second, no rate-limit refusal."""
    stack = stack_factory(workers=2)
    recipients = generate_recipients(tmp_path / "bh.csv", 2000, seed=1)
    small = generate_recipients(tmp_path / "ttc.csv", 300, seed=2)
    bytehand_id = _campaign(stack, recipients, "bytehand")
    timetochat_id = _campaign(stack, small, "timetochat")
    stack.start_campaign(bytehand_id)
    stack.start_campaign(timetochat_id)
    stack.wait_done([bytehand_id, timetochat_id], timeout=150)
    bytehand = check_ledger(stack, bytehand_id, "bytehand")
    timetochat = check_ledger(stack, timetochat_id, "timetochat")
    assert bytehand["messages"] > 1900
    assert timetochat["messages"] > 280
    assert bytehand["rate_limited"] == 0
    assert timetochat["rate_limited"] == 0


def test_token_expiring_mid_campaign(
    stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    """TimeToChat tokens that live 2 s: refreshed on the 401, every message sent once."""
    stack = stack_factory(workers=2, token_lifetime_s=2.0)
    campaign_id = _campaign(
        stack, generate_recipients(tmp_path / "t.csv", 100, seed=3), "timetochat"
    )
    stack.start_campaign(campaign_id)
    stack.wait_done([campaign_id], timeout=120)
    figures = check_ledger(stack, campaign_id, "timetochat")
    assert figures["rate_limited"] == 0
    reasons = stack.report(campaign_id)["reasons"]
    assert all("INVALID_RECIPIENT" in reason for reason in reasons if reason.startswith("failed"))


def test_pause_and_resume(stack_factory: Callable[..., LocalStack], tmp_path: Path) -> None:
    """Paused, the campaign stops within a tick; resumed, it finishes with nothing twice."""
    stack = stack_factory(workers=2)
    campaign_id = _campaign(
        stack, generate_recipients(tmp_path / "p.csv", 150, seed=4), "timetochat"
    )
    stack.start_campaign(campaign_id)
    time.sleep(2.5)
    with session_scope(stack.runtime.sessions) as session:
        campaign_ops.pause(session, campaign_id, utcnow())
    time.sleep(1.5)  # a tick, and the tasks already on the broker releasing their messages
    before = len(stack.timetochat.ledger)
    time.sleep(2)
    assert len(stack.timetochat.ledger) == before, "sends went on while paused"
    assert 0 < before < 140
    with session_scope(stack.runtime.sessions) as session:
        campaign_ops.resume(session, campaign_id, utcnow())
    stack.wait_done([campaign_id], timeout=120)
    check_ledger(stack, campaign_id, "timetochat")


def test_validity_passing_before_sending(
    stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    """Recipients still unsent when the validity passes are expired and never sent."""
    stack = stack_factory(workers=2)
    path = generate_recipients(tmp_path / "v.csv", 200, seed=5)
    campaign_id = _campaign(stack, path, "timetochat", validity=utcnow() + timedelta(seconds=6))
    stack.start_campaign(campaign_id)
    stack.wait_settled([campaign_id], timeout=120)
    sent_to = {entry.to for entry in stack.timetochat.ledger}
    with stack.runtime.sessions() as session:
        expired = session.scalars(
            select(Message.phone).where(
                Message.campaign_id == campaign_id,
                Message.state == "expired",
                Message.provider_message_id.is_(None),
            )
        ).all()
    assert expired, "the validity passed with nothing left to send"
    assert not sent_to & set(expired), "an expired recipient was sent"


def test_redelivered_send_task_sends_nothing(
    stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    """Running a finished send task again (what a broker redelivery does) calls no provider."""
    stack = stack_factory(workers=2)
    path = generate_recipients(tmp_path / "r.csv", 300, seed=6)
    campaign_id = _campaign(stack, path, "bytehand")
    stack.start_campaign(campaign_id)
    stack.wait_done([campaign_id], timeout=120)
    calls = next(iter(stack.bytehand.stats().values())).calls_served
    with stack.runtime.sessions() as session:
        ids = list(session.scalars(select(Message.id).where(Message.campaign_id == campaign_id)))
    for start in range(0, len(ids), 100):
        assert (
            pipeline.send_bytehand_batch(stack.runtime, campaign_id, ids[start : start + 100]) == 0
        )
    assert next(iter(stack.bytehand.stats().values())).calls_served == calls
    check_ledger(stack, campaign_id, "bytehand")
