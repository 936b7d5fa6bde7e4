"""Fixtures: simulators served on loopback with short delays, callback receivers (a FastAPI
app, and a raw server whose answers a test writes byte for byte)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from dispatcher.sandbox import (
    ByteHandAccount,
    ByteHandConfig,
    CallbackPolicy,
    Lifecycle,
    RunningServer,
    TimeToChatAccount,
    TimeToChatConfig,
    create_bytehand_app,
    create_timetochat_app,
    serve_in_thread,
)

FAST = Lifecycle(sent_after_s=0.05, final_after_s=0.1)
QUICK_CALLBACKS = CallbackPolicy(timeout_s=2.0, retry_base_s=0.05, retry_max_s=0.2, deadline_s=5)
BH_KEY = "sandbox-bytehand-key-0123456789"
BH_AUTH = {"id": "1000", "key": BH_KEY}
TTC_PASSWORD = "sandbox-password"
TTC_SENDER = "0938000001"

HTTP = httpx.Client(timeout=5.0)
"""One client for the tests' calls: a new client per call costs an SSL context each."""


@pytest.fixture(scope="session", autouse=True)
def _close_http_client() -> Iterator[None]:
    yield
    HTTP.close()


@dataclasses.dataclass
class Simulator:
    """A served simulator app."""

    app: FastAPI
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def sandbox(self) -> Any:
        return self.app.state.sandbox


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"condition not met within {timeout} s")


@pytest.fixture
def bytehand_factory() -> Iterator[Callable[..., Simulator]]:
    """Start ByteHand simulators (fast lifecycle unless overridden); stopped afterwards."""
    started: list[RunningServer] = []

    def make(**overrides: Any) -> Simulator:
        config = ByteHandConfig(**{"lifecycle": FAST, "callbacks": QUICK_CALLBACKS, **overrides})
        app = create_bytehand_app(config)
        server = serve_in_thread(app)
        started.append(server)
        return Simulator(app, server)

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def timetochat_factory() -> Iterator[Callable[..., Simulator]]:
    """Start TimeToChat simulators (fast lifecycle unless overridden); stopped afterwards."""
    started: list[RunningServer] = []

    def make(**overrides: Any) -> Simulator:
        config = TimeToChatConfig(**{"lifecycle": FAST, "callbacks": QUICK_CALLBACKS, **overrides})
        app = create_timetochat_app(config)
        server = serve_in_thread(app)
        started.append(server)
        return Simulator(app, server)

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def _shared_simulators() -> Iterator[tuple[Simulator, Simulator]]:
    """One default simulator of each provider for the whole session (reset per test)."""
    bytehand_app = create_bytehand_app(ByteHandConfig(lifecycle=FAST, callbacks=QUICK_CALLBACKS))
    timetochat_app = create_timetochat_app(
        TimeToChatConfig(lifecycle=FAST, callbacks=QUICK_CALLBACKS)
    )
    with serve_in_thread(bytehand_app) as bh, serve_in_thread(timetochat_app) as ttc:
        yield Simulator(bytehand_app, bh), Simulator(timetochat_app, ttc)


@pytest.fixture
def bytehand(_shared_simulators: tuple[Simulator, Simulator]) -> Simulator:
    """The default ByteHand simulator, freshly reset."""
    simulator = _shared_simulators[0]
    simulator.sandbox.reset()
    return simulator


@pytest.fixture
def timetochat(_shared_simulators: tuple[Simulator, Simulator]) -> Simulator:
    """The default TimeToChat simulator, freshly reset."""
    simulator = _shared_simulators[1]
    simulator.sandbox.reset()
    return simulator


class Receiver:
    """A callback receiver: records every request; the first ``fail_first`` get a 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.add_api_route("/hook", self._hook, methods=["GET", "POST"])
        self.server: RunningServer | None = None

    async def _hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        with self._lock:
            self.calls.append(
                {
                    "method": request.method,
                    "params": dict(request.query_params),
                    "json": await request.json() if body else None,
                }
            )
            failing = len(self.calls) <= self.fail_first
        return JSONResponse({}, status_code=500 if failing else 200)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/hook"

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.calls)


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    """Start callback receivers; stopped afterwards."""
    started: list[Receiver] = []

    def make(fail_first: int = 0) -> Receiver:
        receiver = Receiver(fail_first)
        receiver.server = serve_in_thread(receiver.app)
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        assert receiver.server is not None
        receiver.server.stop()


def bytehand_with_handler(url: str) -> tuple[ByteHandAccount, ...]:
    """The default ByteHand account with its handler URL set."""
    return (ByteHandAccount(callback_url=url),)


def timetochat_with_push(url: str, **fields: Any) -> tuple[TimeToChatAccount, ...]:
    """The default TimeToChat service with its push URL set."""
    return (TimeToChatAccount(push_url=url, **fields),)


@dataclasses.dataclass(frozen=True)
class Seen:
    """One request a :class:`RawServer` read; ``connection`` numbers its connection from 1."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


class RawServer:
    """An HTTP/1.1 server on raw asyncio streams, so a test writes every byte of the answers.

    ``answer`` maps each request to the bytes sent back (it may sleep first). The connection is
    closed after an answer saying ``Connection: close`` or speaking HTTP/1.0, and after every
    answer when ``close_idle`` (a server ending keep-alive without saying so). Records the
    requests, the connections opened and the peak number of requests answered at once.
    """

    def __init__(
        self, answer: Callable[[Seen], Awaitable[bytes]], *, close_idle: bool = False
    ) -> None:
        self._answer = answer
        self._close_idle = close_idle
        self._lock = threading.Lock()
        self._requests: list[Seen] = []
        self.connections = 0
        self.in_flight = 0
        self.peak = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._requests)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(5)
        self._loop.close()

    def _run(self, ready: threading.Event) -> None:
        self._loop.run_until_complete(self._serve(ready))

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._track, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stopping.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        while True:  # until the client hangs up (IncompleteReadError)
            head = await reader.readuntil(b"\r\n\r\n")
            line, *fields = head.decode().split("\r\n")[:-2]
            method, target, _ = line.split(" ")
            headers = {k.lower(): v for k, v in (f.split(": ", 1) for f in fields)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen = Seen(method, target, headers, body, number)
            with self._lock:
                self._requests.append(seen)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                answer = await self._answer(seen)
            finally:
                self.in_flight -= 1
            writer.write(answer)
            await writer.drain()
            lowered = answer.lower()
            if self._close_idle or b"connection: close" in lowered or answer[:8] == b"HTTP/1.0":
                return


@pytest.fixture
def raw_server_factory() -> Iterator[Callable[..., RawServer]]:
    """Start :class:`RawServer` s; stopped afterwards."""
    started: list[RawServer] = []

    def make(answer: Callable[[Seen], Awaitable[bytes]], **options: Any) -> RawServer:
        server = RawServer(answer, **options)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
