"""Fleet-wide counters in Redis: what each provider call, limiter wait and task adds up to."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.embedded import free_port
from dispatcher.errors import ProviderUnavailable, SendInDoubt
from dispatcher.meter import (
    PROVIDER_CALLS,
    Meter,
    MeteredGate,
    call_outcome,
    limiter_wait_key,
)
from dispatcher.metrics import counter_samples, histogram_buckets
from dispatcher.providers.base import no_gate, request
from dispatcher.ratelimit import FleetLimiter
from dispatcher.sandbox.server import serve_in_thread


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "ok"), (202, "ok"), (429, "throttled"), (400, "refused"), (401, "refused"),
     (404, "refused"), (500, "error"), (503, "error")],
)  # fmt: skip
def test_call_outcome_by_status(status: int, outcome: str) -> None:
    """An answered call is labelled by its HTTP status class, 429 on its own."""
    assert call_outcome(status) == outcome


def test_histogram_buckets_are_cumulative() -> None:
    """Per-bucket counts become Prometheus' cumulative buckets, +Inf holding the total."""
    raw = {b"0.005": b"3", b"0.25": b"2", b"+Inf": b"1", b"count": b"6", b"sum": b"61.5"}
    buckets, total = histogram_buckets(raw)
    as_dict = dict(buckets)
    assert as_dict["0.005"] == 3
    assert as_dict["0.1"] == 3
    assert as_dict["0.25"] == 5
    assert as_dict["30.0"] == 5
    assert buckets[-1] == ("+Inf", 6)
    assert total == 61.5


def test_counter_samples_skip_foreign_fields() -> None:
    """A field with the wrong number of labels is left out, not misread."""
    raw = {b"bytehand|send|ok": b"4", b"junk": b"1"}
    assert list(counter_samples(raw, 3)) == [(["bytehand", "send", "ok"], 4.0)]


@pytest.fixture
def status_server() -> Iterator[str]:
    """A real HTTP server answering ``/<status>`` with that status."""

    async def answer(request: Request) -> Response:
        return Response(status_code=int(request.path_params["status"]))

    app = Starlette(routes=[Route("/{status:int}", answer)])
    with serve_in_thread(app) as server:
        yield server.url


def _counts(client: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(PROVIDER_CALLS).items()}


def test_metered_gate_counts_each_call_by_kind_and_outcome(
    redis_client: redis.Redis, status_server: str
) -> None:
    """Every request through the gate is counted once: answered by status, transport
    errors as unavailable (never left) or no_answer (may have arrived)."""
    gate = MeteredGate(no_gate, Meter(redis_client), "bytehand")
    with httpx.Client(timeout=httpx.Timeout(0.5)) as http:

        def call(kind: str, url: str, *, idempotent: bool = True) -> None:
            request(
                http,
                gate,
                kind,
                "GET",
                url,
                provider="bytehand",
                idempotent=idempotent,  # type: ignore[arg-type]
            )

        call("send", f"{status_server}/200")
        call("send", f"{status_server}/429")
        call("poll", f"{status_server}/500")
        call("account", f"{status_server}/403")
        with pytest.raises(ProviderUnavailable):
            call("token", f"http://127.0.0.1:{free_port()}/")
    assert _counts(redis_client) == {
        "bytehand|send|ok": 1,
        "bytehand|send|throttled": 1,
        "bytehand|poll|error": 1,
        "bytehand|check|refused": 1,
        "bytehand|token|unavailable": 1,
    }


def test_metered_gate_counts_a_send_without_answer(redis_client: redis.Redis) -> None:
    """A send whose answer never came is counted as no_answer (it may have arrived)."""
    gate = MeteredGate(no_gate, Meter(redis_client), "timetochat")
    with pytest.raises(SendInDoubt), gate("send"):
        raise SendInDoubt("read timeout", provider="timetochat", code="ReadTimeout")
    assert _counts(redis_client) == {"timetochat|send|no_answer": 1}


def test_limiter_reports_each_wait_once(redis_client: redis.Redis, redis_url: str) -> None:
    """Three calls through a 2 calls/s limiter: three waits recorded, the third ~1 s long."""
    meter = Meter(redis_client)
    limiter = FleetLimiter(
        redis_url,
        "bytehand:wait-test",
        calls_per_second=2,
        on_wait=lambda seconds: meter.limiter_wait("bytehand", seconds),
    )
    for _ in range(3):
        with limiter.turn("send"):
            pass
    raw = redis_client.hgetall(limiter_wait_key("bytehand"))
    buckets, total = histogram_buckets(raw)
    assert dict(buckets)["+Inf"] == 3
    assert dict(buckets)["0.5"] == 2
    assert 0.9 < total < 2.0


def test_meter_survives_redis_down() -> None:
    """Counting against a Redis that is not there neither raises nor blocks the call."""
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    meter = Meter(dead)
    meter.provider_call("bytehand", "send", "ok")
    meter.limiter_wait("bytehand", 0.1)
    meter.task("succeeded", "dispatcher.tick")
