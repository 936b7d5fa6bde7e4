"""TimeToChat pure functions: the body we send, errors by status and code, states, history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dispatcher.errors import (
    AccountBlocked,
    CredentialsExpired,
    ProviderError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    SendInDoubt,
)
from dispatcher.providers import timetochat_errors
from dispatcher.providers.timetochat import (
    STATE_MAP,
    TtcHistoryEntry,
    TtcOutgoing,
    build_message,
    derive_state,
    format_validity,
    map_state,
    parse_send,
    parse_status,
    parse_token,
)
from dispatcher.providers.timetochat_errors import (
    FORBIDDEN_SENDER,
    INVALID_VALIDITY_DATE,
    MISSING_PARAMETER,
    MONTHLY_LIMIT_REACHED,
    TEST_ACCOUNT_EXPIRED,
    TOKEN_EXPIRED,
    parse_retry_after,
)
from dispatcher.sandbox import codes
from dispatcher.states import MessageState as M

ERRORS = [
    "CRA_SMS_ERROR",
    "CRA_SMS_OPINVALID",
    "CRA_SMS_BLACKLIST",
    "CRA_SMS_OPBLACKLIST",
    "CRA_SMS_INVALIDFROM",
    "CRA_SMS_WRONGNUMBER",
    "CRA_SMS_FALSENUMBER",
    "CRA_SMS_OPERROR",
    "CRA_SMS_OPFAILURE",
    "CRA_SMS_OPFULL",
    "CRA_SMS_COUNTRY",
    "CRA_SMS_FULLSIM",
    "CRA_SMS_LOTOFMSG",
    "CRA_SMS_REJECTED",
    "CRA_SMS_BLOCKED",
]


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def at(second: int) -> datetime:
    return datetime(2023, 10, 4, 7, 14, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("provider_state", "state"),
    [
        ("NEW", M.SUBMITTED),
        ("CRA_SMS_SENT", M.SENT),
        ("CRA_SMS_RECEIVED", M.DELIVERED),
        ("SENT", M.SENT),
        ("RECEIVED", M.DELIVERED),
        ("ERROR", M.UNDELIVERABLE),
        *[(error, M.UNDELIVERABLE) for error in ERRORS],
    ],
)
def test_state_map(provider_state: str, state: M) -> None:
    """Every state of the spec, and every CRA_SMS_* error, is final as undeliverable."""
    assert STATE_MAP[provider_state] is state


def test_state_map_has_nothing_else() -> None:
    """Three progress states, three unprefixed aliases, fifteen errors."""
    assert len(STATE_MAP) == 3 + 3 + len(ERRORS)


def test_unlisted_state_is_not_final() -> None:
    """A state added later keeps the message polled."""
    assert map_state("CRA_SMS_SOMETHING") is M.SENT


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(2018, 12, 27, 9, 6, 22, 620000, tzinfo=UTC), "2018-12-27T09:06:22.620Z"),
        (datetime(2019, 7, 1, 8, 0, 0, 123999, tzinfo=UTC), "2019-07-01T08:00:00.123Z"),
        (
            datetime(2019, 7, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))),
            "2019-07-01T08:00:00.000Z",
        ),
    ],
)
def test_format_validity(when: datetime, text: str) -> None:
    """validityDate is UTC with milliseconds and a Z."""
    assert format_validity(when) == text


def test_format_validity_refuses_naive() -> None:
    """A naive validity would be a guess."""
    with pytest.raises(ValueError, match="aware"):
        format_validity(datetime(2019, 7, 1, 8, 0))


def test_build_message_full() -> None:
    """Every field, named as the API names them; the number kept in E.164."""
    message = TtcOutgoing(
        to="+33601020304",
        sender="0931000000",
        text="Test MUG",
        ext_ref="123456",
        validity=datetime(2018, 12, 27, 9, 6, 22, 620000, tzinfo=UTC),
        unicode=True,
        flash=True,
    )
    assert build_message(message) == {
        "from": "0931000000",
        "to": "+33601020304",
        "text": "Test MUG",
        "extRef": "123456",
        "validityDate": "2018-12-27T09:06:22.620Z",
        "unicode": True,
        "flash": True,
    }


def test_build_message_omits_unset_options() -> None:
    """No extRef or validityDate when not set; unicode and flash always explicit."""
    message = TtcOutgoing("+33601020304", "0931000000", "hi", None, None, unicode=False)
    assert build_message(message) == {
        "from": "0931000000",
        "to": "+33601020304",
        "text": "hi",
        "unicode": False,
        "flash": False,
    }


def test_build_message_refuses_long_ext_ref() -> None:
    """extRef is at most 150 characters."""
    build_message(TtcOutgoing("+33", "09", "t", "x" * 150, None, unicode=False))
    with pytest.raises(ValueError, match="150"):
        build_message(TtcOutgoing("+33", "09", "t", "x" * 151, None, unicode=False))


@pytest.mark.parametrize(
    ("status", "raw", "send", "error", "code"),
    [
        (400, body({"code": MISSING_PARAMETER}), True, ProviderRejected, MISSING_PARAMETER),
        (400, body({"code": INVALID_VALIDITY_DATE}), True, ProviderRejected, INVALID_VALIDITY_DATE),
        (400, b"", True, ProviderRejected, "http_400"),
        (401, body({"code": TOKEN_EXPIRED}), True, CredentialsExpired, TOKEN_EXPIRED),
        (401, b"", False, CredentialsExpired, TOKEN_EXPIRED),
        (403, body({"code": TEST_ACCOUNT_EXPIRED}), True, AccountBlocked, TEST_ACCOUNT_EXPIRED),
        (403, body({"code": MONTHLY_LIMIT_REACHED}), True, AccountBlocked, MONTHLY_LIMIT_REACHED),
        (403, body({"code": FORBIDDEN_SENDER}), True, AccountBlocked, FORBIDDEN_SENDER),
        (404, body({"code": "NOT_FOUND"}), False, ProviderRejected, "NOT_FOUND"),
        (404, b"", False, ProviderRejected, "NOT_FOUND"),
        (400, body({"code": "INVALID_PARAMETER"}), True, ProviderRejected, "INVALID_PARAMETER"),
        (400, body({"code": "INVALID_RECIPIENT"}), True, ProviderRejected, "INVALID_RECIPIENT"),
        (400, body({"code": "TEXT_TOO_LONG"}), True, ProviderRejected, "TEXT_TOO_LONG"),
        (400, body({"code": "INVALID_EXT_REF"}), True, ProviderRejected, "INVALID_EXT_REF"),
        (401, body({"code": "INVALID_TOKEN"}), False, CredentialsExpired, "INVALID_TOKEN"),
        (429, b"Too many request", True, ProviderThrottled, "TOO_MANY_REQUESTS"),
        (500, body({"code": "INTERNAL_ERROR"}), True, ProviderUnavailable, "INTERNAL_ERROR"),
        (503, b"<html>", True, SendInDoubt, None),
        (502, b"", False, ProviderUnavailable, None),
        (409, b"", True, ProviderUnavailable, "http_409"),
        (201, b"created", True, SendInDoubt, None),
        (201, body({"extRef": "a"}), True, SendInDoubt, None),
    ],
)
def test_send_answers_map_to_errors(
    status: int, raw: bytes, send: bool, error: type[ProviderError], code: str | None
) -> None:
    """HTTP status decides the class; the body's code tells cases apart."""
    with pytest.raises(error) as info:
        parse_send(status, raw) if send else parse_status(status, raw)
    assert type(info.value) is error
    assert info.value.code == code


