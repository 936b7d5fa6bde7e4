"""End to end: real Redis, two real worker processes, beat, web, simulators over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dispatcher.demo import generate_recipients
from dispatcher.loader import create_campaign
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack
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
