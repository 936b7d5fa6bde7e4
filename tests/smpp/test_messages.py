"""submit_sm built from a TimeToChat message, and deliver_sm read back (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dispatcher.errors import (
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
)
from dispatcher.providers.timetochat import TtcOutgoing
from dispatcher.smpp import messages
from dispatcher.smpp.messages import (
    IncomingSms,
    Receipt,
    build_submit,
    decode_text,
    encode_gsm7,
    format_validity,
    parse_deliver,
    parse_receipt_text,
    read_submit_resp,
)
from dispatcher.smpp.pdu import Command, Pdu, Status, Tag
from dispatcher.sms import GSM7_BASIC, GSM7_EXTENSION
from dispatcher.states import MessageState


def _outgoing(text: str = "Bonjour", *, unicode: bool = False, **changes: object) -> TtcOutgoing:
    values: dict[str, object] = {
        "to": "+33612345678",
        "sender": "0931000000",
        "text": text,
        "ext_ref": "c1-m7",
        "validity": None,
        "unicode": unicode,
    } | changes
    return TtcOutgoing(**values)  # type: ignore[arg-type]


def test_gsm7_table_covers_exactly_the_alphabet_sms_counts() -> None:
    """The encoder knows the same characters as the part counter, no more, no fewer."""
    assert set(messages._GSM7_CODES) == GSM7_BASIC
    assert set(messages._GSM7_ESCAPED) == GSM7_EXTENSION


def test_gsm7_extension_characters_are_escaped() -> None:
    """€ and [ take two septets: the escape 0x1B and their code in the extension table."""
    assert encode_gsm7("a€[") == bytes((0x61, 0x1B, 0x65, 0x1B, 0x3C))
    assert decode_text(encode_gsm7("Ça fait 5€ {ok}"), 0) == "Ça fait 5€ {ok}"


def test_short_text_goes_in_short_message_with_default_coding() -> None:
    """One part: short_message, data_coding 0x00, receipts requested, numbers typed."""
    params, tlvs = build_submit(_outgoing("Bonjour"))
    assert params["short_message"] == b"Bonjour"
    assert params["data_coding"] == 0x00
    assert params["registered_delivery"] == 1
    assert (params["dest_addr_ton"], params["destination_addr"]) == (1, "33612345678")
    assert (params["source_addr_ton"], params["source_addr"]) == (2, "0931000000")
    assert Tag.MESSAGE_PAYLOAD not in tlvs


def test_unicode_text_is_ucs2_with_data_coding_8() -> None:
    """A UCS-2 message is UTF-16 big-endian with data_coding 0x08 (an emoji takes 4 octets)."""
    params, _ = build_submit(_outgoing("Привет 👋", unicode=True))
    assert params["data_coding"] == 0x08
    assert params["short_message"] == "Привет 👋".encode("utf-16-be")


@pytest.mark.parametrize(
    ("text", "unicode", "in_payload"),
    [
        ("x" * 140, False, False),
        ("x" * 141, False, True),
        ("é" * 70, True, False),
        ("é" * 71, True, True),
    ],
)
def test_long_text_goes_whole_in_message_payload(
    text: str, unicode: bool, in_payload: bool
) -> None:
    """Over 140 octets the text goes in message_payload and short_message stays empty."""
    params, tlvs = build_submit(_outgoing(text, unicode=unicode))
    assert (Tag.MESSAGE_PAYLOAD in tlvs) is in_payload
    assert (params["short_message"] == b"") is in_payload


def test_our_reference_travels_in_the_external_reference_tlv() -> None:
    """ext_ref goes as a C string under the configured tag."""
    _, tlvs = build_submit(_outgoing(), reference_tag=0x1500)
    assert tlvs[0x1500] == b"c1-m7\x00"


def test_validity_is_absolute_utc() -> None:
    """validity_period is YYMMDDhhmmss000+ in UTC whatever the zone given."""
    paris = timezone(timedelta(hours=2))
    assert format_validity(datetime(2026, 7, 1, 10, 0, 5, tzinfo=paris)) == "260701080005000+"
    params, _ = build_submit(_outgoing(validity=datetime(2026, 7, 1, 8, tzinfo=UTC)))
    assert params["validity_period"] == "260701080000000+"


def test_receipt_text_fields_are_parsed() -> None:
    """The appendix B text, including the two-word keys and a text with spaces."""
    fields = parse_receipt_text(
        "id:5bb31c2f sub:001 dlvrd:001 submit date:2607011200 done date:2607011201 "
        "stat:DELIVRD err:000 text:Bonjour a tous"
    )
    assert fields["id"] == "5bb31c2f"
    assert fields["done date"] == "2607011201"
    assert (fields["stat"], fields["err"], fields["text"]) == ("DELIVRD", "000", "Bonjour a tous")


def _deliver(esm_class: int, text: bytes, **tlvs: bytes) -> Pdu:
    return Pdu(
        Command.DELIVER_SM,
        9,
        params={
            "esm_class": esm_class,
            "source_addr_ton": 1,
            "source_addr": "33612345678",
            "destination_addr": "0931000000",
            "short_message": text,
        },
        tlvs={getattr(Tag, k.upper(), 0x1400): v for k, v in tlvs.items()},
    )


def test_receipt_tlvs_win_over_the_text() -> None:
    """receipted_message_id and message_state are read first; our reference comes back."""
    pdu = _deliver(
        0x04,
        b"id:other sub:001 dlvrd:000 stat:UNDELIV err:001 text:",
        receipted_message_id=b"abc\x00",
        message_state=b"\x02",
        external_reference=b"c1-m7\x00",
    )
    assert parse_deliver(pdu) == Receipt(
        message_id="abc",
        stat="DELIVRD",
        error="001",
        state=MessageState.DELIVERED,
        ext_ref="c1-m7",
        part="",
    )


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("DELIVRD", MessageState.DELIVERED),
        ("UNDELIV", MessageState.UNDELIVERABLE),
        ("REJECTD", MessageState.UNDELIVERABLE),
        ("EXPIRED", MessageState.EXPIRED),
        ("ACCEPTD", MessageState.SENT),
        ("UNKNOWN", None),
    ],
)
def test_receipt_text_alone_gives_the_state(stat: str, state: MessageState | None) -> None:
    """Without the TLVs the receipt text's id and stat decide."""
    text = (
        f"id:xyz sub:001 dlvrd:001 submit date:2607011200 done date:2607011201 stat:{stat} err:000"
    )
    receipt = parse_deliver(_deliver(0x04, text.encode()))
    assert isinstance(receipt, Receipt)
    assert (receipt.message_id, receipt.state, receipt.ext_ref) == ("xyz", state, None)


def test_receipt_of_one_part_names_it() -> None:
    """The sar_* TLVs of a long message's receipt say which part it is about."""
    pdu = _deliver(
        0x04,
        b"id:xyz stat:DELIVRD err:000",
        sar_segment_seqnum=b"\x02",
        sar_total_segments=b"\x03",
    )
    receipt = parse_deliver(pdu)
    assert isinstance(receipt, Receipt)
    assert receipt.part == "2/3"


def test_mo_is_an_incoming_sms() -> None:
    """esm_class 0x00: the sender (made E.164 when international), our number, the text."""
    assert parse_deliver(_deliver(0x00, b"STOP")) == IncomingSms(
        sender="+33612345678", to="0931000000", text="STOP"
    )


def test_mo_in_ucs2_payload_is_decoded() -> None:
    """An MO may come as UCS-2 in message_payload."""
    pdu = Pdu(
        Command.DELIVER_SM,
        1,
        params={"source_addr": "0612345678", "data_coding": 8, "short_message": b""},
        tlvs={Tag.MESSAGE_PAYLOAD: "Arrêt ✋".encode("utf-16-be")},
    )
    assert parse_deliver(pdu) == IncomingSms(sender="0612345678", to="", text="Arrêt ✋")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (Status.ESME_RTHROTTLED, ProviderThrottled),
        (Status.ESME_RSUBMITFAIL, ProviderRejected),
        (Status.ESME_RQUERYFAIL, ProviderRejected),
        (Status.ESME_RMSGQFUL, ProviderUnavailable),
        (Status.ESME_RSYSERR, ProviderUnavailable),
        (0x400, ProviderUnavailable),
    ],
)
def test_submit_resp_status_decides_the_recipients_fate(status: int, error: type) -> None:
    """The command_status of a submit_sm_resp maps to our error classes."""
    answer = read_submit_resp(Pdu(Command.SUBMIT_SM_RESP, 1, status))
    assert type(answer) is error


def test_submit_resp_ok_gives_the_message_id() -> None:
    """ESME_ROK carries the provider's message id, which receipts will name."""
    assert read_submit_resp(Pdu(Command.SUBMIT_SM_RESP, 1, params={"message_id": "5bb3"})) == "5bb3"