def test_provider_message_is_kept_in_the_reason() -> None:
    """The body's message reads well in the recipient's reason."""
    with pytest.raises(ProviderRejected) as info:
        parse_send(400, body({"code": "INVALID_RECIPIENT", "message": "Invalid recipient"}))
    assert info.value.reason == "timetochat:INVALID_RECIPIENT HTTP 400: Invalid recipient"


def test_sandbox_uses_our_code_strings() -> None:
    """The simulator answers with exactly the codes this client expects (same names)."""
    for name in dir(codes):
        if name.startswith("TTC_") and isinstance(getattr(codes, name), str):
            assert getattr(timetochat_errors, name.removeprefix("TTC_")) == getattr(codes, name)


def test_throttled_carries_retry_after() -> None:
    """429 with Retry-After: the wait is on the exception."""
    with pytest.raises(ProviderThrottled) as info:
        parse_send(429, body({"code": "TOO_MANY_REQUESTS"}), retry_after="2")
    assert info.value.retry_after == 2.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0.5", 0.5), (None, None), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("-1", None)],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    """Delta-seconds only; a date or a negative value gives no hint."""
    assert parse_retry_after(header) == seconds


def test_parse_send_spec_example() -> None:
    """201 {"id", "extRef"}: the id."""
    assert parse_send(201, body({"id": "5bc9a8751a34791aff429efe", "extRef": "123456"})) == (
        "5bc9a8751a34791aff429efe"
    )


def test_a_history_ending_in_plain_error_is_a_failure() -> None:
    """The original's ERROR state ends a message as undeliverable, not polled as sent."""
    history = {
        **SINGLE,
        "history": [
            *SINGLE["history"][:2],
            {"date": "2018-10-19T09:48:39.000Z", "status": "ERROR"},
        ],
    }  # type: ignore[misc]
    status = parse_status(200, body(history))
    assert (status.state, status.provider_state) == (M.UNDELIVERABLE, "ERROR")


