"""A real web app on loopback (uvicorn in a thread) over a real database and Redis.

Each test gets its own migrated database (SQLite and PostgreSQL, from ``db_url``), a runtime on
it, the app served on a free port, and an ``httpx.Client`` talking real HTTP to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dispatcher.config import Settings, load_settings
from dispatcher.runtime import Runtime
from dispatcher.sandbox import ByteHandAccount, ByteHandConfig, Signature, create_bytehand_app
from dispatcher.sandbox.server import serve_in_thread
from dispatcher.web import create_app
from tests.web.helpers import API_TOKEN, BYTEHAND_ID, BYTEHAND_KEY, SIMULATOR_URLS, env_for


@pytest.fixture(scope="session", autouse=True)
def bytehand_simulator() -> Iterator[str]:
    """A ByteHand simulator holding the tests' account, sender SHOP approved: `start` asks it
    (pre-start checks) before starting a ByteHand campaign."""
    account = ByteHandAccount(
        client_id=BYTEHAND_ID,
        key=BYTEHAND_KEY,
        signatures=(Signature("SHOP", "ACCEPTED"), Signature("NEWNAME", "NEW")),
    )
    app = create_bytehand_app(ByteHandConfig(accounts=(account,)))
    with serve_in_thread(app) as server:
        SIMULATOR_URLS["bytehand"] = server.url
        yield server.url
        SIMULATOR_URLS.clear()


@pytest.fixture
def settings(db_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return load_settings(env_for(db_url, redis_url, tmp_path / "state"))


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    built = Runtime(settings)
    yield built
    built.close()


@pytest.fixture
def kicks() -> list[int]:
    """Campaign ids handed to ``on_start``."""
    return []


@pytest.fixture
def client(runtime: Runtime, kicks: list[int]) -> Iterator[httpx.Client]:
    """Real HTTP to the app served on loopback; no auth header."""
    app = create_app(runtime, on_start=kicks.append)
    with serve_in_thread(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture
def api(client: httpx.Client) -> httpx.Client:
    """The same client with the API token."""
    client.headers["Authorization"] = f"Bearer {API_TOKEN}"
    return client
