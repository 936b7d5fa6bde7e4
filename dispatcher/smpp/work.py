"""The gateway's side of the database: the same claims, outcomes and tracking as the REST path.

* :func:`next_queued` looks at the queued TimeToChat messages of running campaigns (the
  feeder queues them as for REST; under the SMPP transport nothing else consumes them) and
  :func:`claim` takes one (``queued`` → ``sending``, the conditional UPDATE of
  :mod:`dispatcher.claims`) once its slot in the budget is granted.
* :func:`record_answers` turns submit_sm answers into outcomes
  (:func:`dispatcher.outcomes.plan_outcomes`): a message id is ``submitted``; no answer because
  the link dropped is ``in_doubt`` (the submit_sm may have arrived), never resent blindly.
* :func:`apply_deliver` applies a receipt through :func:`dispatcher.tracking.apply_report` (once,
  forward only, found by our ``external_reference`` or the message id) and stores an MO through
  :func:`dispatcher.tracking.store_inbound` with the TimeToChat audience rules (opt-outs,
  replies), as the Push_CRA webhook does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from dispatcher import claims, pipeline, tracking
from dispatcher.claims import ClaimedMessage
from dispatcher.constants import TIMETOCHAT
from dispatcher.db import session_scope
from dispatcher.errors import DispatcherError
from dispatcher.models import Campaign, Message, utcnow
from dispatcher.outcomes import plan_outcomes
from dispatcher.providers.timetochat import TtcOutgoing
from dispatcher.replies import Audience
from dispatcher.runtime import Runtime
from dispatcher.smpp.messages import IncomingSms, parse_deliver
from dispatcher.smpp.pdu import Pdu, PduError, Status
from dispatcher.states import CampaignState, MessageState

__all__ = ["Queued", "Submit", "apply_deliver", "claim", "next_queued", "record_answers"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Submit:
    """One claimed message on its way out."""

    campaign_id: int
    message: ClaimedMessage
    outgoing: TtcOutgoing


@dataclasses.dataclass(frozen=True)
class Queued:
    """A queued message seen by the gateway, not yet claimed."""

    message_id: int
    campaign_id: int
    sender: str
    validity: datetime | None


def next_queued(runtime: Runtime, limit: int) -> list[Queued]:
    """The oldest queued TimeToChat messages of running, still valid campaigns (a look, not a
    claim: :func:`claim` takes each one when its turn in the budget has come)."""
    now = utcnow()
    with session_scope(runtime.sessions) as session:
        rows = session.execute(
            select(Message.id, Campaign.id, Campaign.sender, Campaign.validity)
            .join(Campaign)
            .where(
                Campaign.provider == TIMETOCHAT,
                Campaign.state == CampaignState.RUNNING,
                or_(Campaign.validity.is_(None), Campaign.validity > now),
                Message.state == MessageState.QUEUED,
            )
            .order_by(Message.id)
            .limit(limit)
        ).all()
    return [Queued(*row) for row in rows]


def claim(runtime: Runtime, queued: Queued) -> Submit | None:
    """``queued`` → ``sending`` for this message; None if it is no longer queued or its
    campaign stopped running since it was looked at (paused work stays queued for the feeder
    to release)."""
    with session_scope(runtime.sessions) as session:
        state = session.scalar(select(Campaign.state).where(Campaign.id == queued.campaign_id))
        if state != CampaignState.RUNNING:
            return None
        claimed = claims.claim_for_send(session, [queued.message_id], utcnow())
    if not claimed:
        return None
    message = claimed[0]
    outgoing = TtcOutgoing(
        to=message.phone,
        sender=queued.sender,
        text=message.text,
        ext_ref=message.ext_ref,
        validity=queued.validity,
        unicode=message.encoding == "UCS-2",
    )
    return Submit(queued.campaign_id, message, outgoing)


def record_answers(
    runtime: Runtime, answers: Sequence[tuple[Submit, str | DispatcherError]]
) -> None:
    """Record each submit's answer (a message id, or the error it ended in), per campaign."""
    by_campaign: dict[int, list[tuple[Submit, str | DispatcherError]]] = defaultdict(list)
    for submit, answer in answers:
        by_campaign[submit.campaign_id].append((submit, answer))
    for campaign_id, pairs in by_campaign.items():
        outcomes = plan_outcomes(
            [s.message for s, _ in pairs],
            [a for _, a in pairs],
            utcnow(),
            runtime.settings.dispatch,
        )
        pipeline.record_outcomes(runtime, campaign_id, outcomes)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def apply_deliver(runtime: Runtime, pdu: Pdu) -> int:
    """Apply one deliver_sm; the status of our deliver_sm_resp.

    A database failure answers ESME_RX_T_APPN (temporary): the connector keeps the receipt or
    MO and delivers it again, rather than it being lost because we said "received".
    """
    tag = runtime.settings.timetochat.smpp.external_reference_tag
    try:
        event = parse_deliver(pdu, reference_tag=tag)
    except PduError as exc:
        log.warning("smpp: deliver_sm not understood: %s", exc)
        return Status.ESME_ROK  # delivering it again would not make it readable
    now = utcnow()
    try:
        with session_scope(runtime.sessions) as session:
            if isinstance(event, IncomingSms):
                # An MO over SMPP carries no id: the same text from the same number within the
                # same minute is taken as one (a redelivery), as for Push_CRA.
                minute = now.strftime("%Y%m%d%H%M")
                tracking.store_inbound(
                    session,
                    provider=TIMETOCHAT,
                    from_number=event.sender,
                    to_number=event.to,
                    text=event.text,
                    dedup_key=f"mo:timetochat:smpp:{event.sender}:{minute}:{_digest(event.text)}",
                    now=now,
                    audience=Audience.for_provider(runtime.settings, TIMETOCHAT),
                )
            else:
                report = tracking.Report(
                    provider=TIMETOCHAT,
                    source="smpp",
                    provider_state=event.stat,
                    state=event.state,
                    dedup_key=f"smpp:timetochat:{event.message_id}:{event.stat}:{event.part}",
                    payload={"stat": event.stat, "err": event.error, "part": event.part},
                    provider_message_id=event.message_id,
                    ext_ref=event.ext_ref,
                )
                tracking.apply_report(session, report, now)
    except SQLAlchemyError as exc:
        log.warning("smpp: deliver_sm not recorded, the connector will resend it: %s", exc)
        return Status.ESME_RX_T_APPN
    return Status.ESME_ROK
