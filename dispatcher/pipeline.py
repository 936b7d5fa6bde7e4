"""The dispatch use cases the Celery tasks call: feed, send, poll, sweep.

Each is a short script of transactions around one provider call, with the rule that makes
sends safe: claim in one transaction (``queued`` → ``sending``), call the provider outside any
transaction, record the answer in one transaction. A crash between the two leaves ``sending``
rows that the sweeper turns into ``in_doubt``, never back into ``queued``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dispatcher import campaigns, claims, gates, prestart, suppressions, tracking
from dispatcher.backoff import recording_retry, short_retry
from dispatcher.claims import ClaimedMessage
from dispatcher.constants import BYTEHAND, PROVIDERS, TICK_S, TIMETOCHAT
from dispatcher.db import session_scope
from dispatcher.errors import DispatcherError, ProviderError, RateLimiterUnavailable
from dispatcher.fairshare import (
    CLAIM_LEAD_S,
    FEED_HORIZON_TICKS,
    SEND_PATIENCE_S,
    Demand,
    deal,
    interleave,
)
from dispatcher.models import Campaign, Message, utcnow
from dispatcher.outcomes import Outcomes, plan_outcomes
from dispatcher.providers.bytehand import OutgoingSms
from dispatcher.providers.timetochat import TtcOutgoing
from dispatcher.ratelimit import Reservation
from dispatcher.runtime import Runtime
from dispatcher.states import CampaignState, MessageState

__all__ = [
    "Enqueue",
    "claim_polls",
    "feed",
    "operate",
    "poll",
    "record_outcomes",
    "refeed_queued",
    "send_bytehand_batch",
    "send_timetochat",
    "sweep",
]

log = logging.getLogger(__name__)

M = MessageState
T = TypeVar("T")

Enqueue = Callable[[str, int, list[list[int]]], None]
"""``enqueue(provider, campaign_id, batches)``: hands claimed work to the broker."""


def _per_call(runtime: Runtime, provider: str) -> int:
    """Messages one provider call carries."""
    return runtime.settings.bytehand.batch_size if provider == BYTEHAND else 1


PROVIDERS_HOLDING_SEND_AFTER = frozenset({BYTEHAND})
"""Providers that take a ``send_after`` and hold the messages themselves (ByteHand's
parameter); for the others (TimeToChat has none) the feeder holds the campaign until then."""


def _held(campaign: Campaign, now: datetime) -> bool:
    """Whether the campaign's messages must wait here for its ``send_after``."""
    return (
        campaign.provider not in PROVIDERS_HOLDING_SEND_AFTER
        and campaign.send_after is not None
        and campaign.send_after > now
    )


def _scope(runtime: Runtime, campaign: Campaign) -> str:
    """The suppression scope of a campaign's provider account."""
    return suppressions.scope_for(campaign.provider, runtime.account(campaign.provider))


def _batches(ids: list[int], size: int) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def feed(runtime: Runtime, enqueue: Enqueue) -> dict[int, int]:
    """One beat tick: start due campaigns, top up each account's share of the broker (one tick
    of its budget, dealt over its campaigns by :mod:`dispatcher.fairshare`), finish the
    campaigns that are done. Returns messages enqueued per campaign."""
    now = utcnow()
    fed: dict[int, int] = {}
    passed = _check_due(runtime, now)
    with session_scope(runtime.sessions) as session:
        campaigns.start_due(session, now, passed)
        running = session.scalars(
            select(Campaign).where(Campaign.state == CampaignState.RUNNING)
        ).all()
    for provider in PROVIDERS:
        on_account = [campaign for campaign in running if campaign.provider == provider]
        if on_account:
            fed.update(_feed_account(runtime, enqueue, provider, on_account, now))
    return fed


def _feed_account(
    runtime: Runtime,
    enqueue: Enqueue,
    provider: str,
    running: Sequence[Campaign],
    now: datetime,
) -> dict[int, int]:
    """Claim and enqueue what one account's campaigns may send in the next tick."""
    per_call = _per_call(runtime, provider)
    with session_scope(runtime.sessions) as session:
        for campaign in running:
            _expire_unsent(session, campaign, now)
        budget = int(runtime.settings.dispatch.calls_per_second * TICK_S * FEED_HORIZON_TICKS)
        # Counting a large campaign's whole backlog each tick slowed the tick itself.
        most = min(budget, runtime.settings.dispatch.feed_window) * per_call
        demands = [
            Demand(
                c.id,
                c.priority,
                calls_wanted=math.ceil(_due_count(session, c.id, now, most) / per_call),
                calls_in_flight=math.ceil(claims.in_flight(session, c.id) / per_call),
            )
            for c in running
        ]
    shares = deal(now, budget, demands)
    claimed: dict[int, list[list[int]]] = {}
    for campaign in running:
        if _held(campaign, now):
            continue
        with session_scope(runtime.sessions) as session:
            ids = claims.claim_window(session, campaign, shares[campaign.id] * per_call, now)
            ids = gates.screen(session, campaign, ids, _scope(runtime, campaign), now)
        if ids:
            claimed[campaign.id] = _batches(ids, per_call)
        else:
            with session_scope(runtime.sessions) as session:
                campaigns.finish_if_done(session, campaign.id, now)
    for campaign_id, batch in interleave(claimed):
        enqueue(provider, campaign_id, [batch])
    return {cid: sum(len(batch) for batch in batches) for cid, batches in claimed.items()}


