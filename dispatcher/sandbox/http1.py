"""The simulators' HTTP/1.1 client for callbacks: keep-alive connections, one request at a time.

httpx spent 0.3-0.6 ms of CPU per request, under the GIL, in the process that also serves the
simulated provider API, so the simulator could not call back as fast as a real provider. This
client writes the request head itself and parses the answer with httptools (llhttp in C,
uvicorn's parser and already our dependency): about 1 µs per answer, where h11 took 80 µs.

It does only what callbacks need: GET with a query, POST of JSON, the answer's status; the
body is read (Content-Length, chunked, or until the server closes) and dropped. A connection is
reused until the server says ``Connection: close`` or speaks HTTP/1.0. Any failure — refused
connection, timeout, TLS, a malformed or truncated answer, an unusable URL — is
:class:`ExchangeFailed`, and closes the connection it happened on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import ssl
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import httptools

from dispatcher.errors import DispatcherError

__all__ = ["Client", "ExchangeFailed", "Target", "encode_request", "parse_url"]

USER_AGENT = "dispatcher-sandbox"
DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 characters left as they are; "%" too, so a URL already percent-encoded stays so.
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_READ_SIZE = 64 * 1024


class ExchangeFailed(DispatcherError):
    """No answer came back: the request may or may not have reached the receiver."""


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a URL's requests go: the origin to connect to, the Host header, the path."""

    scheme: str
    host: str
    port: int
    authority: str
    path: str


@functools.lru_cache(maxsize=64)
def parse_url(url: str) -> Target:
    """Split ``url`` once (a simulator calls back a handful of URLs, thousands of times)."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise ExchangeFailed(f"cannot call back {url!r}: {exc}") from exc
    if parts.scheme not in DEFAULT_PORTS or not host:
        raise ExchangeFailed(f"cannot call back {url!r}: not an http(s) URL with a host")
    authority = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        authority += f":{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_QUERY_SAFE)
    return Target(parts.scheme, host, port or DEFAULT_PORTS[parts.scheme], authority, path)


def encode_request(
    target: Target,
    method: Literal["GET", "POST"],
    params: Sequence[tuple[str, str]] = (),
    json_body: Any = None,
) -> bytes:
    """The request's bytes: ``params`` appended to the URL's own query; a POST carries
    ``json_body`` as compact UTF-8 JSON (as httpx sent it)."""
    path = target.path
    if params:
        path += ("&" if "?" in path else "?") + urlencode(params)
    head = f"{method} {path} HTTP/1.1\r\nHost: {target.authority}\r\nAccept: */*\r\n"
    head += f"User-Agent: {USER_AGENT}\r\n"
    if method == "GET":
        return (head + "\r\n").encode("ascii")
    body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    data = body.encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode("ascii") + data


class _Answer:
    """What httptools reported of one answer (its callbacks, by name). llhttp forgets whether
    the connection may be kept once the message is complete, so the headers tell it here."""

    __slots__ = ("closing", "complete", "framed", "headers_done")

    def __init__(self) -> None:
        self.closing = self.complete = self.framed = self.headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"connection":
            self.closing = self.closing or b"close" in value.lower()
        # Without either header the body runs until the server closes the connection.
        elif name in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection:
    """One connection to one origin."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @property
    def usable(self) -> bool:
        """False once the server closed it while idle (uvicorn does after 5 s)."""
        return not self._reader.at_eof() and not self._writer.is_closing()

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        """Send ``request``, read the whole answer: its status, and whether to keep the
        connection."""
        self._writer.write(request)
        await self._writer.drain()
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        while not answer.complete:
            data = await self._reader.read(_READ_SIZE)
            if not data:
                if answer.headers_done and not answer.framed:
                    break  # the body ran until the close: complete, the connection spent
                raise ConnectionResetError("the server closed the connection mid-answer")
            parser.feed_data(data)
        keep = answer.complete and not answer.closing and parser.get_http_version() == "1.1"
        return parser.get_status_code(), keep

    def close(self) -> None:
        self._writer.close()

    async def wait_closed(self) -> None:
        self._writer.close()
        # A close that fails (a reset) leaves the socket closed all the same.
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class Client:
    """Keep-alive connections, one per origin, each used by one request at a time: give each
    concurrent caller its own client to bound the connections in use."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._connections: dict[tuple[str, str, int], _Connection] = {}

    async def request(
        self,
        method: Literal["GET", "POST"],
        url: str,
        params: Sequence[tuple[str, str]] = (),
        json_body: Any = None,
    ) -> int:
        """The answer's status, the whole exchange (connecting included) within the timeout.

        Raises :class:`ExchangeFailed` when no complete answer came in time.
        """
        target = parse_url(url)
        request = encode_request(target, method, params, json_body)
        origin = (target.scheme, target.host, target.port)
        try:
            async with asyncio.timeout(self._timeout_s):
                connection = await self._connection(origin)
                status, keep = await connection.exchange(request)
        except (OSError, httptools.HttpParserError) as exc:  # TimeoutError is an OSError
            self._discard(origin)
            raise ExchangeFailed(f"{method} {url}: {exc!r}") from exc
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown
            self._discard(origin)
            raise
        if not keep:
            self._discard(origin)
        return status

    async def aclose(self) -> None:
        """Close every connection."""
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await connection.wait_closed()

    async def _connection(self, origin: tuple[str, str, int]) -> _Connection:
        connection = self._connections.get(origin)
        if connection is not None and connection.usable:
            return connection
        self._discard(origin)
        scheme, host, port = origin
        reader, writer = await asyncio.open_connection(
            host, port, ssl=_ssl_context() if scheme == "https" else None
        )
        connection = self._connections[origin] = _Connection(reader, writer)
        return connection

    def _discard(self, origin: tuple[str, str, int]) -> None:
        connection = self._connections.pop(origin, None)
        if connection is not None:
            connection.close()
