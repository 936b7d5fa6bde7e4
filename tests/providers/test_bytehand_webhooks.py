"""ByteHand callbacks: authentication by id and the key's last 8 characters, then parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from dispatcher.config import Secret
from dispatcher.errors import WebhookAuthError, WebhookPayloadError
from dispatcher.providers.bytehand_webhooks import IncomingSms, StatusCallback, parse_callback
from dispatcher.states import MessageState as M

KEY = Secret("5D01022D23AD33FE")  # the original's example key; its last 8 chars: 23AD33FE

# The original's examples are cut off after "&messag" and "&message=4"; the prefixes are theirs,
# the rest completes them with the documented parameters.
STATUS_URL = (
    "http://www.somesite.com/bytehand_callback?id=1234&key=23AD33FE&action=outgoingStatus"
    "&message=9885176022016555&description=DELIVERED&error_code=0&updated_at=2012-09-11+20%3A00%3A38"
)
INCOMING_URL = (
    "http://www.somesite.com/bytehand_callback?id=1234&key=23AD33FE&action=incomingSms"
    "&message=4&to=%2B79161234567&from=%2B79167654321&text=%D0%94%D0%B0%2C+%D1%81%D0%BF%D0%B0"
    "%D1%81%D0%B8%D0%B1%D0%BE&posted_at=2013-03-16+23%3A12%3A24"
)


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def parse(query: dict[str, str]) -> StatusCallback | IncomingSms:
    return parse_callback(query, client_id="1234", key=KEY)


def test_status_callback_example() -> None:
    """action=outgoingStatus: message id, state, error code and GMT time."""
    assert parse(query_of(STATUS_URL)) == StatusCallback(
        message_id="9885176022016555",
        provider_state="DELIVERED",
        state=M.DELIVERED,
        error_code=0,
        updated_at=datetime(2012, 9, 11, 20, 0, 38, tzinfo=UTC),
    )


def test_status_callback_with_error_code() -> None:
    """An undeliverable report keeps the provider's error code."""
    query = query_of(STATUS_URL) | {"description": "UNDELIVERABLE", "error_code": "13"}
    callback = parse(query)
    assert isinstance(callback, StatusCallback)
    assert (callback.state, callback.error_code) == (M.UNDELIVERABLE, 13)


def test_incoming_sms_example() -> None:
    """action=incomingSms: an MO with its URL-decoded text."""
    assert parse(query_of(INCOMING_URL)) == IncomingSms(
        message_id="4",
        to="+79161234567",
        sender="+79167654321",
        text="Да, спасибо",
        posted_at=datetime(2013, 3, 16, 23, 12, 24, tzinfo=UTC),
    )


def test_incoming_sms_may_be_empty() -> None:
    """An empty SMS is legitimate: text present but empty."""
    callback = parse(query_of(INCOMING_URL) | {"text": ""})
    assert isinstance(callback, IncomingSms)
    assert callback.text == ""


@pytest.mark.parametrize(
    "change",
    [
        {"id": "1235"},
        {"key": "23AD33FF"},
        {"key": "5D01022D23AD33FE"},  # the whole key is not what ByteHand sends
        {"key": ""},
        {"id": ""},
    ],
)
def test_wrong_credentials_are_refused(change: dict[str, str]) -> None:
    """A wrong id or key is a forged or misrouted call."""
    with pytest.raises(WebhookAuthError):
        parse(query_of(STATUS_URL) | change)


@pytest.mark.parametrize("missing", ["id", "key"])
def test_missing_credentials_are_refused(missing: str) -> None:
    """No credentials, no parsing."""
    query = query_of(STATUS_URL)
    del query[missing]
    with pytest.raises(WebhookAuthError):
        parse(query)


def test_unconfigured_key_refuses_everything() -> None:
    """With no key configured, even an empty key in the call does not pass."""
    with pytest.raises(WebhookAuthError):
        parse_callback(query_of(STATUS_URL) | {"key": ""}, client_id="1234", key=Secret(""))


def test_auth_is_checked_before_the_payload() -> None:
    """A forged call with garbage learns nothing about our parsing."""
    with pytest.raises(WebhookAuthError):
        parse({"id": "1", "key": "x", "action": "nonsense"})


@pytest.mark.parametrize("missing", ["message", "description", "error_code", "updated_at"])
def test_status_callback_missing_field(missing: str) -> None:
    """Every documented parameter of a status callback is required."""
    query = query_of(STATUS_URL)
    del query[missing]
    with pytest.raises(WebhookPayloadError):
        parse(query)


@pytest.mark.parametrize("missing", ["message", "to", "from", "text", "posted_at"])
def test_incoming_sms_missing_field(missing: str) -> None:
    """Every documented parameter of an incoming SMS is required."""
    query = query_of(INCOMING_URL)
    del query[missing]
    with pytest.raises(WebhookPayloadError):
        parse(query)


@pytest.mark.parametrize(
    "change",
    [
        {"error_code": "none"},
        {"updated_at": "2012-09-11T20:00:38Z"},
        {"action": "ussdStatus"},
        {"action": ""},
    ],
)
def test_malformed_status_callback(change: dict[str, str]) -> None:
    """Bad values and actions we do not handle are payload errors."""
    with pytest.raises(WebhookPayloadError):
        parse(query_of(STATUS_URL) | change)
