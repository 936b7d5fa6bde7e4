"""Injected faults and the rate limit, over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from dispatcher.sandbox import Faults, codes

from .conftest import BH_AUTH, HTTP, TTC_PASSWORD, TTC_SENDER, Simulator, wait_until

HELLO = {"to": "+79161234567", "from": "SMSINFO", "text": "Hello"}
SERVICE = "/mug/api/V1/services/123456"


def set_faults(sim: Simulator, **changes: object) -> httpx.Response:
    return HTTP.post(sim.url + "/_control/faults", json=changes)


def test_fail_rate_one_answers_500_and_accepts_nothing(
    bytehand: Simulator, timetochat: Simulator
) -> None:
    """fail_rate=1: every call is a 500 with the provider's body, and the ledger stays empty."""
    token = HTTP.post(timetochat.url + SERVICE + "/token", json={"password": TTC_PASSWORD})
    assert set_faults(bytehand, fail_rate=1).json()["fail_rate"] == 1
    set_faults(timetochat, fail_rate=1)
    response = HTTP.get(bytehand.url + "/send", params={**BH_AUTH, **HELLO})
    assert response.status_code == 500
    assert response.json() == {"status": 1, "description": codes.BYTEHAND_DESCRIPTIONS[1]}
    response = HTTP.post(
        timetochat.url + SERVICE + "/messages",
        json={"to": "0601020304", "text": "x", "from": TTC_SENDER},
        headers={"Authorization": "Bearer " + token.json()["token"]},
    )
    assert response.status_code == 500
    assert response.json()["code"] == codes.TTC_INTERNAL_ERROR
    assert len(bytehand.sandbox.ledger) == len(timetochat.sandbox.ledger) == 0
    assert bytehand.sandbox.stats()["1000"].faults_failed == 1


def test_stall_times_the_client_out_but_accepts_the_message(bytehand: Simulator) -> None:
    """A stalled send is in the ledger and delivered although the client timed out."""
    set_faults(bytehand, stall_rate=1, stall_s=3)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        HTTP.get(bytehand.url + "/send", params={**BH_AUTH, **HELLO}, timeout=0.3)
    assert time.monotonic() - started < 1
    (entry,) = bytehand.sandbox.ledger
    assert entry.text == "Hello"
    wait_until(lambda: bytehand.sandbox.ledger.get(entry.id).state == "DELIVERED")


def test_stall_applies_to_a_whole_send_multi(bytehand: Simulator) -> None:
    """send_multi stalls as one call: every valid item is accepted, no answer comes."""
    set_faults(bytehand, stall_rate=1, stall_s=3)
    items = [HELLO, {**HELLO, "to": "+79161234568"}, {**HELLO, "from": "nope"}]
    with pytest.raises(httpx.ReadTimeout):
        HTTP.post(bytehand.url + "/send_multi", params=BH_AUTH, json=items, timeout=0.3)
    assert len(bytehand.sandbox.ledger) == 2


def test_dropped_connection_after_accepting(timetochat: Simulator) -> None:
    """stall_mode=drop cuts the connection after the headers; the message is accepted."""
    token = HTTP.post(timetochat.url + SERVICE + "/token", json={"password": TTC_PASSWORD})
    set_faults(timetochat, stall_rate=1, stall_mode="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        HTTP.post(
            timetochat.url + SERVICE + "/messages",
            json={"to": "0601020304", "text": "x", "from": TTC_SENDER},
            headers={"Authorization": "Bearer " + token.json()["token"]},
        )
    assert len(timetochat.sandbox.ledger) == 1
    assert timetochat.sandbox.stats()["123456"].faults_stalled == 1


def test_refused_sends_do_not_stall(bytehand: Simulator) -> None:
    """Only sends that accepted something stall: a refusal answers at once."""
    set_faults(bytehand, stall_rate=1, stall_s=3)
    response = HTTP.get(
        bytehand.url + "/send", params={**BH_AUTH, **HELLO, "from": "nope"}, timeout=1
    )
    assert response.json()["status"] == codes.BH_INVALID_SENDER


