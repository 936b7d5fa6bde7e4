"""ByteHandClient over MockTransport: the exact requests, answers mapped, one gate per call."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from dispatcher.config import Secret
from dispatcher.errors import (
    AccountBlocked,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    SendInDoubt,
)
from dispatcher.providers.bytehand import ByteHandClient, OutgoingSms
from dispatcher.states import MessageState as M
from tests.providers.scripted import ScriptedProvider, reply

KEY = "5D01022D23AD33FE"
AUTH = {"id": "1234", "key": KEY}


def client_for(provider: ScriptedProvider) -> ByteHandClient:
    return ByteHandClient(
        "http://bytehand.test:3800/", "1234", Secret(KEY), provider.client(), gate=provider.gate
    )


def query(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def test_send_builds_the_documented_get() -> None:
    """GET /send with id, key, to, from, text, and send_after in GMT; the id comes back."""
    provider = ScriptedProvider(reply(200, {"status": "0", "description": "9885176022016555"}))
    message_id = client_for(provider).send(
        "+79161234567", "test", "Hello world! & more", datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    )
    assert message_id == "9885176022016555"
    (sent,) = provider.requests
    assert sent.method == "GET"
    assert sent.url.path == "/send"
    assert query(sent) == {
        **AUTH,
        "to": "+79161234567",
        "from": "test",
        "text": "Hello world! & more",
        "send_after": "2024-05-01 09:30:00",
    }
    assert b"to=%2B79161234567" in sent.url.query  # the + must be URL-encoded
    assert provider.kinds == ["send"]


def test_send_without_send_after_omits_it() -> None:
    """send_after is optional: absent means now."""
    provider = ScriptedProvider(reply(200, {"status": "0", "description": "1"}))
    client_for(provider).send("+7916", "test", "hi")
    assert "send_after" not in query(provider.requests[0])


def test_send_multi_posts_json_list() -> None:
    """POST /send_multi: UTF-8 JSON list, charset in the content type, results in order."""
    provider = ScriptedProvider(
        reply(
            200,
            [
                {"status": 0, "description": "33438930809215150"},
                {"status": 10, "description": "Invalid message sender."},
            ],
        )
    )
    results = client_for(provider).send_multi(
        [
            OutgoingSms("89161234567", "test", "Hello world!"),
            OutgoingSms("+79167654321", "blablabla", "Привет"),
        ],
        send_after=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
    )
    (sent,) = provider.requests
    assert sent.method == "POST"
    assert sent.url.path == "/send_multi"
    assert query(sent) == {**AUTH, "send_after": "2024-05-01 09:30:00"}
    assert sent.headers["content-type"] == "application/json; charset=UTF-8"
    assert json.loads(sent.content.decode("utf-8")) == [
        {"to": "89161234567", "from": "test", "text": "Hello world!"},
        {"to": "+79167654321", "from": "blablabla", "text": "Привет"},
    ]
    assert "Привет".encode() in sent.content
    assert results[0].message_id == "33438930809215150"
    assert isinstance(results[1].error, AccountBlocked)
    assert provider.kinds == ["send"]


def test_send_multi_of_nothing_makes_no_call() -> None:
    """An empty batch spends no budget."""
    provider = ScriptedProvider()
    assert client_for(provider).send_multi([]) == []
    assert provider.kinds == []


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (reply(400, {"status": "2", "description": "Authorization failed."}), AccountBlocked),
        (reply(400, {"status": 17, "description": "Too many operations."}), ProviderThrottled),
        (reply(500, raw=b"Internal Server Error"), SendInDoubt),
        (httpx.ReadTimeout("slow"), SendInDoubt),
        (httpx.ConnectError("refused"), ProviderUnavailable),
    ],
)
def test_send_multi_batch_failures_raise(
    answer: httpx.Response | Exception, error: type[Exception]
) -> None:
    """Batch-level failures raise instead of returning per-item results."""
    provider = ScriptedProvider(answer)
    with pytest.raises(error):
        client_for(provider).send_multi([OutgoingSms("+7916", "test", "a")] * 2)


def test_send_read_timeout_is_in_doubt() -> None:
    """A send whose answer never came may be out: SendInDoubt, with the cause kept."""
    provider = ScriptedProvider(httpx.ReadTimeout("slow"))
    with pytest.raises(SendInDoubt) as info:
        client_for(provider).send("+7916", "test", "hi")
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert KEY not in str(info.value)


def test_status_read_timeout_is_unavailable() -> None:
    """Polling again is harmless, so a lost answer is only unavailable."""
    provider = ScriptedProvider(httpx.ReadTimeout("slow"))
    with pytest.raises(ProviderUnavailable) as info:
        client_for(provider).status("1")
    assert type(info.value) is ProviderUnavailable


def test_status_builds_query_and_maps_state() -> None:
    """GET /status?message=...; the provider state and ours."""
    provider = ScriptedProvider(reply(200, {"status": "0", "description": "ACCEPTED"}))
    status = client_for(provider).status("9885176022016555")
    assert (status.provider_state, status.state) == ("ACCEPTED", M.SENT)
    (sent,) = provider.requests
    assert (sent.method, sent.url.path) == ("GET", "/status")
    assert query(sent) == {**AUTH, "message": "9885176022016555"}
    assert provider.kinds == ["poll"]


def test_details_is_a_poll() -> None:
    """GET /details counts as a poll."""
    provider = ScriptedProvider(
        reply(
            200,
            {
                "status": "0",
                "description": "NEW",
                "posted_at": "2012-09-11 20:00:26.0",
                "updated_at": None,
                "parts": 1,
                "cost": 0.5,
            },
        )
    )
    details = client_for(provider).details("7")
    assert details.state is M.SUBMITTED
    assert details.updated_at is None
    assert details.cost == Decimal("0.5")
    assert provider.requests[0].url.path == "/details"
    assert query(provider.requests[0]) == {**AUTH, "message": "7"}
    assert provider.kinds == ["poll"]


def test_balance() -> None:
    """GET /balance, an account call."""
    provider = ScriptedProvider(reply(200, {"status": "0", "description": "48.8300"}))
    assert client_for(provider).balance() == Decimal("48.83")
    assert provider.requests[0].url.path == "/balance"
    assert query(provider.requests[0]) == AUTH
    assert provider.kinds == ["account"]


def test_signature_calls() -> None:
    """List, read, submit and delete sender names: methods, paths and queries."""
    one = {
        "id": 11,
        "text": "TEST",
        "description": "d",
        "created_at": "2012-04-26 01:50:29",
        "state": "NEW",
    }
    provider = ScriptedProvider(
        reply(200, [one]),
        reply(200, one),
        reply(200, {"status": 0, "description": "12"}),
        httpx.Response(200),
    )
    client = client_for(provider)
    assert [s.id for s in client.signatures(state="NEW")] == ["11"]
    assert client.signature("11").state == "NEW"
    assert client.submit_signature("xyz", "abc") == "12"
    client.delete_signature("12")
    calls = [(r.method, r.url.path, query(r)) for r in provider.requests]
    assert calls == [
        ("GET", "/signatures", {**AUTH, "state": "NEW"}),
        ("GET", "/signature", {**AUTH, "signature": "11"}),
        ("POST", "/signature", {**AUTH, "text": "xyz", "description": "abc"}),
        ("DELETE", "/signature", {**AUTH, "signature": "12"}),
    ]
    assert provider.kinds == ["account"] * 4


def test_signatures_without_state_lists_all() -> None:
    """No state filter: no state parameter."""
    provider = ScriptedProvider(reply(200, []))
    assert client_for(provider).signatures() == []
    assert query(provider.requests[0]) == AUTH


def test_delete_signature_error_raises() -> None:
    """A delete refused with an error object raises its class."""
    provider = ScriptedProvider(reply(400, {"status": 9, "description": "not found"}))
    with pytest.raises(ProviderRejected):
        client_for(provider).delete_signature("404")


def test_submit_signature_timeout_is_in_doubt() -> None:
    """Submitting twice would create two: a lost answer is in doubt."""
    provider = ScriptedProvider(httpx.ReadTimeout("slow"))
    with pytest.raises(SendInDoubt):
        client_for(provider).submit_signature("xyz", "abc")
