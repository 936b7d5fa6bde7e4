"""Pure rules: outcomes, part counts, validation, lifecycle plans, retry delays, config."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatcher.errors import ConfigError
from dispatcher.sandbox import codes
from dispatcher.sandbox.callbacks import retry_delay
from dispatcher.sandbox.config import (
    CallbackPolicy,
    Faults,
    Lifecycle,
    TimeToChatAccount,
    accounts_from_json,
)
from dispatcher.sandbox.lifecycle import Step, bytehand_plan, timetochat_plan
from dispatcher.sandbox.outcomes import outcome_for
from dispatcher.sandbox.parts import BYTEHAND_SIZES, TIMETOCHAT_SIZES, count_parts
from dispatcher.sandbox.tokens import TokenIssuer
from dispatcher.sandbox.validation import (
    bytehand_receiver,
    parse_send_after,
    parse_validity_date,
    timetochat_recipient,
    timetochat_text_problem,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
LIFE = Lifecycle(sent_after_s=1.0, final_after_s=2.0)


@pytest.mark.parametrize(
    ("number", "refused", "bytehand", "timetochat"),
    [
        ("+79161234500", True, None, None),
        ("+79161234513", False, "UNDELIVERABLE", "CRA_SMS_WRONGNUMBER"),
        ("06 12 34 56 14", False, "EXPIRED", "CRA_SMS_FALSENUMBER"),
        ("0612345615", False, "REJECTED", "CRA_SMS_OPFULL"),
        ("+33612345699", False, None, None),
        ("+33612345622", False, None, "CRA_SMS_BLACKLIST"),
        ("+33612345678", False, "DELIVERED", "CRA_SMS_RECEIVED"),
    ],
)
def test_outcome_by_last_two_digits(
    number: str, refused: bool, bytehand: str | None, timetochat: str | None
) -> None:
    """The documented endings decide each message's fate."""
    outcome = outcome_for(number)
    assert (outcome.refused_at_send, outcome.bytehand_final, outcome.timetochat_final) == (
        refused,
        bytehand,
        timetochat,
    )


@pytest.mark.parametrize(
    ("text", "sizes", "expected"),
    [
        ("a" * 160, BYTEHAND_SIZES, 1),
        ("a" * 161, BYTEHAND_SIZES, 2),
        ("a" * 306, TIMETOCHAT_SIZES, 2),
        ("a" * 307, TIMETOCHAT_SIZES, 3),
        ("a" * 1224, TIMETOCHAT_SIZES, 8),
        ("€" * 80, BYTEHAND_SIZES, 1),  # 160 septets
        ("a" * 152 + "€" + "a" * 10, BYTEHAND_SIZES, 2),  # the escape is not split
        ("a" * 152 + "€" * 77, BYTEHAND_SIZES, 3),
        ("ж" * 70, BYTEHAND_SIZES, 1),
        ("ж" * 71, BYTEHAND_SIZES, 2),
        ("ж" * 134, BYTEHAND_SIZES, 2),
        ("ж" * 133, TIMETOCHAT_SIZES, 3),  # TimeToChat: 66 per part
        ("😀" * 35, BYTEHAND_SIZES, 1),  # two UCS-2 units each
        ("😀" * 36, BYTEHAND_SIZES, 2),
    ],
)
def test_count_parts(text: str, sizes: object, expected: int) -> None:
    """Parts follow each provider's table."""
    assert count_parts(text, sizes) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+79161234567", "+79161234567"),
        ("79161234567", "+79161234567"),
        ("8 (495) 123-45-67", "+74951234567"),
        ("+7916abc", None),
        ("12345", None),
        ("", None),
    ],
)
def test_bytehand_receiver(raw: str, expected: str | None) -> None:
    """Receivers are auto-corrected without '+', taken as is with it."""
    assert bytehand_receiver(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0601020304", "+33601020304"),
        ("0701020304", "+33701020304"),
        ("+32470123456", "+32470123456"),
        ("0101020304", None),
        ("060102030", None),
        ("+33 6 01", None),
    ],
)
def test_timetochat_recipient(raw: str, expected: str | None) -> None:
    """06/07 numbers become international; anything else must carry '+'."""
    assert timetochat_recipient(raw) == expected


def test_send_after_format() -> None:
    """send_after is yyyy-MM-dd HH:mm:ss in GMT; anything else is refused."""
    assert parse_send_after("2025-01-01 12:30:00") == NOW.replace(minute=30)
    for bad in ("2025-01-01T12:30:00", "2025-01-01 12:30", "2025-13-01 12:30:00", "soon"):
        with pytest.raises(ValueError):
            parse_send_after(bad)


def test_validity_date_format_and_future() -> None:
    """validityDate needs milliseconds and Z, and must lie in the future."""
    assert parse_validity_date("2025-01-01T13:00:00.123Z", NOW).hour == 13
    for bad in ("2025-01-01T13:00:00Z", "2025-01-01 13:00:00.123Z", "2024-12-31T13:00:00.000Z"):
        with pytest.raises(ValueError):
            parse_validity_date(bad, NOW)