def test_a_send_to_an_unknown_service_blocks_the_account() -> None:
    """A 404 to POST /messages (no or a wrong service id) pauses; no recipient is at fault."""
    with pytest.raises(AccountBlocked) as info:
        parse_send(404, body({"detail": "Not Found"}))
    assert info.value.code == "NOT_FOUND"


def test_parse_token_spec_example() -> None:
    """201 {"token"}: the token, hidden in a Secret."""
    token = parse_token(201, body({"token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.sig"}))
    assert token.reveal().startswith("eyJ")
    assert "eyJ" not in repr(token)


@pytest.mark.parametrize(
    ("status", "raw", "error"),
    [
        (401, body({"code": "AUTHENTICATION_FAILED"}), AccountBlocked),
        (400, b"", AccountBlocked),
        (403, body({"code": TEST_ACCOUNT_EXPIRED}), AccountBlocked),
        (404, body({"detail": "Not Found"}), AccountBlocked),
        (429, b"", ProviderThrottled),
        (500, b"", ProviderUnavailable),
        (201, body({}), ProviderUnavailable),
        (201, body({"token": ""}), ProviderUnavailable),
    ],
)
def test_parse_token_failures(status: int, raw: bytes, error: type[ProviderError]) -> None:
    """A refused password blocks the account; a 5xx on a token request is only unavailable."""
    with pytest.raises(error) as info:
        parse_token(status, raw)
    assert type(info.value) is error


def test_parse_token_401_code() -> None:
    """The documented 401 answer keeps its code."""
    with pytest.raises(AccountBlocked) as info:
        parse_token(401, body({"code": "AUTHENTICATION_FAILED"}))
    assert info.value.code == "AUTHENTICATION_FAILED"


SINGLE = {
    "to": "+33617612030",
    "text": "Test de SMS depuis le Mug",
    "extRef": "123456",
    "unicode": False,
    "flash": False,
    "id": "5bc9a8751a34791aff429efe",
    "date": "2018-10-19T09:48:37.659Z",
    "history": [
        {"date": "2018-10-19T09:48:37.659Z", "status": "NEW"},
        {"date": "2018-10-19T09:48:38.000Z", "status": "CRA_SMS_SENT"},
        {"date": "2018-10-19T09:48:39.000Z", "status": "CRA_SMS_RECEIVED"},
    ],
}


def test_parse_status_spec_example() -> None:
    """The original's report (section 8.5): delivered, with its history and extRef."""
    status = parse_status(200, body(SINGLE))
    assert status.message_id == "5bc9a8751a34791aff429efe"
    assert status.ext_ref == "123456"
    assert status.date == datetime(2018, 10, 19, 9, 48, 37, 659000, tzinfo=UTC)
    assert [h.status for h in status.history] == ["NEW", "CRA_SMS_SENT", "CRA_SMS_RECEIVED"]
    assert status.provider_state == "CRA_SMS_RECEIVED"
    assert status.state is M.DELIVERED


