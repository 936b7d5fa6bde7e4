"""The callback client: requests as bytes, and answers from a real server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from dispatcher.sandbox.http1 import Client, ExchangeFailed, encode_request, parse_url

from .conftest import OK, RawServer, Seen

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)


async def answer_ok(_: Seen) -> bytes:
    return OK


def statuses(url: str, count: int, timeout_s: float = 2.0) -> list[int]:
    """``count`` GETs of ``url``, one after the other, through one client."""

    async def run() -> list[int]:
        client = Client(timeout_s)
        try:
            return [await client.request("GET", url) for _ in range(count)]
        finally:
            await client.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("url", "params", "line", "host"),
    [
        ("http://127.0.0.1:8000/hook", (("a", "1"),), "GET /hook?a=1", "127.0.0.1:8000"),
        ("http://h/hook?k=v", (("a", "x y/é&"),), "GET /hook?k=v&a=x+y%2F%C3%A9%26", "h"),
        ("http://h:80/hook?", (), "GET /hook", "h"),
        ("https://h:8443", (), "GET /", "h:8443"),
        ("http://[::1]:9/p%20x/é", (), "GET /p%20x/%C3%A9", "[::1]:9"),
    ],
)
def test_get_request_line_and_host(
    url: str, params: tuple[tuple[str, str], ...], line: str, host: str
) -> None:
    """params follow the URL's own query; the Host header names a port other than the
    default."""
    head = encode_request(parse_url(url), "GET", params).decode()
    assert head.startswith(f"{line} HTTP/1.1\r\nHost: {host}\r\n")
    assert head.endswith("\r\n\r\n") and "Content-Length" not in head


def test_post_carries_json() -> None:
    """A POST sends its body as UTF-8 JSON with its type and length."""
    data = encode_request(parse_url("http://h/push"), "POST", json_body={"text": "Salut é"})
    head, body = data.split(b"\r\n\r\n")
    assert json.loads(body) == {"text": "Salut é"}
    assert b"Content-Type: application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head


@pytest.mark.parametrize("url", ["ftp://h/x", "http:///x", "http://h:99999/x", "hook"])
def test_unusable_urls_fail_the_exchange(url: str) -> None:
    """A URL the client cannot call is a failed exchange, like a refused connection."""
    with pytest.raises(ExchangeFailed):
        parse_url(url)


def test_keep_alive_reuses_the_connection(raw_server_factory: Callable[..., RawServer]) -> None:
    """Requests one after the other share one connection."""
    server = raw_server_factory(answer_ok)
    assert statuses(server.url, 3) == [200, 200, 200]
    assert server.connections == 1


def test_chunked_body_is_read(raw_server_factory: Callable[..., RawServer]) -> None:
    """A chunked body is read to its end, so the next answer parses on the same connection."""

    async def chunked(_: Seen) -> bytes:
        return CHUNKED

    server = raw_server_factory(chunked)
    assert statuses(server.url, 2) == [200, 200]
    assert server.connections == 1


def test_connection_close_reconnects(raw_server_factory: Callable[..., RawServer]) -> None:
    """After ``Connection: close`` the next request opens a new connection."""

    async def closing(_: Seen) -> bytes:
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

    server = raw_server_factory(closing)
    assert statuses(server.url, 3) == [200, 200, 200]
    assert server.connections == 3


def test_http10_body_until_close(raw_server_factory: Callable[..., RawServer]) -> None:
    """An HTTP/1.0 answer without a length ends when the server closes; no reuse."""

    async def old(_: Seen) -> bytes:
        return b"HTTP/1.0 200 OK\r\n\r\nno length"

    server = raw_server_factory(old)
    assert statuses(server.url, 2) == [200, 200]
    assert server.connections == 2


def test_idle_connection_closed_by_the_server(
    raw_server_factory: Callable[..., RawServer],
) -> None:
    """A connection the server closed while idle is replaced, not used and failed."""
    server = raw_server_factory(answer_ok, close_idle=True)

    async def run() -> list[int]:
        client = Client(2.0)
        first = await client.request("GET", server.url)
        await asyncio.sleep(0.1)  # the server's close arrives
        second = await client.request("GET", server.url)
        await client.aclose()
        return [first, second]

    assert asyncio.run(run()) == [200, 200]
    assert server.connections == 2


def test_truncated_answer_fails(raw_server_factory: Callable[..., RawServer]) -> None:
    """A body shorter than its Content-Length when the server closes is a failure."""

    async def truncated(_: Seen) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc"

    server = raw_server_factory(truncated)
    with pytest.raises(ExchangeFailed):
        statuses(server.url, 1)


def test_slow_answer_times_out(raw_server_factory: Callable[..., RawServer]) -> None:
    """No answer within the timeout is a failure, and the next request uses a new
    connection."""
    calls = 0

    async def slow_once(_: Seen) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(1)
        return OK

    server = raw_server_factory(slow_once)

    async def run() -> int:
        client = Client(0.2)
        with pytest.raises(ExchangeFailed):
            await client.request("GET", server.url)
        status = await client.request("GET", server.url)
        await client.aclose()
        return status

    assert asyncio.run(run()) == 200
    assert server.connections == 2


def test_refused_connection_fails() -> None:
    """Nobody listening is a failure."""
    with pytest.raises(ExchangeFailed):
        statuses("http://127.0.0.1:9/hook", 1)
