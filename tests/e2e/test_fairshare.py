"""Fair sharing with real workers: rates judged by the simulators' ledgers over the overlap."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dispatcher.demo import generate_recipients
from dispatcher.loader import create_campaign
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack
from dispatcher.sandbox.ratewindow import rates_over_overlap

pytestmark = pytest.mark.slow


def _campaign(stack: LocalStack, path: Path, provider: str, *, priority: str = "normal") -> int:
    sender = "SMSINFO" if provider == "bytehand" else TIMETOCHAT_ACCOUNT.senders[0]
    summary = create_campaign(
        stack.runtime.engine,
        stack.settings,
        path,
        provider=provider,
        sender=sender,
        template="Bonjour {first_name}",
        name=f"fair {provider} {priority}",
        priority=priority,
    )
    return summary.id


def _wait_sent(stack: LocalStack, campaign_ids: list[int], timeout: float = 120) -> None:
    """Until nothing of these campaigns is left to send (reports may still be on their way)."""
    deadline = time.monotonic() + timeout
    unsent = ("pending", "queued", "sending")
    while any(stack.report(c)["counts"].get(s, 0) for c in campaign_ids for s in unsent):
        assert time.monotonic() < deadline, "campaigns not sent in time"
        time.sleep(0.2)


def _timetochat_rates(stack: LocalStack, campaign_ids: list[int]) -> tuple[float, list[float]]:
    """Each TimeToChat campaign's accepted messages/s while all of them were sending."""
    streams: dict[str, list[float]] = {str(cid): [] for cid in campaign_ids}
    for entry in stack.timetochat.ledger:
        campaign = (entry.ext_ref or "").partition("-")[0].removeprefix("c")
        if campaign in streams:
            streams[campaign].append(entry.accepted_at.timestamp())
    seconds, rates = rates_over_overlap(
        {name: sorted(t) for name, t in streams.items()}, drop_last_s=2.0
    )
    return seconds, [rates[str(cid)] for cid in campaign_ids]


def test_other_account_keeps_its_budget_beside_a_large_campaign(
    stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    """A TimeToChat campaign sends ≥ 19 messages/s while a large ByteHand campaign sends."""
    stack = stack_factory(workers=2)
    bytehand_id = _campaign(
        stack, generate_recipients(tmp_path / "bh.csv", 40_000, seed=1), "bytehand"
    )
    timetochat_id = _campaign(
        stack, generate_recipients(tmp_path / "ttc.csv", 300, seed=2), "timetochat"
    )
    stack.start_campaign(bytehand_id)
    stack.start_campaign(timetochat_id)
    _wait_sent(stack, [timetochat_id])
    bytehand = sorted(entry.accepted_at.timestamp() for entry in stack.bytehand.ledger)
    timetochat = sorted(entry.accepted_at.timestamp() for entry in stack.timetochat.ledger)
    # Less the last two seconds: the campaign's last recipients (handed back for want of a
    # slot, refused for a while) go a tick or more later, which is its end, not its share.
    seconds, rates = rates_over_overlap(
        {"bytehand": bytehand, "timetochat": timetochat}, drop_last_s=2.0
    )
    assert seconds >= 10, f"the campaigns overlapped {seconds:.1f} s only"
    assert rates["timetochat"] >= 19, rates


def test_campaigns_on_one_account_share_it_evenly(
    stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    """Two TimeToChat campaigns of equal priority each get half of the account's budget."""
    stack = stack_factory(workers=2)
    first = _campaign(stack, generate_recipients(tmp_path / "a.csv", 250, seed=3), "timetochat")
    second = _campaign(stack, generate_recipients(tmp_path / "b.csv", 250, seed=4), "timetochat")
    stack.start_campaign(first)
    stack.start_campaign(second)
    _wait_sent(stack, [first, second])
    seconds, (rate_first, rate_second) = _timetochat_rates(stack, [first, second])
    assert seconds >= 10
    assert 0.8 <= rate_first / rate_second <= 1.25, (rate_first, rate_second)
    assert rate_first + rate_second >= 18


def test_campaigns_on_one_account_share_it_by_priority(
    stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    """A ``high`` campaign gets about four times a ``low`` one's share of the account."""
    stack = stack_factory(workers=2)
    high = _campaign(
        stack, generate_recipients(tmp_path / "h.csv", 250, seed=5), "timetochat", priority="high"
    )
    low = _campaign(
        stack, generate_recipients(tmp_path / "l.csv", 250, seed=6), "timetochat", priority="low"
    )
    stack.start_campaign(high)
    stack.start_campaign(low)
    _wait_sent(stack, [high, low])
    seconds, (rate_high, rate_low) = _timetochat_rates(stack, [high, low])
    assert seconds >= 8
    # Weights 4:1, but the measured ratio drifts down when the low campaign takes the high
    # one's unused share (about 2.65 was seen with the overlap's last seconds included): at
    # least twice still tells priority from an even split (0.8-1.25, the test above).
    assert 2.0 <= rate_high / rate_low <= 6.0, (rate_high, rate_low)