def test_latency_is_added(bytehand: Simulator) -> None:
    """latency_ms delays every call."""
    set_faults(bytehand, latency_ms=200)
    started = time.monotonic()
    HTTP.get(bytehand.url + "/balance", params=BH_AUTH)
    assert time.monotonic() - started >= 0.2


def test_bad_fault_switches_are_refused(bytehand: Simulator) -> None:
    """Unknown switches and bad values are 400 and change nothing."""
    assert set_faults(bytehand, fail_rate=1.5).status_code == 400
    assert set_faults(bytehand, explode=True).status_code == 400
    assert HTTP.get(bytehand.url + "/_control/faults").json()["fail_rate"] == 0


def test_reset_restores_start_up_faults(bytehand_factory: Callable[..., Simulator]) -> None:
    """Faults switched at run time go back to the configured ones on reset."""
    sim = bytehand_factory(faults=Faults(latency_ms=5))
    set_faults(sim, fail_rate=1)
    HTTP.post(sim.url + "/_control/reset")
    assert sim.sandbox.faults.current == Faults(latency_ms=5)


def burst(
    calls: int, threads: int, call: Callable[[httpx.Client], httpx.Response]
) -> tuple[list[int], float]:
    """Fire ``calls`` requests from ``threads`` threads at once: their statuses, and how long
    the burst itself took."""
    started: list[float] = []
    barrier = threading.Barrier(threads, action=lambda: started.append(time.monotonic()))

    def worker(n: int) -> list[int]:
        with httpx.Client() as client:
            barrier.wait()
            return [call(client).status_code for _ in range(n)]

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(worker, [calls // threads] * threads))
    elapsed = time.monotonic() - started[0]
    return [status for chunk in results for status in chunk], elapsed


def test_bytehand_burst_is_capped_at_20_per_second(bytehand: Simulator) -> None:
    """60 sends in well under a second: 20 served, the rest refused with status 17 and unsent."""
    statuses, elapsed = burst(
        60, 6, lambda c: c.get(bytehand.url + "/send", params={**BH_AUTH, **HELLO})
    )
    # At most 20 served per window: a burst shorter than a second has 40 or more refused.
    assert statuses.count(400) >= 60 - 20 * (int(elapsed) + 1)
    stats = bytehand.sandbox.stats()["1000"]
    assert stats.calls_served == statuses.count(200) == len(bytehand.sandbox.ledger)
    assert stats.rate_limited == statuses.count(400)
    assert stats.max_calls_in_window <= 20
    refused = HTTP.get(bytehand.url + "/balance", params=BH_AUTH)
    assert refused.json() == {"status": 17, "description": codes.BYTEHAND_DESCRIPTIONS[17]}


def test_timetochat_burst_counts_token_calls(timetochat: Simulator) -> None:
    """Token requests spend the same budget: 60 at once get at least 40 "Too many request"."""
    statuses, elapsed = burst(
        60, 6, lambda c: c.post(timetochat.url + SERVICE + "/token", json={"password": "x"})
    )
    assert statuses.count(429) >= 60 - 20 * (int(elapsed) + 1)
    assert statuses.count(401) == 60 - statuses.count(429)  # wrong password, still counted
    stats = timetochat.sandbox.stats()["123456"]
    assert stats.max_calls_in_window <= 20 and stats.rate_limited == statuses.count(429)
    refused = HTTP.post(timetochat.url + SERVICE + "/token", json={"password": TTC_PASSWORD})
    assert refused.status_code == 429
    assert refused.json() == {"code": "TOO_MANY_REQUESTS", "message": "Too many request"}


def test_budget_comes_back_after_a_second(bytehand: Simulator) -> None:
    """After a full window the account may call again."""
    statuses, _ = burst(40, 4, lambda c: c.get(bytehand.url + "/balance", params=BH_AUTH))
    assert 400 in statuses
    time.sleep(1.0)
    assert HTTP.get(bytehand.url + "/balance", params=BH_AUTH).status_code == 200
