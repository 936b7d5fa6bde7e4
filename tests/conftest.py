"""Shared fixtures: real services, and the rule that a missing one fails under CI=true."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SYSTEM_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def missing_service(reason: str) -> None:
    """A real service we need is absent: a failure in CI, a skip on a laptop."""
    if CI:
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: the one on 127.0.0.1:6379 (db 15) when present, else an embedded one."""
    client = redis.Redis.from_url(SYSTEM_REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        if CI:
            pytest.fail("Redis on 127.0.0.1:6379 is not reachable (CI=true)")
        from dispatcher.embedded import EmbeddedRedis

        with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as embedded:
            yield embedded.url
        return
    finally:
        client.close()
    yield SYSTEM_REDIS_URL


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a flushed database, flushed again afterwards."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'dispatcher.db'}"
