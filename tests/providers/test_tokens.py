"""Token stores: the same behaviour in memory and on a real Redis, and one fetch per fleet."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatcher.config import Secret
from dispatcher.constants import token_key, token_lock_key
from dispatcher.errors import ProviderUnavailable
from dispatcher.providers.base import build_http_client
from dispatcher.providers.timetochat import TimeToChatClient
from dispatcher.providers.tokens import MemoryTokenStore, RedisTokenStore, TokenStore

SERVICE = "123456"
MINUTE = timedelta(minutes=1)


class Fetcher:
    """Hands out tok-1, tok-2, ...; slow, to widen any race; counts calls across threads."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Secret:
        time.sleep(self.delay)
        with self._lock:
            self.calls += 1
            return Secret(f"tok-{self.calls}")


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> TokenStore:
    """Each store behaviour is checked on the fake and on the real Redis."""
    if request.param == "memory":
        return MemoryTokenStore()
    client: redis.Redis[bytes] = request.getfixturevalue("redis_client")
    return RedisTokenStore(client, SERVICE)


def test_first_get_fetches_and_caches(store: TokenStore) -> None:
    """The first caller fetches; later callers get the cached token."""
    fetch = Fetcher()
    assert store.get(fetch, MINUTE).reveal() == "tok-1"
    assert store.get(fetch, MINUTE).reveal() == "tok-1"
    assert fetch.calls == 1


def test_discard_of_the_cached_token_forces_a_refresh(store: TokenStore) -> None:
    """A refused token is forgotten; the next get fetches a new one."""
    fetch = Fetcher()
    first = store.get(fetch, MINUTE)
    store.discard(first)
    assert store.get(fetch, MINUTE).reveal() == "tok-2"


def test_discard_of_a_stale_token_keeps_the_fresh_one(store: TokenStore) -> None:
    """Compare-and-delete: a process holding an old token cannot drop the new one."""
    fetch = Fetcher()
    old = store.get(fetch, MINUTE)
    store.discard(old)
    fresh = store.get(fetch, MINUTE)
    store.discard(old)
    assert store.get(fetch, MINUTE) == fresh
    assert fetch.calls == 2


def test_fetch_failure_caches_nothing(store: TokenStore) -> None:
    """A failed fetch leaves the cache empty (and the lock free) for the next caller."""

    def failing() -> Secret:
        raise ProviderUnavailable("down", provider="timetochat")

    with pytest.raises(ProviderUnavailable):
        store.get(failing, MINUTE)
    assert store.get(Fetcher(), MINUTE).reveal() == "tok-1"


def test_two_threads_fetch_once(store: TokenStore) -> None:
    """Threads racing on an empty cache make exactly one token request."""
    fetch = Fetcher(delay=0.3)
    barrier = threading.Barrier(2)
    seen: list[str] = []

    def worker() -> None:
        barrier.wait()
        seen.append(store.get(fetch, MINUTE).reveal())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fetch.calls == 1
    assert seen == ["tok-1", "tok-1"]


def test_memory_store_expires_after_ttl() -> None:
    """The fake honours the TTL on its injected clock."""
    now = [0.0]
    store = MemoryTokenStore(clock=lambda: now[0])
    fetch = Fetcher()
    store.get(fetch, MINUTE)
    now[0] = 59.9
    assert store.get(fetch, MINUTE).reveal() == "tok-1"
    now[0] = 60.0
    assert store.get(fetch, MINUTE).reveal() == "tok-2"


def test_redis_store_expires_after_ttl(redis_client: redis.Redis[bytes]) -> None:
    """A cached token whose TTL elapsed is refreshed, and the key carries the TTL."""
    store = RedisTokenStore(redis_client, SERVICE)
    fetch = Fetcher()
    store.get(fetch, timedelta(milliseconds=300))
    assert 0 < redis_client.pttl(token_key(SERVICE)) <= 300
    time.sleep(0.4)
    assert store.get(fetch, timedelta(milliseconds=300)).reveal() == "tok-2"