def _due_count(session: Session, campaign_id: int, now: datetime, most: int) -> int:
    """How many of a campaign's pending messages are due to send, counting up to ``most``."""
    due = (
        select(Message.id)
        .where(
            Message.campaign_id == campaign_id,
            Message.state == M.PENDING,
            or_(Message.not_before.is_(None), Message.not_before <= now),
        )
        .limit(most)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(due)) or 0)


def _check_due(runtime: Runtime, now: datetime) -> list[int]:
    """Pre-start checks of the scheduled campaigns due now: those that pass; a refused one is
    paused with the reason, one that could not be checked waits for the next tick."""
    with session_scope(runtime.sessions) as session:
        due = campaigns.due_to_start(session, now)
    passed = []
    for campaign in due:
        try:
            prestart.check(runtime, campaign)
        except prestart.StartRefused as refusal:
            log.error("campaign %s not started: %s", campaign.id, refusal)
            with session_scope(runtime.sessions) as session:
                campaigns.pause_for(session, campaign.id, str(refusal), now)
            continue
        except (ProviderError, RateLimiterUnavailable) as error:
            log.warning("campaign %s: pre-start check not made (%s)", campaign.id, error)
            continue
        passed.append(campaign.id)
    return passed


def refeed_queued(runtime: Runtime, enqueue: Enqueue) -> dict[int, int]:
    """Enqueue again every ``queued`` message of the running campaigns: the tick that claimed
    them may have died before handing them all to the broker (its message came back,
    redelivered). A task whose rows another one took finds nothing: the claim is conditional."""
    with session_scope(runtime.sessions) as session:
        rows = session.execute(
            select(Campaign.id, Campaign.provider, Message.id)
            .join(Message, Message.campaign_id == Campaign.id)
            .where(Campaign.state == CampaignState.RUNNING, Message.state == M.QUEUED)
            .order_by(Message.id)
        ).all()
    queued: dict[tuple[int, str], list[int]] = {}
    for campaign_id, provider, message_id in rows:
        queued.setdefault((campaign_id, provider), []).append(message_id)
    for (campaign_id, provider), ids in queued.items():
        size = runtime.settings.bytehand.batch_size if provider == BYTEHAND else 1
        enqueue(provider, campaign_id, _batches(ids, size))
    return {campaign_id: len(ids) for (campaign_id, _), ids in queued.items()}


def _expire_unsent(session: Session, campaign: Campaign, now: datetime) -> None:
    """Recipients whose validity passed before they could be sent are never sent."""
    if campaign.validity is None or campaign.validity > now:
        return
    unsent = select(Message.id).where(
        Message.campaign_id == campaign.id, Message.state.in_((M.PENDING, M.QUEUED))
    )
    claims.move(
        session,
        list(session.scalars(unsent)),
        M.EXPIRED,
        sources={M.PENDING, M.QUEUED},
        last_error="validity passed before sending",
        final_at=now,
        updated_at=now,
    )


