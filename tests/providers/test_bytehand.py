"""ByteHand pure functions: error codes, states, dates, and the answers of the original spec."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from dispatcher.errors import (
    AccountBlocked,
    ProviderError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    SendInDoubt,
)
from dispatcher.providers.bytehand import (
    STATE_MAP,
    Signature,
    format_send_after,
    map_state,
    parse_balance,
    parse_details,
    parse_send,
    parse_send_multi,
    parse_signature,
    parse_signatures,
    parse_status,
    parse_timestamp,
)
from dispatcher.providers.bytehand_errors import ERROR_CODES, check_response, error_for_code
from dispatcher.sandbox import codes
from dispatcher.states import MessageState as M

U = ProviderUnavailable
R = ProviderRejected
B = AccountBlocked

# code: (class for a read, class for a send)
EXPECTED_CLASSES: dict[int, tuple[type[ProviderError], type[ProviderError]]] = {
    -1: (U, U),
    1: (U, U),
    2: (B, B),
    3: (B, B),
    4: (B, B),
    5: (R, R),
    6: (R, R),
    7: (U, SendInDoubt),
    8: (R, R),
    9: (R, R),
    10: (B, B),
    11: (R, R),
    12: (R, R),
    13: (R, R),
    14: (R, R),
    15: (R, R),
    16: (U, SendInDoubt),
    17: (ProviderThrottled, ProviderThrottled),
    18: (R, R),
    19: (U, SendInDoubt),
    20: (B, B),
    21: (R, R),
    22: (R, R),
}


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_every_documented_code_is_in_the_table() -> None:
    """-1 and 1..22 are all mapped, and nothing else."""
    assert set(ERROR_CODES) == set(EXPECTED_CLASSES) == {-1, *range(1, 23)}


def test_sandbox_knows_the_same_codes() -> None:
    """The simulator answers from the same code table."""
    assert set(codes.BYTEHAND_DESCRIPTIONS) == set(ERROR_CODES)
    assert set(codes.BYTEHAND_STATES) == set(STATE_MAP)


@pytest.mark.parametrize(("code", "classes"), sorted(EXPECTED_CLASSES.items()))
def test_error_code_maps_to_class(
    code: int, classes: tuple[type[ProviderError], type[ProviderError]]
) -> None:
    """Each code raises its decided class, for reads and for sends."""
    read, send = classes
    assert type(error_for_code(code, "x", send=False)) is read
    assert type(error_for_code(code, "x", send=True)) is send


def test_error_carries_code_and_provider_description() -> None:
    """The reason stored on a recipient names the provider, the code and its words."""
    error = error_for_code(11, "Invalid message receiver.", send=True)
    assert error.code == "11"
    assert error.provider == "bytehand"
    assert error.reason == "bytehand:11 Invalid message receiver."


def test_error_without_description_uses_the_documented_one() -> None:
    """An empty description falls back to the spec's text."""
    assert str(error_for_code(14, "", send=False)) == "The phone number is blocked."


def test_unknown_code_is_unavailable() -> None:
    """A code outside the table is an answer, so nothing was accepted: retry, bounded."""
    assert type(error_for_code(99, "new", send=True)) is ProviderUnavailable


@pytest.mark.parametrize(
    ("provider_state", "state"),
    [
        ("NEW", M.SUBMITTED),
        ("ACCEPTED", M.SENT),
        ("DELIVERED", M.DELIVERED),
        ("EXPIRED", M.EXPIRED),
        ("DELETED", M.UNDELIVERABLE),
        ("UNDELIVERABLE", M.UNDELIVERABLE),
        ("REJECTED", M.UNDELIVERABLE),
        ("UNKNOWN", M.SENT),
    ],
)
def test_state_map(provider_state: str, state: M) -> None:
    """All eight ByteHand states have one meaning for us."""
    assert STATE_MAP[provider_state] is state
    assert map_state(provider_state) is state


def test_state_map_has_exactly_the_eight_states() -> None:
    """No state is forgotten or invented."""
    assert len(STATE_MAP) == 8


