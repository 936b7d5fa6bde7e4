"""What a send's answer means for each recipient: a pure function of the answer.

The class of the error decides (see :mod:`dispatcher.errors`), never its text:

==========================  ===============================================================
answer                      recipient
==========================  ===============================================================
message id                  ``submitted``, polled if silent
ProviderRejected            ``failed`` for good, with the provider's reason
ProviderUnavailable         back to ``pending`` after a jittered backoff, or ``failed``
(incl. Throttled,           (transient, so ``retry-failed`` may retry it) once it has had
CredentialsExpired)         ``max_attempts``
RateLimiterUnavailable      back to ``pending`` after a backoff, the attempt given back:
                            our limiter's outage never fails a recipient
AccountBlocked              back to ``pending`` (nothing was sent); the campaign is paused
SendInDoubt                 ``in_doubt``: never resent blindly
==========================  ===============================================================
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from dispatcher.backoff import retry_delay
from dispatcher.claims import ClaimedMessage, Retry
from dispatcher.config import DispatchSettings
from dispatcher.errors import (
    AccountBlocked,
    DispatcherError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimiterUnavailable,
    SendInDoubt,
)

__all__ = ["Outcomes", "plan_outcomes"]


@dataclasses.dataclass
class Outcomes:
    """Recipients of one send task, sorted by what happens to them next."""

    submitted: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    rejected: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    exhausted: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    retries: list[Retry] = dataclasses.field(default_factory=list)
    in_doubt: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    pause_reason: str | None = None
    attempts: dict[int, int] = dataclasses.field(default_factory=dict)
    """Message id → the attempt the answer belongs to: recordings are fenced on it."""


def _reason(error: DispatcherError) -> str:
    return error.reason if isinstance(error, ProviderError) else str(error)


def _add(
    outcomes: Outcomes,
    message: ClaimedMessage,
    answer: str | DispatcherError,
    *,
    now: datetime,
    settings: DispatchSettings,
    rand: random.Random | None,
) -> None:
    if isinstance(answer, str):
        outcomes.submitted.append((message.id, answer))
        return
    reason = _reason(answer)
    if isinstance(answer, SendInDoubt):
        outcomes.in_doubt.append((message.id, reason))
    elif isinstance(answer, ProviderRejected):
        outcomes.rejected.append((message.id, reason))
    elif isinstance(answer, AccountBlocked):
        outcomes.pause_reason = reason
        outcomes.retries.append(Retry(message.id, reason, now))
    elif isinstance(answer, RateLimiterUnavailable):
        # Our limiter, not the provider, stopped the call: the outage costs time, never an
        # attempt, so no recipient fails for it.
        delay = retry_delay(
            message.attempts, base_s=settings.retry_base_s, cap_s=settings.retry_max_s, rand=rand
        )
        outcomes.retries.append(
            Retry(message.id, reason, now + timedelta(seconds=delay), refund=True)
        )
    elif message.attempts >= settings.max_attempts:
        outcomes.exhausted.append((message.id, f"{reason} (after {message.attempts} attempts)"))
    else:
        retry_after = answer.retry_after if isinstance(answer, ProviderUnavailable) else None
        delay = retry_delay(
            message.attempts,
            base_s=settings.retry_base_s,
            cap_s=settings.retry_max_s,
            retry_after=retry_after,
            rand=rand,
        )
        outcomes.retries.append(Retry(message.id, reason, now + timedelta(seconds=delay)))


def plan_outcomes(
    claimed: Sequence[ClaimedMessage],
    answers: Sequence[str | DispatcherError] | DispatcherError,
    now: datetime,
    settings: DispatchSettings,
    rand: random.Random | None = None,
) -> Outcomes:
    """Sort recipients by their answer: one per recipient, or one error for the whole call."""
    if not isinstance(answers, DispatcherError) and len(answers) != len(claimed):
        raise ValueError(f"{len(answers)} answers for {len(claimed)} recipients")
    outcomes = Outcomes(attempts={message.id: message.attempts for message in claimed})
    for index, message in enumerate(claimed):
        answer = answers if isinstance(answers, DispatcherError) else answers[index]
        _add(outcomes, message, answer, now=now, settings=settings, rand=rand)
    return outcomes
