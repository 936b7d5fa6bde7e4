"""The link against the independent peer: bind, TLS, requests, the server's requests, drops."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dispatcher.config import Secret, SmppSettings
from dispatcher.ratelimit import FleetLimiter
from dispatcher.smpp.link import BindRefused, Link, LinkLost, open_socket
from dispatcher.smpp.messages import IncomingSms, parse_deliver
from dispatcher.smpp.pdu import Command, Pdu, Status
from tests.smpp.conftest import PASSWORD, SENDER, SYSTEM_ID, StartPeer
from tests.smpp.peer_process import Peer


@pytest.fixture
def budget(redis_url: str, redis_client: object) -> FleetLimiter:
    """The fleet-wide budget of the account, on the real Redis."""
    return FleetLimiter(redis_url, "timetochat:smpp-test", calls_per_second=20, hold_s=15)


def _settings(peer: Peer, **changes: object) -> SmppSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": peer.port,
        "tls": False,
        "system_id": SYSTEM_ID,
        "password": Secret(PASSWORD),
    } | changes
    return SmppSettings(**values)  # type: ignore[arg-type]


def _link(settings: SmppSettings, budget: FleetLimiter, delivered: list[Pdu] | None = None) -> Link:
    def on_deliver(pdu: Pdu) -> int:
        if delivered is not None:
            delivered.append(pdu)
        return Status.ESME_ROK

    return Link(open_socket(settings, 5), budget, on_deliver, response_timeout_s=5)


def _wait(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _submit_params(to: str = "33612345678") -> dict[str, int | str | bytes]:
    return {"source_addr": SENDER, "destination_addr": to, "short_message": b"Bonjour"}


def test_bind_and_submit_over_tls_with_a_private_ca(
    start_peer: StartPeer, budget: FleetLimiter, tls_files: dict[str, Path]
) -> None:
    """smpps:// to localhost, trusting the CA file: bound, and a submit_sm gets its id."""
    peer = start_peer(tlsKey=str(tls_files["key"]), tlsCert=str(tls_files["cert"]))
    settings = _settings(peer, host="localhost", tls=True, ca_file=tls_files["ca"])
    link = _link(settings, budget)
    link.bind(SYSTEM_ID, PASSWORD)
    answer = link.request(Command.SUBMIT_SM, _submit_params(), {0x1400: b"ref-1\x00"}).result(5)
    link.unbind()
    assert answer.status == Status.ESME_ROK
    submits = peer.ledger()["submits"]
    assert [(s["message_id"], s["reference"]) for s in submits] == [
        (answer.text("message_id"), "ref-1")
    ]
    assert peer.ledger()["unbinds"] == 1


def test_tls_checks_the_host_name(
    start_peer: StartPeer, budget: FleetLimiter, tls_files: dict[str, Path]
) -> None:
    """A certificate for localhost does not pass for 127.0.0.1: no link at all."""
    peer = start_peer(tlsKey=str(tls_files["key"]), tlsCert=str(tls_files["cert"]))
    settings = _settings(peer, tls=True, ca_file=tls_files["ca"])
    with pytest.raises(LinkLost, match="TLS"):
        open_socket(settings, 5)


def test_wrong_password_is_a_refused_bind(start_peer: StartPeer, budget: FleetLimiter) -> None:
    """ESME_RBINDFAIL becomes BindRefused, an account problem."""
    peer = start_peer()
    link = _link(_settings(peer), budget)
    with pytest.raises(BindRefused):
        link.bind(SYSTEM_ID, "wrong")
    assert peer.ledger()["bindFailures"] == 1


def test_server_enquire_links_are_answered(start_peer: StartPeer, budget: FleetLimiter) -> None:
    """The server's enquire_link every 200 ms is answered; the link stays up."""
    peer = start_peer(enquireLinkMs=200)
    link = _link(_settings(peer), budget)
    link.bind(SYSTEM_ID, PASSWORD)
    _wait(lambda: peer.ledger()["enquireLinksAnswered"] >= 3)
    assert not link.closed.is_set()
    assert peer.ledger()["linksClosedForSilence"] == 0
    link.unbind()


def test_mo_is_handed_over_and_acknowledged(start_peer: StartPeer, budget: FleetLimiter) -> None:
    """A deliver_sm reaches the handler; our deliver_sm_resp clears it from the peer's outbox."""
    peer = start_peer()
    delivered: list[Pdu] = []
    link = _link(_settings(peer), budget, delivered)
    link.bind(SYSTEM_ID, PASSWORD)
    peer.mo("+33612345678", SENDER, "STOP")
    _wait(lambda: peer.ledger()["deliverAcks"] == 1)
    link.unbind()
    assert parse_deliver(delivered[0]) == IncomingSms("+33612345678", SENDER, "STOP")


def test_cut_link_is_noticed(start_peer: StartPeer, budget: FleetLimiter) -> None:
    """A link the server cuts is closed at once and refuses further requests with LinkLost."""
    peer = start_peer()
    link = _link(_settings(peer), budget)
    link.bind(SYSTEM_ID, PASSWORD)
    peer.drop()
    _wait(link.closed.is_set)
    with pytest.raises(LinkLost):
        link.request(Command.SUBMIT_SM, _submit_params())


def test_peer_throttles_beyond_its_rate(start_peer: StartPeer, redis_url: str) -> None:
    """With a budget above the peer's 3/s, the peer answers ESME_RTHROTTLED: a real limit."""
    peer = start_peer(ratePerSecond=3)
    loose = FleetLimiter(redis_url, "timetochat:loose", calls_per_second=50, hold_s=15)
    link = _link(_settings(peer), loose)
    link.bind(SYSTEM_ID, PASSWORD)
    futures = [link.request(Command.SUBMIT_SM, _submit_params()) for _ in range(5)]
    statuses = [f.result(5).status for f in futures]
    link.unbind()
    assert statuses.count(Status.ESME_RTHROTTLED) >= 2
