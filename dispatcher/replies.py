"""Incoming SMS (MO): what each one means, which message it answers, and reading them.

:func:`handle_inbound` is the one function every stored MO goes through, whatever brought it
(a ByteHand ``incomingSms`` callback, a TimeToChat Push_CRA ``INCOMING`` or ``ANSWERED``, later an
SMPP ``deliver_sm``): :func:`dispatcher.tracking.store_inbound` calls it once per new MO, in the
transaction that stored it. It

1. links the MO to the message it answers when the provider did not (ByteHand has no link): the
   latest message sent to that number on that provider account within ``[audience]
   reply_window_s``;
2. classifies its whole text (:mod:`dispatcher.keywords`) and keeps the intent on the row;
3. acts: an opt-out suppresses the number (:mod:`dispatcher.suppressions`, source ``keyword``,
   the reply text kept) and ends its unsent messages ``suppressed``; an opt-in (START) lifts the
   keyword opt-outs of that scope, never an ops, import or provider entry.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dispatcher import suppressions
from dispatcher.config import Settings
from dispatcher.constants import BYTEHAND
from dispatcher.keywords import Intent, Keywords
from dispatcher.models import Campaign, InboundMessage, Message
from dispatcher.phones import PhoneNormalizer

__all__ = [
    "Audience",
    "Reply",
    "handle_inbound",
    "latest_sent_to",
    "list_replies",
    "mobile_number",
]


@dataclasses.dataclass(frozen=True)
class Audience:
    """What :func:`handle_inbound` needs of the settings, for one provider account."""

    provider: str
    account: str
    keywords: Keywords
    global_opt_outs: bool
    reply_window: timedelta
    region: str

    @classmethod
    def for_provider(cls, settings: Settings, provider: str) -> Audience:
        account = (
            settings.bytehand.client_id if provider == BYTEHAND else settings.timetochat.service_id
        )
        audience = settings.audience
        return cls(
            provider=provider,
            account=account,
            keywords=Keywords.build(audience.opt_out_keywords, audience.opt_in_keywords),
            global_opt_outs=audience.opt_out_scope == "global",
            reply_window=audience.reply_window,
            region=settings.default_region,
        )

    @property
    def scope(self) -> str:
        """Where this account's opt-outs apply."""
        if self.global_opt_outs:
            return suppressions.GLOBAL
        return suppressions.scope_for(self.provider, self.account)


@functools.cache
def _normalizer(region: str) -> PhoneNormalizer:
    return PhoneNormalizer(region)


def mobile_number(raw: str, region: str) -> str:
    """The E.164 form of an MO's sender; ByteHand writes ``79161234567`` without ``+``."""
    digits = raw.strip()
    candidates = [f"+{digits}"] if digits.isdigit() and not digits.startswith("0") else []
    normalizer = _normalizer(region)
    for candidate in (*candidates, digits):
        e164, _reason = normalizer.normalize(candidate)
        if e164 is not None:
            return e164
    return digits


def latest_sent_to(session: Session, provider: str, phone: str, since: datetime) -> int | None:
    """The latest message handed to ``provider`` for ``phone`` since ``since``."""
    return session.scalar(
        select(Message.id)
        .join(Campaign)
        .where(
            Message.phone == phone,
            Campaign.provider == provider,
            Message.submitted_at.is_not(None),
            Message.submitted_at >= since,
        )
        .order_by(Message.submitted_at.desc(), Message.id.desc())
        .limit(1)
    )


def handle_inbound(session: Session, inbound_id: int, audience: Audience, now: datetime) -> Intent:
    """Link, classify and act on one newly stored MO (see the module docstring)."""
    inbound = session.get(InboundMessage, inbound_id)
    if inbound is None:
        raise LookupError(f"no inbound message {inbound_id}")
    phone = mobile_number(inbound.from_number, audience.region)
    values: dict[str, Any] = {}
    if inbound.reply_to_id is None:
        linked = latest_sent_to(session, audience.provider, phone, now - audience.reply_window)
        if linked is not None:
            values["reply_to_id"] = linked
    intent = audience.keywords.classify(inbound.text)
    values["intent"] = str(intent)
    session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == inbound_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if intent == Intent.OPT_OUT:
        suppressions.add(
            session,
            phone,
            scope=audience.scope,
            source="keyword",
            reason=f"opt-out reply on {audience.provider}",
            reply_text=inbound.text,
            now=now,
        )
    elif intent == Intent.OPT_IN:
        suppressions.remove(session, phone, scope=audience.scope, sources=("keyword",))
    return intent


@dataclasses.dataclass(frozen=True)
class Reply:
    """One MO as ``dispatcher replies`` and ``GET /replies`` show it."""

    id: int
    provider: str
    from_number: str
    to_number: str
    text: str
    intent: str
    received_at: datetime
    message_id: int | None
    campaign_id: int | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"received_at": self.received_at.isoformat()}


def list_replies(
    session: Session,
    *,
    campaign_id: int | None = None,
    since: datetime | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[Reply]:
    """MOs newest first, optionally only those answering one campaign, or since a time."""
    statement = (
        select(InboundMessage, Message.campaign_id)
        .outerjoin(Message, InboundMessage.reply_to_id == Message.id)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if campaign_id is not None:
        statement = statement.where(Message.campaign_id == campaign_id)
    if since is not None:
        statement = statement.where(InboundMessage.received_at >= since)
    return [
        Reply(
            row.id,
            row.provider,
            row.from_number,
            row.to_number,
            row.text,
            row.intent,
            row.received_at,
            row.reply_to_id,
            campaign,
        )
        for row, campaign in session.execute(statement)
    ]