def test_redis_store_reads_a_token_put_by_another_process(redis_client: redis.Redis[bytes]) -> None:
    """The key is the shared one from constants: any process sees the same token."""
    redis_client.set(token_key(SERVICE), "from-elsewhere", px=60_000)
    assert RedisTokenStore(redis_client, SERVICE).get(Fetcher(), MINUTE).reveal() == (
        "from-elsewhere"
    )


def test_redis_store_gives_up_waiting_for_a_held_lock(redis_client: redis.Redis[bytes]) -> None:
    """A refresher that never finishes makes others fail transiently, not hang."""
    redis_client.set(token_lock_key(SERVICE), "someone", px=60_000)
    store = RedisTokenStore(redis_client, SERVICE, wait_timeout=timedelta(milliseconds=200))
    fetch = Fetcher()
    with pytest.raises(ProviderUnavailable) as info:
        store.get(fetch, MINUTE)
    assert info.value.code == "token_lock"
    assert fetch.calls == 0


def test_redis_down_is_unavailable() -> None:
    """No token cache, no authorised call: a transient error, with the cause kept."""
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    store = RedisTokenStore(client, SERVICE)
    with pytest.raises(ProviderUnavailable) as info:
        store.get(Fetcher(), MINUTE)
    assert isinstance(info.value.__cause__, redis.RedisError)
    client.close()


# A real TimeToChat look-alike on loopback, shared by processes: it counts token requests.


class _CountingHandler(BaseHTTPRequestHandler):
    server: _CountingServer

    def _answer(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(0.3)  # a slow token endpoint widens the race
        with self.server.lock:
            self.server.token_requests += 1
        self._answer(201, {"token": f"tok-{self.server.token_requests}"})

    def do_GET(self) -> None:
        self._answer(200, {"id": "m1", "history": [], "auth": self.headers["Authorization"]})

    def log_message(self, format: str, *args: object) -> None:
        pass


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CountingHandler)
        self.lock = threading.Lock()
        self.token_requests = 0


@pytest.fixture
def counting_server() -> Iterator[tuple[_CountingServer, str]]:
    server = _CountingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/mug/api/V1"
    server.shutdown()
    server.server_close()


def poll_once(redis_url: str, base_url: str, barrier: Callable[[], object]) -> None:
    """One worker process: its own Redis and HTTP clients, one status call."""
    client = redis.Redis.from_url(redis_url)
    with build_http_client(connect_timeout=2, read_timeout=5) as http:
        ttc = TimeToChatClient(
            base_url, SERVICE, Secret("pw"), http, RedisTokenStore(client, SERVICE)
        )
        barrier()
        ttc.status("m1")
    client.close()


@pytest.mark.processes
def test_two_processes_fetch_once(
    redis_client: redis.Redis[bytes], redis_url: str, counting_server: tuple[_CountingServer, str]
) -> None:
    """Two spawned processes sharing one Redis make exactly one token request between them."""
    server, base_url = counting_server
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    processes = [
        context.Process(target=poll_once, args=(redis_url, base_url, barrier.wait))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0]
    assert server.token_requests == 1
    assert redis_client.get(token_key(SERVICE)) == b"tok-1"
    assert 27 * 60_000 < redis_client.pttl(token_key(SERVICE)) <= 28 * 60_000  # 30 min - 2


def test_two_clients_in_threads_fetch_once(
    redis_client: redis.Redis[bytes], counting_server: tuple[_CountingServer, str]
) -> None:
    """Two clients in threads, over real HTTP and Redis: one token request, both authorised."""
    server, base_url = counting_server
    barrier = threading.Barrier(2)
    with httpx.Client() as http:
        clients = [
            TimeToChatClient(
                base_url, SERVICE, Secret("pw"), http, RedisTokenStore(redis_client, SERVICE)
            )
            for _ in range(2)
        ]
        seen: list[str] = []

        def poll(client: TimeToChatClient) -> None:
            barrier.wait()
            seen.append(client.status("m1").message_id)

        threads = [threading.Thread(target=poll, args=(client,)) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert seen == ["m1", "m1"]
    assert server.token_requests == 1
