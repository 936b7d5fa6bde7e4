"""Callbacks to a real receiver: shapes, retries, give-up, duplicates, control injections;
the sender alone: timeouts, its connection cap, stopping with attempts in flight."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from dispatcher.sandbox import CallbackPolicy, Faults
from dispatcher.sandbox.callbacks import Callback, CallbackSender
from dispatcher.sandbox.faults import FaultSwitch
from dispatcher.sandbox.scheduler import Scheduler

from .conftest import (
    BH_AUTH,
    BH_KEY,
    HTTP,
    OK,
    QUICK_CALLBACKS,
    TTC_PASSWORD,
    TTC_SENDER,
    RawServer,
    Receiver,
    Seen,
    Simulator,
    bytehand_with_handler,
    timetochat_with_push,
    wait_until,
)

HELLO = {"to": "+79161234567", "from": "SMSINFO", "text": "Hello"}
SERVICE = "/mug/api/V1/services/123456"


async def answer_ok(_: Seen) -> bytes:
    return OK


def bytehand_send(sim: Simulator, **changes: str) -> str:
    response = HTTP.get(sim.url + "/send", params={**BH_AUTH, **HELLO, **changes})
    return str(response.json()["description"])


def timetochat_send(sim: Simulator, to: str = "0601020304") -> str:
    token = HTTP.post(sim.url + SERVICE + "/token", json={"password": TTC_PASSWORD}).json()
    response = HTTP.post(
        sim.url + SERVICE + "/messages",
        json={"to": to, "text": "Bonjour", "from": TTC_SENDER, "extRef": "ref-1"},
        headers={"Authorization": f"Bearer {token['token']}"},
    )
    return str(response.json()["id"])


def test_bytehand_status_callbacks(
    bytehand_factory: Callable[..., Simulator], receiver_factory: Callable[..., Receiver]
) -> None:
    """Every state after NEW is a GET with id, the key's last 8 chars and outgoingStatus."""
    receiver = receiver_factory()
    sim = bytehand_factory(accounts=bytehand_with_handler(receiver.url))
    delivered = bytehand_send(sim)
    failed = bytehand_send(sim, to="+79161234513")
    wait_until(lambda: len(receiver.received()) == 4)
    calls = {(c["params"]["message"], c["params"]["description"]): c for c in receiver.received()}
    assert set(calls) == {
        (delivered, "ACCEPTED"),
        (delivered, "DELIVERED"),
        (failed, "ACCEPTED"),
        (failed, "UNDELIVERABLE"),
    }
    params = calls[(failed, "UNDELIVERABLE")]["params"]
    assert calls[(failed, "UNDELIVERABLE")]["method"] == "GET"
    assert {k: params[k] for k in ("id", "key", "action", "error_code")} == {
        "id": "1000",
        "key": BH_KEY[-8:],
        "action": "outgoingStatus",
        "error_code": "12",
    }
    assert len(params["updated_at"]) == len("2025-01-01 00:00:00")
    assert calls[(delivered, "DELIVERED")]["params"]["error_code"] == "0"


def test_bytehand_incoming_sms(
    bytehand_factory: Callable[..., Simulator], receiver_factory: Callable[..., Receiver]
) -> None:
    """An injected MO arrives as an incomingSms GET."""
    receiver = receiver_factory()
    sim = bytehand_factory(accounts=bytehand_with_handler(receiver.url))
    mo = {"from": "+79161234567", "to": "+79000000000", "text": "STOP"}
    message = HTTP.post(sim.url + "/_control/incoming", json=mo).json()["message"]
    (call,) = wait_until(receiver.received)
    assert call["params"] == {
        "id": "1000",
        "key": BH_KEY[-8:],
        "action": "incomingSms",
        "message": message,
        **mo,
        "posted_at": call["params"]["posted_at"],
    }


def test_incoming_without_handler_is_refused(bytehand: Simulator) -> None:
    """Without a handler URL there is nowhere to deliver an MO."""
    mo = {"from": "+79161234567", "to": "+79000000000", "text": "STOP"}
    assert HTTP.post(bytehand.url + "/_control/incoming", json=mo).status_code == 409


def test_timetochat_push_reports(
    timetochat_factory: Callable[..., Simulator], receiver_factory: Callable[..., Receiver]
) -> None:
    """SENT then RECEIVED, and ERROR with the CRA code, posted as Push_CRA JSON."""
    receiver = receiver_factory()
    sim = timetochat_factory(accounts=timetochat_with_push(receiver.url))
    ok = timetochat_send(sim)
    wrong = timetochat_send(sim, to="0601020313")
    wait_until(lambda: len(receiver.received()) == 4)
    reports = [c["json"]["status_report"] for c in receiver.received()]
    assert {r["username"] for r in reports} == {"123456"}
    items = {(r["sms"][0]["call_id"], r["sms"][0]["status"]): r["sms"][0] for r in reports}
    assert set(items) == {(ok, "SENT"), (ok, "RECEIVED"), (wrong, "SENT"), (wrong, "ERROR")}
    received = items[(ok, "RECEIVED")]
    assert (received["to"], received["from"], received["ref_externe"]) == (
        "+33601020304",
        TTC_SENDER,
        "ref-1",
    )
    assert received["status_list"] == [{"date": received["date"], "type": "RECEIVED"}]
    assert items[(wrong, "ERROR")]["status_list"][0]["info"] == "CRA_SMS_WRONGNUMBER"


