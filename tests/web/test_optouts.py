"""Opt-outs over real webhooks: the simulators send MOs to the app, which suppresses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from dispatcher.db import session_scope
from dispatcher.models import InboundMessage, Message, Suppression, utcnow
from dispatcher.runtime import Runtime
from dispatcher.sandbox import (
    ByteHandAccount,
    ByteHandConfig,
    TimeToChatAccount,
    TimeToChatConfig,
    create_bytehand_app,
    create_timetochat_app,
)
from dispatcher.sandbox.server import serve_in_thread
from tests.sandbox.conftest import FAST, QUICK_CALLBACKS, wait_until
from tests.web.helpers import (
    BYTEHAND_ID,
    BYTEHAND_KEY,
    SERVICE_ID,
    WEBHOOK_SECRET,
    add_campaign,
    message,
)

TTC_NUMBER = "0938000001"


@pytest.fixture
def simulators(client: httpx.Client) -> Iterator[dict[str, str]]:
    """Both simulators, their MO callbacks aimed at the app under test; their base URLs."""
    base = str(client.base_url).rstrip("/")
    bytehand = create_bytehand_app(
        ByteHandConfig(
            lifecycle=FAST,
            callbacks=QUICK_CALLBACKS,
            accounts=(
                ByteHandAccount(
                    client_id=BYTEHAND_ID,
                    key=BYTEHAND_KEY,
                    callback_url=f"{base}/webhooks/bytehand",
                ),
            ),
        )
    )
    timetochat = create_timetochat_app(
        TimeToChatConfig(
            lifecycle=FAST,
            callbacks=QUICK_CALLBACKS,
            accounts=(
                TimeToChatAccount(
                    service_id=SERVICE_ID,
                    senders=(TTC_NUMBER,),
                    push_url=f"{base}/webhooks/timetochat/{WEBHOOK_SECRET}",
                ),
            ),
        )
    )
    with serve_in_thread(bytehand) as bh, serve_in_thread(timetochat) as ttc:
        yield {"bytehand": bh.url, "timetochat": ttc.url}


def _mo(simulators: dict[str, str], provider: str, phone: str, text: str) -> None:
    body = (
        {"from": phone.lstrip("+"), "to": "SMSINFO", "text": text}
        if provider == "bytehand"
        else {"from": phone, "text": text, "to": TTC_NUMBER}
    )
    answer = httpx.post(f"{simulators[provider]}/_control/incoming", json=body, timeout=10)
    assert answer.status_code == 200, answer.text


def _inbound(runtime: Runtime, count: int) -> list[InboundMessage]:
    def stored() -> list[InboundMessage]:
        with session_scope(runtime.sessions) as session:
            rows = list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))
        return rows if len(rows) >= count else []

    return wait_until(stored, timeout=10)


def _entries(runtime: Runtime, phone: str) -> list[Suppression]:
    with session_scope(runtime.sessions) as session:
        return list(session.scalars(select(Suppression).where(Suppression.phone == phone)))


@pytest.mark.parametrize("provider", ["bytehand", "timetochat"])
def test_stop_mid_campaign_suppresses_pending_messages(
    simulators: dict[str, str], runtime: Runtime, provider: str
) -> None:
    """A STOP MO ends the recipient's unsent messages `suppressed`; sent ones are untouched."""
    _, [pending, queued, sent] = add_campaign(
        runtime, provider=provider, messages=[("pending", None), ("queued", None), ("sent", "p1")]
    )
    phone = message(runtime, pending).phone
    with session_scope(runtime.sessions) as session:
        for mid in (queued, sent):  # the same recipient in every row
            row = session.get(Message, mid)
            assert row is not None
            row.phone = phone
    _mo(simulators, provider, phone, "STOP")
    [mo] = _inbound(runtime, 1)
    assert mo.intent == "opt_out"
    assert message(runtime, pending).state == "suppressed"
    assert message(runtime, queued).state == "suppressed"
    assert message(runtime, sent).state == "sent"
    [entry] = _entries(runtime, phone)
    account = BYTEHAND_ID if provider == "bytehand" else SERVICE_ID
    assert (entry.scope, entry.source, entry.reply_text) == (
        f"{provider}:{account}",
        "keyword",
        "STOP",
    )


