"""What every provider client shares: the call gate, the HTTP client, the httpx boundary.

The httpx boundary is the one place where transport exceptions become ours. What matters is
whether the request could have reached the provider::

    ConnectError, ConnectTimeout, PoolTimeout,      never left  -> ProviderUnavailable
    ProxyError, UnsupportedProtocol, LocalProtocolError
    ReadTimeout, WriteTimeout, ReadError,           may have     -> SendInDoubt (send),
    WriteError, RemoteProtocolError, and any other  arrived         ProviderUnavailable (read)
    httpx.RequestError

A send that may have arrived is never retried blindly: the provider could already be delivering
it. A read (status, balance) is harmless to repeat, so it is merely unavailable.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal, Protocol

import httpx

from dispatcher.config import Secret
from dispatcher.errors import ProviderUnavailable, SendInDoubt, WebhookAuthError

__all__ = [
    "NEVER_LEFT",
    "CallGate",
    "CallKind",
    "CallTally",
    "build_http_client",
    "check_webhook_secret",
    "decode_json",
    "encode_json",
    "map_transport_errors",
    "no_gate",
    "request",
    "secrets_match",
]

CallKind = Literal["send", "poll", "token", "account"]
"""What a provider call is for: the limiter may weigh or report kinds differently."""


class CallTally(Protocol):
    """What a gate may hand to the request inside it, to learn how the call ended."""

    def answered(self, status_code: int) -> None: ...


CallGate = Callable[[CallKind], AbstractContextManager[CallTally | None]]
"""Entered around every HTTP request: blocks until the fleet-wide budget allows it, and holds
the call's slot until its answer is back (the provider counts it somewhere in between). It may
yield a :class:`CallTally` (the metered gate of :mod:`dispatcher.meter` does), told the HTTP
status of the answer; transport errors it sees as they leave the block."""

NEVER_LEFT: tuple[type[httpx.RequestError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


def no_gate(kind: CallKind) -> AbstractContextManager[None]:
    """The default gate: no limit (unit tests, one-off CLI calls)."""
    return nullcontext()


def build_http_client(connect_timeout: float, read_timeout: float) -> httpx.Client:
    """A pooled client with explicit timeouts, shared by the calls of one worker process.

    Waiting for a pooled connection is bounded by the connect timeout: the request has not left.
    """
    return httpx.Client(
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
        headers={"Accept": "application/json"},
        follow_redirects=False,
    )


@contextmanager
def map_transport_errors(provider: str, *, idempotent: bool) -> Iterator[None]:
    """Turn httpx exceptions raised inside the block into ours (see the module docstring)."""
    try:
        yield
    except NEVER_LEFT as exc:
        raise ProviderUnavailable(
            "the request did not reach the provider", provider=provider, code=type(exc).__name__
        ) from exc
    except httpx.RequestError as exc:
        if idempotent:
            raise ProviderUnavailable(
                "no answer from the provider", provider=provider, code=type(exc).__name__
            ) from exc
        raise SendInDoubt(
            "the request may have reached the provider but no answer came back",
            provider=provider,
            code=type(exc).__name__,
        ) from exc


def request(
    http: httpx.Client,
    gate: CallGate,
    kind: CallKind,
    method: str,
    url: str,
    *,
    provider: str,
    idempotent: bool,
    params: Mapping[str, str] | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Spend one unit of the budget, then make one HTTP request with foreign errors mapped."""
    with gate(kind) as tally, map_transport_errors(provider, idempotent=idempotent):
        response = http.request(method, url, params=params, content=content, headers=headers)
        if tally is not None:
            tally.answered(response.status_code)
        return response


def encode_json(value: Any) -> bytes:
    """A request body in UTF-8 JSON; non-ASCII text travels as itself, not as escapes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def decode_json(body: bytes) -> object | None:
    """The JSON value of a body, or ``None`` when it is not JSON (an HTML error page, nothing)."""
    try:
        value: object = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value


def secrets_match(given: str, expected: str) -> bool:
    """Constant-time comparison of two strings; an empty expectation never matches."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def check_webhook_secret(given: str, expected: Secret) -> None:
    """Refuse a callback whose URL does not carry our shared secret (Push_CRA is unsigned)."""
    if not expected:
        raise WebhookAuthError(
            "DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET is unset: every one is refused"
        )
    if not secrets_match(given, expected.reveal()):
        raise WebhookAuthError("wrong webhook secret in the URL")