def test_timetochat_incoming_and_answered(
    timetochat_factory: Callable[..., Simulator], receiver_factory: Callable[..., Receiver]
) -> None:
    """Injected MOs are INCOMING (empty call_id); replies to a sent message are ANSWERED."""
    receiver = receiver_factory()
    sim = timetochat_factory(accounts=timetochat_with_push(receiver.url))
    message = timetochat_send(sim)
    wait_until(lambda: len(receiver.received()) == 2)  # SENT, RECEIVED
    mo = HTTP.post(sim.url + "/_control/incoming", json={"from": "0611111111", "text": "Salut"})
    reply = HTTP.post(sim.url + "/_control/reply", json={"message_id": message, "text": "Merci"})
    assert mo.status_code == reply.status_code == 200
    wait_until(lambda: len(receiver.received()) == 4)
    sms = {c["json"]["status_report"]["sms"][0]["status"]: c for c in receiver.received()}
    incoming = sms["INCOMING"]["json"]["status_report"]["sms"][0]
    assert (incoming["call_id"], incoming["to"], incoming["from"]) == (
        "",
        "+33611111111",
        TTC_SENDER,
    )
    assert incoming["status_list"][0]["info"] == "Salut"
    answered = sms["ANSWERED"]["json"]["status_report"]["sms"][0]
    assert (answered["call_id"], answered["ref_externe"]) == (message, "ref-1")
    assert answered["status_list"][0]["info"] == "Merci"
    unknown = HTTP.post(sim.url + "/_control/reply", json={"message_id": "x", "text": "Merci"})
    assert unknown.status_code == 400


def test_failed_callbacks_are_retried(
    bytehand_factory: Callable[..., Simulator], receiver_factory: Callable[..., Receiver]
) -> None:
    """A receiver answering 500 gets the same callback again until it answers 200."""
    receiver = receiver_factory(fail_first=2)
    sim = bytehand_factory(accounts=bytehand_with_handler(receiver.url))
    mo = {"from": "+79161234567", "to": "+79000000000", "text": "STOP"}
    HTTP.post(sim.url + "/_control/incoming", json=mo)
    wait_until(lambda: sim.sandbox.callbacks.counts()["delivered"] == 1)
    calls = receiver.received()
    assert len(calls) == 3
    assert calls[0]["params"] == calls[1]["params"] == calls[2]["params"]


def test_callbacks_are_given_up_after_the_deadline(
    bytehand_factory: Callable[..., Simulator], receiver_factory: Callable[..., Receiver]
) -> None:
    """A receiver that never answers 200 is abandoned once the deadline has passed."""
    receiver = receiver_factory(fail_first=1000)
    policy = CallbackPolicy(timeout_s=1, retry_base_s=0.05, retry_max_s=0.05, deadline_s=0.3)
    sim = bytehand_factory(accounts=bytehand_with_handler(receiver.url), callbacks=policy)
    HTTP.post(sim.url + "/_control/incoming", json={"from": "+7916", "to": "+7900", "text": "x"})
    counts = wait_until(lambda: (c := sim.sandbox.callbacks.counts())["given_up"] == 1 and c)
    assert counts["delivered"] == 0 and counts["attempts"] >= 3


def test_duplicate_callbacks(
    bytehand_factory: Callable[..., Simulator], receiver_factory: Callable[..., Receiver]
) -> None:
    """With callback_duplicate_rate=1 every callback arrives twice."""
    receiver = receiver_factory()
    sim = bytehand_factory(
        accounts=bytehand_with_handler(receiver.url),
        faults=Faults(callback_duplicate_rate=1.0, callback_reorder_s=0.05),
    )
    message = bytehand_send(sim)
    wait_until(lambda: len(receiver.received()) == 4)
    states = sorted(c["params"]["description"] for c in receiver.received())
    assert states == ["ACCEPTED", "ACCEPTED", "DELIVERED", "DELIVERED"]
    assert {c["params"]["message"] for c in receiver.received()} == {message}


def test_reset_drops_pending_retries(
    bytehand_factory: Callable[..., Simulator], receiver_factory: Callable[..., Receiver]
) -> None:
    """After a reset, callbacks of the previous run are no longer retried."""
    receiver = receiver_factory(fail_first=1000)
    sim = bytehand_factory(accounts=bytehand_with_handler(receiver.url))
    HTTP.post(sim.url + "/_control/incoming", json={"from": "+7916", "to": "+7900", "text": "x"})
    wait_until(receiver.received)
    HTTP.post(sim.url + "/_control/reset")
    seen = len(receiver.received())
    time.sleep(0.4)  # several retry periods of QUICK_CALLBACKS
    assert len(receiver.received()) <= seen + 1  # at most the attempt already in flight