def _claim(
    runtime: Runtime, campaign_id: int, message_ids: Sequence[int]
) -> tuple[Campaign | None, list[ClaimedMessage]]:
    """Take the task's recipients, unless the campaign is paused, cancelled, expired or held
    until its ``send_after``."""
    now = utcnow()
    with session_scope(runtime.sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.state != CampaignState.RUNNING or _held(campaign, now):
            claims.release(session, message_ids, now)
            return None, []
        if campaign.validity is not None and campaign.validity <= now:
            _expire_unsent(session, campaign, now)
            return None, []
        # An opt-out may have arrived while the work sat on the broker.
        suppressions.suppress_claimed(session, message_ids, _scope(runtime, campaign), now)
        return campaign, claims.claim_for_send(session, message_ids, now)


def _write_outcomes(runtime: Runtime, outcomes: Outcomes, blacklisted: Sequence[str]) -> None:
    now = utcnow()
    poll_at = now + runtime.settings.dispatch.poll_after
    fence = outcomes.attempts
    with session_scope(runtime.sessions) as session:
        for phone in blacklisted:
            suppressions.add(
                session,
                phone,
                scope=BYTEHAND,
                source="provider",
                reason="bytehand 22 receiver blacklisted",
                now=now,
            )
        claims.record_submitted(session, outcomes.submitted, now, poll_at, attempts=fence)
        claims.record_failed(session, outcomes.rejected, now, transient=False, attempts=fence)
        claims.record_failed(session, outcomes.exhausted, now, transient=True, attempts=fence)
        claims.record_retry(session, outcomes.retries, now, attempts=fence)
        claims.record_in_doubt(session, outcomes.in_doubt, now, attempts=fence)


def record_outcomes(
    runtime: Runtime, campaign_id: int, outcomes: Outcomes, blacklisted: Sequence[str] = ()
) -> None:
    """Keep a provider's answer: it exists nowhere else once the provider has answered (the
    Celery sends and the SMPP gateway record through here). ``blacklisted``: numbers the
    provider refused as blacklisted, suppressed in the same transaction.

    The recording is retried in process (:func:`dispatcher.backoff.recording_retry`); a
    redelivered task would claim nothing and the answer would be gone. Pausing the campaign is a
    separate step after it that never raises, so it cannot undo the recording. When the
    database stays away past the patience, the accepted ``(message id, provider id)`` pairs go
    to the log at WARNING for ops to reconcile; the rows stay ``sending`` and the sweeper makes
    them in doubt, so they are never resent blindly.
    """
    try:
        recording_retry(runtime.settings.dispatch)(_write_outcomes, runtime, outcomes, blacklisted)
    except SQLAlchemyError as error:
        accepted = " ".join(f"{mid}={pid}" for mid, pid in outcomes.submitted)
        log.warning(
            "campaign %s: answer not recorded (%s); accepted (message id=provider id): %s",
            campaign_id,
            error.__class__.__name__,
            accepted or "none",
        )
    if outcomes.pause_reason is not None:
        _pause(runtime, campaign_id, outcomes.pause_reason)


def _pause(runtime: Runtime, campaign_id: int, reason: str) -> None:
    """Pause for an account problem; if the database refuses, the next send finds it again."""
    try:
        with session_scope(runtime.sessions) as session:
            paused = campaigns.pause_for(session, campaign_id, reason, utcnow())
    except SQLAlchemyError as error:
        log.warning("campaign %s not paused (%s): %s", campaign_id, error, reason)
        return
    if paused:
        log.error("campaign %s paused: %s", campaign_id, reason)


def _call(
    runtime: Runtime, call: Callable[[], list[str | DispatcherError]]
) -> list[str | DispatcherError] | DispatcherError:
    """Run a provider call, retrying short transient waits in-task (nothing was accepted)."""
    try:
        return short_retry(runtime.settings.dispatch)(call)
    except (ProviderError, RateLimiterUnavailable) as error:
        return error


def _reserve(
    runtime: Runtime, provider: str, stack: ExitStack, message_ids: Sequence[int]
) -> Reservation | None:
    """A slot of the provider's budget, held by ``stack``, before claiming; the block goes on
    :data:`CLAIM_LEAD_S` before the slot frees. Without one soon (the account's budget is spent
    for now: :data:`SEND_PATIENCE_S`), or at all (the limiter is down), the task's recipients go
    back to the feeder unclaimed and the thread to other work: the wait costs time, never an
    attempt."""
    limiter = runtime.limiter(provider)
    try:
        reservation = stack.enter_context(
            limiter.reserved("send", patience_s=SEND_PATIENCE_S, lead_s=CLAIM_LEAD_S)
        )
    except RateLimiterUnavailable as error:
        log.warning("no %s send slot, %d back to pending: %s", provider, len(message_ids), error)
        reservation = None
    if reservation is None:
        with session_scope(runtime.sessions) as session:
            claims.release(session, message_ids, utcnow())
    return reservation


def send_bytehand_batch(runtime: Runtime, campaign_id: int, message_ids: Sequence[int]) -> int:
    """Send one ``send_multi`` batch; each recipient succeeds, fails or retries on its own."""
    with ExitStack() as stack:
        reservation = _reserve(runtime, BYTEHAND, stack, message_ids)
        if reservation is None:
            return 0
        campaign, claimed = _claim(runtime, campaign_id, message_ids)
        if campaign is None or not claimed:
            return 0
        now = utcnow()
        send_after = (
            campaign.send_after if campaign.send_after and campaign.send_after > now else None
        )
        items = [OutgoingSms(m.phone, campaign.sender, m.text) for m in claimed]

        def call() -> list[str | DispatcherError]:
            client = runtime.bytehand.through(runtime.gate(BYTEHAND, reservation))
            results = client.send_multi(items, send_after)
            return [r.message_id if r.message_id is not None else r.error for r in results]  # type: ignore[misc]

        answer = _call(runtime, call)
    outcomes = plan_outcomes(claimed, answer, now, runtime.settings.dispatch)
    phones = [m.phone for m in claimed]
    refused = suppressions.blacklisted(phones, answer if isinstance(answer, list) else [])
    record_outcomes(runtime, campaign_id, outcomes, refused)
    return len(outcomes.submitted)


def send_timetochat(runtime: Runtime, campaign_id: int, message_id: int) -> int:
    """Send one TimeToChat message, carrying our ``extRef`` and the attempt so any report can
    find it."""
    with ExitStack() as stack:
        reservation = _reserve(runtime, TIMETOCHAT, stack, [message_id])
        if reservation is None:
            return 0
        campaign, claimed = _claim(runtime, campaign_id, [message_id])
        if campaign is None or not claimed:
            return 0
        message = claimed[0]
        outgoing = TtcOutgoing(
            to=message.phone,
            sender=campaign.sender,
            text=message.text,
            ext_ref=tracking.attempt_ref(message.ext_ref, message.attempts),
            validity=campaign.validity,
            unicode=message.encoding == "UCS-2",
        )

        def call() -> list[str | DispatcherError]:
            client = runtime.timetochat.through(runtime.gate(TIMETOCHAT, reservation))
            return [client.send(outgoing)]

        answer = _call(runtime, call)
    outcomes = plan_outcomes(claimed, answer, utcnow(), runtime.settings.dispatch)
    record_outcomes(runtime, campaign_id, outcomes)
    return len(outcomes.submitted)


def _poll_report(runtime: Runtime, provider: str, provider_id: str) -> tracking.Report:
    status = (
        runtime.bytehand.status(provider_id)
        if provider == BYTEHAND
        else runtime.timetochat.status(provider_id)
    )
    return tracking.Report(
        provider=provider,
        source="poll",
        provider_state=status.provider_state,
        state=status.state,
        dedup_key=f"poll:{provider}:{provider_id}:{status.provider_state}",
        payload={"provider_state": status.provider_state},
        provider_message_id=provider_id,
    )


def poll(runtime: Runtime, provider: str, message_ids: Sequence[int]) -> int:
    """Ask the provider about silent messages (through the same limiter); back off the rest."""
    with session_scope(runtime.sessions) as session:
        rows = session.execute(
            select(Message.id, Message.provider_message_id).where(
                Message.id.in_(message_ids), Message.state.in_((M.SUBMITTED, M.SENT))
            )
        ).all()
    dispatch = runtime.settings.dispatch
    settled = 0
    for message_id, provider_id in rows:
        report = None
        try:
            # Marked sent by ops, or settled by a report without an id: nothing to ask about.
            if provider_id:
                report = _poll_report(runtime, provider, provider_id)
        except (ProviderError, RateLimiterUnavailable) as error:
            log.warning("poll of message %s failed: %s", message_id, error)
        now = utcnow()
        with session_scope(runtime.sessions) as session:
            if report is not None and tracking.apply_report(session, report, now) == (
                tracking.Applied.APPLIED
            ):
                settled += 1
            tracking.record_poll_silence(
                session,
                [message_id],
                now,
                first=dispatch.poll_after,
                ceiling=dispatch.poll_max_interval,
                deadline=dispatch.poll_deadline,
            )
    return settled


def claim_polls(runtime: Runtime, provider: str, *, limit: int) -> list[int]:
    """Messages due for a poll, leased to the caller."""
    with session_scope(runtime.sessions) as session:
        return tracking.claim_due_polls(
            session, provider, utcnow(), limit=limit, lease=runtime.settings.dispatch.poll_after
        )


def operate(runtime: Runtime, action: Callable[[Session, int, datetime], T], campaign_id: int) -> T:
    """One operator action on a campaign (:mod:`dispatcher.campaigns`), in one transaction."""
    with session_scope(runtime.sessions) as session:
        return action(session, campaign_id, utcnow())


def sweep(runtime: Runtime) -> tuple[int, int]:
    """Turn stuck sends into in-doubt and release queued work whose broker message was lost."""
    dispatch = runtime.settings.dispatch
    with session_scope(runtime.sessions) as session:
        return claims.sweep_stuck(
            session,
            utcnow(),
            sending_timeout=dispatch.sending_timeout,
            queued_timeout=dispatch.queued_timeout,
        )
