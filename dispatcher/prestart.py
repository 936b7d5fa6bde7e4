"""Checks before a campaign starts: a start that would fail every recipient is refused.

=======================  =====================================  ==========================
provider                 check                                  refusal code
=======================  =====================================  ==========================
ByteHand                 the sender is an ACCEPTED signature    ``sender_not_approved``
                         of the account (``GET /signatures``)
ByteHand                 the balance (``GET /balance``) covers  ``balance_too_low``
                         the campaign's estimated cost
TimeToChat               the sender is one of the service's     ``sender_not_of_service``
                         numbers (``[timetochat] numbers``: the
                         API has no call listing them)
=======================  =====================================  ==========================

The decisions are pure (:func:`bytehand_problem`, :func:`timetochat_problem`); :func:`check`
asks the provider through the clients, so the calls spend the account's one budget (the fleet
limiter), like sends and polls. A refusal is a :class:`StartRefused` (an
:class:`~dispatcher.errors.InputError` the API answers 409); the CLI and the API refuse the
start, beat pauses the scheduled campaign with the message as its reason.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from dispatcher import campaigns
from dispatcher.constants import BYTEHAND
from dispatcher.errors import InputError
from dispatcher.models import Campaign
from dispatcher.providers.bytehand import Signature
from dispatcher.runtime import Runtime
from dispatcher.states import CampaignState

__all__ = [
    "REFUSAL_CODES",
    "StartRefused",
    "bytehand_problem",
    "check",
    "resume_checked",
    "start_checked",
    "timetochat_problem",
]

REFUSAL_CODES = ("sender_not_approved", "balance_too_low", "sender_not_of_service")


class StartRefused(InputError):
    """A pre-start check failed: starting would fail every recipient."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)


def bytehand_problem(
    sender: str, signatures: Sequence[Signature], balance: Decimal, cost: Decimal
) -> StartRefused | None:
    """Why a ByteHand campaign cannot start, or ``None``."""
    states = {s.state for s in signatures if s.text == sender}
    if "ACCEPTED" not in states:
        seen = f"it is {', '.join(sorted(states))}" if states else "it is not registered"
        return StartRefused(
            f"ByteHand sender {sender!r} is not an approved signature of the account ({seen})",
            code="sender_not_approved",
        )
    if balance < cost:
        return StartRefused(
            f"ByteHand balance {balance} RUB does not cover the campaign's estimated cost "
            f"{cost} RUB",
            code="balance_too_low",
        )
    return None


def _digits(number: str) -> str:
    """``09 38 00 00 01``, ``+33938000001`` and ``0938000001`` compare equal."""
    digits = "".join(c for c in number if c.isdigit())
    return "0" + digits[2:] if number.strip().startswith("+33") else digits


def timetochat_problem(sender: str, numbers: Collection[str]) -> StartRefused | None:
    """Why a TimeToChat campaign cannot start, or ``None``."""
    if _digits(sender) in {_digits(n) for n in numbers}:
        return None
    listed = ", ".join(numbers) if numbers else "none configured"
    return StartRefused(
        f"TimeToChat sender {sender!r} is not a number of the service "
        f"([timetochat] numbers: {listed})",
        code="sender_not_of_service",
    )


def check(runtime: Runtime, campaign: Campaign) -> None:
    """Raise :class:`StartRefused` if ``campaign`` cannot start; provider errors propagate
    (a check that could not be made is not a pass)."""
    if campaign.provider == BYTEHAND:
        cost = Decimal(str(campaign.estimate.get("cost", 0)))
        signatures = runtime.bytehand.signatures()
        problem = bytehand_problem(campaign.sender, signatures, runtime.bytehand.balance(), cost)
    else:
        problem = timetochat_problem(campaign.sender, runtime.settings.timetochat.numbers)
    if problem is not None:
        raise problem


def start_checked(
    runtime: Runtime, session: Session, campaign_id: int, now: datetime
) -> CampaignState:
    """:func:`dispatcher.campaigns.start` after the checks (a campaign that cannot start
    anyway gets the state conflict, not a provider call)."""
    campaign = campaigns.get_campaign(session, campaign_id)
    if campaign.state in (CampaignState.DRAFT, CampaignState.SCHEDULED):
        check(runtime, campaign)
    return campaigns.start(session, campaign_id, now)


def resume_checked(runtime: Runtime, session: Session, campaign_id: int, now: datetime) -> None:
    """:func:`dispatcher.campaigns.resume` after the checks: a campaign paused for a refused
    start resumes only once the problem is fixed."""
    campaign = campaigns.get_campaign(session, campaign_id)
    if campaign.state == CampaignState.PAUSED:
        check(runtime, campaign)
    campaigns.resume(session, campaign_id, now)
