"""The PDU codec: bytes as SMPP 3.4 lays them out, and a stream cut into PDUs."""

from __future__ import annotations

import pytest

from dispatcher.smpp.pdu import Command, Framer, Pdu, PduError, Status, Tag, decode, encode


def test_enquire_link_is_a_bare_header() -> None:
    """enquire_link has no body: 16 octets of length, id, status and sequence."""
    assert encode(Pdu(Command.ENQUIRE_LINK, 7)) == bytes.fromhex("00000010000000150000000000000007")


def test_bind_transceiver_lays_out_its_fields_in_order() -> None:
    """system_id, password, system_type as C strings, then version 0x34, ton, npi, range."""
    pdu = Pdu(
        Command.BIND_TRANSCEIVER,
        1,
        params={"system_id": "svc", "password": "pw", "interface_version": 0x34},
    )
    assert encode(pdu)[16:] == b"svc\x00pw\x00\x00\x34\x00\x00\x00"


def test_submit_sm_round_trips_with_tlvs() -> None:
    """A submit_sm decodes to the parameters and TLVs it was built from."""
    pdu = Pdu(
        Command.SUBMIT_SM,
        42,
        params={"destination_addr": "33612345678", "data_coding": 8, "short_message": b"\x00A"},
        tlvs={0x1400: b"ref-1\x00", Tag.MESSAGE_PAYLOAD: b"x" * 300},
    )
    back = decode(encode(pdu))
    assert (back.text("destination_addr"), back.number("data_coding")) == ("33612345678", 8)
    assert back.octets("short_message") == b"\x00A"
    assert back.tlvs == {0x1400: b"ref-1\x00", Tag.MESSAGE_PAYLOAD: b"x" * 300}


def test_error_response_has_no_body() -> None:
    """A response with an error status is the header alone (SMPP 3.4 §3.2)."""
    frame = encode(
        Pdu(Command.SUBMIT_SM_RESP, 3, Status.ESME_RTHROTTLED, {"message_id": "ignored"})
    )
    assert len(frame) == 16
    assert decode(frame).status == Status.ESME_RTHROTTLED


def test_short_message_over_254_octets_is_refused() -> None:
    """sm_length is one octet: a longer text must go in message_payload."""
    with pytest.raises(PduError):
        encode(Pdu(Command.SUBMIT_SM, 1, params={"short_message": b"x" * 255}))


def test_framer_cuts_a_stream_read_in_pieces() -> None:
    """PDUs split across reads, or several in one read, come out whole and in order."""
    stream = encode(Pdu(Command.ENQUIRE_LINK, 1)) + encode(
        Pdu(Command.SUBMIT_SM_RESP, 2, params={"message_id": "abc"})
    )
    framer = Framer()
    frames = [*framer.feed(stream[:5]), *framer.feed(stream[5:20]), *framer.feed(stream[20:])]
    assert [decode(f).sequence for f in frames] == [1, 2]
    assert decode(frames[1]).text("message_id") == "abc"


def test_framer_refuses_an_impossible_length() -> None:
    """A length shorter than a header means the stream is garbage: the link must be dropped."""
    with pytest.raises(PduError):
        list(Framer().feed(b"\x00\x00\x00\x04" + b"\x00" * 12))


def test_decode_refuses_a_truncated_tlv() -> None:
    """A TLV whose length runs past the PDU is an error, not silently cut."""
    frame = encode(Pdu(Command.DELIVER_SM_RESP, 1, params={"message_id": ""}))
    broken = frame + b"\x04\x27\x00\x05\x01"
    broken = len(broken).to_bytes(4, "big") + broken[4:]
    with pytest.raises(PduError):
        decode(broken)
