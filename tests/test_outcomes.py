"""plan_outcomes: what each provider answer means for each recipient."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.claims import ClaimedMessage, Retry
from dispatcher.config import DispatchSettings, load_settings
from dispatcher.errors import (
    AccountBlocked,
    CredentialsExpired,
    DispatcherError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    RateLimiterUnavailable,
    SendInDoubt,
)
from dispatcher.outcomes import Outcomes, plan_outcomes

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SETTINGS: DispatchSettings = dataclasses.replace(
    load_settings({}).dispatch, max_attempts=3, retry_base_s=2.0, retry_max_s=60.0
)


def claimed(mid: int = 1, attempts: int = 1) -> ClaimedMessage:
    return ClaimedMessage(mid, "+33601020304", "Hi", f"ref-{mid}", "GSM-7", attempts)


def plan(
    messages: list[ClaimedMessage], answers: list[str | DispatcherError] | DispatcherError
) -> Outcomes:
    return plan_outcomes(messages, answers, NOW, SETTINGS, rand=random.Random(3))


def unavailable(retry_after: float | None = None) -> ProviderUnavailable:
    return ProviderUnavailable("busy", provider="bytehand", code="503", retry_after=retry_after)


def test_message_id_is_submitted() -> None:
    """A provider id means the recipient is submitted with that id."""
    assert plan([claimed(7)], ["pid-7"]) == Outcomes(submitted=[(7, "pid-7")], attempts={7: 1})


def test_rejected_fails_for_good_with_reason() -> None:
    """A permanent refusal is rejected with the provider's code and text."""
    error = ProviderRejected("bad number", provider="bytehand", code="12")
    assert plan([claimed(1)], [error]) == Outcomes(
        rejected=[(1, "bytehand:12 bad number")], attempts={1: 1}
    )


def test_rejected_even_on_the_last_attempt_is_rejected() -> None:
    """A permanent refusal is never counted as exhausted retries."""
    error = ProviderRejected("bad number", provider="bytehand")
    outcomes = plan([claimed(1, attempts=SETTINGS.max_attempts)], [error])
    assert outcomes.rejected and not outcomes.exhausted


def test_every_recipient_keeps_the_attempt_its_answer_belongs_to() -> None:
    """The attempts claimed travel with the outcomes, to fence their recording."""
    outcomes = plan([claimed(1, attempts=2), claimed(2, attempts=5)], ["a", unavailable()])
    assert outcomes.attempts == {1: 2, 2: 5}


def test_send_in_doubt_is_in_doubt() -> None:
    """A send that may have reached the provider is in doubt, never retried."""
    error = SendInDoubt("read timeout", provider="timetochat")
    outcomes = plan([claimed(1, attempts=SETTINGS.max_attempts)], [error])
    assert outcomes == Outcomes(
        in_doubt=[(1, "timetochat read timeout")], attempts={1: SETTINGS.max_attempts}
    )


@pytest.mark.parametrize(
    "error",
    [
        unavailable(),
        ProviderThrottled("429", provider="timetochat", code="429"),
        CredentialsExpired("token", provider="timetochat", code="401"),
        RateLimiterUnavailable("redis down"),
    ],
    ids=["unavailable", "throttled", "credentials", "limiter"],
)
def test_transient_error_retries_later(error: DispatcherError) -> None:
    """Transient errors put the recipient back with a not_before in the future."""
    outcomes = plan([claimed(1, attempts=1)], [error])
    assert not (outcomes.submitted or outcomes.rejected or outcomes.exhausted or outcomes.in_doubt)
    [retry] = outcomes.retries
    assert retry.id == 1
    assert NOW < retry.not_before <= NOW + timedelta(seconds=SETTINGS.retry_base_s)
    assert outcomes.pause_reason is None


def test_retry_reason_is_the_error_reason() -> None:
    """The stored reason names the provider and its code."""
    [retry] = plan([claimed(1)], [unavailable()]).retries
    assert retry.reason == "bytehand:503 busy"


def test_limiter_reason_is_its_text() -> None:
    """Errors that are not provider errors keep their message as the reason."""
    [retry] = plan([claimed(1)], [RateLimiterUnavailable("redis down")]).retries
    assert retry.reason == "redis down"


def test_a_limiter_outage_never_exhausts_a_recipient() -> None:
    """On its last attempt, a recipient the limiter stopped is retried with the attempt back."""
    error = RateLimiterUnavailable("redis down")
    outcomes = plan([claimed(1, attempts=SETTINGS.max_attempts)], [error])
    assert not outcomes.exhausted
    [retry] = outcomes.retries
    assert retry.refund and retry.not_before > NOW


def test_a_provider_retry_keeps_its_attempt() -> None:
    """A provider's transient error is counted: only our own outage is given back."""
    [retry] = plan([claimed(1)], [unavailable()]).retries
    assert not retry.refund