def test_parse_status_multipart_spec_example() -> None:
    """The original's long-SMS report: both parts received means delivered."""
    answer = {
        "from": "093XXXXXXX",
        "to": "0601020304",
        "text": "Test TimeToChat",
        "unicode": False,
        "flash": False,
        "id": "5bb5bdce911ea924bddaa243",
        "date": "2023-10-04T07:14:22.000Z",
        "history": [
            {"date": "2023-10-04T07:14:22.000Z", "status": "NEW", "part": "1/2"},
            {"date": "2023-10-04T07:14:23.000Z", "status": "SENT", "part": "2/2"},
            {"date": "2023-10-04T07:14:23.000Z", "status": "SENT", "part": "1/2"},
            {"date": "2023-10-04T07:14:24.000Z", "status": "RECEIVED", "part": "2/2"},
            {"date": "2023-10-04T07:14:24.000Z", "status": "RECEIVED", "part": "1/2"},
        ],
    }
    status = parse_status(200, body(answer))
    assert status.history[0].part == "1/2"
    assert status.ext_ref is None
    assert status.state is M.DELIVERED


@pytest.mark.parametrize(
    ("history", "state"),
    [
        ([], M.SUBMITTED),
        ([("NEW", None, 0)], M.SUBMITTED),
        ([("NEW", None, 0), ("CRA_SMS_SENT", None, 1)], M.SENT),
        ([("CRA_SMS_RECEIVED", None, 2), ("CRA_SMS_SENT", None, 1)], M.DELIVERED),
        ([("CRA_SMS_SENT", None, 1), ("CRA_SMS_OPFULL", None, 2)], M.UNDELIVERABLE),
        # Parts: delivered only when every part is.
        ([("CRA_SMS_RECEIVED", "1/2", 2), ("CRA_SMS_SENT", "2/2", 2)], M.SENT),
        ([("CRA_SMS_RECEIVED", "1/2", 2), ("CRA_SMS_RECEIVED", "2/2", 3)], M.DELIVERED),
        # A part never reported is still only submitted.
        ([("CRA_SMS_RECEIVED", "1/3", 2), ("CRA_SMS_RECEIVED", "2/3", 3)], M.SUBMITTED),
        # Any part in error fails the message, even if others are delivered.
        ([("CRA_SMS_RECEIVED", "1/2", 2), ("CRA_SMS_FULLSIM", "2/2", 3)], M.UNDELIVERABLE),
        # A part-less entry applies to every part.
        ([("NEW", None, 0), ("CRA_SMS_SENT", "1/2", 1), ("CRA_SMS_SENT", "2/2", 1)], M.SENT),
        ([("NEW", None, 0), ("CRA_SMS_SENT", "1/2", 1)], M.SUBMITTED),
        # Same instant: the later entry in the list wins.
        ([("CRA_SMS_SENT", None, 1), ("CRA_SMS_RECEIVED", None, 1)], M.DELIVERED),
    ],
)
def test_derive_state(history: list[tuple[str, str | None, int]], state: M) -> None:
    """One state for a message from its per-part history."""
    entries = [TtcHistoryEntry(at(second), status, part) for status, part, second in history]
    assert derive_state(entries) is state


@pytest.mark.parametrize(
    "change",
    [
        {"history": None},
        {"history": [{"status": "NEW"}]},
        {"history": [{"date": "2018-10-19T09:48:37", "status": "NEW"}]},
        {"history": [{"date": "2018-10-19T09:48:37Z", "status": "NEW", "part": "3/2"}]},
        {"history": [{"date": "2018-10-19T09:48:37Z", "status": 3}]},
        {"id": None},
        {"date": "yesterday"},
    ],
)
def test_parse_status_malformed_is_unavailable(change: dict[str, object]) -> None:
    """A report we cannot read is a poll to repeat later."""
    answer = {key: value for key, value in (SINGLE | change).items() if value is not None}
    with pytest.raises(ProviderUnavailable) as info:
        parse_status(200, body(answer))
    assert type(info.value) is ProviderUnavailable
