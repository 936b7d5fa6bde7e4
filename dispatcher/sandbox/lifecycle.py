"""A message's schedule of states after acceptance, as a pure function of its outcome.

ByteHand: ``NEW`` (held until ``send_after``) → ``ACCEPTED`` after ``sent_after_s`` → final
after ``final_after_s`` more. TimeToChat: ``NEW`` → ``CRA_SMS_SENT`` → ``CRA_SMS_RECEIVED`` or a
``CRA_SMS_*`` error; a message whose ``validityDate`` passes before it is delivered ends in
``CRA_SMS_ERROR`` at that moment instead (even a never-final one).
"""

from __future__ import annotations

import dataclasses

from dispatcher.sandbox.config import Lifecycle
from dispatcher.sandbox.outcomes import Outcome

__all__ = ["Step", "bytehand_plan", "timetochat_plan"]

TTC_EXPIRED_STATE = "CRA_SMS_ERROR"


@dataclasses.dataclass(frozen=True)
class Step:
    """Enter ``state`` ``after_s`` seconds after acceptance."""

    after_s: float
    state: str


def bytehand_plan(outcome: Outcome, lifecycle: Lifecycle, hold_s: float = 0.0) -> list[Step]:
    """States after ``NEW``; ``hold_s`` is how long ``send_after`` keeps the message back."""
    start = max(hold_s, 0.0) + lifecycle.sent_after_s
    steps = [Step(start, "ACCEPTED")]
    if outcome.bytehand_final is not None:
        steps.append(Step(start + lifecycle.final_after_s, outcome.bytehand_final))
    return steps


def timetochat_plan(
    outcome: Outcome, lifecycle: Lifecycle, valid_for_s: float | None = None
) -> list[Step]:
    """States after ``NEW``; ``valid_for_s`` is the time left until ``validityDate``."""
    sent_at = lifecycle.sent_after_s
    final_at = sent_at + lifecycle.final_after_s
    final = outcome.timetochat_final
    expired = valid_for_s is not None and (final is None or valid_for_s < final_at)
    if valid_for_s is not None and expired:
        if valid_for_s < sent_at:
            return [Step(valid_for_s, TTC_EXPIRED_STATE)]
        return [Step(sent_at, "CRA_SMS_SENT"), Step(valid_for_s, TTC_EXPIRED_STATE)]
    steps = [Step(sent_at, "CRA_SMS_SENT")]
    if final is not None:
        steps.append(Step(final_at, final))
    return steps