@pytest.fixture
def sender_factory() -> Iterator[Callable[..., CallbackSender]]:
    """Start CallbackSenders, each with its own scheduler; both stopped afterwards."""
    started: list[tuple[Scheduler, CallbackSender]] = []

    def make(**policy: Any) -> CallbackSender:
        scheduler = Scheduler("test-callbacks")
        sender = CallbackSender(
            CallbackPolicy(**{**dataclasses.asdict(QUICK_CALLBACKS), **policy}),
            FaultSwitch(Faults(), seed=1),
            scheduler,
        )
        scheduler.start()
        sender.start()
        started.append((scheduler, sender))
        return sender

    yield make
    for scheduler, sender in started:
        scheduler.stop()
        sender.stop()


def test_sender_delivers_on_200(
    sender_factory: Callable[..., CallbackSender], raw_server_factory: Callable[..., RawServer]
) -> None:
    """A GET and a POST answered 200 are delivered at the first attempt."""
    server = raw_server_factory(answer_ok)
    sender = sender_factory()
    sender.send(Callback(server.url, "GET", (("id", "1000"), ("text", "a b"))))
    sender.send(Callback(server.url, "POST", json_body={"status_report": {"sms": []}}))
    wait_until(lambda: sender.counts()["delivered"] == 2)
    assert sender.counts() == {"queued": 2, "attempts": 2, "delivered": 2, "given_up": 0}
    requests = {r.method: r for r in server.requests()}
    assert requests["GET"].target == "/hook?id=1000&text=a+b"
    assert requests["GET"].headers["host"] == f"127.0.0.1:{server.port}"
    assert json.loads(requests["POST"].body) == {"status_report": {"sms": []}}


def test_sender_retries_after_500(
    sender_factory: Callable[..., CallbackSender], raw_server_factory: Callable[..., RawServer]
) -> None:
    """A 500 is a failed attempt; the retry answered 200 delivers."""
    answers = [b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", OK]

    async def fail_once(_: Seen) -> bytes:
        return answers.pop(0) if len(answers) > 1 else OK

    server = raw_server_factory(fail_once)
    sender = sender_factory()
    sender.send(Callback(server.url, "GET", (("id", "1"),)))
    wait_until(lambda: sender.counts()["delivered"] == 1)
    assert sender.counts()["attempts"] == 2
    assert len(server.requests()) == 2


def answering_after(seconds: float) -> Callable[[Seen], Awaitable[bytes]]:
    """A raw server's answer: 200, ``seconds`` after the request."""

    async def answer(_: Seen) -> bytes:
        await asyncio.sleep(seconds)
        return OK

    return answer


def test_sender_counts_a_timeout_as_a_failure(
    sender_factory: Callable[..., CallbackSender], raw_server_factory: Callable[..., RawServer]
) -> None:
    """A receiver answering after the timeout has failed: retried until given up."""

    server = raw_server_factory(answering_after(1))
    sender = sender_factory(timeout_s=0.1, deadline_s=0.3)
    sender.send(Callback(server.url, "GET"))
    counts = wait_until(lambda: (c := sender.counts())["given_up"] == 1 and c)
    assert counts["delivered"] == 0 and counts["attempts"] >= 2
    assert server.connections == counts["attempts"]  # a timed-out connection is not reused


def test_sender_caps_connections_at_workers(
    sender_factory: Callable[..., CallbackSender], raw_server_factory: Callable[..., RawServer]
) -> None:
    """However many callbacks wait, at most ``workers`` requests are in flight, each on its
    own keep-alive connection."""

    server = raw_server_factory(answering_after(0.05))
    sender = sender_factory(workers=3)
    for number in range(15):
        sender.send(Callback(server.url, "GET", (("n", str(number)),)))
    wait_until(lambda: sender.counts()["delivered"] == 15)
    assert server.peak == 3
    assert server.connections == 3


def test_sender_stop_finishes_attempts_in_flight(
    sender_factory: Callable[..., CallbackSender], raw_server_factory: Callable[..., RawServer]
) -> None:
    """stop() waits for the attempts in flight and drops the callbacks not yet attempted."""

    server = raw_server_factory(answering_after(0.3))
    sender = sender_factory(workers=2)
    for number in range(6):
        sender.send(Callback(server.url, "GET", (("n", str(number)),)))
    wait_until(lambda: server.in_flight == 2)
    started = time.monotonic()
    sender.stop()
    assert time.monotonic() - started < 0.6  # one round of attempts, not three
    assert sender.counts() == {"queued": 6, "attempts": 2, "delivered": 2, "given_up": 0}
    assert len(server.requests()) == 2