def test_retry_honors_retry_after() -> None:
    """The provider's Retry-After is a floor, even above the backoff cap."""
    [retry] = plan([claimed(1)], [unavailable(retry_after=120.0)]).retries
    assert retry.not_before == NOW + timedelta(seconds=120)


def test_throttled_retry_after_is_honored() -> None:
    """A 429 with Retry-After waits at least that long."""
    error = ProviderThrottled("slow down", provider="timetochat", retry_after=30.0)
    [retry] = plan([claimed(1)], [error]).retries
    assert retry.not_before >= NOW + timedelta(seconds=30)


def test_backoff_grows_with_attempts_up_to_the_cap() -> None:
    """Later attempts may wait longer, but never past retry_max_s."""
    rand = random.Random(11)
    late = [
        plan_outcomes([claimed(1, attempts=2)], [unavailable()], NOW, SETTINGS, rand).retries[0]
        for _ in range(200)
    ]
    delays = [(r.not_before - NOW).total_seconds() for r in late]
    assert max(delays) <= SETTINGS.retry_base_s * 2
    assert max(delays) > SETTINGS.retry_base_s


@pytest.mark.parametrize("attempts", [3, 4])
def test_transient_error_after_max_attempts_is_exhausted(attempts: int) -> None:
    """Once a recipient has had max_attempts, a transient error fails it (transiently)."""
    outcomes = plan([claimed(1, attempts=attempts)], [unavailable()])
    assert outcomes.retries == []
    assert outcomes.exhausted == [(1, f"bytehand:503 busy (after {attempts} attempts)")]


def test_last_attempt_before_max_still_retries() -> None:
    """max_attempts - 1 attempts still leave one more try."""
    outcomes = plan([claimed(1, attempts=SETTINGS.max_attempts - 1)], [unavailable()])
    assert len(outcomes.retries) == 1 and not outcomes.exhausted


def test_account_blocked_retries_now_and_pauses() -> None:
    """A blocked account sends nothing: recipients go back at once and the campaign pauses."""
    error = AccountBlocked("quota reached", provider="bytehand", code="7")
    outcomes = plan([claimed(1, attempts=SETTINGS.max_attempts)], [error])
    assert outcomes.retries == [Retry(1, "bytehand:7 quota reached", NOW)]
    assert outcomes.pause_reason == "bytehand:7 quota reached"
    assert not outcomes.exhausted


def test_batch_error_applies_to_every_recipient() -> None:
    """One error for the whole call sorts every recipient by that error."""
    batch = [claimed(1), claimed(2, attempts=SETTINGS.max_attempts), claimed(3)]
    outcomes = plan(batch, unavailable())
    assert [r.id for r in outcomes.retries] == [1, 3]
    assert [mid for mid, _ in outcomes.exhausted] == [2]


def test_batch_in_doubt_puts_everyone_in_doubt() -> None:
    """A whole batch whose fate is unknown is all in doubt."""
    batch = [claimed(1), claimed(2)]
    outcomes = plan(batch, SendInDoubt("connection dropped", provider="bytehand"))
    assert [mid for mid, _ in outcomes.in_doubt] == [1, 2]


def test_batch_account_blocked_pauses_once_and_retries_all() -> None:
    """A blocked account answers for the batch: all back to pending, one pause reason."""
    outcomes = plan([claimed(1), claimed(2)], AccountBlocked("auth", provider="bytehand"))
    assert [r.id for r in outcomes.retries] == [1, 2]
    assert outcomes.pause_reason == "bytehand auth"


def test_per_item_answers_are_sorted_each_on_its_own() -> None:
    """A send_multi answer mixes outcomes; each recipient gets its own."""
    batch = [claimed(i) for i in range(1, 5)]
    answers: list[str | DispatcherError] = [
        "p1",
        ProviderRejected("bad", provider="bytehand", code="12"),
        unavailable(),
        SendInDoubt("?", provider="bytehand"),
    ]
    outcomes = plan(batch, answers)
    assert outcomes.submitted == [(1, "p1")]
    assert [mid for mid, _ in outcomes.rejected] == [2]
    assert [r.id for r in outcomes.retries] == [3]
    assert [mid for mid, _ in outcomes.in_doubt] == [4]
    assert outcomes.pause_reason is None


@pytest.mark.parametrize("count", [0, 1, 3])
def test_mismatched_answer_count_is_refused(count: int) -> None:
    """Answers must match recipients one to one; anything else is a programming error."""
    with pytest.raises(ValueError, match=f"{count} answers for 2 recipients"):
        plan([claimed(1), claimed(2)], ["p"] * count)


def test_no_recipients_no_outcomes() -> None:
    """An empty claim (a redelivered task) plans nothing, even with a batch error."""
    assert plan([], unavailable()) == Outcomes()
    assert plan([], []) == Outcomes()
