"""Audience care end to end: real workers, beat, web and simulators over HTTP, both databases."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dispatcher import campaigns
from dispatcher.db import session_scope
from dispatcher.loader import create_campaign
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack
from dispatcher.models import Message, Suppression, utcnow
from dispatcher.windows import SendRules
from tests.sandbox.conftest import wait_until

pytestmark = pytest.mark.processes


def _states(stack: LocalStack, campaign_id: int) -> dict[str, str]:
    with session_scope(stack.runtime.sessions) as session:
        rows = session.execute(
            select(Message.phone, Message.state).where(Message.campaign_id == campaign_id)
        )
        return {phone: state for phone, state in rows}


def test_stop_mid_campaign_stops_that_recipient(
    stack_factory: Callable[..., LocalStack], db_url: str, tmp_path: Path
) -> None:
    """A STOP pushed by TimeToChat while the campaign runs: that recipient is never sent to,
    ends `suppressed`, and is excluded and counted by the next campaign, as are the numbers
    the provider reported blacklisted (CRA_SMS_BLACKLIST, the simulator's ending 22)."""
    stack = stack_factory(workers=2, callbacks=True, database_url=db_url)
    phones = [f"+336123{i:05d}" for i in range(1, 160) if f"{i:02d}"[-2:] not in ("00", "99")]
    path = tmp_path / "r.csv"
    path.write_text("phone\n" + "\n".join(phones) + "\n")
    sender = TIMETOCHAT_ACCOUNT.senders[0]
    summary = create_campaign(
        stack.runtime.engine,
        stack.settings,
        path,
        provider="timetochat",
        sender=sender,
        template="Offre -20% STOP au 36111",
    )
    stopper = phones[-1]
    stack.start_campaign(summary.id)
    stack.timetochat.incoming(**{"from": stopper, "text": "Stop.", "to": sender})
    stack.wait_done([summary.id], timeout=120)
    states = _states(stack, summary.id)
    assert states[stopper] == "suppressed"
    assert sum(s == "suppressed" for s in states.values()) == 1
    assert all(entry.to != stopper for entry in stack.timetochat.ledger)
    again = create_campaign(
        stack.runtime.engine,
        stack.settings,
        path,
        provider="timetochat",
        sender=sender,
        template="Encore STOP au 36111",
    )
    blacklisted = {p for p in phones if p.endswith("22")}
    assert again.estimate.suppressed == 1 + len(blacklisted)
    assert not {stopper, *blacklisted} & set(_states(stack, again.id))
    with session_scope(stack.runtime.sessions) as session:
        sources = dict(session.execute(select(Suppression.phone, Suppression.source)).all())
    assert sources == {stopper: "keyword"} | dict.fromkeys(blacklisted, "provider")


def _window_a_minute_ahead(now: datetime) -> tuple[str, str, str]:
    """A window opening at the next whole minute (20 s ahead at least) in a zone B, and a
    zone A one hour ahead of B, so A is inside the window and B outside it."""
    for offset in range(-12, 13):
        zone_b = "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"
        local = now.astimezone(ZoneInfo(zone_b))
        opens = (local + timedelta(seconds=80)).replace(second=0, microsecond=0)
        if 2 <= opens.hour <= 19 and opens.date() == local.date():
            zone_a = f"Etc/GMT{-(offset + 1):+d}" if offset + 1 else "UTC"
            closes = opens + timedelta(hours=3)
            return f"{opens:%H:%M}-{closes:%H:%M}", zone_a, zone_b
    raise AssertionError("no zone puts the window inside one day")


def test_quiet_hours_two_zones(
    stack_factory: Callable[..., LocalStack], db_url: str, tmp_path: Path
) -> None:
    """One recipient inside its window is sent at once, one outside waits in the database
    (`not_before`) and is sent when its window opens a minute later; a number the provider
    blacklists (ByteHand 22) fails and is suppressed with source `provider`."""
    stack = stack_factory(workers=2, database_url=db_url)
    window, zone_a, zone_b = _window_a_minute_ahead(datetime.now(UTC))
    inside, outside, blacklisted = "+33612345678", "+33612345679", "+33612345622"
    path = tmp_path / "r.csv"
    path.write_text(
        f"phone,timezone\n{inside},{zone_a}\n{outside},{zone_b}\n{blacklisted},{zone_a}\n"
    )
    rules = SendRules(window=window, days="mon-sun", timezone="UTC", skip_public_holidays=False)
    summary = create_campaign(
        stack.runtime.engine,
        stack.settings,
        path,
        provider="bytehand",
        sender="SMSINFO",
        template="Offre STOP au 36111",
        send_rules=rules,
    )
    assert summary.estimate.outside_window == 1
    stack.start_campaign(summary.id)
    wait_until(lambda: _states(stack, summary.id)[inside] == "delivered", timeout=30)
    states = _states(stack, summary.id)
    assert (states[outside], states[blacklisted]) == ("pending", "failed")
    with session_scope(stack.runtime.sessions) as session:
        report = campaigns.report(session, summary.id)
        assert report["waiting_for_window"] == 1
        opens = datetime.fromisoformat(report["next_window_opens"])
        entry = session.scalars(select(Suppression).where(Suppression.phone == blacklisted)).one()
        assert (entry.scope, entry.source) == ("bytehand", "provider")
    assert [e.to for e in stack.bytehand.ledger] == [inside]
    time.sleep(max(0.0, (opens - utcnow()).total_seconds()))
    wait_until(lambda: _states(stack, summary.id)[outside] == "delivered", timeout=30)
    sent_at = {e.to: e.accepted_at for e in stack.bytehand.ledger}
    assert sent_at[outside] >= opens
