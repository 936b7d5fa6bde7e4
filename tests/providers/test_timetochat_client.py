"""TimeToChatClient over MockTransport: token flow, exact requests, answers mapped, gate kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dispatcher.config import Secret
from dispatcher.errors import (
    AccountBlocked,
    CredentialsExpired,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    SendInDoubt,
)
from dispatcher.providers.timetochat import TimeToChatClient, TtcOutgoing
from dispatcher.providers.tokens import MemoryTokenStore
from dispatcher.states import MessageState as M
from tests.providers.scripted import ScriptedProvider, reply

BASE = "http://sfr.test/mug/api/V1"
MESSAGE = TtcOutgoing(
    to="+33601020304",
    sender="0931000000",
    text="Test MUG",
    ext_ref="123456",
    validity=datetime(2018, 12, 27, 9, 6, 22, 620000, tzinfo=UTC),
    unicode=False,
)
STATUS = {
    "to": "+33601020304",
    "id": "5bb5bdce911ea924bddaa243",
    "date": "2023-10-04T07:14:22.000Z",
    "history": [{"date": "2023-10-04T07:14:23.000Z", "status": "CRA_SMS_SENT"}],
}


def token(value: str) -> httpx.Response:
    return reply(201, {"token": value})


def sent(message_id: str = "5bb31c2f91ea924bdd42d75") -> httpx.Response:
    return reply(201, {"id": message_id, "extRef": "123456"})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def client_for(
    provider: ScriptedProvider, store: MemoryTokenStore | None = None, service_id: str = "123456"
) -> TimeToChatClient:
    return TimeToChatClient(
        BASE,
        service_id,
        Secret("12a34b56c"),
        provider.client(),
        store or MemoryTokenStore(),
        gate=provider.gate,
    )


def bearer(request: httpx.Request) -> str:
    return request.headers["authorization"]


def test_send_gets_a_token_then_posts_the_message() -> None:
    """POST /token with the password, then POST /messages with Bearer and the JSON body."""
    provider = ScriptedProvider(token("tok-1"), sent())
    assert client_for(provider).send(MESSAGE) == "5bb31c2f91ea924bdd42d75"
    token_request, send_request = provider.requests
    assert (token_request.method, token_request.url.path) == (
        "POST",
        "/mug/api/V1/services/123456/token",
    )
    assert token_request.headers["content-type"] == "application/json"
    assert provider.json_of(0) == {"password": "12a34b56c"}
    assert "authorization" not in token_request.headers
    assert (send_request.method, send_request.url.path) == (
        "POST",
        "/mug/api/V1/services/123456/messages",
    )
    assert bearer(send_request) == "Bearer tok-1"
    assert send_request.headers["content-type"] == "application/json"
    assert provider.json_of(1) == {
        "from": "0931000000",
        "to": "+33601020304",
        "text": "Test MUG",
        "extRef": "123456",
        "validityDate": "2018-12-27T09:06:22.620Z",
        "unicode": False,
        "flash": False,
    }
    assert provider.kinds == ["token", "send"]


def test_token_is_reused_until_lifetime_minus_margin() -> None:
    """One token serves every call for 28 minutes, then a new one is fetched."""
    clock = Clock()
    provider = ScriptedProvider(token("tok-1"), sent(), sent(), token("tok-2"), sent())
    client = client_for(provider, MemoryTokenStore(clock))
    client.send(MESSAGE)
    clock.now = 28 * 60 - 1
    client.send(MESSAGE)
    clock.now = 28 * 60
    client.send(MESSAGE)
    assert provider.kinds == ["token", "send", "send", "token", "send"]
    assert bearer(provider.requests[4]) == "Bearer tok-2"


def test_status_is_a_poll_with_the_token() -> None:
    """GET /messages/{id} with the Bearer token; one derived state."""
    provider = ScriptedProvider(token("tok-1"), reply(200, STATUS))
    status = client_for(provider).status("5bb5bdce911ea924bddaa243")
    assert status.state is M.SENT
    request = provider.requests[1]
    assert (request.method, request.url.path) == (
        "GET",
        "/mug/api/V1/services/123456/messages/5bb5bdce911ea924bddaa243",
    )
    assert bearer(request) == "Bearer tok-1"
    assert "content-type" not in request.headers
    assert provider.kinds == ["token", "poll"]


def test_ids_are_quoted_in_the_path() -> None:
    """A message id cannot escape its path segment."""
    provider = ScriptedProvider(token("t"), reply(200, STATUS))
    client_for(provider, service_id="a/b").status("../x?y")
    assert provider.requests[1].url.raw_path == b"/mug/api/V1/services/a%2Fb/messages/..%2Fx%3Fy"


def test_401_refreshes_once_and_retries() -> None:
    """An expired token is discarded, a new one fetched, and the call made again."""
    provider = ScriptedProvider(
        token("old"), reply(401, {"code": "TOKEN_EXPIRED"}), token("new"), sent()
    )
    assert client_for(provider).send(MESSAGE) == "5bb31c2f91ea924bdd42d75"
    assert provider.kinds == ["token", "send", "token", "send"]
    assert [bearer(r) for r in (provider.requests[1], provider.requests[3])] == [
        "Bearer old",
        "Bearer new",
    ]


def test_second_401_is_credentials_expired() -> None:
    """A fresh token refused too: give up with CredentialsExpired, the token never shown."""
    provider = ScriptedProvider(
        token("secret-old"),
        reply(401, {"code": "TOKEN_EXPIRED"}),
        token("secret-new"),
        reply(401, {"code": "TOKEN_EXPIRED"}),
    )
    with pytest.raises(CredentialsExpired) as info:
        client_for(provider).status("1")
    assert provider.kinds == ["token", "poll", "token", "poll"]
    assert "secret" not in str(info.value)
    assert "secret" not in info.value.reason


def test_401_keeps_a_token_another_process_refreshed() -> None:
    """If the cache already holds a newer token, it is used, not thrown away and refetched."""
    store = MemoryTokenStore()

    def refused_while_refreshed_elsewhere(request: httpx.Request) -> httpx.Response:
        store.discard(Secret("old"))
        store.get(lambda: Secret("fresh"), timedelta(minutes=1))
        return reply(401, {"code": "TOKEN_EXPIRED"})

    provider = ScriptedProvider(token("old"), refused_while_refreshed_elsewhere, sent())
    client_for(provider, store).send(MESSAGE)
    assert provider.kinds == ["token", "send", "send"]
    assert bearer(provider.requests[2]) == "Bearer fresh"


def test_wrong_password_blocks_the_account() -> None:
    """401 AUTHENTICATION_FAILED on the token request: AccountBlocked, no send attempted."""
    provider = ScriptedProvider(reply(401, {"code": "AUTHENTICATION_FAILED"}))
    with pytest.raises(AccountBlocked) as info:
        client_for(provider).send(MESSAGE)
    assert info.value.code == "AUTHENTICATION_FAILED"
    assert "12a34b56c" not in str(info.value)
    assert provider.kinds == ["token"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.ReadTimeout("slow"), ProviderUnavailable),
        (httpx.ConnectError("refused"), ProviderUnavailable),
        (reply(500, raw=b"<html>"), ProviderUnavailable),
    ],
)
def test_token_request_failures_are_transient(
    answer: httpx.Response | Exception, error: type[Exception]
) -> None:
    """A token request is harmless to repeat, so its failures are never in doubt."""
    provider = ScriptedProvider(answer)
    with pytest.raises(error) as info:
        client_for(provider).send(MESSAGE)
    assert type(info.value) is error


def test_send_read_timeout_is_in_doubt() -> None:
    """The send may have been accepted: SendInDoubt, reconciled later by extRef."""
    provider = ScriptedProvider(token("t"), httpx.ReadTimeout("slow"))
    with pytest.raises(SendInDoubt) as info:
        client_for(provider).send(MESSAGE)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_status_read_timeout_is_unavailable() -> None:
    """A poll is repeated later."""
    provider = ScriptedProvider(token("t"), httpx.ReadTimeout("slow"))
    with pytest.raises(ProviderUnavailable) as info:
        client_for(provider).status("1")
    assert type(info.value) is ProviderUnavailable


def test_429_is_throttled_with_retry_after() -> None:
    """Too many requests: throttled, with the provider's hint."""
    provider = ScriptedProvider(
        token("t"), reply(429, {"code": "TOO_MANY_REQUESTS"}, headers={"Retry-After": "1"})
    )
    with pytest.raises(ProviderThrottled) as info:
        client_for(provider).send(MESSAGE)
    assert info.value.retry_after == 1.0


def test_invalid_validity_is_rejected_with_its_code() -> None:
    """The two 400 cases are told apart by their code."""
    provider = ScriptedProvider(token("t"), reply(400, {"code": "INVALID_VALIDITY_DATE"}))
    with pytest.raises(ProviderRejected) as info:
        client_for(provider).send(MESSAGE)
    assert info.value.code == "INVALID_VALIDITY_DATE"


def test_send_5xx_with_unknown_body_is_in_doubt() -> None:
    """A gateway error page says nothing about whether the message went out."""
    provider = ScriptedProvider(token("t"), reply(502, raw=b"Bad Gateway"))
    with pytest.raises(SendInDoubt):
        client_for(provider).send(MESSAGE)


def test_margin_must_be_shorter_than_lifetime() -> None:
    """A token cached longer than it lives would always be expired."""
    with httpx.Client() as http, pytest.raises(ValueError, match="margin"):
        TimeToChatClient(
            BASE,
            "1",
            Secret("p"),
            http,
            MemoryTokenStore(),
            token_lifetime=timedelta(minutes=2),
            token_margin=timedelta(minutes=2),
        )
