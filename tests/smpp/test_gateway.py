"""The gateway against the independent peer, on a real database and Redis: sends once, applies
receipts and MOs, survives throttling, cut links and its own death (a standby takes over)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.config import load_settings
from dispatcher.db import make_engine, migrate
from dispatcher.models import InboundMessage, Message, Suppression
from dispatcher.runtime import Runtime
from dispatcher.smpp.gateway import Gateway
from dispatcher.states import MessageState
from tests.conftest import insert_campaign, sqlite_url
from tests.smpp.conftest import PASSWORD, SENDER, SYSTEM_ID, StartPeer
from tests.smpp.peer_process import Peer

M = MessageState
StartGateway = Callable[..., Gateway]


def max_per_second(arrivals_ms: list[int]) -> int:
    """The most requests that arrived within any one second (a sliding window)."""
    arrivals = sorted(arrivals_ms)
    most, start = 0, 0
    for end, at in enumerate(arrivals):
        while at - arrivals[start] >= 1000:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.fixture
def runtime_for(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> Iterator[Callable[..., Runtime]]:
    """A factory: a runtime on a migrated SQLite (or ``database_url``) bound to ``peer``."""
    made: list[Runtime] = []

    def make(peer: Peer, database_url: str | None = None, **smpp: object) -> Runtime:
        url = database_url or sqlite_url(tmp_path)
        if database_url is None:
            migrate(make_engine(url))
        config = tmp_path / f"smpp{len(made)}.toml"
        values = {
            "smpp_lease_s": 2,
            "smpp_response_timeout_s": 3,
            "smpp_enquire_link_s": 30,
            "smpp_window": 10,
        } | smpp
        config.write_text("[timetochat]\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items()))
        settings = load_settings(
            {
                "DISPATCHER_CONFIG": str(config),
                "DATABASE_URL": url,
                "REDIS_URL": redis_url,
                "DISPATCHER_STATE_DIR": str(tmp_path),
                "DISPATCHER_TIMETOCHAT_SERVICE_ID": "svc",
                "DISPATCHER_TIMETOCHAT_TRANSPORT": "smpp",
                "DISPATCHER_TIMETOCHAT_SMPP_URL": f"smpp://127.0.0.1:{peer.port}",
                "DISPATCHER_TIMETOCHAT_SMPP_SYSTEM_ID": SYSTEM_ID,
                "DISPATCHER_TIMETOCHAT_SMPP_PASSWORD": PASSWORD,
            }
        )
        runtime = Runtime(settings)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


@pytest.fixture
def start_gateway() -> Iterator[StartGateway]:
    """A factory: a gateway running in a thread, stopped (unbinding) at the end."""
    running: list[tuple[Gateway, threading.Thread]] = []

    def start(runtime: Runtime) -> Gateway:
        gateway = Gateway(runtime, threading.Event())
        thread = threading.Thread(target=gateway.run, daemon=True)
        thread.start()
        running.append((gateway, thread))
        return gateway

    yield start
    for gateway, thread in running:
        gateway.stop.set()
        thread.join(timeout=15)


def queue_messages(runtime: Runtime, count: int, **campaign: object) -> list[int]:
    """A running TimeToChat campaign whose ``count`` messages the feeder has queued."""
    with Session(runtime.engine) as session:
        _, ids = insert_campaign(
            session,
            [{"state": M.QUEUED} for _ in range(count)],
            provider="timetochat",
            sender=SENDER,
            **campaign,
        )
        session.commit()
    return ids


def states(runtime: Runtime) -> Counter[str]:
    with Session(runtime.engine) as session:
        return Counter(session.scalars(select(Message.state)))


def wait_for(
    condition: Callable[[], bool], timeout: float = 30, describe: Callable[[], object] = str
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not met in time: {describe()}"
        time.sleep(0.1)


def phones_and_refs(runtime: Runtime) -> list[tuple[str, str]]:
    with Session(runtime.engine) as session:
        rows = session.execute(select(Message.phone, Message.ext_ref)).all()
    return sorted((phone.lstrip("+"), ref) for phone, ref in rows)


def test_each_message_submitted_once_and_its_receipt_applied(
    start_peer: StartPeer,
    runtime_for: Callable[..., Runtime],
    start_gateway: StartGateway,
    db_url: str,
) -> None:
    """40 queued messages: each submitted once with its reference, delivered by its receipt,
    never more than 20 requests in a second, no unsupported command sent."""
    peer = start_peer(autoReceipt="DELIVRD")
    runtime = runtime_for(peer, db_url)
    queue_messages(runtime, 40)
    start_gateway(runtime)
    wait_for(lambda: states(runtime)[M.DELIVERED] == 40)
    ledger = peer.ledger()
    sent = sorted((s["destination"], s["reference"]) for s in ledger["submits"])
    assert sent == phones_and_refs(runtime)
    assert max_per_second(ledger["requests"]) <= 20
    assert ledger["throttled"] == 0
    assert ledger["refused"] == []


def test_throttled_submits_go_back_to_pending(
    start_peer: StartPeer, runtime_for: Callable[..., Runtime], start_gateway: StartGateway
) -> None:
    """A peer allowing 4/s against our 20/s budget: ESME_RTHROTTLED puts the recipient back to
    pending (for the feeder), counted as a refusal, and nothing is submitted twice."""
    peer = start_peer(ratePerSecond=4)
    runtime = runtime_for(peer)
    queue_messages(runtime, 30)
    gateway = start_gateway(runtime)
    wait_for(lambda: states(runtime)[M.QUEUED] + states(runtime)[M.SENDING] == 0)
    counts = states(runtime)
    assert gateway.counts["throttled"] > 0
    assert counts[M.PENDING] == gateway.counts["throttled"]
    assert counts[M.SUBMITTED] == len(peer.ledger()["submits"])
    destinations = Counter(s["destination"] for s in peer.ledger()["submits"])
    assert set(destinations.values()) == {1}


def test_cut_link_loses_and_doubles_nothing(
    start_peer: StartPeer, runtime_for: Callable[..., Runtime], start_gateway: StartGateway
) -> None:
    """The peer cuts the link mid-flow and refuses links for a second: the gateway reconnects;
    every submit the peer accepted is delivered (receipts settle those whose answer was lost),
    none twice; the rest are pending again (never written) or in doubt (written, unanswered)."""
    peer = start_peer(autoReceipt="DELIVRD")
    runtime = runtime_for(peer)
    queue_messages(runtime, 60)
    gateway = start_gateway(runtime)
    wait_for(lambda: len(peer.ledger()["submits"]) >= 15)
    peer.drop(down_ms=1000)
    settled = (M.DELIVERED, M.PENDING, M.IN_DOUBT)
    wait_for(
        lambda: sum(states(runtime)[s] for s in settled) == 60 and peer.ledger()["outbox"] == 0,
        timeout=60,
        describe=lambda: (states(runtime), gateway.counts, peer.ledger()["outbox"]),
    )
    assert gateway.counts["binds"] >= 2
    destinations = Counter(s["destination"] for s in peer.ledger()["submits"])
    assert set(destinations.values()) == {1}
    with Session(runtime.engine) as session:
        delivered = set(session.scalars(select(Message.phone).where(Message.state == M.DELIVERED)))
    assert {f"+{d}" for d in destinations} == delivered


def test_mo_is_stored_as_an_incoming_sms(
    start_peer: StartPeer, runtime_for: Callable[..., Runtime], start_gateway: StartGateway
) -> None:
    """An MO "STOP" on the link becomes one inbound message and suppresses its sender for the
    TimeToChat account, as a Push_CRA INCOMING would."""
    peer = start_peer()
    runtime = runtime_for(peer)
    gateway = start_gateway(runtime)
    wait_for(gateway.bound.is_set)
    peer.mo("+33612345678", SENDER, "STOP")
    wait_for(lambda: peer.ledger()["deliverAcks"] == 1)
    with Session(runtime.engine) as session:
        inbound = session.scalars(select(InboundMessage)).all()
        entries = session.scalars(select(Suppression)).all()
    assert [(m.provider, m.from_number, m.to_number, m.text, m.intent) for m in inbound] == [
        ("timetochat", "+33612345678", SENDER, "STOP", "opt_out")
    ]
    account = runtime.settings.timetochat.service_id
    assert [(e.phone, e.scope, e.source, e.reply_text) for e in entries] == [
        ("+33612345678", f"timetochat:{account}", "keyword", "STOP")
    ]


def test_standby_takes_over_when_the_active_gateway_stops(
    start_peer: StartPeer, runtime_for: Callable[..., Runtime], start_gateway: StartGateway
) -> None:
    """Two gateways, one bind; the active one stops (unbinding), the standby binds and sends."""
    peer = start_peer(autoReceipt="DELIVRD")
    first = start_gateway(runtime_for(peer))
    wait_for(first.bound.is_set)
    runtime = runtime_for(peer)
    second = start_gateway(runtime)
    time.sleep(1.5)
    assert not second.bound.is_set()
    assert peer.ledger()["bound"] == 1
    first.stop.set()
    wait_for(second.bound.is_set, timeout=10)
    queue_messages(runtime, 5)
    wait_for(lambda: states(runtime)[M.DELIVERED] == 5)
    assert peer.ledger()["unbinds"] == 1


def test_idle_gateway_keeps_the_link_alive(
    start_peer: StartPeer, runtime_for: Callable[..., Runtime], start_gateway: StartGateway
) -> None:
    """With nothing to send, the gateway sends enquire_link every smpp_enquire_link_s."""
    peer = start_peer()
    start_gateway(runtime_for(peer, smpp_enquire_link_s=1))
    wait_for(lambda: peer.ledger()["enquireLinksReceived"] >= 2, timeout=10)
