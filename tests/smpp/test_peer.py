"""The peer is as strict as the connector's document: what it refuses, and how."""

from __future__ import annotations

import socket

import pytest

from dispatcher.smpp.pdu import Command, Framer, Pdu, Status, decode, encode
from tests.smpp.conftest import PASSWORD, SYSTEM_ID, StartPeer

BIND_TRANSMITTER = 0x00000002
QUERY_SM = 0x00000003
CANCEL_SM = 0x00000008
REPLACE_SM = 0x00000007
DATA_SM = 0x00000103


def _exchange(sock: socket.socket, pdu: Pdu) -> Pdu:
    sock.sendall(encode(pdu))
    framer = Framer()
    while True:
        frames = list(framer.feed(sock.recv(4096)))
        if frames:
            return decode(frames[0])


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (QUERY_SM, Status.ESME_RQUERYFAIL),
        (CANCEL_SM, Status.ESME_RCANCELFAIL),
        (REPLACE_SM, Status.ESME_RREPLACEFAIL),
        (DATA_SM, Status.ESME_RSUBMITFAIL),
        (Command.DELIVER_SM, Status.ESME_RDELIVERYFAILURE),
    ],
)
def test_unsupported_commands_get_the_documented_refusal(
    start_peer: StartPeer, command: int, status: Status
) -> None:
    """Each unsupported operation is answered with the status the document gives it."""
    peer = start_peer()
    with socket.create_connection(("127.0.0.1", peer.port), timeout=5) as sock:
        bind = Pdu(
            Command.BIND_TRANSCEIVER,
            1,
            params={"system_id": SYSTEM_ID, "password": PASSWORD, "interface_version": 0x34},
        )
        assert _exchange(sock, bind).status == Status.ESME_ROK
        assert _exchange(sock, Pdu(command, 2)).status == status
    assert [entry["command"] for entry in peer.ledger()["refused"]]


def test_bind_transmitter_is_refused(start_peer: StartPeer) -> None:
    """Only bind_transceiver binds; bind_transmitter gets ESME_RBINDFAIL even with good
    credentials."""
    peer = start_peer()
    with socket.create_connection(("127.0.0.1", peer.port), timeout=5) as sock:
        bind = Pdu(
            BIND_TRANSMITTER,
            1,
            params={"system_id": SYSTEM_ID, "password": PASSWORD, "interface_version": 0x34},
        )
        assert _exchange(sock, bind).status == Status.ESME_RBINDFAIL
    assert peer.ledger()["binds"] == 0
