"""End to end over SMPP: beat, two Celery workers and two gateways (active and standby) as
processes, the independent peer as TimeToChat's connector, judged by the peer's own ledger."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatcher.demo import generate_recipients
from dispatcher.loader import create_campaign
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack
from dispatcher.models import InboundMessage, Message
from dispatcher.states import MessageState
from tests.smpp.conftest import PASSWORD, SYSTEM_ID, StartPeer
from tests.smpp.test_gateway import max_per_second

pytestmark = pytest.mark.slow

M = MessageState
SENDER = TIMETOCHAT_ACCOUNT.senders[0]
GATEWAY = [sys.executable, "-m", "dispatcher", "smpp-gateway"]


def _wait(condition: Callable[[], bool], timeout: float, describe: Callable[[], object]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not in time: {describe()}"
        time.sleep(0.3)


def test_campaign_over_smpp_survives_a_cut_link_and_a_killed_gateway(
    start_peer: StartPeer, stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    """Each recipient submitted at most once and every accepted one delivered by its receipt,
    never over 20 requests in a second, an MO STOP stored, through a cut link and the active
    gateway's death (the standby binds and finishes)."""
    peer = start_peer(autoReceipt="DELIVRD", enquireLinkMs=2000, allowedSources=[SENDER])
    stack = stack_factory(
        workers=2,
        env={
            "DISPATCHER_TIMETOCHAT_TRANSPORT": "smpp",
            "DISPATCHER_TIMETOCHAT_SMPP_URL": f"smpp://127.0.0.1:{peer.port}",
            "DISPATCHER_TIMETOCHAT_SMPP_SYSTEM_ID": SYSTEM_ID,
            "DISPATCHER_TIMETOCHAT_SMPP_PASSWORD": PASSWORD,
            "DISPATCHER_LOG_LEVEL": "INFO",
        },
        timetochat={"smpp_lease_s": 2, "smpp_response_timeout_s": 3},
    )
    summary = create_campaign(
        stack.runtime.engine,
        stack.settings,
        generate_recipients(tmp_path / "smpp.csv", 300, seed=3),
        provider="timetochat",
        sender=SENDER,
        template="Bonjour {first_name}, offre -20% !",
        name="e2e smpp",
    )
    stack.fleet.add("smpp-active", GATEWAY)
    stack.fleet.add("smpp-standby", GATEWAY)
    stack.fleet.start("smpp-active")
    _wait(lambda: peer.ledger()["bound"] == 1, 30, peer.ledger)
    stack.fleet.start("smpp-standby")
    stack.start_campaign(summary.id)

    submitted = lambda: len(peer.ledger()["submits"])  # noqa: E731
    _wait(lambda: submitted() >= 60, 60, peer.ledger)
    peer.drop(down_ms=1000)
    _wait(lambda: submitted() >= 140, 60, peer.ledger)
    stack.fleet.kill("smpp-active")
    with stack.runtime.sessions() as session:
        phone = session.scalars(select(Message.phone).limit(1)).one()
    peer.mo(phone, SENDER, "STOP")

    stack.wait_settled([summary.id], timeout=180)
    _wait(lambda: peer.ledger()["outbox"] == 0, 30, peer.ledger)
    ledger = peer.ledger()
    with stack.runtime.sessions() as session:
        messages = session.execute(
            select(Message.phone, Message.state).where(Message.campaign_id == summary.id)
        ).all()
        inbound = session.scalars(select(InboundMessage)).all()
    accepted = Counter(f"+{s['destination']}" for s in ledger["submits"])
    assert max(accepted.values()) == 1, "a recipient was submitted twice"
    assert {phone for phone, state in messages if state == M.DELIVERED} == set(accepted)
    states = Counter(state for _, state in messages)
    assert states[M.DELIVERED] + states[M.IN_DOUBT] == len(messages), states
    assert states[M.IN_DOUBT] <= 2 * stack.settings.timetochat.smpp.window
    assert ledger["binds"] >= 3  # first bind, after the cut, the standby's
    assert max_per_second(ledger["requests"]) <= 20
    assert ledger["throttled"] == 0
    assert ledger["refused"] == []
    assert [(m.from_number, m.text) for m in inbound] == [(phone, "STOP")]
