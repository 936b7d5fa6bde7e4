"""Push_CRA parsing on the original's examples (OCR slips fixed as the English spec says)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dispatcher.errors import WebhookAuthError, WebhookPayloadError
from dispatcher.providers.timetochat_webhooks import PushEvent, parse_push_cra
from dispatcher.states import MessageState as M

INCOMING = (
    b'{"status_report":{"username":"123456",'
    b'"sms": [{"to" :"+33XXXXXXXXX", "from":"093XXXXXXX", "date":"2024-03-25T14:30:31Z",'
    b' "call_id":"", "status_list":[{"date":"2024-03-25T14:30:31Z","type":"INCOMING",'
    b' "info":"Ceci est un test"}], "status":"INCOMING"}]}}'
)
SENT = (
    b'{"status_report":{"username":"123456",'
    b'"sms": [{"to": "+336XXXXXXXX", "from": "093XXXXXXX", "date":"2024-03-25T14:32:25Z",'
    b'"call_id":"66018af8c8ab4e10ca97532f1","ref_externe":"abc123",'
    b'"status_list":[{"date":"2024-03-25T14:32:25Z","type":"SENT"}],"status":"SENT"}]}}'
)
RECEIVED = (
    b'{"status_report":{"username":"123456","sms": [{"to" :"+336XXXXXXXX", "from":"093XXXXXXX",'
    b' "date":"2024-03-25T14:32:27Z","call_id":"66018af8c8ab4e10ca97532f1",'
    b' "ref_externe":"abc123","status_list":[{"date":"2024-03-25T14:32:27Z",'
    b' "type" : "RECEIVED"}], "status":"RECEIVED"}]}}'
)
ANSWERED = (
    b'{"status_report":{"username":"123456","sms": [{"to" :"+336XXXXXXXX",'
    b' "from":"093XXXXXXX", "date":"2024-03-25T14:33:09Z",'
    b'"call_id":"66018af8c8ab4e10ca97532f1", "ref_externe":"abc123","status_list":'
    b'[{"date":"2024-03-25T14:33:09Z", "type" :"ANSWERED","info":"Merci c\'est super"}],'
    b'"status":"ANSWERED"}]}}'
)


def t(minute: int, second: int) -> datetime:
    return datetime(2024, 3, 25, 14, minute, second, tzinfo=UTC)


def test_incoming_example() -> None:
    """An MO: no call id, its text in info, no message state."""
    assert parse_push_cra(INCOMING, service_id="123456") == [
        PushEvent(
            call_id=None,
            ext_ref=None,
            to="+33XXXXXXXXX",
            sender="093XXXXXXX",
            date=t(30, 31),
            status="INCOMING",
            state=None,
            info="Ceci est un test",
        )
    ]


def test_sent_example() -> None:
    """SENT: the operator took it; call_id and our extRef come back."""
    (event,) = parse_push_cra(SENT, service_id="123456")
    assert event == PushEvent(
        call_id="66018af8c8ab4e10ca97532f1",
        ext_ref="abc123",
        to="+336XXXXXXXX",
        sender="093XXXXXXX",
        date=t(32, 25),
        status="SENT",
        state=M.SENT,
        info=None,
    )


def test_received_example() -> None:
    """RECEIVED: on the handset, so delivered."""
    (event,) = parse_push_cra(RECEIVED, service_id="123456")
    assert (event.status, event.state, event.date) == ("RECEIVED", M.DELIVERED, t(32, 27))


def test_answered_example() -> None:
    """ANSWERED: the reply is in info; it says nothing about delivery state."""
    (event,) = parse_push_cra(ANSWERED, service_id="123456")
    assert (event.status, event.state, event.info) == ("ANSWERED", None, "Merci c'est super")
    assert event.ext_ref == "abc123"


def report(*items: dict[str, object], username: object = "123456") -> bytes:
    return json.dumps({"status_report": {"username": username, "sms": list(items)}}).encode()


def item(kind: str, **extra: object) -> dict[str, object]:
    return {
        "to": "+33600000001",
        "from": "0931000000",
        "date": "2024-03-25T14:32:25Z",
        "call_id": "c1",
        "ref_externe": "r1",
        "status_list": [{"date": "2024-03-25T14:32:25Z", "type": kind}],
        "status": kind,
        **extra,
    }


def test_several_items_in_order() -> None:
    """One POST carries several reports; all are returned, in order."""
    events = parse_push_cra(
        report(item("SENT"), item("ERROR", call_id="c2"), item("RECEIVED")), service_id="123456"
    )
    assert [(e.call_id, e.state) for e in events] == [
        ("c1", M.SENT),
        ("c2", M.UNDELIVERABLE),
        ("c1", M.DELIVERED),
    ]


def test_top_level_info_is_accepted() -> None:
    """info outside status_list is read too."""
    (event,) = parse_push_cra(report(item("ERROR", info="OPFULL")), service_id="123456")
    assert event.info == "OPFULL"


def test_empty_report_is_valid() -> None:
    """No items: nothing to do."""
    assert parse_push_cra(report(), service_id="123456") == []


@pytest.mark.parametrize("username", ["654321", "", None, 123456])
def test_other_username_is_refused(username: object) -> None:
    """A report for another service, or without one, is forged or misrouted."""
    with pytest.raises(WebhookAuthError):
        parse_push_cra(report(item("SENT"), username=username), service_id="123456")


def test_unconfigured_service_id_refuses_everything() -> None:
    """An empty service id never matches, not even an empty username."""
    with pytest.raises(WebhookAuthError):
        parse_push_cra(report(username=""), service_id="")


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"status report": {}}',
        b'{"status_report": {"username": "123456"}}',
        b'{"status_report": {"username": "123456", "sms": {}}}',
        b'{"status_report": {"username": "123456", "sms": ["SENT"]}}',
        report(item("DELIVERED")),
        report({k: v for k, v in item("SENT").items() if k != "status"}),
        report(item("SENT", to="")),
        report(item("SENT", **{"from": 931})),
        report(item("SENT", date="2024-03-25T14:32:25")),
        report(item("SENT", date=None)),
        report(item("SENT", status_list="SENT")),
    ],
)
def test_malformed_is_a_payload_error(raw: bytes) -> None:
    """Anything we cannot read is refused as a whole."""
    with pytest.raises(WebhookPayloadError):
        parse_push_cra(raw, service_id="123456")