@pytest.mark.parametrize(
    ("text", "unicode", "expected"),
    [
        ("a" * 1224, False, None),
        ("a" * 1225, False, codes.TTC_TEXT_TOO_LONG),
        ("€" * 613, False, codes.TTC_TEXT_TOO_LONG),  # extension characters count double
        ("fête", False, None),  # Latin-1, sent as ISO-8859-1
        ("Привет", False, codes.TTC_INVALID_PARAMETER),
        ("Привет", True, None),
        ("ж" * 528, True, None),
        ("ж" * 529, True, codes.TTC_TEXT_TOO_LONG),
    ],
)
def test_timetochat_text_limits(text: str, unicode: bool, expected: str | None) -> None:
    """1224 GSM-7 septets, 528 UCS-2 units; non-Latin text needs the unicode flag."""
    assert timetochat_text_problem(text, unicode) == expected


def test_bytehand_plan_holds_until_send_after() -> None:
    """send_after shifts the whole life; a never-final number stops at ACCEPTED."""
    assert bytehand_plan(outcome_for("+79161234567"), LIFE, hold_s=10) == [
        Step(11.0, "ACCEPTED"),
        Step(13.0, "DELIVERED"),
    ]
    assert bytehand_plan(outcome_for("+79161234599"), LIFE) == [Step(1.0, "ACCEPTED")]


def test_timetochat_plan_with_validity() -> None:
    """A validity date passing before delivery ends the message in CRA_SMS_ERROR."""
    delivered = outcome_for("0601020304")
    assert timetochat_plan(delivered, LIFE) == [
        Step(1.0, "CRA_SMS_SENT"),
        Step(3.0, "CRA_SMS_RECEIVED"),
    ]
    assert timetochat_plan(delivered, LIFE, valid_for_s=10) == timetochat_plan(delivered, LIFE)
    assert timetochat_plan(delivered, LIFE, valid_for_s=2) == [
        Step(1.0, "CRA_SMS_SENT"),
        Step(2.0, "CRA_SMS_ERROR"),
    ]
    assert timetochat_plan(delivered, LIFE, valid_for_s=0.5) == [Step(0.5, "CRA_SMS_ERROR")]
    assert timetochat_plan(outcome_for("0601020399"), LIFE) == [Step(1.0, "CRA_SMS_SENT")]


def test_retry_delay_doubles_up_to_the_cap() -> None:
    """Callback retries back off exponentially, capped."""
    policy = CallbackPolicy(retry_base_s=1.0, retry_max_s=5.0)
    assert [retry_delay(n, policy) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_fault_updates_are_validated() -> None:
    """Unknown switches and out-of-range values are refused; good ones apply."""
    faults = Faults().updated({"fail_rate": 0.5, "stall_mode": "drop"})
    assert (faults.fail_rate, faults.stall_mode) == (0.5, "drop")
    for bad in ({"fail_rate": 2}, {"nope": 1}, {"latency_ms": "x"}, {"stall_mode": "hang"}):
        with pytest.raises(ConfigError):
            Faults().updated(bad)


def test_accounts_from_json() -> None:
    """The --accounts file replaces accounts per provider; a missing provider keeps its default."""
    bytehand, timetochat = accounts_from_json(
        {
            "bytehand": [
                {
                    "client_id": "7",
                    "key": "0123456789abcdef",
                    "signatures": ["ONE", {"text": "TWO", "state": "NEW"}],
                }
            ]
        }
    )
    assert bytehand[0].client_id == "7"
    assert [(s.text, s.state) for s in bytehand[0].signatures] == [
        ("ONE", "ACCEPTED"),
        ("TWO", "NEW"),
    ]
    assert timetochat == (TimeToChatAccount(),)
    with pytest.raises(ConfigError):
        accounts_from_json({"timetochat": [{"service_id": "1"}]})
    with pytest.raises(ConfigError):
        TimeToChatAccount(senders=("0612345678",))


def test_tokens_expire_and_belong_to_one_service() -> None:
    """A token is refused after its lifetime, and for another service, and when forged."""
    clock = [0.0]
    issuer = TokenIssuer(lifetime_s=10, clock=lambda: clock[0])
    token = issuer.issue("123456")
    assert issuer.check(token, "123456") is None
    assert issuer.check(token, "654321") == codes.TTC_INVALID_TOKEN
    assert issuer.check(token[:-2] + "xx", "123456") == codes.TTC_INVALID_TOKEN
    assert issuer.check("not-a-token", "123456") == codes.TTC_INVALID_TOKEN
    clock[0] = 10.0
    assert issuer.check(token, "123456") == codes.TTC_TOKEN_EXPIRED
