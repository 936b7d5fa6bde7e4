"""Shared fixtures: real services, and the rule that a missing one fails under CI=true."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dispatcher.models import Campaign, Message
from dispatcher.states import CampaignState, MessageState
from tests.databases import PostgresSchemas, SqliteTemplate

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


@pytest.fixture
def offline() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``tests.offline.run_offline``: a command with no service of this machine in reach."""
    from tests.offline import offline_unavailable, run_offline

    reason = offline_unavailable()
    if reason is not None:
        missing_service(reason)
    return run_offline


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that run processes of their own first (a stable sort): in the parallel pass the
    longest of them (the demo, a minute-long quiet-hours wait) overlap the thousands of quick
    tests instead of running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("processes") is None)


XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
"""``gw0``, ``gw1``... in a pytest-xdist worker (``make test``), None in a plain run."""


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: ``TEST_REDIS_URL`` (db 15 of 127.0.0.1:6379 by default) when it answers,
    else an embedded one. Each pytest-xdist worker starts its own embedded Redis: parallel
    workers must not flush each other's database (nor, on a shared machine, anyone else's)."""
    from dispatcher.embedded import EmbeddedRedis

    if XDIST_WORKER is None:
        client = redis.Redis.from_url(SYSTEM_REDIS_URL)
        try:
            client.ping()
        except redis.ConnectionError:
            pass
        else:
            yield SYSTEM_REDIS_URL
            return
        finally:
            client.close()
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as embedded:
        yield embedded.url


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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    """A SQLite file migrated once per session, copied for each test."""
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_schemas(postgres_url: str) -> Iterator[PostgresSchemas]:
    """This session's (this xdist worker's) migrated PostgreSQL schema, emptied per test."""
    schemas = PostgresSchemas(postgres_url)
    yield schemas
    schemas.drop_all()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a SQLite file, and a PostgreSQL schema (see tests.databases:
    migrated once per session, not per test)."""
    if request.param == "sqlite":
        template: SqliteTemplate = request.getfixturevalue("sqlite_template")
        return template.copy_to(tmp_path)
    schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
    return schemas.empty()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL: the machine's (``TEST_POSTGRES_URL``) when it answers, else one
    started for the session from the pgserver wheel."""
    import sqlalchemy

    probe = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with probe.connect():
            pass
    except sqlalchemy.exc.OperationalError:
        try:
            from tests.localpg import local_postgres
        except ImportError:  # pgserver has no wheel for this Python
            missing_service(f"no PostgreSQL at {POSTGRES_URL} and no pgserver to start one")
        with local_postgres(tmp_path_factory.mktemp("postgres")) as url:
            yield url
        return
    finally:
        probe.dispose()
    yield POSTGRES_URL


@contextlib.contextmanager
def postgres_schema(admin_url: str) -> Iterator[str]:
    """A throw-away, migrated schema in PostgreSQL at ``admin_url``, dropped afterwards."""
    import sqlalchemy

    from dispatcher.db import make_engine, migrate

    admin = sqlalchemy.create_engine(admin_url)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{admin_url}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """An engine on the migrated database of ``db_url``."""
    from dispatcher.db import make_engine

    engine = make_engine(db_url)
    yield engine
    engine.dispose()


Seed = Callable[..., tuple[int, list[int]]]


def insert_campaign(
    session: Session, messages: Sequence[Mapping[str, Any]], **campaign: Any
) -> tuple[int, list[int]]:
    """A campaign (a running ByteHand one unless ``campaign`` says otherwise) with one message
    per mapping of columns (``state`` at least); the rest filled in: its line, a phone unique in
    the campaign, a one-part text, ``c<campaign>-<line>`` as extRef. Flushed, not committed;
    returns (campaign id, message ids)."""
    defaults = {"name": "c", "provider": "bytehand", "sender": "SMSINFO", "template": "Hi"}
    row = Campaign(**(defaults | {"state": CampaignState.RUNNING} | campaign))
    session.add(row)
    session.flush()
    rows = [
        Message(
            **{
                "campaign_id": row.id,
                "line": line,
                "phone": f"+336{row.id:03d}{line:05d}",
                "text": "Hi",
                "encoding": "GSM-7",
                "parts": 1,
                "ext_ref": f"c{row.id}-{line}",
            }
            | dict(columns)
        )
        for line, columns in enumerate(messages)
    ]
    session.add_all(rows)
    session.flush()
    return row.id, [message.id for message in rows]


@pytest.fixture
def seed(db_engine: Engine) -> Iterator[Seed]:
    """A factory: a campaign with one message per given state; returns (campaign id, ids)."""
    refs = itertools.count()

    def make(
        *states: MessageState, campaign: dict[str, Any] | None = None, **fields: Any
    ) -> tuple[int, list[int]]:
        with Session(db_engine) as session:
            rows = [{"state": s, "ext_ref": f"ref-{next(refs)}"} | fields for s in states]
            created = insert_campaign(session, rows, **(campaign or {}))
            session.commit()
            return created

    yield make