def test_unlisted_state_is_not_final() -> None:
    """A state ByteHand adds later keeps the message polled instead of failing the poll."""
    assert map_state("SOMETHING_NEW") is M.SENT


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(2024, 3, 25, 14, 30, 5, tzinfo=UTC), "2024-03-25 14:30:05"),
        (
            datetime(2024, 3, 25, 16, 30, 5, 999999, tzinfo=timezone(timedelta(hours=2))),
            "2024-03-25 14:30:05",
        ),
        (datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=3))), "2023-12-31 22:00:00"),
    ],
)
def test_format_send_after_is_gmt(when: datetime, text: str) -> None:
    """send_after is yyyy-MM-dd HH:mm:ss in GMT, whatever zone it was given in."""
    assert format_send_after(when) == text


def test_format_send_after_refuses_naive() -> None:
    """A naive datetime's zone would be a guess."""
    with pytest.raises(ValueError, match="aware"):
        format_send_after(datetime(2024, 3, 25, 14, 30))


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("2012-09-11 20:00:26.0", datetime(2012, 9, 11, 20, 0, 26, tzinfo=UTC)),
        ("2012-09-11 20:00:38", datetime(2012, 9, 11, 20, 0, 38, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, when: datetime) -> None:
    """ByteHand times are GMT, with or without the trailing fraction of /details."""
    assert parse_timestamp(text) == when


@pytest.mark.parametrize("text", ["2012-09-11T20:00:26", "2012-09-11 20:00:26.x", "yesterday"])
def test_parse_timestamp_rejects_other_formats(text: str) -> None:
    """Anything else is not a ByteHand time."""
    with pytest.raises(ValueError):
        parse_timestamp(text)


# Answers retyped from the original (002_*.txt).


def test_parse_send_spec_example() -> None:
    """``{"status": "0", "description": "9885176022016555"}`` is the message id."""
    assert parse_send(200, body({"status": "0", "description": "9885176022016555"})) == (
        "9885176022016555"
    )


def test_parse_send_multi_spec_example() -> None:
    """One bad sender is its own item's answer, in request order (it blocks the account)."""
    answer = [
        {"status": 0, "description": "33438930809215150"},
        {"status": 10, "description": "Invalid message sender."},
    ]
    first, second = parse_send_multi(200, body(answer), count=2)
    assert first.message_id == "33438930809215150"
    assert first.error is None
    assert second.message_id is None
    assert isinstance(second.error, AccountBlocked)
    assert second.error.code == "10"


def test_parse_send_multi_item_in_doubt() -> None:
    """An item whose result is unknown (16) or unreadable is in doubt, alone."""
    answer = [{"status": 16, "description": "?"}, {"status": 0}, {"status": 0, "description": "1"}]
    results = parse_send_multi(200, body(answer), count=3)
    assert [type(r.error) for r in results] == [SendInDoubt, SendInDoubt, type(None)]


def test_parse_send_multi_wrong_length_is_in_doubt() -> None:
    """Results we cannot align with our items put the whole batch in doubt."""
    with pytest.raises(SendInDoubt):
        parse_send_multi(200, body([{"status": 0, "description": "1"}]), count=2)


@pytest.mark.parametrize(
    ("status", "answer", "error"),
    [
        (400, {"status": "2", "description": "Authorization failed."}, AccountBlocked),
        (400, {"status": 17, "description": "Too many operations."}, ProviderThrottled),
        (400, {"status": 6, "description": "Some of parameters are invalid."}, ProviderRejected),
    ],
)
def test_parse_send_multi_batch_level_error_raises(
    status: int, answer: object, error: type[ProviderError]
) -> None:
    """A single error object instead of a list fails the whole batch."""
    with pytest.raises(error):
        parse_send_multi(status, body(answer), count=2)


def test_parse_status_spec_example() -> None:
    """``{"status":"0","description":"DELIVERED"}``."""
    status = parse_status(200, body({"status": "0", "description": "DELIVERED"}))
    assert (status.provider_state, status.state) == ("DELIVERED", M.DELIVERED)


def test_parse_details_spec_example() -> None:
    """The /details example: times in GMT, parts and an exact cost."""
    details = parse_details(
        200,
        body(
            {
                "status": "0",
                "description": "DELIVERED",
                "posted_at": "2012-09-11 20:00:26.0",
                "updated_at": "2012-09-11 20:00:38.0",
                "parts": "5",
                "cost": "1.0000",
            }
        ),
    )
    assert details.state is M.DELIVERED
    assert details.posted_at == datetime(2012, 9, 11, 20, 0, 26, tzinfo=UTC)
    assert details.updated_at == datetime(2012, 9, 11, 20, 0, 38, tzinfo=UTC)
    assert details.parts == 5
    assert details.cost == Decimal("1.0000")


def test_parse_details_missing_parts_is_unavailable() -> None:
    """An incomplete /details answer is a read we can repeat."""
    with pytest.raises(ProviderUnavailable):
        parse_details(200, body({"status": "0", "description": "NEW", "cost": "1"}))


def test_parse_balance_spec_example() -> None:
    """The balance is exact: Decimal, not float."""
    assert parse_balance(200, body({"status": "0", "description": "48.8300"})) == Decimal("48.83")


def test_parse_balance_not_a_number() -> None:
    """A balance we cannot read is an unreadable answer."""
    with pytest.raises(ProviderUnavailable):
        parse_balance(200, body({"status": "0", "description": "lots"}))


def test_parse_signatures_spec_example() -> None:
    """The /signatures example, Cyrillic description included."""
    answer = [
        {
            "id": 11,
            "text": "TEST",
            "description": "Some text",
            "created_at": "2012-04-26 01:50:29",
            "state": "ACCEPTED",
        },
        {
            "id": 49,
            "text": "BYTEHAND",
            "description": "Подробное описание поможет нам понять, с какой целью вы хотите "
            "использовать эту подпись и разрешить её применение.",
            "created_at": "2012-05-01 19:16:43",
            "state": "ACCEPTED",
        },
    ]
    first, second = parse_signatures(200, body(answer))
    assert first == Signature(
        "11", "TEST", "Some text", datetime(2012, 4, 26, 1, 50, 29, tzinfo=UTC), "ACCEPTED"
    )
    assert second.id == "49"
    assert second.description.startswith("Подробное")


def test_parse_signature_missing_state_is_unavailable() -> None:
    """A signature without a state cannot be used."""
    with pytest.raises(ProviderUnavailable):
        parse_signature(200, body({"id": 1, "text": "X"}))


def test_parse_signatures_not_a_list() -> None:
    """/signatures answers a list."""
    with pytest.raises(ProviderUnavailable):
        parse_signatures(200, body({"id": 1}))


@pytest.mark.parametrize(
    ("status", "raw", "send", "error"),
    [
        # An error object maps by code, whatever the HTTP status.
        (400, body({"status": "11", "description": "x"}), True, ProviderRejected),
        (200, body({"status": 2, "description": "x"}), False, AccountBlocked),
        (500, body({"status": 1, "description": "x"}), True, ProviderUnavailable),
        (503, body({"status": 17, "description": "x"}), True, ProviderThrottled),
        # A 5xx with an unknown body or code: a send may have been accepted.
        (500, b"<html>Internal error</html>", True, SendInDoubt),
        (502, b"", True, SendInDoubt),
        (500, body({"status": 99, "description": "x"}), True, SendInDoubt),
        (500, b"<html>", False, ProviderUnavailable),
        # A 2xx we cannot read: the same doubt.
        (200, b"OK", True, SendInDoubt),
        (200, b"OK", False, ProviderUnavailable),
        (200, body({"status": 0}), True, SendInDoubt),
        (200, body({"status": "zero", "description": "1"}), True, SendInDoubt),
        # Other 4xx: refused, nothing accepted.
        (404, b"Not Found", True, ProviderUnavailable),
        (429, b"", True, ProviderThrottled),
        (400, body({"status": 99, "description": "new"}), True, ProviderUnavailable),
    ],
)
def test_http_answers_map_to_errors(
    status: int, raw: bytes, send: bool, error: type[ProviderError]
) -> None:
    """HTTP status and body together decide the error."""
    with pytest.raises(error) as info:
        parse_send(status, raw) if send else parse_status(status, raw)
    assert type(info.value) is error


def test_check_response_returns_json_of_success() -> None:
    """A 2xx without an error object gives its JSON."""
    assert check_response(200, body([1, 2]), send=False) == [1, 2]