@pytest.mark.parametrize(
    "text", ["STOP", "Arrêt", "désabonner", "UNSUBSCRIBE", "стоп", "Отписаться", "STOP SMS"]
)
def test_opt_out_reply_in_each_language_suppresses(
    simulators: dict[str, str], runtime: Runtime, text: str
) -> None:
    """French, English and Russian opt-outs through a TimeToChat INCOMING push."""
    _mo(simulators, "timetochat", "+33612345678", text)
    _inbound(runtime, 1)
    assert [e.reply_text for e in _entries(runtime, "+33612345678")] == [text]


def test_sentence_with_stop_is_a_reply(simulators: dict[str, str], runtime: Runtime) -> None:
    """ "Stop, c'est quoi cette offre ?" is stored as a reply and suppresses nothing."""
    _mo(simulators, "bytehand", "+33612345678", "Stop, c'est quoi cette offre ?")
    [mo] = _inbound(runtime, 1)
    assert mo.intent == "reply"
    assert _entries(runtime, "+33612345678") == []


def test_start_resubscribes(simulators: dict[str, str], runtime: Runtime) -> None:
    """START after STOP lifts the keyword opt-out of that account."""
    _mo(simulators, "bytehand", "+79161234567", "СТОП")
    _inbound(runtime, 1)
    assert len(_entries(runtime, "+79161234567")) == 1
    _mo(simulators, "bytehand", "+79161234567", "START")
    _inbound(runtime, 2)
    assert _entries(runtime, "+79161234567") == []


def test_bytehand_reply_links_to_latest_message_in_window(
    simulators: dict[str, str], runtime: Runtime
) -> None:
    """ByteHand gives no link: an MO answers the latest message sent to that number within
    the reply window; one sent before the window is not linked."""
    _, [stale, older, latest] = add_campaign(
        runtime, messages=[("sent", "a"), ("sent", "b"), ("delivered", "c")]
    )
    now = utcnow()
    ages = {stale: timedelta(days=4), older: timedelta(hours=2), latest: timedelta(minutes=5)}
    with session_scope(runtime.sessions) as session:
        for mid, age in ages.items():
            row = session.get(Message, mid)
            assert row is not None
            row.phone, row.submitted_at = "+33612345678", now - age
        stale_row = session.get(Message, stale)
        assert stale_row is not None
        stale_row.phone = "+33698765432"
    _mo(simulators, "bytehand", "+33612345678", "Merci, c'est pour quand ?")
    [mo] = _inbound(runtime, 1)
    assert (mo.reply_to_id, mo.intent) == (latest, "reply")
    _mo(simulators, "bytehand", "+33698765432", "Qui êtes-vous ?")
    assert _inbound(runtime, 2)[1].reply_to_id is None


def test_bytehand_callback_error_22_suppresses(client: httpx.Client, runtime: Runtime) -> None:
    """An UNDELIVERABLE callback with error_code 22 (receiver blacklisted) suppresses the
    number for ByteHand, source `provider`."""
    _, [mid] = add_campaign(runtime, messages=[("submitted", "bh-22")])
    callback = {
        "id": BYTEHAND_ID,
        "key": BYTEHAND_KEY[-8:],
        "action": "outgoingStatus",
        "message": "bh-22",
        "description": "UNDELIVERABLE",
        "error_code": "22",
        "updated_at": "2024-03-25 14:32:25",
    }
    assert client.get("/webhooks/bytehand", params=callback).json()["result"] == "accepted"
    [entry] = _entries(runtime, message(runtime, mid).phone)
    assert (entry.scope, entry.source) == ("bytehand", "provider")
