"""The shared pieces: the httpx boundary, the HTTP client, the gate, webhook secrets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from dispatcher.config import Secret
from dispatcher.errors import ProviderUnavailable, SendInDoubt, WebhookAuthError
from dispatcher.providers.base import (
    build_http_client,
    check_webhook_secret,
    decode_json,
    encode_json,
    map_transport_errors,
    no_gate,
    request,
)
from tests.providers.scripted import ScriptedProvider, reply

NEVER_LEFT = [
    httpx.ConnectError("refused"),
    httpx.ConnectTimeout("slow connect"),
    httpx.PoolTimeout("pool exhausted"),
    httpx.ProxyError("proxy"),
    httpx.UnsupportedProtocol("ftp"),
    httpx.LocalProtocolError("bad request line"),
]
MAY_HAVE_ARRIVED = [
    httpx.ReadTimeout("slow answer"),
    httpx.WriteTimeout("slow upload"),
    httpx.ReadError("reset"),
    httpx.WriteError("broken pipe"),
    httpx.RemoteProtocolError("server disconnected"),
]


@pytest.mark.parametrize("exc", NEVER_LEFT, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("idempotent", [True, False])
def test_request_that_never_left_is_unavailable(exc: httpx.RequestError, idempotent: bool) -> None:
    """A request that never left is safe to retry, even a send."""
    with (
        pytest.raises(ProviderUnavailable) as info,
        map_transport_errors("p", idempotent=idempotent),
    ):
        raise exc
    assert type(info.value) is ProviderUnavailable
    assert info.value.__cause__ is exc
    assert info.value.code == type(exc).__name__


@pytest.mark.parametrize("exc", MAY_HAVE_ARRIVED, ids=lambda e: type(e).__name__)
def test_send_that_may_have_arrived_is_in_doubt(exc: httpx.RequestError) -> None:
    """A send whose answer was lost may be out: in doubt, never resent blindly."""
    with pytest.raises(SendInDoubt) as info, map_transport_errors("p", idempotent=False):
        raise exc
    assert info.value.__cause__ is exc
    assert info.value.provider == "p"


@pytest.mark.parametrize("exc", MAY_HAVE_ARRIVED, ids=lambda e: type(e).__name__)
def test_read_that_may_have_arrived_is_unavailable(exc: httpx.RequestError) -> None:
    """Repeating a read is harmless, so a lost answer is merely unavailable."""
    with pytest.raises(ProviderUnavailable), map_transport_errors("p", idempotent=True):
        raise exc


def test_foreign_non_httpx_errors_pass_through() -> None:
    """Only httpx errors are translated; our own bugs stay visible."""
    with pytest.raises(KeyError), map_transport_errors("p", idempotent=True):
        raise KeyError("x")


def test_build_http_client_has_explicit_timeouts() -> None:
    """Connect (and pool wait) and read timeouts are the ones configured."""
    with build_http_client(connect_timeout=2.0, read_timeout=9.0) as client:
        assert client.timeout.connect == 2.0
        assert client.timeout.pool == 2.0
        assert client.timeout.read == 9.0
        assert client.timeout.write == 9.0
        assert not client.follow_redirects


def test_request_passes_the_gate_once_before_the_call() -> None:
    """The gate sees the call's kind before the request is made and is left after the answer,
    also when the request fails."""
    events: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        events.append("http")
        return reply(200, {})

    def no_answer(request: httpx.Request) -> httpx.Response:
        events.append("http")
        raise httpx.ReadTimeout("no answer", request=request)

    provider = ScriptedProvider(answer, no_answer)

    @contextmanager
    def gate(kind: str) -> Iterator[None]:
        events.append(kind)
        try:
            yield
        finally:
            events.append("left")

    with provider.client() as http:
        request(http, gate, "poll", "GET", "http://p/x", provider="p", idempotent=True)
        with pytest.raises(ProviderUnavailable):
            request(http, gate, "poll", "GET", "http://p/down", provider="p", idempotent=True)
    assert events == ["poll", "http", "left", "poll", "http", "left"]


def test_gate_refusal_stops_the_request() -> None:
    """When the gate raises (limiter down), no request leaves."""
    provider = ScriptedProvider(reply(200, {}))

    def gate(kind: str) -> None:
        raise RuntimeError("limiter down")

    with provider.client() as http, pytest.raises(RuntimeError):
        request(http, gate, "send", "GET", "http://p/x", provider="p", idempotent=False)
    assert provider.requests == []


def test_no_gate_allows_everything() -> None:
    """The default gate does nothing and raises nothing."""
    for kind in ("send", "poll", "token", "account"):
        with no_gate(kind):
            pass


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b'{"a": 1}', {"a": 1}), (b"[1]", [1]), (b"<html>", None), (b"", None), (b"\xff", None)],
)
def test_decode_json(body: bytes, expected: object) -> None:
    """Non-JSON bodies decode to None instead of raising."""
    assert decode_json(body) == expected


def test_encode_json_keeps_unicode() -> None:
    """Non-ASCII text is sent as UTF-8, not as escapes."""
    assert encode_json({"text": "Привет €"}) == '{"text":"Привет €"}'.encode()


@pytest.mark.parametrize(
    ("given", "expected", "ok"),
    [("s3cret", "s3cret", True), ("s3cre", "s3cret", False), ("", "", False), ("é", "é", True)],
)
def test_check_webhook_secret(given: str, expected: str, ok: bool) -> None:
    """Only the exact configured secret passes; an unset secret lets nothing through."""
    if ok:
        check_webhook_secret(given, Secret(expected))
    else:
        with pytest.raises(WebhookAuthError):
            check_webhook_secret(given, Secret(expected))
